"""SELinux state: getenforce, sestatus, /etc/selinux/config, kernel command line, boot entries."""

from __future__ import annotations

import re

from ..evidence import Evidence
from ..model import BootConfig, KernelArgs, SelinuxConfig, SelinuxMode, SelinuxStatus, Unparsed
from ._common import failure, lines, parser, unexpected

_MODES = ("enforcing", "permissive", "disabled")


@parser()
def parse_getenforce(ev: Evidence) -> SelinuxMode | Unparsed:
    out = lines(ev.stdout)
    if not out:
        return failure(ev)
    if len(out) == 1 and out[0].strip().lower() in _MODES:
        return SelinuxMode(out[0].strip().lower())
    return unexpected(ev, out[0])


_SESTATUS_LINE = re.compile(r"^(?P<key>[^:]+):\s+(?P<value>\S.*)$")


@parser()
def parse_sestatus(ev: Evidence) -> SelinuxStatus | Unparsed:
    fields: dict[str, str] = {}
    for line in lines(ev.stdout):
        m = _SESTATUS_LINE.match(line)
        if not m:
            return unexpected(ev, line)
        fields.setdefault(m["key"].strip(), m["value"].strip())
    status = fields.get("SELinux status")
    if status is None:
        return failure(ev) if ev.exit_status else Unparsed(ev.probe, "no 'SELinux status:' line")
    if status not in ("enabled", "disabled"):
        return unexpected(ev, f"SELinux status: {status}")
    mls = fields.get("Policy MLS status")
    return SelinuxStatus(
        enabled=status == "enabled",
        loaded_policy=fields.get("Loaded policy name"),
        current_mode=fields.get("Current mode"),
        config_mode=fields.get("Mode from config file"),
        mls=None if mls is None else mls == "enabled",
    )


_ASSIGNMENT = re.compile(r"^\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*?)\s*$")


def unquote(value: str) -> str:
    """Shell-style quotes around a whole value, as in os-release and selinux/config."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        return re.sub(r"\\(.)", r"\1", inner) if value[0] == '"' else inner
    return value


def assignments(ev: Evidence) -> dict[str, str] | Unparsed:
    """KEY=value lines, skipping comments and blank lines; the first assignment of a key wins
    (libselinux stops reading SELINUX= at the first match)."""
    values: dict[str, str] = {}
    for line in lines(ev.stdout):
        if line.lstrip().startswith("#"):
            continue
        m = _ASSIGNMENT.match(line)
        if not m:
            return unexpected(ev, line)
        values.setdefault(m["key"], unquote(m["value"]))
    return values


@parser("No such file or directory")
def parse_selinux_config(ev: Evidence) -> SelinuxConfig | Unparsed:
    if ev.exit_status:
        return failure(ev)
    values = assignments(ev)
    if isinstance(values, Unparsed):
        return values
    selinux = values.get("SELINUX")
    return SelinuxConfig(selinux=selinux.lower() if selinux is not None else None,
                         selinuxtype=values.get("SELINUXTYPE"))


# Kernel arguments: words, where a double-quoted part may hold spaces (foo="a b").
_KERNEL_ARG = re.compile(r'(?:[^\s"]+|"[^"]*")+')


def kernel_args(text: str) -> tuple[str, ...]:
    return tuple(_KERNEL_ARG.findall(text))


@parser("No such file or directory")
def parse_proc_cmdline(ev: Evidence) -> KernelArgs | Unparsed:
    if ev.exit_status:
        return failure(ev)
    return KernelArgs("/proc/cmdline", kernel_args(ev.stdout))


# `grep -H` lines: FILE:options ..., FILE:kernelopts=..., FILE:GRUB_CMDLINE_LINUX[_DEFAULT]="..."
_BOOT_LINE = re.compile(
    r"^(?P<file>[^:]+):(?:options\s+(?P<options>.*)|kernelopts=(?P<kernelopts>.*)"
    r"|GRUB_CMDLINE_LINUX(?:_DEFAULT)?=(?P<grub>.*))$")


@parser()
def parse_boot_entries(ev: Evidence) -> BootConfig | Unparsed:
    # grep exits 1 when nothing matched and 2 when a listed file is missing (stderr is sent to
    # /dev/null), even when other files matched: the output, not the status, is the answer.
    if ev.exit_status not in (0, 1, 2):
        return failure(ev)
    entries = []
    for line in lines(ev.stdout):
        m = _BOOT_LINE.match(line)
        if not m:
            return unexpected(ev, line)
        if m["options"] is not None:
            args = kernel_args(m["options"])
        elif m["kernelopts"] is not None:
            args = kernel_args(m["kernelopts"])
        else:
            args = kernel_args(unquote(m["grub"].strip()))
        entries.append(KernelArgs(m["file"], args))
    return BootConfig(tuple(entries))
