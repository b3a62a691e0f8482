"""The machinery: bad input, probe timeouts and concurrency, record/replay, the drain decision."""

from __future__ import annotations

import json
import os
import time

import pytest

from postfix_compliance.backends import make_host, with_scheme
from postfix_compliance.facts.collect import ProbeRunner
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.facts.probes import Probe
from postfix_compliance.facts.queue_drain import drain_queue


# ---------------------------------------------------------------------- bad input: one line, no traceback
def _write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("make_args, expected", [
    (lambda d: ["--hosts=snapshot://does/not/exist.json"], "snapshot does/not/exist.json: no such file"),
    (lambda d: [f"--hosts=snapshot://{_write(d / 'bad.json', '{not json')}"], "not JSON"),
    (lambda d: [f"--hosts=snapshot://{_write(d / 'other.json', json.dumps({'format': 'x'}))}"], "not a snapshot"),
    (lambda d: [f"--hosts=snapshot://{d}"], "is a directory"),
    (lambda d: ["--profile=nosuchprofile"], "unknown profile 'nosuchprofile'"),
    (lambda d: [f"--profile={_write(d / 'p.yaml', 'name: [unclosed')}"], "not valid YAML"),
    (lambda d: [f"--profile={_write(d / 'p.yaml', 'name: x')}"], "(top level): 'selinux' is a required property"),
    (lambda d: ["--hosts=gopher://mail1"], "unknown host URL scheme 'gopher'"),
    # mistyped URLs: not a host name to look up in DNS (paramiko://ssh, paramiko://snapshot:) but bad input
    (lambda d: ["--hosts=ssh//root@mail1"], "bad host URL 'ssh//root@mail1'"),
    (lambda d: ["--hosts=snapshot:/x"], "bad host URL 'snapshot:/x'"),
    (lambda d: ["--hosts=local,root@mail1:22/x"], "bad host URL 'root@mail1:22/x'"),
    (lambda d: ["--avc-since=yesterday; rm -rf /"], "--avc-since"),
    (lambda d: ["--command-timeout=0"], "--command-timeout must be a positive"),
])
def test_bad_input_is_one_clear_line(suite, tmp_path, make_args, expected):
    run = suite(*make_args(tmp_path))
    assert run.exit_status == 4, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and expected in errors[0], run.stderr


def test_broken_profile_names_file_key_and_problem(suite, tmp_path):
    with open(os.path.join(os.path.dirname(__file__), "..", "fixtures", "profiles", "rhel9.yaml")) as handle:
        text = handle.read().replace("value: true", "value: maybe")
    path = _write(tmp_path / "rhel9-broken.yaml", text)
    run = suite(f"--profile={path}")
    assert run.exit_status == 4
    assert f"profile {path}: booleans[0].value: 'maybe' is not of type 'boolean'" in run.stderr


# ---------------------------------------------------------------------- probes: timeout, concurrency, LC_ALL
def test_probe_timeout_is_an_error_naming_the_probe():
    runner = ProbeRunner(make_host("local"), timeout=1)
    started = time.monotonic()
    ev = runner.run(Probe("getenforce", "sleep 20"))
    assert time.monotonic() - started < 5
    assert ev.error == "timed out after 1s" and ev.probe == "getenforce"


def test_probes_of_a_host_overlap():
    runner = ProbeRunner(make_host("local"), timeout=10)
    started = time.monotonic()
    results = runner.run_many([Probe(f"p{i}", "sleep 1; echo done") for i in range(6)])
    assert time.monotonic() - started < 2.5
    assert all(ev.stdout == "done\n" for ev in results.values())


def test_probes_run_with_c_locale_and_mail_config():
    runner = ProbeRunner(make_host("local"), mail_config="/etc/postfix-other")
    ev = runner.run(Probe("env", 'echo "$LC_ALL $MAIL_CONFIG"'))
    assert ev.stdout == "C /etc/postfix-other\n"


# ---------------------------------------------------------------------- record and replay
def test_recorded_snapshot_replays_to_the_same_results(suite, tmp_path):
    live = suite(f"--record-snapshot={tmp_path / 'snaps'}", "--no-flush", "--drain-timeout=1")
    [snapshot] = os.listdir(tmp_path / "snaps")
    replay = suite(f"--hosts=snapshot://{tmp_path / 'snaps' / snapshot}", "--no-flush", "--drain-timeout=1")
    def strip(run):
        return {r["check_id"]: (r["outcome"], r["message"]) for r in run.results["results"]}
    assert strip(live) == strip(replay)
    assert live.exit_status == replay.exit_status


