"""results.json: one record per host x check; the baseline format for pre/post-change runs.

Format "postfix-compliance-results/1" (documented in docs/reports.md; readers must ignore keys they
do not know, writers only add keys within a format version):
  {"format", "suite_version", "generated_at", "started_at", "duration_s", "profile",
   "summary": {host: {outcome: count}},
   "results": [{"host", "host_name", "profile", "check_id", "title", "severity", "section",
                "outcome" (pass|fail|error|waived|not_applicable), "message", "remediation",
                "rollback", "references", "evidence_digest", "evidence": [{"probe", "command",
                "exit_status", "stdout", "stderr", "duration", "error"}], "nodeid", "duration_s",
                "waiver" (null, or {"check", "hosts", "justification", "owner", "expires", "file",
                "index", "outcome", "expired"})}],
   optional: "changes" (with --baseline), "waivers" (with --waivers)}
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Iterable

from postfix_compliance import __version__

RESULTS_FORMAT = "postfix-compliance-results/1"
OUTCOMES = ("pass", "fail", "error", "waived", "not_applicable")

# What a baseline must at least hold to be compared with (validated with jsonschema).
BASELINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "results"],
    "properties": {
        "format": {"const": RESULTS_FORMAT},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["host", "check_id", "outcome"],
                "properties": {
                    "host": {"type": "string", "minLength": 1},
                    "host_name": {"type": ["string", "null"]},
                    "check_id": {"type": "string", "minLength": 1},
                    "outcome": {"enum": list(OUTCOMES)},
                    "evidence": {"type": "array", "items": {"type": "object"}},
                    "waiver": {"type": ["object", "null"]},
                },
            },
        },
    },
}


def make_record(meta: Any, host: str, host_name: str, outcome: str, message: str, evidence: Iterable[Any],
                profile: str | None, nodeid: str, duration: float) -> dict[str, Any]:
    evidence = [e.to_dict() for e in evidence]
    return {
        "host": host, "host_name": host_name, "profile": profile, "check_id": meta.id, "title": meta.title,
        "severity": meta.severity, "section": meta.section, "outcome": outcome, "message": message,
        "remediation": list(meta.remediation), "rollback": list(meta.rollback),
        "references": list(meta.references), "evidence_digest": evidence_digest(evidence), "evidence": evidence,
        "nodeid": nodeid, "duration_s": round(duration, 3), "waiver": None,
    }


def evidence_digest(evidence: list[dict[str, Any]]) -> str:
    """A short stable hash of what the host printed for a check (same inputs, same digest)."""
    return hashlib.sha256(json.dumps([[e["command"], e["exit_status"], e["stdout"], e["stderr"], e["error"]]
                                      for e in evidence]).encode()).hexdigest()[:16]


def underlying_outcome(record: dict[str, Any]) -> str:
    """The check's own verdict: a waived record's is the outcome the waiver covered ("fail")."""
    if record.get("outcome") == "waived":
        return (record.get("waiver") or {}).get("outcome") or "fail"
    return record.get("outcome", "error")


def host_key(record: dict[str, Any]) -> str:
    """How runs are matched host by host: the name the host reports (its hostname, or a snapshot's
    "host"), so a pre-change snapshot and a post-change one of the same machine pair up."""
    return record.get("host_name") or record["host"]


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    summary: dict[str, dict[str, int]] = {}
    for record in records:
        counts = summary.setdefault(record["host"], {})
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
    return summary


def document(records: list[dict[str, Any]], started: float, profile: str | None,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    records = sorted(records, key=lambda r: (r["host"], r["check_id"]))
    now = time.time()
    doc = {
        "format": RESULTS_FORMAT, "suite_version": __version__,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(now - started, 3), "profile": profile,
        "summary": summarize(records),
        # One triage finding per host (or null): the correlated root cause, see triage.py.
        "diagnosis": {r["host"]: r.get("diagnosis") for r in records},
        "results": records,
    }
    doc.update(extra or {})
    return doc


def write(path: str, records: list[dict[str, Any]], started: float, profile: str | None,
          extra: dict[str, Any] | None = None) -> None:
    write_json(path, document(records, started, profile, extra))


def write_json(path: str, doc: dict[str, Any]) -> None:
    """Write atomically, never through a planted symlink (postfix_compliance/atomicfile.py)."""
    from postfix_compliance.atomicfile import write_atomic

    write_atomic(path, json.dumps(doc, indent=1) + "\n")


def add_sections(path: str, sections: dict[str, Any]) -> None:
    """Add top-level sections ("changes", "waivers") to a results.json already written."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        doc = json.load(handle)
    doc.update(sections)
    write_json(path, doc)


def load(path: str) -> dict[str, Any]:
    """Read a results.json (e.g. a baseline); any problem is one ValueError line naming the file."""
    import jsonschema

    from postfix_compliance.inputfiles import load_json

    doc = load_json(path)
    if not isinstance(doc, dict) or doc.get("format") != RESULTS_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{path}: not a results file (\"format\" is {found!r}, expected {RESULTS_FORMAT!r})")
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(BASELINE_SCHEMA).iter_errors(doc))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        raise ValueError(f"{path}: {where or 'top level'}: {error.message}")
    return doc
