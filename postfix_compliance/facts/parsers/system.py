"""The host around Postfix: processes, units, listeners, firewall, DNS, files, OS release."""

from __future__ import annotations

import re

from ..evidence import Evidence
from ..model import (FileStat, FileStats, FirewallState, HostClock, HostResolution, Listener, Listeners,
                     OsRelease, ProcessInfo, Processes, UnitStates, Unparsed)
from ._common import failure, lines, parser, unexpected
from .selinux import assignments

_PS_HEADER = re.compile(r"^\s*LABEL\s+PID\s+TTY\s+TIME\s+CMD$")
# The label is `-` on a kernel without SELinux; TIME is [DD-]HH:MM:SS; CMD (comm) may hold spaces.
_PS_LINE = re.compile(r"^\s*(?P<label>\S+)\s+(?P<pid>\d{1,10})\s+\S+\s+(?:\d+-)?\d+:\d\d:\d\d\s(?P<comm>.+)$")


@parser()
def parse_processes(ev: Evidence) -> Processes | Unparsed:
    if ev.exit_status:
        return failure(ev)
    processes = []
    for line in lines(ev.stdout):
        if _PS_HEADER.match(line):
            continue
        m = _PS_LINE.match(line)
        if not m:
            return unexpected(ev, line)
        label = None if m["label"] == "-" else m["label"]
        processes.append(ProcessInfo(label, int(m["pid"]), m["comm"].strip()))
    return Processes(tuple(processes))


_CLOCK = re.compile(r"^(?P<epoch>\d{1,12}) (?P<sign>[+-])(?P<hh>\d\d)(?P<mm>\d\d)$")


@parser()
def parse_host_clock(ev: Evidence) -> HostClock | Unparsed:
    if ev.exit_status:
        return failure(ev)
    said = lines(ev.stdout)
    m = _CLOCK.match(said[0].strip()) if len(said) == 1 else None
    if not m:
        return unexpected(ev, said[0] if said else "", "not `date '+%s %z'` output")
    offset = (int(m["hh"]) * 3600 + int(m["mm"]) * 60) * (-1 if m["sign"] == "-" else 1)
    return HostClock(int(m["epoch"]), offset)


_SYSTEMCTL_UNITS = re.compile(r"\bis-(?:active|enabled)\s+(?P<units>[^;&|()'\"]*)")
_STATE = re.compile(r"^[a-z][a-z-]*$")
# systemd < 243 prints no state for a unit file it cannot find, only this on stderr.
_NO_UNIT_FILE = re.compile(r"^Failed to get unit file state for (?P<unit>\S+?):", re.MULTILINE)
_NO_SYSTEMD = ("System has not been booted with systemd", "Failed to connect to bus",
               "Failed to get D-Bus connection")


@parser(*_NO_SYSTEMD)
def parse_units(ev: Evidence) -> UnitStates | Unparsed:
    """`systemctl is-active|is-enabled UNIT...`: one state per unit, in the command's order.
    A non-zero exit only says that some unit is not active/enabled."""
    m = _SYSTEMCTL_UNITS.search(ev.command)
    units = [word for word in (m["units"].split() if m else []) if not word.startswith("-")]
    if not units:
        return Unparsed(ev.probe, f"no unit names in command {ev.command!r}")
    missing = set(_NO_UNIT_FILE.findall(ev.stderr))
    states: dict[str, str] = {}
    waiting = []
    for unit in units:
        if unit in missing or f"{unit}.service" in missing:
            states[unit] = "not-found"
        else:
            waiting.append(unit)
    out = [line.strip() for line in lines(ev.stdout)]
    if len(out) != len(waiting):
        return failure(ev) if not out else Unparsed(
            ev.probe, f"{len(out)} states for {len(waiting)} units: {out[:3]!r}")
    for unit, state in zip(waiting, out):
        if not _STATE.match(state):
            return unexpected(ev, state)
        states[unit] = state
    return UnitStates({unit: states[unit] for unit in units})


_SS_HEADER = re.compile(r"^State\s+Recv-Q\s+Send-Q\s+Local Address:Port\s+Peer Address:Port(?:\s*Process)?\s*$")
_SS_LINE = re.compile(
    r"^(?P<state>[A-Z-]+)\s+\d+\s+\d+\s+(?P<local>\S+)\s+(?P<peer>\S+)(?:\s+(?P<process>users:\(.*\)))?$")
