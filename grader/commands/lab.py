"""``lab``: seed the learner's workspace from notebooks/ and open JupyterLab on it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..course.layout import course_root, load
from ..lab.shell import RC_DIR_ENV
from ..lab.workspace import DEFAULT_WORKSPACE, WORKSPACE_ENV, seed_workspace

CONFIG_DIR = Path(".grader") / "jupyter"  # in the workspace: on JUPYTER_CONFIG_PATH for this lab only
INSTRUCTOR_LAB = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment")
EXCHANGE_LAB = ("@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:course-list")
INSTRUCTOR_SERVER = ("nbgrader.server_extensions.formgrader",)
EXCHANGE_SERVER = ("nbgrader.server_extensions.assignment_list", "nbgrader.server_extensions.course_list")
DEFAULT_EXCHANGE = "/usr/local/share/nbgrader/exchange"
LEARNER_SERVER = "grader.lab.validate"  # Validate's dialog shows each failed check's message


def configured_exchange(workspace: Path) -> Path:
    """The exchange nbgrader's Assignments panel would use in this lab (``Exchange.root``)."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config.loader import Config, PyFileConfigLoader

    merged = Config()
    folders = [workspace] + [Path(p) for p in jupyter_config_path()]
    for folder in reversed(folders):  # later files win, as in nbgrader: the workspace's last
        if (folder / "nbgrader_config.py").is_file() and folder != workspace / CONFIG_DIR:
            try:
                merged.merge(PyFileConfigLoader("nbgrader_config.py", path=str(folder)).load_config())
            except Exception as exc:  # noqa: BLE001 - a broken config is nbgrader's to report
                print(f"warning: {folder / 'nbgrader_config.py'} could not be read ({exc})", file=sys.stderr)
    root = merged.get("Exchange", {}).get("root") if "Exchange" in merged else None
    return Path(str(root or DEFAULT_EXCHANGE))


def write_learner_config(workspace: Path, *, exchange: bool) -> Path:
    """This lab's own Jupyter config (never the user's): a learner's JupyterLab.

    The instructor extensions (Formgrader, Create Assignment) are off; the Assignments panel and the
    course list only when an exchange is configured and exists; terminals start the learner's shell
    with the course's bin first on PATH (``grader.lab.shell``); Validate reports a failed check by its
    message (``grader.lab.validate``); an (empty) nbgrader_config.py, so
    nbgrader's extensions do not warn that none was found.
    """
    folder = workspace / CONFIG_DIR
    (folder / "labconfig").mkdir(parents=True, exist_ok=True)
    off_lab = INSTRUCTOR_LAB + (() if exchange else EXCHANGE_LAB)
    off_server = INSTRUCTOR_SERVER + (() if exchange else EXCHANGE_SERVER)
    (folder / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {name: True for name in off_lab}}, indent=1))
    extensions = {**{name: False for name in off_server}, LEARNER_SERVER: True}
    server = {"ServerApp": {"jpserver_extensions": extensions,
                            "terminado_settings": {"shell_command": [sys.executable, "-m", "grader.lab.shell"]}}}
    (folder / "jupyter_server_config.json").write_text(json.dumps(server, indent=1))
    (folder / "nbgrader_config.py").write_text(
        "# written by `python -m grader lab` (the learner's lab); your own settings go in ~/.jupyter/nbgrader_config.py\n"
        "c = get_config()  # noqa: F821\n")
    return folder

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
    times = {l.slug: l.expected_time for l in load().lessons}
    for path in report.copied:
        took = times.get(path.parent.name, "")
        print(f"new lesson copied to {path.relative_to(workspace.parent)}" + (f" ({took})" if took else ""))
    for path in report.kept:
        print(f"kept your work in {path.relative_to(workspace.parent)} (the course has a newer release in "
              f"notebooks/{path.parent.name}/ than the one your copy was made from; compare them if you want "
              f"the update)")
    exchange = configured_exchange(workspace)
    has_exchange = exchange.is_dir()
    config = write_learner_config(workspace, exchange=has_exchange)
    if not has_exchange:
        print(f"no nbgrader exchange at {exchange}: the Assignments panel is hidden (on JupyterHub, set "
              f"c.Exchange.root in ~/.jupyter/nbgrader_config.py)")
    extra = [a for a in args.jupyter_args if a != "--"]
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={workspace}", "--ip=127.0.0.1",
           f"--port={args.port}"]
    if args.no_browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    print(f"starting JupyterLab on {workspace}; open the http://127.0.0.1:... URL it prints below")
    sys.stdout.flush()
    config_path = os.pathsep.join(p for p in (str(config), os.environ.get("JUPYTER_CONFIG_PATH", "")) if p)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
           "JUPYTER_CONFIG_PATH": config_path, WORKSPACE_ENV: str(workspace),
           RC_DIR_ENV: str(workspace / ".grader" / "shell")}
    # nbgrader's learner extensions (Assignments panel, Validate) treat the current folder as the
    # course folder: start in the workspace so fetched lessons land there, never in the checkout.
    os.chdir(workspace)
    os.execve(sys.executable, cmd + extra, env)
    return 0  # not reached
