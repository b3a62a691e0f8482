"""File labels: ls -Zd, restorecon -Rnv/-Rv, semanage fcontext -l -C."""

from __future__ import annotations

import re

from ..evidence import Evidence
from ..model import FcontextRule, FileLabel, FileLabels, LabelMismatches, LocalFcontexts, Relabel, Unparsed
from ._common import SELINUX_ABSENT, failure, lines, parser, unexpected

# user:role:type[:level], the level itself may hold colons (s0-s0:c0.c1023).
_CONTEXT = r"[^\s:]+:[^\s:]+:[^\s:]+(?::\S+)?"

# coreutils >= 8.30 `CTX PATH` (the listing form right-aligns CTX), `? PATH` without a label,
# and coreutils 8.22 (RHEL 7) `drwxr-xr-x. root root CTX PATH`.
_LS_Z = re.compile(
    rf"^\s*(?:(?P<mode>[-bcdlps][-rwxsStT]{{9}}[.+]?)\s+\S+\s+\S+\s+)?(?P<context>\?|{_CONTEXT}) (?P<path>.+)$")


@parser()
def parse_ls_z(ev: Evidence) -> FileLabels | Unparsed:
    out = lines(ev.stdout)
    if not out and ev.exit_status:
        return failure(ev)
    labels = []
    for line in out:
        m = _LS_Z.match(line)
        if not m:
            return unexpected(ev, line)
        path = m["path"]
        if m["mode"] and m["mode"].startswith("l"):
            path = path.split(" -> ", 1)[0]
        labels.append(FileLabel(path, None if m["context"] == "?" else m["context"]))
    return FileLabels(tuple(labels))


_RELABEL = (
    re.compile(rf"^(?:Would relabel|Relabeled) (?P<path>.+) from (?P<current>{_CONTEXT}) to (?P<expected>{_CONTEXT})$"),
    # policycoreutils 2.5 (RHEL 7): `restorecon reset PATH context OLD->NEW`, same with -n.
    re.compile(
        rf"^(?:\S+ )?(?:[Ww]ould )?reset (?P<path>.+) context (?P<current>{_CONTEXT})->(?P<expected>{_CONTEXT})$"),
)
# Without SELinux there is nothing to compare labels with.
_RESTORECON_ABSENT = SELINUX_ABSENT + ("Could not set up file context handle", "selabel_open")


@parser(*_RESTORECON_ABSENT)
def parse_restorecon(ev: Evidence) -> LabelMismatches | Unparsed:
    if ev.exit_status:
        return failure(ev)
    items = []
    for line in lines(ev.stdout):
        m = next((m for m in (r.match(line.strip()) for r in _RELABEL) if m), None)
        if not m:
            return unexpected(ev, line)
        items.append(Relabel(m["path"], m["current"], m["expected"]))
    return LabelMismatches(tuple(items))


_FILE_TYPES = ("all files", "regular file", "directory", "symbolic link", "named pipe", "socket",
               "block device", "character device")
_FCONTEXT_RULE = re.compile(
    rf"^(?P<spec>\S.*?)\s+(?P<file_type>{'|'.join(_FILE_TYPES)})\s+(?P<context><<None>>|{_CONTEXT})$")
_FCONTEXT_HEADER = re.compile(r"^SELinux fcontext\s+type\s+Context$")
_EQUIVALENCE_HEADER = re.compile(r"^SELinux (?P<kind>Local |Distribution )?fcontext Equivalence$")
_EQUIVALENCE = re.compile(r"^(?P<path>\S.*?) = (?P<target>\S.*)$")

# semanage reports an unmanaged or missing policy store these ways.
SEMANAGE_ABSENT = SELINUX_ABSENT + ("store cannot be accessed",)


@parser(*SEMANAGE_ABSENT)
def parse_fcontext_local(ev: Evidence) -> LocalFcontexts | Unparsed:
    if ev.exit_status:
        return failure(ev)
    rules: list[FcontextRule] = []
    equivalences: dict[str, str] = {}
    section = "rules"
    for line in lines(ev.stdout):
        line = line.strip()
        header = _EQUIVALENCE_HEADER.match(line)
        if header:
            section = "distribution" if header["kind"] == "Distribution " else "local"
            continue
        if _FCONTEXT_HEADER.match(line):
            continue
        rule, equivalence = _FCONTEXT_RULE.match(line), _EQUIVALENCE.match(line)
        if section == "rules" and rule:
            context = rule["context"]
            rules.append(FcontextRule(rule["spec"], rule["file_type"], None if context == "<<None>>" else context))
        elif section != "rules" and equivalence:
            # Only local equivalences are the host's own choices; distribution ones ship with it.
            if section == "local":
                equivalences[equivalence["path"]] = equivalence["target"]
        else:
            return unexpected(ev, line)
    return LocalFcontexts(tuple(rules), equivalences)
