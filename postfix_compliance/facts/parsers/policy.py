"""Policy store: semanage permissive -l, semodule -lfull, semanage port -l."""

from __future__ import annotations

import re

from ..evidence import Evidence
from ..model import PermissiveDomains, PolicyModule, PolicyModules, PortLabel, PortLabels, Unparsed
from ._common import failure, lines, parser, unexpected
from .labels import SEMANAGE_ABSENT

_PERMISSIVE_SECTIONS = {"Builtin Permissive Types": "builtin", "Customized Permissive Types": "customized"}
_TYPE_NAME = re.compile(r"^\w+$")


@parser(*SEMANAGE_ABSENT)
def parse_permissive_domains(ev: Evidence) -> PermissiveDomains | Unparsed:
    if ev.exit_status:
        return failure(ev)
    found: dict[str, list[str]] = {"builtin": [], "customized": []}
    section = None
    for line in lines(ev.stdout):
        line = line.strip()
        if line in _PERMISSIVE_SECTIONS:
            section = _PERMISSIVE_SECTIONS[line]
        elif section and _TYPE_NAME.match(line):
            found[section].append(line)
        else:
            return unexpected(ev, line)
    return PermissiveDomains(tuple(found["builtin"]), tuple(found["customized"]))


# `100 accountsd       pp         ` / `100 amtu            pp disabled`
_MODULE = re.compile(r"^(?P<priority>\d{1,9})\s+(?P<name>\S+)\s+(?P<kind>\S+)(?:\s+(?P<disabled>disabled))?$")


@parser(*SEMANAGE_ABSENT)
def parse_policy_modules(ev: Evidence) -> PolicyModules | Unparsed:
    if ev.exit_status:
        return failure(ev)
    modules = []
    for line in lines(ev.stdout):
        line = line.strip()
        if line == "No modules.":
            continue
        m = _MODULE.match(line)
        if not m:
            return unexpected(ev, line)
        modules.append(PolicyModule(int(m["priority"]), m["name"], m["kind"], m["disabled"] is not None))
    return PolicyModules(tuple(modules))


_PORT_HEADER = re.compile(r"^SELinux Port Type\s+Proto\s+Port Number$")
_PORT_RANGE = r"\d{1,5}(?:-\d{1,5})?"
_PORT_LINE = re.compile(
    rf"^(?P<type>\w+)\s+(?P<protocol>tcp|udp|sctp|dccp)\s+(?P<ranges>{_PORT_RANGE}(?:,\s*{_PORT_RANGE})*)$")


@parser(*SEMANAGE_ABSENT)
def parse_port_labels(ev: Evidence) -> PortLabels | Unparsed:
    if ev.exit_status:
        return failure(ev)
    labels = []
    for line in lines(ev.stdout):
        if _PORT_HEADER.match(line):
            continue
        m = _PORT_LINE.match(line.strip())
        if not m:
            return unexpected(ev, line)
        ranges = []
        for part in m["ranges"].split(","):
            low, _, high = part.strip().partition("-")
            ranges.append((int(low), int(high or low)))
        labels.append(PortLabel(m["type"], m["protocol"], tuple(ranges)))
    return PortLabels(tuple(labels))
