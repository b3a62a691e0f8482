"""A site's own checks beside the suite's: their own section, their own probe and parser, one more postconf
parameter, and plain testinfra tests on testinfra's `host` fixture (tests/data/site_checks, a user's
repository in small), run on this machine and on a snapshot (tests/test_ssh.py: on a real sshd host).

A fact nobody collected is an error naming the hook to register it, never a FAIL ("myhostname unset" on a
host that sets it) and never a pass."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from postfix_compliance.facts.probes import Probe, build_probes
from selftest import REPO, snapshot

SITE = os.path.join(REPO, "tests", "data", "site_checks")


def _run(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    site = tmp_path / "site"  # outside the clone, as a user's repository is
    shutil.copytree(SITE, site)
    report = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-c", os.path.join(REPO, "pytest.ini"), "-p", "no:randomly",
                           f"--report-dir={report}",
                           "--no-flush", *args, str(site)], cwd=REPO, capture_output=True, text=True, timeout=300)
    results = json.load(open(report / "results.json")) if (report / "results.json").exists() else {}
    return proc, {r["check_id"]: r for r in results.get("results", [])}


def _testinfra_cases(tmp_path) -> dict[str, str]:
    """The plain testinfra tests' JUnit testcases: name -> outcome (they are in every report pytest writes)."""
    import xml.etree.ElementTree as ET
    cases = {}
    for case in ET.parse(tmp_path / "reports" / "junit.xml").getroot().iter("testcase"):
        if "test_site_testinfra" in case.get("classname", ""):
            outcome = "failed" if case.find("failure") is not None or case.find("error") is not None else "passed"
            cases[case.get("name")] = outcome
    return cases


def test_a_sites_own_checks_run_on_this_machine(tmp_path):
    if shutil.which("postconf") is None or not os.path.exists("/etc/mailname"):
        pytest.skip("Postfix is not installed here (scripts/bootstrap.sh --dev installs it)")
    proc, by_id = _run(tmp_path, "--hosts=local")
    assert set(by_id) == {"SITE-001", "SITE-002", "SITE-003"}, proc.stdout[-3000:] + proc.stderr[-3000:]
    myhostname = subprocess.run(["postconf", "-h", "myhostname"], capture_output=True, text=True,
                                timeout=60).stdout.strip()
    assert by_id["SITE-001"]["outcome"] == "pass" and by_id["SITE-001"]["message"] == f"myhostname = {myhostname}"
    mailname = open("/etc/mailname").read().strip()
    assert by_id["SITE-002"]["outcome"] == ("pass" if "." in mailname else "fail"), by_id["SITE-002"]
    assert by_id["SITE-003"]["outcome"] == "error"
    assert "postconf parameter myorigin is not in this host's postconf evidence" in by_id["SITE-003"]["message"]
    assert "pytest_compliance_postconf_params" in by_id["SITE-003"]["message"]
    assert {r["section"] for r in by_id.values()} == {"Site policy"}
    assert proc.returncode == 2  # an error (SITE-003), whatever else
    assert _testinfra_cases(tmp_path) == {"test_os_release_names_the_system[local]": "passed",
                                          "test_an_unrecorded_command_says_so[local]": "passed"}


def test_a_snapshot_says_plainly_what_it_did_not_record(tmp_path):
    proc, by_id = _run(tmp_path, f"--hosts=snapshot://{os.path.join(REPO, snapshot('healthy-rhel9'))}")
    assert set(by_id) == {"SITE-001", "SITE-002", "SITE-003"}, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert by_id["SITE-001"]["outcome"] == "error"  # recorded before myhostname was asked for: never "unset"
    assert "a snapshot answers only what it recorded" in by_id["SITE-001"]["message"]
    assert by_id["SITE-002"]["outcome"] == "error"
    assert "site_mailname" in by_id["SITE-002"]["message"] and "not recorded" in by_id["SITE-002"]["message"]
    # testinfra's `host` is the suite's snapshot: what it recorded, and "not recorded" for the rest (once
    # testinfra's own backends ended the whole collection: "Unknown connection type 'snapshot'").
    cases = _testinfra_cases(tmp_path)
    assert len(cases) == 2 and set(cases.values()) == {"passed"}, cases


def test_an_extra_probe_may_not_take_a_name_of_the_suites():
    with pytest.raises(ValueError, match="a name of its own"):
        build_probes(extra=(Probe("postconf", "true"),))
    with pytest.raises(ValueError, match="not a Postfix parameter name"):
        build_probes(postconf_params=("myhostname; reboot",))
    probes = {p.name: p for p in build_probes(postconf_params=("myhostname",), extra=(Probe("site_x", "true"),))}
    assert probes["postconf"].command.endswith(" myhostname") and "site_x" in probes
