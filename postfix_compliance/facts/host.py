"""HostFacts: one host's evidence, parsed on demand into facts, cached for all its checks."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from postfix_compliance.errors import EvidenceError, HostUnreachable
from postfix_compliance.facts import model
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.facts.parsers import parse
from postfix_compliance.facts.probes import boolean_probe_name


NotApplicable = pytest.skip.Exception  # a check that does not apply to a host is skipped, with the reason


def not_applicable(reason: str) -> BaseException:
    """Raise this from a check: outcome "not_applicable", with the reason in every report."""
    return pytest.skip.Exception(f"not applicable: {reason}")


class HostFacts:
    """What checks are given: typed facts of one host, plus the evidence behind each."""

    def __init__(self, host_id: str, name: str, evidence: dict[str, Evidence], profile: Any,
                 runner: Any = None, options: Any = None, error: str | None = None):
        self.host_id = host_id
        self.name = name
        self.evidence = evidence
        self.profile = profile
        self.runner = runner
        self.options = options
        self.error = error
        self._parsed: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.accessed: list[str] = []  # probes a check looked at, in order, for its report
        self.extra_evidence: list[Evidence] = []  # e.g. the queue polls of the drain check
        self.all_extra_evidence: list[Evidence] = []  # every such run of the session, for snapshots
        self.notes: list[str] = []
        self.since = "recent"  # the audit and log window (ausearch -ts form)

    # ------------------------------------------------------------------ access
    def start_check(self) -> None:
        self.accessed = []
        self.extra_evidence = []
        self.notes = []

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
                if ev is None:
                    self._parsed[probe] = model.Unparsed(probe, "probe was not run")
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
            command = f" ({ev.command})" if ev else ""
            raise EvidenceError(f"probe {probe}{command}: {fact.reason}")
        if isinstance(fact, model.Unavailable):
            raise not_applicable(f"{probe}: {fact.reason}")
        return fact

    @staticmethod
    def usable(fact: Any) -> bool:
        return not isinstance(fact, (model.Unparsed, model.Unavailable))

    def diagnosis(self) -> dict[str, Any] | None:
        """The host's triage finding (computed once from the collected facts), or None."""
        if not hasattr(self, "_diagnosis"):
            from postfix_compliance.triage import diagnose
            finding = None if self.error else diagnose(self.peek)
            self._diagnosis = finding.to_dict() if finding else None
        return self._diagnosis

    # ------------------------------------------------------------------ derived facts
    def boolean(self, name: str) -> Any:
        return self.get(boolean_probe_name(name))

    def queue(self) -> model.QueueState:
        """The queue from `postqueue -j`, or from mailq text where -j is unavailable (Postfix < 3.1)."""
        fact = self.get("queue_json")
        if isinstance(fact, model.Unavailable):
            return self.need("queue_text")
        if isinstance(fact, model.Unparsed):
            return self.need("queue_json")
        return fact

    def postconf(self, param: str) -> str | None:
        return self.need("postconf").params.get(param)

    def postfix_installed(self) -> bool:
        return self.usable(self.get("postconf"))

    def record(self, evidence: Evidence) -> None:
        self.extra_evidence.append(evidence)
        self.all_extra_evidence.append(evidence)

    def evidence_for_report(self) -> list[Evidence]:
        shown = [self.evidence[p] for p in self.accessed if p in self.evidence]
        return shown + self.extra_evidence
