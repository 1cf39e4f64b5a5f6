"""The child side of the sandbox: run cells in a fresh IPython shell, report each one.

Started by ``grader.sandbox`` as ``python -m grader.runner RESULT_FD``. The
request (cells and limits) arrives as JSON on stdin; one JSON line per cell
goes to the result pipe as soon as the cell ends, so a crash or a kill later
on loses nothing already decided. Real stdout and stderr are discarded by the
parent: the only way out is the result pipe.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import sys
import time
import traceback
from typing import Any

__all__ = ["main"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class CellTimeout(BaseException):
    """Raised inside a cell that ran past its time budget."""


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


def _make_shell(outputs: list[dict[str, Any]], budget: int):
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    class _Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            outputs.append({"output_type": "display_data", "data": _limited_display(data, budget),
                            "metadata": metadata or {}})

        def clear_output(self, wait=False):
            outputs.clear()

    shell = InteractiveShell.instance(display_pub_class=_Publisher)
    shell._showtraceback = lambda *args, **kwargs: None  # tracebacks are reported, never printed
    return shell


def _load_grading_profile() -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:
        return
    settings.register_profile(
        "grading", derandomize=True, database=None, deadline=None, print_blob=False,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.load_profile("grading")


def _on_alarm(signum, frame):
    raise CellTimeout("the cell ran past its time budget")


def _error_record(exc: BaseException, kind: str, timeout: float) -> dict[str, Any]:
    if isinstance(exc, CellTimeout):
        return {"status": "timeout", "ename": "Timeout",
                "evalue": f"the cell did not finish within {timeout:g} s (an endless loop, or far too slow)"}
    record = {"status": "error", "ename": type(exc).__name__, "evalue": _ANSI.sub("", str(exc))[:4000]}
    if kind != "tests":  # a test cell's traceback would show hidden test code
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-8)
        record["traceback"] = _ANSI.sub("", "".join(lines))[-6000:]
    return record


def _write(fd: int, record: dict[str, Any]) -> None:
    data = (json.dumps(record, default=str) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    fd = int(argv[0])
    request = json.load(sys.stdin)
    budget = int(request.get("max_output_chars", 20_000))
    real_out, real_err = sys.stdout, sys.stderr
    outputs: list[dict[str, Any]] = []
    _load_grading_profile()
    shell = _make_shell(outputs, budget)
    signal.signal(signal.SIGALRM, _on_alarm)
    for index, cell in enumerate(request["cells"]):
        outputs.clear()
        out, err = _BoundedText("stdout", budget), _BoundedText("stderr", budget)
        sys.stdout, sys.stderr = out, err
        timeout = float(cell.get("timeout", 60))
        start = time.perf_counter()
        record: dict[str, Any] = {"index": index, "status": "ok"}
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            result = shell.run_cell(cell["source"], store_history=True)
            signal.setitimer(signal.ITIMER_REAL, 0)
            exc = result.error_before_exec or result.error_in_exec
            if exc is not None:
                record.update(_error_record(exc, cell.get("kind", ""), timeout))
        except BaseException as exc:  # a timeout between IPython's own handlers
            signal.setitimer(signal.ITIMER_REAL, 0)
            record.update(_error_record(exc, cell.get("kind", ""), timeout))
        finally:
            sys.stdout, sys.stderr = real_out, real_err
        record["seconds"] = round(time.perf_counter() - start, 4)
        record["outputs"] = [o for o in (out.output(), err.output()) if o] + list(outputs)
        _write(fd, record)
    _write(fd, {"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
