"""Hooks the suite offers its users' conftest.py files and plugins."""

from typing import Any

import pytest


@pytest.hookspec
def pytest_compliance_finish(config: pytest.Config, run: Any) -> int | None:
    """Called once on the controller with the decided run (postfix_compliance.run.RunResult), after the
    suite wrote its own outputs: e.g. to send the results somewhere.

    May return an exit status the run must have at least."""
