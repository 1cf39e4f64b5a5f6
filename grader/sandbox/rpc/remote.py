"""The peer's objects on this side: RemoteObject and its methods, every operation a request over the endpoint."""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

from .errors import ChannelClosed, ProtocolError
from .limits import MAX_TEXT

if TYPE_CHECKING:
    from .endpoint import Endpoint

__all__ = ["RemoteObject"]


class RemoteObject:
    """An object that lives on the other side; every operation is a request.

    ``==`` and ``hash`` are identity: two references are equal when they name
    the same remote object. ``grader_kind`` says what it is ("function",
    "class", "callable" or "object") and ``grader_type`` its type's name.
    """

    __slots__ = ("_rpc_endpoint", "_rpc_ref", "grader_kind", "grader_type", "_rpc_methods", "_rpc_name",
                 "_rpc_signature", "grader_keep", "__weakref__")

    def __init__(self, endpoint: Endpoint, ref: int, kind: str, type_name: str, qualname: str = "",
                 signature: list | None = None) -> None:
        object.__setattr__(self, "_rpc_endpoint", endpoint)
        object.__setattr__(self, "_rpc_ref", ref)
        object.__setattr__(self, "grader_kind", kind)
        object.__setattr__(self, "grader_type", type_name)
        object.__setattr__(self, "_rpc_methods", {})
        object.__setattr__(self, "_rpc_name", qualname)
        object.__setattr__(self, "_rpc_signature", signature)
        object.__setattr__(self, "grader_keep", False)  # results stay where they live (see grader_call_kept)

    @property
    def __signature__(self) -> inspect.Signature | None:  # noqa: PLW3201 - what inspect.signature reads
        return _signature(self._rpc_signature) if self._rpc_signature is not None else None

    def _rpc(self, op: str, **fields: Any) -> Any:
        if self.grader_keep:
            fields["keep"] = True
        return self._rpc_endpoint.request(op, ref=self._rpc_ref, **fields)

    def grader_call_kept(self, *args: Any, **kwargs: Any) -> Any:
        """Call the remote object; a list, dict or set it returns stays on its side (a reference, not a copy),
        and so does every container reached through it."""
        return _call(self, "call", None, args, kwargs, keep=True)

    def __getattr__(self, name: str) -> Any:
        if name in ("__name__", "__qualname__") and self._rpc_name:  # what functools.wraps and messages read
            return self._rpc_name if name == "__qualname__" else self._rpc_name.rpartition(".")[2]
        if name.startswith("__") and name.endswith("__") and name != "__wrapped__":
            raise AttributeError(name)
        method = self._rpc_methods.get(name)
        if method is not None:
            return method
        value = self._rpc("getattr", name=name)
        if type(value) is dict and "m" in value and len(value) == 1:
            method = _RemoteMethod(self, name)
            self._rpc_methods[name] = method
            return method
        return self._rpc_endpoint.decode(value)

    def __setattr__(self, name: str, value: Any) -> None:
        self._rpc("setattr", name=name, value=self._rpc_endpoint.encode(value))

    def __delattr__(self, name: str) -> None:
        self._rpc("delattr", name=name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _call(self, "call", None, args, kwargs)

    def __getitem__(self, key: Any) -> Any:
        return self._rpc_endpoint.decode(self._rpc("getitem", key=self._rpc_endpoint.encode(key)))

    def __setitem__(self, key: Any, value: Any) -> None:
        ep = self._rpc_endpoint
        self._rpc("setitem", key=ep.encode(key), value=ep.encode(value))

    def __delitem__(self, key: Any) -> None:
        self._rpc("delitem", key=self._rpc_endpoint.encode(key))

    def __contains__(self, key: Any) -> bool:
        return self._rpc("contains", key=self._rpc_endpoint.encode(key)) is True

    def __len__(self) -> int:
        n = self._rpc("len")
        if type(n) is not int or n < 0:
            raise TypeError("len() of a remote object was not a non-negative int")
        return n

    def __bool__(self) -> bool:
        return self._rpc("bool") is True

    def __iter__(self) -> Any:
        iterator = self._rpc_endpoint.decode(self._rpc("iter"))
        if not isinstance(iterator, RemoteObject):
            raise TypeError("iter() of a remote object did not give an iterator")
        return _RemoteIterator(iterator)

    def __next__(self) -> Any:
        return self._rpc_endpoint.decode(self._rpc("next"))

    def __enter__(self) -> Any:
        return self._rpc_endpoint.decode(self._rpc("enter"))

    def __exit__(self, *exc_info: Any) -> bool:
        return self._rpc("exit") is True

    def __repr__(self) -> str:
        try:
            text = self._rpc("repr")
        except Exception:  # noqa: BLE001 - a repr must not fail the caller's message
            return f"<{self.grader_type} object>"
        return str(text)[:MAX_TEXT]

    def __str__(self) -> str:
        text = self._rpc("str")
        return str(text)[:MAX_TEXT] if type(text) is str else repr(self)

    def __eq__(self, other: Any) -> bool:
        return self is other

    def __ne__(self, other: Any) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return object.__hash__(self)


@functools.lru_cache(maxsize=512)
def _proxy_class(type_name: str, own_module: str = "") -> type:
    """A RemoteObject subclass named like the remote object's type, so ``type(x).__name__`` reads right.

    ``own_module`` is the ``__module__`` of a remote function or class: ``x.__module__`` is looked up on the
    proxy's class, so the class carries it (two functions named ``get`` in two modules stay apart).
    """
    module, _, qualname = type_name.rpartition(".")
    name = qualname.rpartition(".")[2] or "RemoteObject"
    return type(name, (RemoteObject,), {"__slots__": (), "__module__": own_module or module or __name__,
                                        "__qualname__": qualname})


class _Default:
    """A default value that is not a literal: shown as its source, never evaluated."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.VAR_POSITIONAL,
          inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)


def _signature(params: list) -> inspect.Signature | None:
    """Rebuild a signature sent as [name, kind, has a default, the default or its repr, is a repr] items."""
    P = inspect.Parameter
    try:
        return inspect.Signature([
            P(str(name), _KINDS[kind],
              default=P.empty if not has_default else _Default(str(default)) if is_repr else default)
            for name, kind, has_default, default, is_repr in params])
    except (ValueError, TypeError, IndexError):
        return None


class _RemoteMethod:
    """``obj.name`` where ``name`` is a method of the remote object's class: one request per call."""

    __slots__ = ("owner", "name", "grader_kind")

    def __init__(self, owner: RemoteObject, name: str) -> None:
        self.owner, self.name, self.grader_kind = owner, name, "function"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _call(self.owner, "callattr", self.name, args, kwargs)

    def grader_call_kept(self, *args: Any, **kwargs: Any) -> Any:
        return _call(self.owner, "callattr", self.name, args, kwargs, keep=True)

    def __repr__(self) -> str:
        return f"<method {self.name} of {self.owner.grader_type} object>"


class _RemoteIterator:
    __slots__ = ("remote",)

    def __init__(self, remote: RemoteObject) -> None:
        self.remote = remote

    def __iter__(self) -> "_RemoteIterator":
        return self

    def __next__(self) -> Any:
        return next(self.remote)


_MUTABLE = (list, dict, set)


def _call(target: RemoteObject, op: str, name: str | None, args: tuple, kwargs: dict[str, Any],
          keep: bool = False) -> Any:
    """A call across the channel; lists, dicts and sets passed in get the changes the callee made."""
    ep = target._rpc_endpoint
    restore: list[int | str] = [i for i, a in enumerate(args) if type(a) in _MUTABLE]
    restore += [k for k, v in kwargs.items() if type(v) in _MUTABLE]
    fields: dict[str, Any] = {"args": ep.encode(tuple(args)), "kwargs": ep.encode(dict(kwargs))}
    if name is not None:
        fields["name"] = name
    if restore:
        fields["restore"] = restore
    if keep:
        fields["keep"] = True
    reply = target._rpc(op, **fields)
    if not restore:
        return ep.decode(reply)
    if type(reply) is not dict or set(reply) != {"v", "a"} or type(reply["a"]) is not list \
            or len(reply["a"]) != len(restore):
        ep._fail(ProtocolError("a malformed reply to a call"))
        raise ChannelClosed(ep.closed)
    for where, state in zip(restore, reply["a"]):
        original, new = (args[where] if type(where) is int else kwargs[where]), ep.decode(state)
        if type(new) is not type(original):
            continue
        original.clear()
        if isinstance(original, dict):
            original.update(new)
        elif isinstance(original, list):
            original.extend(new)
        else:
            original.update(new)
    return ep.decode(reply["v"])
