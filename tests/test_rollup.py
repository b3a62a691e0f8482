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


@pytest.mark.ssh
def test_hosts_from_an_inventory_are_rolled_up_by_group_and_a_merge_keeps_it(tmp_path):
    """A real --ansible-inventory run over two sshd hosts on loopback (read-only, SEL-001 only): results.json
    says each host's inventory name and groups, the roll-up counts hosts per group (a host in two groups in
    each), and a merge of the results keeps both: the merged playbook names the hosts as the inventory does."""
    from sshd import SshFleet

    from postfix_compliance.report import playbook

    fleet_ = SshFleet(log_commands=False)
    try:
        a, b = fleet_.add("inv-a"), fleet_.add("inv-b")
        key = fleet_.client_key
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(
            "all:\n  children:\n    mail:\n      hosts:\n"
            f"        mail-a: {{ansible_host: {a.address}, ansible_port: {a.port}, ansible_user: root, "
            f"ansible_ssh_private_key_file: {key}}}\n"
            f"        mail-b: {{ansible_host: {b.address}, ansible_port: {b.port}, ansible_user: root, "
            f"ansible_ssh_private_key_file: {key}}}\n"
            "    dmz:\n      hosts:\n        mail-b:\n")
        out = str(tmp_path / "run")
        run = run_suite(f"--ansible-inventory={inventory}", f"--known-hosts={fleet_.known_hosts(a, b)}",
                        "--profile=debian12", "--read-only", "-k", "SEL-001", report_dir=out, timeout=300)
        assert run.exit_status in (0, 1, 2), run.stdout[-3000:] + run.stderr[-2000:]
        doc = json.load(open(os.path.join(out, "results.json"), encoding="utf-8"))
        assert doc["inventory"] == {f"ssh://root@{a.address}:{a.port}": {"name": "mail-a", "groups": ["mail"]},
                                    f"ssh://root@{b.address}:{b.port}": {"name": "mail-b", "groups": ["dmz", "mail"]}}
        section = _section(open(os.path.join(out, "compliance.html"), encoding="utf-8").read())
        groups = re.search(r'<table id="rollup-groups".*?</table>', section, re.S).group(0)
        rows = re.findall(r"<tr><td>([^<]*)</td><td>(\d+)</td>", groups)
        assert rows == [("dmz", "1"), ("mail", "2")], rows
        merged, book = str(tmp_path / "merged"), str(tmp_path / "fix.yml")
        proc = subprocess.run([sys.executable, "-m", "postfix_compliance.fleet", "merge", merged, out,
                               f"--remediation-playbook={book}"], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode in (0, 1, 2), proc.stderr
        assert json.load(open(os.path.join(merged, "results.json"), encoding="utf-8"))["inventory"] == doc["inventory"]
        assert '<table id="rollup-groups"' in open(os.path.join(merged, "fleet.html"), encoding="utf-8").read()
        plays = playbook.load(open(book, encoding="utf-8").read()) or []
        assert {p["hosts"] for p in plays} <= {"mail-a", "mail-b"}
    finally:
        fleet_.stop()


def test_the_rollup_counts_hosts_per_inventory_group():
    def host(name: str, outcome: str) -> HostResult:
        return HostResult(id=f"ssh://{name}", name=name, profile="rhel9", checks=(
            CheckResult("SEL-001", "t", "high", "SELinux mode", outcome, ""),))
    run = RunResult(0.0, 1.0, None, hosts=(host("a", "fail"), host("b", "pass"), host("c", "error")),
                    sections={"inventory": {"ssh://a": {"name": "a", "groups": ["mail", "eu"]},
                                            "ssh://b": {"name": "b", "groups": ["mail"]},
                                            "ssh://c": {"name": "c", "groups": []}}})
    table = re.search(r'<table id="rollup-groups".*?</table>', rollup.rollup_html(run), re.S).group(0)
    assert re.findall(r"<tr><td>([^<]*)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>", table) == [
        ("eu", "1", "1", "0"), ("mail", "2", "1", "0"), ("ungrouped", "1", "0", "1")]
    # a run with no host from an inventory has no such table
    assert "rollup-groups" not in rollup.rollup_html(run.replace(sections={}))


def test_a_very_large_fleets_page_is_the_rollup_and_the_hosts_the_rest_on_host_pages(fleet, monkeypatch):
    """Above html.LARGE_FLEET_HOSTS (here lowered to 59, the fixture has 60), a merge's page leaves each host's
    triage finding and failing rows to its own page: the same roll-up and host summary, failing check ids as
    text beside the link to the host's page, no rows' data; at or below it, the page is as before."""
    from postfix_compliance import results_file
    from postfix_compliance.report import html

    run = results_file.run_from_document(results_file.load(os.path.join(fleet.report_dir, "results.json")))
    full = html.page(run)
    monkeypatch.setattr(html, "LARGE_FLEET_HOSTS", 59)
    large = html.page(run)
    assert 'id="triage"' in full and 'id="results-table"' in full
    assert 'id="triage"' not in large and 'id="results-table"' not in large and 'id="pfc-large"' in large
    assert _section(large) == _section(full)  # the roll-up: the same
    summary = re.search(r'<table id="host-summary">.*?</table>', large, re.S).group(0)
    assert summary.count("<tr class=") == HOSTS and 'href="#' not in summary and 'class="pfc-host-page"' in summary
    data = json.loads(re.search(r'<script type="application/json" id="pfc-data">(.*?)</script>', large, re.S).group(1))
    assert data["rows"] == {} and data["outputs"] == {}
    assert len(large) < len(full) / 2
    monkeypatch.setattr(html, "LARGE_FLEET_HOSTS", 60)
    assert html.page(run) == full
