"""Reports without a browser: results.json, JUnit names, the HTML page's counters, Prometheus metrics, the
remediation script.

One suite run over three snapshot hosts (broken, hostile, healthy) feeds most tests here; unit tests
of the renderers cover what a run cannot produce (label escaping, shell injection attempts).
"""

from __future__ import annotations

import html
import json
import os
import re
import stat
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

import report_snapshots as snaps
from selftest import N_CHECKS, run_suite

from postfix_compliance.checks import SECTIONS
from postfix_compliance.remediation_plan import PHASES
from postfix_compliance.report import metrics, remediation
from postfix_compliance.results_file import RESULTS_FORMAT
from postfix_compliance.run import OUTCOMES


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reports")
    broken = snaps.make(tmp, "broken", snaps.permissive, snaps.spool_mislabelled, host="mail1.example.test")
    hostile = snaps.make(tmp, "hostile", snaps.hostile, host="evil.example.test")
    healthy = snaps.make(tmp, "healthy", host="mail2.example.test")
    report_dir = str(tmp / "out")
    result = run_suite(f"--hosts=snapshot://{broken},snapshot://{hostile},snapshot://{healthy}", "--profile=debian12",
                       f"--metrics={report_dir}/textfile/postfix_compliance.prom",
                       f"--remediation-script={report_dir}/fix.sh",
                       "--postfix-check",  # replays the recorded `postfix check` (hostile in one host)
                       report_dir=report_dir)
    result.hosts = {"broken": f"snapshot://{broken}", "hostile": f"snapshot://{hostile}",
                    "healthy": f"snapshot://{healthy}"}
    return result


def run_of(records, started: float = 0.0, ended: float = 0.0, profile=None):
    """Records (results.json's) as the RunResult a renderer takes."""
    from postfix_compliance.run import RunResult, hosts_from_records
    from postfix_compliance.verdict import decide
    return decide(RunResult(started=started, ended=ended, profile=profile, hosts=hosts_from_records(records)))


def test_exit_status_says_error(run):
    # The hostile host's getenforce cannot be parsed: an error outranks failures.
    assert run.exit_status == 2, run.stdout[-2000:]


def test_results_json_is_versioned_and_complete(run):
    doc = run.results
    assert doc["format"] == RESULTS_FORMAT
    for key in ("suite_version", "generated_at", "started_at", "duration_s", "profile", "summary", "results"):
        assert key in doc
    assert len(doc["results"]) == 3 * N_CHECKS
    for record in doc["results"]:
        assert record["outcome"] in OUTCOMES
        assert "waiver" in record and record["waiver"] is None
        assert re.fullmatch(r"[0-9a-f]{16}", record["evidence_digest"])
        for key in ("host", "host_name", "check_id", "title", "severity", "section", "message", "remediation",
                    "rollback", "evidence", "nodeid"):
            assert key in record
    assert run.outcomes(run.hosts["broken"])["SEL-001"] == "fail"
    assert run.outcomes(run.hosts["hostile"])["SEL-001"] == "error"
    assert set(run.outcomes(run.hosts["healthy"]).values()) <= {"pass", "not_applicable"}
    assert doc["summary"][run.hosts["broken"]]["fail"] == 3


def test_junit_names_carry_check_id_title_and_host(run):
    tree = ET.parse(os.path.join(run.report_dir, "junit.xml"))
    cases = tree.getroot().findall(".//testcase")
    assert len(cases) == 3 * N_CHECKS
    names = {case.get("name") for case in cases}
    broken = run.hosts["broken"]
    assert f"SEL-001 SELinux runs in enforcing mode [{broken}]" in names
    assert f"LBL-002 Nothing under the queue directory would be relabelled [{broken}]" in names
    failed = [case for case in cases if case.find("failure") is not None]
    assert {case.get("name").split()[0] for case in failed} >= {"SEL-001", "LBL-002", "AVC-002", "SVC-005"}
    # The module stays the classname (pytest's own); every name is unique.
    assert all(case.get("classname").startswith("tests_host.") for case in cases)
    assert len(names) == len(cases)


