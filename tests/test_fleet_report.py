"""A fleet's HTML report: the summary and the failing checks on the page, each host's checks on its own page.

More hosts than report.html.FLEET_HOSTS: compliance.html keeps the host summary, triage and a row for each
failing check only; every host gets hosts/<name>-<hash>.html (all its checks and evidence), linked from
the summary. A run of a few hosts keeps the one page it always had."""

from __future__ import annotations

import glob
import html as html_lib
import json
import os
import re
import subprocess
import sys

import pytest

from selftest import N_CHECKS, REPO, run_suite

from postfix_compliance.report.html import FLEET_HOSTS

sys.path.insert(0, os.path.join(REPO, "bench"))
from report_bench import vary  # noqa: E402  (hosts that differ: some permissive, some mislabelled)


def _hosts(tmp_path, count: int) -> str:
    with open(os.path.join(REPO, "fixtures", "hosts", "healthy-rhel9.json"), encoding="utf-8") as handle:
        base = json.load(handle)
    specs = []
    for index in range(count):
        path = tmp_path / f"mail{index:03d}.json"
        path.write_text(json.dumps(vary(base, index)))
        specs.append(f"snapshot://{path}")
    return ",".join(specs)


def _rows(page: str) -> list[dict]:
    """pytest-html's rows, from its data blob."""
    blob = re.search(r'data-jsonblob="([^"]*)"', page).group(1)
    return list(json.loads(html_lib.unescape(blob))["tests"].values())


@pytest.fixture(scope="module")
def fleet_hosts(tmp_path_factory) -> str:
    return _hosts(tmp_path_factory.mktemp("fleet-hosts"), FLEET_HOSTS + 1)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, fleet_hosts):
    tmp = tmp_path_factory.mktemp("fleet")
    run = run_suite(f"--hosts={fleet_hosts}", "--profile=rhel9", report_dir=str(tmp / "reports"), timeout=300)
    return run


def test_a_fleet_page_lists_the_failing_checks_only(fleet):
    with open(os.path.join(fleet.report_dir, "compliance.html"), encoding="utf-8") as handle:
        page = handle.read()
    failing = [r for r in fleet.results["results"] if r["outcome"] in ("fail", "error")]
    assert failing and len(failing) < len(fleet.results["results"])
    rows = [row for tests in _rows(page) for row in tests]
    assert len(rows) == len(failing)
    data = json.loads(re.search(r'<script type="application/json" id="pfc-data">(.*?)</script>', page, re.S)
                      .group(1))
    assert len(data["rows"]) == len(failing)
    assert "each host's own page" in page


def test_each_fleet_host_has_its_own_page_linked_from_the_summary(fleet):
    with open(os.path.join(fleet.report_dir, "compliance.html"), encoding="utf-8") as handle:
        page = html_lib.unescape(handle.read())
    pages = sorted(glob.glob(os.path.join(fleet.report_dir, "hosts", "*.html")))
    assert len(pages) == FLEET_HOSTS + 1
    for path in pages:
        name = "hosts/" + os.path.basename(path)
        assert f'href="{name}"' in page or f"href=\\\"{name}\\\"" in page or name in page, name
    with open(pages[0], encoding="utf-8") as handle:
        own = handle.read()
    assert own.count('<tbody class="results-table-row">') == N_CHECKS  # every check of the host
    assert 'href="../compliance.html"' in own


def test_a_small_run_keeps_one_page(tmp_path):
    run = run_suite(f"--hosts={_hosts(tmp_path, 2)}", "--profile=rhel9", report_dir=str(tmp_path / "reports"))
    with open(os.path.join(run.report_dir, "compliance.html"), encoding="utf-8") as handle:
        page = handle.read()
    assert len([row for tests in _rows(page) for row in tests]) == 2 * N_CHECKS
    assert not os.path.exists(os.path.join(run.report_dir, "hosts"))


# ---------------------------------------------------------------------- fleet run: local shards, merged
def _fleet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "postfix_compliance.fleet", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def _by_host_check(doc: dict) -> dict[tuple[str, str], tuple[str, str]]:
    return {(r["host_name"], r["check_id"]): (r["outcome"], r["message"]) for r in doc["results"]}


