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
import sys

import pytest

from selftest import REPO, run_suite

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
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    run = run_suite(f"--hosts={_hosts(tmp, FLEET_HOSTS + 1)}", "--profile=rhel9", report_dir=str(tmp / "reports"),
                    timeout=300)
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
    assert own.count('<tbody class="results-table-row">') == 27  # every check of the host
    assert 'href="../compliance.html"' in own


def test_a_small_run_keeps_one_page(tmp_path):
    run = run_suite(f"--hosts={_hosts(tmp_path, 2)}", "--profile=rhel9", report_dir=str(tmp_path / "reports"))
    with open(os.path.join(run.report_dir, "compliance.html"), encoding="utf-8") as handle:
        page = handle.read()
    assert len([row for tests in _rows(page) for row in tests]) == 54
    assert not os.path.exists(os.path.join(run.report_dir, "hosts"))
