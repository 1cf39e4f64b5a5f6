"""The shell of JupyterLab's terminals under ``lab``: the learner's own shell, with the course first on PATH.

jupyter_server starts ``$SHELL -l`` when it was not started from a terminal, and a login shell's
profile rebuilds PATH (Debian's /etc/profile sets it from scratch; conda, pyenv or Homebrew lines in
~/.profile or ~/.bashrc put their own Python first). So whatever the server's PATH says, the venv is
gone by the time the prompt shows. ``lab`` therefore starts terminals with
``python -m grader.lab.shell``, which runs the learner's shell as a login shell and puts the course's bin
folder (``python``, ``course``, ``nbgrader``) first *after* the shell's own start-up files:

- bash: ``--rcfile`` with a file that reads what a login bash reads, then prepends;
- zsh: ``ZDOTDIR`` pointing at files that read the learner's own, then prepend;
- fish: ``--init-command``, which fish runs after its configuration;
- sh, dash, ksh, mksh: the ``ENV`` file an interactive POSIX shell reads after the profile;
- any other shell: started as it is, with PATH set (and a note if its profile changed it).

``python -m grader.lab.shell --print-path`` prints the PATH a terminal would get (for the tests).
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import sys
from pathlib import Path

__all__ = ["main", "shell_command", "course_bin"]

RC_DIR_ENV = "COURSE_SHELL_DIR"


def course_bin() -> Path:
    return Path(sys.executable).parent


def _user_shell() -> str:
    shell = os.environ.get("SHELL") or ""
    if not shell:
        try:
            shell = pwd.getpwuid(os.getuid()).pw_shell
        except KeyError:
            shell = ""
    return shell if shell and shutil.which(shell) else (shutil.which("bash") or shutil.which("sh") or "/bin/sh")


def _prepend(bin_dir: Path) -> str:
    return f'PATH={shlex.quote(str(bin_dir))}:"$PATH"\nexport PATH\n'


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def shell_command(shell: str, rc_dir: Path, bin_dir: Path) -> tuple[list[str], dict[str, str]]:
    """The command and extra environment that start ``shell`` as a login shell with ``bin_dir`` first on PATH."""
    name = Path(shell).name
    prepend = _prepend(bin_dir)
    if name == "bash":
        rc = _write(rc_dir / "bashrc", (
            "# written by `python -m grader lab`: a login bash's start-up, then the course first on PATH\n"
            "[ -r /etc/profile ] && . /etc/profile\n"
            "for _f in ~/.bash_profile ~/.bash_login ~/.profile; do [ -r \"$_f\" ] && { . \"$_f\"; break; }; done\n"
            "unset _f\n"
            "[ -r ~/.bashrc ] && [ ! -r ~/.bash_profile ] && [ ! -r ~/.bash_login ] && [ ! -r ~/.profile ] && . ~/.bashrc\n"
            + prepend))
        return [shell, "--rcfile", str(rc), "-i"], {}
    if name == "zsh":
        home = os.environ.get("ZDOTDIR") or os.path.expanduser("~")
        for part in ("zshenv", "zprofile", "zlogin"):
            _write(rc_dir / "zsh" / f".{part}",
                   f'[ -r {shlex.quote(home)}/.{part} ] && ZDOTDIR={shlex.quote(home)} . {shlex.quote(home)}/.{part}\n')
        _write(rc_dir / "zsh" / ".zshrc",
               f'[ -r {shlex.quote(home)}/.zshrc ] && ZDOTDIR={shlex.quote(home)} . {shlex.quote(home)}/.zshrc\n'
               + prepend + f"ZDOTDIR={shlex.quote(home)}\n")
        return [shell, "-l"], {"ZDOTDIR": str(rc_dir / "zsh")}
    if name == "fish":
        return [shell, "-l", "--init-command", f"fish_add_path --move --prepend {shlex.quote(str(bin_dir))}"], {}
    if name in ("sh", "dash", "ksh", "mksh", "ash", "busybox"):
        user_env = os.environ.get("ENV", "")
        env_file = _write(rc_dir / "shrc", (f'[ -r {shlex.quote(user_env)} ] && . {shlex.quote(user_env)}\n'
                                            if user_env else "") + prepend)
        return [shell, "-l", "-i"], {"ENV": str(env_file)}
    return [shell, "-l"], {}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    bin_dir = course_bin()
    rc_dir = Path(os.environ.get(RC_DIR_ENV) or Path.home() / ".cache" / "caching-course-shell")
    shell = _user_shell()
    cmd, extra = shell_command(shell, rc_dir, bin_dir)
    env = {**os.environ, **extra, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    if argv[:1] == ["--print-path"]:  # what PATH an interactive terminal ends up with, for tests
        import subprocess

        probe = subprocess.run(cmd, input='printf "%s\\n" "$PATH"; exit\n', env=env, capture_output=True, text=True,
                               timeout=60)
        print(probe.stdout.strip().splitlines()[-1] if probe.stdout.strip() else "")
        return probe.returncode
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