def _html_page(run) -> tuple[str, dict]:
    """compliance.html, and pytest-html's data blob in it (every row's cells and words, the environment)."""
    with open(os.path.join(run.report_dir, "compliance.html"), encoding="utf-8") as handle:
        page = handle.read()
    return page, json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', page).group(1)))


def test_html_counters_and_filters_speak_the_suites_outcomes(run):
    """pytest-html's counters count each check as the suite judged it: the hostile host's SEL-001 could not
    be judged (its exception came in the call phase, which pytest calls "failed") and is counted under
    Errors, as its row is filtered; Skipped says what it holds. Before: "4 Failed, 0 Errors"."""
    page, blob = _html_page(run)
    counters = {kind: (int(n), label) for kind, n, label in
                re.findall(r'<span class="(\w+)">(\d+) ([^<]*?),?</span>', page)}
    outcomes = Counter(r["outcome"] for r in run.results["results"])
    assert outcomes["error"] >= 1 and outcomes["fail"] >= 1
    assert counters["failed"] == (outcomes["fail"], "Failed")
    assert counters["error"] == (outcomes["error"], "Errors")
    assert counters["passed"] == (outcomes["pass"], "Passed")
    assert counters["skipped"] == (outcomes["not_applicable"], f"Skipped ({outcomes['not_applicable']} not applicable)")
    assert counters["xfailed"][0] == counters["xpassed"][0] == counters["rerun"][0] == 0
    # Each row's word (the one pytest-html's filter boxes select rows by) is the suite's outcome's.
    words = {(t["testId"], t["result"]) for tests in blob["tests"].values() for t in tests}
    expected = {"pass": "Passed", "fail": "Failed", "error": "Error", "not_applicable": "Skipped"}
    assert words == {(r["nodeid"], expected[r["outcome"]]) for r in run.results["results"]}


def test_html_environment_says_the_run_and_the_page_has_one_outcome_column(run):
    page, blob = _html_page(run)
    env = blob["environment"]
    assert list(env)[:5] == ["Suite", "Profile", "Hosts", "Checks", "Run"]  # the run's own lines first
    assert env["Suite"] == "postfix-compliance 0.1.0" and env["Profile"] == "debian12"
    assert (env["Hosts"], env["Checks"]) == ("3", str(3 * N_CHECKS))
    assert "Python" in env and "Plugins" in env  # pytest-metadata's, after them
    # pytest-html's Result column is hidden (its word drives the filters); the Outcome column says it.
    assert '#results-table th[data-column-type="result"], #results-table .col-result { display: none; }' in page
    assert "Result</b> is pytest" not in page and "Failed is FAIL, Errors is ERROR" in page
    # pytest-html's "N tests took" line is hidden: the suite's line counts every check.
    assert ".summary .run-count { display: none; }" in page
    assert re.search(rf"{3 * N_CHECKS} checks run in \d+\.\d\d s", page)


