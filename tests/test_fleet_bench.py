"""The fleet benchmark's replay host (bench/replay_host.py): it frames a probe batch exactly as a shell
running the suite's batch script does, and the suite, run as an operator runs it, checks two replayed
hosts over ssh:// to the same results as their snapshot. Loopback only (127.0.0.2, 127.0.0.3)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))

asyncssh = pytest.importorskip("asyncssh")

from postfix_compliance.backends.snapshot import SnapshotBackend  # noqa: E402
from postfix_compliance.facts.collect import batch_script, split_batch, wrap_command  # noqa: E402

import replay_host  # noqa: E402

import children  # noqa: E402
from selftest import N_CHECKS  # noqa: E402

PROBES = {  # probe -> (command, what it prints on stdout, on stderr, its exit status)
    "two_lines": ("printf 'x\\ny'", "x\ny", "", 0),
    "fails": ("echo oops >&2; exit 3", "", "oops\n", 3),
    "quoted": ("echo 'a; b' | tr a c", "c; b\n", "", 0),
    "long": ("printf '%0300d' 0", "0" * 300, "", 0),
}


def _snapshot(tmp_path) -> str:
    path = tmp_path / "probes.json"
    path.write_text(json.dumps({"format": "postfix-compliance-snapshot/1", "host": "t", "evidence": [
        {"probe": name, "command": cmd, "exit_status": rc, "stdout": out, "stderr": err}
        for name, (cmd, out, err, rc) in PROBES.items()]}))
    return str(path)


@pytest.mark.parametrize("cap", [1024, 100, None])
def test_batch_framed_as_a_shell_frames_it(tmp_path, cap):
    commands = [wrap_command(cmd, 30) for cmd, *_ in PROBES.values()] + [wrap_command("not-recorded", 30)]
    nonce = "0123456789abcdef01234567"
    script = batch_script(commands, nonce, cap)
    assert replay_host.parse_batch(script) == (nonce, cap, commands)
    real = subprocess.run(script, shell=True, capture_output=True, env={"PATH": os.environ["PATH"]}, timeout=120)
    backend = SnapshotBackend(_snapshot(tmp_path))
    out, err = asyncio.run(replay_host.Session(False).batch(backend, nonce, cap, commands))

    uptimes = re.compile(rb"(?<=[ ])[0-9]+\.[0-9]+(?=\n)")  # the host's clock in the frames differs
    real_err = re.sub(rb"[^\n]*not-recorded[^\n]*\n", b"", real.stderr)  # the shell's own wording
    err = re.sub(rb"[^\n]*not-recorded[^\n]*\n", b"", err)
    assert uptimes.sub(b"T", out) == uptimes.sub(b"T", real.stdout)
    assert err == real_err
    answers = split_batch(out, err, nonce, len(commands))
    assert [a[0] for a in answers] == [0, 3, 0, 0, 127]


def test_refuses_a_batch_it_does_not_understand():
    script = batch_script([wrap_command("true", 30)], "0123456789abcdef01234567", 1024)
    with pytest.raises(replay_host.BatchRefused):
        replay_host.parse_batch(script.replace("echo $? >&3", "echo $? >&5"))  # not the suite's framing
    assert replay_host.parse_batch(wrap_command("getenforce", 30)) is None  # a single probe


def test_addresses_are_loopback():
    assert [replay_host.host_address(i) for i in (0, 1, 249, 250, 999)] == \
        ["127.0.0.2", "127.0.0.3", "127.0.0.251", "127.0.1.2", "127.0.3.251"]


def _free_port() -> int:
    with socket.socket() as sock:  # free on 127.0.0.2 (the whole 127/8 shares one port space per bind)
        sock.bind(("127.0.0.2", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not shutil.which("ssh"), reason="needs the OpenSSH client")
def test_suite_against_two_replayed_hosts(tmp_path):
    port = _free_port()
    work = tmp_path / "fleet"
    # Its protocol on stdout, its stderr (a library's warnings at import) to a file: see tests/children.py.
    server = children.start([sys.executable, os.path.join(REPO, "bench", "replay_host.py"), "--hosts", "2",
                             "--port", str(port), "--dir", str(work)], stderr_path=str(tmp_path / "replay.err"))
    try:
        children.read_line(server, expect="ready hosts=2", timeout=60)
        urls = (work / "hosts.txt").read_text().split()
        assert urls == [f"ssh://root@127.0.0.2:{port}", f"ssh://root@127.0.0.3:{port}"]
        report_dir = tmp_path / "reports"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:hypothesispytest", "--hosts=" + ",".join(urls),
             f"--known-hosts={work / 'known_hosts'}", f"--ssh-identity-file={work / 'client_key'}",
             "--profile=rhel9", f"--report-dir={report_dir}"],
            cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        records = json.loads((report_dir / "results.json").read_text())["results"]
        assert len(records) == 2 * N_CHECKS
        assert {r["outcome"] for r in records} == {"pass", "not_applicable"}
        assert {r["host"] for r in records} == set(urls)
    finally:
        rest = children.stop(server)
    line = rest.strip().splitlines()[-1]
    assert line.startswith("replay_host cpu_s=") and "refused=0" in line, rest
    assert int(re.search(r"batches=(\d+)", line).group(1)) >= 2


def test_benchmark_compares_an_earlier_checkout_on_the_same_snapshot_hosts(tmp_path):
    """fleet_bench.py --scheme snapshot --before CHECKOUT: both suites on the same hosts, a row each, the
    floor once a size, and one summary line for the current code (this repository stands in for the
    earlier checkout here)."""
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "bench", "fleet_bench.py"), "--scheme", "snapshot", "--sizes", "2",
         "--mix", "--port", str(_free_port()), "--no-html-load", "--before", REPO, "--keep", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert re.search(rf"^hosts=2 before .*records={2 * N_CHECKS} ", out, re.M), out
    assert re.search(rf"^hosts=2 after .*records={2 * N_CHECKS} ", out, re.M), out
    assert "hosts | run | wall s" in out
    before = re.search(r"^# before: fleet_hosts=2 .* floor_cpu_ms_per_host=(\S+)$", out, re.M)
    after = re.search(r"^fleet_hosts=2 .* floor_cpu_ms_per_host=(\S+)$", out, re.M)
    assert before and after and before.group(1) == after.group(1) != "nan", out
    # snapshot:// reads the replay host's files: no SSH, no proxy.
    assert "delay_ms" not in out
    results = json.loads((tmp_path / "reports2after" / "results.json").read_text())
    assert {r["host"].split("://")[0] for r in results["results"]} == {"snapshot"}


def test_benchmark_runs_the_suite_as_local_shards(tmp_path):
    """--fleet-jobs 2: the suite as `fleet run --jobs=2`, over replayed SSH hosts; the row counts both
    shards' records (merged) and their whole process tree."""
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "bench", "fleet_bench.py"), "--scheme", "paramiko", "--sizes", "3",
         "--mix", "--port", str(_free_port()), "--rtt-ms", "0", "--no-html-load", "--no-floor", "--fleet-jobs", "2", "--sample-s", "0.05",
         "--keep", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(rf"^hosts=3 .*records={3 * N_CHECKS} ", proc.stdout, re.M), proc.stdout
    assert re.search(r"^hosts=3 .*\(peak [2-9] processes\)", proc.stdout, re.M), proc.stdout  # fleet run + shards
    report = tmp_path / "reports3"
    assert (report / "fleet.html").exists() and (report / "shards" / "2.log").exists()
    assert {r["host"].split("://")[0] for r in json.loads((report / "results.json").read_text())["results"]} \
        == {"paramiko"}
