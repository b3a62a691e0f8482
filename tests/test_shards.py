"""CI shards: `--shard K/N` runs one slice of the hosts, `fleet merge` joins the slices (issue #16).

A 4-way sharded run over 12 scenario snapshots, merged, equals the unsharded run host by host and check
by check (outcome and message); every host is in exactly one slice, chosen by the host alone (adding a
host moves no other); an empty slice exits 0 with an empty results.json; a bad --shard is one ERROR
line; the merge reads its inputs one at a time; the CI examples in contrib/ci/ parse.
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import weakref

import pytest
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_golden import comparable, groups, normalise  # noqa: E402
from selftest import N_CHECKS, REPO, assert_one_error_line, run_suite  # noqa: E402

from postfix_compliance import fleet  # noqa: E402
from postfix_compliance.plugin.targets import parse_shard, shard_of  # noqa: E402

SHARDS = 4
ARGS = ("--poll-interval", "0.1")


def _hosts_from(snapshots: list[str], directory: str) -> list[str]:
    """The snapshots copied to `directory`, each reporting its own host name (the merge matches hosts by
    name, and the scenario snapshots all call themselves mail1.example.com): snapshot:// URLs."""
    os.makedirs(directory, exist_ok=True)
    urls = []
    for rel in snapshots:
        with open(os.path.join(REPO, rel), encoding="utf-8") as handle:
            doc = json.load(handle)
        stem = os.path.basename(rel).removesuffix(".json")
        doc["host"] = f"{stem}.example.test"
        path = os.path.join(directory, f"{stem}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(doc, handle)
        urls.append(f"snapshot://{path}")
    return urls


def _results(report_dir: str) -> dict:
    with open(os.path.join(report_dir, "results.json"), encoding="utf-8") as handle:
        return json.load(handle)


def _merge(out: str, *inputs: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "postfix_compliance.fleet", "merge", out, *inputs],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def _by_host_check(doc: dict) -> dict[tuple[str, str], tuple[str, str]]:
    return {(r["host_name"], r["check_id"]): (r["outcome"], r["message"]) for r in doc["results"]}


# Every output a renderer writes from the run (report/outputs.py), as the merge writes it too.
OUTPUT_FILES = {"--remediation-script": "remediation.sh", "--remediation-playbook": "playbook.yml",
                "--xccdf": "xccdf.xml", "--metrics": "metrics.prom", "--xccdf-dir": "xccdf", "--junitxml": "junit.xml"}
# The one thing of pytest's JUnit a run result does not hold: the source line before a skip's reason.
_SKIP_LOCATION = re.compile(r'(<skipped type="pytest.skip" message="[^"]*">)<repo>/[\w./-]+\.py:<line>: ')


def _output_args(directory: str) -> list[str]:
    return [f"{flag}={os.path.join(directory, name)}" for flag, name in OUTPUT_FILES.items()]


def _outputs(directory: str) -> dict[str, str]:
    """Each output file under `directory` (the per-host XCCDF files by name), normalised as the golden
    outputs are (times, the machine, where the files are)."""
    found = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            kind = "junit.xml" if name == "junit.xml" else "xccdf.xml" if name.endswith(".xml") else name
            with open(path, encoding="utf-8") as handle:
                text = normalise(kind, handle.read(), directory)
            # pytest writes testcases as checks finish, the merge host by host: the same set, sorted
            found[os.path.relpath(path, directory)] = comparable(kind, _SKIP_LOCATION.sub(r"\1", text))
    return found


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory):
    """12 snapshot hosts (the profile-detecting group of the scenarios), run unsharded and as 4 shards."""
    base = str(tmp_path_factory.mktemp("shards"))
    snapshots = sorted(groups()["detect"])
    hosts = _hosts_from(snapshots[:12], os.path.join(base, "hosts"))
    extra = _hosts_from(snapshots[12:13], os.path.join(base, "hosts"))[0]
    whole = run_suite(f"--hosts={','.join(hosts)}", *ARGS, *_output_args(os.path.join(base, "whole-outputs")),
                      report_dir=os.path.join(base, "whole"))
    assert whole.exit_status in (0, 1, 2), whole.stdout + whole.stderr
    shards = []
    for k in range(1, SHARDS + 1):
        run = run_suite(f"--hosts={','.join(hosts)}", *ARGS, f"--shard={k}/{SHARDS}",
                        report_dir=os.path.join(base, f"shard-{k}"))
        assert run.exit_status in (0, 1, 2), run.stdout + run.stderr
        shards.append(run)
    return {"base": base, "hosts": hosts, "extra": extra, "whole": whole, "shards": shards}