def test_fleet_run_in_local_shards_equals_the_single_run(fleet, fleet_hosts, tmp_path):
    """`fleet run --jobs 3` over the same hosts: the merged results are the single run's, host by host and
    check by check; the exit status is its; fleet.html links every host's own page, and each is written."""
    out = str(tmp_path / "fleet")
    script = str(tmp_path / "fix.sh")
    proc = _fleet("run", out, "--jobs", "3", "--", "-q", "-p", "no:randomly", f"--hosts={fleet_hosts}",
                  "--profile=rhel9", "--remediation-script", script)
    assert proc.returncode == fleet.exit_status, proc.stdout + proc.stderr
    # The script is the merge's, from the merged run: the shards wrote none of their own.
    assert open(script).read().startswith("#!/usr/bin/env bash") and oct(os.stat(script).st_mode & 0o777) == "0o700"
    assert not glob.glob(os.path.join(out, "shards", "*", "fix.sh"))
    with open(os.path.join(out, "results.json"), encoding="utf-8") as handle:
        merged = json.load(handle)
    assert _by_host_check(merged) == _by_host_check(fleet.results) and len(merged["results"]) == N_CHECKS * (FLEET_HOSTS + 1)
    assert [s["path"] for s in merged["fleet"]["sources"]] == [
        os.path.join(out, "shards", str(k), "results.json") for k in (1, 2, 3)]
    for k in (1, 2, 3):  # each shard ran its own slice, its terminal output kept beside it
        with open(os.path.join(out, "shards", f"{k}.log"), encoding="utf-8") as handle:
            assert f"shard {k}/3: " in handle.read()
        assert f"fleet run: shard {k}/3: exit " in proc.stderr
    with open(os.path.join(out, "fleet.html"), encoding="utf-8") as handle:
        page = html_lib.unescape(handle.read())
    linked = set(re.findall(r"hosts/[A-Za-z0-9_.-]+\.html", page))
    pages = {"hosts/" + os.path.basename(p) for p in glob.glob(os.path.join(out, "hosts", "*.html"))}
    assert len(linked) == FLEET_HOSTS + 1 and linked == pages
    with open(os.path.join(out, sorted(pages)[0]), encoding="utf-8") as handle:
        own = handle.read()
    assert own.count('<tbody class="results-table-row">') == N_CHECKS and 'href="../fleet.html"' in own
    # Its "Results files" table names its own file and host only, not every host of the fleet.
    sources = re.search(r'<table id="sources".*?</table>', own, re.S).group(0)
    assert sources.count("<tr><td") == 1 and sources.count(".example.test") == 1, sources


@pytest.mark.parametrize("args, expected", [
    (["--jobs", "2", "--", "--hosts=bogus://x"], "bogus"),
    (["--", "--hosts=snapshot://fixtures/hosts/healthy-rhel9.json", "--report-dir=elsewhere"], "--report-dir"),
    (["--", "--hosts=snapshot://fixtures/hosts/healthy-rhel9.json", "--shard=1/2"], "--shard"),
    (["--", "--hosts=snapshot://fixtures/hosts/healthy-rhel9.json", "--xccdf"], "--xccdf needs a value"),
    (["--", "--hosts=snapshot://fixtures/hosts/healthy-rhel9.json", "--remediation-script=/proc/fix.sh"],
     "--remediation-script /proc/fix.sh"),
    (["--jobs", "0", "--"], "--jobs 0"),
    ([], "after --"),
])
def test_fleet_run_bad_input_is_one_error_line(tmp_path, args, expected):
    out = str(tmp_path / "fleet")
    proc = _fleet("run", out, *args)
    output = proc.stdout + proc.stderr
    errors = [line for line in output.splitlines() if line.startswith("ERROR")]
    assert proc.returncode == 4 and "Traceback" not in output, output
    assert len(errors) == 1 and expected in errors[0], output
    assert not os.path.exists(os.path.join(out, "results.json"))


def test_fleet_run_sizes_itself_to_the_machine(tmp_path):
    """No --jobs: one shard more than the cores this process may use; shards without a host are merged
    as such, and the one host is there once."""
    out = str(tmp_path / "fleet")
    proc = _fleet("run", out, "--", "-q", "-p", "no:randomly", "--hosts=snapshot://fixtures/hosts/healthy-rhel9.json",
                  "--profile=rhel9")
    jobs = len(os.sched_getaffinity(0)) + 1
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"fleet run: {jobs} shards started" in proc.stderr
    assert sorted(os.listdir(os.path.join(out, "shards"))) == sorted(
        [str(k) for k in range(1, jobs + 1)] + [f"{k}.log" for k in range(1, jobs + 1)])
    for k in range(1, jobs + 1):  # a shard writes results.json alone (--results-only)
        assert os.listdir(os.path.join(out, "shards", str(k))) == ["results.json"]
    with open(os.path.join(out, "results.json"), encoding="utf-8") as handle:
        merged = json.load(handle)
    assert len(merged["results"]) == N_CHECKS and len(merged["fleet"]["sources"]) == jobs


def test_fleet_run_shares_the_hosts_in_flight_over_its_shards():
    """The single run's 16 hosts collected ahead are shared out (at least 4 a shard); a --prefetch-hosts
    of the operator's is kept as given; each shard gets its own slice and directory, results.json only."""
    from postfix_compliance.fleet_run import shard_command
    command = shard_command(["--hosts=x"], 2, 3, "out/shards/2")
    assert command[1:3] == ["-m", "pytest"] and command[3:] == [
        "--hosts=x", "--shard=2/3", "--report-dir=out/shards/2", "--results-only", "--prefetch-hosts=6"]
    assert shard_command(["--hosts=x"], 1, 8, "d")[-1] == "--prefetch-hosts=4"
    given = shard_command(["--prefetch-hosts", "2"], 1, 3, "d")
    assert not any(a.startswith("--prefetch-hosts=") for a in given) and given[3:5] == ["--prefetch-hosts", "2"]
