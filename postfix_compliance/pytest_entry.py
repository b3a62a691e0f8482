"""The suite in a pytest run of an environment where it is installed (the pytest11 entry point).

Installed beside other pytest tests, the suite stays out of their runs. It joins a run that asks for it:
- `--postfix-compliance`: the suite's checks and options join the run (a user's own tests and checks beside
  them, e.g. `pytest --postfix-compliance --hosts=... tests/`);
- `--hosts` or `--ansible-inventory` with no test path (`pytest --hosts=ssh://mail1` in any directory):
  what else would be checked there is the suite's checks.
A clone's pytest.ini and the `postfix-compliance` command load the suite themselves (-p): nothing to add.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from postfix_compliance import layout

SUITE_PLUGINS = ("postfix_compliance.plugin", "postfix_compliance.plugin.html_report",
                 "postfix_compliance.plugin.junit_names")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--postfix-compliance", action="store_true",
                     help="add the Postfix/SELinux compliance checks and their options to this run "
                          "(implied by --hosts or --ansible-inventory without test paths)")


def _test_paths(namespace: Any) -> list[str]:
    """Positional arguments that are tests: an existing path, or PATH::NAME (the suite's options are not
    known yet, so the value of `--report-dir DIR` may stand here too: it is not a test unless it exists)."""
    found = []
    for arg in getattr(namespace, "file_or_dir", None) or []:
        if "::" in arg or os.path.exists(arg):
            found.append(arg)
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    manager = early_config.pluginmanager
    if manager.has_plugin(SUITE_PLUGINS[0]):
        return
    namespace = early_config.known_args_namespace
    asked = bool(getattr(namespace, "postfix_compliance", False))
    hosts = getattr(namespace, "hosts", None) or getattr(namespace, "ansible_inventory", None)
    if not asked and not (hosts and not _test_paths(namespace)):
        return
    for name in SUITE_PLUGINS:
        manager.import_plugin(name)
    args.append(layout.CHECKS_DIR)
