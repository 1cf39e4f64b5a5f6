"""Values on the channel: what crosses by value (plain data, exactly typed), and references for everything else."""

from __future__ import annotations

import base64
import datetime
import decimal
import functools
import inspect
import types
import uuid
from typing import Any, Callable

from .errors import ChannelClosed, ProtocolError
from .limits import MAX_DEPTH, MAX_ITEMS
from .remote import RemoteObject, _proxy_class

__all__ = ["ValueCodec"]

_PLAIN = (type(None), bool, int, float, str)
# immutable standard-library values that also cross by value (exact types): their tag and encoding
_VALUE_CODEC: dict[type, tuple[str, Callable[[Any], Any]]] = {
    datetime.datetime: ("dt", lambda v: v.isoformat()), datetime.date: ("da", lambda v: v.isoformat()),
    datetime.time: ("tm", lambda v: v.isoformat()), datetime.timedelta: ("td", lambda v: [v.days, v.seconds,
                                                                                          v.microseconds]),
    decimal.Decimal: ("dec", str), uuid.UUID: ("uu", lambda v: v.hex), complex: ("cx", lambda v: [v.real, v.imag])}


def _text_of(body: Any) -> str:
    if type(body) is not str or len(body) > 100:
        raise ValueError("expected a short text")
    return body


def _numbers(body: Any, n: int, kinds: tuple[type, ...]) -> list[Any]:
    if type(body) is not list or len(body) != n or not all(type(x) in kinds for x in body):
        raise ValueError(f"expected {n} numbers")
    return body


_VALUE_DECODE: dict[str, Callable[[Any], Any]] = {
    "dt": lambda b: datetime.datetime.fromisoformat(_text_of(b)),
    "da": lambda b: datetime.date.fromisoformat(_text_of(b)),
    "tm": lambda b: datetime.time.fromisoformat(_text_of(b)),
    "td": lambda b: datetime.timedelta(*_numbers(b, 3, (int,))),
    "dec": lambda b: decimal.Decimal(_text_of(b)),
    "uu": lambda b: uuid.UUID(hex=_text_of(b)),
    "cx": lambda b: complex(*_numbers(b, 2, (int, float))),
}


def _kind(obj: Any) -> str:
    if isinstance(obj, type):
        return "class"
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)):
        return "function"
    if callable(obj) and hasattr(obj, "__wrapped__"):  # lru_cache and other decorated functions
        return "function"
    return "callable" if callable(obj) else "object"


