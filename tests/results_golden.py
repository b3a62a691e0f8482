"""Every output of the results stage, for every scenario snapshot and VM recording, normalised.

tests/test_results_equivalence.py compares a run of today's code with what was recorded in
tests/data/golden/ before the results stage was rebuilt (issue #15): results.json, junit.xml, the
remediation script, the Ansible playbook, the XCCDF TestResult and the metrics, identical but for
what changes from run to run (times, durations, the machine's name). A deliberate change of an
output is re-recorded on purpose and shows in the diff of tests/data/golden/:

    python tests/results_golden.py --record

The snapshots run in groups by profile (as tests/test_scenarios.py and tests/test_playbook.py
group them), plus one run through the verdict step's inputs: a waiver file and a baseline.
"""

from __future__ import annotations

import concurrent.futures
import glob
import hashlib
import json
import os
import re
import sys
import tempfile
from typing import Any

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vm"))
from selftest import REPO, run_suite  # noqa: E402
from vm_scenarios import SCENARIOS  # noqa: E402

GOLDEN = os.path.join(REPO, "tests", "data", "golden")
MATRIX = os.path.join(REPO, "tests", "scenarios", "matrix.yaml")
EXTRA_ARGS = ["--poll-interval", "0.1", "--postfix-check"]
HOSTS_PER_RUN = 24
OUTPUTS = ("results.json", "junit.xml", "remediation.sh", "playbook.yml", "xccdf.xml", "metrics.prom")

# The verdict run: two snapshots, one check waived on one of them, judged against a baseline of the other.
VERDICT_HOSTS = ("fixtures/hosts/healthy-debian12.json", "fixtures/hosts/boolean-runtime-only.json")
BROKEN_HOST_NAME = "mail1.example.com"  # the name boolean-runtime-only.json records
VERDICT_WAIVERS = """\
waivers:
  - check: BOOL-002
    hosts: ["*boolean-runtime-only*"]
    justification: "golden-output run: a waiver the verdict step applies"
    owner: ci
    expires: "2099-12-31"
"""


def groups() -> dict[str, list[str]]:
    """Run key (a profile, or "detect") -> snapshot paths: every fixtures/hosts/*.json exactly once."""
    with open(MATRIX, encoding="utf-8") as handle:
        matrix = yaml.safe_load(handle)["scenarios"]
    out: dict[str, list[str]] = {}
    for entry in matrix:
        key = "detect" if "/" not in entry["profile"] else entry["profile"]
        out.setdefault(key, []).append(f"fixtures/hosts/{entry['name']}.json")
    named = {p for paths in out.values() for p in paths}
    for path in sorted(glob.glob(os.path.join(REPO, "fixtures", "hosts", "*.json"))):
        rel = os.path.relpath(path, REPO)
        if rel not in named:  # the recorded VM guests (vm-<scenario>.json), judged with their scenario's profile
            scenario = SCENARIOS[os.path.basename(rel).removeprefix("vm-").removesuffix(".json")]
            out.setdefault(scenario.profile, []).append(rel)
    return out


