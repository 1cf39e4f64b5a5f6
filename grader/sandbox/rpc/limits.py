"""The channel's limits: how big, deep and busy one message and one channel may get."""

__all__ = ["MAX_FRAME_BYTES", "MAX_DEPTH", "MAX_ITEMS", "MAX_TEXT", "MAX_THREADS", "PRESTARTED_THREADS", "MAX_BACKLOG"]

MAX_FRAME_BYTES = 16 * 1024 * 1024  # one message; a bigger one ends the channel
MAX_DEPTH = 64  # nesting of containers in one value
MAX_ITEMS = 200_000  # plain values in one message
MAX_TEXT = 4_000  # characters of a repr/str or an error message
MAX_THREADS = 64  # the channel's threads at most (requests served at once besides nested callbacks)
PRESTARTED_THREADS = 5  # started with the channel (one reads), before a sandbox limits threads
MAX_BACKLOG = 1_024  # requests waiting for a thread; each caller waits for its reply, so more is a flood
