"""Bounded output: a host printing 100 MB cannot take the scanner's memory (issue 14).

Real sshd hosts on 127.0.0.x (tests/sshd.py) whose `ps` prints 100 MB of well-formed process lines
(so a check given the first part would pass on it: it must not), reached over paramiko:// and
ssh://; the suite runs in a wrapper process that reports the suite's peak memory (max RSS). Also: a
host whose own `head` does not limit (the client's cap holds alone), the local backend, the
results.json format that stores each probe's evidence once per host, and old results files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from selftest import REPO, run_suite
from sshd import SshFleet, require_sshd

from postfix_compliance.facts.collect import DEFAULT_MAX_OUTPUT, ProbeRunner
from postfix_compliance.facts.evidence import Evidence, evidence
from postfix_compliance.facts.model import Unparsed
from postfix_compliance.facts.parsers import parse
from postfix_compliance.facts.probes import Probe
from postfix_compliance import results_file as results_report

FLOOD_BYTES = 100_000_000
# A real `ps -eZ` line, over and over: parseable, so only the cap rule keeps a check from passing on it.
PS_LINE = "system_u:system_r:postfix_master_t:s0 1234 ? 00:00:01 master"
# Only the process-list probe's `ps -eZ` floods (the queue probe's `ps -C master` is the real one).
FLOOD_PS = (f'if [ "$*" = -eZ ]; then /usr/bin/yes \'{PS_LINE}\' | /usr/bin/head -c {FLOOD_BYTES}; '
            'else exec /bin/ps "$@"; fi')
MEMORY_CEILING_MB = 300
CAP_MESSAGE = f"output truncated at {DEFAULT_MAX_OUTPUT} bytes (--max-probe-output)"
FAST = ("--no-flush", "--drain-timeout=1")

# Runs the suite as a child and prints the child's peak RSS (KiB on Linux) as the last stderr line.
MEASURE = ("import resource, subprocess, sys\n"
           "rc = subprocess.call(sys.argv[1:])\n"
           "print('maxrss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
           "sys.exit(rc)\n")


@pytest.fixture(scope="module")
def fleet():
    require_sshd()
    fleet = SshFleet()
    fleet.calm = fleet.add("calm")
    fleet.flood = fleet.add("flood", fakes={"ps": FLOOD_PS})
    # A host whose `head` passes everything: the host-side limit is gone, the client's must hold.
    fleet.nohead = fleet.add("nohead", fakes={"ps": FLOOD_PS, "head": 'exec /bin/cat'})
    fleet.known = fleet.known_hosts(fleet.calm, fleet.flood, fleet.nohead)
    fleet.config = fleet.ssh_config()
    yield fleet
    fleet.stop()


def measured_suite(report_dir: str, *args: str) -> tuple[int, str, str, float]:
    """(exit status, stdout, stderr, the suite's peak RSS in MB), the suite run as a user runs it."""
    command = [sys.executable, "-c", MEASURE, sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
               f"--report-dir={report_dir}", *args]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("maxrss_kib "), proc.stderr[-2000:]
    return proc.returncode, proc.stdout, proc.stderr, int(last.split()[1]) / 1024


def load_doc(report_dir: str) -> dict:
    with open(os.path.join(report_dir, "results.json"), encoding="utf-8") as handle:
        return json.load(handle)


def reads(record: dict, probe: str) -> bool:
    return any(ref.startswith(probe + "@") for ref in record["evidence_refs"])


def assert_flood_is_an_error_naming_the_cap(doc: dict, flood: str, calm: str, cap_words: str) -> None:
    records = {(r["host"], r["check_id"]): r for r in doc["results"]}
    flooded = [r for (host, _), r in records.items() if host == flood and reads(r, "processes")]
    assert flooded, f"no check of {flood} read the process list"
    for record in flooded:
        assert record["outcome"] == "error", (record["check_id"], record["outcome"], record["message"])
        assert cap_words in record["message"], record["message"]
    # Every other check judged the host as it judges the same machine with a quiet `ps`.
    for (host, check_id), record in records.items():
        if host != flood or record in flooded:
            continue
        assert record["outcome"] == records[(calm, check_id)]["outcome"], (check_id, record["message"])
        assert "--max-probe-output" not in record["message"], record["message"]


# ---------------------------------------------------------------------- real hosts
def test_a_host_printing_100_mb_costs_neither_memory_nor_report_size(fleet, tmp_path):
    calm = fleet.calm.url("paramiko")
    floods = [fleet.flood.url("paramiko"), fleet.flood.url("ssh")]
    report_dir = str(tmp_path / "reports")
    status, stdout, stderr, peak_mb = measured_suite(
        report_dir, f"--hosts={calm},{','.join(floods)}", f"--ssh-config={fleet.config}",
        f"--known-hosts={fleet.known}", *FAST)
    size_mb = os.path.getsize(os.path.join(report_dir, "results.json")) / 1e6
    html_mb = os.path.getsize(os.path.join(report_dir, "compliance.html")) / 1e6
    print(f"\nbounded output: 2 hosts x 100 MB from ps (paramiko://, ssh://) + 1 quiet host: suite peak RSS "
          f"{peak_mb:.0f} MB (ceiling {MEMORY_CEILING_MB} MB), results.json {size_mb:.1f} MB, compliance.html "
          f"{html_mb:.1f} MB (before the cap, same test: 1819 MB and 407 MB)")
    assert status == 2, stdout[-3000:] + stderr[-2000:]  # errors: the checks that needed the cut output
    assert peak_mb < MEMORY_CEILING_MB
    doc = load_doc(report_dir)
    for flood in floods:
        assert_flood_is_an_error_naming_the_cap(doc, flood, calm, CAP_MESSAGE)
        # The evidence is marked and kept once for the host, at the cap.
        [ps] = [ev for ev in doc["evidence"][flood].values() if ev["probe"] == "processes"]
        assert ps["truncated"] == DEFAULT_MAX_OUTPUT
        assert len(ps["stdout"].encode()) == DEFAULT_MAX_OUTPUT and ps["stdout"].startswith(PS_LINE + "\n")
    # Two hosts' 4 MiB of ps and the rest: each probe's output is in results.json once, not per check.
    assert size_mb < 2 * DEFAULT_MAX_OUTPUT * 1.1 / 1e6 + 2
    assert all("evidence" not in r for r in doc["results"])
    # The HTML report's evidence line says it too (its data block holds each output once, clipped).
    with open(os.path.join(report_dir, "compliance.html"), encoding="utf-8") as handle:
        assert f"output truncated at {DEFAULT_MAX_OUTPUT} bytes" in handle.read()


def test_a_host_whose_head_does_not_limit_is_cut_by_the_client(fleet, tmp_path):
    """The host's `head` is `cat`: 100 MB reach the client, which keeps a batch's worth and drops the rest."""
    calm = fleet.calm.url("paramiko")
    floods = [fleet.nohead.url("paramiko"), fleet.nohead.url("ssh")]
    report_dir = str(tmp_path / "reports")
    status, stdout, stderr, peak_mb = measured_suite(
        report_dir, f"--hosts={calm},{','.join(floods)}", f"--ssh-config={fleet.config}",
        f"--known-hosts={fleet.known}", "--max-probe-output=1M", *FAST)
    size_mb = os.path.getsize(os.path.join(report_dir, "results.json")) / 1e6
    print(f"\nbounded output, host without a limiting head: suite peak RSS {peak_mb:.0f} MB, results.json "
          f"{size_mb:.1f} MB")
    assert status == 2, stdout[-3000:] + stderr[-2000:]
    assert peak_mb < MEMORY_CEILING_MB
    assert size_mb < 8
    doc = load_doc(report_dir)
    for flood in floods:
        records = [r for r in doc["results"] if r["host"] == flood]
        flooded = [r for r in records if reads(r, "processes")]
        assert flooded
        for record in flooded:
            # The batch's stream passed its cap before the probe's end: no answer, naming the cap.
            assert record["outcome"] == "error" and "--max-probe-output" in record["message"], record["message"]
        calm_outcomes = {r["check_id"]: r["outcome"] for r in doc["results"] if r["host"] == calm}
        for record in records:
            if record["outcome"] != calm_outcomes[record["check_id"]]:
                # Only a check of a probe that shared the flooded batch may differ, and then it says why.
                assert record["outcome"] == "error" and "--max-probe-output" in record["message"], record


# ---------------------------------------------------------------------- this host (local backend)
def _local_runner(cap: int) -> ProbeRunner:
    import testinfra
    return ProbeRunner(testinfra.get_host("local://"), timeout=30, max_output=cap)


@pytest.mark.parametrize("batched", [False, True], ids=["single", "batch"])
def test_local_probes_are_cut_at_the_cap_with_their_exit_status(batched):
    cap = 64 * 1024
    flood = Probe("processes", f"/usr/bin/yes '{PS_LINE}' | /usr/bin/head -c 20000000; exit 3")
    noisy = Probe("getenforce", "/usr/bin/yes oops | /usr/bin/head -c 5000000 >&2; echo Enforcing")
    quiet = Probe("os_release", "echo ID=debian")
    runner = _local_runner(cap)
    got = runner.run_many([flood, noisy, quiet]) if batched else {p.name: runner.run(p) for p in (flood, noisy, quiet)}
    assert got["processes"].truncated == cap and len(got["processes"].stdout) == cap
    # The probe's own exit status (in a batch, the host's head stopped its `head` by SIGPIPE; the probe
    # went on to its `exit 3`).
    assert got["processes"].error is None and got["processes"].exit_status == 3
    assert got["getenforce"].truncated == cap and got["getenforce"].stdout == "Enforcing\n"
    assert len(got["getenforce"].stderr) == cap
    assert got["os_release"].truncated is None and got["os_release"].stdout == "ID=debian\n"
    assert parse(got["processes"]) == Unparsed("processes", f"output truncated at {cap} bytes (--max-probe-output)")


# ---------------------------------------------------------------------- evidence and parsers
def test_truncated_evidence_is_never_parsed_and_round_trips():
    full = f"LABEL PID TTY TIME CMD\n{PS_LINE}\n"
    cut = evidence("processes", stdout=full, command="ps -eZ", truncated=4096)
    assert parse(cut) == Unparsed("processes", "output truncated at 4096 bytes (--max-probe-output)")
    assert not isinstance(parse(evidence("processes", stdout=full, command="ps -eZ")), Unparsed)
    data = cut.to_dict()
    assert data["truncated"] == 4096 and Evidence.from_dict(data) == cut
    # Uncut evidence is written as before (snapshots and old readers see no new key).
    assert "truncated" not in evidence("processes", stdout=full).to_dict()
    assert cut.digest() != evidence("processes", stdout=full, command="ps -eZ").digest()


# ---------------------------------------------------------------------- results.json
def test_results_json_stores_each_probes_evidence_once_and_old_files_stay_readable(tmp_path):
    hosts = "snapshot://fixtures/hosts/healthy-rhel9.json,snapshot://fixtures/hosts/avc-denials.json"
    pre = run_suite(f"--hosts={hosts}", report_dir=str(tmp_path / "pre"))
    doc = load_doc(pre.report_dir)
    assert doc["format"] == "postfix-compliance-results/2"
    for record in doc["results"]:
        assert "evidence" not in record
        table = doc["evidence"][record["host"]]
        assert all(ref in table for ref in record["evidence_refs"]), record["check_id"]
    # Each probe run once per host; more checks than probes refer to them.
    for host, table in doc["evidence"].items():
        refs = [ref for r in doc["results"] if r["host"] == host for ref in r["evidence_refs"]]
        assert set(refs) == set(table) and len(refs) > len(table)
    # The digest is still over the record's evidence, as format /1 computed it.
    inlined = results_report.inline_evidence(load_doc(pre.report_dir))
    for record in inlined["results"]:
        assert record["evidence_digest"] == results_report.evidence_digest(record["evidence"])

    # The same run as format /1 wrote it (each record's evidence inline): a baseline and a fleet input still.
    old = dict(inlined, format="postfix-compliance-results/1")
    del old["evidence"]
    for record in old["results"]:
        del record["evidence_refs"]
    old_path = tmp_path / "old-results.json"
    old_path.write_text(json.dumps(old))
    new_path = os.path.join(pre.report_dir, "results.json")
    # A baseline's AVC-002 evidence reads the same from either format (the comparison's new denials).
    from postfix_compliance import baseline as baseline_file
    denials = []
    for path in (str(old_path), new_path):
        [host] = [h for h in baseline_file.read(path).run.hosts if "avc-denials" in h.id]
        denials.append(baseline_file.current_denials(host))
    assert denials[0] and denials[0] == denials[1]
    changes = []
    for baseline in (str(old_path), new_path):
        run = run_suite(f"--hosts={hosts}", f"--baseline={baseline}", report_dir=str(tmp_path / f"post{len(changes)}"))
        assert "ERROR" not in run.stderr, run.stderr[-2000:]
        changes.append({k: v for k, v in run.results["changes"].items() if k != "baseline"})
    assert changes[0] == changes[1] and changes[0]["new_avc_denials"] == []

    merged = tmp_path / "fleet"
    proc = subprocess.run([sys.executable, "-m", "postfix_compliance.fleet", "merge", str(merged), str(old_path),
                           new_path], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1, 2), proc.stderr
    fleet_doc = load_doc(str(merged))
    assert fleet_doc["format"] == "postfix-compliance-results/2"
    assert all("evidence" not in r for r in fleet_doc["results"])
    resolved = results_report.inline_evidence(fleet_doc)["results"]
    assert sum(len(r["evidence"]) for r in resolved) == sum(len(r["evidence_refs"]) for r in fleet_doc["results"])


def test_a_results_file_naming_evidence_it_does_not_hold_is_one_error_line(tmp_path, suite):
    pre = run_suite("--hosts=snapshot://fixtures/hosts/healthy-rhel9.json", report_dir=str(tmp_path / "pre"))
    doc = load_doc(pre.report_dir)
    doc["evidence"] = {host: {} for host in doc["evidence"]}
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    run = suite("--hosts=snapshot://fixtures/hosts/healthy-rhel9.json", f"--baseline={broken}")
    assert run.exit_status == 4
    [line] = [l for l in run.stderr.splitlines() if l.startswith("ERROR:")]
    assert "evidence_refs" in line and "is not in" in line


@pytest.mark.parametrize("value", ["abc", "12", "4T", "-1"])
def test_a_bad_max_probe_output_is_one_error_line(suite, value):
    run = suite("--hosts=snapshot://fixtures/hosts/healthy-rhel9.json", f"--max-probe-output={value}")
    assert run.exit_status == 4
    assert "Traceback" not in run.stdout + run.stderr
    [line] = [l for l in run.stderr.splitlines() if l.startswith("ERROR:")]
    assert f"--max-probe-output {value!r}" in line


def test_a_snapshot_is_cut_at_the_cap_as_live_output_is(tmp_path):
    """A recorded host that printed 3 MB of well-formed `ps -eZ` replays as a live one does under
    --max-probe-output=64K: its evidence cut and marked, never parsed (SVC-004 an error, not a pass), and
    results.json holds the cut evidence, not the 3 MB."""
    with open(os.path.join(REPO, "fixtures", "hosts", "healthy-rhel9.json"), encoding="utf-8") as handle:
        snapshot = json.load(handle)
    [ps] = [e for e in snapshot["evidence"] if e["probe"] == "processes"]
    ps["stdout"] += (PS_LINE + "\n") * (3_000_000 // len(PS_LINE))
    flooded = tmp_path / "flooded.json"
    flooded.write_text(json.dumps(snapshot))
    run = run_suite(f"--hosts=snapshot://{flooded}", "--max-probe-output=64K", "--no-flush",
                    report_dir=str(tmp_path / "r"))
    doc = load_doc(run.report_dir)
    [cut] = [e for table in doc["evidence"].values() for e in table.values() if e["probe"] == "processes"]
    assert cut["truncated"] == 64 * 1024 and len(cut["stdout"].encode()) <= 64 * 1024
    svc = next(r for r in doc["results"] if r["check_id"] == "SVC-004")
    assert svc["outcome"] == "error" and "output truncated at 65536 bytes" in svc["message"], svc["message"]
    assert os.path.getsize(os.path.join(run.report_dir, "results.json")) < 1_000_000
