"""The suite against this machine for real: its SELinux userland, and a real Postfix instance.

This machine's kernel has no SELinux, so SEL-001 must fail here with the real evidence. The queue
checks run against a throwaway Postfix instance with a dead relay (Q-001/Q-002 fail, Q-002 early),
then with a real SMTP sink on loopback (the same instance drains and passes).
"""

from __future__ import annotations

import os
import re
import subprocess
import shutil
import time

import pytest

from postfix_instance import PostfixInstance, SmtpSink, free_port

pytestmark = pytest.mark.real_postfix
POLL = 0.5


def test_selinux_disabled_here_fails_sel001_with_evidence(suite):
    assert shutil.which("getenforce"), "selinux-utils must be installed (scripts/bootstrap.sh --dev)"
    run = suite("-k", "SEL-001 or BOOL-001 or LBL-001 or Q-001")
    sel = run.record("SEL-001")
    assert sel["outcome"] == "fail"
    assert sel["message"] == "SELinux is Disabled, expected Enforcing"
    [getenforce] = [e for e in sel["evidence"] if e["probe"] == "getenforce"]
    assert getenforce["stdout"] == "Disabled\n" and getenforce["exit_status"] == 0
    # The checks that need a policy say why they cannot be judged instead of passing silently.
    assert run.record("BOOL-001")["outcome"] == "not_applicable"
    assert "SELinux is disabled" in run.record("BOOL-001")["message"]
    assert run.exit_status == 1


@pytest.fixture
def dead_relay_instance():
    relay_port = free_port()
    instance = PostfixInstance(relay_port)
    instance.start()
    try:
        instance.send(3)
        assert instance.wait_for(lambda: instance.deferred_count() == 3, 30), instance.queue()
        yield instance
    finally:
        instance.stop()


def _drain_seconds(record) -> float:
    match = re.search(r"after ([0-9.]+)s", " ".join(record["notes"]))
    assert match, record
    return float(match.group(1))


def test_dead_relay_fails_early_then_sink_drains(suite, dead_relay_instance, decision_log):
    instance = dead_relay_instance
    args = (f"--postfix-config-dir={instance.config_dir}", f"--poll-interval={POLL}", "--drain-timeout=60",
            "--profile=debian12", "-k", "Q-001 or Q-002 or Q-003 or LOG-001")

    started = time.monotonic()
    dead = suite(*args)
    wall = time.monotonic() - started
    outcomes = dead.outcomes()
    assert outcomes["Q-001"] == "fail" and outcomes["Q-002"] == "fail", outcomes
    assert outcomes["Q-003"] == "pass" and outcomes["LOG-001"] == "pass", outcomes
    q2 = dead.record("Q-002")
    assert "does not drain" in q2["message"] and "Connection refused" in q2["message"], q2["message"]
    decided = _drain_seconds(q2)
    decision_log.append(f"dead relay: Q-002 failed after {decided:.2f}s ({wall:.1f}s whole run)")
    assert decided <= 3 * POLL + 0.5, f"a dead relay must fail within 3 poll intervals, took {decided}s"
    assert instance.deferred_count() == 3  # the flush changed nothing for a dead relay
    finding = dead.results["diagnosis"]["local"]
    assert finding["kind"] == "not-selinux", finding
    assert finding["summary"].startswith(f"3 queued: relay 127.0.0.1[127.0.0.1]:{instance.relay_port} refuses "
                                         "connections: not an SELinux problem")

    sink = SmtpSink(instance.relay_port)
    sink.start()
    try:
        live = suite(*args)
        q2 = live.record("Q-002")
        assert q2["outcome"] == "pass", q2
        decided = _drain_seconds(q2)
        decision_log.append(f"live sink: Q-002 passed after {decided:.2f}s")
        assert len(sink.messages) == 3
        # the suite's own flush drained the queue: Q-001 judges the queue after it, with both counts,
        # and triage sees the queue as it is now (no relay finding on a host whose mail went out)
        q1 = live.record("Q-001")
        assert q1["outcome"] == "pass" and q1["message"].startswith("3 deferred when collected, 0 after the "
                                                                    "suite's flush"), q1
        assert live.results["diagnosis"]["local"] is None, live.results["diagnosis"]
        assert live.exit_status == 0
        again = suite(*args)
        assert again.outcomes() == {"Q-001": "pass", "Q-002": "pass", "Q-003": "pass", "LOG-001": "pass"}
        assert again.exit_status == 0
    finally:
        sink.stop()


def test_no_flush_option_never_flushes(suite, dead_relay_instance):
    instance = dead_relay_instance
    sink = SmtpSink(instance.relay_port)
    sink.start()
    try:
        run = suite(f"--postfix-config-dir={instance.config_dir}", "--no-flush", "--drain-timeout=1.5",
                    f"--poll-interval={POLL}", "--profile=debian12", "-k", "Q-002")
        q2 = run.record("Q-002")
        assert q2["outcome"] == "fail" and "did not drain within 1.5s" in q2["message"]
        assert not any(e["command"] == "postqueue -f" for e in q2["evidence"])
        assert sink.messages == []  # nothing was flushed to the live relay
    finally:
        sink.stop()


def test_master_down_queue_is_not_read_and_leaves_no_trace(suite, dead_relay_instance):
    """With master down, root's postqueue would run showq itself inside the scan's login session (under
    SELinux: denials on the session's pipes, the suite's own footprint) and log that it accessed the queue
    directly. The queue probes ask master first: the queue checks are not applicable, nothing is logged."""
    instance = dead_relay_instance
    subprocess.run(["postfix", "-c", instance.config_dir, "stop"], check=True, capture_output=True, timeout=120)
    try:
        # master.pid stays behind (stale): the probes must not take its presence for a running master
        assert instance.wait_for(lambda: not master_running(instance), 15)
        assert os.path.exists(os.path.join(instance.queue_dir, "pid", "master.pid"))
        with open(instance.maillog, encoding="utf-8", errors="replace") as handle:
            before = handle.read()
        run = suite(f"--postfix-config-dir={instance.config_dir}", "--profile=debian12", "-k",
                    "Q-001 or Q-002 or Q-003 or SVC-001")
        for cid in ("Q-001", "Q-002", "Q-003"):
            record = run.record(cid)
            assert record["outcome"] == "not_applicable", record
            assert "the mail system is down (no running master process; see SVC-001)" in record["message"]
        with open(instance.maillog, encoding="utf-8", errors="replace") as handle:
            logged = handle.read()[len(before):]
        assert "postqueue" not in logged and "showq" not in logged, logged
        # and where master runs again, the same probes read the queue
        subprocess.run(["postfix", "-c", instance.config_dir, "start"], check=True, capture_output=True, timeout=120)
        assert instance.wait_for(lambda: master_running(instance), 15)
        again = suite(f"--postfix-config-dir={instance.config_dir}", "--profile=debian12", "-k", "Q-003")
        assert again.record("Q-003")["outcome"] == "pass", again.record("Q-003")
    finally:
        subprocess.run(["postfix", "-c", instance.config_dir, "start"], capture_output=True, timeout=120)


def master_running(instance) -> bool:
    try:
        with open(os.path.join(instance.queue_dir, "pid", "master.pid"), encoding="ascii") as handle:
            pid = handle.read().strip()
        with open(f"/proc/{pid}/comm", encoding="ascii") as handle:
            return handle.read().strip() == "master"
    except OSError:
        return False
