"""Collecting each host's evidence once, on first use, and handing its facts to the checks.

One `HostCollector` per run (and per xdist worker): it reaches a host, runs every probe the selected
checks may need in one round, and keeps the host's HostFacts for all its checks. A host that cannot be
checked (bad URL, unreachable, no profile) gets HostFacts with an error: each of its checks is then an
error naming it, and the other hosts are still checked.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import socket
import threading
import time
from typing import Any

import pytest

from postfix_compliance.backends import make_host
from postfix_compliance.backends.hostkeys import error_line
from postfix_compliance.checks import meta_of
from postfix_compliance.errors import ConnectError, HostUnreachable, UsageError
from postfix_compliance.facts import model
from postfix_compliance.facts.collect import CLIENT_GRACE, DEFAULT_MAX_OUTPUT, ProbeRunner, parse_size
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.facts.host import HostFacts
from postfix_compliance.facts.parsers import parse
from postfix_compliance.facts.probes import OS_RELEASE, build_probes
from postfix_compliance.facts.queue_drain import DrainPlan
from postfix_compliance.plugin.options import BASELINE_WINDOW
from postfix_compliance.plugin.targets import HostTarget
from postfix_compliance.profiles import Profile, detect_profile

READ_ONLY_REASON = "this run is read-only (--read-only, -m static or -m 'not intrusive')"
RECORDED = "snapshot://"  # target ids of recorded hosts: nothing to wait for, so never collected ahead
OPT_IN_REASON = "it is opt-in (--postfix-check), since it runs Postfix programs as root on the host"


@dataclasses.dataclass
class Selection:
    """What the selected checks (after -k/-m) need of every host, decided once after collection."""

    static_only: bool = False  # an image gate: only checks that need no running system
    intrusive: bool = True  # some selected check is marked intrusive
    drain_hosts: set[str] = dataclasses.field(default_factory=set)  # hosts whose Q-002 (the drain) runs
    order: list[str] = dataclasses.field(default_factory=list)  # this process's hosts, in the order they run


class HostCollector:
    def __init__(self, config: pytest.Config, targets: list[HostTarget], profile: Profile | None,
                 baseline_ends: dict[str, tuple[float, int]]):
        self.config = config
        self.profile = profile
        self._extensions: tuple[tuple[str, ...], tuple[Any, ...]] | None = None
        self._extensions_lock = threading.Lock()
        self.timeout = config.getoption("command_timeout")
        self.max_output = parse_size(config.getoption("max_probe_output", str(DEFAULT_MAX_OUTPUT)))
        self.baseline_ends = baseline_ends  # --avc-since=baseline: where the pre run ended per host
        self.selection = Selection()
        self.targets = {t.id: t for t in targets}
        self._facts: dict[str, HostFacts] = {}
        self._locks: dict[str, threading.Lock] = {t.id: threading.Lock() for t in targets}
        # Hosts collected ahead of their checks (one process only: an xdist worker does not know which
        # hosts it will be given), so that a fleet's network waits overlap; at most this many at once.
        self.prefetch = 0 if hasattr(config, "workerinput") else max(0, int(config.getoption("prefetch_hosts")))
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: dict[str, concurrent.futures.Future] = {}
        self._prefetched_after: str | None = None  # the host whose upcoming hosts were last submitted
        self._positions: tuple[list[str], dict[str, int]] | None = None  # (selection.order, host -> index)
        self.on_release: Any = None  # called with a host's facts when its last check is done

    def facts_for(self, target: HostTarget) -> HostFacts:
        self._prefetch_after(target.id)
        future = self._pending.get(target.id)
        if future is not None:
            future.result()  # collected ahead (its errors are HostFacts errors, never raised)
        return self._facts_now(target)

    def _facts_now(self, target: HostTarget) -> HostFacts:
        with self._locks[target.id]:
            if target.id not in self._facts:
                self._facts[target.id] = self._collect(target)
            return self._facts[target.id]

    def _prefetch_after(self, host_id: str) -> None:
        """Start collecting the next hosts of this process's order while this one's checks run."""
        order = self.selection.order
        if not self.prefetch or host_id == self._prefetched_after:
            return  # a host's later checks: its upcoming hosts are submitted already (checks run host by host)
        if self._positions is None or self._positions[0] is not order:  # one lookup a check, not a scan
            self._positions = (order, {host: i for i, host in enumerate(order)})
        index = self._positions[1].get(host_id)
        if index is None:
            return
        self._prefetched_after = host_id
        # A snapshot is read, not waited for: it is collected when its first check asks, in this thread.
        ahead = [h for h in order[index + 1:index + 1 + self.prefetch] if not h.startswith(RECORDED)]
        if not ahead:
            return
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.prefetch,
                                                               thread_name_prefix="collect")
        for upcoming in ahead:
            if upcoming not in self._pending and upcoming not in self._facts:
                self._pending[upcoming] = self._pool.submit(self._facts_now, self.targets[upcoming])

    def release(self, host_id: str) -> None:
        """The host's checks are done: its facts (evidence, parsed facts) are no longer held."""
        self._pending.pop(host_id, None)
        facts = self._facts.get(host_id)
        if facts is None:
            return
        if self.on_release is not None:
            self.on_release(facts)
        close = getattr(getattr(getattr(facts.runner, "host", None), "backend", None), "close", None)
        if close is not None:  # its SSH connection (an OpenSSH master process) ends with its checks
            try:
                close()
            except Exception:  # closing is courtesy: the run's results are made already
                pass
        self._facts[host_id] = failed(self.targets[host_id], f"host {host_id}: released after its checks")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def all_facts(self) -> list[HostFacts]:
        return list(self._facts.values())

    def make_host(self, target: HostTarget) -> Any:
        """A testinfra Host for a target through the suite's registry, with the run's transport options (host
        keys, timeouts, sudo for the privileged probes only). Raises UsageError for a bad URL."""
        config = self.config
        return make_host(target.spec,
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

    def _collect(self, target: HostTarget) -> HostFacts:
        config = self.config
        try:
            host = self.make_host(target)
        except UsageError as exc:
            return failed(target, str(exc))
        except Exception as exc:  # a backend that cannot even be set up: one error for this host
            return failed(target, f"{type(exc).__name__}: {exc}")
        # --sudo, or ?sudo=true in the URL / ansible_become: sudo for the privileged probes only.
        runner = ProbeRunner(host, timeout=self.timeout, mail_config=config.getoption("postfix_config_dir"),
                             sudo=getattr(host.backend, "probe_sudo", False),
                             sudo_user=getattr(host.backend, "probe_sudo_user", None),
                             max_output=self.max_output)
        try:
            runner.connect()  # once, before any probe thread: host key, login, the shared connection
        except ConnectError as exc:
            return failed(target, error_line(target.id, exc))
        except UsageError as exc:
            return failed(target, f"host {target.id}: {exc}")
        except Exception as exc:  # anything else the transport raises is still one line for the host
            return failed(target, f"host {target.id} unreachable: {type(exc).__name__}: {exc}")
        name = getattr(host.backend, "recorded_host", None) or host.backend.get_hostname() or target.id
        if name == "local":
            name = socket.gethostname()
        profile = self.profile
        if profile is not None:  # no detection to wait for: os-release rides in the one batch below
            return self._collect_probes(target, runner, name, profile, {})
        os_ev = runner.run(OS_RELEASE)
        known = {"os_release": os_ev}
        if os_ev.error:
            return failed(target, f"host {target.id} unreachable: {os_ev.error}", name, known)
        os_fact = parse(os_ev)
        if isinstance(os_fact, model.OsRelease):
            try:
                profile = detect_profile(os_fact.id, os_fact.version_id, os_fact.id_like,
                                         config.getoption("profiles_dir"))
            except UsageError as exc:
                return failed(target, str(exc), name, known)
        if profile is None:
            return failed(target, f"no profile matches host {target.id} ({_os_words(os_fact, os_ev)}): choose one with "
                                  "--profile", name, known)
        return self._collect_probes(target, runner, name, profile, known)

    def extensions(self) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """What users' hooks add (hookspecs.py): postconf parameters, and probes with their parsers (registered
        here). Asked once, at the first host's collection: conftest files of test paths load after configure."""
        with self._extensions_lock:
            return self._extensions_once()

    def _extensions_once(self) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        if self._extensions is None:
            from postfix_compliance.facts.parsers import register_parser
            hook = self.config.hook
            params = tuple(p for found in hook.pytest_compliance_postconf_params(config=self.config) for p in found)
            extra = []
            for found in hook.pytest_compliance_probes(config=self.config):
                for probe, parser in found:
                    register_parser(probe.name, parser)
                    extra.append(probe)
            self._extensions = (params, tuple(extra))
        return self._extensions

    def _collect_probes(self, target: HostTarget, runner: ProbeRunner, name: str, profile: Profile,
                        known: dict[str, Evidence]) -> HostFacts:
        """Every probe of the host's run not in `known`, in one round (ProbeRunner.run_many)."""
        config = self.config
        selection = self.selection
        default_since = profile.data.get("audit", {}).get("since", "recent")
        since = config.getoption("avc_since") or default_since
        if since == BASELINE_WINDOW:
            since = self.since_baseline(target, name) or default_since
        postconf_params, extra = self.extensions()
        probes = [p for p in build_probes(tuple(n for n, _ in profile.booleans), since,
                                          live=not selection.static_only, postconf_params=postconf_params,
                                          extra=extra)
                  if p.name not in known]
        if selection.static_only:
            # An image gate (-m static, e.g. on a chroot): only what needs no running system is asked.
            probes = [p for p in probes if p.static]
        not_run = {}  # intrusive probes left out, and why (the checks that need them say so)
        if config.getoption("read_only") or selection.static_only or not selection.intrusive:
            not_run = {p.name: READ_ONLY_REASON for p in probes if p.intrusive}
        elif not config.getoption("postfix_check"):
            not_run = {p.name: OPT_IN_REASON for p in probes if p.intrusive}
        probes = [p for p in probes if p.name not in not_run]
        started = time.monotonic()
        started_wall = time.time()
        evidence = {**runner.run_many(probes), **known}
        os_ev = evidence["os_release"]
        if os_ev.error and not runner.lost:
            return failed(target, f"host {target.id} unreachable: {os_ev.error}", name, evidence)
        if runner.lost:  # the host went away mid-run: one error for the host, not half its checks
            return failed(target, f"host {target.id} dropped the connection during evidence collection: "
                                  f"{runner.lost}", name, evidence)
        facts = HostFacts(target.id, name, evidence, profile, runner=runner)
        facts.since = since
        facts.collect_started_wall = started_wall
        facts.not_run = not_run
        if target.id in selection.drain_hosts:
            flush = not (config.getoption("no_flush") or config.getoption("read_only"))
            facts.drain_plan = DrainPlan(config.getoption("drain_timeout") or profile.drain_timeout,
                                         config.getoption("poll_interval") or profile.poll_interval, flush)
        facts.collect_seconds = time.monotonic() - started
        return facts

    def since_baseline(self, target: HostTarget, name: str) -> str | None:
        """--avc-since=baseline: the host's local time (its clock and UTC offset as the baseline recorded
        them) at the second after the baseline run ended there; None when the baseline has no clock for it."""
        end = self.baseline_ends.get(target.id) or self.baseline_ends.get(name)
        if end is None:
            return None
        local = math.ceil(end[0]) + end[1]
        return time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(local))


