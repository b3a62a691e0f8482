"""The pytest plugin: options, one parametrization per host, the `facts` fixture, outcomes.

Every check's node id carries its check id and host: `test_enforcing[SEL-001-local]`.
Evidence for a host is collected once (all probes concurrently) on first use and shared by
all checks of that host.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pathlib
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import weakref
from typing import Any

import pytest

from postfix_compliance import __version__, atomicfile
from postfix_compliance.backends import backend_class, make_host, parse_host_url
from postfix_compliance.backends.hostkeys import ConnectError, error_line
from postfix_compliance.backends.snapshot import snapshot_document
from postfix_compliance.checks import meta_of
from postfix_compliance.errors import EvidenceError, HostUnreachable, UsageError
from postfix_compliance.facts import model
from postfix_compliance.facts.collect import CLIENT_GRACE, DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, ProbeRunner, parse_size
from postfix_compliance.facts.host import HostFacts
from postfix_compliance.facts.parsers import parse
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.facts.probes import OS_RELEASE, build_probes, validate_since
from postfix_compliance.facts.queue_drain import DrainPlan
from postfix_compliance.inventory import resolve_host_specs
from postfix_compliance.outputpaths import check_output_paths
from postfix_compliance.profiles import PROFILES_DIR, Profile, detect_profile, load_profile
from postfix_compliance.report import results as results_report
from postfix_compliance.stage_probes import stage_probe_names
from postfix_compliance.text import inert, inert_data
from postfix_compliance.triage import diagnose

STATE = pytest.StashKey["SuiteState"]()
# --avc-since=baseline: AVC-002 and LOG-001 judge what happened after the --baseline run ended on each host.
BASELINE_WINDOW = "baseline"
OUTCOMES = ("pass", "fail", "error", "waived", "not_applicable")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from postfix_compliance import hookspecs
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("postfix-compliance", "Postfix/SELinux compliance")
    group.addoption("--profile", help="profile name (fixtures/profiles) or YAML path; default: detected "
                                      "per host from /etc/os-release")
    group.addoption("--profiles-dir", default=PROFILES_DIR, help="directory of profile YAML files")
    group.addoption("--command-timeout", type=float, default=DEFAULT_TIMEOUT,
                    help="seconds each probe command may run (default %(default)s)")
    group.addoption("--max-probe-output", metavar="BYTES", default=str(DEFAULT_MAX_OUTPUT),
                    help="bytes of stdout and of stderr kept from one probe, e.g. 4194304 or 4M (default 4M); "
                         "a check that needs output cut there is an error naming the cap")
    group.addoption("--avc-since", default=None,
                    help="audit/log window, as ausearch -ts takes it (default: the profile's, 'recent' = 10 min), "
                         "or 'baseline': since the --baseline run ended on each host (its clock)")
    group.addoption("--no-flush", action="store_true",
                    help="never run `postqueue -f` (Q-002 then only watches the queue)")
    group.addoption("--read-only", action="store_true",
                    help="change nothing on any host: no `postqueue -f`, no `postfix check` (it creates missing "
                         "queue directories)")
    group.addoption("--postfix-check", action="store_true",
                    help="also run `postfix check` (SVC-005). Off by default: it runs Postfix's own programs as "
                         "root on the host, which create missing queue directories and, under SELinux, leave "
                         "audit records of the scan's own login session")
    group.addoption("--drain-timeout", type=float, default=None, help="seconds Q-002 waits (default: profile, 60)")
    group.addoption("--poll-interval", type=float, default=None, help="seconds between queue polls (default 0.5)")
    group.addoption("--postfix-config-dir", default=None,
                    help="check the Postfix instance with this config directory (MAIL_CONFIG)")
    group.addoption("--record-snapshot", metavar="DIR", default=None,
                    help="write each host's evidence to DIR/<host>.json (replay with snapshot://)")
    group.addoption("--report-dir", default="reports", help="where reports go (default %(default)s)")
    group.addoption("--no-reports", action="store_true", help="write no report files")

    # Transport: the suite's own. testinfra already defines --hosts, --connection, --ssh-config,
    # --ssh-identity-file, --sudo, --sudo-user and --ansible-inventory; they are read as they are.
    transport = parser.getgroup("postfix-compliance transport",
                                "Postfix/SELinux compliance: reaching hosts (see docs/ssh.md)")
    transport.addoption("--known-hosts", metavar="FILE", default=None,
                        help="known_hosts file for paramiko:// and ssh:// host keys (default: the ssh config's "
                             "UserKnownHostsFile, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts)")
    transport.addoption("--accept-new-host-keys", action="store_true",
                        help="record the key of a host never seen before in the known_hosts file and connect; "
                             "a CHANGED key is refused all the same")
    transport.addoption("--connect-timeout", type=float, default=10.0,
                        help="seconds to reach and log in to a host (default %(default)s)")
    transport.addoption("--inventory-reader", choices=("auto", "builtin", "ansible"), default="auto",
                        help="how --ansible-inventory is read: 'ansible' through `ansible-inventory --list` "
                             "(group_vars, host_vars, vault files, plugins, as the playbooks see them), 'builtin' "
                             "without Ansible (group_vars/ and host_vars/ beside the file; no vault), 'auto' "
                             "(default): ansible-inventory where it is installed")


@pytest.hookimpl(tryfirst=True)  # before junitxml and pytest-html read their paths
def pytest_configure(config: pytest.Config) -> None:
    for marker, text in (("static", "needs no running system (config, persisted state, file contexts)"),
                         ("runtime", "needs a running system"),
                         ("intrusive", "changes the host: the documented queue flush")):
        config.addinivalue_line("markers", f"{marker}: {text}")
    try:
        state = SuiteState.from_config(config)
        check_output_paths(config)  # before any host is contacted: a bad path would cost the whole run
    except UsageError as exc:
        raise pytest.UsageError(inert(str(exc))) from None  # input text reaches the terminal
    config.stash[STATE] = state
    if not config.getoption("no_reports"):
        os.makedirs(state.report_dir, exist_ok=True)
        if getattr(config.option, "htmlpath", None) is None and hasattr(config.option, "htmlpath"):
            config.option.htmlpath = os.path.join(state.report_dir, "compliance.html")
            config.option.self_contained_html = True
        if getattr(config.option, "xmlpath", None) is None:
            config.option.xmlpath = os.path.join(state.report_dir, "junit.xml")
    if not hasattr(config, "workerinput"):  # xdist workers write neither file
        _stage_plugin_reports(config)


STAGED = pytest.StashKey[list]()


def _stage_plugin_reports(config: pytest.Config) -> None:
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
            os.makedirs(os.path.dirname(final), exist_ok=True)
            private = tempfile.mkdtemp(dir=os.path.dirname(final), prefix=".staging-")
        except OSError as exc:
            raise pytest.UsageError(f"cannot write the report {final}: {exc.strerror}") from None
        staged.append((os.path.join(private, os.path.basename(final)), final))
        setattr(config.option, option, staged[-1][0])
        if option == "htmlpath":  # an assets/ directory would stay behind in the private directory
            config.option.self_contained_html = True
    config.stash[STAGED] = staged


@dataclasses.dataclass
class HostTarget:
    spec: str
    id: str


class SuiteState:
    """Per-run state: the hosts, options, and each host's collected facts."""

    def __init__(self, config: pytest.Config, targets: list[HostTarget], profile: Profile | None):
        self.config = config
        self.targets = targets
        self.profile = profile
        self.report_dir = config.getoption("report_dir")
        self.timeout = config.getoption("command_timeout")
        self.max_output = parse_size(config.getoption("max_probe_output", str(DEFAULT_MAX_OUTPUT)))
        self.results: list[dict[str, Any]] = []
        # Each probe's evidence once per host: {host: {evidence id: dict}} (results.json's "evidence").
        self.evidence: dict[str, dict[str, dict[str, Any]]] = {}
        self._shipped: set[tuple[str, str]] = set()  # (host, id) already sent with a record from here
        self._entries: dict[int, tuple[Any, tuple[str, dict[str, Any]]]] = {}  # id(Evidence) -> its entry
        self.started = time.time()
        self._facts: dict[str, HostFacts] = {}
        self.baseline_ends: dict[str, tuple[float, int]] = {}  # --avc-since=baseline: where the pre run ended
        self.drain_hosts: set[str] = set()  # hosts whose Q-002 (the drain) is in this run
        self._records_by_host: dict[str, list[dict[str, Any]]] = {}
        self._locks: dict[str, threading.Lock] = {t.id: threading.Lock() for t in targets}

    @classmethod
    def from_config(cls, config: pytest.Config) -> SuiteState:
        since = config.getoption("avc_since")
        baseline_ends: dict[str, tuple[float, int]] = {}
        if since == BASELINE_WINDOW:
            path = config.getoption("baseline", None)
            if not path:
                raise UsageError("--avc-since=baseline needs --baseline FILE: the window starts where that run "
                                 "ended on each host")
            try:
                baseline_ends = results_report.run_ends(results_report.load(path))
            except ValueError as exc:
                raise UsageError(f"--baseline {exc}") from None
        elif since is not None:
            try:
                validate_since(since)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        if not 0 < config.getoption("command_timeout") < float("inf"):  # `not <`: nan too
            raise UsageError("--command-timeout must be a positive number of seconds")
        try:
            parse_size(config.getoption("max_probe_output", str(DEFAULT_MAX_OUTPUT)))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        profile_opt = config.getoption("profile")
        profile = load_profile(profile_opt, config.getoption("profiles_dir")) if profile_opt else None
        if not 0 < config.getoption("connect_timeout", 10.0) < float("inf"):
            raise UsageError("--connect-timeout must be a positive number of seconds")
        for name in ("drain_timeout", "poll_interval"):  # the profile's are checked the same way (schema)
            if config.getoption(name) is not None and not 0 < config.getoption(name) < float("inf"):
                raise UsageError(f"--{name.replace('_', '-')} must be a positive number of seconds")
        specs = resolve_host_specs(config.getoption("hosts", None), config.getoption("ansible_inventory", None),
                                   config.getoption("connection", None),
                                   reader=config.getoption("inventory_reader", "auto"))
        targets = []
        for spec in specs:
            scheme, name, _ = parse_host_url(spec)
            backend_class(scheme)  # an unknown scheme is a usage error, not 27 errors later
            if scheme == "snapshot":
                from postfix_compliance.backends.snapshot import load_snapshot
                load_snapshot(name or "")  # a bad path or file is a usage error before anything runs
            target_id = "local" if scheme == "local" else f"{scheme}://{name}"
            if any(t.id == target_id for t in targets):
                continue
            targets.append(HostTarget(spec.strip(), target_id))
        state = cls(config, targets, profile)
        state.baseline_ends = baseline_ends
        return state

    # ------------------------------------------------------------------ facts
    def facts_for(self, target: HostTarget) -> HostFacts:
        with self._locks[target.id]:
            if target.id not in self._facts:
                self._facts[target.id] = self._collect(target)
            return self._facts[target.id]

    def _collect(self, target: HostTarget) -> HostFacts:
        config = self.config
        try:
            host = make_host(target.spec,
                             ssh_config=config.getoption("ssh_config", None),
                             ssh_identity_file=config.getoption("ssh_identity_file", None),
                             ssh_extra_args=config.getoption("ssh_extra_args", None),
                             sudo=config.getoption("sudo", False) or None,
                             sudo_user=config.getoption("sudo_user", None),
                             ansible_inventory=config.getoption("ansible_inventory", None),
                             known_hosts=config.getoption("known_hosts", None),
                             accept_new_host_keys=config.getoption("accept_new_host_keys", False) or None,
                             connect_timeout=config.getoption("connect_timeout", None),
                             command_timeout=self.timeout + CLIENT_GRACE)
        except UsageError as exc:
            return HostFacts(target.id, target.id, {}, None, error=str(exc))
        except Exception as exc:  # a backend that cannot even be set up: one error for this host
            return HostFacts(target.id, target.id, {}, None, error=f"{type(exc).__name__}: {exc}")
        # --sudo, or ?sudo=true in the URL / ansible_become: sudo for the privileged probes only.
        runner = ProbeRunner(host, timeout=self.timeout, mail_config=config.getoption("postfix_config_dir"),
                             sudo=getattr(host.backend, "probe_sudo", False),
                             sudo_user=getattr(host.backend, "probe_sudo_user", None),
                             max_output=self.max_output)
        try:
            runner.connect()  # once, before any probe thread: host key, login, the shared connection
        except ConnectError as exc:
            return HostFacts(target.id, target.id, {}, None, error=error_line(target.id, exc))
        except UsageError as exc:
            return HostFacts(target.id, target.id, {}, None, error=f"host {target.id}: {exc}")
        except Exception as exc:  # anything else the transport raises is still one line for the host
            return HostFacts(target.id, target.id, {}, None,
                             error=f"host {target.id} unreachable: {type(exc).__name__}: {exc}")
        name = getattr(host.backend, "recorded_host", None) or host.backend.get_hostname() or target.id
        if name == "local":
            name = socket.gethostname()
        markexpr = config.getoption("markexpr", "") or ""
        profile = self.profile
        if profile is not None:  # no detection to wait for: os-release rides in the one batch below
            return self._collect_probes(target, runner, name, profile, markexpr, {})
        os_ev = runner.run(OS_RELEASE)
        if os_ev.error:
            return HostFacts(target.id, name, {"os_release": os_ev}, None,
                             error=f"host {target.id} unreachable: {os_ev.error}")
        os_fact = parse(os_ev)
        if isinstance(os_fact, model.OsRelease):
            try:
                profile = detect_profile(os_fact.id, os_fact.version_id, os_fact.id_like,
                                         config.getoption("profiles_dir"))
            except UsageError as exc:
                return HostFacts(target.id, name, {"os_release": os_ev}, None, error=str(exc))
        if profile is None:
            return HostFacts(target.id, name, {"os_release": os_ev}, None,
                             error=f"no profile matches host {target.id} "
                                   f"({_os_words(os_fact)}): choose one with --profile")
        return self._collect_probes(target, runner, name, profile, markexpr, {"os_release": os_ev})

    def _collect_probes(self, target: HostTarget, runner: ProbeRunner, name: str, profile: Any, markexpr: str,
                        known: dict[str, Evidence]) -> HostFacts:
        """Every probe of the host's run not in `known`, in one round (ProbeRunner.run_many)."""
        config = self.config
        since = config.getoption("avc_since") or profile.data.get("audit", {}).get("since", "recent")
        if since == BASELINE_WINDOW:
            since = self.since_baseline(target, name) or profile.data.get("audit", {}).get("since", "recent")
        probes = [p for p in build_probes(tuple(n for n, _ in profile.booleans), since, live=markexpr != "static")
                  if p.name not in known]
        if markexpr == "static":
            # An image gate (-m static, e.g. on a chroot): only what needs no running system is asked.
            probes = [p for p in probes if p.static]
        not_run = {}  # intrusive probes left out, and why (the checks that need them say so)
        if config.getoption("read_only") or markexpr == "static" or "not intrusive" in markexpr:
            not_run = {p.name: "this run is read-only (--read-only, -m static or -m 'not intrusive')"
                       for p in probes if p.intrusive}
        elif not config.getoption("postfix_check"):
            not_run = {p.name: "it is opt-in (--postfix-check), since it runs Postfix programs as root on the host"
                       for p in probes if p.intrusive}
        probes = [p for p in probes if p.name not in not_run]
        started = time.monotonic()
        started_wall = time.time()
        evidence = {**runner.run_many(probes), **known}
        os_ev = evidence["os_release"]
        if os_ev.error and not runner.lost:
            return HostFacts(target.id, name, evidence, None, error=f"host {target.id} unreachable: {os_ev.error}")
        if runner.lost:  # the host went away mid-run: one error for the host, not half its checks
            return HostFacts(target.id, name, evidence, None,
                             error=f"host {target.id} dropped the connection during evidence collection: "
                                   f"{runner.lost}")
        facts = HostFacts(target.id, name, evidence, profile, runner=runner)
        facts.since = since
        facts.collect_started_wall = started_wall
        facts.not_run = not_run
        if target.id in self.drain_hosts:
            flush = not (config.getoption("no_flush") or config.getoption("read_only"))
            facts.drain_plan = DrainPlan(config.getoption("drain_timeout") or profile.drain_timeout,
                                         config.getoption("poll_interval") or profile.poll_interval, flush)
        facts.collect_seconds = time.monotonic() - started
        return facts

    def evidence_entries(self, evidence: list[Evidence]) -> list[tuple[str, dict[str, Any]]]:
        """(id, dict) of each Evidence, made once per Evidence object (a host's ps output is hashed
        once, not once per check that read it)."""
        entries = []
        for ev in evidence:
            cached = self._entries.get(id(ev))
            if cached is None or cached[0] is not ev:
                cached = self._entries[id(ev)] = (ev, results_report.evidence_entries([ev])[0])
            entries.append(cached[1])
        return entries

    def since_baseline(self, target: HostTarget, name: str) -> str | None:
        """--avc-since=baseline: the host's local time (its clock and UTC offset as the baseline recorded
        them) at the second after the baseline run ended there; None when the baseline has no clock for it."""
        end = self.baseline_ends.get(target.id) or self.baseline_ends.get(name)
        if end is None:
            return None
        local = math.ceil(end[0]) + end[1]
        return time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(local))

    def all_facts(self) -> list[HostFacts]:
        return list(self._facts.values())


