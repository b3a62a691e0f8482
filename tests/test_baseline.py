"""--baseline: pre/post-change runs of snapshot pairs (healthy -> broken, broken -> fixed), new AVC
denials compared by what was denied, new and missing hosts, and bad baseline files."""

from __future__ import annotations

import json
import os

import pytest

import report_snapshots as snaps
from selftest import run_suite
from postfix_compliance import baseline
from postfix_compliance.run import RunResult, hosts_from_records


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    """The same machine (mail1.example.test) recorded healthy, broken and fixed; and a second host."""
    tmp = tmp_path_factory.mktemp("baseline-hosts")
    return {
        "healthy": snaps.make(tmp, "mail1-before", host="mail1.example.test"),
        "broken": snaps.make(tmp, "mail1-after", snaps.permissive, snaps.spool_mislabelled,
                             host="mail1.example.test"),
        "fixed": snaps.make(tmp, "mail1-fixed", host="mail1.example.test"),
        "other": snaps.make(tmp, "mail2", host="mail2.example.test"),
        "third": snaps.make(tmp, "mail3", host="mail3.example.test"),
    }


@pytest.fixture(scope="module")
def pre_healthy(hosts, tmp_path_factory):
    run = run_suite(f"--hosts=snapshot://{hosts['healthy']}", "--profile=debian12",
                    report_dir=str(tmp_path_factory.mktemp("pre-healthy")))
    assert run.exit_status == 0, run.stdout[-2000:]
    return os.path.join(run.report_dir, "results.json")


@pytest.fixture(scope="module")
def pre_broken(hosts, tmp_path_factory):
    run = run_suite(f"--hosts=snapshot://{hosts['broken']}", "--profile=debian12",
                    report_dir=str(tmp_path_factory.mktemp("pre-broken")))
    assert run.exit_status == 1
    return os.path.join(run.report_dir, "results.json")


def test_healthy_to_broken_reports_regressions_and_new_denials(suite, hosts, pre_healthy):
    run = suite(f"--hosts=snapshot://{hosts['broken']}", "--profile=debian12", f"--baseline={pre_healthy}")
    assert run.exit_status == 1
    changes = run.results["changes"]
    assert changes["baseline"]["path"] == pre_healthy
    regressions = {(c["check_id"], c["before"], c["after"]) for c in changes["regressions"]}
    assert regressions == {("SEL-001", "pass", "fail"), ("LBL-002", "pass", "fail"), ("AVC-002", "pass", "fail")}
    assert changes["fixes"] == [] and changes["new_hosts"] == [] and changes["missing_hosts"] == []
    [denial] = changes["new_avc_denials"]
    assert denial["host_name"] == "mail1.example.test" and denial["comm"] == "qmgr"
    assert denial["scontext"] == "system_u:system_r:postfix_qmgr_t:s0" and denial["tclass"] == "dir"
    assert denial["permissions"] == ["search"] and denial["path"] == "deferred"
    assert "REGRESSION: SEL-001 on mail1.example.test: pass -> fail" in run.stdout
    assert "NEW AVC DENIAL on mail1.example.test: qmgr denied {search} on deferred" in run.stdout


def test_broken_to_fixed_reports_fixes_and_exits_0(suite, hosts, pre_broken):
    run = suite(f"--hosts=snapshot://{hosts['fixed']}", "--profile=debian12", f"--baseline={pre_broken}")
    assert run.exit_status == 0, run.stdout[-2000:]
    changes = run.results["changes"]
    assert {(c["check_id"], c["before"], c["after"]) for c in changes["fixes"]} == {
        ("SEL-001", "fail", "pass"), ("LBL-002", "fail", "pass"), ("AVC-002", "fail", "pass")}
    assert changes["regressions"] == [] and changes["new_avc_denials"] == []
    assert "fixed: SEL-001 on mail1.example.test: fail -> pass" in run.stdout


