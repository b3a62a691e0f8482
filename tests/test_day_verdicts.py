"""Verdicts that hold over an operator's day (offline): the suite's own footprint, "masked" judged on the state
now, Q-001 after the suite's own flush, and denials a login session caused. The live sequence is
tests/vm/test_operators_day.py; its recordings (fixtures/hosts/vm-day-*.json) replay here.
"""

from __future__ import annotations

import json
import os

import pytest

import report_snapshots as snaps
from selftest import run_suite
from postfix_compliance.facts.probes import MAIL_SYSTEM_DOWN, build_probes
from postfix_compliance import baseline
from postfix_compliance import results_file as results_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTS = os.path.join(REPO, "fixtures", "hosts")
CLOCK = 1795871800  # the pre run's host clock (13:16:40 UTC on the day of the reference outputs)

# showq run by root's postqueue inside the login session, with master down (seen on the real guest).
SHOWQ_DENIAL = ("type=AVC msg=audit({stamp}:{serial}): avc:  denied  {{ write }} for  pid={pid} comm=\"showq\" "
                "path=\"pipe:[31337]\" dev=\"pipefs\" ino=31337 "
                "scontext=system_u:system_r:postfix_showq_t:s0 tcontext=system_u:system_r:sshd_t:s0 "
                "tclass=fifo_file permissive=0")


def with_clock(epoch: int):
    def change(doc):
        doc["evidence"] = [e for e in doc["evidence"] if e["probe"] != "host_clock"]
        doc["evidence"].append({"probe": "host_clock", "command": "date '+%s %z'", "exit_status": 0,
                                "stdout": f"{epoch} +0000\n", "stderr": "", "duration": 0.002, "error": None})
    return change


def with_denials(*lines: str):
    def change(doc):
        snaps.set_output(doc, "avc_denials", snaps.denials(*lines))
    return change


# ---------------------------------------------------------------------------------------------- 1. footprint
def test_postfix_check_is_opt_in(tmp_path):
    """No `postfix check` unless asked: it runs Postfix programs as root (audit records, new directories)."""
    healthy = os.path.join(HOSTS, "healthy-rhel9.json")
    default = run_suite(f"--hosts=snapshot://{healthy}", "-k", "SVC-005", report_dir=str(tmp_path / "r0"))
    record = default.record("SVC-005")
    assert record["outcome"] == "not_applicable" and "opt-in (--postfix-check)" in record["message"]
    assert not any(e["probe"] == "postfix_check" for e in record["evidence"])
    asked = run_suite(f"--hosts=snapshot://{healthy}", "--postfix-check", "-k", "SVC-005",
                      report_dir=str(tmp_path / "r1"))
    assert asked.record("SVC-005")["outcome"] == "pass"
    read_only = run_suite(f"--hosts=snapshot://{healthy}", "--postfix-check", "--read-only", "-k", "SVC-005",
                          report_dir=str(tmp_path / "r2"))
    assert "read-only" in read_only.record("SVC-005")["message"]


def test_queue_probes_ask_master_first():
    """The queue is read only through a running master: never showq inside the login session."""
    probes = {p.name: p.command for p in build_probes()}
    for name in ("queue_json", "queue_text"):
        command = probes[name]
        assert command.index("master.pid") < command.index("postqueue"), command
        assert MAIL_SYSTEM_DOWN in command


def test_recorded_master_down_reads_no_queue():
    """On the real guest with master down (day step 6) the queue probes said so, and nothing else ran."""
    with open(os.path.join(HOSTS, "vm-day-mislabelled.json"), encoding="utf-8") as handle:
        doc = json.load(handle)
    queue = [e for e in doc["evidence"] if e["probe"] in ("queue_json", "queue_text")]
    assert queue and all(MAIL_SYSTEM_DOWN in e["stderr"] and e["stdout"] == "" for e in queue), queue
    assert not any(e["probe"] == "postfix_check" for e in doc["evidence"])


def test_a_denial_before_the_baseline_ended_is_not_new(tmp_path):
    """pre at CLOCK; afterwards the host shows two denials never seen before: one stamped before the pre run
    ended (e.g. the pre run's own footprint, logged after its audit read) is not the change's doing; one
    stamped after it is new."""
    pre_host = snaps.make(tmp_path, "pre", with_clock(CLOCK), host="mail1.example.test")
    pre = run_suite(f"--hosts=snapshot://{pre_host}", "--profile=debian12", report_dir=str(tmp_path / "pre"))
    pre_run = baseline.read(os.path.join(pre.report_dir, "results.json")).run
    ended, offset = baseline.run_ends(pre_run)[f"snapshot://{pre_host}"]
    assert CLOCK < ended < CLOCK + 120 and offset == 0, ended
    post_host = snaps.make(tmp_path, "post", with_clock(CLOCK + 600), with_denials(
        SHOWQ_DENIAL.format(stamp=f"{CLOCK - 5}.100", serial=700, pid=901),   # during the pre run
        snaps.SPOOL_DENIAL.format(stamp=f"{CLOCK + 500}.200", serial=800, pid=902),  # after it: the change's
    ), host="mail1.example.test")
    post = run_suite(f"--hosts=snapshot://{post_host}", "--profile=debian12",
                     f"--baseline={pre.report_dir}/results.json", report_dir=str(tmp_path / "post"))
    new = post.results["changes"]["new_avc_denials"]
    assert [(d["comm"], d["tclass"]) for d in new] == [("local", "file")], new
    assert post.exit_status == 1


