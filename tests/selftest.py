"""What the project's tests share: where things are, and running the suite as a user would.

(A plain module, not conftest.py: tests/vm has a conftest of its own, and `from conftest import`
would find whichever was imported last.)"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTS_DIR = os.path.join(REPO, "fixtures", "hosts")
REFERENCE_DIR = os.path.join(REPO, "tests", "reference")


def _check_count() -> int:
    from postfix_compliance.catalog_doc import load_checks
    return len(load_checks())


N_CHECKS = _check_count()  # the catalogue's size: each host of a full run has this many records


@dataclasses.dataclass
class SuiteRun:
    exit_status: int
    stdout: str
    stderr: str
    report_dir: str

    @property
    def results(self) -> dict[str, Any]:
        from postfix_compliance.results_file import inline_evidence
        with open(os.path.join(self.report_dir, "results.json"), encoding="utf-8") as handle:
            # As the suite's own readers see it: every record with its "evidence" (stored once per host).
            return inline_evidence(json.load(handle))

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


def snapshot(name: str) -> str:
    return os.path.join("fixtures", "hosts", f"{name}.json")


def assert_one_error_line(run: SuiteRun, *expected: str) -> str:
    """Bad input: exit 4, exactly one `ERROR:` line (holding each of `expected`), no traceback; the line."""
    output = run.stdout + run.stderr
    assert run.exit_status == 4, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, output
    for word in expected:
        assert word in errors[0], errors[0]
    return errors[0]
