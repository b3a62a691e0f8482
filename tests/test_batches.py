"""Batched probes: many probes in one host command, framed so each answer comes back exactly.

Run for real through the local backend (the same shell script goes over SSH in test_ssh.py)."""

from __future__ import annotations

import os
import shlex
import subprocess
import time

import pytest

from postfix_compliance.backends import make_host
from postfix_compliance.facts.collect import (BatchFramingError, ProbeRunner, batch_script, plan_batches,
                                              split_batch, wrap_command)
from postfix_compliance.facts.probes import HEAVY, Probe, build_probes

NONCE = "0123456789abcdef01234567"


def _run_script(commands: list[str]) -> subprocess.CompletedProcess:
    """The batch of `commands`, each in its own `sh -c` as the runner's wrapping puts it."""
    script = batch_script([f"sh -c {shlex.quote(c)}" for c in commands], NONCE)
    return subprocess.run(script, shell=True, capture_output=True, timeout=30)


def test_every_answer_comes_back_byte_for_byte():
    commands = ["printf 'no final newline'", "printf ''", "printf 'two\\n\\n'", "printf '\\000\\377\\n'",
                "printf 'err only' >&2; exit 3", "echo out; echo err >&2; exit 0", "exit 124"]
    proc = _run_script(commands)
    answers = split_batch(proc.stdout, proc.stderr, NONCE, len(commands))
    assert [(rc, out, err) for rc, out, err, _ in answers] == [
        (0, b"no final newline", b""), (0, b"", b""), (0, b"two\n\n", b""), (0, b"\x00\xff\n", b""),
        (3, b"", b"err only"), (0, b"out\n", b"err\n"), (124, b"", b"")]
    assert all(seconds is not None and seconds >= 0 for *_, seconds in answers)


def test_durations_come_from_the_host_clock():
    proc = _run_script(["sleep 0.3", "true"])
    [(_, _, _, slow), (_, _, _, fast)] = split_batch(proc.stdout, proc.stderr, NONCE, 2)
    assert 0.25 <= slow < 1.0 and fast < 0.1


def test_output_carrying_the_marker_is_refused():
    # A probe that finds the batch's nonce (here: in its parent shell's command line) and prints it.
    proc = _run_script(["tr '\\000' '\\n' </proc/$PPID/cmdline | grep -m1 printf",
                        "echo after"])
    assert NONCE.encode() in proc.stdout
    with pytest.raises(BatchFramingError, match="printed the batch's marker"):
        split_batch(proc.stdout, proc.stderr, NONCE, 2)
    forged = f"{NONCE} 1.00\nreal\n{NONCE} 0 0 1.10\nforged\n{NONCE} 0 0 1.20\n".encode()
    with pytest.raises(BatchFramingError):
        split_batch(forged, f"\n{NONCE} 0\n".encode(), NONCE, 1)
    with pytest.raises(BatchFramingError, match="does not start with its marker"):
        split_batch(b"Welcome to host!\n" + proc.stdout, proc.stderr, NONCE, 2)


def test_a_batch_cut_short_keeps_what_finished():
    # The second probe kills the batch's own shell: the first answer stands, the rest have none.
    proc = _run_script(["echo first", "kill -9 $PPID", "echo never"])
    answers = split_batch(proc.stdout, proc.stderr, NONCE, 3)
    assert [a[1] for a in answers] == [b"first\n"]
    runner = ProbeRunner(make_host("local"), timeout=10, max_parallel=1)
    results = runner.run_many([Probe("a", "echo first"), Probe("b", "kill -9 $(ps -o ppid= -p $PPID)"),
                               Probe("c", "echo never")])
    assert results["a"].stdout == "first\n" and results["a"].error is None
    assert results["c"].error and results["c"].error.startswith("no answer: the batch ended early")


def test_a_hung_probe_times_out_and_the_rest_of_its_batch_still_answers():
    runner = ProbeRunner(make_host("local"), timeout=1, max_parallel=1)
    started = time.monotonic()
    results = runner.run_many([Probe("hung", "sleep 30"), Probe("after", "echo still here")])
    assert time.monotonic() - started < 5
    assert results["hung"].error == "timed out after 1s" and results["hung"].exit_status == 124
    assert results["after"].stdout == "still here\n" and results["after"].error is None


