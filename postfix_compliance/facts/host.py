"""HostFacts: one host's evidence, parsed on demand into facts, cached for all its checks."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterable

import pytest

from postfix_compliance.errors import EvidenceError, HostUnreachable
from postfix_compliance.facts import model
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.facts.parsers import parse
from postfix_compliance.facts.probes import MAIL_SYSTEM_DOWN, QUEUE_MISLABELLED, boolean_probe_name

COMMAND_IN_MESSAGE = 100  # characters of a probe's command a check's error message quotes


NotApplicable = pytest.skip.Exception  # a check that does not apply to a host is skipped, with the reason


def not_applicable(reason: str) -> BaseException:
    """Raise this from a check: outcome "not_applicable", with the reason in every report."""
    return pytest.skip.Exception(f"not applicable: {reason}")


class HostFacts:
    """What checks are given: typed facts of one host, plus the evidence behind each."""

    def __init__(self, host_id: str, name: str, evidence: dict[str, Evidence], profile: Any,
                 runner: Any = None, error: str | None = None):
        self.host_id = host_id
        self.name = name
        self.evidence = evidence
        self.profile = profile
        self.runner = runner
        self.error = error
        self._parsed: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.accessed: list[str] = []  # probes a check looked at, in order, for its report
        self.extra_evidence: list[Evidence] = []  # e.g. the queue polls of the drain check
        self.all_extra_evidence: list[Evidence] = []  # every such run of the session, for snapshots
        self.notes: list[str] = []
        self.message = ""
        self.collect_started_wall: float | None = None  # this machine's clock when collection began
        self.not_run: dict[str, str] = {}  # probe -> why this run left it out
        self.since = "recent"  # the audit and log window (ausearch -ts form)
        # The queue drain (Q-002's flush and polls), when this run has it for this host: run once,
        # shared with Q-001 and the later stages, which judge the queue after it (see drained(),
        # stage_evidence()).
        self.drain_plan: Any = None
        self._drain: Any = None
        self._drain_evidence: list[Evidence] = []

    # ------------------------------------------------------------------ access
    def start_check(self) -> None:
        self.accessed = []
        self.extra_evidence = []
        self.notes = []
        self.message = ""

    def say(self, text: str) -> None:
        """The check's message when it passes (a failure's message is its assertion's)."""
        self.message = text

    def note(self, text: str) -> None:
        """A line for the check's record (e.g. how long a decision took), shown whatever the outcome."""
        self.notes.append(text)

    def _note(self, probe: str) -> None:
        if probe not in self.accessed:
            self.accessed.append(probe)

    def get(self, probe: str) -> Any:
        """The fact from one probe: a model fact, Unparsed or Unavailable."""
        if self.error:
            raise HostUnreachable(self.error)
        self._note(probe)
        return self.peek(probe)

    def peek(self, probe: str) -> Any:
        """Like get(), without counting the probe as evidence of the current check."""
        with self._lock:
            if probe not in self._parsed:
                ev = self.evidence.get(probe)
                if ev is None:  # nobody collected it: the check is an error naming the probe, never a fail
                    self._parsed[probe] = model.Unparsed(probe, "probe was not run in this run (a probe of "
                                                                "your own: register it with pytest_compliance_probes)")
                else:
                    self._parsed[probe] = parse(ev)
            return self._parsed[probe]

    def collected(self, probe: str) -> bool:
        """Whether the probe ran for this run (an image gate runs only the static ones)."""
        return probe in self.evidence

    def need(self, probe: str) -> Any:
        """The fact, or an error (unparsed output) / not-applicable (subsystem absent) outcome."""
        fact = self.get(probe)
        if isinstance(fact, model.Unparsed):
            ev = self.evidence.get(probe)
            # A long probe script (the queue's guards) stays in the evidence, not in every message.
            command = (f" ({ev.command})" if len(ev.command) <= COMMAND_IN_MESSAGE else " (its command: see the "
                       "evidence)") if ev else ""
            raise EvidenceError(f"probe {probe}{command}: {fact.reason}")
        if isinstance(fact, model.Unavailable):
            raise not_applicable(f"{probe}: {fact.reason}")
        return fact

    @staticmethod
    def usable(fact: Any) -> bool:
        return not isinstance(fact, (model.Unparsed, model.Unavailable))

    def stage_evidence(self, probes: Iterable[str]) -> dict[str, Evidence]:
        """The evidence of each named probe this run collected (the others left out), as the host stood
        when the checks were done: where this run's flush drained the queue, the queue is the drain's last
        poll, under that poll's probe name. The stages after the checks (triage, the playbook) read these."""
        found = {probe: self.evidence[probe] for probe in probes if probe in self.evidence}
        drain = self._drain
        if drain is not None and drain.emptied and drain.final_evidence is not None \
                and drain.final_evidence.probe in found:
            found[drain.final_evidence.probe] = drain.final_evidence
        return found

    def host_time(self, client_now: float | None = None) -> tuple[float, int] | None:
        """(now on the host's clock, its UTC offset), or None. The host's clock was read at some moment of
        the collection, so now is placed no earlier than it is (late by at most the collection's time, plus
        the second that `date +%s` truncates): what happened on the host up to now is before it."""
        clock = self.peek("host_clock")
        if not isinstance(clock, model.HostClock) or self.collect_started_wall is None:
            return None
        now = time.time() if client_now is None else client_now
        return now + (clock.epoch + 1 - self.collect_started_wall), clock.utc_offset

    # ------------------------------------------------------------------ the queue drain
    def drain(self, settled: Callable[[model.QueueState], bool]) -> Any:
        """Q-002's drain (flush once, poll until `settled(queue)`, the checks' judgement), run by its first
        caller and shared (Q-001 and Q-002 pass the same predicate); its evidence is shown by each check
        that asks for it."""
        if self._drain is None:
            from postfix_compliance.facts.queue_drain import drain_queue
            plan = self.drain_plan
            mark = len(self.extra_evidence)
            self._drain = drain_queue(self, settled, plan.timeout, plan.poll_interval, flush=plan.flush)
            self._drain_evidence = self.extra_evidence[mark:]
        else:
            self.extra_evidence.extend(e for e in self._drain_evidence if e not in self.extra_evidence)
        return self._drain

    def drained(self, settled: Callable[[model.QueueState], bool]) -> Any:
        """The drain outcome when this run flushes this host's queue (Q-002 selected, flushing allowed),
        running it if need be; else None (the queue is judged as collected)."""
        if self.drain_plan is None or not self.drain_plan.flush:
            return None
        return self.drain(settled)

    # ------------------------------------------------------------------ derived facts
    def boolean(self, name: str) -> Any:
        return self.get(boolean_probe_name(name))

    def queue(self) -> model.QueueState:
        """The queue from `postqueue -j`, or from mailq text where -j is unavailable (Postfix < 3.1)."""
        fact = self.get("queue_json")
        if isinstance(fact, model.Unavailable) and fact.reason == MAIL_SYSTEM_DOWN:
            raise not_applicable("the mail system is down (no running master process; see SVC-001): the "
                                 "queue is read only through master, so that no Postfix program runs inside "
                                 "the scan's login session")
        if isinstance(fact, model.Unavailable) and fact.reason == QUEUE_MISLABELLED:
            raise not_applicable("the queue's directories do not carry the policy's labels (see LBL-002): it is "
                                 "not read, so that no Postfix program is denied, and audited, on the scan's "
                                 "behalf")
        if isinstance(fact, model.Unavailable):
            return self.need("queue_text")
        if isinstance(fact, model.Unparsed):
            return self.need("queue_json")
        return fact

    def postconf(self, param: str) -> str | None:
        """A Postfix parameter's value as `postconf` printed it. One that was not asked for is an error naming
        the hook that asks for it (never None, which a check would read as "unset")."""
        config = self.need("postconf")
        ev = self.evidence.get("postconf")
        asked = ev.command.split()[1:] if ev is not None else []
        if param not in config.params and param not in asked:
            raise EvidenceError(f"postconf parameter {param} is not in this host's postconf evidence ({ev.command if ev else 'none'}): "
                                "ask for it with the pytest_compliance_postconf_params hook (docs/architecture.md, "
                                "\"Extending the suite\"); a snapshot answers only what it recorded")
        return config.params.get(param)

    def postfix_installed(self) -> bool:
        return self.usable(self.get("postconf"))

    def record(self, evidence: Evidence) -> None:
        self.extra_evidence.append(evidence)
        self.all_extra_evidence.append(evidence)

    def evidence_for_report(self) -> list[Evidence]:
        shown = [self.evidence[p] for p in self.accessed if p in self.evidence]
        return shown + self.extra_evidence
