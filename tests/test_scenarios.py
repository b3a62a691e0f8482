"""The scenario matrix: every snapshot in fixtures/hosts/ fails exactly its expected checks.

tests/scenarios/matrix.yaml names each scenario, its profile, the check ids that must fail
(exactly), those that must be not_applicable (exactly; the rest must pass) and why. The
snapshots are built by tests/scenarios/build_snapshots.py; a test here holds the committed files
to the builder byte for byte, and another holds the builder's formats to the real outputs in
tests/reference/. Snapshots run many to one suite invocation
(`--hosts=snapshot://a.json,snapshot://b.json`): those judged by a shipped profile with the
profile detected per host, the others grouped by their profile file; the invocations in parallel.
"""

from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import re
import sys
from typing import Any

import pytest
import yaml

from selftest import HOSTS_DIR, REFERENCE_DIR, REPO, SuiteRun, run_suite

sys.path.insert(0, os.path.join(REPO, "tests", "scenarios"))
import build_snapshots  # noqa: E402
import scenario_formats as fmt  # noqa: E402

from postfix_compliance.catalog_doc import load_checks  # noqa: E402
from postfix_compliance.facts import model  # noqa: E402
from postfix_compliance.facts.evidence import Evidence  # noqa: E402
from postfix_compliance.facts.parsers import parse  # noqa: E402
from postfix_compliance.profiles import load_profile  # noqa: E402

with open(build_snapshots.MATRIX, encoding="utf-8") as _handle:
    MATRIX_DOC = yaml.safe_load(_handle)
MATRIX: list[dict[str, Any]] = MATRIX_DOC["scenarios"]
EXTRA_ARGS: list[str] = [str(a) for a in MATRIX_DOC.get("args", [])]
BY_NAME = {entry["name"]: entry for entry in MATRIX}
CATALOG = load_checks()  # every check of tests_host/, by id
HOSTS_PER_RUN = 18  # at most this many snapshots per suite invocation


def host_id(name: str) -> str:
    return f"snapshot://fixtures/hosts/{name}.json"


# ----------------------------------------------------------------------------- running the matrix


def run_key(entry: dict[str, Any]) -> str:
    """Snapshots judged by a shipped profile run together with the profile detected per host from
    os-release (no --profile): that is what a user's plain `pytest --hosts=...` does. The others
    pass their profile file."""
    return "detect" if "/" not in entry["profile"] else entry["profile"]