def test_four_shards_merged_equal_the_unsharded_run(fleet_run):
    base = fleet_run["base"]
    out = os.path.join(base, "fleet")
    proc = _merge(out, *(s.report_dir for s in fleet_run["shards"]))
    whole = _results(fleet_run["whole"].report_dir)
    merged = _results(out)
    assert len({r["host_name"] for r in whole["results"]}) == 12
    assert _by_host_check(merged) == _by_host_check(whole)
    assert len(merged["results"]) == len(whole["results"])
    assert merged["fleet"]["duplicates"] == []
    assert [s["path"] for s in merged["fleet"]["sources"]] == [
        os.path.join(s.report_dir, "results.json") for s in fleet_run["shards"]]
    # The fleet's exit status is the unsharded run's; the slices' worst is too.
    assert proc.returncode == fleet_run["whole"].exit_status, proc.stderr
    assert max(s.exit_status for s in fleet_run["shards"]) == fleet_run["whole"].exit_status
    # Evidence travels with the records: each merged record's evidence is the unsharded run's.
    def evidence(doc):
        return {(r["host_name"], r["check_id"]): [doc["evidence"][r["host"]][ref] for ref in r["evidence_refs"]]
                for r in doc["results"]}
    assert evidence(merged) == evidence(whole)


def test_four_shards_merged_write_every_output_the_unsharded_run_writes(fleet_run):
    """The script, the playbook, the XCCDF file and the per-host XCCDF files, the metrics, JUnit: each rendered
    from the merged run (report/outputs.py, the one table the single run uses too), the same as the single
    run's (its JUnit is pytest's own: the merge's has the same testcases, element for element)."""
    base = fleet_run["base"]
    out = os.path.join(base, "fleet-outputs")
    proc = _merge(os.path.join(base, "fleet2"), *(s.report_dir for s in fleet_run["shards"]), *_output_args(out))
    assert proc.returncode == fleet_run["whole"].exit_status, proc.stderr
    whole, merged = _outputs(os.path.join(base, "whole-outputs")), _outputs(out)
    assert sorted(merged) == sorted(whole) and len(whole) == 5 + 12
    for name in whole:
        assert merged[name] == whole[name], name
    # pytest's JUnit of the single run and the merge's: every outcome is in it (fail, skip, waived aside).
    junit = whole["junit.xml"]
    assert junit.count("<testcase ") == 12 * N_CHECKS and "<failure " in junit and "<skipped " in junit
    # and the merge directory has its junit.xml, as a single run's report directory has
    with open(os.path.join(base, "fleet2", "junit.xml"), encoding="utf-8") as handle:
        assert comparable("junit.xml", _SKIP_LOCATION.sub(r"\1", normalise("junit.xml", handle.read(), out))) \
            == merged["junit.xml"]


def test_every_host_in_exactly_one_shard(fleet_run):
    seen: dict[str, int] = {}
    for k, run in enumerate(fleet_run["shards"], 1):
        doc = _results(run.report_dir)
        assert doc["shard"] == {"index": k, "count": SHARDS}
        hosts = {r["host"] for r in doc["results"]}
        # The slice is the host's own: sha256 of its id, modulo N.
        assert hosts == {h for h in fleet_run["hosts"] if shard_of(h, SHARDS) == k}
        assert f"shard {k}/{SHARDS}: {len(hosts)} of the run's 12 hosts" in run.stdout
        for host in hosts:
            assert host not in seen, f"{host} in shards {seen[host]} and {k}"
            seen[host] = k
    assert sorted(seen) == sorted(fleet_run["hosts"])


def _collected_hosts(run) -> set[str]:
    return set(re.findall(r"\[[A-Z]+-[0-9]+-(.+?)\]$", run.stdout, re.M))


def test_adding_a_host_moves_no_other(fleet_run):
    """The 12 hosts plus one: each of the 12 stays in its slice, the new one lands in exactly one."""
    base = fleet_run["base"]
    before = {}
    for k, run in enumerate(fleet_run["shards"], 1):
        before.update({r["host"]: k for r in _results(run.report_dir)["results"]})
    hosts = [*fleet_run["hosts"], fleet_run["extra"]]
    after = {}
    for k in range(1, SHARDS + 1):
        run = run_suite(f"--hosts={','.join(hosts)}", f"--shard={k}/{SHARDS}", "--collect-only",
                        report_dir=os.path.join(base, f"plus-one-{k}"))
        assert run.exit_status == 0, run.stdout + run.stderr
        for host in _collected_hosts(run):
            assert host not in after
            after[host] = k
    assert set(after) == set(hosts)
    assert {h: after[h] for h in before} == before


def test_an_empty_shard_runs_nothing_and_exits_0(tmp_path):
    [host] = _hosts_from(["fixtures/hosts/healthy-rhel9.json"], str(tmp_path / "hosts"))
    other = next(k for k in range(1, SHARDS + 1) if k != shard_of(host, SHARDS))
    run = run_suite(f"--hosts={host}", *ARGS, f"--shard={other}/{SHARDS}", report_dir=str(tmp_path / "empty"))
    assert run.exit_status == 0, run.stdout + run.stderr
    assert f"shard {other}/{SHARDS}: 0 of the run's 1 hosts" in run.stdout
    doc = _results(run.report_dir)
    assert doc["results"] == [] and doc["summary"] == {} and doc["shard"] == {"index": other, "count": SHARDS}
    # Its own slice has the host; merged with the empty one, the host is there once.
    mine = run_suite(f"--hosts={host}", *ARGS, f"--shard={shard_of(host, SHARDS)}/{SHARDS}",
                     report_dir=str(tmp_path / "mine"))
    assert mine.exit_status == 0, mine.stdout + mine.stderr
    proc = _merge(str(tmp_path / "fleet"), run.report_dir, mine.report_dir)
    assert proc.returncode == 0, proc.stderr
    merged = _results(str(tmp_path / "fleet"))
    assert {r["host_name"] for r in merged["results"]} == {"healthy-rhel9.example.test"}
    assert [s["kept"] for s in merged["fleet"]["sources"]] == [0, len(merged["results"])]