def test_regression_fails_the_run_even_when_waived(suite, hosts, pre_healthy, tmp_path):
    permissive = snaps.make(tmp_path, "mail1-permissive", snaps.permissive, host="mail1.example.test")
    waiver_file = tmp_path / "waivers.yaml"
    waiver_file.write_text("- {check: SEL-001, justification: 'relabel window CHG-42'}\n")
    run = suite(f"--hosts=snapshot://{permissive}", "--profile=debian12", f"--baseline={pre_healthy}",
                f"--waivers={waiver_file}")
    assert run.record("SEL-001")["outcome"] == "waived"
    assert [(c["check_id"], c["before"], c["after"]) for c in run.results["changes"]["regressions"]] == [
        ("SEL-001", "pass", "waived")]
    assert run.exit_status == 1  # without the baseline this run is all pass/waived: exit 0


def test_new_denials_are_compared_without_pid_serial_or_time(suite, hosts, pre_broken, tmp_path):
    """The baseline's qmgr denial comes back with another pid, serial and time: not new. A local delivery
    denial is new; postdrop's on the login's pipe is a login session's (not counted by default). With every
    failing check waived, the new denial alone makes the exit status 1."""
    again = snaps.make(tmp_path, "mail1-again", snaps.permissive, host="mail1.example.test")
    doc = json.load(open(again))
    snaps.spool_mislabelled(doc, pid=2222, serial=901, stamp="1795875000.900",
                            extra_denials=(snaps.PIPE_DENIAL.format(stamp="1795875001.000", serial=902, pid=2223),
                                           snaps.SPOOL_DENIAL.format(stamp="1795875001.050", serial=904, pid=2224),
                                           snaps.UNRELATED_DENIAL.format(stamp="1795875001.100", serial=903,
                                                                         pid=3)))
    json.dump(doc, open(again, "w"))
    waiver_file = tmp_path / "waivers.yaml"
    waiver_file.write_text("".join(f"- {{check: {c}, justification: 'known, CHG-42'}}\n"
                                   for c in ("SEL-001", "LBL-002", "AVC-002")))
    run = suite(f"--hosts=snapshot://{again}", "--profile=debian12", f"--baseline={pre_broken}",
                f"--waivers={waiver_file}")
    changes = run.results["changes"]
    assert changes["regressions"] == []
    assert [(d["comm"], d["tclass"], d["permissions"]) for d in changes["new_avc_denials"]] == [
        ("local", "file", ["append"])]  # udev's denial is no Postfix domain's
    assert run.exit_status == 1


def test_new_and_missing_hosts(suite, hosts, tmp_path):
    pre = run_suite(f"--hosts=snapshot://{hosts['healthy']},snapshot://{hosts['other']}", "--profile=debian12",
                    report_dir=str(tmp_path / "pre"))
    run = suite(f"--hosts=snapshot://{hosts['fixed']},snapshot://{hosts['third']}", "--profile=debian12",
                f"--baseline={pre.report_dir}/results.json")
    changes = run.results["changes"]
    assert changes["new_hosts"] == ["mail3.example.test"]
    assert changes["missing_hosts"] == ["mail2.example.test"]
    assert changes["regressions"] == changes["fixes"] == changes["other"] == []
    assert run.exit_status == 0
    assert "missing host: mail2.example.test" in run.stdout


def test_compare_pairs_hosts_by_name_and_sees_waived_as_failing():
    base = {"results": [
        {"host": "snapshot://a.json", "host_name": "mx1", "check_id": "SEL-001", "outcome": "pass"},
        {"host": "snapshot://a.json", "host_name": "mx1", "check_id": "SEL-002", "outcome": "fail"},
        {"host": "snapshot://a.json", "host_name": "mx1", "check_id": "SVC-001", "outcome": "not_applicable"},
    ]}
    now = [
        {"host": "snapshot://b.json", "host_name": "mx1", "check_id": "SEL-001", "outcome": "waived",
         "waiver": {"outcome": "fail"}},
        {"host": "snapshot://b.json", "host_name": "mx1", "check_id": "SEL-002", "outcome": "pass"},
        {"host": "snapshot://b.json", "host_name": "mx1", "check_id": "SVC-001", "outcome": "fail"},
    ]
    before = baseline.Baseline(RunResult(0.0, 0.0, None, hosts_from_records(base["results"])), {})
    changes = baseline.compare(before, RunResult(0.0, 0.0, None, hosts_from_records(now)))
    assert [c["check_id"] for c in changes["regressions"]] == ["SEL-001"]
    assert [c["check_id"] for c in changes["fixes"]] == ["SEL-002"]
    assert [(c["check_id"], c["before"], c["after"]) for c in changes["other"]] == [
        ("SVC-001", "not_applicable", "fail")]
    assert changes["new_hosts"] == changes["missing_hosts"] == []


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", "not JSON"),
    ('{"format": "something-else/1", "results": []}', "not a results file"),
    ('{"format": "postfix-compliance-results/1", "results": [{"host": "h", "check_id": "SEL-001"}]}',
     "results[0]: 'outcome' is a required property"),
    ('{"format": "postfix-compliance-results/1", "results": [{"host": "h", "check_id": "X", "outcome": "ok"}]}',
     "results[0].outcome: 'ok' is not one of"),
])
def test_bad_baseline_is_one_clear_error(suite, hosts, tmp_path, content, message):
    path = tmp_path / "pre.json"
    if content is not None:
        path.write_text(content)
    run = suite(f"--hosts=snapshot://{hosts['healthy']}", "--profile=debian12", f"--baseline={path}")
    assert run.exit_status == 4
    output = run.stdout + run.stderr
    [line] = [line for line in output.splitlines() if line.startswith("ERROR: ")]
    assert line.startswith(f"ERROR: --baseline {path}: ") and message in line
    assert "Traceback" not in output