def _os_words(fact: Any) -> str:
    if isinstance(fact, model.OsRelease):
        return f"ID={fact.id} VERSION_ID={fact.version_id}"
    return "no readable /etc/os-release"


# ---------------------------------------------------------------------- parametrization
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "facts" not in metafunc.fixturenames:
        return
    meta = getattr(metafunc.function, "check_meta", None)
    state: SuiteState = metafunc.config.stash[STATE]
    prefix = f"{meta.id}-" if meta else ""
    metafunc.parametrize("host_target", state.targets, ids=[prefix + t.id for t in state.targets])


@pytest.fixture
def facts(request: pytest.FixtureRequest, host_target: HostTarget) -> HostFacts:
    state: SuiteState = request.config.stash[STATE]
    host_facts = state.facts_for(host_target)
    host_facts.start_check()
    request.node.stash[FACTS] = host_facts
    if host_facts.error:
        raise HostUnreachable(host_facts.error)
    return host_facts


@pytest.fixture
def profile(facts: HostFacts) -> Profile:
    return facts.profile


FACTS = pytest.StashKey[HostFacts]()


@pytest.hookimpl(trylast=True)  # after -k/-m deselected what this run leaves out
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note the hosts whose drain check (Q-002) is selected: Q-001 and triage then judge their queue as
    the drain leaves it (the suite's own flush is not the host's state)."""
    state: SuiteState = config.stash[STATE]
    for item in items:
        meta = meta_of(item)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if meta is not None and meta.id == "Q-002" and "host_target" in params:
            state.drain_hosts.add(params["host_target"].id)


# ---------------------------------------------------------------------- fleets (pytest-xdist)
@pytest.hookimpl(tryfirst=True)  # before xdist turns `-n N` into `--dist load`
def pytest_cmdline_main(config: pytest.Config) -> None:
    """`-n N` without `--dist`: loadgroup, so that all checks of a host run on one worker and its
    evidence is collected once (an explicit --dist is respected)."""
    # xdist's own hook may already have turned "no" into "load" (hook order follows plugin load
    # order), so ask the command line whether the user chose a --dist.
    args = [str(a) for a in config.invocation_params.args] + list(config.getini("addopts") or [])
    explicit = any(a == "-d" or a.startswith("--dist") for a in args)
    if getattr(config.option, "numprocesses", None) and not explicit \
            and getattr(config.option, "dist", None) in ("no", "load"):
        config.option.dist = "loadgroup"


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist (controller), --dist loadgroup: one work unit per host.

    xdist's own loadgroup relies on rewriting node ids (`item._nodeid`), which pytest 9 no longer
    honours, so it would spread a host's checks over workers. This scheduler groups by the host
    each node id names instead (node ids end in `[CHECK-ID-<host id>]`), without changing them."""
    if config.getoption("dist", None) != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    state: SuiteState = config.stash[STATE]
    suffixes = sorted(((f"-{t.id}]", t.id) for t in state.targets), key=lambda p: -len(p[0]))

    class HostScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            for suffix, host in suffixes:
                if nodeid.endswith(suffix):
                    return f"host:{host}"
            return super()._split_scope(nodeid)

    return HostScheduling(config, log)