def test_results_only_writes_results_json_alone_with_the_same_results(fleet_run, tmp_path):
    """--results-only (a run merged later: fleet run's shards, CI shards): results.json and no page,
    host page or junit.xml; its records are the full run's."""
    hosts = fleet_run["hosts"][:3]
    run = run_suite(f"--hosts={','.join(hosts)}", *ARGS, "--results-only", report_dir=str(tmp_path / "r"))
    assert run.exit_status in (0, 1, 2), run.stdout + run.stderr
    assert sorted(os.listdir(run.report_dir)) == ["results.json"]
    whole = {k: v for k, v in _by_host_check(_results(fleet_run["whole"].report_dir)).items()
             if k[0] in {r["host_name"] for r in _results(run.report_dir)["results"]}}
    assert _by_host_check(_results(run.report_dir)) == whole and len(whole) == 3 * N_CHECKS


@pytest.mark.parametrize("value, expected", [
    ("0/4", "K must be between 1 and N"), ("5/4", "K must be between 1 and N"),
    ("x/y", "give K/N"), ("1/0", "N (the number of slices) must be at least 1"),
])
def test_bad_shard_is_one_error_line(tmp_path, value, expected):
    run = run_suite("--hosts=snapshot://fixtures/hosts/healthy-rhel9.json", f"--shard={value}",
                    report_dir=str(tmp_path / "r"))
    line = assert_one_error_line(run, "--shard", value, expected)
    assert line.startswith("ERROR: --shard")


def test_parse_shard():
    assert parse_shard("1/1") == (1, 1) and parse_shard("3/4") == (3, 4) and parse_shard(" 2 / 8 ") == (2, 8)
    for bad in ("", "4", "1/", "/4", "-1/4", "1/-4", "1.0/4", "1/4/2", "1/4x"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    # The slice of a host depends on its id alone, and all slices get hosts.
    ids = [f"ssh://mail{i}.example.test" for i in range(400)]
    assert {shard_of(h, 4) for h in ids} == {1, 2, 3, 4}
    assert [shard_of(h, 4) for h in ids] == [shard_of(h, 4) for h in ids]


class _Doc(dict):
    """A results document that can be watched (weakref) to see when the merge lets it go."""


def test_merge_holds_one_input_at_a_time(fleet_run):
    """The merge reads the files one by one: each document is freed before the next is read."""
    watched: list[weakref.ref] = []

    def documents():
        for run in fleet_run["shards"]:
            gc.collect()
            assert all(ref() is None for ref in watched), "an earlier input is still held"
            doc = _Doc(fleet.load_results(run.report_dir))
            watched.append(weakref.ref(doc))
            yield doc
            del doc

    merged = fleet.merge(documents())
    gc.collect()
    assert all(ref() is None for ref in watched)
    assert len({h.name for h in merged.run.hosts}) == 12
    # Each kept host keeps only the evidence its kept checks read.
    for host in merged.run.hosts:
        assert set(host.evidence) == {ref for check in host.checks for ref in check.evidence_refs}


# ---------------------------------------------------------------------- the CI examples
CI = os.path.join(REPO, "contrib", "ci")


def test_gitlab_example_parses_and_shards():
    with open(os.path.join(CI, "fleet-shards.gitlab-ci.yml"), encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    job, merge = doc["compliance-shard"], doc["fleet-merge"]
    assert job["parallel"] == 4
    script = " ".join(line for line in job["script"] if isinstance(line, str))
    assert "--shard=\"${CI_NODE_INDEX}/${CI_NODE_TOTAL}\"" in script and "--report-dir=" in script
    assert job["artifacts"]["when"] == "always" and "reports/shard-*/" in job["artifacts"]["paths"]
    assert merge["needs"][0]["job"] == "compliance-shard"
    assert any("postfix_compliance.fleet merge" in line for line in merge["script"] if isinstance(line, str))
    assert merge["artifacts"]["reports"]["metrics"] == "fleet/metrics.prom"


def test_github_example_parses_and_shards():
    with open(os.path.join(CI, "fleet-shards.github-workflow.yml"), encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    shard, merge = doc["jobs"]["shard"], doc["jobs"]["merge"]
    assert shard["strategy"]["matrix"]["shard"] == list(range(1, int(doc["env"]["SHARDS"]) + 1))
    steps = shard["steps"]
    assert any("--shard=\"${{ matrix.shard }}/$SHARDS\"" in s.get("run", "") for s in steps)
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") for s in steps)
    assert merge["needs"] == "shard"
    assert any(s.get("uses", "").startswith("actions/download-artifact@") for s in merge["steps"])
    assert any("postfix_compliance.fleet merge" in s.get("run", "") for s in merge["steps"])
