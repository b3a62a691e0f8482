"""The pytest plugin: one parametrization per host, the `facts` fixture, and the results stage.

Every check's node id carries its check id and host: `test_enforcing[SEL-001-local]`. A host's
evidence is collected once (all probes concurrently) on first use and shared by all its checks
(plugin/collection.py); each check's outcome becomes a CheckResult (plugin/results_stage.py); at the
end one RunResult is decided (verdict.py) and rendered (plugin/outputs.py). The modules, by job:
  options.py        command-line options and their validation
  targets.py        which hosts: --hosts URLs or an inventory
  collection.py     reaching hosts, running probes, HostFacts for the checks
  outcomes.py       pytest's report -> a compliance outcome and message; inert terminal text
  results_stage.py  CheckResults as checks finish; the RunResult at the end
  lean_reports.py   what pytest itself keeps of a check (sized for a fleet)
  outputs.py        results.json and the other files, terminal summaries
  scheduling.py     pytest-xdist: a host's checks on one worker
  staging.py        pytest-html's and junitxml's files written safely
  snapshots.py      --record-snapshot
  html_report.py, junit_names.py   adapters of pytest-html and junitxml (separate plugins)
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from postfix_compliance.atomicfile import PRIVATE_DIR_MODE
from postfix_compliance.errors import UsageError
from postfix_compliance.facts.host import HostFacts
from postfix_compliance.outputpaths import check_output_paths
from postfix_compliance.plugin.collection import FACTS, HostCollector, facts_fixture, host_of, select
from postfix_compliance.plugin.options import BASELINE_WINDOW, pytest_addhooks, pytest_addoption, validate
from postfix_compliance.plugin.options import pytest_load_initial_conftests
from postfix_compliance.plugin.lean_reports import register as register_lean_reports
from postfix_compliance.plugin.outputs import changes_summary, plan_summary, waivers_summary, write_outputs
from postfix_compliance.plugin.results_stage import ResultsStage, decided_run, pytest_runtest_makereport, stage_of
from postfix_compliance.plugin.results_stage import pytest_sessionfinish_checks_done
from postfix_compliance.plugin.results_stage import start as start_results_stage
from postfix_compliance.plugin.scheduling import pytest_cmdline_main, pytest_xdist_make_scheduler
from postfix_compliance.plugin.snapshots import write_snapshots
from postfix_compliance.plugin.staging import pytest_sessionfinish_publish_reports, pytest_unconfigure
from postfix_compliance.plugin.staging import stage_plugin_reports
from postfix_compliance.plugin.state import COLLECTOR, TARGETS
from postfix_compliance.plugin.testinfra_host import register as register_testinfra_host
from postfix_compliance.plugin.targets import HostTarget, inventory_section, resolve_targets, shard_section
from postfix_compliance.profiles import Profile, load_profile
from postfix_compliance.text import inert

__all__ = ["pytest_addhooks", "pytest_addoption", "pytest_cmdline_main", "pytest_load_initial_conftests",
           "pytest_xdist_make_scheduler",
           "pytest_runtest_makereport", "pytest_sessionfinish_checks_done", "pytest_sessionfinish_publish_reports",
           "pytest_unconfigure"]

REPORT_DIR = pytest.StashKey[str]()
PROFILE = pytest.StashKey[Any]()


@pytest.hookimpl(tryfirst=True)  # before junitxml and pytest-html read their paths
def pytest_configure(config: pytest.Config) -> None:
    for marker, text in (("static", "needs no running system (config, persisted state, file contexts)"),
                         ("runtime", "needs a running system"),
                         ("intrusive", "changes the host: the documented queue flush")):
        config.addinivalue_line("markers", f"{marker}: {text}")
    register_lean_reports(config)
    register_testinfra_host(config)
    try:
        validate(config)
        waivers, baseline, baseline_ends = _verdict_inputs(config)
        profile_opt = config.getoption("profile")
        profile = load_profile(profile_opt, config.getoption("profiles_dir")) if profile_opt else None
        targets = resolve_targets(config)
        check_output_paths(config)  # before any host is contacted: a bad path would cost the whole run
    except UsageError as exc:
        raise pytest.UsageError(inert(str(exc))) from None  # input text reaches the terminal
    config.stash[TARGETS] = targets
    config.stash[PROFILE] = profile
    config.stash[COLLECTOR] = HostCollector(config, targets, profile, baseline_ends)
    sections = {"shard": shard_section(config), "inventory": inventory_section(targets)}
    start_results_stage(config, ResultsStage(targets, time.time(), profile.name if profile else None,
                                             waivers, baseline, {k: v for k, v in sections.items() if v}))
    report_dir = config.stash[REPORT_DIR] = config.getoption("report_dir")
    if not config.getoption("no_reports"):
        os.makedirs(report_dir, mode=PRIVATE_DIR_MODE, exist_ok=True)
    # pytest-html and junitxml make nothing (and cost nothing per check) without a path: --results-only.
    if not config.getoption("no_reports") and not config.getoption("results_only"):
        if getattr(config.option, "htmlpath", None) is None and hasattr(config.option, "htmlpath"):
            config.option.htmlpath = os.path.join(report_dir, "compliance.html")
            config.option.self_contained_html = True
        if getattr(config.option, "xmlpath", None) is None:
            config.option.xmlpath = os.path.join(report_dir, "junit.xml")
    if not hasattr(config, "workerinput"):  # xdist workers write neither file
        stage_plugin_reports(config)


def _verdict_inputs(config: pytest.Config) -> tuple[Any, Any, dict[str, tuple[float, int]]]:
    """--waivers and --baseline, read and validated up front: (waivers, baseline, where it ended per host)."""
    from postfix_compliance import waivers as waiver_file
    from postfix_compliance import baseline as baseline_file
    waivers = baseline = None
    path = config.getoption("waivers", None)
    if path:
        try:
            waivers = waiver_file.load(path)
        except ValueError as exc:
            raise UsageError(f"--waivers {exc}") from None
    path = config.getoption("baseline", None)
    ends: dict[str, tuple[float, int]] = {}
    if path:
        try:
            baseline = baseline_file.read(path)
        except ValueError as exc:
            raise UsageError(f"--baseline {exc}") from None
        if config.getoption("avc_since") == BASELINE_WINDOW:
            ends = baseline_file.run_ends(baseline.run)
    return waivers, baseline, ends


# ---------------------------------------------------------------------- parametrization
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "facts" not in metafunc.fixturenames:
        return
    meta = getattr(metafunc.function, "check_meta", None)
    targets = metafunc.config.stash[TARGETS]
    prefix = f"{meta.id}-" if meta else ""
    metafunc.parametrize("host_target", targets, ids=[prefix + t.id for t in targets])


@pytest.fixture
def facts(request: pytest.FixtureRequest, host_target: HostTarget) -> HostFacts:
    return facts_fixture(request, request.config.stash[COLLECTOR], host_target)


@pytest.fixture
def profile(facts: HostFacts) -> Profile:
    return facts.profile


@pytest.hookimpl(trylast=True)  # after -k/-m deselected what this run leaves out
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    select(config.stash[COLLECTOR], items, config.getoption("markexpr", "") or "")


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """A host's last check is done (checks run host by host): its facts are let go, so that a fleet's
    evidence is not all held at once. Kept for --record-snapshot, which writes every host at the end.
    Every check lets go of its own reference (the item's stash; items live to the end of the session)."""
    if FACTS in item.stash:
        del item.stash[FACTS]
    host = host_of(item)
    if host is None or (nextitem is not None and host_of(nextitem) == host):
        return
    stage_of(item.config).forget(host)
    if not item.config.getoption("record_snapshot"):
        item.config.stash[COLLECTOR].release(host)


# ---------------------------------------------------------------------- the end
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    snapshot_dir = config.getoption("record_snapshot")
    if snapshot_dir:
        write_snapshots(config.stash[COLLECTOR].all_facts(), [t.id for t in config.stash[TARGETS]], snapshot_dir)
    config.stash[COLLECTOR].close()
    run = decided_run(config)
    if run is None:  # an xdist worker: the controller reports
        return
    write_outputs(config, run, config.stash[REPORT_DIR], config.stash[PROFILE])
    floors = config.hook.pytest_compliance_finish(config=config, run=run)
    if session.exitstatus in (0, 1) and run.hosts:
        session.exitstatus = max([run.status or 0, *[f for f in floors if f is not None]])


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    run = decided_run(config)
    if run is None:
        return
    plan_summary(terminalreporter, run)
    if run.waivers is not None:
        waivers_summary(terminalreporter, dict(run.waivers))
    if run.changes is not None:
        changes_summary(terminalreporter, dict(run.changes))
