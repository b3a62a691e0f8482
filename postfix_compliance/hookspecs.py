"""Hooks the suite offers its users' conftest.py files and plugins."""

from typing import Any

import pytest


@pytest.hookspec
def pytest_compliance_finish(config: pytest.Config, run: Any) -> int | None:
    """Called once on the controller with the decided run (postfix_compliance.run.RunResult), after the
    suite wrote its own outputs: e.g. to send the results somewhere.

    May return an exit status the run must have at least."""


@pytest.hookspec
def pytest_compliance_probes(config: pytest.Config) -> Any:
    """Extra probes, for checks of your own: return (Probe, parser) pairs. A Probe
    (postfix_compliance.facts.probes.Probe) is one read-only command, run on every host with the suite's
    own (timeouts, output cap, sudo for privileged=True); the parser takes its Evidence and returns the
    fact a check reads with `facts.need(NAME)` (raise or return postfix_compliance.facts.model.Unparsed
    for output it does not understand: the check is then an error, never a pass). Names must not be the
    suite's own. docs/architecture.md, "Extending the suite"."""


@pytest.hookspec
def pytest_compliance_postconf_params(config: pytest.Config) -> Any:
    """Extra Postfix parameters to ask `postconf` for (names), so that `facts.postconf(NAME)` has them.
    A parameter nobody asked for is an error of the check that reads it, naming what to register."""
