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
Hosts are matched by URL, else by the name they report (results.host_key) when the baseline has one
host of that name: a snapshot of a machine before a change and one after it pair up even though their
snapshot:// paths differ. A host listed under a name two targets share is named "name (URL)".
"""

from __future__ import annotations

from typing import Any

from postfix_compliance.denials import is_login_session, is_postfix
from postfix_compliance.report.results import host_key, run_ends, underlying_outcome
from postfix_compliance.run import HostResult, RunResult

AVC_CHECK = "AVC-002"
AVC_PROBE = "avc_denials"


def _labels(records: list[dict[str, Any]]) -> dict[str, str]:
    """How each host of a run is named in the changes: its name, or name and URL when two of the
    run's targets report the same name (a pre- and post-change snapshot of one machine, say)."""
    names: dict[str, set[str]] = {}
    for r in records:
        names.setdefault(host_key(r), set()).add(r["host"])
    return {r["host"]: host_key(r) if len(names[host_key(r)]) == 1 else f"{host_key(r)} ({r['host']})"
            for r in records}


def _brief(record: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return {"host": record["host"], "host_name": record.get("host_name"), "label": labels[record["host"]],
            "check_id": record["check_id"], "title": record.get("title"), "severity": record.get("severity")}


def compare(baseline: dict[str, Any], run: RunResult) -> dict[str, Any]:
    """Match each host of this run with the baseline's (same URL, else same reported name when the
    baseline has one host of that name), then compare check by check. A denial is new only when the
    baseline had none like it and it was stamped after the baseline run ended on that host's clock:
    what happened before, the baseline run itself included, is not the change's doing."""
    records = run.records()
    hosts = {h.id: h for h in run.hosts}
    ends = run_ends(baseline)
    before: dict[str, dict[str, dict[str, Any]]] = {}
    for r in baseline["results"]:
        before.setdefault(r["host"], {})[r["check_id"]] = r
    after: dict[str, dict[str, dict[str, Any]]] = {}
    for r in records:
        after.setdefault(r["host"], {})[r["check_id"]] = r
    base_names: dict[str, set[str]] = {}
    for r in baseline["results"]:
        base_names.setdefault(host_key(r), set()).add(r["host"])
    labels_before, labels_after = _labels(baseline["results"]), _labels(records)
    match: dict[str, str | None] = {}
    for host, checks in after.items():
        if host in before:
            match[host] = host
            continue
        candidates = base_names.get(host_key(next(iter(checks.values()))), set())
        match[host] = next(iter(candidates)) if len(candidates) == 1 else None
    regressions, fixes, other, new_denials = [], [], [], []
    for host in sorted(after, key=lambda h: labels_after[h]):
        base_host = match[host]
        if base_host is None:
            continue  # a new host: listed once as such
        for check_id, now in sorted(after[host].items()):
            was = before[base_host].get(check_id)
            old = underlying_outcome(was) if was else None
            new = underlying_outcome(now)
            shown_old = was["outcome"] if was else None
            if not (old == new and shown_old == now["outcome"]):
                change = {**_brief(now, labels_after), "before": shown_old, "after": now["outcome"],
                          "message": now.get("message", "")}
                if old == "pass" and new in ("fail", "error"):
                    regressions.append(change)
                elif old in ("fail", "error") and new == "pass":
                    fixes.append(change)
                else:
                    other.append(change)
            if check_id == AVC_CHECK:
                rule = hosts[host]
                known = {_denial_key(d) for d in denials_of(was, rule.domain_prefix)}
                ended = ends.get(base_host, (None, 0))[0]
                for denial in current_denials(rule):
                    identity = _denial_key(denial)
                    if ended is not None and denial.get("timestamp", ended + 1) <= ended:
                        continue  # before the baseline run ended
                    if not rule.session_denials_fail and is_login_session(denial, rule.session_types):
                        continue  # a login session's: not counted by AVC-002 either
                    if identity not in known:
                        known.add(identity)
                        new_denials.append({"host": now["host"], "host_name": now.get("host_name"),
                                            "label": labels_after[host], **denial})
        for check_id, was in sorted(before[base_host].items()):
            if check_id not in after[host]:
                other.append({**_brief(was, labels_before), "host": host, "label": labels_after[host],
                              "before": was["outcome"], "after": None, "message": "not checked in this run"})
    matched = {m for m in match.values() if m is not None}
    return {
        "baseline": {"path": baseline.get("_path"), "generated_at": baseline.get("generated_at"),
                     "suite_version": baseline.get("suite_version"), "profile": baseline.get("profile")},
        "regressions": regressions, "fixes": fixes, "other": other, "new_avc_denials": new_denials,
        "new_hosts": sorted(labels_after[h] for h, m in match.items() if m is None),
        "missing_hosts": sorted(labels_before[h] for h in before if h not in matched),
    }


def _denial_key(denial: dict[str, Any]) -> tuple:
    return (denial["scontext"], denial["tcontext"], denial["tclass"], tuple(sorted(denial["permissions"])),
            denial.get("comm") or "", denial.get("path") or "")


def denials_of(record: dict[str, Any] | None, prefix: str) -> list[dict[str, Any]]:
    """The Postfix-domain denials in a baseline's AVC-002 record (a file: its raw evidence parsed)."""
    if not record:
        return []
    from postfix_compliance.facts.evidence import Evidence
    from postfix_compliance.facts.parsers.audit import parse_avc_denials
    found = []
    for raw in record.get("evidence") or []:
        if raw.get("probe") != AVC_PROBE:
            continue
        try:
            fact = parse_avc_denials(Evidence.from_dict(raw))
        except Exception:  # the parsers never raise on odd output; a mangled record is no denial
            continue
        found += _postfix_denials(fact, prefix)
    return found


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
