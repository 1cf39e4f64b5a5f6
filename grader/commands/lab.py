"""``lab``: seed the learner's workspace from notebooks/ and open JupyterLab on it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..course import course_root
from ..workspace import DEFAULT_WORKSPACE, seed_workspace

NAME = "lab"
HELP = "copy new lessons into your workspace (never overwriting your work) and start JupyterLab there"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", type=Path, default=None,
                        help=f"folder with your working copies (default: {DEFAULT_WORKSPACE}/ in the course)")
    parser.add_argument("--port", type=int, default=8888, help="port to serve on (default 8888; the next free one is used if taken)")
    parser.add_argument("--no-browser", action="store_true", help="do not try to open a web browser")
    parser.add_argument("jupyter_args", nargs=argparse.REMAINDER,
                        help="after `--`: extra options passed to `jupyter lab` unchanged")


def run(args: argparse.Namespace) -> int:
    root = course_root()
    workspace = (args.workspace or root / DEFAULT_WORKSPACE).resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    report = seed_workspace(root / "notebooks", workspace)
    for path in report.copied:
        print(f"new lesson copied to {path.relative_to(workspace.parent)}")
    for path in report.kept:
        print(f"kept your work in {path.relative_to(workspace.parent)} (the course has a newer release in "
              f"notebooks/{path.parent.name}/; compare them if you want the update)")
    extra = [a for a in args.jupyter_args if a != "--"]
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={workspace}", "--ip=127.0.0.1",
           f"--port={args.port}"]
    if args.no_browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    print(f"starting JupyterLab on {workspace}; open the http://127.0.0.1:... URL it prints below")
    sys.stdout.flush()
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    # nbgrader's learner extensions (Assignments panel, Validate) treat the current folder as the
    # course folder: start in the workspace so fetched lessons land there, never in the checkout.
    os.chdir(workspace)
    os.execve(sys.executable, cmd + extra, env)
    return 0  # not reached
