"""The results stage: each check's outcome becomes a CheckResult; at the end, one RunResult is built,
decided by the verdict step (verdict.py) and handed to every renderer (plugin/outputs.py).

Where a check ran (this process, or an xdist worker) its CheckResult is made from pytest's report
(plugin/outcomes.py classifies it). What goes with it, once per host and process: the host's identity
and audit rules, each probe's evidence the first time a check read it, and the evidence of the probes
later stages read as typed facts (stage_probes.py; the queue as the suite's flush left it). In this
process nothing is serialised; a worker sends it as one JSON user property, decoded once.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from typing import Any

import pytest

from postfix_compliance import layout, verdict
from postfix_compliance.checks import meta_of
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.plugin.collection import FACTS
from postfix_compliance.plugin.outcomes import classify, expected, make_inert
from postfix_compliance.plugin.targets import HostTarget
from postfix_compliance.run import CheckResult, HostResult, RunResult, evidence_entries
from postfix_compliance.stage_probes import stage_probe_names
from postfix_compliance.text import inert, inert_data

PROPERTY = "compliance"  # a worker's payload for the controller (JSON), removed once read


class ResultsStage:
    """Per process: the checks' results as they arrive, and (on the controller) the run at the end."""

    def __init__(self, targets: list[HostTarget], started: float, profile: str | None, waivers: Any,
                 baseline: Any, sections: dict[str, Any] | None = None):
        self.targets = targets
        self.started = started
        self.profile = profile
        self.waivers = waivers
        self.baseline = baseline
        self.sections = sections or {}  # further top-level sections of results.json (e.g. "shard")
        self.headers: dict[str, dict[str, Any]] = {}  # host id -> identity and audit rules (the latest)
        self.checks: dict[str, list[CheckResult]] = {}  # host id -> its checks, in the order they ran
        self.bodies: dict[str, dict[str, dict[str, Any]]] = {}  # host id -> evidence id -> evidence
        self.stage: dict[str, dict[str, str]] = {}  # host id -> probe -> evidence id (typed facts' source)
        self.by_nodeid: dict[str, tuple[str, CheckResult]] = {}
        self._sent: dict[str, Any] = {}  # host id -> (header, stage refs) last sent from this process
        self._sent_refs: dict[str, set[str]] = {}  # host id -> evidence ids sent from this process
        self._stage_sent: dict[str, Any] = {}  # host id -> the stage refs whose bodies were sent
        self._host_parts: dict[str, Any] = {}
        # host id -> id(Evidence) -> (the Evidence, its entry): each Evidence hashed once, forgotten with its host
        self._entries: dict[str, dict[int, tuple[Evidence, tuple[str, dict[str, Any]]]]] = {}
        self._digest_parts: dict[str, dict[str, str]] = {}  # host id -> evidence id -> its JSON in a digest
        self._decided: RunResult | None = None
        self._identities: dict[str, tuple[Any, HostResult]] = {}  # host id -> (its header, identity-only HostResult)
        # In one process (no xdist worker in between): host id -> evidence id -> the typed fact this process
        # parsed from that evidence for the later stages, so that the end does not parse it again.
        self.keep_facts = False
        self._stage_facts: dict[str, dict[str, Any]] = {}
        self.finished = False  # every check ran: the run may be decided

    # ------------------------------------------------------------------ where the check ran
    def entries(self, host: str, evidence: list[Evidence]) -> list[tuple[str, dict[str, Any]]]:
        """(id, dict) of each Evidence, made once per Evidence object (a host's ps output is hashed
        once, not once per check that read it)."""
        table = self._entries.setdefault(host, {})
        out = []
        for ev in evidence:
            cached = table.get(id(ev))
            if cached is None or cached[0] is not ev:
                cached = table[id(ev)] = (ev, evidence_entries([ev])[0])
            out.append(cached[1])
        return out

    def digest(self, host: str, entries: list[tuple[str, dict[str, Any]]]) -> str:
        """results_file.evidence_digest of the entries' dicts, each evidence's JSON encoded once per host
        rather than once per check that read it: json.dumps of a list is its items' json.dumps joined by
        ", " in brackets, so the bytes hashed are the same."""
        parts = self._digest_parts.setdefault(host, {})
        encoded = []
        for ref, e in entries:
            part = parts.get(ref)
            if part is None:
                part = parts[ref] = json.dumps([e["command"], e["exit_status"], e["stdout"], e["stderr"], e["error"]])
            encoded.append(part)
        return hashlib.sha256(("[" + ", ".join(encoded) + "]").encode()).hexdigest()[:16]

    def forget(self, host: str) -> None:
        """Where the checks ran: the host is done, its evidence need not be kept for hashing."""
        self._entries.pop(host, None)
        self._digest_parts.pop(host, None)
        self._host_parts.pop(host, None)

    def payload(self, target: HostTarget, facts: Any, check: CheckResult,
                entries: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """What the controller needs with this check: the host's header and stage refs when they changed,
        and the evidence bodies this process has not sent for the host yet."""
        header, stage, stage_entries = self._host_part(target, facts)
        out: dict[str, Any] = {"host": target.id, "check": check}
        if self._sent.get(target.id) != (header, stage):
            self._sent[target.id] = (header, stage)
            out["header"], out["stage"] = header, stage
        bodies = {}
        sent = self._sent_refs.setdefault(target.id, set())
        for ref, body in entries:
            if ref not in sent:
                sent.add(ref)
                bodies[ref] = body
        if self._stage_sent.get(target.id) is not stage:  # the stage's bodies: once per host part made
            self._stage_sent[target.id] = stage
            for _, ref, body in stage_entries:
                if ref not in sent:
                    sent.add(ref)
                    bodies[ref] = body
        if bodies:
            out["bodies"] = bodies
        return out

    def _host_part(self, target: HostTarget, facts: Any
                   ) -> tuple[dict[str, Any], dict[str, str], list[tuple[str, str, dict]]]:
        """The host's header, its stage refs (probe -> evidence id) and its stage evidence entries, made again
        only when the drain has run since (it changes which queue the later stages read), not once per check
        (the same objects each time: comparing them with what was sent is an identity check)."""
        key = (id(facts), getattr(facts, "_drain", None) is not None)
        cached = self._host_parts.get(target.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        header = host_header(target, facts)
        stage_entries: list[tuple[str, str, dict[str, Any]]] = []
        if facts is not None and not facts.error:
            chosen = facts.stage_evidence(stage_probe_names(facts.evidence))
            stage_entries = [(probe, ref, body) for probe, (ref, body)
                             in zip(chosen, self.entries(target.id, list(chosen.values())))]
            if self.keep_facts:
                self._keep_stage_facts(target.id, facts, chosen, stage_entries)
        part = (header, {probe: ref for probe, ref, _ in stage_entries}, stage_entries)
        self._host_parts[target.id] = (key, part)
        return part

    def _keep_stage_facts(self, host: str, facts: Any, chosen: dict[str, Evidence],
                          stage_entries: list[tuple[str, str, dict[str, Any]]]) -> None:
        """The typed facts of the stage evidence, parsed here once: the host's own parse where the evidence is
        the one its checks read (the same Evidence), else the evidence's (the drain's last poll). The end
        would parse the same evidence, rebuilt from its dict, to the same fact."""
        from postfix_compliance.facts.parsers import parse
        kept = self._stage_facts.setdefault(host, {})
        for probe, ref, _ in stage_entries:
            if ref not in kept:
                ev = chosen[probe]
                kept[ref] = facts.peek(probe) if facts.evidence.get(probe) is ev else parse(ev)

    # ------------------------------------------------------------------ on the controller
    def ingest(self, nodeid: str, payload: dict[str, Any]) -> None:
        host = payload["host"]
        check = payload["check"]
        if isinstance(check, dict):
            check = CheckResult(**{k: tuple(v) if isinstance(v, list) else v for k, v in check.items()})
        if "header" in payload:
            self.headers[host] = payload["header"]
            self.stage[host] = payload["stage"]
        self.bodies.setdefault(host, {}).update(payload.get("bodies") or {})
        self.checks.setdefault(host, []).append(check)
        self.by_nodeid[nodeid] = (host, check)

    def identity(self, host: str) -> HostResult:
        """host_result(host, with_checks=False), made once per header the host has (each report adapter asks
        for it, check by check)."""
        header = self.headers.get(host)
        cached = self._identities.get(host)
        if cached is None or cached[0] is not header:
            cached = self._identities[host] = (header, self.host_result(host, with_checks=False))
        return cached[1]

    def host_result(self, host: str, with_checks: bool = True) -> HostResult:
        header = self.headers.get(host) or {"name": host}
        bodies = self.bodies.get(host, {})
        checks = tuple(self.checks.get(host, ())) if with_checks else ()
        refs = {ref for c in checks for ref in c.evidence_refs}
        return HostResult(
            id=host, name=header.get("name") or host, profile=header.get("profile"), checks=checks,
            evidence={ref: body for ref, body in bodies.items() if ref in refs},
            facts=_parse_stage(self.stage.get(host, {}), bodies, self._stage_facts.get(host)) if with_checks else {},
            domain_prefix=header.get("domain_prefix") or "postfix_",
            session_types=tuple(header.get("session_types") or ()),
            session_denials_fail=bool(header.get("session_denials_fail")), error=header.get("error"),
            expected=header.get("expected") or {})

    def run(self, ended: float | None = None) -> RunResult:
        """The run as the checks left it (before the verdict): hosts in the order the run named them."""
        order = [t.id for t in self.targets if t.id in self.checks]
        named = set(order)
        order += [h for h in self.checks if h not in named]
        return RunResult(started=self.started, ended=ended or time.time(), profile=self.profile,
                         hosts=tuple(self.host_result(h) for h in order), sections=dict(self.sections))

    def decided(self) -> RunResult:
        """The decided run, built once (call it after all checks ran)."""
        if self._decided is None:
            self._decided = verdict.decide(self.run(), waivers=self.waivers, baseline=self.baseline)
        return self._decided


def host_header(target: HostTarget, facts: Any) -> dict[str, Any]:
    profile = getattr(facts, "profile", None)
    return {
        "name": inert(facts.name) if facts is not None else target.id,
        "profile": profile.name if profile is not None else None,
        "domain_prefix": profile.postfix_domain_prefix if profile is not None else "postfix_",
        "session_types": list(profile.login_session_types) if profile is not None else [],
        "session_denials_fail": bool(profile.login_session_denials_fail) if profile is not None else False,
        "expected": profile.expected() if profile is not None else {},
        "error": facts.error if facts is not None else None,
    }


def _parse_stage(stage: dict[str, str], bodies: dict[str, dict[str, Any]],
                 parsed: dict[str, Any] | None = None) -> dict[str, Any]:
    """probe -> typed fact of the host's stage evidence; `parsed` has the facts parsed already by evidence id
    (an id is a hash of everything recorded: the same id, the same evidence, the same fact)."""
    from postfix_compliance.facts.parsers import parse
    facts = {}
    for probe, ref in stage.items():
        body = bodies.get(ref)
        if body is not None:
            facts[probe] = parsed[ref] if parsed and ref in parsed else parse(Evidence.from_dict(body))
    return facts


STAGE = pytest.StashKey[ResultsStage]()


def stage_of(config: pytest.Config) -> ResultsStage:
    return config.stash[STAGE]


# ---------------------------------------------------------------------- hooks
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report: pytest.TestReport = yield
    _record(item, call, report)
    return report


def _record(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
    """The check's CheckResult from its decisive report (and the report made inert, its text the verdict's)."""
    meta = meta_of(item)
    params = getattr(getattr(item, "callspec", None), "params", {})
    if meta is None or "host_target" not in params:
        return
    make_inert(report)
    decisive = report.when == "call" or (report.when == "setup" and not report.passed)
    if not decisive:
        return
    excinfo = call.excinfo
    target: HostTarget = params["host_target"]
    host_facts = item.stash.get(FACTS, None)
    # A host controls these bytes and they go to terminals and every report: control characters are
    # shown as text (\x1b) from here on. Commands in a message are quoted already (text.shell).
    compliance, message = classify(report, excinfo)
    if compliance == "pass" and host_facts is not None:
        message = host_facts.message
    message = inert(message)
    stage = stage_of(item.config)
    # A host that could not be checked keeps what it did answer (its os-release probe: why it failed).
    evidence = ((list(host_facts.evidence.values()) if host_facts.error else host_facts.evidence_for_report())
                if host_facts else [])
    entries = stage.entries(target.id, evidence)
    # The host's clock now (an upper bound): a later --baseline run places this run's end on it.
    clock = host_facts.host_time() if host_facts and not host_facts.error else None
    check = CheckResult(
        check_id=meta.id, title=meta.title, severity=meta.severity, section=meta.section, outcome=compliance,
        message=message, remediation=tuple(meta.remediation), rollback=tuple(meta.rollback),
        references=tuple(meta.references), evidence_refs=tuple(i for i, _ in entries),
        evidence_digest=stage.digest(target.id, entries), nodeid=check_nodeid(item),
        duration_s=round(report.duration, 3),
        notes=tuple(inert_data(list(host_facts.notes))) if host_facts else (),
        host_clock={"now": round(clock[0], 3), "utc_offset": clock[1]} if clock else None)
    payload = stage.payload(target, host_facts, check, entries)
    # pytest's own view of the check (terminal, JUnit) follows the verdict's waiver function.
    if stage.waivers is not None:
        header = stage._sent[target.id][0]
        check = verdict.waive(stage.waivers, HostResult(id=target.id, name=header["name"],
                                                        profile=header["profile"]), check)
    payload["check"] = check
    if hasattr(item.config, "workerinput"):
        payload["check"] = dataclasses.asdict(check)
        report.user_properties.append((PROPERTY, json.dumps(payload)))
    else:
        stage.ingest(item.nodeid, payload)
    if check.outcome == "waived" and not report.passed:
        # pytest's own counts and exit status follow the waiver too; the reason is the waiver's.
        report.outcome = "skipped"
        report.longrepr = (str(item.path), 0, inert(f"waived: {(check.waiver or {}).get('justification', '')}"))
        return
    if compliance in ("fail", "error") and expected(excinfo):
        # The check's message is the whole story; a traceback of the check's code is noise.
        report.longrepr = f"{meta.id} {inert(target.id)}: {compliance.upper()}: {message}"


def _ingest_report(config: pytest.Config, report: Any) -> None:
    """A worker's payload, decoded once on the controller (and taken off the report: reports live on)."""
    for key, value in list(getattr(report, "user_properties", ())):
        if key == PROPERTY:
            report.user_properties.remove((key, value))
            stage_of(config).ingest(report.nodeid, json.loads(value))


class WorkerResults:
    """Registered on the controller of an xdist run: takes each worker's payload off its report first,
    before the report adapters (JUnit names, HTML rows) ask for the check."""

    def __init__(self, config: pytest.Config):
        self.config = config

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        _ingest_report(self.config, report)


def start(config: pytest.Config, stage: ResultsStage) -> None:
    config.stash[STAGE] = stage
    if not hasattr(config, "workerinput"):
        stage.keep_facts = True  # the run is decided here: the stage evidence parsed once, where it is read
        config.pluginmanager.register(WorkerResults(config), "postfix-compliance-worker-results")


def check_of(config: pytest.Config, report: Any) -> tuple[HostResult, CheckResult] | None:
    """A per-test report's host (identity only) and check, waived if a waiver covers it; None for a
    report that is not a check's decisive one."""
    found = _recorded(config, report)
    if found is None:
        return None
    decisive = report.when == "call" or (report.when == "setup" and not report.passed)
    if not decisive:
        return None
    host, check = found
    return stage_of(config).identity(host), check


def recorded_outcome(config: pytest.Config, report: Any) -> str | None:
    """The outcome of the check a report (of any phase: setup, call, teardown) belongs to, once its
    decisive report was recorded; None for a report that is not a check's."""
    found = _recorded(config, report)
    return found[1].outcome if found is not None else None


def _recorded(config: pytest.Config, report: Any) -> tuple[str, CheckResult] | None:
    if STAGE not in config.stash:
        return None
    _ingest_report(config, report)
    return stage_of(config).by_nodeid.get(getattr(report, "nodeid", None))


def decided_run(config: pytest.Config) -> RunResult | None:
    """The decided run once all checks ran (sessionfinish, the report summaries); None before, and on an
    xdist worker."""
    if STAGE not in config.stash or hasattr(config, "workerinput") or not stage_of(config).finished:
        return None
    return stage_of(config).decided()


@pytest.hookimpl(hookwrapper=True, tryfirst=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_checks_done(session: pytest.Session) -> Any:
    """Before any plugin's sessionfinish (pytest-html writes its page there): the checks are done."""
    if STAGE in session.config.stash:
        stage_of(session.config).finished = True
    yield


def check_nodeid(item: pytest.Item) -> str:
    """A check's id as the clone names it (tests_host/test_x.py::test_y[...]), wherever the checks are
    installed and whatever the rootdir: results files of a clone's run and an installed run compare."""
    nodeid = item.nodeid
    relative = _clone_path(str(item.path), layout.CHECKS_DIR)
    if relative is not None and "::" in nodeid:
        return relative + "::" + nodeid.split("::", 1)[1]
    return nodeid


@functools.lru_cache(maxsize=256)  # one answer per checks file (a fleet asks once per check)
def _clone_path(path: str, checks_dir: str) -> str | None:
    """A file's path as the clone names it, or None for a file outside the checks directory."""
    if not path.startswith(checks_dir + os.sep):
        return None
    return os.path.relpath(path, os.path.dirname(checks_dir)).replace(os.sep, "/")