@pytest.fixture(scope="module")
def matrix_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SuiteRun]:
    """scenario name -> the suite run that judged it (run_suite, as the `suite` fixture runs it;
    one run per group of snapshots, the runs in parallel)."""
    groups: dict[str, list[str]] = {}
    for entry in MATRIX:
        groups.setdefault(run_key(entry), []).append(entry["name"])
    batches = []
    for key, names in groups.items():
        chunks = max(1, -(-len(names) // HOSTS_PER_RUN))
        batches += [(key, names[i::chunks]) for i in range(chunks)]
    base = tmp_path_factory.mktemp("scenarios")

    def run(index: int, key: str, names: list[str]) -> tuple[list[str], SuiteRun]:
        hosts = ",".join(host_id(n) for n in names)
        # --profile=PATH, not "--profile PATH": before the plugin's options are known pytest takes
        # a bare existing path for a test path when it picks the rootdir and ini file
        profile = [] if key == "detect" else [f"--profile={key}"]
        return names, run_suite(f"--hosts={hosts}", *profile, *EXTRA_ARGS,
                                report_dir=str(base / f"run{index}"), timeout=120)

    runs: dict[str, SuiteRun] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(3, len(batches))) as pool:
        futures = [pool.submit(run, i, key, names) for i, (key, names) in enumerate(batches)]
        for future in futures:
            names, suite_run = future.result()
            for name in names:
                runs[name] = suite_run
    return runs


@pytest.mark.parametrize("name", [e["name"] for e in MATRIX])
def test_scenario_fails_exactly_the_expected_checks(matrix_runs, name):
    entry = BY_NAME[name]
    run = matrix_runs[name]
    assert os.path.exists(os.path.join(run.report_dir, "results.json")), run.stdout[-3000:] + run.stderr[-3000:]
    outcomes = run.outcomes(host_id(name))
    assert set(outcomes) == set(CATALOG), f"checks missing from the run: {sorted(set(CATALOG) - set(outcomes))}"
    by = {o: {cid for cid, out in outcomes.items() if out == o} for o in ("pass", "fail", "error", "not_applicable")}
    errors = {cid: run.record(cid, host_id(name))["message"] for cid in by["error"]}
    assert by["error"] == set(entry.get("error", [])), f"unexpected errors: {errors}"
    failing = {cid: run.record(cid, host_id(name))["message"] for cid in by["fail"]}
    assert by["fail"] == set(entry["fail"]), f"{name}: failing {failing}"
    na = {cid: run.record(cid, host_id(name))["message"] for cid in by["not_applicable"]}
    assert by["not_applicable"] == set(entry["not_applicable"]), f"{name}: not applicable {na}"
    assert outcomes.keys() - by["fail"] - by["error"] - by["not_applicable"] == by["pass"]
    expected_profile = load_profile(build_snapshots.profile_path(entry["profile"])).name
    assert {r["profile"] for r in run.results["results"] if r["host"] == host_id(name)} == {expected_profile}
    for cid in by["fail"] | by["error"] | by["not_applicable"]:
        record = run.record(cid, host_id(name))
        assert record["message"].strip(), f"{name} {cid}: {record['outcome']} without a message"
    for cid in by["fail"]:
        assert run.record(cid, host_id(name))["evidence"], f"{name} {cid}: failure without evidence"


def test_healthy_hosts_pass_everything_that_applies(matrix_runs):
    healthy = [e["name"] for e in MATRIX if not e["fail"]]
    assert "healthy-rhel9" in healthy
    for name in healthy:
        outcomes = set(matrix_runs[name].outcomes(host_id(name)).values())
        assert outcomes <= {"pass", "not_applicable"}, (name, outcomes)
    assert matrix_runs["healthy-rhel9"].outcomes(host_id("healthy-rhel9"))["LBL-003"] == "not_applicable"


def test_queue_not_draining_fails_early_after_a_few_polls(matrix_runs):
    run = matrix_runs["queue-not-draining"]
    q002 = run.record("Q-002", host_id("queue-not-draining"))
    assert q002["outcome"] == "fail"
    assert q002["message"].startswith("queue does not drain (after "), q002["message"]
    polls = int(re.search(r"(\d+) polls", q002["message"])[1])
    assert polls <= 3, q002["message"]
    assert q002["duration_s"] < 5, "Q-002 must decide early, not wait for --drain-timeout"
    probes = [e["probe"] for e in q002["evidence"]]
    assert "queue_flush" in probes and probes.count("queue_json") >= 2  # collected queue and the last poll
    assert all(m in q002["message"] for m in ("4155253AD", "8151B53AA", "EFB7353A8"))


def test_queue_over_threshold_drains_after_the_flush(matrix_runs):
    run = matrix_runs["queue-over-threshold"]
    q001, q002 = (run.record(cid, host_id("queue-over-threshold")) for cid in ("Q-001", "Q-002"))
    # the suite's own flush drained the queue: Q-001 judges the queue after it, and says both counts
    assert q001["outcome"] == "pass", q001
    assert q001["message"].startswith("8 deferred when collected, 0 after the suite's flush"), q001["message"]
    assert q002["outcome"] == "pass"
    flushed = [e for e in q002["evidence"] if e["probe"] == "queue_flush"]
    assert flushed and flushed[0]["command"] == "postqueue -f"
    assert q002["duration_s"] < 5


def test_queue_over_threshold_without_a_flush_is_judged_as_found(suite):
    """--no-flush (and --read-only): no drain by the suite, so Q-001 judges the queue as collected."""
    entry = BY_NAME["queue-over-threshold"]
    for option in ("--no-flush", "--read-only"):
        run = suite(f"--hosts={host_id('queue-over-threshold')}", f"--profile={entry['profile']}",
                    "--poll-interval=0.1", option, "-k", "Q-00")
        q001 = run.record("Q-001", host_id("queue-over-threshold"))
        assert q001["outcome"] == "fail" and q001["message"].startswith("8 deferred messages (threshold 5)"), q001
        assert not any(e["probe"] == "queue_flush" for e in q001["evidence"])


def test_q001_alone_judges_the_queue_as_found(suite):
    """Without Q-002 in the run nothing flushes: Q-001 selected alone judges the queue as collected."""
    entry = BY_NAME["queue-over-threshold"]
    run = suite(f"--hosts={host_id('queue-over-threshold')}", f"--profile={entry['profile']}", "-k", "Q-001")
    assert run.record("Q-001", host_id("queue-over-threshold"))["outcome"] == "fail"


def test_failures_name_what_to_fix(matrix_runs):
    """Spot checks that messages carry the specifics the runbook needs."""
    msg = lambda name, cid: matrix_runs[name].record(cid, host_id(name))["message"]  # noqa: E731
    assert "not defined by this host's policy" in msg("boolean-old-name-only", "BOOL-001")
    assert "Error getting active value for allow_postfix_local_write_mail_spool" in msg("boolean-old-name-only", "BOOL-001")
    assert msg("boolean-runtime-only", "BOOL-002").startswith("booleans not persistent as required")
    assert "/var/spool/postfix is labelled var_spool_t, expected postfix_spool_t" in msg("spool-mislabelled", "LBL-001")
    assert msg("rhel7-style", "LBL-001").startswith("/var/spool/postfix is labelled tmp_t")
    assert "queue_directory /data/postfix has no local fcontext equivalence" in msg(
        "custom-queue-dir-no-equivalence", "LBL-003")
    assert msg("permissive", "SEL-001") == "SELinux is Permissive, expected Enforcing"
    assert msg("disabled", "SEL-002") == "/etc/selinux/config has SELINUX=disabled, expected SELINUX=enforcing"
    assert "postfix_local_t" in msg("permissive-domain", "SEL-005")
    assert "2525" in msg("listener-port-unlabelled", "REL-002")
    boolean_avc = matrix_runs["boolean-off-local-delivery"].record("AVC-002", host_id("boolean-off-local-delivery"))
    assert boolean_avc["message"].startswith("2 denials for Postfix domains")
    permissive_avc = matrix_runs["avc-permissive-denials"].record("AVC-002", host_id("avc-permissive-denials"))
    assert permissive_avc["message"].startswith("4 denials for Postfix domains")


# ----------------------------------------------------------------------------- the fixtures themselves


def test_matrix_builder_and_fixtures_name_the_same_scenarios():
    names = [e["name"] for e in MATRIX]
    assert len(names) == len(set(names)), "duplicate scenario names"
    assert set(names) == set(build_snapshots.SCENARIOS)
    built = {name[:-5] for name in build_snapshots.built_files(HOSTS_DIR)}
    assert built == set(names), "the builder's snapshots in fixtures/hosts/ are exactly the matrix' scenarios"
    assert {os.path.basename(p)[:-5] for p in glob.glob(os.path.join(HOSTS_DIR, "*.json"))} >= set(names)
    for entry in MATRIX:
        assert entry["reason"].strip() and set(entry["fail"]) <= set(CATALOG), entry["name"]
        assert set(entry["not_applicable"]) <= set(CATALOG) and not set(entry["fail"]) & set(entry["not_applicable"])


def test_builder_reproduces_the_committed_fixtures_byte_for_byte():
    built = build_snapshots.build_all(MATRIX)
    for name, text in sorted(built.items()):
        with open(os.path.join(HOSTS_DIR, name), encoding="utf-8") as handle:
            assert handle.read() == text, \
                f"fixtures/hosts/{name} differs from the builder: python tests/scenarios/build_snapshots.py"


@pytest.mark.parametrize("name", [e["name"] for e in MATRIX])
def test_every_snapshot_parses(name):
    """Every record is understood: a fact or an honest Unavailable (tool or subsystem absent),
    never Unparsed; commands are the probe catalogue's own."""
    from postfix_compliance.backends.snapshot import load_snapshot
    from postfix_compliance.facts.probes import FLUSH_COMMAND, build_probes

    doc = load_snapshot(os.path.join(HOSTS_DIR, f"{name}.json"))
    profile = load_profile(build_snapshots.profile_path(BY_NAME[name]["profile"]))
    commands = {p.name: p.command for p in build_probes(tuple(n for n, _ in profile.booleans))}
    commands["queue_flush"] = FLUSH_COMMAND
    seen = set()
    for record in doc["evidence"]:
        assert commands.get(record["probe"]) == record["command"], record["probe"]
        seen.add(record["probe"])
        if record["probe"] == "queue_flush":
            continue
        fact = parse(Evidence.from_dict(record))
        assert not isinstance(fact, model.Unparsed), f"{record['probe']}: {fact.reason}"
    assert set(commands) - {"queue_flush"} <= seen, "every probe of the catalogue is recorded"


# ----------------------------------------------------------------------------- formats vs real outputs

SELINUX_REF = os.path.join(REFERENCE_DIR, "debian12-selinux-enforcing")
CI_REF = os.path.join(REFERENCE_DIR, "debian12-no-selinux-kernel")


def _read(*parts: str) -> str:
    with open(os.path.join(*parts), encoding="utf-8") as handle:
        return handle.read()


def test_formats_reproduce_the_reference_outputs():
    ss_rows = [("LISTEN", 0, 100, "127.0.0.1", "25", "0.0.0.0", "*", '("master",pid=551,fd=13)'),
               ("LISTEN", 0, 128, "0.0.0.0", "22", "0.0.0.0", "*", '("sshd",pid=337,fd=3)'),
               ("LISTEN", 0, 128, "[::]", "22", "[::]", "*", '("sshd",pid=337,fd=4)')]
    assert fmt.ss_lntp(ss_rows) == _read(SELINUX_REF, "ss_lntp.txt")
    postfix_ps = [tuple(line.split(None, 4)) for line in _read(SELINUX_REF, "ps_eZ_postfix_lines.txt").splitlines()]
    assert fmt.ps_eZ([(l, int(p), t, c, n) for l, p, t, c, n in postfix_ps]).split("\n", 1)[1] == \
        _read(SELINUX_REF, "ps_eZ_postfix_lines.txt")
    assert fmt.sestatus(True, "default") == _read(SELINUX_REF, "sestatus_enforcing.txt")
    assert fmt.sestatus(True, "default", "permissive") == _read(SELINUX_REF, "sestatus_permissive_runtime.txt")
    assert fmt.semanage_port([("smtp_port_t", "tcp", "25, 465, 587")]).endswith(
        _read(SELINUX_REF, "semanage_port_l_smtp_lines.txt"))
    assert fmt.semanage_boolean([("aide_mmap_files", False, False, "Allow aide to mmap files")]) == \
        _read(SELINUX_REF, "semanage_boolean_l_head.txt")
    rows = []
    for line in _read(SELINUX_REF, "semanage_boolean_l_postfix_lines_runtime_off.txt").splitlines():
        m = re.match(r"(\S+)\s*\(\s*(on|off)\s*,\s*(on|off)\)\s+(.*)", line)
        rows.append((m[1], m[2] == "on", m[3] == "on", m[4]))
    assert fmt.semanage_boolean(rows).split("\n", 2)[2] == \
        _read(SELINUX_REF, "semanage_boolean_l_postfix_lines_runtime_off.txt")
    head = _read(SELINUX_REF, "semodule_lfull_head.txt").splitlines()
    modules = [(int(l[:3]), l.split()[1], l.split()[2], "disabled" not in l) for l in head]
    # the reference's column width comes from its longest module name (15 characters)
    assert fmt.semodule_lfull(modules + [(100, "cpufreqselector", "pp", True)]).splitlines()[:10] == head
    assert fmt.ls_zd("/var/spool/postfix", "system_u:object_r:postfix_spool_t:s0") == \
        _read(SELINUX_REF, "ls_Zd_queue_dir.txt")
    assert fmt.ls_zd("/var/spool/postfix/deferred", "system_u:object_r:tmp_t:s0") == \
        _read(SELINUX_REF, "ls_Zd_deferred_mislabelled.txt")
    relabels = [(l.split()[2], l.split()[4], l.split()[6])
                for l in _read(SELINUX_REF, "restorecon_Rnv_excerpt_mislabelled.txt").splitlines()]
    assert fmt.restorecon(relabels) == _read(SELINUX_REF, "restorecon_Rnv_excerpt_mislabelled.txt")
    assert fmt.getsebool({"postfix_local_write_mail_spool": True}) == _read(SELINUX_REF, "getsebool_one.txt")
    for base, jsonl, text in ((SELINUX_REF, "postqueue_j_deferred.jsonl", "postqueue_p_deferred.txt"),
                              (CI_REF, "postqueue_j_deferred.jsonl", "mailq_deferred.txt")):
        messages = build_snapshots.ref_queue(jsonl, base)
        assert fmt.postqueue_j(messages) == _read(base, jsonl)
        assert fmt.mailq(messages) == _read(base, text)
    assert fmt.mailq([]) == _read(CI_REF, "mailq_empty.txt")
    assert fmt.postqueue_j([]) == _read(CI_REF, "postqueue_j_empty.jsonl")


def test_snapshots_reuse_the_reference_records_verbatim():
    """The Debian-derived pieces are the reference's own bytes."""
    def evidence(name: str, probe: str) -> list[dict]:
        with open(os.path.join(HOSTS_DIR, f"{name}.json"), encoding="utf-8") as handle:
            return [r for r in json.load(handle)["evidence"] if r["probe"] == probe]

    raw = _read(SELINUX_REF, "avc_records_raw.txt")
    [avc] = evidence("avc-denials", "avc_denials")
    assert all(("----\n" + event) in raw for event in avc["stdout"].split("----\n") if event)
    why = _read(SELINUX_REF, "audit2why_output.txt")
    [a2w] = evidence("avc-denials", "audit2why")
    assert a2w["stdout"] in why
    [ss] = evidence("healthy-debian12", "listeners")
    assert ss["stdout"] == _read(SELINUX_REF, "ss_lntp.txt")
    [sestatus] = evidence("healthy-debian12", "sestatus")
    assert sestatus["stdout"] == _read(SELINUX_REF, "sestatus_enforcing.txt")
    [config] = evidence("healthy-debian12", "selinux_config")
    assert config["stdout"] == _read(SELINUX_REF, "etc_selinux_config.txt")
    [getsebool_old] = evidence("boolean-old-name-only", "getsebool:allow_postfix_local_write_mail_spool")
    assert getsebool_old["stderr"] == _read(SELINUX_REF, "getsebool_unknown_name.stderr.txt")
    assert getsebool_old["exit_status"] == 255
    first, *polls = evidence("queue-not-draining", "queue_json")
    assert [json.loads(l)["queue_id"] for l in first["stdout"].splitlines()] == \
        [json.loads(l)["queue_id"] for l in _read(SELINUX_REF, "postqueue_j_deferred.jsonl").splitlines()]
    assert len(polls) >= 2, "the drain replays a sequence: active after the flush, then deferred again"
    [rhel8] = evidence("rhel8-postfix33-deferred", "queue_json")[:1]
    assert "forced_expire" not in rhel8["stdout"] and '"queue_name": "deferred"' in rhel8["stdout"]
    [reset] = evidence("rhel7-style", "queue_dir_relabel")
    assert ("restorecon reset /var/spool/postfix/deferred context system_u:object_r:tmp_t:s0->"
            "system_u:object_r:postfix_spool_t:s0\n") in reset["stdout"]
    [lsz] = evidence("rhel7-style", "queue_dir_label")
    assert lsz["stdout"] == "drwxr-xr-x. root root system_u:object_r:tmp_t:s0 /var/spool/postfix\n"
