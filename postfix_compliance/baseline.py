"""--baseline FILE: compare this run with a pre-change run's results.json.

The changes (also in results.json as "changes", and in the HTML report):
  regressions      a check that passed before and fails or errors now (waived or not: a waiver
                   accepts a known state, not a new breakage; regressions make the exit status 1)
  fixes            a check that failed or errored before and passes now
  other            any other outcome change (not applicable -> fail, fail -> error, check added...)
  new_avc_denials  AVC/USER_AVC denials for Postfix domains in AVC-002's evidence that the
                   baseline's AVC-002 evidence did not have, compared by what was denied
                   (scontext, tcontext, tclass, permissions, comm, path), not by pid, serial or time,
                   and stamped after the baseline run ended on that host's clock (each record's
                   host_clock); a login session's denials count only where the profile makes them
                   fail AVC-002; they make the exit status 1 too
  new_hosts / missing_hosts
The baseline is read as a run result (`read`: results_file.py, its AVC-002 evidence parsed once), and the
two runs are compared host by host, check by check. Hosts are matched by URL, else by the name they
report (`host_key`) when the baseline has one
host of that name: a snapshot of a machine before a change and one after it pair up even though their
snapshot:// paths differ. A host listed under a name two targets share is named "name (URL)".
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

from postfix_compliance import results_file
from postfix_compliance.denials import is_login_session, is_postfix
from postfix_compliance.run import CheckResult, HostResult, RunResult

AVC_CHECK = "AVC-002"
AVC_PROBE = "avc_denials"


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A pre-change run read back (`read`): its RunResult, each host's AVC-002 denials parsed once into
    `facts[AVC_PROBE]` as the results stage parses this run's, and where it came from."""
    run: RunResult
    source: Mapping[str, Any]  # {"path", "generated_at", "suite_version", "profile"}: shown in "changes"


def read(path: str) -> Baseline:
    """A results.json (format /1 or /2) as a Baseline; results_file.ResultsFileError names a bad file."""
    doc = results_file.load(path)
    return from_document(doc, path)


def from_document(doc: Mapping[str, Any], path: str | None = None) -> Baseline:
    run = results_file.run_from_document(doc)
    hosts = tuple(dataclasses.replace(h, facts={AVC_PROBE: _avc_fact(h)}) if h.check(AVC_CHECK) else h
                  for h in run.hosts)
    return Baseline(run=run.replace(hosts=hosts),
                    source={"path": path, "generated_at": doc.get("generated_at"),
                            "suite_version": doc.get("suite_version"), "profile": doc.get("profile")})


def _avc_fact(host: HostResult) -> Any:
    """The AVC-002 evidence of a baseline host parsed once (a file's raw evidence: this run's are parsed
    by the results stage); None when it has none that parses."""
    from postfix_compliance.facts import model
    from postfix_compliance.facts.evidence import Evidence
    from postfix_compliance.facts.parsers.audit import parse_avc_denials
    denials: list[Any] = []
    for raw in host.evidence_of(host.check(AVC_CHECK)):
        if raw.get("probe") != AVC_PROBE:
            continue
        try:
            fact = parse_avc_denials(Evidence.from_dict(raw))
        except Exception:  # the parsers never raise on odd output; a mangled record is no denial
            continue
        if isinstance(fact, model.AvcDenials):
            denials += fact.denials
    return model.AvcDenials(denials=tuple(denials)) if denials else None


def host_key(host: HostResult) -> str:
    """How runs are matched host by host: the name the host reports (its hostname, or a snapshot's
    "host"), so a pre-change snapshot and a post-change one of the same machine pair up."""
    return host.name or host.id


def run_ends(run: RunResult) -> dict[str, tuple[float, int]]:
    """When a run ended on each host's own clock: host URL (and the reported name, where only one host
    has it) -> (seconds since the epoch, the host's UTC offset). Read from each check's `host_clock` (the
    latest); hosts without one (older results, snapshots) are left out."""
    ends: dict[str, tuple[float, int]] = {}
    for host, check in run.checks():
        clock = check.host_clock
        if not isinstance(clock, Mapping) or not isinstance(clock.get("now"), (int, float)) \
                or not isinstance(clock.get("utc_offset"), int):
            continue
        if host.id not in ends or clock["now"] > ends[host.id][0]:
            ends[host.id] = (float(clock["now"]), clock["utc_offset"])
    names: dict[str, set[str]] = {}
    for host in _checked(run.hosts):
        if host.id in ends:
            names.setdefault(host_key(host), set()).add(host.id)
    for name, ids in names.items():
        if len(ids) == 1 and name not in ends:
            ends[name] = ends[next(iter(ids))]
    return ends


def _checked(hosts: Iterable[HostResult]) -> list[HostResult]:
    return [h for h in hosts if h.checks]