# ---------------------------------------------------------------------- the drain decision
def _queue_line(queue_id, queue_name="deferred", reason="connect to 127.0.0.1[127.0.0.1]:2525: Connection refused"):
    return json.dumps({"queue_name": queue_name, "queue_id": queue_id, "arrival_time": 1795869441,
                       "message_size": 261, "forced_expire": False, "sender": "root@example.test",
                       "recipients": [{"address": "a@example.test", "delay_reason": reason}]})


class FakeFacts:
    """Replays a sequence of `postqueue -j` outputs; the first is the collected queue."""

    def __init__(self, outputs):
        from postfix_compliance.facts.parsers import parse
        self.outputs = list(outputs)
        self.evidence = {"queue_json": Evidence("queue_json", "postqueue -j", 0, self.outputs[0], "")}
        self._first = parse(self.evidence["queue_json"])
        self.recorded = []
        self.runner = self
        self.polls = 0

    def queue(self):
        return self._first

    def record(self, ev):
        self.recorded.append(ev)

    def run(self, probe):
        if probe.name == "queue_flush":
            return Evidence("queue_flush", "postqueue -f", 0, "", "")
        self.polls += 1
        out = self.outputs[min(self.polls, len(self.outputs) - 1)]
        return Evidence(probe.name, probe.command, 0, out, "")


def _empty(queue):
    return queue.deferred_count == 0


def _drain(outputs, **kw):
    facts = FakeFacts(outputs)
    return drain_queue(facts, settled=_empty, timeout=kw.get("timeout", 5), poll_interval=0, **{
        k: v for k, v in kw.items() if k != "timeout"}), facts


def test_drain_passes_at_the_first_empty_poll():
    two = _queue_line("A") + "\n" + _queue_line("B") + "\n"
    outcome, facts = _drain([two, _queue_line("A", "active") + "\n", ""])
    assert outcome.drained and outcome.polls == 2 and outcome.flushed


def test_drain_fails_early_when_messages_come_back():
    two = _queue_line("A") + "\n" + _queue_line("B") + "\n"
    moving = _queue_line("A", "active") + "\n" + _queue_line("B", "active") + "\n"
    outcome, _ = _drain([two, moving, two, two, two, two])
    assert not outcome.drained and outcome.verdict == "re-deferred" and outcome.polls == 2


def test_drain_fails_after_three_still_polls_when_nothing_moves():
    two = _queue_line("A") + "\n" + _queue_line("B") + "\n"
    outcome, _ = _drain([two] * 10)
    assert outcome.verdict == "re-deferred" and outcome.polls == 3


def test_drain_keeps_waiting_while_progress_is_made_then_times_out():
    three = "".join(_queue_line(q) + "\n" for q in "ABC")
    two = "".join(_queue_line(q) + "\n" for q in "AB")
    ticks = iter(range(100))
    facts = FakeFacts([three, two, two, two, two, two, two])
    outcome = drain_queue(facts, settled=_empty, timeout=5, poll_interval=0, clock=lambda: next(ticks),
                          sleep=lambda s: None)
    assert outcome.verdict == "timeout" and [m.queue_id for m in outcome.remaining] == ["A", "B"]


def test_no_flush_never_flushes_and_never_fails_early():
    two = _queue_line("A") + "\n" + _queue_line("B") + "\n"
    ticks = iter(range(100))
    facts = FakeFacts([two] * 10)
    outcome = drain_queue(facts, settled=_empty, timeout=4, poll_interval=0, flush=False,
                          clock=lambda: next(ticks), sleep=lambda s: None)
    assert outcome.verdict == "timeout" and not outcome.flushed
    assert not any(ev.command == "postqueue -f" for ev in facts.recorded)


def test_stage_evidence_is_the_queue_as_the_drain_left_it():
    from postfix_compliance.facts.host import HostFacts
    from postfix_compliance.facts.queue_drain import DrainPlan
    from postfix_compliance.stage_probes import STAGE_PROBES, stage_probe_names
    two = _queue_line("A") + "\n" + _queue_line("B") + "\n"
    replay = FakeFacts([two, ""])
    collected = replay.evidence["queue_json"]
    postconf = Evidence("postconf", "postconf", 0, "queue_directory = /var/spool/postfix\n", "")
    host = HostFacts("local", "mail1", {"queue_json": collected, "postconf": postconf}, None, runner=replay)
    host.drain_plan = DrainPlan(timeout=5, poll_interval=0, flush=True)
    before = host.stage_evidence(["queue_json", "postconf", "journal"])
    assert list(before) == ["queue_json", "postconf"] and before["queue_json"] is collected  # journal: not collected
    outcome = host.drain(_empty)
    assert outcome.emptied and outcome.final_evidence.stdout == ""
    after = host.stage_evidence(["queue_json", "postconf"])
    assert after["queue_json"] is outcome.final_evidence and after["postconf"] is postconf
    boolean = "getsebool:postfix_local_write_mail_spool"
    assert stage_probe_names(["processes", boolean, "postconf", boolean]) == list(STAGE_PROBES) + [boolean]


