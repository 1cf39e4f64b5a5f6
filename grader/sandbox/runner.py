"""The child side of the sandbox: run cells in a fresh IPython shell, report each one.

Started by ``grader.sandbox.parent`` as ``python -m grader.sandbox.runner RESULT_FD``. The
protocol (see ``grader.sandbox.parent``) is a conversation, so that nothing the
learner's code must not see is ever in this process before it is needed:

1. The parent sends one JSON line on stdin: the run's secret key and settings.
2. For each cell, the parent sends one line with the cell (its source
   encrypted with a keystream of the key and a fresh nonce) and waits; the
   runner runs it and writes one record, authenticated with an HMAC over the
   key, the cell index and the nonce, to the result fd. Only then does the
   parent send the next cell. Hidden tests therefore never exist on disk and
   are only in memory while they run.
3. The parent sends ``{"end": nonce}``; the runner answers with a final
   authenticated ``done`` record.

With the judge (``init["rpc_fd"]``, the default), test cells never come here:
they run in ``grader.sandbox.judge``, and this process serves the judge's requests for
the learner's names over the channel (``grader.sandbox.rpc``), in background threads,
between the cells it runs.

For a lesson that opted out of the judge, test cells come here too. Learner
cells run in the IPython shell; test cells do not: they are compiled
and executed by this module (never in IPython's history, ``In``/``Out`` or
``linecache``) in a copy of the learner's namespace, after the test helpers
the course relies on (``course_lib``, builtins, the modules the tests import
and the names course cells bound) were checked and restored. Everything
secret lives in ``main``'s local variables and closures, never in module
globals, and the audit hook (``grader.sandbox.guard``) blocks the usual ways to
reach another frame's locals (``sys._getframe``, ``gc``, traceback frames).
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import io
import json
import linecache
import os
import re
import signal
import sys
import time
import traceback
import types
from typing import Any

from .protocol import TESTS_FILENAME, CellTimeout, keystream_xor, load_grading_profile, timeout_record
from .strict import EQ_NAME, NE_NAME, rewrite_comparisons, strict_eq, strict_ne

_AST_ONLY = 0x400  # ast.PyCF_ONLY_AST

__all__ = ["main", "learner_place"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_DISPLAY_OUTPUTS = 20  # display_data outputs kept per cell


class _BoundedText(io.TextIOBase):
    """A text stream that keeps at most ``budget`` characters and notes what it dropped."""

    def __init__(self, name: str, budget: int) -> None:
        self.name, self.budget, self.parts, self.kept, self.dropped = name, budget, [], 0, 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        room = self.budget - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(len(text), room)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def output(self) -> dict[str, Any] | None:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[... {self.dropped} more characters of output were cut by the grader ...]\n"
        return {"output_type": "stream", "name": self.name, "text": text} if text else None


def _limited_display(data: dict[str, Any], budget: int) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for mime, value in data.items():
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        if not isinstance(value, str):
            value = json.dumps(value, default=str)
        if mime.startswith("image/") and len(value) <= 4 * budget * 10:
            clean[mime] = value
        elif not mime.startswith("image/"):
            clean[mime] = value[:budget]
    return clean


def _make_shell(outputs: list[dict[str, Any]], budget: int, cell_of: dict[str, int], current: list[int | None]):
    """The learner's IPython shell. ``cell_of`` gets the code name of each learner cell it compiles
    (``current[0]``, the index of the cell running, or None for a course cell)."""
    from IPython.core.compilerop import CachingCompiler
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    class _CellCompiler(CachingCompiler):
        def cache(self, transformed_code: str, number: int = 0, raw_code: str | None = None) -> str:
            name = super().cache(transformed_code, number, raw_code)
            if current[0] is not None:
                cell_of[name] = current[0]
            return name

    class _Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            if len(outputs) < MAX_DISPLAY_OUTPUTS:
                outputs.append({"output_type": "display_data", "data": _limited_display(data, budget),
                                "metadata": {}})

        def clear_output(self, wait=False):
            outputs.clear()

    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False  # no sqlite history file, no record of cells on disk
    shell = InteractiveShell.instance(display_pub_class=_Publisher, compiler_class=_CellCompiler, config=config)
    quiet = lambda *args, **kwargs: None  # noqa: E731 - tracebacks are reported, never printed
    shell._showtraceback = quiet
    shell.showtraceback = quiet
    shell.showsyntaxerror = quiet
    return shell


def learner_place(exc: BaseException, cell_of: dict[str, int], only: int | None = None) -> dict[str, Any] | None:
    """The innermost frame of a learner's cell in ``exc``'s traceback (of cell ``only``, if given).

    ``{"cell": index, "line": n, "function": name, "text": the line}``, or None: what the learner
    must look at when their code raised, sent with the exception to the judge (``grader.sandbox.rpc``).
    """
    tb = exc.__traceback__
    found = None
    for _ in range(500):  # a recursion's traceback is long; its innermost learner frame is near the end
        if type(tb) is not types.TracebackType:
            break
        code = tb.tb_frame.f_code
        cell = cell_of.get(code.co_filename)
        if cell is not None and (only is None or cell == only):
            found = (cell, tb.tb_lineno or 0, code.co_name, code.co_filename)
        tb = tb.tb_next
    if found is None or found[1] <= 0:
        return None
    cell, line, function, filename = found
    return {"cell": cell, "line": line, "function": "" if function == "<module>" else function,
            "text": linecache.getline(filename, line).strip()[:200]}


def _isinstance_syntax(exc: BaseException) -> bool:
    return isinstance(exc, SyntaxError) and type(exc).__module__ == "builtins"


def _error_record(exc: BaseException, kind: str, timeout: float, full_traceback: bool,
                  place: dict[str, Any] | None = None) -> dict[str, Any]:
    if isinstance(exc, CellTimeout):
        return timeout_record(timeout, "an endless loop, or far too slow")
    try:
        ename, evalue = type(exc).__name__, _ANSI.sub("", str(exc))[:2000]
    except BaseException:  # noqa: BLE001 - a learner's __str__ may raise anything
        ename, evalue = "Error", "(the exception's message could not be read)"
    record = {"status": "error", "ename": str(ename)[:200], "evalue": evalue}
    if _isinstance_syntax(exc):  # where the learner must look: the line, not the parser's own wording
        try:
            record["lineno"] = int(exc.lineno or 0)
            record["evalue"] = _ANSI.sub("", str(exc.msg or ""))[:500]
        except BaseException:  # noqa: BLE001 - a learner may raise a SyntaxError of their own making
            pass
    elif place is not None:  # the innermost line of this cell the error came through
        record["lineno"] = place["line"]
    if kind != "tests" and full_traceback:  # a test cell's traceback would show hidden test code
        try:
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-8)
            record["traceback"] = _ANSI.sub("", "".join(lines))[-6000:]
        except BaseException:  # noqa: BLE001
            pass
    return record


# --- tamper-evidence for what the tests rely on -------------------------------------------------

_TRUSTED_KINDS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type, types.ModuleType,
                  classmethod, staticmethod, property)


def _callables(namespace: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in list(namespace.items()) if isinstance(v, _TRUSTED_KINDS)}


def _snapshot_module(module: types.ModuleType) -> list[tuple[Any, dict[str, Any]]]:
    """(owner, {name: value}) for a module's functions and classes, and its classes' methods."""
    entries = [(module, _callables(vars(module)))]
    for value in list(vars(module).values()):
        if isinstance(value, type) and getattr(value, "__module__", None) == module.__name__:
            try:
                entries.append((value, _callables(dict(vars(value)))))
            except TypeError:
                pass
    return entries


def _check_and_restore(snapshot: list[tuple[Any, dict[str, Any]]]) -> list[str]:
    """Put back every snapshotted binding that changed; return their names."""
    changed = []
    for owner, names in snapshot:
        current = vars(owner)
        for name, value in names.items():
            if current.get(name, _check_and_restore) is not value:
                label = f"{getattr(owner, '__name__', '?')}.{name}"
                try:
                    if isinstance(owner, type):
                        type.__setattr__(owner, name, value)
                    else:
                        setattr(owner, name, value)
                except (AttributeError, TypeError):
                    label += " (could not be restored)"
                changed.append(label)
    return changed


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - one function on purpose: secrets stay in locals
    argv = sys.argv[1:] if argv is None else argv
    fd = int(argv[0])
    stdin = sys.stdin.buffer
    _loads, _dumps, _exec, _compile, _write_fd = json.loads, json.dumps, builtins.exec, builtins.compile, os.write
    _hmac_new, _sha256, _perf, _setitimer = hmac.new, hashlib.sha256, time.perf_counter, signal.setitimer
    _isinstance, _dict, _list, _str = isinstance, dict, list, str
    init = _loads(stdin.readline())
    seed, mpl = init.get("seed"), os.environ.get("MPLCONFIGDIR")
    if seed and mpl and os.path.isdir(os.path.join(seed, "mpl")):  # matplotlib's font cache, built once
        import shutil

        shutil.copytree(os.path.join(seed, "mpl"), mpl, dirs_exist_ok=True)
    key = bytes.fromhex(init.pop("key"))
    budget = int(init["max_output_chars"])
    guarded = bool(init.get("guard", True))

    def send(record: dict[str, Any]) -> None:
        body = _dumps({k: v for k, v in record.items() if k != "mac"}, sort_keys=True, default=str)
        record["mac"] = _hmac_new(key, body.encode(), _sha256).hexdigest()
        data = (_dumps(record, default=str) + "\n").encode()
        while data:
            data = data[_write_fd(fd, data):]

    real_out, real_err = sys.stdout, sys.stderr
    outputs: list[dict[str, Any]] = []
    if init.get("rpc_fd") is None:  # the tests run here; with the judge, hypothesis is the judge's to load
        load_grading_profile()
    cell_of: dict[str, int] = {}  # code name -> index of the learner's cell it was compiled from
    running: list[int | None] = [None]
    shell = _make_shell(outputs, budget, cell_of, running)
    # Modules the tests import are imported now, before any learner code, and watched.
    watched: list[tuple[Any, dict[str, Any]]] = [(builtins, _callables(vars(builtins)))]
    for name in init.get("preload", []):
        try:
            __import__(name)
            if name == "course_lib" and init.get("rpc_fd") is None:  # the tests run here and rely on all of it:
                for sub in sys.modules["course_lib"].SUBMODULES:  # the submodules it loads on first use too
                    __import__(f"course_lib.{sub}")
            prefix = name + "."
            for mod_name, module in list(sys.modules.items()):
                if (mod_name == name or (name == "course_lib" and mod_name.startswith(prefix))) \
                        and _isinstance(module, types.ModuleType):
                    watched.extend(_snapshot_module(module))
        except BaseException:  # noqa: BLE001 - a missing optional module is the tests' business
            pass
    user_ns = shell.user_ns
    if init.get("rpc_fd") is not None:  # the tests run in the judge and reach this namespace through a channel
        import socket

        from .rpc.endpoint import Endpoint
        from .rpc.policy import Policy

        def lookup(name: str) -> Any:
            try:
                return user_ns[name]
            except KeyError:
                raise NameError(f"name {name!r} is not defined") from None

        endpoint = Endpoint(socket.socket(fileno=int(init["rpc_fd"])), Policy(), name="learner", root=lookup)
        endpoint.locate = lambda exc: learner_place(exc, cell_of)
        # The tests' threads drive this process from the judge, where their sys.setswitchinterval cannot
        # reach: switch often here, so a race in the learner's code shows up as it would in one interpreter.
        sys.setswitchinterval(1e-4)
    course_bindings: dict[str, Any] = {}  # names course cells bound to functions/classes/modules
    tests_private: dict[str, Any] = {}  # functions and classes the test cells defined

    def on_alarm(signum, frame):
        raise CellTimeout("the cell ran past its time budget")

    signal.signal(signal.SIGALRM, on_alarm)
    if guarded:
        from .guard import install

        install(scratch=init.get("scratch", os.getcwd()), deny=init.get("deny", []), allow=init.get("allow", []),
                connect=init.get("connect", []))
    while True:
        line = stdin.readline()
        if not line:
            return 3  # the parent went away (or someone stole our input)
        message = _loads(line)
        if "end" in message:
            send({"done": True, "nonce": message["end"]})
            return 0
        index, nonce, kind = int(message["index"]), _str(message["nonce"]), _str(message.get("kind", ""))
        source = keystream_xor(key, nonce, base64.b64decode(message["source"])).decode("utf-8", "replace")
        timeout = float(message.get("timeout") or init["cell_timeout"])
        message = line = None
        outputs.clear()
        out, err = _BoundedText("stdout", budget), _BoundedText("stderr", budget)
        record: dict[str, Any] = {"index": index, "nonce": nonce, "status": "ok"}
        restored: list[str] = []
        if kind == "tests":
            restored = _check_and_restore(watched)
            for name, value in course_bindings.items():
                if user_ns.get(name, _check_and_restore) is not value:
                    user_ns[name] = value
                    restored.append(name)
            user_ns["__builtins__"] = builtins
        sys.stdout, sys.stderr = out, err
        start = _perf()
        try:
            if kind == "tests":
                namespace = _dict(user_ns)  # learner threads cannot rebind names under the tests' feet
                namespace.update(tests_private)
                _setitimer(signal.ITIMER_REAL, timeout)
                try:
                    tree = rewrite_comparisons(_compile(source, TESTS_FILENAME, "exec", _AST_ONLY, dont_inherit=True))
                    code = _compile(tree, TESTS_FILENAME, "exec", dont_inherit=True)
                    namespace[EQ_NAME], namespace[NE_NAME] = strict_eq, strict_ne
                    tree = None
                    source = None
                    _exec(code, namespace)
                finally:
                    _setitimer(signal.ITIMER_REAL, 0)
                    code = None
                during = _check_and_restore(watched)
                if during:
                    raise RuntimeError("the grader's test helpers were changed while the tests ran: "
                                       + ", ".join(during[:5]))
                for name, value in namespace.items():  # keep the values later cells may use
                    if user_ns.get(name, _check_and_restore) is value:
                        continue
                    if _isinstance(value, (types.FunctionType, type)):
                        tests_private[name] = value  # hidden test helpers stay out of the learner's reach
                    else:
                        user_ns[name] = value
                namespace = None
            else:
                before = _callables(user_ns) if kind == "course" else {}
                running[0] = index if kind in ("answer", "learner") else None
                _setitimer(signal.ITIMER_REAL, timeout)
                try:
                    result = shell.run_cell(source, store_history=False, silent=False)
                finally:
                    _setitimer(signal.ITIMER_REAL, 0)
                    running[0] = None
                exc = result.error_before_exec or result.error_in_exec
                result = None
                if exc is not None:
                    record.update(_error_record(exc, kind, timeout, not guarded, learner_place(exc, cell_of, index)))
                exc = None
                if kind == "course":  # what a course cell binds (imports, helpers) the tests may rely on
                    for name, value in _callables(user_ns).items():
                        # imported helpers only: a function the course cell defined itself may be wrapped
                        # or redefined by the learner on purpose ("decorate fetch with your cache")
                        if before.get(name) is not value and (
                                _isinstance(value, types.ModuleType)
                                or getattr(value, "__module__", "__main__") not in ("__main__", None)):
                            course_bindings[name] = value
                before = None
        except BaseException as exc:  # noqa: BLE001 - a timeout, or anything the tests raised
            try:
                _setitimer(signal.ITIMER_REAL, 0)
            except BaseException:  # noqa: BLE001
                pass
            record.update(_error_record(exc, kind, timeout, not guarded))
            exc = None
        finally:
            sys.stdout, sys.stderr = real_out, real_err
        record["seconds"] = round(_perf() - start, 4)
        if restored:
            record["restored"] = restored[:20]
        if kind == "tests":
            record["outputs"] = []  # what a test cell prints may quote hidden tests: never reported
        else:
            record["outputs"] = [o for o in (out.output(), err.output()) if o] + _list(outputs)
        send(record)


if __name__ == "__main__":
    sys.exit(main())
