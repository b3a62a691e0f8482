"""The verdict step: the one place where, after the checks, outcomes and the exit status are decided.

    decide(run, waivers=..., baseline=...) -> a new RunResult

in this order, each step a pure function of the run it is given:
  1. triage     each host's one correlated finding (triage.py), from the structured facts the results
                stage parsed (`HostResult.facts`: the queue as the suite's flush left it, the denials,
                labels, booleans); it changes no outcome, it explains them;
  2. waivers    a failing check a valid waiver covers becomes "waived" (waivers.py); an expired waiver
                is recorded on the check, which still fails;
  3. plan       each host's remediation plan (remediation_plan.py) from its failed checks and triage's
                causes; the triage card's Fix, Verify and Rollback are read from it;
  4. baseline   the comparison with a pre-change run (baseline.py): regressions and new AVC denials.
Then the exit status: 2 when a check could not be judged, 1 when one failed (or the baseline found a
regression or a new denial, or a waiver expired), else 0.

pytest's own per-check report (terminal, JUnit) shows a waived check as skipped as soon as it ran;
it asks `waive` here, the same function step 2 applies, so both always agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from postfix_compliance import triage
from postfix_compliance.run import CheckResult, HostResult, RunResult
from postfix_compliance.waivers import WaiverFile

if TYPE_CHECKING:  # read by the baseline step only
    from postfix_compliance.baseline import Baseline


def decide(run: RunResult, *, waivers: WaiverFile | None = None,
           baseline: Baseline | None = None) -> RunResult:
    run = triage_step(run)
    run = waiver_step(run, waivers)
    run = plan_step(run)
    run = baseline_step(run, baseline)
    return run.replace(status=exit_status(run))


def triage_step(run: RunResult) -> RunResult:
    return run.replace(hosts=tuple(host_with_diagnosis(h) for h in run.hosts))


def host_with_diagnosis(host: HostResult) -> HostResult:
    """The host with its triage finding, from its structured facts (hosts with none keep theirs: a
    run read back from results.json carries the finding its run made)."""
    if host.error or host.profile is None or not host.facts:
        return host
    finding = triage.diagnose(_fact_getter(host), host.domain_prefix, host.session_types)
    # Raw here: its remedies carry the host's values as the host wrote them (the plan quotes them where they
    # stand in a command); the plan step stores it made inert, for showing.
    return _replace_host(host, diagnosis=finding.to_dict() if finding else None)


def _fact_getter(host: HostResult) -> Callable[[str], Any]:
    from postfix_compliance.facts import model

    def get(probe: str) -> Any:
        fact = host.facts.get(probe)
        return fact if fact is not None else model.Unparsed(probe, "probe was not run")
    return get


def waive(waivers: WaiverFile | None, host: HostResult, check: CheckResult) -> CheckResult:
    """A check as the waivers leave it (unchanged without a waiver file)."""
    return waivers.cover(host, check) if waivers is not None else check


def waiver_step(run: RunResult, waivers: WaiverFile | None) -> RunResult:
    if waivers is None:
        return run
    hosts = tuple(_replace_host(h, checks=tuple(waive(waivers, h, c) for c in h.checks)) for h in run.hosts)
    run = run.replace(hosts=hosts)
    return run.replace(waivers=waivers.summary(run))


def plan_step(run: RunResult) -> RunResult:
    return run.replace(hosts=tuple(host_with_plan(h) for h in run.hosts))


def host_with_plan(host: HostResult) -> HostResult:
    """The host with its remediation plan (its failed checks, waived ones left out, and triage's causes),
    and its triage card filled in from it. A host read back from results.json keeps the plan its run made."""
    from postfix_compliance import remediation_plan
    from postfix_compliance.text import inert_data  # a finding quotes what the host printed
    shown = inert_data(dict(host.diagnosis)) if host.diagnosis else None
    if host.error or not host.checks or (host.plan is not None and not host.facts):
        return _replace_host(host, diagnosis=shown) if host.diagnosis else host
    plan = remediation_plan.build(host)
    diagnosis = inert_data(remediation_plan.card(plan, host.diagnosis)) if host.diagnosis else None
    return _replace_host(host, plan=plan, diagnosis=diagnosis)


def baseline_step(run: RunResult, baseline: Baseline | None) -> RunResult:
    if baseline is None:
        return run
    from postfix_compliance.baseline import compare
    return run.replace(changes=compare(baseline, run))


def exit_status(run: RunResult) -> int:
    outcomes = run.outcomes()
    status = 2 if "error" in outcomes else (1 if "fail" in outcomes else 0)
    if run.changes and (run.changes.get("regressions") or run.changes.get("new_avc_denials")):
        status = max(status, 1)
    if run.waivers and run.waivers.get("expired"):
        status = max(status, 1)  # an expired waiver's check fails already; this keeps it so
    return status


def _replace_host(host: HostResult, **changes: Any) -> HostResult:
    import dataclasses
    return dataclasses.replace(host, **changes)