def test_explicit_audit_window_is_passed_the_way_ausearch_reads_it():
    # Real ausearch under LC_ALL=C: date and time are two words, %x is MM/DD/YY, and the time is required.
    from postfix_compliance.facts.probes import ausearch_since, build_probes, journal_since
    assert ausearch_since("11/28/2026 13:05:00") == "11/28/26 13:05:00"
    assert ausearch_since("11/28/2026") == "11/28/26 00:00:00"
    assert ausearch_since("recent") == "recent"
    assert journal_since("11/28/26 13:05") == "2026-11-28 13:05:00"
    avc = next(p for p in build_probes((), "11/28/2026 13:05:00") if p.name == "avc_denials")
    assert avc.command == "ausearch --input-logs -m AVC,USER_AVC -ts 11/28/26 13:05:00"


def test_no_probe_reads_standard_input():
    # ausearch reads stdin instead of the audit log when stdin is a pipe (as over SSH): never give it one.
    from postfix_compliance.facts.collect import unwrap_command, wrap_command
    wrapped = wrap_command("ausearch --input-logs -m AVC -ts recent", 30)
    assert wrapped.endswith(" </dev/null")
    assert unwrap_command(wrapped) == "ausearch --input-logs -m AVC -ts recent"


# ---------------------------------------------------------------------- hosts that lack a subsystem
def _host_without(tmp_path, tools: tuple[str, ...], name: str) -> str:
    """healthy-debian12, with every probe that needs one of `tools` answering as a shell does when the
    tool is not installed (exit 127, `sh: 1: TOOL: not found`)."""
    from selftest import HOSTS_DIR
    with open(os.path.join(HOSTS_DIR, "healthy-debian12.json"), encoding="utf-8") as handle:
        doc = json.load(handle)
    for record in doc["evidence"]:
        words = record["command"].replace("$(", " ").replace("|", " ").split()
        missing = next((t for t in tools if t in words), None)
        if missing:
            record.update(exit_status=127, stdout="", stderr=f"sh: 1: {missing}: not found\n")
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return f"--hosts=snapshot://{path}"


def test_host_without_postfix_says_not_applicable(suite, tmp_path):
    run = suite(_host_without(tmp_path, ("postconf", "postqueue", "postfix"), "no-postfix"), "--profile=debian12")
    outcomes = run.outcomes()
    postfix_checks = {c for c in outcomes if c.split("-")[0] in ("Q", "LOG", "REL", "LBL") or c in (
        "SVC-001", "SVC-002", "SVC-003", "SVC-004", "SVC-005")}
    assert {outcomes[c] for c in postfix_checks} == {"not_applicable"}, outcomes
    assert all("Postfix is not installed" in run.record(c)["message"] for c in postfix_checks)
    assert "Traceback" not in run.stdout + run.stderr and "error" not in outcomes.values()


def test_host_without_selinux_userland_fails_sel001_and_skips_the_rest(suite, tmp_path):
    tools = ("getenforce", "sestatus", "getsebool", "semanage", "restorecon", "matchpathcon", "semodule",
             "ausearch", "audit2why")
    run = suite(_host_without(tmp_path, tools, "no-selinux-tools"), "--profile=debian12")
    sel = run.record("SEL-001")
    assert sel["outcome"] == "fail" and "SELinux userland is missing" in sel["message"], sel["message"]
    outcomes = run.outcomes()
    assert "error" not in outcomes.values(), {c: run.record(c)["message"] for c, o in outcomes.items() if o == "error"}
    assert "Traceback" not in run.stdout + run.stderr


@pytest.mark.parametrize("bare, url", [
    ("mail1", "paramiko://mail1"), ("root@mail1.example.com:2222", "paramiko://root@mail1.example.com:2222"),
    ("root@[::1]:22", "paramiko://root@[::1]:22"), ("mail_1?timeout=5", "paramiko://mail_1?timeout=5"),
    ("local", "local"), ("ssh://root@mail1", "ssh://root@mail1"),
])
def test_a_bare_host_name_takes_the_default_scheme(bare, url):
    assert with_scheme(bare, "paramiko") == url