def test_avc_since_baseline_judges_logs_after_the_pre_run(tmp_path):
    """--avc-since=baseline (change-validate post's window): LOG-001 and AVC-002 see only what happened after
    the pre run ended, on the host's clock; a baseline without a clock for the host keeps the default."""
    old = "Nov 28 13:15:02 mail1 postfix/qmgr[1020]: fatal: scan_dir_push: open directory deferred: Permission denied"
    new = "Nov 28 13:20:30 mail1 postfix/qmgr[1020]: fatal: scan_dir_push: open directory active: Permission denied"

    def maillog(*lines):
        def change(doc):
            snaps.set_output(doc, "journal", "", "No journal files were found.\n", 1)
            snaps.set_output(doc, "maillog", f"now={CLOCK + 300} +0000\n" + "".join(line + "\n" for line in lines))
        return change

    baseline = tmp_path / "pre.json"
    baseline.write_text(json.dumps({"format": results_report.RESULTS_FORMAT, "results": [
        {"host": "x", "host_name": "mail1.example.test", "check_id": "LOG-001", "outcome": "fail",
         "host_clock": {"now": CLOCK, "utc_offset": 0}}]}))  # ended 13:16:40
    fixed = snaps.make(tmp_path, "fixed", maillog(old), host="mail1.example.test")
    for since, outcome in (("recent", "fail"), ("baseline", "pass")):
        run = run_suite(f"--hosts=snapshot://{fixed}", "--profile=debian12", f"--baseline={baseline}",
                        f"--avc-since={since}", "-k", "LOG-001", report_dir=str(tmp_path / since))
        assert run.record("LOG-001")["outcome"] == outcome, (since, run.record("LOG-001")["message"])
    broken_again = snaps.make(tmp_path, "again", maillog(old, new), host="mail1.example.test")
    run = run_suite(f"--hosts=snapshot://{broken_again}", "--profile=debian12", f"--baseline={baseline}",
                    "--avc-since=baseline", "-k", "LOG-001", report_dir=str(tmp_path / "again"))
    message = run.record("LOG-001")["message"]
    assert run.record("LOG-001")["outcome"] == "fail" and "active" in message and "deferred" not in message


def test_avc_since_baseline_needs_a_baseline(tmp_path):
    run = run_suite("--hosts=snapshot://" + os.path.join(HOSTS, "healthy-rhel9.json"), "--avc-since=baseline",
                    report_dir=str(tmp_path))
    assert run.exit_status == 4
    assert [line for line in run.stderr.splitlines() if line.startswith("ERROR:")] == [
        "ERROR: --avc-since=baseline needs --baseline FILE: the window starts where that run ended on each host"]


# ---------------------------------------------------------------------------------------------- 2. masked now
@pytest.mark.parametrize("name, kind", [("vm-day-history", "history"), ("vm-day-setenforce-1", None),
                                        ("vm-day-setenforce-0", None)])
def test_masked_rests_on_the_state_now(name, kind, tmp_path):
    """The real guest enforcing again, with permissive=1 records in the window: history, not "masked"."""
    run = run_suite(f"--hosts=snapshot://{os.path.join(HOSTS, name + '.json')}", "--profile=debian12",
                    "-k", "AVC-002 or SEL-001", report_dir=str(tmp_path))
    [finding] = run.results["diagnosis"].values()
    assert (finding or {}).get("kind") == kind, finding
    if kind == "history":
        assert "SELinux enforces now and no Postfix domain is permissive" in finding["summary"]


# ---------------------------------------------------------------------------------------------- 3. Q-001
def test_recorded_relay_back_judges_q001_after_the_drain(tmp_path):
    path = os.path.join(HOSTS, "vm-day-relay-back.json")
    run = run_suite(f"--hosts=snapshot://{path}", "--profile=debian12", "--poll-interval=0.01", "-k", "Q-00",
                    report_dir=str(tmp_path / "flush"))
    q1 = run.record("Q-001")
    assert q1["outcome"] == "pass" and q1["message"].startswith("3 deferred when collected, 0 after"), q1
    assert run.results["diagnosis"][f"snapshot://{path}"] is None
    found = run_suite(f"--hosts=snapshot://{path}", "--profile=debian12", "--no-flush", "--drain-timeout=0.05",
                      "--poll-interval=0.01", "-k", "Q-00", report_dir=str(tmp_path / "no-flush"))
    assert found.record("Q-001")["outcome"] == "fail"  # judged as found
    assert found.results["diagnosis"][f"snapshot://{path}"]["kind"] == "not-selinux"


