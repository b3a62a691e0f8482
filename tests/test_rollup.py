"""The roll-up at the top of a many-host page: each check's pass rate (an inline SVG chart), the failing hosts
grouped by shared cause and shared fix, the hosts by profile; on compliance.html and on a merge's fleet.html,
every number the results' own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from selftest import N_CHECKS, REPO, run_suite

sys.path.insert(0, os.path.join(REPO, "bench"))
from report_bench import vary  # noqa: E402  (hosts that differ: some permissive, some mislabelled)

from postfix_compliance.report import rollup  # noqa: E402
from postfix_compliance.run import CheckResult, HostResult, RunResult  # noqa: E402

HOSTS = 60


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rollup")
    base = json.load(open(os.path.join(REPO, "tests", "data", "healthy-debian12.json"), encoding="utf-8"))
    specs = []
    for index in range(HOSTS):
        path = tmp / f"mail{index:03d}.json"
        path.write_text(json.dumps(vary(base, index)))
        specs.append(f"snapshot://{path}")
    run = run_suite(f"--hosts={','.join(specs)}", "--no-flush", report_dir=str(tmp / "reports"), timeout=600)
    assert run.exit_status in (1, 2), run.stdout[-3000:] + run.stderr[-3000:]
    return run


def _section(page: str) -> str:
    match = re.search(r'<div id="rollup">.*?</table></div>', page, re.S)
    assert match, "no roll-up on the page"
    return match.group(0)


def test_the_rollup_is_the_first_screen_and_its_numbers_are_the_results(fleet):
    page = open(os.path.join(fleet.report_dir, "compliance.html"), encoding="utf-8").read()
    section = _section(page)
    assert page.index('<div id="rollup">') < page.index('id="host-summary"')  # above the host table
    records = fleet.results["results"]
    # One bar per check; its tooltip counts are the records'.
    bars = re.findall(r'<g class="rollup-row" data-check="([^"]+)"><title>[^<]*: ([^<]*)</title>', section)
    assert len(bars) == N_CHECKS
    for check_id, said in bars:
        counts = {}
        for r in records:
            if r["check_id"] == check_id:
                counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        shown = dict((label, int(n)) for n, label in re.findall(r"(\d+) ([a-z ()]+?)(?:,|$)", said))
        labels = {k: label for k, label, _ in rollup.SEGMENTS}
        assert shown == {labels[k]: n for k, n in counts.items()}, (check_id, said, counts)
    # The groups: every host with a failed or unjudged check in exactly one, each group one fix.
    rows = re.findall(r'<tr><td class="rollup-n">(\d+)</td><td>(.*?)</td><td><ol>(.*?)</ol></td><td>(.*?)</td></tr>',
                      section, re.S)
    bad_hosts = {r["host"] for r in records if r["outcome"] in ("fail", "error")}
    assert rows and sum(int(n) for n, *_ in rows) == len(bad_hosts)
    assert len(rows) < len(bad_hosts)  # hosts that share a cause and a fix are one row
    plans = fleet.results.get("plan") or {}
    for n, _, steps, _ in rows:
        assert int(n) >= 1 and ("<code>" in steps or "no automatic fix" in steps)
    assert plans  # the fixes come from the hosts' plans
    assert f"{HOSTS} hosts:" in section and '<table id="rollup-profiles"' in section


def test_a_merged_fleet_page_has_the_rollup_too(fleet, tmp_path):
    out = tmp_path / "merged"
    proc = subprocess.run([sys.executable, "-m", "postfix_compliance.fleet", "merge", str(out), fleet.report_dir],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == fleet.exit_status, proc.stderr
    page = open(out / "fleet.html", encoding="utf-8").read()
    assert _section(page).count('class="rollup-row"') == N_CHECKS
    assert 'href="hosts/' in _section(page)  # a fleet-sized page links each host to its own page


def test_what_a_host_wrote_stays_text_in_the_rollup():
    hostile = "mail<script>alert(1)</script>\x1b[2J"
    check = CheckResult(check_id="SEL-001", title="t", severity="high", section="SELinux state", outcome="fail",
                        message="m")
    hosts = tuple(HostResult(id=f"ssh://h{i}", name=hostile, profile="<b>p</b>", checks=(check,),
                             diagnosis={"summary": "<img src=x onerror=alert(1)>"}) for i in range(2))
    text = rollup.rollup_html(RunResult(started=0, ended=0, profile=None, hosts=hosts))
    assert "<script>" not in text and "<img" not in text and "<b>p" not in text and "\x1b" not in text
    assert "&lt;script&gt;" in text and "\\x1b" in text
    assert rollup.rollup_html(RunResult(started=0, ended=0, profile=None, hosts=hosts[:1])) == ""
