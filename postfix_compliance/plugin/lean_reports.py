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
"""

from __future__ import annotations

from typing import Any

import pytest

from postfix_compliance.checks import meta_of
from postfix_compliance.plugin.outcomes import expected


class LeanReports:
    """Registered by the suite's plugin on every process (an xdist worker makes the reports, the
    controller's terminal keeps them)."""

    def __init__(self, config: pytest.Config):
        self.config = config

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
