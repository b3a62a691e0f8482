"""Which AVC denials are Postfix's, and which of those a login session caused: the one filter that AVC-002,
triage and the baseline comparison share.

A denial whose target is a login session's pipe, terminal, socket or descriptor (Postfix's `sendmail` or
`postdrop` run from an SSH shell inherit the shell's stdin/stdout/stderr, and the policy does not let
postfix_postdrop_t use them) says how a person used the host, not how mail flows: it is labelled so that
reports and triage tell it apart from a denial on the queue, spool or configuration. The target types that
make a login session are policy names, so they live in the profiles (audit.login_session_types).
"""

from __future__ import annotations

from typing import Iterable, TypeVar

from postfix_compliance.facts.model import context_type

# The object classes through which a process touches descriptors it inherited from a session.
SESSION_CLASSES = frozenset({"fifo_file", "chr_file", "fd", "unix_stream_socket", "tcp_socket", "sock_file"})

D = TypeVar("D")


def _field(denial: object, key: str) -> str | None:
    """Parsed denials (facts) and their dict form (results.json, the baseline) alike."""
    return denial.get(key) if isinstance(denial, dict) else getattr(denial, key, None)


def is_postfix(denial: object, prefix: str) -> bool:
    return (context_type(_field(denial, "scontext")) or "").startswith(prefix)


def is_login_session(denial: object, session_types: Iterable[str]) -> bool:
    """The denied object is a login session's descriptor (pipe, terminal, socket, fd) by its type and class."""
    return _field(denial, "tclass") in SESSION_CLASSES \
        and context_type(_field(denial, "tcontext")) in set(session_types)


def postfix_denials(denials: Iterable[D], prefix: str, session_types: Iterable[str] = ()
                    ) -> tuple[list[D], list[D]]:
    """(denials that concern mail flow, login-session denials), both from Postfix domains only."""
    types = tuple(session_types)
    mail, session = [], []
    for denial in denials:
        if not is_postfix(denial, prefix):
            continue
        (session if is_login_session(denial, types) else mail).append(denial)
    return mail, session
