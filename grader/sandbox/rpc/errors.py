"""How the channel fails: the peer went away, broke the protocol, or raised an exception of an unknown type."""

__all__ = ["ChannelClosed", "ProtocolError", "RemoteError"]


class ChannelClosed(ConnectionError):
    """The other side went away (the learner's process ended, or was stopped)."""


class ProtocolError(ConnectionError):
    """The other side sent something that is not a valid message; the channel is closed."""


class RemoteError(Exception):
    """An exception of a type this side does not know, raised by the other side."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name, self.message = type_name, message