def _official(*names: str) -> list[str]:
    paths = [os.path.join("fixtures", "hosts", f"{name}.json") for name in names]
    missing = [p for p in paths if not os.path.exists(os.path.join(snaps.DATA, "..", "..", p))]
    if missing:
        pytest.skip(f"scenario snapshots not there: {', '.join(missing)}")
    return paths


@pytest.fixture(scope="module")
def pre_official(tmp_path_factory):
    [healthy] = _official("healthy-rhel9")
    run = run_suite(f"--hosts=snapshot://{healthy}", report_dir=str(tmp_path_factory.mktemp("pre-official")))
    assert run.exit_status == 0, run.stdout[-2000:]
    return os.path.join(run.report_dir, "results.json")


def test_official_pair_healthy_to_avc_denials(suite, tmp_path):
    """The reference's postqueue/postdrop denials are on the SSH login's pipes: by default (profile
    audit.login_session_denials: show) neither a regression nor new; with a profile that counts them, both."""
    [healthy, after] = _official("healthy-rhel9", "avc-denials")
    with open(healthy, encoding="utf-8") as handle:
        doc = json.load(handle)
    for record in doc["evidence"]:
        if record["probe"] == "host_clock":
            record["stdout"] = "1795871000 +0000\n"  # the pre run: before the denials (13:13:59 on)
    earlier = snaps.make(tmp_path, "healthy-earlier", base=doc)
    pre = run_suite(f"--hosts=snapshot://{earlier}", report_dir=str(tmp_path / "pre"))
    run = suite(f"--hosts=snapshot://{after}", f"--baseline={pre.report_dir}/results.json")
    assert run.exit_status == 0, run.stdout[-2000:]
    changes = run.results["changes"]
    assert changes["regressions"] == [] and changes["new_avc_denials"] == []
    strict = suite(f"--hosts=snapshot://{after}", f"--baseline={pre.report_dir}/results.json",
                   "--profile=tests/scenarios/profiles/rhel9-session-denials-fail.yaml")
    assert strict.exit_status == 1
    changes = strict.results["changes"]
    assert [(c["check_id"], c["before"], c["after"]) for c in changes["regressions"]] == [("AVC-002", "pass", "fail")]
    assert {d["comm"] for d in changes["new_avc_denials"]} == {"postqueue", "postdrop"}
    assert len(changes["new_avc_denials"]) == 4


def test_official_pair_spool_mislabelled_and_back(suite, pre_official, tmp_path):
    broken, healthy = _official("spool-mislabelled", "healthy-rhel9")
    run = suite(f"--hosts=snapshot://{broken}", f"--baseline={pre_official}")
    assert run.exit_status == 1
    assert {c["check_id"] for c in run.results["changes"]["regressions"]} == {"LBL-001", "LBL-002"}
    back = suite(f"--hosts=snapshot://{healthy}", f"--baseline={run.report_dir}/results.json")
    assert back.exit_status == 0
    assert {c["check_id"] for c in back.results["changes"]["fixes"]} == {"LBL-001", "LBL-002"}
    assert back.results["changes"]["regressions"] == []
