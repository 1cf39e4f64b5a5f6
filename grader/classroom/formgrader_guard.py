"""A Jupyter server extension: the formgrader's Autograde and feedback buttons run this course's grader.

nbgrader's formgrader posts to ``/formgrader/api/submission/<lesson>/<student>/autograde`` and
``/formgrader/api/assignment/<lesson>[/<student>]/{generate,release}_feedback``; its own handlers
would run plain ``nbgrader autograde`` (learner code unsandboxed, our failure comments erased) and
``nbgrader generate_feedback`` (a page that shows the hidden tests). This extension answers those
URLs first and runs ``python -m grader autograde|feedback`` for the course folder the formgrader
is working on, in a subprocess that does not block the server, and returns what nbgrader's page
expects (``{"success", "log", "error"}``) so the formgrader shows our grader's output in its dialog.
Every other formgrader page and API is nbgrader's own.

Enabled in the instructor's environment with
``jupyter server extension enable --sys-prefix grader.classroom.formgrader_guard`` (``make`` does it for the
course's ``.venv``). ``COURSE_FORMGRADER_BUTTONS=off`` makes the buttons refuse with the command to
run instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["_jupyter_server_extension_points", "_load_jupyter_server_extension", "grader_command"]

_ACTIONS = {"autograde", "generate_feedback", "release_feedback"}


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "grader.classroom.formgrader_guard"}]


def grader_command(root: Path, action: str, lesson: str, student: str | None, exchange: str | None) -> list[str]:
    """The grader command a formgrader button stands for."""
    base = [sys.executable, "-m", "grader", "--course", str(root)]
    who = ["--student", student] if student else []
    if action == "autograde":
        return base + ["autograde", lesson, *who, "--force", "--quiet"]
    release = ["--release", *(["--exchange", exchange] if exchange else [])] if action == "release_feedback" else []
    return base + ["feedback", lesson, *who, *release]


def _shown(cmd: list[str]) -> str:
    return "python -m grader " + " ".join(cmd[cmd.index("grader") + 1:])


def _handler_class() -> Any:
    from jupyter_server.base.handlers import JupyterHandler
    from tornado import web

    class GraderButtonHandler(JupyterHandler):
        """Run the course's grader for a formgrader button."""


        @web.authenticated
        async def post(self, *groups: str) -> None:
            action = self.request.path.rstrip("/").rsplit("/", 1)[-1]
            lesson, student = groups[0], (groups[1] if len(groups) > 1 else None)
            formgrader = self.settings.get("nbgrader_formgrader")
            if formgrader is None:
                raise web.HTTPError(404)
            formgrader.coursedir._load_config(formgrader.load_config())  # as nbgrader's own handlers do
            root = Path(formgrader.coursedir.root).resolve()
            config = formgrader.load_config()
            exchange = config.Exchange.root if "root" in config.Exchange else None
            cmd = grader_command(root, action, lesson, student, exchange)
            if os.environ.get("COURSE_FORMGRADER_BUTTONS", "on").lower() in ("off", "0", "no"):
                message = (f"This button is disabled in this course: nbgrader's own {action.replace('_', ' ')} "
                           f"would bypass the course's sandboxed grader. Run in a terminal:\n\n  {_shown(cmd)}")
                self.finish(json.dumps({"success": False, "log": message, "error": message}))
                return
            env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
            proc = await asyncio.create_subprocess_exec(*cmd, cwd=root, env=env, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.STDOUT)
            out, _ = await proc.communicate()
            log = f"$ {_shown(cmd)}\n{out.decode(errors='replace')}"
            self.log.info("formgrader button %s ran the course's grader: exit %s", action, proc.returncode)
            self.finish(json.dumps({"success": proc.returncode == 0, "log": log,
                                    "error": "" if proc.returncode == 0 else f"the grader exited with {proc.returncode}"}))

    return GraderButtonHandler


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from jupyter_server.utils import url_path_join
    from tornado.routing import HostMatches, Rule
    from tornado.web import _ApplicationRouter

    webapp = serverapp.web_app
    handler = _handler_class()
    base = webapp.settings["base_url"]
    routes = [(url_path_join(base, pattern), handler) for pattern in (
        r"/formgrader/api/submission/([^/]+)/([^/]+)/autograde",
        r"/formgrader/api/assignment/([^/]+)/([^/]+)/(?:generate|release)_feedback",
        r"/formgrader/api/assignment/([^/]+)/(?:generate|release)_feedback",
    )]
    # Ahead of every other rule (nbgrader's formgrader adds its handlers with the same URLs).
    webapp.default_router.rules.insert(0, Rule(HostMatches(".*$"), _ApplicationRouter(webapp, routes)))
    serverapp.log.info("grader.classroom.formgrader_guard: the formgrader's Autograde and feedback buttons run the course's grader")


load_jupyter_server_extension = _load_jupyter_server_extension  # the older name, for older servers
