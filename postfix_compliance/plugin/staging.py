"""pytest-html's and junitxml's report files, written where a planted symlink cannot redirect them."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile
from typing import Any

import pytest

from postfix_compliance.atomicfile import PRIVATE_DIR_MODE, PRIVATE_MODE


STAGED = pytest.StashKey[list]()


def stage_plugin_reports(config: pytest.Config) -> None:
    """pytest-html and junitxml open their report path for writing, following a symlink planted there (a
    root run would overwrite its target). They write into a private directory instead (mkdtemp: 0700, no
    one else can add a name to it) next to the final path; pytest_sessionfinish_publish_reports renames
    each file over its final path, which replaces a symlink there instead of following it."""
    staged = []
    for option in ("htmlpath", "xmlpath"):
        final = getattr(config.option, option, None)
        if not final:
            continue
        final = os.path.abspath(os.path.expanduser(os.path.expandvars(final)))
        try:
            os.makedirs(os.path.dirname(final), mode=PRIVATE_DIR_MODE, exist_ok=True)
            private = tempfile.mkdtemp(dir=os.path.dirname(final), prefix=".staging-")
        except OSError as exc:
            raise pytest.UsageError(f"cannot write the report {final}: {exc.strerror}") from None
        staged.append((os.path.join(private, os.path.basename(final)), final))
        setattr(config.option, option, staged[-1][0])
        if option == "htmlpath":  # an assets/ directory would stay behind in the private directory
            config.option.self_contained_html = True
    config.stash[STAGED] = staged


def html_report_path(config: pytest.Config) -> str | None:
    """Where pytest-html's page ends up (its final path, not the private one it writes to), or None."""
    for staged, final in config.stash.get(STAGED, []):
        if staged == getattr(config.option, "htmlpath", None):
            return final
    return None


@pytest.hookimpl(hookwrapper=True, trylast=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_publish_reports(session: pytest.Session) -> Any:
    """After pytest-html and junitxml wrote (the innermost wrapper), before the terminal summary names them."""
    yield
    config = session.config
    for staged, final in config.stash.get(STAGED, []):
        if not os.path.exists(staged):
            continue
        try:
            os.chmod(staged, PRIVATE_MODE)  # in our private directory: the plugins created it under the umask
            os.replace(staged, final)
        except OSError as exc:
            sys.stderr.write(f"ERROR: cannot write the report {final}: {exc.strerror}\n")
            session.exitstatus = max(int(session.exitstatus), 4)
            continue
        _point_plugins_at(config, staged, final)


def _point_plugins_at(config: pytest.Config, staged: str, final: str) -> None:
    """The plugins' "generated ... report" lines name the final path, not the private one. junitxml keeps its
    writer under a private stash key: guarded, so that a pytest without it only leaves the line naming the
    private path (the file itself is in place either way; tests/test_report_files.py checks the line)."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:
        xml_key = None
    xml = config.stash.get(xml_key, None) if xml_key is not None else None
    if xml is not None and getattr(xml, "logfile", None) == staged:
        xml.logfile = final
    for plugin in config.pluginmanager.get_plugins():
        if str(getattr(plugin, "_report_path", "")) == staged:  # pytest-html's report object
            plugin._report_path = pathlib.Path(final)


def pytest_unconfigure(config: pytest.Config) -> None:
    for staged, _ in config.stash.get(STAGED, []):
        shutil.rmtree(os.path.dirname(staged), ignore_errors=True)
