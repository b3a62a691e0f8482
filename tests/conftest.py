"""Helpers for the project's own tests: run the compliance suite as a user would, read its results."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTS_DIR = os.path.join(REPO, "fixtures", "hosts")
REFERENCE_DIR = os.path.join(REPO, "tests", "reference")


@dataclasses.dataclass
class SuiteRun:
    exit_status: int
    stdout: str
    stderr: str
    report_dir: str

    @property
    def results(self) -> dict[str, Any]:
        with open(os.path.join(self.report_dir, "results.json"), encoding="utf-8") as handle:
            return json.load(handle)

    def outcomes(self, host: str | None = None) -> dict[str, str]:
        """check id -> outcome (for one host, or the only host)."""
        records = self.results["results"]
        if host is not None:
            records = [r for r in records if r["host"] == host]
        return {r["check_id"]: r["outcome"] for r in records}

    def ids_with(self, outcome: str, host: str | None = None) -> set[str]:
        return {cid for cid, out in self.outcomes(host).items() if out == outcome}

    def record(self, check_id: str, host: str | None = None) -> dict[str, Any]:
        for r in self.results["results"]:
            if r["check_id"] == check_id and (host is None or r["host"] == host):
                return r
        raise KeyError(check_id)


def run_suite(*args: str, report_dir: str, timeout: float = 600, env: dict[str, str] | None = None) -> SuiteRun:
    """Run `python -m pytest ARGS` in the repository, as the README's main command does."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", f"--report-dir={report_dir}", *args]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return SuiteRun(proc.returncode, proc.stdout, proc.stderr, report_dir)


@pytest.fixture
def suite(tmp_path):
    """`suite(*args)` runs the compliance suite with its reports under tmp_path."""
    counter = {"n": 0}

    def _run(*args: str, **kwargs: Any) -> SuiteRun:
        counter["n"] += 1
        report_dir = str(tmp_path / f"reports{counter['n']}")
        return run_suite(*args, report_dir=report_dir, **kwargs)

    return _run


def snapshot(name: str) -> str:
    return os.path.join("fixtures", "hosts", f"{name}.json")


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
