"""The grader's error types, a leaf every layer may raise: the command line turns them into exit codes."""

__all__ = ["UsageError", "NbgraderFailed"]


class UsageError(Exception):
    """A command was given bad input; the message says what to do instead."""


class NbgraderFailed(RuntimeError):
    """An nbgrader command (or generating a lesson's release with it) failed; the message carries the end of its log."""
