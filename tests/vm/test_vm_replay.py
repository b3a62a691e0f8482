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
    scenario = SCENARIOS[name]
    profile = os.path.join(REPO, scenario.profile) if "/" in scenario.profile else scenario.profile
    run = suite(f"--hosts=snapshot://{path}", f"--profile={profile}", "--poll-interval=0.01")
    outcomes = run.outcomes()
    assert outcomes, run.stdout[-3000:]
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


def test_scheduled_targeted_job_runs_the_targeted_tier():
    """The documented schedule for the targeted-policy tier (contrib/ci/vm-targeted.gitlab-ci.yml) parses and
    runs what it says: only on a schedule (or by hand), the vm_targeted marker, the tier switched on."""
    import yaml

    with open(os.path.join(REPO, "contrib", "ci", "vm-targeted.gitlab-ci.yml"), encoding="utf-8") as handle:
        job = yaml.safe_load(handle)["vm-targeted"]
    assert {rule["if"] for rule in job["rules"]} == {'$CI_PIPELINE_SOURCE == "schedule"',
                                                     '$CI_PIPELINE_SOURCE == "web"'}
    assert job["variables"]["POSTFIX_COMPLIANCE_VM_TARGETED"] == "1" and job["variables"]["RHEL_POLICY_DIR"]
    assert any("tests/vm -m vm_targeted" in line for line in job["script"])


# The denial every boot of the targeted guest logs (post-install's chmod as root, no fowner under RHEL's policy),
# as ausearch printed it there; the scenarios' window starts after it, so no recording carries it.
BOOT_CHMOD_DENIAL = (
    "----\ntime->Tue Dec  1 18:16:24 2026\n"
    "type=AVC msg=audit(1796148984.980:79): avc:  denied  { fowner } for  pid=485 comm=\"chmod\" capability=3  "
    "scontext=system_u:system_r:postfix_master_t:s0 tcontext=system_u:system_r:postfix_master_t:s0 "
    "tclass=capability permissive=0\n")


def test_a_capability_denial_names_its_class(suite, tmp_path):
    """AVC-002 on the targeted guest's boot denial: a capability has no object to name ("on ?" said nothing)."""
    with open(fixture_path("targeted-healthy"), encoding="utf-8") as handle:
        doc = json.load(handle)
    [record] = [e for e in doc["evidence"] if e["probe"] == "avc_denials"]
    record.update(stdout=BOOT_CHMOD_DENIAL, exit_status=0, stderr="")
    path = tmp_path / "vm-targeted-boot-denial.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    run = suite(f"--hosts=snapshot://{path}", "--profile=debian12-targeted", "-k", "AVC-002")
    avc = run.record("AVC-002")
    assert avc["outcome"] == "fail", avc
    assert "chmod (postfix_master_t) denied {fowner} (capability)" in avc["message"], avc["message"]
    assert "on ?" not in avc["message"], avc["message"]