# ---------------------------------------------------------------------- outcomes
def classify(report: pytest.TestReport, excinfo: Any) -> tuple[str, str]:
    """The compliance outcome of one check and its one-line message."""
    if report.passed:
        return "pass", ""
    if report.skipped:
        if excinfo is not None:
            return "not_applicable", str(getattr(excinfo.value, "msg", excinfo.value))
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return "not_applicable", reason.removeprefix("Skipped: ")
    if excinfo is not None:
        if excinfo.errisinstance(AssertionError):
            return "fail", _first_line(str(excinfo.value)) or "assertion failed"
        if excinfo.errisinstance(EvidenceError):
            return "error", str(excinfo.value)
        return "error", f"{excinfo.type.__name__}: {_first_line(str(excinfo.value))}"
    return "error", "unknown failure"


def _first_line(text: str) -> str:
    # pytest appends its assertion rewrite ("assert ...") after the message; the message is enough.
    return text.split("\nassert ")[0].strip()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    meta = meta_of(item)
    params = getattr(getattr(item, "callspec", None), "params", {})
    if meta is None or "host_target" not in params:
        return
    _make_inert(report)
    decisive = report.when == "call" or (report.when == "setup" and not report.passed)
    if not decisive:
        return
    excinfo = call.excinfo
    # A host controls these bytes and they go to terminals and every report: control characters are
    # shown as text (\x1b) from here on. Commands in a message are quoted already (text.shell).
    compliance, message = classify(report, excinfo)
    if compliance == "pass" and item.stash.get(FACTS, None) is not None:
        message = item.stash[FACTS].message
    message = inert(message)
    target: HostTarget = params["host_target"]
    host_facts = item.stash.get(FACTS, None)
    evidence = host_facts.evidence_for_report() if host_facts and not host_facts.error else []
    state: SuiteState = item.config.stash[STATE]
    entries = state.evidence_entries(evidence)
    record = results_report.make_record(
        meta, host=target.id, host_name=inert(host_facts.name) if host_facts else target.id,
        outcome=compliance, message=message, evidence=entries,
        profile=host_facts.profile.name if host_facts and host_facts.profile else None,
        nodeid=item.nodeid, duration=report.duration)
    record["notes"] = inert_data(list(host_facts.notes)) if host_facts else []
    # The host's clock now (an upper bound): a later --baseline run places this run's end on it.
    clock = host_facts.host_time() if host_facts and not host_facts.error else None
    record["host_clock"] = {"now": round(clock[0], 3), "utc_offset": clock[1]} if clock else None
    record["diagnosis"] = inert_data(_diagnosis(host_facts)) if host_facts else None
    item.config.hook.pytest_compliance_record(config=item.config, record=record)
    report.user_properties.append(("compliance", json.dumps(record)))
    # The record names its evidence; the evidence itself goes along once per host and process (the
    # first record that read it), not with every check: see pytest_runtest_logreport.
    new = {ref: body for ref, body in entries if (target.id, ref) not in state._shipped}
    state._shipped.update((target.id, ref) for ref in new)
    if new:
        report.user_properties.append((EVIDENCE_PROPERTY, json.dumps(new)))
    if record["outcome"] == "waived" and not report.passed:
        # pytest's own counts and exit status follow the waiver too; the reason is the waiver's.
        report.outcome = "skipped"
        report.longrepr = (str(item.path), 0,
                           inert(f"waived: {record.get('waiver', {}).get('justification', '')}"))
        return
    if compliance in ("fail", "error") and _expected(excinfo):
        # The check's message is the whole story; a traceback of the check's code is noise.
        report.longrepr = f"{meta.id} {inert(target.id)}: {compliance.upper()}: {message}"


