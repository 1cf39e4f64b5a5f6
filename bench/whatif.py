"""What-if: the sandboxed runner started without running ``grader/__init__.py`` (proposal 1 of the report).

The grader starts the learner's process as ``python -m grader.runner FD``,
which imports the whole ``grader`` package first. Here the sandbox module is
given a ``subprocess`` whose Popen swaps those two arguments for
``-c <code>`` that registers an empty ``grader`` package (no ``__init__``) and
runs ``grader.runner`` as ``__main__``: the same runner, the same protections,
the same cells, without the package's imports. Nothing in grader/ is changed.
"""

from __future__ import annotations

import subprocess as _subprocess
from contextlib import contextmanager
from typing import Iterator


def _code() -> str:
    import grader

    return ("import sys, types; m = types.ModuleType('grader'); m.__path__ = [%r]; sys.modules['grader'] = m; "
            "import runpy; runpy.run_module('grader.runner', run_name='__main__', alter_sys=True)"
            % list(grader.__path__)[0])


class _LazySubprocess:
    def __init__(self) -> None:
        self.code, self.swapped = _code(), 0

    def __getattr__(self, name):
        return getattr(_subprocess, name)

    def Popen(self, args, *a, **kw):  # noqa: N802 - mirrors subprocess.Popen
        args = list(args)
        for i in range(len(args) - 1):
            if args[i] == "-m" and args[i + 1] == "grader.runner":
                args[i:i + 2] = ["-c", self.code]
                self.swapped += 1
                break
        return _subprocess.Popen(args, *a, **kw)


@contextmanager
def lazy_runner() -> Iterator[_LazySubprocess]:
    """Within the block, grade_notebook starts its runner without grader/__init__.py."""
    import grader.sandbox as sandbox

    if getattr(sandbox, "subprocess", None) is not _subprocess:
        raise RuntimeError("grader.sandbox no longer starts its runner through the subprocess module")
    patched = _LazySubprocess()
    sandbox.subprocess = patched
    try:
        yield patched
    finally:
        sandbox.subprocess = _subprocess
