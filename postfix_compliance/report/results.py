"""results.json: one record per host x check; the baseline format for pre/post-change runs.

Format "postfix-compliance-results/1":
  {"format", "suite_version", "generated_at", "started_at", "duration_s", "profile",
   "summary": {host: {outcome: count}},
   "results": [{"host", "host_name", "profile", "check_id", "title", "severity", "section",
                "outcome" (pass|fail|error|waived|not_applicable), "message", "remediation",
                "rollback", "evidence_digest", "evidence": [{"probe", "command", "exit_status",
                "stdout", "stderr", "duration", "error"}], "nodeid", "duration_s"}]}
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Iterable

from postfix_compliance import __version__

RESULTS_FORMAT = "postfix-compliance-results/1"


def make_record(meta: Any, host: str, host_name: str, outcome: str, message: str, evidence: Iterable[Any],
                profile: str | None, nodeid: str, duration: float) -> dict[str, Any]:
    evidence = [e.to_dict() for e in evidence]
    digest = hashlib.sha256(json.dumps([[e["command"], e["exit_status"], e["stdout"], e["stderr"], e["error"]]
                                        for e in evidence]).encode()).hexdigest()[:16]
    return {
        "host": host, "host_name": host_name, "profile": profile, "check_id": meta.id, "title": meta.title,
        "severity": meta.severity, "section": meta.section, "outcome": outcome, "message": message,
        "remediation": list(meta.remediation), "rollback": list(meta.rollback),
        "references": list(meta.references), "evidence_digest": digest, "evidence": evidence,
        "nodeid": nodeid, "duration_s": round(duration, 3),
    }


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    summary: dict[str, dict[str, int]] = {}
    for record in records:
        counts = summary.setdefault(record["host"], {})
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
    return summary


def document(records: list[dict[str, Any]], started: float, profile: str | None) -> dict[str, Any]:
    records = sorted(records, key=lambda r: (r["host"], r["check_id"]))
    now = time.time()
    return {
        "format": RESULTS_FORMAT, "suite_version": __version__,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(now - started, 3), "profile": profile,
        "summary": summarize(records), "results": records,
    }


def write(path: str, records: list[dict[str, Any]], started: float, profile: str | None) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(document(records, started, profile), handle, indent=1)
        handle.write("\n")
    os.replace(path + ".tmp", path)