def batches() -> list[tuple[str, str, list[str]]]:
    """(name, run key, snapshot paths): the groups cut to at most HOSTS_PER_RUN hosts each."""
    out = []
    for key, paths in sorted(groups().items()):
        chunks = max(1, -(-len(paths) // HOSTS_PER_RUN))
        for i in range(chunks):
            label = os.path.basename(key).removesuffix(".yaml")
            out.append((f"{re.sub(r'[^A-Za-z0-9]+', '-', label).strip('-')}-{i}", key, sorted(paths[i::chunks])))
    return out


def _outputs_args(directory: str) -> list[str]:
    return [f"--remediation-script={directory}/remediation.sh", f"--remediation-playbook={directory}/playbook.yml",
            f"--xccdf={directory}/xccdf.xml", f"--metrics={directory}/metrics.prom"]


def run_batch(name: str, key: str, paths: list[str], base: str) -> dict[str, str]:
    """One suite run over the snapshots: {output name: normalised text}."""
    directory = os.path.join(base, name)
    os.makedirs(directory, exist_ok=True)
    profile = [] if key == "detect" else [f"--profile={key}"]
    hosts = ",".join(f"snapshot://{p}" for p in paths)
    extra: list[str] = []
    if name == "verdict":
        pre = os.path.join(base, "verdict-pre")
        run_suite(f"--hosts=snapshot://{VERDICT_HOSTS[0]}", "--profile=debian12", *EXTRA_ARGS,
                  report_dir=pre, timeout=300)
        hosts = f"snapshot://{VERDICT_HOSTS[1]}"
        # The baseline is the healthy host under the broken one's name, so that the comparison pairs
        # them as a pre/post change of one host.
        with open(os.path.join(pre, "results.json"), encoding="utf-8") as handle:
            doc = json.load(handle)
        for record in doc["results"]:
            record["host_name"] = BROKEN_HOST_NAME
        with open(os.path.join(base, "baseline.json"), "w", encoding="utf-8") as handle:
            json.dump(doc, handle)
        with open(os.path.join(base, "waivers.yml"), "w", encoding="utf-8") as handle:
            handle.write(VERDICT_WAIVERS)
        extra = [f"--baseline={base}/baseline.json", f"--waivers={base}/waivers.yml"]
    run = run_suite(f"--hosts={hosts}", *profile, *EXTRA_ARGS, *_outputs_args(directory), *extra,
                    report_dir=directory, timeout=300)
    found = {}
    for output in OUTPUTS:
        path = os.path.join(directory, output)
        if not os.path.exists(path):
            raise AssertionError(f"{name}: no {output} (exit {run.exit_status}):\n{run.stdout[-3000:]}"
                                 f"\n{run.stderr[-2000:]}")
        with open(path, encoding="utf-8") as handle:
            found[output] = normalise(output, handle.read(), directory)
    found["exit_status"] = f"{run.exit_status}\n"
    return found


def all_batches() -> list[tuple[str, str, list[str]]]:
    return batches() + [("verdict", "debian12", list(VERDICT_HOSTS))]


def run_all(base: str, workers: int = 2) -> dict[str, dict[str, str]]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(run_batch, name, key, paths, base) for name, key, paths in all_batches()}
        return {name: future.result() for name, future in futures.items()}


# ---------------------------------------------------------------------- normalising
STAMP = "<normalised>"
CATALOGUE_KEYS = ("title", "severity", "section", "remediation", "rollback", "references")


def normalise(output: str, text: str, directory: str) -> str:
    text = text.replace(directory, "<dir>").replace(os.path.dirname(directory), "<base>")
    # Where the checkout is (a traceback's or skip's file names it, and a line that moves with any edit):
    # the same in every worktree and for every version of the file.
    text = text.replace(REPO + os.sep, "<repo>/")
    text = re.sub(r"(<repo>/[\w./-]+\.py):\d+", r"\1:<line>", text)
    if output == "results.json":
        text = json.dumps(_results(json.loads(text)), indent=0, sort_keys=True) + "\n"
    # How long a queue poll took, in messages and notes: "drained after 0.30s", "(0.101, 0, 8)".
    text = re.sub(r"\b\d+\.\d+s\b", "<t>s", text)
    text = re.sub(r"\(\d+\.\d+, (\d+), (\d+)\)", r"(<t>, \1, \2)", text)
    if output == "results.json":
        return text
    if output in ("junit.xml", "xccdf.xml"):
        text = re.sub(r'\b(time|timestamp|hostname|start-time|end-time|date)="[^"]*"', rf'\1="{STAMP}"', text)
        text = re.sub(r"(<xccdf:identity[^>]*>)[^<]*(</xccdf:identity>)", rf"\1{STAMP}\2", text)
        text = re.sub(r'(<xccdf:fact name="urn:xccdf:fact:asset:identifier:host_name"[^>]*>)[^<]*', rf"\1{STAMP}",
                      text)
        return text
    if output in ("remediation.sh", "playbook.yml"):
        return re.sub(r"(# Generated by postfix-compliance \S+ on ).*", rf"\1{STAMP}", text)
    if output == "metrics.prom":
        return re.sub(r"^(postfix_compliance_\w*(?:timestamp|duration)\w*(?:\{[^}]*\})?) \S+$", rf"\1 {STAMP}",
                      text, flags=re.M)
    return text


TESTCASE = re.compile(r"<testcase\b.*?(?:/>|</testcase>)", re.S)


def comparable(output: str, text: str) -> str:
    """What the equivalence test compares: JUnit's testcases in a sorted order, since the suite runs a
    fleet host by host (each host's evidence held only while its checks run) where it once ran check by
    check; the testcases themselves must be the same."""
    if output != "junit.xml":
        return text
    cases = TESTCASE.findall(text)
    head = text[:text.find(cases[0])] if cases else text
    tail = text[text.rfind(cases[-1]) + len(cases[-1]):] if cases else ""
    return head + "\n".join(sorted(cases)) + tail


def _results(doc: dict[str, Any]) -> dict[str, Any]:
    for key in ("generated_at", "started_at", "duration_s", "suite_version"):
        if key in doc:
            doc[key] = STAMP
    catalogue: dict[str, dict[str, Any]] = {}
    for record in doc.get("results", []):
        record["duration_s"] = STAMP
        # Each check's metadata once (it is the catalogue's): kept in a record only where it differs.
        meta = {k: record[k] for k in CATALOGUE_KEYS if k in record}
        known = catalogue.setdefault(record["check_id"], meta)
        for key in CATALOGUE_KEYS:
            if key in record and record[key] == known.get(key):
                del record[key]
        if record.get("host_clock"):
            record["host_clock"]["now"] = STAMP
    doc["catalogue"] = catalogue
    for section, key in (("changes", "baseline"), ("waivers", None)):
        if isinstance(doc.get(section), dict):
            if key and isinstance(doc[section].get(key), dict):
                doc[section][key]["generated_at"] = STAMP
            if "today" in doc[section]:
                doc[section]["today"] = STAMP
    for table in (doc.get("evidence") or {}).values():
        for evidence in table.values():
            evidence["duration"] = STAMP
            for stream in ("stdout", "stderr"):  # the snapshot's own bytes: their hash is enough here
                evidence[stream] = "sha256:" + hashlib.sha256(str(evidence.get(stream)).encode()).hexdigest()
    return doc


def record() -> None:
    with tempfile.TemporaryDirectory() as base:
        found = run_all(base)
    for name, outputs in found.items():
        os.makedirs(os.path.join(GOLDEN, name), exist_ok=True)
        for output, text in outputs.items():
            with open(os.path.join(GOLDEN, name, output), "w", encoding="utf-8") as handle:
                handle.write(text)
    print(f"recorded {len(found)} runs in {os.path.relpath(GOLDEN, REPO)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(f"usage: {sys.argv[0]} --record")
    record()
