"""SELinux booleans: getsebool -a, getsebool NAME, semanage boolean -l."""

from __future__ import annotations

import re

from ..evidence import Evidence
from ..model import BooleanLookup, Booleans, BooleanSetting, BooleanSettings, Unparsed
from ._common import SELINUX_ABSENT, failure, first_match, lines, parser, unexpected

# `name --> on`; a value changed but not yet committed prints `name --> off pending: on`.
_GETSEBOOL_LINE = re.compile(r"^(?P<name>\S+) --> (?P<value>on|off)(?: pending: (?:on|off))?$")


def _getsebool_lines(ev: Evidence) -> dict[str, bool] | Unparsed:
    values: dict[str, bool] = {}
    for line in lines(ev.stdout):
        m = _GETSEBOOL_LINE.match(line.strip())
        if not m:
            return unexpected(ev, line)
        values[m["name"]] = m["value"] == "on"
    return values


@parser(*SELINUX_ABSENT)
def parse_getsebool_all(ev: Evidence) -> Booleans | Unparsed:
    if ev.exit_status:
        return failure(ev)
    values = _getsebool_lines(ev)
    return values if isinstance(values, Unparsed) else Booleans(values)


_UNKNOWN_BOOLEAN = "Error getting active value for"


@parser(*SELINUX_ABSENT)
def parse_getsebool_one(ev: Evidence) -> BooleanLookup | Unparsed:
    """Probe `getsebool:NAME`. RHEL resolves an old alias and prints the new name."""
    requested = ev.probe.partition(":")[2]
    error = first_match(ev.stderr + "\n" + ev.stdout, (_UNKNOWN_BOOLEAN,))
    if error is not None:
        return BooleanLookup(requested, None, None, error=error)
    values = _getsebool_lines(ev)
    if isinstance(values, Unparsed):
        return values
    if not values:
        return failure(ev)
    if len(values) > 1:
        return Unparsed(ev.probe, f"{len(values)} booleans printed for one name")
    (name, value), = values.items()
    return BooleanLookup(requested, name, value)


# `postfix_local_write_mail_spool (on   ,   on)  Allow ...`; long names touch the parenthesis.
_SEMANAGE_BOOLEAN = re.compile(
    r"^(?P<name>[^\s(]+)\s*\(\s*(?P<current>on|off)\s*,\s*(?P<default>on|off)\s*\)\s*(?P<description>.*)$")
_SEMANAGE_BOOLEAN_HEADER = re.compile(r"^SELinux boolean\s+State\s+Default\s+Description$")


@parser(*SELINUX_ABSENT)
def parse_semanage_boolean(ev: Evidence) -> BooleanSettings | Unparsed:
    if ev.exit_status:
        return failure(ev)
    settings: dict[str, BooleanSetting] = {}
    for line in lines(ev.stdout):
        if _SEMANAGE_BOOLEAN_HEADER.match(line):
            continue
        m = _SEMANAGE_BOOLEAN.match(line)
        if not m:
            return unexpected(ev, line)
        settings[m["name"]] = BooleanSetting(m["name"], m["current"] == "on", m["default"] == "on",
                                             m["description"].strip())
    return BooleanSettings(settings)
