"""pytest-html's hooks for the suite's HTML report: a thin adapter over report/html.py.

Data comes only from the results stage (plugin/results_stage.py): `check_of(config, report)` for a
row, `decided_run(config)` for the summary (valid once every check ran: the summary hooks run at
session finish). Everything put into the page is made by report/html.py's pure functions.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from postfix_compliance.checks import CATALOG
from postfix_compliance.plugin.results_stage import check_of, decided_run, recorded_outcome
from postfix_compliance.plugin.state import TARGETS
from postfix_compliance.report import html

REPORT_DATA = pytest.StashKey[Any]()
PROVISIONAL_TITLE = "Postfix/SELinux compliance"  # until the run is decided (the summary sets the title)


@pytest.hookimpl(tryfirst=True)  # before pytest-html reads --css
def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "css") and html.CSS not in config.option.css:
        config.option.css.append(html.CSS)
    if not hasattr(config, "workerinput"):  # pytest-html writes on the controller only
        config.pluginmanager.register(HtmlRows(config), "postfix-compliance-html-rows")


@pytest.hookimpl(hookwrapper=True)
def pytest_sessionstart(session: pytest.Session) -> Any:
    """pytest-html inserts environment values (pytest-metadata: CI variables such as a branch name,
    --metadata values) into the page with innerHTML, unescaped. It reads them during this hook: hand
    it escaped copies, then put the originals back for everyone else."""
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        yield
        return
    original = session.config.stash.get(metadata_key, None)
    if isinstance(original, dict):
        session.config.stash[metadata_key] = html.escaped_metadata(original)
    try:
        yield
    finally:
        if isinstance(original, dict):
            session.config.stash[metadata_key] = original


@pytest.hookimpl(optionalhook=True)
def pytest_html_report_title(report: Any) -> None:
    config = report.config
    config.stash[REPORT_DATA] = report
    run = decided_run(config)
    report.title = html.title(run) if run is not None else PROVISIONAL_TITLE
    if config.getini("initial_sort") == "result":  # the default: sort by our outcome key instead
        report.set_data("initialSort", "outcome")


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list[str]) -> None:
    cells[:] = html.header_cells(cells)


def _test_id(report: Any) -> str:
    return report.nodeid + (f"::{report.when}" if getattr(report, "when", "call") != "call" else "")


class HtmlRows:
    """The rows' hooks: pytest-html hands them only the report, so the run's config is bound here."""

    def __init__(self, config: pytest.Config):
        self.config = config

    @property
    def fleet(self) -> bool:
        return html.is_fleet(len(self.config.stash.get(TARGETS, ())))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: Any, cells: list[str]) -> None:
        if self.fleet and report.passed and report.when in ("setup", "teardown") \
                and (report.when == "setup" or recorded_outcome(self.config, report) not in html.SHOWN_IN_FLEET):
            # Never a row of its own (pytest-html adds a passed setup or teardown to its check's call row,
            # which a fleet's page leaves out unless it failed): not worked out only to be dropped.
            cells.clear()
            return
        row = check_of(self.config, report)
        if row is not None and self.fleet and row[1].outcome not in html.SHOWN_IN_FLEET:
            cells.clear()  # a fleet's page lists its failing checks; each host's own page has the rest
            return
        # pytest-html's own cells are HTML: keep their words only (it puts the node id in unescaped).
        cells[:] = html.row_cells(row, result=re.sub(r"<[^>]*>", "", cells[0]),
                                  test_id=_test_id(report), duration=re.sub(r"<[^>]*>", "", cells[2]))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: Any, data: list[str]) -> None:
        data[:] = html.row_detail(check_of(self.config, report), list(data), report.longreprtext or "")


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str], session: Any) -> None:
    config = session.config
    run = decided_run(config)
    if run is None:
        return
    report_data = config.stash.get(REPORT_DATA, None)
    if report_data is not None:
        report_data.title = html.title(run)
        if config.getini("render_collapsed") == "passed":  # the default: ours instead
            report_data.set_data("renderCollapsed", html.render_collapsed(run))
    prefix.extend(html.summary_prefix(run))
    postfix.extend(html.summary_postfix(run, CATALOG))
