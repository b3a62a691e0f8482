"""What pytest itself keeps of a check, sized for a fleet (issue #16).

Two of pytest's costs grow with the fleet and buy nothing here:
- a check's expected failure (an assertion or an evidence error) is told by its message alone
  (results_stage.py sets it as the report's text), yet pytest first renders a traceback of the
  check's own code, reading and parsing its source file, for every failing host;
- the terminal keeps a record of every passed setup and teardown phase (two per check), and for each
  failure at the end it scans all of them for captured teardown output: quadratic in the fleet
  (640 failures x 54,000 phases at 1,000 hosts), and it holds every report until then.
Both are cut here without changing what is shown: the failure's text is the same message, and a
passed phase that captured nothing has nothing to show.

And Python's cyclic garbage collector, with its default thresholds, walks every object of the run again
and again as the run grows: 1.6 s of a 300-host run's 22 s, most of it full (generation 2) collections
over the collected items and the results. After collection the items are frozen out of its walks
(gc.freeze: they live to the end of the run anyway) and young objects are collected in larger steps;
both are put back when pytest unconfigures (0.45 s then, the same peak memory).
"""

from __future__ import annotations

import gc
from typing import Any

import pytest

from postfix_compliance.checks import meta_of
from postfix_compliance.plugin.outcomes import expected


class LeanReports:
    """Registered by the suite's plugin on every process (an xdist worker makes the reports, the
    controller's terminal keeps them)."""

    # Young objects are collected every 10,000 net allocations instead of 700: a check makes hundreds.
    GC_THRESHOLD = (10_000, 20, 10)

    def __init__(self, config: pytest.Config):
        self.config = config
        self._gc_threshold: tuple[int, ...] | None = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._gc_threshold = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(*self.GC_THRESHOLD)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._gc_threshold is not None:
            gc.set_threshold(*self._gc_threshold)
            gc.unfreeze()
            self._gc_threshold = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        """A check's expected failure: pytest's report made from the message (pytrace=False, as
        `pytest.fail(msg, pytrace=False)` gives), not from a traceback of the check's source. The
        makereport wrappers (results_stage.py's among them) still see the call's own exception."""
        excinfo = call.excinfo
        if excinfo is None or not expected(excinfo) or meta_of(item) is None \
                or self.config.getoption("fulltrace", False):
            return None
        try:  # raised, not built: pytest's ExceptionInfo wants a traceback to hold
            raise pytest.fail.Exception(str(excinfo.value), pytrace=False)
        except pytest.fail.Exception:
            call.excinfo = pytest.ExceptionInfo.from_current()
        try:
            return pytest.TestReport.from_item_and_call(item, call)
        finally:
            call.excinfo = excinfo

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """After the terminal has taken it: a passed setup or teardown that captured nothing is not
        kept in its stats (their one reader, the failure summary, looks for captured output)."""
        if report.when == "call" or not report.passed or report.sections:
            return
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        silent = getattr(terminal, "stats", {}).get("")
        if silent and silent[-1] is report:
            silent.pop()


def register(config: pytest.Config) -> None:
    config.pluginmanager.register(LeanReports(config), "postfix-compliance-lean-reports")
