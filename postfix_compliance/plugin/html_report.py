"""pytest-html's hooks for the suite's HTML report: a thin adapter over report/html.py.

Data comes only from the results stage (plugin/results_stage.py): `check_of(config, report)` for a
row, `decided_run(config)` for the summary (valid once every check ran: the summary hooks run at
session finish). Everything put into the page is made by report/html.py's pure functions.

One vocabulary: pytest says "failed" for a check that raised in its call phase, which the suite calls
an error (it could not be judged). pytest's report is left as it is (the terminal, JUnit and the exit
status read it); only the row's word in pytest-html says Error (`html.result_word`), and the counters
above the table count the rows by that word, the one its filters select rows by (`count_rows`).
"""

from __future__ import annotations

import re
from collections import Counter
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


def count_rows(report_data: Any) -> None:
    """pytest-html's counters (and which of its filter boxes are enabled) count the page's rows by the word
    each row's Result cell holds, the word its filters select rows by. pytest-html counted each report by
    pytest's outcome ("Failed" for a check that raised in its call phase) before the row hook gave the row
    the suite's word ("Error": it could not be judged), so the two disagreed."""
    counts = Counter(str(test.get("result", "")).lower()
                     for tests in report_data.data["tests"].values() for test in tests)
    for key, entry in report_data.outcomes.items():
        entry["value"] = counts.get(key, 0)


class HtmlRows:
    """The rows' hooks: pytest-html hands them only the report, so the run's config is bound here."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.skipped: Counter[str] = Counter()  # the page's Skipped rows of checks, by outcome

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
        word = re.sub(r"<[^>]*>", "", cells[0])
        if row is not None:
            word = html.result_word(row[1].outcome, word)  # a check that could not be judged: Error
            if word == "Skipped":
                self.skipped[row[1].outcome] += 1
        cells[:] = html.row_cells(row, result=word, test_id=_test_id(report),
                                  duration=re.sub(r"<[^>]*>", "", cells[2]))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: Any, data: list[str]) -> None:
        data[:] = html.row_detail(check_of(self.config, report), list(data), report.longreprtext or "")

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str],
                                    session: Any) -> None:
        config = session.config
        run = decided_run(config)
        if run is None:
            return
        report_data = config.stash.get(REPORT_DATA, None)
        if report_data is not None:
            report_data.title = html.title(run)
            if config.getini("render_collapsed") == "passed":  # the default: ours instead
                report_data.set_data("renderCollapsed", html.render_collapsed(run))
            # One vocabulary: the counters count the rows as the filters select them, Skipped says what it holds.
            count_rows(report_data)
            report_data.outcomes["skipped"]["label"] = html.skipped_label(self.skipped)
            # The Environment table: the run's own lines, then pytest-metadata's (escaped at session start).
            report_data.set_data("environment", {**html.environment(run),
                                                 **(report_data.data.get("environment") or {})})
        prefix.extend(html.summary_prefix(run))
        postfix.extend(html.summary_postfix(run, CATALOG))
