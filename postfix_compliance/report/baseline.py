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

import dataclasses
import os
from typing import Any

import pytest

from postfix_compliance.denials import is_login_session
from postfix_compliance.report import results as results_report
from postfix_compliance.report.results import host_key, run_ends, underlying_outcome
from postfix_compliance.text import InertTerminal

BASELINE = pytest.StashKey[dict]()
CHANGES = pytest.StashKey[dict]()
AVC_CHECK = "AVC-002"
AVC_PROBE = "avc_denials"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("postfix-compliance")
    group.addoption("--baseline", metavar="FILE", default=None,
                    help="a results.json from the run before a change: report regressions, fixes, new AVC "
                         "denials, new/missing hosts; a regression or new denial makes the exit status 1")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("baseline", None)
    if not path or hasattr(config, "workerinput"):
        return
    try:
        doc = results_report.load(path)
    except ValueError as exc:
        raise pytest.UsageError(f"--baseline {exc}") from None
    doc["_path"] = path
    config.stash[BASELINE] = doc


def changes_of(config: pytest.Config) -> dict[str, Any] | None:
    """This run's changes against the baseline (computed once, after all checks ran), or None."""
    if BASELINE not in config.stash:
        return None
    if CHANGES not in config.stash:
        from postfix_compliance.plugin import STATE
        state = config.stash[STATE]
        config.stash[CHANGES] = compare(config.stash[BASELINE], state.results, _audit_rules(config, state.results))
    return config.stash[CHANGES]


def _audit_rules(config: pytest.Config, records: list[dict[str, Any]]) -> dict[str, AuditRules]:
    """Each profile's Postfix domain prefix and login-session rules (profiles keep the policy's type names)."""
    from postfix_compliance.profiles import load_profile
    rules = {}
    for name in {r.get("profile") for r in records if r.get("profile")}:
        try:
            profile = load_profile(name, config.getoption("profiles_dir"))
            rules[name] = AuditRules(profile.postfix_domain_prefix, profile.login_session_types,
                                     profile.login_session_denials_fail)
        except Exception:  # a profile given as a path that moved: the common prefix, every denial counts
            rules[name] = AuditRules()
    return rules


@dataclasses.dataclass(frozen=True)
class AuditRules:
    prefix: str = "postfix_"
    session_types: tuple[str, ...] = ()
    session_denials_fail: bool = True


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


def compare(baseline: dict[str, Any], records: list[dict[str, Any]],
            rules: dict[str, AuditRules] | None = None) -> dict[str, Any]:
    """Match each host of this run with the baseline's (same URL, else same reported name when the
    baseline has one host of that name), then compare check by check. A denial is new only when the
    baseline had none like it and it was stamped after the baseline run ended on that host's clock:
    what happened before, the baseline run itself included, is not the change's doing."""
    rules = rules or {}
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
                rule = rules.get(now.get("profile") or "", AuditRules())
                known = {_denial_key(d) for d in denials_of(was, rule.prefix)}
                ended = ends.get(base_host, (None, 0))[0]
                for denial in denials_of(now, rule.prefix):
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


def denials_of(record: dict[str, Any] | None, prefix: str = "postfix_") -> list[dict[str, Any]]:
    """The Postfix-domain denials in an AVC-002 record's evidence (parsed again from the raw output)."""
    if not record:
        return []
    from postfix_compliance.facts import model
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
        if not isinstance(fact, model.AvcDenials):
            continue
        for d in fact.denials:
            if (d.source_type or "").startswith(prefix):
                found.append({"record_type": d.record_type, "scontext": d.scontext, "tcontext": d.tcontext,
                              "tclass": d.tclass, "permissions": list(d.permissions), "comm": d.comm,
                              "path": d.path, "permissive": d.permissive, "timestamp": d.timestamp,
                              "raw": d.raw})
    return found


def pytest_compliance_finish(config: pytest.Config, records: list[dict[str, Any]], report_dir: str) -> int | None:
    changes = changes_of(config)
    if changes is None:
        return None
    if not config.getoption("no_reports"):
        results_report.add_sections(os.path.join(report_dir, "results.json"), {"changes": changes})
    return 1 if changes["regressions"] or changes["new_avc_denials"] else None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    changes = changes_of(config) if BASELINE in config.stash else None
    if changes is None:
        return
    tr = InertTerminal(terminalreporter)  # host names, paths, denials, file values: shown, never obeyed
    tr.write_sep("-", f"changes since baseline {changes['baseline']['path']}")
    for key, label, red in (("regressions", "REGRESSION", True), ("fixes", "fixed", False),
                            ("other", "changed", False)):
        for c in changes[key]:
            tr.write_line(f"{label}: {c['check_id']} on {c.get('label') or c['host']}: "
                          f"{c['before']} -> {c['after']}", red=red, green=not red and key == "fixes")
    for d in changes["new_avc_denials"]:
        tr.write_line(f"NEW AVC DENIAL on {d.get('label') or d['host']}: {d.get('comm') or '?'} denied "
                      f"{{{' '.join(d['permissions'])}}} on {d.get('path') or '?'} ({d['tcontext']}, {d['tclass']})",
                      red=True)
    for h in changes["new_hosts"]:
        tr.write_line(f"new host: {h}")
    for h in changes["missing_hosts"]:
        tr.write_line(f"missing host: {h} (in the baseline, not checked now)", yellow=True)
    tr.write_line(f"{len(changes['regressions'])} regressions, {len(changes['fixes'])} fixes, "
                  f"{len(changes['new_avc_denials'])} new AVC denials, {len(changes['new_hosts'])} new hosts, "
                  f"{len(changes['missing_hosts'])} missing hosts")
