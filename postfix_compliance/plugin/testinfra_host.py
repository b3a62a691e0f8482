"""testinfra's `host` fixture, in a run of the suite: on the suite's targets and transports.

A user's plain testinfra test (`def test_x(host): ...`) in the same run as the suite's checks would get
testinfra's own `host`: its backends know no `snapshot://` or `image://` (a RuntimeError that ends the
whole collection), read a bare `local` as `paramiko://local`, and open a second SSH connection that only
warns on an unknown host key. Registered at configure, after testinfra's plugin, this `host` overrides
testinfra's: parametrized over the run's targets (the same ids as the checks), made by the suite's
registry with the run's options (known_hosts, timeouts), one per target and module. A snapshot answers
the commands it recorded and says "not recorded in snapshot" (exit 127) for the others.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from postfix_compliance.errors import UsageError
from postfix_compliance.plugin.state import COLLECTOR, TARGETS

NAME = "postfix_compliance.testinfra_host"
_HOSTS = pytest.StashKey[dict]()  # target id -> Host, one per target for the whole run


@pytest.fixture(scope="module")
def host(request: pytest.FixtureRequest, compliance_target: Any) -> Any:
    """testinfra's Host for this test's target (a `compliance_target` of the run's --hosts)."""
    hosts = request.config.stash.setdefault(_HOSTS, {})
    if compliance_target.id not in hosts:
        try:
            hosts[compliance_target.id] = request.config.stash[COLLECTOR].make_host(compliance_target)
        except UsageError as exc:
            pytest.fail(str(exc), pytrace=False)
    return hosts[compliance_target.id]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "compliance_target" in metafunc.fixturenames:
        targets = metafunc.config.stash[TARGETS]
        metafunc.parametrize("compliance_target", targets, ids=[t.id for t in targets], scope="module")


def register(config: pytest.Config) -> None:
    """This module as a plugin of its own, registered now: after testinfra's, so its `host` is the one used."""
    if not config.pluginmanager.has_plugin(NAME):
        config.pluginmanager.register(sys.modules[__name__], NAME)
