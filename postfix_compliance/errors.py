"""Errors the suite reports as one clear line (never a traceback)."""


class UsageError(ValueError):
    """Bad input from the user: a host URL, a profile, a waiver file, an option."""


class EvidenceError(Exception):
    """A check could not be judged: a probe failed or printed what no parser understands."""


class HostUnreachable(EvidenceError):
    """The host could not be reached or refused us; none of its checks can be judged."""


class ConnectError(HostUnreachable):
    """A host could not be reached or refused us; str() is one line without the host's URL."""


class ConnectionLost(ConnectError):
    """An established connection went away while commands were running."""


class CommandTimeout(Exception):
    """A command produced no complete result before its client-side deadline."""