def _make_inert(report: pytest.TestReport) -> None:
    """What pytest will print of a check (failure text, skip reason, captured output) without a raw
    control character: a traceback of a crashed check can quote what the host printed."""
    if isinstance(report.longrepr, tuple):
        report.longrepr = tuple(inert(part) if isinstance(part, str) else part for part in report.longrepr)
    elif isinstance(report.longrepr, str):
        report.longrepr = inert(report.longrepr)
    elif report.longrepr is not None:
        _inert_repr(report.longrepr)
    report.sections = [(title, inert(content)) for title, content in report.sections]


# host -> (the stage evidence the finding was made from, the finding): made again only when the drain
# changes the queue. Until the results stage computes it once per host (#15).
_DIAGNOSES: weakref.WeakKeyDictionary[HostFacts, tuple[dict[str, Evidence], dict[str, Any] | None]] = \
    weakref.WeakKeyDictionary()


def _diagnosis(host_facts: HostFacts) -> dict[str, Any] | None:
    """The host's triage finding from its stage evidence (the queue after the drain once the suite has
    flushed it), or None."""
    profile = host_facts.profile
    if host_facts.error or profile is None:
        return None
    evidence = host_facts.stage_evidence(stage_probe_names(host_facts.evidence))
    cached = _DIAGNOSES.get(host_facts)
    if cached is not None and cached[0].keys() == evidence.keys() \
            and all(cached[0][probe] is ev for probe, ev in evidence.items()):
        return cached[1]
    parsed: dict[str, Any] = {}

    def get(probe: str) -> Any:
        if probe not in parsed:
            ev = evidence.get(probe)
            parsed[probe] = parse(ev) if ev is not None else model.Unparsed(probe, "probe was not run")
        return parsed[probe]

    finding = diagnose(get, profile.postfix_domain_prefix, profile.login_session_types)
    found = finding.to_dict() if finding else None
    _DIAGNOSES[host_facts] = (evidence, found)
    return found