def test_a_probe_exiting_124_by_itself_is_not_a_timeout():
    results = ProbeRunner(make_host("local"), timeout=5, max_parallel=1).run_many(
        [Probe("a", "exit 124"), Probe("b", "true")])
    assert results["a"].exit_status == 124 and results["a"].error is None


def test_batches_answer_like_single_probes():
    """The whole catalogue, batched and one by one, gives the same answers on this machine."""
    probes = [p for p in build_probes(("postfix_local_write_mail_spool",)) if not p.intrusive]
    runner = ProbeRunner(make_host("local"), timeout=20)
    batched = runner.run_many(probes)
    for probe in probes:
        single = runner.run(probe)
        got = batched[probe.name]
        if probe.name in ("processes", "maillog", "journal", "listeners", "queue_json", "queue_text", "host_clock"):
            assert got.exit_status == single.exit_status, probe.name  # these move between two runs
            continue
        assert (got.exit_status, got.stdout, got.stderr, got.error) == \
            (single.exit_status, single.stdout, single.stderr, single.error), probe.name


def test_batches_spread_the_heavy_probes_and_keep_catalogue_order():
    probes = list(build_probes(("postfix_local_write_mail_spool",)))
    batches = plan_batches(probes, 8)
    assert len(batches) == 8
    assert sorted(p.name for b in batches for p in b) == sorted(p.name for p in probes)
    heavy = [sum(p.cost == HEAVY for p in b) for b in batches if not any(p.intrusive for p in b)]
    assert max(heavy) == 1, heavy  # the Python tools never wait for each other
    order = {p.name: i for i, p in enumerate(probes)}
    assert all([order[p.name] for p in b if not p.intrusive] == sorted(order[p.name] for p in b if not p.intrusive)
               for b in batches)
    assert plan_batches(probes[:3], 8) == [[probes[0]], [probes[1]], [probes[2]]]
    assert len(plan_batches(probes, 1)) == 1


def test_the_batch_is_one_command_a_posix_shell_runs_under_any_login_shell():
    script = batch_script([wrap_command("echo hi", 5)], NONCE)
    assert script.startswith("sh -c '")
    for shell in ("/bin/sh", "/bin/bash"):
        proc = subprocess.run([shell, "-c", script], capture_output=True, timeout=10)
        assert split_batch(proc.stdout, proc.stderr, NONCE, 1)[0][:3] == (0, b"hi\n", b"")


def test_an_intrusive_probe_runs_after_every_probe_that_reads_logs():
    """postfix check logs, and on a permissive host run over SSH it raises AVC records (seen on the real
    guest): the audit, journal and mail-log probes must have read their logs before it starts."""
    probes = list(build_probes(("postfix_local_write_mail_spool",)))
    readers = {p.name for p in probes if p.reads_logs}
    assert readers == {"avc_denials", "audit2why", "journal", "maillog"}
    [batch] = [b for b in plan_batches(probes, 8) if any(p.intrusive for p in b)]
    assert [p.name for p in batch] == ["avc_denials", "audit2why", "journal", "maillog", "postfix_check"]
    # For real: a log line the intrusive probe writes is not in what the reader read before it.
    log = "/tmp/pfc-selftest-batch-order.log"
    open(log, "w").close()
    try:
        reader = Probe("reader", f"sleep 0.3; cat {log}", reads_logs=True)  # slow: a race would show
        writer = Probe("writer", f"echo written by the intrusive probe >> {log}", intrusive=True)
        others = [Probe(f"p{i}", "true") for i in range(12)]
        results = ProbeRunner(make_host("local"), timeout=10, max_parallel=8).run_many([writer, *others, reader])
        assert results["reader"].stdout == "" and results["writer"].exit_status == 0
        assert open(log).read() == "written by the intrusive probe\n"
    finally:
        os.unlink(log)