# ---------------------------------------------------------------------------------------------- 4. login sessions
def test_login_session_denials_are_listed_not_counted(tmp_path):
    """postdrop's denials on the SSH login's pipe (mail submitted with `mail`): shown by AVC-002, not counted by
    default; a mail-flow denial beside them still fails it, with them listed apart."""
    session = snaps.PIPE_DENIAL.format(stamp="1795871790.100", serial=610, pid=2001)
    only = snaps.make(tmp_path, "only-session", with_denials(session), host="mail1.example.test")
    run = run_suite(f"--hosts=snapshot://{only}", "--profile=debian12", "-k", "AVC-002",
                    report_dir=str(tmp_path / "only"))
    record = run.record("AVC-002")
    assert record["outcome"] == "pass", record
    assert record["message"].startswith("1 Postfix denials on a login session's descriptors, not counted")
    assert "postdrop (postfix_postdrop_t) denied {write} on pipe:[22878] (sshd_t, fifo_file)" in record["message"]
    assert run.results["diagnosis"][f"snapshot://{only}"] is None  # never a queue's cause

    mixed = snaps.make(tmp_path, "mixed", with_denials(
        session, snaps.SPOOL_DENIAL.format(stamp="1795871791.100", serial=611, pid=2002)), host="mail1.example.test")
    run = run_suite(f"--hosts=snapshot://{mixed}", "--profile=debian12", "-k", "AVC-002",
                    report_dir=str(tmp_path / "mixed"))
    message = run.record("AVC-002")["message"]
    assert message.startswith("1 denials for Postfix domains:\n    - local (postfix_local_t) denied {append}")
    assert "1 Postfix denials on a login session's descriptors, not counted" in message


def test_recorded_login_session_denials_on_the_guest(tmp_path):
    """Day step 6 on the real guest: `mail` from the SSH login; postsuper's denial counts, postdrop's do not."""
    path = os.path.join(HOSTS, "vm-day-mislabelled.json")
    run = run_suite(f"--hosts=snapshot://{path}", "--profile=debian12", "-k", "AVC-002", report_dir=str(tmp_path))
    message = run.record("AVC-002")["message"]
    counted = message.split(" Postfix denials on a login session's descriptors, not counted")[0]
    assert "postsuper (postfix_master_t) denied {read} on deferred (tmp_t, dir)" in counted
    assert "postdrop" not in counted, message


# ---------------------------------------------------------------------------------------------- found on the way
# `ps -eZ` on the real guest during a change-validate post run: smtpd and cleanup of an idle SMTP session were
# ending (max_idle) while ps read them, and their labels came out as `-`.
PS_RACE = """LABEL                               PID TTY          TIME CMD
system_u:system_r:init_t:s0           1 ?        00:00:11 systemd
system_u:system_r:postfix_master_t:s0 545 ?      00:00:00 master
system_u:system_r:postfix_pickup_t:s0 586 ?      00:00:00 pickup
system_u:system_r:postfix_qmgr_t:s0 587 ?        00:00:00 qmgr
-                                   594 ?        00:00:00 smtpd
system_u:system_r:postfix_master_t:s0 595 ?      00:00:00 proxymap
system_u:system_r:postfix_master_t:s0 596 ?      00:00:00 tlsmgr
system_u:system_r:postfix_master_t:s0 597 ?      00:00:00 trivial-rewrite
-                                   598 ?        00:00:00 cleanup
"""


def test_an_unreadable_process_label_is_not_an_unconfined_process(tmp_path):
    """SVC-004 on an SELinux host: `-` is a label ps could not read (the process was ending), not 'no domain'."""
    with open(os.path.join(HOSTS, "vm-day-healthy.json"), encoding="utf-8") as handle:
        doc = json.load(handle)
    snaps.set_output(doc, "processes", PS_RACE)
    path = snaps.make(tmp_path, "ps-race", base=doc)
    run = run_suite(f"--hosts=snapshot://{path}", "--profile=debian12", "-k", "SVC-004", report_dir=str(tmp_path / "r"))
    record = run.record("SVC-004")
    assert record["outcome"] == "pass", record
    assert "not judged, label unreadable (the process was ending): smtpd (pid 594), cleanup (pid 598)" in record["notes"]
    # a process that is labelled and outside the Postfix domains still fails
    snaps.set_output(doc, "processes", PS_RACE.replace("system_u:system_r:postfix_qmgr_t:s0 587",
                                                       "unconfined_u:unconfined_r:unconfined_t:s0 587"))
    path = snaps.make(tmp_path, "ps-unconfined", base=doc)
    run = run_suite(f"--hosts=snapshot://{path}", "--profile=debian12", "-k", "SVC-004", report_dir=str(tmp_path / "u"))
    assert run.record("SVC-004")["outcome"] == "fail"
    assert "qmgr (pid 587) in unconfined_t" in run.record("SVC-004")["message"]
