"""--waivers FILE: accepted exceptions, in YAML.

    waivers:                        # or the list alone, at the top level
      - check: MOD-001              # a check id, exactly
        hosts: "mail*.example.com"  # a glob on the host's name or its URL (a list of globs too); default "*"
        justification: "postfix_local grants the archive mount; ticket CHG-1234"   # required
        owner: mail-team            # optional, shown in the report
        expires: 2026-12-31         # optional, YYYY-MM-DD: covers the check through that day

A waiver covers a FAILING check (outcome "fail"): the record becomes "waived", carries the
waiver, and pytest reports the test as skipped with reason "waived: <justification>". It never
covers an error (a check that could not be judged is a blind spot, not an accepted state).
An expired waiver covers nothing: the check fails as it would without it, and the run's output,
results.json (record "waiver" with "expired": true) and the HTML report say the waiver expired.
The file is validated with a JSON Schema before anything runs; a mistake is one line naming the
file and the entry's key.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import fnmatch
from typing import Any

from postfix_compliance.inputfiles import load_yaml
from postfix_compliance.run import CheckResult, HostResult, RunResult

ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["check", "justification"],
    "additionalProperties": False,
    "properties": {
        "check": {"type": "string", "pattern": r"^[A-Z][A-Z0-9]*-[0-9]{3}$"},
        "hosts": {"anyOf": [{"type": "string", "minLength": 1},
                            {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}]},
        "justification": {"type": "string", "pattern": r"\S"},
        "owner": {"type": "string", "pattern": r"\S"},
        "expires": {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
    },
}
FILE_SCHEMA: dict[str, Any] = {"type": "array", "items": ENTRY_SCHEMA}


@dataclasses.dataclass(frozen=True)
class Waiver:
    index: int
    check: str
    hosts: tuple[str, ...]
    justification: str
    owner: str | None
    expires: datetime.date | None

    def matches(self, host: HostResult, check: CheckResult) -> bool:
        if check.check_id != self.check:
            return False
        names = {host.id, host.name or host.id}
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.hosts for name in names)

    def expired(self, today: datetime.date) -> bool:
        return self.expires is not None and today > self.expires

    def describe(self, path: str, outcome: str, expired: bool) -> dict[str, Any]:
        return {"check": self.check, "hosts": list(self.hosts), "justification": self.justification,
                "owner": self.owner, "expires": self.expires.isoformat() if self.expires else None,
                "file": path, "index": self.index, "outcome": outcome, "expired": expired}


@dataclasses.dataclass
class WaiverFile:
    path: str
    waivers: list[Waiver]
    today: datetime.date

    def cover(self, host: HostResult, check: CheckResult) -> CheckResult:
        """The check as the waivers leave it: a failing check a valid waiver covers is "waived" and carries
        the waiver; one whose only waivers expired still fails and carries the latest, marked expired."""
        if check.outcome != "fail":
            return check
        matching = [w for w in self.waivers if w.matches(host, check)]
        if not matching:
            return check
        valid = [w for w in matching if not w.expired(self.today)]
        if valid:
            return dataclasses.replace(check, outcome="waived",
                                       waiver=valid[0].describe(self.path, check.outcome, expired=False))
        latest = max(matching, key=lambda w: w.expires or datetime.date.max)
        return dataclasses.replace(check, waiver=latest.describe(self.path, check.outcome, expired=True))

    def summary(self, run: RunResult) -> dict[str, Any]:
        """Which waivers applied, expired, or matched nothing failing, in this run."""
        checks = list(run.checks())
        applied = [(h, c) for h, c in checks if c.waiver and not c.waiver.get("expired")]
        expired_by_waiver: dict[int, list[str]] = {}
        for h, c in checks:
            if c.waiver and c.waiver.get("expired"):
                expired_by_waiver.setdefault(c.waiver["index"], []).append(h.name or h.id)
        used = {c.waiver["index"] for _, c in checks if c.waiver}
        unused = []
        for w in self.waivers:
            if w.index in used:
                continue
            matched = [c for h, c in checks if w.matches(h, c)]
            if not matched:
                why = "no host of this run matches" if any(c.check_id == w.check for _, c in checks) \
                    else f"no check {w.check} ran"
            else:
                outcomes = sorted({c.underlying_outcome for c in matched})
                why = "the check is " + "/".join(outcomes) + " (nothing to waive)"
                if w.expired(self.today):
                    why += f"; expired {w.expires.isoformat()}"
            unused.append({"check": w.check, "hosts": list(w.hosts), "index": w.index, "why": why})
        expired = [{**self.waivers[i].describe(self.path, "fail", True), "hosts_matched": hosts}
                   for i, hosts in sorted(expired_by_waiver.items())]
        return {"file": self.path, "today": self.today.isoformat(),
                "applied": [{"host": h.id, "host_name": h.name, "check_id": c.check_id, "index": c.waiver["index"]}
                            for h, c in applied],
                "expired": expired, "unused": unused}


def load(path: str, today: datetime.date | None = None) -> WaiverFile:
    """Read and validate a waiver file; any problem is one ValueError line naming file and key."""
    import jsonschema

    data = load_yaml(path, loader=_text_dates_loader())
    prefix = ""
    if data is None:
        data = []
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"waivers"})
        if unknown:
            raise ValueError(f"{path}: unknown top-level key {unknown[0]!r} (expected 'waivers:' and a list)")
        data, prefix = data.get("waivers") or [], "waivers"
    data = _dates_to_text(copy.deepcopy(data))
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(FILE_SCHEMA).iter_errors(data))
    if error is not None:
        raise ValueError(f"{path}: {_where(prefix, error.absolute_path, data)}: {_explain(error)}")
    waivers = []
    for index, entry in enumerate(data):
        expires = None
        if "expires" in entry:
            try:
                expires = datetime.date.fromisoformat(entry["expires"])
            except ValueError:
                raise ValueError(f"{path}: {_where(prefix, [index, 'expires'], data)}: "
                                 f"{entry['expires']!r} is not a date (YYYY-MM-DD)") from None
        hosts = entry.get("hosts", "*")
        waivers.append(Waiver(index=index, check=entry["check"],
                              hosts=tuple([hosts] if isinstance(hosts, str) else hosts),
                              justification=entry["justification"].strip(), owner=entry.get("owner"),
                              expires=expires))
    return WaiverFile(path, waivers, today or datetime.date.today())


def _text_dates_loader() -> type:
    """A SafeLoader that reads unquoted dates (2026-12-31) as text: the schema and
    date.fromisoformat judge them, so 2026-02-30 is a clear error, not a YAML crash."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    return Loader