def test_html_result_word_settles_failed_against_error_only():
    from postfix_compliance.report.html import result_word, skipped_label
    assert result_word("error", "Failed") == "Error"  # raised in the call phase: pytest's "failed"
    assert result_word("error", "Error") == "Error"   # raised in setup (an unreachable host)
    assert result_word("fail", "Failed") == "Failed"
    assert result_word("not_applicable", "XFailed") == "XFailed"  # an xfail-marked check keeps pytest's counts
    assert result_word("pass", "XPassed") == "XPassed"
    assert result_word("fail", "Rerun") == "Rerun"
    assert result_word("waived", "Skipped") == "Skipped"
    assert [result_word(o) for o in ("pass", "fail", "error", "waived", "not_applicable")] == [
        "Passed", "Failed", "Error", "Skipped", "Skipped"]
    assert skipped_label({"waived": 1, "not_applicable": 24}) == "Skipped (1 waived, 24 not applicable)"
    assert skipped_label({}) == "Skipped"


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    samples = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        assert m, line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def test_metrics_textfile(run):
    path = os.path.join(run.report_dir, "textfile", "postfix_compliance.prom")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # node_exporter runs as another user
    assert os.listdir(os.path.dirname(path)) == ["postfix_compliance.prom"]  # no temporary file left
    text = open(path, encoding="utf-8").read()
    samples = _samples(text)
    status = [s for s in samples if s[0] == "postfix_compliance_check_status"]
    assert len(status) == 3 * N_CHECKS
    by_key = {(s[1]["target"], s[1]["check"]): s for s in status}
    sel = by_key[(run.hosts["broken"], "SEL-001")]
    assert sel[2] == 0 and sel[1]["outcome"] == "fail" and sel[1]["severity"] == "high"
    assert sel[1]["host"] == "mail1.example.test"
    assert by_key[(run.hosts["hostile"], "SEL-001")][1]["outcome"] == "error"
    assert by_key[(run.hosts["healthy"], "SEL-001")][2] == 1
    counts = {(s[1]["target"], s[1]["outcome"]): s[2] for s in samples if s[0] == "postfix_compliance_checks"}
    assert counts[(run.hosts["broken"], "fail")] == 3
    assert sum(v for (t, _), v in counts.items() if t == run.hosts["healthy"]) == N_CHECKS
    names = {s[0] for s in samples}
    assert {"postfix_compliance_last_run_timestamp_seconds", "postfix_compliance_run_duration_seconds"} <= names
    assert "# TYPE postfix_compliance_check_status gauge" in text
    # Every family has HELP and TYPE once.
    for name in names:
        assert text.count(f"# TYPE {name} gauge") == 1 and text.count(f"# HELP {name} ") == 1


def test_metrics_label_values_are_escaped():
    record = {"host": 'snapshot://a"b\\c\nd', "host_name": "x\"y", "check_id": "SEL-001", "severity": "high",
              "section": "Prevention", "outcome": "fail"}
    text = metrics.render(run_of([record], started=1_700_000_000.5, ended=1_700_000_001.75))
    line = next(line for line in text.splitlines() if line.startswith("postfix_compliance_check_status{"))
    assert 'target="snapshot://a\\"b\\\\c\\nd"' in line and 'host="x\\"y"' in line
    assert line.endswith("} 0")
    assert "\nd" not in text.split("postfix_compliance_check_status{", 1)[1].split("}")[0]
    assert "postfix_compliance_last_run_timestamp_seconds 1700000000.5" in text


def test_metrics_written_atomically(tmp_path):
    path = tmp_path / "m.prom"
    path.write_text("old\n")
    metrics.write_atomic(str(path), "new\n")
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == ["m.prom"]


def test_remediation_script_is_for_review_and_in_dependency_order(run):
    path = os.path.join(run.report_dir, "fix.sh")
    text = open(path, encoding="utf-8").read()
    lines = text.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert lines[1].startswith("# REVIEW BEFORE RUNNING")
    assert "set -u -o pipefail" in lines  # not -e: a failed step is reported, never a silent stop
    assert subprocess.run(["bash", "-n", path], timeout=120).returncode == 0
    # One block per host: the broken host's plan, its steps in dependency order (relabel, enforcement, the one
    # restart, the check that Postfix runs), each a step of the plan in results.json.
    block = text.split("# host mail1.example.test", 1)[1].split("\n}\n\nusage", 1)[0]
    kinds = re.findall(r"# step \d+/\d+ \[([a-z_]+)\]", block)
    assert kinds == ["relabel", "selinux_state", "restart_postfix", "verify_postfix_running"], kinds
    assert [PHASES[k] for k in kinds] == sorted(PHASES[k] for k in kinds)
    plan = run.results["plan"][run.hosts["broken"]]
    assert [a["kind"] for a in plan["actions"] if not a["manual"]] == kinds
    assert "  { [ \"$(getenforce)\" != Permissive ] || setenforce 1; } || return" in text.splitlines()
    assert "postfix reload" not in text and "EDIT FIRST" not in text  # no Postfix program, no placeholder
    # The hostile host's output is in comments, or printed as quoted inert text (a step's name).
    hostile = text.split("# host evil.example.test", 1)[1].split("\n}\n", 1)[0]
    for line in hostile.splitlines():
        if "pwned" in line or "<script>" in line:
            assert line.lstrip().startswith(("#", "echo '", "pfc_step")), line