def _inert_repr(value: Any) -> Any:
    """Every string inside pytest's failure representation (dataclasses of lines), made inert in place."""
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, list):
        value[:] = [_inert_repr(v) for v in value]
    elif isinstance(value, tuple):
        return tuple(_inert_repr(v) for v in value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            object.__setattr__(value, field.name, _inert_repr(getattr(value, field.name)))
    return value


def _expected(excinfo: Any) -> bool:
    return excinfo is None or excinfo.errisinstance((AssertionError, EvidenceError))


EVIDENCE_PROPERTY = "compliance_evidence"


def record_of(report: pytest.TestReport) -> dict[str, Any] | None:
    for key, value in report.user_properties:
        if key == "compliance":
            return json.loads(value)
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    record = record_of(report)
    if record is None:
        return
    state = _state_of(report)
    if state is not None:
        table = state.evidence.setdefault(record["host"], {})
        for key, value in list(report.user_properties):
            if key == EVIDENCE_PROPERTY:
                for ref, body in json.loads(value).items():
                    table.setdefault(ref, body)
                report.user_properties.remove((key, value))  # kept once, in the table (reports live on)
        results_report.attach_evidence(record, table)
        state.results.append(record)
        # A host has one triage finding: the latest (after Q-002's drain, triage sees the queue as it is).
        same_host = state._records_by_host.setdefault(record["host"], [])
        same_host.append(record)
        if record.get("diagnosis") != same_host[0].get("diagnosis"):
            for earlier in same_host:
                earlier["diagnosis"] = record.get("diagnosis")


_CURRENT: list[SuiteState] = []


def _state_of(report: Any) -> SuiteState | None:
    return _CURRENT[-1] if _CURRENT else None


def pytest_sessionstart(session: pytest.Session) -> None:
    _CURRENT.append(session.config.stash[STATE])


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state: SuiteState = session.config.stash[STATE]
    snapshot_dir = session.config.getoption("record_snapshot")
    if snapshot_dir:
        write_snapshots(state, snapshot_dir)
    if hasattr(session.config, "workerinput"):  # xdist worker: the controller reports
        return
    if not session.config.getoption("no_reports"):
        results_report.write(os.path.join(state.report_dir, "results.json"), state.results,
                             started=state.started, profile=state.profile.name if state.profile else None)
    floors = session.config.hook.pytest_compliance_finish(
        config=session.config, records=state.results, report_dir=state.report_dir)
    outcomes = {r["outcome"] for r in state.results}
    if session.exitstatus in (0, 1) and state.results:
        status = 2 if "error" in outcomes else (1 if "fail" in outcomes else 0)
        session.exitstatus = max([status, *[f for f in floors if f is not None]])


@pytest.hookimpl(hookwrapper=True, trylast=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_publish_reports(session: pytest.Session) -> Any:
    """After pytest-html and junitxml wrote (the innermost wrapper), before the terminal summary names them."""
    yield
    config = session.config
    for staged, final in config.stash.get(STAGED, []):
        if not os.path.exists(staged):
            continue
        try:
            os.replace(staged, final)
        except OSError as exc:
            sys.stderr.write(f"ERROR: cannot write the report {final}: {exc.strerror}\n")
            session.exitstatus = max(int(session.exitstatus), 4)
            continue
        _point_plugins_at(config, staged, final)


def _point_plugins_at(config: pytest.Config, staged: str, final: str) -> None:
    """The plugins' "generated ... report" lines name the final path, not the private one."""
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is not None and getattr(xml, "logfile", None) == staged:
        xml.logfile = final
    for plugin in config.pluginmanager.get_plugins():
        if str(getattr(plugin, "_report_path", "")) == staged:  # pytest-html's report object
            plugin._report_path = pathlib.Path(final)


def pytest_unconfigure(config: pytest.Config) -> None:
    for staged, _ in config.stash.get(STAGED, []):
        shutil.rmtree(os.path.dirname(staged), ignore_errors=True)


def write_snapshots(state: SuiteState, directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    recorded = [f for f in state.all_facts() if not f.error]
    names = snapshot_stems([(f.name, f.host_id) for f in recorded], [t.id for t in state.targets])
    for facts, stem in zip(recorded, names):
        evidence = list(facts.evidence.values())
        evidence += facts.all_extra_evidence
        doc = snapshot_document(facts.name, evidence, {
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "suite_version": __version__, "source": facts.host_id})
        atomicfile.write_atomic(os.path.join(directory, stem + ".json"), json.dumps(doc, indent=1) + "\n")


SNAPSHOT_STEM_MAX = 100  # far below NAME_MAX (255 bytes), with room for ".json" and a hash


def snapshot_stems(hosts: list[tuple[str, str]], all_urls: list[str] | None = None) -> list[str]:
    """File names (without .json) for (host name, host URL) pairs: one per URL, readable, bounded.

    The name the host reports is not unique (two sshd ports on one address, two snapshots of one
    host), so the URL is part of the name unless it already holds the host name (`local` is one per
    machine). Too long, or equal to another URL's after sanitising: cut, plus a hash of the URL.
    `all_urls`: every host of the run, so that xdist workers, each recording its own hosts, agree."""
    def stem(name: str, url: str) -> str:
        safe_name, safe_url = _safe_name(name), _safe_name(url)
        if url == "local":
            return safe_name
        return safe_url if safe_name in safe_url else f"{safe_name}--{safe_url}"

    def hashed(text: str, url: str) -> str:
        keep = SNAPSHOT_STEM_MAX - 17
        if len(text) > keep:  # the head names the host, the tail (a port, a file name) tells URLs apart
            text = f"{text[:keep // 2]}_{text[-(keep - keep // 2 - 1):]}"
        return f"{text}-{hashlib.sha256(url.encode()).hexdigest()[:16]}"

    safe_urls = [_safe_name(url).lower() for url in (all_urls or [url for _, url in hosts])]
    clash = {u for u in safe_urls if safe_urls.count(u) > 1}  # lower: case-insensitive filesystems too
    stems = [stem(name, url) for name, url in hosts]
    stems = [s if len(s) <= SNAPSHOT_STEM_MAX and _safe_name(url).lower() not in clash else hashed(s, url)
             for s, (_, url) in zip(stems, hosts)]
    taken = [s.lower() for s in stems]
    return [hashed(s, url) if taken.count(s.lower()) > 1 else s for s, (_, url) in zip(stems, hosts)]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "host"
