"""The run result: what one run found, typed and immutable, between the checks and everything after.

    host -> evidence -> facts -> checks -> RunResult -> verdict (verdict.py) -> renderers (report/)

The plugin's results stage (plugin/results_stage.py) builds one `RunResult` when the checks are done;
the verdict step returns a new one with the triage findings, waivers and the baseline comparison
applied and the exit status decided; every renderer is a function of the decided run alone.
`fleet merge` reads results.json files into the same type (`from_document`).

Shaped to be streamed: a `HostResult` holds everything of one host (its checks, the evidence they
read, stored once, and the structured facts later stages read), nothing in it refers to another host,
and a renderer walks `run.hosts` host by host. A run of 1,000 hosts can hand the renderers its hosts
one at a time (an iterator reading them back from disk) instead of a tuple.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Iterator, Mapping

# A check's outcome, from the best to the worst a report sorts last.
OUTCOMES = ("pass", "fail", "error", "waived", "not_applicable")


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One check on one host: its metadata (from the catalogue), outcome, message, and the ids of the
    evidence it read (in its host's `evidence`)."""

    check_id: str
    title: str
    severity: str
    section: str
    outcome: str
    message: str
    remediation: tuple[str, ...] = ()
    rollback: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    evidence_refs: tuple[str, ...] = ()
    evidence_digest: str = ""
    nodeid: str = ""
    duration_s: float = 0.0
    notes: tuple[str, ...] = ()
    # The host's clock when this check was recorded: {"now": seconds, "utc_offset": seconds}, or None.
    host_clock: Mapping[str, Any] | None = None
    # Set by the verdict step: the waiver that covers (or, expired, no longer covers) this check.
    waiver: Mapping[str, Any] | None = None

    @property
    def underlying_outcome(self) -> str:
        """The check's own verdict: a waived check's is the outcome its waiver covered."""
        if self.outcome == "waived":
            return (self.waiver or {}).get("outcome") or "fail"
        return self.outcome


@dataclasses.dataclass(frozen=True)
class HostResult:
    """One host of the run: who it is, how it was judged, its checks and the evidence they read."""

    id: str  # the target as the run names it: "local", "ssh://mail1", "snapshot://fixtures/hosts/x.json"
    name: str  # the name the host reports (or a snapshot recorded)
    profile: str | None
    checks: tuple[CheckResult, ...] = ()
    # Each probe's evidence once: evidence id -> the evidence dict (probe, command, exit_status, ...).
    evidence: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    # Structured facts the later stages read (triage, the baseline's denials, the playbook): probe name
    # -> typed fact (facts/model.py), as the host stood when the checks were done (after the drain).
    facts: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # How this host's profile reads audit records: its Postfix domain prefix, the login-session types.
    domain_prefix: str = "postfix_"
    session_types: tuple[str, ...] = ()
    session_denials_fail: bool = False
    error: str | None = None  # the host could not be checked (unreachable, no profile, ...)
    # What the host's profile expects, as the remediation plan reads it (profiles.Profile.expected()).
    expected: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Set by the verdict step: the host's one triage finding (triage.Finding.to_dict(), its card filled in
    # from the plan), or None; and its remediation plan (remediation_plan.HostPlan), or None.
    diagnosis: Mapping[str, Any] | None = None
    plan: Any = None

    def evidence_of(self, check: CheckResult) -> list[Mapping[str, Any]]:
        return [self.evidence[ref] for ref in check.evidence_refs if ref in self.evidence]

    def check(self, check_id: str) -> CheckResult | None:
        return next((c for c in self.checks if c.check_id == check_id), None)

    def record(self, check: CheckResult, *, with_evidence: bool = False) -> dict[str, Any]:
        """The check as a results.json record (results_file.py documents the format)."""
        record = {
            "host": self.id, "host_name": self.name, "profile": self.profile, "check_id": check.check_id,
            "title": check.title, "severity": check.severity, "section": check.section,
            "outcome": check.outcome, "message": check.message, "remediation": list(check.remediation),
            "rollback": list(check.rollback), "references": list(check.references),
            "evidence_digest": check.evidence_digest, "evidence_refs": list(check.evidence_refs),
            "nodeid": check.nodeid, "duration_s": check.duration_s,
            "waiver": dict(check.waiver) if check.waiver is not None else None,
            "notes": list(check.notes), "host_clock": dict(check.host_clock) if check.host_clock else None,
            "diagnosis": self.diagnosis,
        }
        if with_evidence:
            record["evidence"] = self.evidence_of(check)
        return record

    def records(self, *, with_evidence: bool = False) -> list[dict[str, Any]]:
        return [self.record(c, with_evidence=with_evidence) for c in self.checks]