def _dates_to_text(data: Any) -> Any:
    """Dates as text, for a date object that came in anyway (an explicit !!timestamp tag)."""
    if isinstance(data, list):
        for entry in data:
            if isinstance(entry, dict) and isinstance(entry.get("expires"), datetime.date):
                entry["expires"] = entry["expires"].isoformat()
    return data


def _where(prefix: str, path: Any, data: Any) -> str:
    parts = list(path)
    text = prefix
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    # Name the entry by its check id too, when it has one: easier to find in a long file.
    if parts and isinstance(parts[0], int) and isinstance(data, list) and parts[0] < len(data) \
            and isinstance(data[parts[0]], dict) and isinstance(data[parts[0]].get("check"), str):
        text += f" (check {data[parts[0]]['check']})"
    return text.lstrip(".") or "top level"


def _explain(error: Any) -> str:
    key = error.absolute_path[-1] if error.absolute_path else None
    if error.validator == "pattern" and key == "justification":
        return "must not be empty: say why the exception is accepted"
    if error.validator == "pattern" and key == "expires":
        return f"{error.instance!r} is not a date (YYYY-MM-DD)"
    if error.validator == "pattern" and key == "check":
        return f"{error.instance!r} is not a check id (like SEL-001)"
    if error.validator == "additionalProperties":
        allowed = ", ".join(ENTRY_SCHEMA["properties"])
        return f"{error.message} (allowed: {allowed})"
    if error.validator == "required":
        return error.message
    if error.validator == "type" and not error.absolute_path:
        return "expected a list of waivers (or 'waivers:' and a list)"
    return error.message
