"""Helpers for the project's own tests: run the compliance suite as a user would, read its results."""

from __future__ import annotations

from typing import Any

import pytest

from selftest import SuiteRun, run_suite


@pytest.fixture
def suite(tmp_path):
    """`suite(*args)` runs the compliance suite with its reports under tmp_path."""
    counter = {"n": 0}

    def _run(*args: str, **kwargs: Any) -> SuiteRun:
        counter["n"] += 1
        report_dir = str(tmp_path / f"reports{counter['n']}")
        return run_suite(*args, report_dir=report_dir, **kwargs)

    return _run


_DECISIONS: list[str] = []


@pytest.fixture
def decision_log() -> list[str]:
    """Lines about how long the suite took to decide; printed at the end of the test run."""
    return _DECISIONS


def pytest_terminal_summary(terminalreporter) -> None:
    if _DECISIONS:
        terminalreporter.section("decision timings")
        for line in _DECISIONS:
            terminalreporter.write_line(line)
