"""Typed, frozen facts parsed from evidence.

Facts describe what a host reported; they never say whether that is compliant. Output a
parser does not understand becomes `Unparsed`, which checks turn into an error naming the
probe (never a crash, never a silent pass). `Unavailable` marks a fact the host cannot give
because the tool or subsystem is absent (no SELinux userland, no systemd, no Postfix): a
check decides whether that is "not applicable" or a failure.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

frozen = dataclasses.dataclass(frozen=True)


@frozen
class Unparsed:
    """The probe printed something the parser does not understand."""

    probe: str
    reason: str


@frozen
class Unavailable:
    """The host cannot produce this fact (tool missing, subsystem disabled)."""

    probe: str
    reason: str


def context_type(context: str | None) -> str | None:
    """`system_u:object_r:postfix_spool_t:s0` -> `postfix_spool_t`."""
    if not context:
        return None
    parts = context.split(":")
    return parts[2] if len(parts) >= 3 else None


# --------------------------------------------------------------------------- SELinux state
@frozen
class SelinuxMode:
    """Runtime mode from getenforce: enforcing, permissive or disabled."""

    mode: str


@frozen
class SelinuxStatus:
    """sestatus."""

    enabled: bool
    loaded_policy: str | None = None
    current_mode: str | None = None
    config_mode: str | None = None
    mls: bool | None = None


@frozen
class SelinuxConfig:
    """/etc/selinux/config (SELINUX=, SELINUXTYPE=)."""

    selinux: str | None
    selinuxtype: str | None


@frozen
class KernelArgs:
    """Kernel arguments from one source (/proc/cmdline, a boot entry, /etc/default/grub)."""

    source: str
    args: tuple[str, ...]


@frozen
class BootConfig:
    entries: tuple[KernelArgs, ...]


# --------------------------------------------------------------------------- booleans
@frozen
class Booleans:
    """getsebool -a (or getsebool NAME ...): runtime values by the host's own names."""

    values: Mapping[str, bool]


@frozen
class BooleanLookup:
    """getsebool NAME for one requested name; `name` is what the host resolved it to."""

    requested: str
    name: str | None
    value: bool | None
    error: str | None = None


@frozen
class BooleanSetting:
    name: str
    current: bool
    default: bool
    description: str


@frozen
class BooleanSettings:
    """semanage boolean -l: current (runtime) and default (persistent) values."""

    settings: Mapping[str, BooleanSetting]


# --------------------------------------------------------------------------- labels
@frozen
class FileLabel:
    """One `ls -Zd` line. context None means the file has no label (`?`)."""

    path: str
    context: str | None

    @property
    def type(self) -> str | None:
        return context_type(self.context)


@frozen
class FileLabels:
    labels: tuple[FileLabel, ...]

    def get(self, path: str) -> FileLabel | None:
        for label in self.labels:
            if label.path == path:
                return label
        return None


@frozen
class Relabel:
    """A path restorecon would relabel (or did), from `current` to `expected` context."""

    path: str
    current: str
    expected: str

    @property
    def current_type(self) -> str | None:
        return context_type(self.current)

    @property
    def expected_type(self) -> str | None:
        return context_type(self.expected)


@frozen
class LabelMismatches:
    """restorecon -Rnv: every path whose label differs from the host's policy."""

    items: tuple[Relabel, ...]


@frozen
class FcontextRule:
    spec: str
    file_type: str
    context: str | None  # None for <<None>>


@frozen
class LocalFcontexts:
    """semanage fcontext -l -C: local rules and equivalences (path -> equivalent path)."""

    rules: tuple[FcontextRule, ...]
    equivalences: Mapping[str, str]


@frozen
class PermissiveDomains:
    """semanage permissive -l: builtin and customized permissive types."""

    builtin: tuple[str, ...]
    customized: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.builtin + self.customized


@frozen
class PolicyModule:
    priority: int
    name: str
    kind: str
    disabled: bool = False


@frozen
class PolicyModules:
    """semodule -lfull."""

    modules: tuple[PolicyModule, ...]


@frozen
class PortLabel:
    type: str
    protocol: str
    ranges: tuple[tuple[int, int], ...]

    def covers(self, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.ranges)


@frozen
class PortLabels:
    """semanage port -l."""

    labels: tuple[PortLabel, ...]

    def types_for(self, port: int, protocol: str = "tcp") -> tuple[str, ...]:
        return tuple(p.type for p in self.labels if p.protocol == protocol and p.covers(port))


