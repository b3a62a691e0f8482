"""Compliance over time (postfix_compliance/history.py): 30 scheduled runs' report sets, one history.

The report sets are one real run's results.json (4 snapshot hosts), re-dated a day apart and with outcomes
changed as a month of a fleet would change them: one host starts failing SEL-001 on day 20, one flaps
on LBL-002, one drops out of the last run. The history must say since when, what flaps, who dropped out;
its metrics feed an alert rule that fires on the dropped host (promtool, where Prometheus is installed).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from selftest import REPO, run_suite, snapshot

RUNS = 30
DAY = 86400
START = time.mktime((2026, 11, 1, 2, 30, 0, 0, 0, 0)) - time.timezone


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@pytest.fixture(scope="module")
def reports_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("history")
    hosts = []
    for index, name in enumerate(("healthy-rhel9",) * 4):
        doc = json.load(open(os.path.join(REPO, snapshot(name)), encoding="utf-8"))
        doc["host"] = f"mail{index + 1}.example.test"
        path = base / f"mail{index + 1}.json"
        path.write_text(json.dumps(doc))
        hosts.append(f"snapshot://{path}")
    run = run_suite(f"--hosts={','.join(hosts)}", "--no-flush", report_dir=str(base / "run"))
    assert run.exit_status == 0, run.stdout[-3000:]
    original = json.load(open(base / "run" / "results.json", encoding="utf-8"))
    root = base / "reports"
    for day in range(RUNS):
        doc = copy.deepcopy(original)
        when = START + day * DAY
        doc["generated_at"], doc["started_at"] = _iso(when), _iso(when - 60)
        kept = []
        for record in doc["results"]:
            name = record["host_name"]
            if name == "mail4.example.test" and day == RUNS - 1:
                continue  # dropped out of the last run
            if name == "mail2.example.test" and record["check_id"] == "SEL-001" and day >= 19:
                record["outcome"], record["message"] = "fail", "getenforce says Permissive"
            if name == "mail3.example.test" and record["check_id"] == "LBL-002" and (day // 5) % 2 == 1:
                record["outcome"], record["message"] = "fail", "deferred is tmp_t"
            kept.append(record)
        doc["results"] = kept
        set_dir = root / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
        set_dir.mkdir(parents=True)
        (set_dir / "results.json").write_text(json.dumps(doc))
        shutil.copy(base / "run" / "compliance.html", set_dir / "compliance.html")
    return root


def _history(root, out) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "postfix_compliance.history", str(out), str(root)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_thirty_runs_say_since_when_what_flaps_and_who_dropped_out(reports_root):
    out = reports_root
    proc = _history(reports_root, out)
    assert proc.returncode == 0, proc.stderr
    data = json.load(open(out / "history.json"))
    assert len(data["runs"]) == RUNS and data["runs"][0]["generated_at"] == _iso(START)
    failing = {(c["host_name"], c["check_id"]): c for c in data["failing"]}
    assert set(failing) == {("mail2.example.test", "SEL-001"), ("mail3.example.test", "LBL-002")}
    since = failing[("mail2.example.test", "SEL-001")]
    assert since["failing_since"] == _iso(START + 19 * DAY) and since["last_passed"] == _iso(START + 18 * DAY)
    # LBL-002 fails on days 5-9, 15-19 and 25-29: failing now since day 25, and flapping.
    assert failing[("mail3.example.test", "LBL-002")]["failing_since"] == _iso(START + 25 * DAY)
    [flapping] = data["flapping"]
    assert (flapping["host_name"], flapping["check_id"], flapping["flips"]) == ("mail3.example.test", "LBL-002", 5)
    assert [d["host_name"] for d in data["dropped"]] == ["mail4.example.test"]
    # The fleet pass rate per run: the SEL-001 failure shows from day 20.
    ratios = [r["pass_ratio"] for r in data["runs"]]
    assert ratios[0] == 1.0 and ratios[20] < 1.0
    page = open(out / "history.html", encoding="utf-8").read()
    assert page.count('class="history-point"') == RUNS
    assert "mail2.example.test" in page and f"{RUNS} runs from" in page
    assert page.count('<a href="2026') == RUNS  # each run links to its own page under the root
    prom = open(out / "history.prom").read()
    assert 'postfix_compliance_history_host_missing{host="' in prom and "mail4.example.test" in prom
    assert f"postfix_compliance_history_runs {RUNS}" in prom
    assert oct(os.stat(out / "history.prom").st_mode & 0o777) == "0o644"
    assert oct(os.stat(out / "history.html").st_mode & 0o777) == "0o600"


def test_the_alert_rule_fires_on_a_host_that_dropped_out(reports_root, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (scripts/bootstrap.sh --dev installs prometheus)")
    out = tmp_path / "h"
    assert _history(reports_root, out).returncode == 0
    series = [line for line in open(out / "history.prom") if line.startswith("postfix_compliance_history_host_missing{")]
    [line] = series
    labels = line.split("{", 1)[1].rsplit("}", 1)[0]
    found = dict(kv.split("=", 1) for kv in labels.replace('"', "").split(","))
    tests = {"rule_files": [os.path.join(REPO, "contrib", "alerts", "postfix-compliance.rules.yml")],
             "evaluation_interval": "1m",
             "tests": [{"interval": "1m",
                        "input_series": [{"series": f"postfix_compliance_history_host_missing{{{labels}}}",
                                          "values": "1x30"}],
                        "alert_rule_test": [{"eval_time": "20m", "alertname": "PostfixComplianceHostDroppedOut",
                                             "exp_alerts": [{"exp_labels": {**found, "severity": "warning"},
                                                             "exp_annotations": {
                                                 "summary": f"{found['host_name']} was not checked by the latest "
                                                            "compliance run",
                                                 "description": (
                                                     f"{found['host_name']} ({found['host']}) was checked by the "
                                                     "previous scheduled run and not by the latest: it dropped out of "
                                                     "the run. If that was meant, it clears with the next run; if not, "
                                                     "the host is no longer watched (reports/history.html lists it).")}}]}]}]}
    path = tmp_path / "tests.yml"
    path.write_text(json.dumps(tests))
    proc = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bad_input_is_one_line(tmp_path):
    for args, says in (([str(tmp_path / "nowhere")], "no such file or directory"),
                       ([str(tmp_path)], "no results.json in it")):
        proc = subprocess.run([sys.executable, "-m", "postfix_compliance.history", str(tmp_path / "out"), *args],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 4 and proc.stderr.count("\n") == 1 and says in proc.stderr, proc.stderr
