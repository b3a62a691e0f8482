"""Hooks the suite offers its own report plugins (and users' conftest.py files)."""

from typing import Any

import pytest


@pytest.hookspec
def pytest_compliance_record(config: pytest.Config, record: dict[str, Any]) -> None:
    """Called for each check result record (a dict, see report/results.py) as it is made.

    Implementations may change it in place, e.g. a waiver turns outcome "fail" into "waived".
    Runs where the check ran (an xdist worker included)."""


@pytest.hookspec
def pytest_compliance_finish(config: pytest.Config, records: list[dict[str, Any]], report_dir: str) -> int | None:
    """Called once on the controller with every record, after all checks ran; writes reports.

    May return an exit status the run must have at least (e.g. 1 for a regression against a baseline)."""
