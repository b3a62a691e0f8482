"""What an error message says: the cause, in a line a person reads; never a 400-character probe script."""

from __future__ import annotations

import pytest

from postfix_compliance.errors import EvidenceError
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.facts.host import COMMAND_IN_MESSAGE, HostFacts
from postfix_compliance.facts.probes import build_probes


def _facts(probe: str, command: str, stdout: str) -> HostFacts:
    return HostFacts("ssh://mail1", "mail1", {probe: Evidence(probe, command, 0, stdout, "", 0.1)}, None)


def test_a_long_probe_script_stays_in_the_evidence_not_in_the_message():
    [queue] = [p for p in build_probes() if p.name == "queue_json"]
    assert len(queue.command) > COMMAND_IN_MESSAGE  # the queue's guards: a script, not a command
    facts = _facts("queue_json", queue.command, "this is not JSON\n")
    with pytest.raises(EvidenceError) as caught:
        facts.need("queue_json")
    message = str(caught.value)
    assert message.startswith("probe queue_json (its command: see the evidence): ")
    assert queue.command not in message and len(message) < 300


def test_a_short_command_is_quoted_in_the_message():
    facts = _facts("getenforce", "getenforce", "Sideways\n")
    with pytest.raises(EvidenceError, match=r"^probe getenforce \(getenforce\): "):
        facts.need("getenforce")