def _labels(hosts: list[HostResult]) -> dict[str, str]:
    """How each host of a run is named in the changes: its name, or name and URL when two of the
    run's targets report the same name (a pre- and post-change snapshot of one machine, say)."""
    names: dict[str, set[str]] = {}
    for h in hosts:
        names.setdefault(host_key(h), set()).add(h.id)
    return {h.id: host_key(h) if len(names[host_key(h)]) == 1 else f"{host_key(h)} ({h.id})" for h in hosts}


def _brief(host: HostResult, check: CheckResult, label: str) -> dict[str, Any]:
    return {"host": host.id, "host_name": host.name, "label": label, "check_id": check.check_id,
            "title": check.title, "severity": check.severity}


def _by_id(host: HostResult) -> dict[str, CheckResult]:
    return {c.check_id: c for c in host.checks}


def compare(baseline: Baseline, run: RunResult) -> dict[str, Any]:
    """Match each host of this run with the baseline's (same URL, else same reported name when the
    baseline has one host of that name), then compare check by check. A denial is new only when the
    baseline had none like it and it was stamped after the baseline run ended on that host's clock:
    what happened before, the baseline run itself included, is not the change's doing."""
    before_hosts, after_hosts = _checked(baseline.run.hosts), _checked(run.hosts)
    before = {h.id: h for h in before_hosts}
    ends = run_ends(baseline.run)
    base_names: dict[str, set[str]] = {}
    for h in before_hosts:
        base_names.setdefault(host_key(h), set()).add(h.id)
    labels_before, labels_after = _labels(before_hosts), _labels(after_hosts)
    match: dict[str, str | None] = {}
    for host in after_hosts:
        if host.id in before:
            match[host.id] = host.id
            continue
        candidates = base_names.get(host_key(host), set())
        match[host.id] = next(iter(candidates)) if len(candidates) == 1 else None
    regressions, fixes, other, new_denials = [], [], [], []
    for host in sorted({h.id: h for h in after_hosts}.values(), key=lambda h: labels_after[h.id]):
        base_id = match[host.id]
        if base_id is None:
            continue  # a new host: listed once as such
        base_host = before[base_id]
        was_checks, now_checks = _by_id(base_host), _by_id(host)
        for check_id, now in sorted(now_checks.items()):
            was = was_checks.get(check_id)
            old = was.underlying_outcome if was else None
            new = now.underlying_outcome
            shown_old = was.outcome if was else None
            if not (old == new and shown_old == now.outcome):
                change = {**_brief(host, now, labels_after[host.id]), "before": shown_old, "after": now.outcome,
                          "message": now.message}
                if old == "pass" and new in ("fail", "error"):
                    regressions.append(change)
                elif old in ("fail", "error") and new == "pass":
                    fixes.append(change)
                else:
                    other.append(change)
            if check_id == AVC_CHECK:
                known = {_denial_key(d) for d in (_postfix_denials(base_host.facts.get(AVC_PROBE), host.domain_prefix)
                                                  if was else ())}
                ended = ends.get(base_id, (None, 0))[0]
                for denial in current_denials(host):
                    identity = _denial_key(denial)
                    if ended is not None and denial.get("timestamp", ended + 1) <= ended:
                        continue  # before the baseline run ended
                    if not host.session_denials_fail and is_login_session(denial, host.session_types):
                        continue  # a login session's: not counted by AVC-002 either
                    if identity not in known:
                        known.add(identity)
                        new_denials.append({"host": host.id, "host_name": host.name,
                                            "label": labels_after[host.id], **denial})
        for check_id, was in sorted(was_checks.items()):
            if check_id not in now_checks:
                other.append({**_brief(base_host, was, labels_before[base_id]), "host": host.id,
                              "label": labels_after[host.id], "before": was.outcome, "after": None,
                              "message": "not checked in this run"})
    matched = {m for m in match.values() if m is not None}
    return {
        "baseline": dict(baseline.source),
        "regressions": regressions, "fixes": fixes, "other": other, "new_avc_denials": new_denials,
        "new_hosts": sorted(labels_after[h] for h, m in match.items() if m is None),
        "missing_hosts": sorted(labels_before[h] for h in before if h not in matched),
    }


def _denial_key(denial: dict[str, Any]) -> tuple:
    return (denial["scontext"], denial["tcontext"], denial["tclass"], tuple(sorted(denial["permissions"])),
            denial.get("comm") or "", denial.get("path") or "")


def current_denials(host: HostResult) -> list[dict[str, Any]]:
    """This run's Postfix-domain denials on a host, from the structured facts the results stage parsed."""
    return _postfix_denials(host.facts.get(AVC_PROBE), host.domain_prefix)


def _postfix_denials(fact: Any, prefix: str) -> list[dict[str, Any]]:
    from postfix_compliance.facts import model
    if not isinstance(fact, model.AvcDenials):
        return []
    return [{"record_type": d.record_type, "scontext": d.scontext, "tcontext": d.tcontext, "tclass": d.tclass,
             "permissions": list(d.permissions), "comm": d.comm, "path": d.path, "permissive": d.permissive,
             "timestamp": d.timestamp, "raw": d.raw}
            for d in fact.denials if is_postfix(d, prefix)]  # the suite's one Postfix-denial filter