class ValueCodec:
    """``encode``/``decode`` of values for :class:`~grader.sandbox.rpc.endpoint.Endpoint` (a mixin of it).

    It keeps the objects this side sent by reference (``_exported``) and the proxies of the peer's
    (``_proxies``); the endpoint creates those tables and their locks, and closes the channel (``_fail``)
    when a value from the peer is malformed.
    """

    def _export(self, obj: Any) -> dict[str, Any]:
        with self._export_lock:
            ref = self._export_ids.get(id(obj))
            if ref is None or self._exported.get(ref) is not obj:
                ref = len(self._exported) + 1
                self._exported[ref] = obj
                self._export_ids[id(obj)] = ref
        kind = _kind(obj)
        data = {"r": ref, "k": kind, "n": f"{type(obj).__module__}.{type(obj).__qualname__}"[:200]}
        if kind != "object":
            data["q"] = str(getattr(obj, "__qualname__", getattr(obj, "__name__", "")) or "")[:200]
            module = getattr(obj, "__module__", None)
            if type(module) is str and module:  # what a cache key or a message reads (users.get vs products.get)
                data["mo"] = module[:200]
            try:
                data["s"] = [[p.name, int(p.kind), p.default is not p.empty,
                              p.default if type(p.default) in _PLAIN else repr(p.default)[:100],
                              type(p.default) not in _PLAIN]
                             for p in list(inspect.signature(obj).parameters.values())[:50]]
            except (TypeError, ValueError):
                pass
        return data

    def encode(self, value: Any, depth: int = 0) -> Any:
        kind = type(value)
        if depth > MAX_DEPTH:
            raise ValueError("a value nested more than 64 levels deep cannot cross the channel")
        if kind in _PLAIN:
            return value
        if isinstance(value, RemoteObject) and value._rpc_endpoint is self:
            return {"y": value._rpc_ref}
        if kind in (list, dict, set) and self.by_reference(value):
            return self._export(value)
        if kind is bytes:
            return {"b": base64.b64encode(value).decode("ascii")}
        if kind is list:
            return {"l": [self.encode(v, depth + 1) for v in value]}
        if kind is tuple:
            return {"t": [self.encode(v, depth + 1) for v in value]}
        if kind is dict:
            return {"d": self._pairs(value, depth)}
        if kind is set:
            return {"s": [self.encode(v, depth + 1) for v in list(value)]}
        if kind is frozenset:
            return {"f": [self.encode(v, depth + 1) for v in value]}
        if kind is types.MappingProxyType:  # a read-only view: a read-only view of a copy
            return {"mp": self._pairs(value, depth)}
        codec = _VALUE_CODEC.get(kind)
        if codec is not None and (kind is not datetime.datetime or value.tzinfo is None
                                  or type(value.tzinfo) is datetime.timezone):
            return {codec[0]: codec[1](value)}
        if isinstance(value, types.ModuleType):
            raise TypeError(f"a module ({value.__name__}) cannot cross the channel: import it on the other side")
        return self._export(value)

    def _pairs(self, mapping: Any, depth: int) -> list[list[Any]]:
        return [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in list(mapping.items())]

    def decode(self, data: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
        """A value from the peer. A malformed one closes the channel (raises ChannelClosed)."""
        if budget is None:
            try:
                return self.decode(data, 0, [MAX_ITEMS])
            except ProtocolError as exc:
                self._fail(exc)
                raise ChannelClosed(self.closed) from None
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DEPTH:
            raise ProtocolError("a value too large or too deeply nested")
        if type(data) in _PLAIN:
            return data
        if type(data) is not dict or not 1 <= len(data) <= 7:
            raise ProtocolError(f"not a value: {type(data).__name__}")
        if "r" in data:
            ref, kind, name = data.get("r"), data.get("k"), data.get("n")
            qualname, signature, keep = data.get("q", ""), data.get("s"), data.get("kp") == 1
            module = data.get("mo", "")
            if type(ref) is not int or type(kind) is not str or type(name) is not str or type(qualname) is not str \
                    or (signature is not None and type(signature) is not list) or type(module) is not str:
                raise ProtocolError("a malformed reference")
            proxy = self._proxy(ref, kind, name, qualname, signature, module)
            if keep:
                object.__setattr__(proxy, "grader_keep", True)
            return proxy
        (tag, body), = data.items()
        if tag == "y":
            if type(body) is not int or body not in self._exported:
                raise ProtocolError("a reference to an object this side never sent")
            return self._exported[body]
        if tag == "b" and type(body) is str:
            return base64.b64decode(body)
        if tag in _VALUE_DECODE:
            try:
                return _VALUE_DECODE[tag](body)
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise ProtocolError(f"a malformed {tag!r} value: {exc}") from None
        if type(body) is not list:
            raise ProtocolError(f"a malformed {tag!r} value")
        items = [self.decode(v, depth + 1, budget) for v in body] if tag not in ("d", "mp") else None
        if tag == "l":
            return items
        if tag == "t":
            return tuple(items)
        if tag in ("s", "f"):
            try:
                return set(items) if tag == "s" else frozenset(items)
            except TypeError as exc:
                raise ProtocolError(f"an unhashable set item: {exc}") from None
        if tag in ("d", "mp"):
            out = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise ProtocolError("a malformed dict item")
                try:
                    out[self.decode(pair[0], depth + 1, budget)] = self.decode(pair[1], depth + 1, budget)
                except TypeError as exc:
                    raise ProtocolError(f"an unhashable dict key: {exc}") from None
            return out if tag == "d" else types.MappingProxyType(out)
        raise ProtocolError(f"an unknown value tag {tag!r}")

    def _proxy(self, ref: int, kind: str, type_name: str, qualname: str, signature: list | None,
               module: str = "") -> "RemoteObject":
        with self._proxy_lock:
            proxy = self._proxies.get(ref)
            if proxy is None:
                proxy = _proxy_class(type_name[:200], module[:200])(self, ref, kind[:20], type_name[:200],
                                                                    qualname[:200], signature)
                self._proxies[ref] = proxy
            return proxy