# --------------------------------------------------------------------------- audit
@frozen
class AvcDenial:
    """One AVC or USER_AVC denial record."""

    record_type: str  # AVC or USER_AVC
    timestamp: float  # seconds since the epoch
    serial: int
    permissions: tuple[str, ...]
    scontext: str
    tcontext: str
    tclass: str
    permissive: bool
    pid: int | None = None
    comm: str | None = None
    path: str | None = None  # path= or name=
    raw: str = ""

    @property
    def source_type(self) -> str | None:
        return context_type(self.scontext)

    @property
    def target_type(self) -> str | None:
        return context_type(self.tcontext)

    @property
    def event_id(self) -> str:
        return f"{self.timestamp:.3f}:{self.serial}"


@frozen
class AvcDenials:
    """ausearch -m AVC,USER_AVC: denials found (empty for `<no matches>`)."""

    denials: tuple[AvcDenial, ...]


@frozen
class Audit2WhyVerdict:
    """What audit2why says caused one denial; `booleans` names the booleans that would allow it."""

    event_id: str
    scontext: str
    tcontext: str
    tclass: str
    permissions: tuple[str, ...]
    cause: str
    booleans: tuple[str, ...] = ()


@frozen
class Audit2Why:
    verdicts: tuple[Audit2WhyVerdict, ...]


# --------------------------------------------------------------------------- Postfix
@frozen
class PostfixConfig:
    """postconf NAME ... / postconf -n: parameter -> value."""

    params: Mapping[str, str]


@frozen
class QueueRecipient:
    address: str
    delay_reason: str | None


@frozen
class QueueMessage:
    queue_name: str  # active, deferred, hold, incoming, maildrop
    queue_id: str
    arrival_time: int | None
    message_size: int | None
    sender: str
    recipients: tuple[QueueRecipient, ...]
    forced_expire: bool | None = None


@frozen
class QueueState:
    """The mail queue, from `postqueue -j` (source "json") or mailq text (source "text")."""

    messages: tuple[QueueMessage, ...]
    source: str

    def in_queue(self, name: str) -> tuple[QueueMessage, ...]:
        return tuple(m for m in self.messages if m.queue_name == name)

    @property
    def deferred_count(self) -> int:
        return len(self.in_queue("deferred"))

    @property
    def active_count(self) -> int:
        return len(self.in_queue("active"))


@frozen
class PostfixCheckResult:
    """`postfix check`: clean when it exits 0 and printed nothing."""

    exit_status: int
    messages: tuple[str, ...]


@frozen
class LogLine:
    timestamp: str
    host: str
    program: str  # e.g. postfix/smtp
    pid: int | None
    message: str
    raw: str
    epoch: float | None = None  # when the host's clock and zone are known (maillog probe)


@frozen
class MailLog:
    lines: tuple[LogLine, ...]
    host_now: int | None = None  # the host's clock when the log was read (seconds since the epoch)
    utc_offset: int | None = None  # the host's zone, seconds east of UTC


# --------------------------------------------------------------------------- system
@frozen
class Listener:
    protocol: str
    address: str
    port: int
    processes: tuple[tuple[str, int], ...]  # (name, pid)

    def held_by(self, name: str) -> bool:
        return any(process == name for process, _ in self.processes)


@frozen
class Listeners:
    """ss -lntp."""

    listeners: tuple[Listener, ...]


@frozen
class ProcessInfo:
    label: str | None  # None when the kernel has no SELinux ("-")
    pid: int
    comm: str

    @property
    def domain(self) -> str | None:
        return context_type(self.label)


@frozen
class Processes:
    """ps -eZ."""

    processes: tuple[ProcessInfo, ...]

    def named(self, *names: str) -> tuple[ProcessInfo, ...]:
        return tuple(p for p in self.processes if p.comm in names)


@frozen
class UnitStates:
    """systemctl is-active / is-enabled UNIT...: unit -> state word."""

    states: Mapping[str, str]


@frozen
class HostClock:
    """`date '+%s %z'`: the host's clock (seconds since the epoch) and its UTC offset in seconds."""

    epoch: int
    utc_offset: int


@frozen
class OsRelease:
    id: str
    version_id: str
    id_like: tuple[str, ...]
    pretty_name: str = ""


@frozen
class FileStat:
    path: str
    exists: bool
    owner: str | None = None
    mode: int | None = None
    mtime: int | None = None


@frozen
class FileStats:
    files: tuple[FileStat, ...]


@frozen
class HostResolution:
    """getent ahosts NAME: addresses found (empty: did not resolve)."""

    name: str
    addresses: tuple[str, ...]


@frozen
class FirewallState:
    """firewall-cmd --state / --list-services: running, and services/ports admitted."""

    running: bool
    services: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
