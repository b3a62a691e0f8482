"""Helpers every parser shares: the early exits (no result, tool missing, subsystem absent)
and the wording of `Unparsed` reasons."""

from __future__ import annotations

import functools
import re
from typing import Callable, Iterable, TypeVar

from ..evidence import Evidence
from ..model import Unavailable, Unparsed

T = TypeVar("T")

# How shells, sudo, env and timeout(1) say the executable is not there (exit 127 covers most,
# but sudo exits 1 and a broken interpreter line exits 126).
_TOOL_MISSING = re.compile(
    r"command not found|^(?:\S+: )+\S+: not found$|bad interpreter|failed to run command|unable to execute",
    re.MULTILINE)

# What SELinux userland prints on a host whose kernel has no SELinux or no policy loaded.
SELINUX_ABSENT = (
    "SELinux is disabled",
    "SELinux policy is not managed",
    "Could not open kernel policy",
    "Error while opening file contexts database",
)


def lines(text: str) -> list[str]:
    """Non-blank lines, right-stripped. Only \n ends a line: str.splitlines() would also split
    at \x1d, which the audit log's ENRICHED format uses inside a record."""
    return [line.rstrip() for line in text.split("\n") if line.strip()]


def quote(line: str, limit: int = 160) -> str:
    return repr(line if len(line) <= limit else line[:limit] + "...")


def unexpected(ev: Evidence, line: str, what: str = "unexpected line") -> Unparsed:
    return Unparsed(ev.probe, f"{what}: {quote(line)}")


def failure(ev: Evidence) -> Unparsed:
    """A command that failed for a reason the parser does not know: quote what it said."""
    said = lines(ev.stderr) or lines(ev.stdout)
    if said:
        return Unparsed(ev.probe, f"exit {ev.exit_status}: {quote(said[0].strip())}")
    return Unparsed(ev.probe, f"exit {ev.exit_status} with no output")


def first_match(text: str, needles: Iterable[str]) -> str | None:
    """The first line of `text` containing one of `needles`."""
    needles = tuple(needles)
    for line in lines(text):
        if any(needle in line for needle in needles):
            return line.strip()
    return None


def precheck(ev: Evidence, absent: Iterable[str] = ()) -> Unparsed | Unavailable | None:
    """The outcomes that do not depend on the probe's format."""
    if ev.error is not None:
        return Unparsed(ev.probe, f"no result: {ev.error}")
    if ev.exit_status == 127 or _TOOL_MISSING.search(ev.stderr):
        said = lines(ev.stderr)
        return Unavailable(ev.probe, f"tool missing: {said[0].strip() if said else 'exit 127'}")
    if ev.exit_status == 126:
        # Found but not executable by this login. Seen for real: on Debian's refpolicy, root over
        # SSH (unconfined_t) may not run /usr/sbin/postfix (postfix_master_exec_t).
        said = lines(ev.stderr)
        return Unavailable(ev.probe, "cannot be executed by this login (exit 126"
                           + (f": {said[0].strip()}" if said else "") + "); under SELinux the login's "
                           "domain may not be allowed to enter the command's domain")
    # A command that succeeded printed data on stdout; only a failing one may explain itself there.
    said = ev.stderr if ev.exit_status == 0 else ev.stderr + "\n" + ev.stdout
    line = first_match(said, absent)
    if line is not None:
        return Unavailable(ev.probe, line)
    return None


def parser(*absent: str) -> Callable[[Callable[[Evidence], T]], Callable[[Evidence], T | Unparsed | Unavailable]]:
    """Decorate a parser body with `precheck`; `absent` lists the wordings that mean the
    subsystem is not there (-> Unavailable)."""

    def wrap(body: Callable[[Evidence], T]) -> Callable[[Evidence], T | Unparsed | Unavailable]:
        @functools.wraps(body)
        def run(ev: Evidence) -> T | Unparsed | Unavailable:
            early = precheck(ev, absent)
            return early if early is not None else body(ev)

        return run

    return wrap
