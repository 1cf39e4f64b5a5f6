"""``python -m grader``: one command-line interface, one module per subcommand.

Each module in ``grader.commands`` defines ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``; adding a command means adding a module and listing it here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from .course.cells import NotebookUnreadable
from .errors import NbgraderFailed, UsageError

# jsonschema (under nbformat) imports rfc3987_syntax when it is installed, and that module builds a parser
# at import time: about 1.6 s on every command. nbformat's notebook schema has no IRI formats, so the
# grader's commands do without it (a subprocess such as nbgrader or JupyterLab is not affected).
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]

__all__ = ["main", "COMMANDS"]

COMMANDS = (
    "lab", "check", "progress",  # learners
    "release", "students", "deadline", "collect", "import_submissions", "autograde", "serve", "feedback", "report", "export",
    "demo",  # instructors
    "new_lesson", "generate", "grade", "dev_check",  # course authors
)


def build_parser() -> argparse.ArgumentParser:
    prog = Path(sys.argv[0]).name if Path(sys.argv[0]).name in ("course-grader", "course") else "python -m grader"
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The caching course's grader, over nbgrader's exchange and gradebook.",
        epilog=f"learners:    {prog} lab | check [LESSON] | progress\n"
               f"instructors: {prog} release | collect (or import) | autograde | feedback --release | report | export\n"
               f"             or grade on submit: {prog} serve --exchange DIR --release-feedback\n"
               f"try it all:  {prog} demo\n"
               "guides: docs/LEARNERS.md, docs/INSTRUCTORS.md; `COMMAND --help` for each command's options")
    parser.add_argument("--course", type=Path, metavar="DIR",
                        help="the course folder to work on (default: $COURSE_ROOT, else this checkout)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMANDS:
        module = importlib.import_module(f"grader.commands.{module_name}")
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.course is not None:
        if not (args.course / "solutions").is_dir() and not (args.course / "course_lib" / "course.toml").is_file():
            print(f"error: {args.course} is not a course folder (no solutions/ and no course_lib/course.toml)",
                  file=sys.stderr)
            return 2
        os.environ["COURSE_ROOT"] = str(args.course.resolve())
    from course_lib.manifest import ManifestError

    try:
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (NbgraderFailed, ManifestError, NotebookUnreadable, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to continue", file=sys.stderr)
        return 130