def test_remediation_script_runs_only_the_named_host(run, tmp_path):
    """Run it with every command stubbed (PATH holds only stubs that log): nothing real runs. The stubs say the
    host is permissive and every label wrong, so each step's test finds something to do."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "calls.log"
    says = {"getenforce": "echo Permissive", "grep": "exit 1", "restorecon": 'case "$1" in -Rnv) echo x;; esac'}
    for name in ("setenforce", "restorecon", "postfix", "systemctl", "sed", "semanage", "setsebool", "ausearch",
                 "audit2why", "getenforce", "grep", "pidof", "seq", "sleep", "date", "awk", "stat"):
        stub = stubs / name
        stub.write_text(f"#!/bin/bash\necho \"{name} $*\" >> {log}\n{says.get(name, '')}\n")
        stub.chmod(0o755)
    path = os.path.join(run.report_dir, "fix.sh")
    bash = "/bin/bash"
    usage = subprocess.run(["env", "-i", f"PATH={stubs}", bash, path], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and "mail1.example.test" in usage.stderr and not log.exists()
    done = subprocess.run(["env", "-i", f"PATH={stubs}", bash, path, "mail1.example.test"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode in (0, 3), done.stderr  # 3: the plan's steps for a person remain (printed)
    calls = [c for c in log.read_text().splitlines() if c.split()[0] in ("restorecon", "setenforce", "systemctl",
                                                                       "sed", "postfix")]
    first = calls.index(next(c for c in calls if c.startswith("restorecon -Rv ")))
    assert first < calls.index("setenforce 1") < calls.index("systemctl restart postfix")  # dependency order
    assert calls.count("systemctl restart postfix") == 1  # once, at the end, through systemd
    assert not any(c.startswith("postfix ") for c in calls)  # never a Postfix program root's login may not run
    assert not any("pwned" in c for c in calls)
    assert "step(s) changed this host" in done.stdout


def test_remediation_script_comments_host_text_line_by_line():
    record = {"host": "ssh://mail9", "host_name": "mail9; rm -rf /", "check_id": "SEL-001", "title": "t",
              "severity": "high", "section": "Prevention", "outcome": "fail",
              "message": "SELinux is\nrm -rf /tmp/x\r\n$(reboot)\x1b[2J", "remediation": ["setenforce 1"],
              "rollback": ["setenforce 0"], "waiver": None}
    text = remediation.render(run_of([record]), generated=0)
    for line in text.splitlines():
        if "rm -rf" in line or "$(reboot)" in line:
            assert line.lstrip().startswith("#") or line.lstrip().startswith("echo '") or \
                line.lstrip().startswith("'mail9; rm -rf /'|"), line
    assert "\x1b" not in text
    assert "  'mail9; rm -rf /'|ssh://mail9) fix_host_1 ;;" in text
    assert subprocess.run(["bash", "-n"], input=text, text=True, timeout=120).returncode == 0


def test_a_failed_step_stops_the_block_and_says_what_was_done(run, tmp_path):
    """The script survives its own partial failure as the playbook does: the failing step is named with its
    status, nothing after it runs (not the restart), and the block says which steps were done and which not."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "calls.log"
    says = {"getenforce": "echo Permissive", "grep": "exit 1",
            "restorecon": 'case "$1" in -Rnv) echo x;; -Rv) echo "restorecon: read only file system" >&2; exit 4;; esac'}
    for name in ("setenforce", "restorecon", "systemctl", "sed", "getenforce", "grep", "pidof", "seq", "sleep"):
        stub = stubs / name
        stub.write_text(f"#!/bin/bash\necho \"{name} $*\" >> {log}\n{says.get(name, '')}\n")
        stub.chmod(0o755)
    done = subprocess.run(["env", "-i", f"PATH={stubs}", "/bin/bash", os.path.join(run.report_dir, "fix.sh"),
                           "mail1.example.test"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED step 1/4 (exit 4): relabel /var/spool/postfix" in done.stderr, done.stderr
    assert "stopped at step 1 of 4" in done.stderr and "steps 1-4 were not run" in done.stderr
    calls = log.read_text().splitlines()
    assert not any(c.startswith(("setenforce", "systemctl restart")) for c in calls), calls  # nothing after it
