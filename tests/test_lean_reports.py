"""What pytest itself keeps of a check (plugin/lean_reports.py): no traceback rendered from the check's
source for an expected failure, no record of a silent passed phase, and the same terminal text."""

from __future__ import annotations

import gc
import json
import os
import textwrap

from selftest import N_CHECKS, run_suite, snapshot

# Loaded into the suite's own process (-p): records what pytest rendered and what its terminal kept.
PROBE = textwrap.dedent("""
    import json, os
    import pytest

    STYLES = []
    _getrepr = pytest.ExceptionInfo.getrepr

    def getrepr(self, *args, **kwargs):
        STYLES.append(kwargs.get("style", "long"))
        return _getrepr(self, *args, **kwargs)

    pytest.ExceptionInfo.getrepr = getrepr

    GC = {}

    def pytest_runtest_call(item):
        import gc
        GC.setdefault("during", [gc.get_threshold()[0], gc.get_freeze_count()])

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(session):
        terminal = session.config.pluginmanager.get_plugin("terminalreporter")
        kept = {key: [r.when for r in reports if hasattr(r, "when")] for key, reports in terminal.stats.items()}
        with open(os.environ["LEAN_PROBE_OUT"], "w") as handle:
            json.dump({"styles": STYLES, "kept": kept, "gc": GC}, handle)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(config):
        import gc
        with open(os.environ["LEAN_PROBE_OUT"] + ".after", "w") as handle:
            json.dump([gc.get_threshold()[0], gc.get_freeze_count()], handle)
""")


def test_a_failing_check_is_reported_by_its_message_without_a_rendered_traceback(tmp_path):
    (tmp_path / "lean_probe.py").write_text(PROBE)
    out = tmp_path / "probe.json"
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "LEAN_PROBE_OUT": str(out)}
    run = run_suite("-p", "lean_probe", f"--hosts=snapshot://{snapshot('permissive')},"
                    f"snapshot://{snapshot('healthy-rhel9')}", "--profile=rhel9",
                    report_dir=str(tmp_path / "r"), env=env)
    assert run.exit_status == 1, run.stdout + run.stderr
    probe = json.loads(out.read_text())
    # The failure's text is the check's message, as before ...
    assert "SEL-001 snapshot://fixtures/hosts/permissive.json: FAIL: SELinux is Permissive, expected Enforcing" \
        in run.stdout
    assert "def test_" not in run.stdout and "tests_host/" not in run.stdout.split("short test summary")[0]
    # ... and pytest rendered no traceback of the check's code to get there (only the message, "value").
    assert probe["styles"] and set(probe["styles"]) == {"value"}, probe["styles"]
    # The terminal kept each check's call phase, and no passed setup or teardown (they captured nothing).
    kept = probe["kept"]
    assert kept.get("", []) == [], kept.get("")
    assert sum(len(v) for k, v in kept.items() if k in ("passed", "failed", "skipped")) == 2 * N_CHECKS
    assert all(when == "call" or key == "skipped" for key, whens in kept.items() for when in whens), kept
    # The collected items are kept out of the garbage collector's walks while the checks run (frozen,
    # young objects collected in larger steps), and the interpreter's settings are put back after.
    threshold, frozen = probe["gc"]["during"]
    assert threshold == 10_000 and frozen > 1000, probe["gc"]
    assert json.loads((tmp_path / "probe.json.after").read_text()) == [gc.get_threshold()[0], 0]
