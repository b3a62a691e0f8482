"""Audit records: ausearch -m AVC,USER_AVC (raw or -i) and audit2why's verdicts."""

from __future__ import annotations

import dataclasses
import re
import time

from ..evidence import Evidence
from ..model import AvcDenial, AvcDenials, Audit2Why, Audit2WhyVerdict, Unavailable, Unparsed
from ._common import SELINUX_ABSENT, failure, lines, parser, unexpected

# ausearch cannot open the log when auditd never ran (no file yet): nothing was ever recorded.
# Other open errors (permission denied) stay errors.
_NO_AUDIT_LOG = re.compile(r"Error opening \S+(?: \(No such file or directory\))?$", re.MULTILINE)

_RECORD = re.compile(r"^(?:node=\S+ )?type=(?P<type>\w+) msg=audit\((?P<stamp>[^)]*)\)\s*:\s*(?P<body>.*)$")
_STAMP_RAW = re.compile(r"^(?P<epoch>\d{1,12}(?:\.\d{1,9})?):(?P<serial>\d{1,20})$")
# ausearch -i prints local time with strftime("%x %T") in the C locale: 11/28/26 13:10:20.476
_STAMP_LOCAL = re.compile(
    r"^(?P<date>\d\d/\d\d/\d\d(?:\d\d)?) (?P<clock>\d\d:\d\d:\d\d)(?P<fraction>\.\d{1,9})?:(?P<serial>\d{1,20})$")
# Linear on any line (a host may print megabytes): the permission set stops at the next brace and is
# bounded, and a field's key is only tried where a word starts (`\w+=` tried inside a long word backtracks
# through all of it at every position: quadratic).
_DECISION = re.compile(
    r"avc:\s+(?P<verdict>denied|granted)\s+\{(?P<permissions>[^{}]{0,1024})\}\s+for\s+(?P<fields>.*)$")
_FIELD = re.compile(r"(?<!\w)(?P<key>\w+)=(?P<value>\"[^\"]*\"|'[^']*'|\S*)")
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")


def _timestamp(stamp: str) -> tuple[float, int] | None:
    """Seconds since the epoch and serial of `msg=audit(...)`.

    The interpreted (-i) form carries local time without a zone; it is read in the local time
    zone of the machine running the suite (time.mktime), which is right only when that zone is
    the audited host's. The probes ask for the raw form, which carries the epoch itself."""
    raw = _STAMP_RAW.match(stamp)
    if raw:
        return float(raw["epoch"]), int(raw["serial"])
    local = _STAMP_LOCAL.match(stamp)
    if not local:
        return None
    year = "%Y" if len(local["date"]) == 10 else "%y"
    try:
        seconds = time.mktime(time.strptime(f"{local['date']} {local['clock']}", f"%m/%d/{year} %H:%M:%S"))
    except (ValueError, OverflowError):
        return None
    return seconds + float(local["fraction"] or 0), int(local["serial"])


def _value(key: str, value: str, raw: bool) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    # The raw log hex-encodes untrusted strings holding spaces or quotes (name=2F746D702F612062).
    if raw and key in ("path", "name", "comm") and _HEX.match(value):
        return bytes.fromhex(value).decode("utf-8", "replace")
    return value


def parse_record(ev: Evidence, line: str) -> AvcDenial | Unparsed | None:
    """One audit record line: a denial, or None for any other record (other types, `granted`,
    USER_AVC notices such as `avc:  received policyload notice`)."""
    line = line.split("\x1d", 1)[0].strip()  # log_format=ENRICHED appends fields after \x1d
    record = _RECORD.match(line)
    if not record:
        return unexpected(ev, line)
    if record["type"] not in ("AVC", "USER_AVC"):
        return None
    decision = _DECISION.search(record["body"])
    if not decision:
        return unexpected(ev, line, "unrecognised denial") if "denied" in record["body"] else None
    if decision["verdict"] != "denied":
        return None
    stamp = _timestamp(record["stamp"])
    if stamp is None:
        return unexpected(ev, line, "unrecognised audit timestamp")
    raw = _STAMP_RAW.match(record["stamp"]) is not None
    fields: dict[str, str] = {}
    for field in _FIELD.finditer(decision["fields"]):
        fields.setdefault(field["key"], _value(field["key"], field["value"], raw))
    if not all(fields.get(key) for key in ("scontext", "tcontext", "tclass")):
        return unexpected(ev, line, "denial without scontext/tcontext/tclass")
    pid = fields.get("pid", "")
    return AvcDenial(
        record_type=record["type"],
        timestamp=stamp[0],
        serial=stamp[1],
        permissions=tuple(decision["permissions"].split()),
        scontext=fields["scontext"],
        tcontext=fields["tcontext"],
        tclass=fields["tclass"],
        # Kernels before 3.19 (RHEL 7) print no permissive= field: read as enforcing.
        permissive=fields.get("permissive") == "1",
        pid=int(pid) if re.fullmatch(r"[0-9]{1,10}", pid) else None,
        comm=fields.get("comm"),
        path=fields.get("path") or fields.get("name"),
        raw=line,
    )


