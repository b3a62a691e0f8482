"""Run probes on a host: each read-only, with LC_ALL=C and a timeout, concurrently, once.

The command sent to the host is the probe's command wrapped as
`LC_ALL=C [MAIL_CONFIG=DIR] timeout -k 5 T sh -c '<command>'`: the host's own `timeout`
ends a hung command (so nothing is left running there), and the client gives up a little
later still, in case the transport itself hangs.
"""

from __future__ import annotations

import concurrent.futures
import re
import shlex
import time
from typing import Any, Iterable

from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.facts.probes import Probe

DEFAULT_TIMEOUT = 30.0
CLIENT_GRACE = 10.0  # seconds the client waits beyond the host-side timeout
TIMEOUT_EXIT = 124  # what coreutils' timeout exits with when it had to stop the command

_WRAPPED = re.compile(r"^LC_ALL=C (?:MAIL_CONFIG=\S+ )?(?:sudo -n )?timeout -k 5 [0-9.]+ sh -c (?P<cmd>.*)$", re.S)


def wrap_command(command: str, timeout: float, mail_config: str | None = None, sudo: bool = False) -> str:
    env = "LC_ALL=C "
    if mail_config:
        env += f"MAIL_CONFIG={shlex.quote(mail_config)} "
    sudo_prefix = "sudo -n " if sudo else ""
    return f"{env}{sudo_prefix}timeout -k 5 {timeout:g} sh -c {shlex.quote(command)}"


def unwrap_command(wrapped: str) -> str:
    """The probe's own command inside a wrapped one (or the command itself if not wrapped)."""
    match = _WRAPPED.match(wrapped)
    if not match:
        return wrapped
    parts = shlex.split(match.group("cmd"))
    return parts[0] if len(parts) == 1 else wrapped


class ProbeRunner:
    """Runs probes through one testinfra host (one connection, reused by every probe)."""

    def __init__(self, host: Any, timeout: float = DEFAULT_TIMEOUT, mail_config: str | None = None,
                 sudo: bool = False, max_parallel: int = 16):
        self.host = host
        self.timeout = timeout
        self.mail_config = mail_config
        self.sudo = sudo
        self.max_parallel = max_parallel

    def run(self, probe: Probe) -> Evidence:
        backend = self.host.backend
        started = time.monotonic()
        replay = getattr(backend, "replay", None)
        if replay is not None:  # recorded evidence: no command runs anywhere
            return replay(probe.name, probe.command)
        wrapped = wrap_command(probe.command, self.timeout, self.mail_config, self.sudo and probe.privileged)
        try:
            result = backend.run(wrapped)
        except Exception as exc:  # a transport failure is evidence of its own kind
            return Evidence(probe.name, probe.command, None, "", "", time.monotonic() - started,
                            error=f"{type(exc).__name__}: {exc}".strip())
        duration = time.monotonic() - started
        stdout, stderr = _text(result.stdout_bytes), _text(result.stderr_bytes)
        if result.exit_status == TIMEOUT_EXIT and duration >= self.timeout * 0.9:
            return Evidence(probe.name, probe.command, result.exit_status, stdout, stderr, duration,
                            error=f"timed out after {self.timeout:g}s")
        return Evidence(probe.name, probe.command, result.exit_status, stdout, stderr, duration)

    def run_many(self, probes: Iterable[Probe]) -> dict[str, Evidence]:
        """Run probes concurrently; every probe gets a result, a timeout included."""
        probes = list(probes)
        results: dict[str, Evidence] = {}
        if not probes:
            return results
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(self.max_parallel, len(probes)))
        futures = {pool.submit(self.run, p): p for p in probes}
        deadline = time.monotonic() + self.timeout + CLIENT_GRACE
        try:
            for future, probe in futures.items():
                remaining = max(0.0, deadline - time.monotonic())
                try:
                    results[probe.name] = future.result(timeout=remaining)
                except concurrent.futures.TimeoutError:
                    results[probe.name] = Evidence(probe.name, probe.command, None, "", "",
                                                   self.timeout + CLIENT_GRACE,
                                                   error=f"timed out after {self.timeout:g}s (no answer)")
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return results


def _text(data: bytes) -> str:
    # Hosts print in their own encoding; never fail on it: undecodable bytes become U+FFFD.
    return data.decode("utf-8", errors="replace")