def failed(target: HostTarget, error: str, name: str | None = None,
           evidence: dict[str, Evidence] | None = None) -> HostFacts:
    """The facts of a host that cannot be checked: each of its checks is an error with this line."""
    return HostFacts(target.id, name or target.id, evidence or {}, None, error=error)


def _os_words(fact: Any, ev: Evidence) -> str:
    """What the host's os-release said, or why it could not be read: the command's own words (an image root
    without /dev/null, a shell that is missing), not only "no readable /etc/os-release"."""
    if isinstance(fact, model.OsRelease):
        return f"ID={fact.id} VERSION_ID={fact.version_id}"
    said = next((line.strip() for line in (ev.stderr or "").splitlines() if line.strip()), "")
    why = f": `{ev.command}` exited {ev.exit_status}" + (f": {said[:200]}" if said else "")
    return "no readable /etc/os-release" + (why if ev.exit_status else "")


def select(collector: HostCollector, items: list[pytest.Item], markexpr: str) -> None:
    """After -k/-m: which probes the selected checks need, and the hosts whose drain (Q-002) runs, so
    that Q-001 and triage judge their queue as the drain leaves it (the suite's flush is not the host's).
    A run is an image gate when its marker expression (-m) leaves only static checks: then only static
    probes run (a -k that happens to pick static checks still reads the live system: triage needs it)."""
    metas = []
    for item in items:
        meta = meta_of(item)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if meta is None or "host_target" not in params:
            continue
        metas.append(meta)
        if meta.id == "Q-002":
            collector.selection.drain_hosts.add(params["host_target"].id)
    # Host by host (each host's checks in their usual order): a host's facts are needed from its first
    # check to its last only, so they can be collected just ahead and let go right after.
    rank = {host: i for i, host in enumerate(collector.targets)}
    items.sort(key=lambda item: rank.get(host_of(item) or "", -1))
    collector.selection.order = list(dict.fromkeys(h for h in map(host_of, items) if h is not None))
    collector.selection.static_only = bool(markexpr) and bool(metas) and all(m.static for m in metas)
    collector.selection.intrusive = any(m.intrusive for m in metas)


def host_of(item: Any) -> str | None:
    params = getattr(getattr(item, "callspec", None), "params", {})
    target = params.get("host_target") if isinstance(params, dict) else None
    return target.id if target is not None else None


FACTS = pytest.StashKey[HostFacts]()


def facts_fixture(request: pytest.FixtureRequest, collector: HostCollector, target: HostTarget) -> HostFacts:
    host_facts = collector.facts_for(target)
    host_facts.start_check()
    request.node.stash[FACTS] = host_facts
    if host_facts.error:
        raise HostUnreachable(host_facts.error)
    return host_facts
