"""Offline: the evidence recorded on the real SELinux-enforcing guest (fixtures/hosts/vm-*.json) replays to
the scenario's truth, up to the known check deviations; and where today's checks say something else than
the live suite said when the evidence was recorded ("observed_outcomes"), only towards the truth.

No VM needed: these run everywhere, on the snapshot:// backend. (The live tier replays each snapshot right
after recording it and requires exactly the live outcomes.)
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from vm_scenarios import KNOWN, SCENARIOS, judge
from vmtier import GUEST_HOSTNAME, REPO


def fixture_path(name: str) -> str:
    return os.path.join(REPO, "fixtures", "hosts", f"vm-{name}.json")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recorded_guest_evidence_replays(name, suite):
    path = fixture_path(name)
    assert os.path.exists(path), f"{path} missing: record it with POSTFIX_COMPLIANCE_VM_RECORD=1 (tests/vm)"
    with open(path, encoding="utf-8") as handle:
        doc = json.load(handle)
    assert doc["host"] == GUEST_HOSTNAME
    run = suite(f"--hosts=snapshot://{path}", "--profile=debian12", "--poll-interval=0.01")
    outcomes = run.outcomes()
    assert outcomes, run.stdout[-3000:]
    scenario = SCENARIOS[name]
    truth = dict(scenario.truth)
    # LOG-001's truth was read from the guest's journal when recorded; it is in the recorded outcomes.
    if doc["observed_outcomes"].get("LOG-001") == "fail":
        truth["LOG-001"] = "fail"
    else:
        truth.pop("LOG-001", None)
    scenario = dataclasses.replace(scenario, truth=truth)
    unexpected, seen = judge(scenario, outcomes)
    assert not unexpected, unexpected
    for line in seen:
        assert line.split()[0] in KNOWN
    recorded = doc["observed_outcomes"]
    drift = {cid: (recorded.get(cid), got) for cid, got in outcomes.items() if recorded.get(cid) != got}
    away = {cid: d for cid, d in drift.items() if d[1] != expected(scenario, cid)}
    assert not away, f"replay differs from the recorded live outcomes, away from the truth: {away}"


def expected(scenario, cid: str) -> str:
    return scenario.truth.get(cid) or ("not_applicable" if cid in scenario.na else "pass")


def test_fixtures_stay_small():
    sizes = {name: os.path.getsize(fixture_path(name)) for name in SCENARIOS if os.path.exists(fixture_path(name))}
    assert max(sizes.values()) < 60_000 and sum(sizes.values()) < 30_000 * len(sizes), sizes