_SS_LOCAL = re.compile(r"^\[?(?P<address>[^\]%]*?)\]?(?:%\S+)?:(?P<port>\d{1,5})$")
# users:(("master",pid=551,fd=13)); iproute2 before 3.x printed ("master",551,13).
_SS_PROCESS = re.compile(r'\("(?P<name>[^"]*)",(?:pid=)?(?P<pid>\d{1,10})')


@parser()
def parse_listeners(ev: Evidence) -> Listeners | Unparsed:
    if ev.exit_status:
        return failure(ev)
    listeners = []
    for line in lines(ev.stdout):
        if _SS_HEADER.match(line):
            continue
        m = _SS_LINE.match(line.strip())
        local = _SS_LOCAL.match(m["local"]) if m else None
        if not m or not local:
            return unexpected(ev, line)
        processes = tuple(dict.fromkeys((p["name"], int(p["pid"])) for p in _SS_PROCESS.finditer(m["process"] or "")))
        # The interface after `%` (127.0.0.1%lo) is dropped: the address is what is compared.
        listeners.append(Listener("tcp", local["address"], int(local["port"]), processes))
    return Listeners(tuple(listeners))


_FIREWALL_KEY = re.compile(r"^\s+(?P<key>[a-z][a-z -]*):(?:\s(?P<value>.*))?$")


@parser()
def parse_firewall(ev: Evidence) -> FirewallState | Unparsed:
    """`firewall-cmd --list-all` of the default zone."""
    if "FirewallD is not running" in ev.stdout + ev.stderr:
        return FirewallState(running=False)
    if ev.exit_status:
        return failure(ev)
    out = lines(ev.stdout)
    if not out:
        return failure(ev)
    if out[0][:1].isspace():
        return unexpected(ev, out[0], "no zone line")
    values: dict[str, str] = {}
    for line in out[1:]:
        m = _FIREWALL_KEY.match(line)
        if m:
            values[m["key"]] = (m["value"] or "").strip()
        elif not line[:1].isspace():
            return unexpected(ev, line)
        # Other indented lines continue a multi-line value (rich rules, forward ports).
    return FirewallState(True, tuple(values.get("services", "").split()), tuple(values.get("ports", "").split()))


_RELAYHOST = re.compile(r"^relayhost=(?P<name>.*)$")
_AHOSTS = re.compile(r"^(?P<address>\S+)\s+(?:STREAM|DGRAM|RAW)(?:\s+\S+)?$")


@parser()
def parse_relay_resolution(ev: Evidence) -> HostResolution | Unparsed:
    """`relayhost=NAME` then `getent ahosts NAME` (exit 2 and no lines: did not resolve)."""
    out = lines(ev.stdout)
    first = _RELAYHOST.match(out[0].strip()) if out else None
    if not first:
        return failure(ev) if not out else unexpected(ev, out[0])
    if ev.exit_status not in (0, 2):
        return failure(ev)
    addresses = []
    for line in out[1:]:
        m = _AHOSTS.match(line.strip())
        if not m:
            return unexpected(ev, line)
        addresses.append(m["address"])
    return HostResolution(first["name"].strip(), tuple(dict.fromkeys(addresses)))


_STAT_LINE = re.compile(r"^(?P<owner>\S+) (?P<mode>[0-7]{1,4}) (?P<mtime>\d{1,18}) (?P<path>.+)$")
_MISSING_LINE = re.compile(r"^missing (?P<path>.+)$")


@parser()
def parse_sasl_maps(ev: Evidence) -> FileStats | Unparsed:
    """`stat -c '%U %a %Y %n'` lines, or `missing PATH` for a map file that is not there."""
    if ev.exit_status:
        return failure(ev)
    files = []
    for line in lines(ev.stdout):
        stat, missing = _STAT_LINE.match(line), _MISSING_LINE.match(line)
        if stat:
            files.append(FileStat(stat["path"], True, stat["owner"], int(stat["mode"], 8), int(stat["mtime"])))
        elif missing:
            files.append(FileStat(missing["path"], False))
        else:
            return unexpected(ev, line)
    return FileStats(tuple(files))


@parser("No such file or directory")
def parse_os_release(ev: Evidence) -> OsRelease | Unparsed:
    if ev.exit_status:
        return failure(ev)
    values = assignments(ev)
    if isinstance(values, Unparsed):
        return values
    if not values:
        return Unparsed(ev.probe, "empty os-release")
    # os-release(5): ID defaults to "linux"; VERSION_ID is optional (rolling releases).
    return OsRelease(values.get("ID", "linux"), values.get("VERSION_ID", ""),
                     tuple(values.get("ID_LIKE", "").split()), values.get("PRETTY_NAME", ""))