def _audit_log_missing(ev: Evidence) -> Unavailable | None:
    m = _NO_AUDIT_LOG.search(ev.stderr)
    return Unavailable(ev.probe, f"no audit log: {m.group(0)}") if m else None


@parser()
def parse_avc_denials(ev: Evidence) -> AvcDenials | Unparsed | Unavailable:
    missing = _audit_log_missing(ev)
    if missing:
        return missing
    if ev.exit_status and "<no matches>" not in ev.stderr:
        return failure(ev)
    denials = []
    for line in lines(ev.stdout):
        if line.startswith("----") or line.startswith("time->"):
            continue
        denial = parse_record(ev, line)
        if isinstance(denial, Unparsed):
            return denial
        if denial is not None:
            denials.append(denial)
    return AvcDenials(tuple(denials))


_ONE_BOOLEAN = re.compile(r"^The boolean (?P<name>\S+) was set incorrectly\.$")
_SETSEBOOL = re.compile(r"^# setsebool -P (?P<name>\S+) [01]$")


@dataclasses.dataclass
class _Block:
    """One record audit2why explains, and what it printed after it."""

    denial: AvcDenial | None  # None: a record that is no denial
    caused: bool = False  # saw `Was caused by:`
    causes: list[str] = dataclasses.field(default_factory=list)
    booleans: list[str] = dataclasses.field(default_factory=list)

    def verdict(self, denial: AvcDenial) -> Audit2WhyVerdict:
        # Constraint verdicts print `#Constraint rule:` and then the rule on the next line.
        cause = self.causes[0] if self.causes else ""
        if cause == "Constraint rule:" and len(self.causes) > 1:
            cause = f"{cause} {self.causes[1]}"
        return Audit2WhyVerdict(denial.event_id, denial.scontext, denial.tcontext, denial.tclass,
                                denial.permissions, cause, tuple(dict.fromkeys(self.booleans)))


@parser(*SELINUX_ABSENT, "unable to open /etc/selinux/", "Must specify -p policy",
        "You must specify the -p option")  # audit2why without a loaded policy (real wording)
def parse_audit2why(ev: Evidence) -> Audit2Why | Unparsed | Unavailable:
    missing = _audit_log_missing(ev)
    if missing:
        return missing
    if ev.exit_status:
        return failure(ev)
    blocks: list[_Block] = []
    for line in lines(ev.stdout):
        text = line.strip()
        if _RECORD.match(text):
            denial = parse_record(ev, text)
            if isinstance(denial, Unparsed):
                return denial
            blocks.append(_Block(denial))
        elif not blocks:
            return unexpected(ev, line)
        elif text == "Was caused by:":
            blocks[-1].caused = True
        elif not blocks[-1].caused:
            return unexpected(ev, line)
        else:
            blocks[-1].causes.append(text.lstrip("#").strip())
            named = _ONE_BOOLEAN.match(text) or _SETSEBOOL.match(text)
            if named:
                blocks[-1].booleans.append(named["name"])
    verdicts = []
    for block in blocks:
        if block.denial is None:
            continue
        if not block.caused:
            return Unparsed(ev.probe, f"no 'Was caused by:' after record {block.denial.event_id}")
        verdicts.append(block.verdict(block.denial))
    return Audit2Why(tuple(verdicts))
