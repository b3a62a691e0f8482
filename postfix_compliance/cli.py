"""`postfix-compliance [OPTIONS] [PATHS]`: the installed suite, as `python -m pytest` runs it in a clone.

The same options and exit statuses (0 pass, 1 a check failed, 2 one could not be judged, 4 bad input): it
is pytest, with the suite's settings (postfix_compliance/suite.ini, a copy of the clone's pytest.ini) and
its checks (postfix_compliance/tests_host/, the clone's tests_host/). A user's own test paths may be given
beside them. Unlike plain pytest, every usage error is one `ERROR:` line, an unknown option included: this
command can hear pytest's own parser, which a plugin loaded by pytest cannot.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from postfix_compliance import layout


class OneLineUsage:
    """pytest's usage errors (argparse's: a `usage:` line, the error, the ini file and rootdir) as one line."""

    @pytest.hookimpl(wrapper=True)
    def pytest_cmdline_parse(self, pluginmanager: Any, args: list[str]) -> Any:
        try:
            return (yield)
        except pytest.UsageError as exc:
            raise pytest.UsageError(one_line(str(exc))) from None


def one_line(text: str) -> str:
    """argparse's message without its usage line and pytest's context lines: `--x: unrecognized ...`."""
    for line in text.splitlines():
        if ": error: " in line:
            return line.split(": error: ", 1)[1].strip()
    return " ".join(text.split())


def _names_checks(args: list[str]) -> bool:
    """Whether the user named checks by path (then only those run) rather than leaving the choice to us."""
    checks = os.path.realpath(layout.CHECKS_DIR)
    for arg in args:
        if arg.startswith("-"):
            continue
        path = os.path.realpath(arg.split("::", 1)[0])
        if path == checks or path.startswith(checks + os.sep):
            return True
    return False


def pytest_args(argv: list[str]) -> list[str]:
    ini = layout.SUITE_INI
    checks = [] if _names_checks(argv) else [layout.CHECKS_DIR]
    return ["-c", ini, "--rootdir", os.path.dirname(ini), *checks, *argv]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return int(pytest.main(pytest_args(args), plugins=[OneLineUsage()]))


if __name__ == "__main__":
    raise SystemExit(main())