@dataclasses.dataclass(frozen=True)
class RunResult:
    """A whole run: its hosts in the order the run named them, and what the verdict step added."""

    started: float
    ended: float
    profile: str | None  # the --profile of the run, None when detected per host
    hosts: tuple[HostResult, ...] = ()
    # Set by the verdict step (None until then, or when the run had no --baseline / --waivers):
    changes: Mapping[str, Any] | None = None  # the comparison with a baseline (baseline.compare)
    waivers: Mapping[str, Any] | None = None  # which waivers applied, expired, matched nothing
    status: int | None = None  # the exit status the results decide (0, 1 or 2)
    # Further top-level sections of results.json (e.g. "fleet" from `fleet merge`).
    sections: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def checks(self) -> Iterator[tuple[HostResult, CheckResult]]:
        for host in self.hosts:
            for check in host.checks:
                yield host, check

    def records(self, *, with_evidence: bool = False) -> list[dict[str, Any]]:
        """Every check as a results.json record, host by host."""
        return [r for host in self.hosts for r in host.records(with_evidence=with_evidence)]

    def outcomes(self) -> set[str]:
        return {check.outcome for _, check in self.checks()}

    def replace(self, **changes: Any) -> RunResult:
        return dataclasses.replace(self, **changes)

    def inventory(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Target id -> (its name, its groups) in the Ansible inventory the run took it from (results.json's
        "inventory" section); hosts given as URLs are not in it."""
        found = {}
        for host_id, entry in (self.sections.get("inventory") or {}).items():
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                found[host_id] = (entry["name"], tuple(g for g in entry.get("groups") or () if isinstance(g, str)))
        return found


def check_from_record(record: Mapping[str, Any]) -> CheckResult:
    """A results.json record (format /1 or /2, as results_file.load returns it) as a CheckResult."""
    return CheckResult(
        check_id=record["check_id"], title=record.get("title") or "", severity=record.get("severity") or "",
        section=record.get("section") or "", outcome=record["outcome"], message=record.get("message") or "",
        remediation=tuple(record.get("remediation") or ()), rollback=tuple(record.get("rollback") or ()),
        references=tuple(record.get("references") or ()),
        evidence_refs=tuple(record.get("evidence_refs") or ()), evidence_digest=record.get("evidence_digest") or "",
        nodeid=record.get("nodeid") or "", duration_s=record.get("duration_s") or 0.0,
        notes=tuple(record.get("notes") or ()), host_clock=record.get("host_clock"), waiver=record.get("waiver"))


def hosts_from_records(records: Iterable[Mapping[str, Any]],
                       evidence: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
                       diagnosis: Mapping[str, Any] | None = None,
                       plans: Mapping[str, Any] | None = None) -> tuple[HostResult, ...]:
    """Records (with "evidence_refs" and a per-host evidence table, or format /1's inline "evidence")
    grouped into HostResults, in the order their hosts first appear; each with its plan when given."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record["host"], []).append(record)
    hosts = []
    for host_id, recs in grouped.items():
        table = dict((evidence or {}).get(host_id) or {})
        checks = []
        for record in recs:
            check = check_from_record(record)
            if "evidence" in record and not record.get("evidence_refs"):  # format /1: inline
                entries = evidence_entries(record["evidence"])
                table.update(entries)
                check = dataclasses.replace(check, evidence_refs=tuple(i for i, _ in entries))
            checks.append(check)
        first = recs[0]
        found = (diagnosis or {}).get(host_id, first.get("diagnosis"))
        plan = (plans or {}).get(host_id)
        hosts.append(HostResult(id=host_id, name=first.get("host_name") or host_id, profile=first.get("profile"),
                                checks=tuple(checks), evidence=table, diagnosis=found,
                                plan=plan))
    return tuple(hosts)


def evidence_entries(evidence: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
    """(evidence id, evidence dict) for Evidence objects (or dicts already): how a host's evidence table
    (HostResult.evidence, results.json's "evidence") names each."""
    from postfix_compliance.facts.evidence import evidence_id
    dicts = [e if isinstance(e, dict) else e.to_dict() for e in evidence]
    return [(evidence_id(d), d) for d in dicts]
