"""Run probes on a host: each read-only, with LC_ALL=C and a timeout, concurrently, once.

The command sent to the host is the probe's command wrapped as
`LC_ALL=C [MAIL_CONFIG=DIR] PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin timeout -k 5 T sh -c '<command>'`:
the host's own `timeout` ends a hung command (so nothing is left running there), and the
client gives up a little later still, in case the transport itself hangs. The sbin
directories are appended because an SSH login of a non-root user on Debian has no sbin in
its PATH, where getenforce, semanage, restorecon and postconf live.

With `--sudo`, only privileged probes use sudo, and sudo runs the real command, never a shell:
`... timeout -k 5 T sh -c 'sudo -n semanage boolean -l'` (the `sh` and `timeout` run as the login
user). A pipeline gets `sudo -n` on each stage (`sudo -n ausearch ... | sudo -n audit2why`);
compound probes declare their own `sudo_form` (probes.py). So a sudoers drop-in that
lists exact commands (contrib/sudoers.d/postfix-compliance) is enough, and no shell is ever
allowed as root.
"""

from __future__ import annotations

import concurrent.futures
import re
import shlex
import threading
import time
from typing import Any, Iterable

from postfix_compliance.backends.hostkeys import CommandTimeout, ConnectError, ConnectionLost
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.facts.probes import Probe

DEFAULT_TIMEOUT = 30.0
CLIENT_GRACE = 10.0  # seconds the client waits beyond the host-side timeout
TIMEOUT_EXIT = 124  # what coreutils' timeout exits with when it had to stop the command
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"

_WRAPPED = re.compile(r"^LC_ALL=C (?:MAIL_CONFIG=\S+ )?(?:PATH=\S+ )?(?:sudo -n )?timeout -k 5 [0-9.]+ sh -c "
                      r"(?P<cmd>.*?)(?: </dev/null)?$", re.S)

# Postfix's own commands take the instance as `-c DIR`: through sudo, MAIL_CONFIG is not kept.
POSTFIX_TOOLS = ("postfix", "postqueue", "postsuper", "postconf", "postcat", "postmap")

# What sudo says when it will not run a command for us (as opposed to the command failing).
_SUDO_REFUSED = re.compile(r"^sudo: (?:a password is required|a terminal is required|sorry, you must have a tty"
                           r"|.*is not allowed to execute|.*is not in the sudoers file|.*may not run sudo).*$",
                           re.MULTILINE | re.IGNORECASE)


def _split_pipeline(command: str) -> list[str] | None:
    """The stages of a plain pipeline (`a | b`), or None for anything compound (`;`, `&&`,
    `||`, `&`, loops, redirections at top level are fine). Quotes and `$(...)` are skipped."""
    stages, current, depth, i = [], [], 0, 0
    quote: str | None = None
    while i < len(command):
        ch = command[i]
        if quote:
            if ch == "\\" and quote == '"' and i + 1 < len(command):
                current.append(command[i:i + 2])
                i += 2
                continue
            if ch == quote:
                quote = None
            current.append(ch)
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == "\\" and i + 1 < len(command):
            current.append(command[i:i + 2])
            i += 2
            continue
        elif command.startswith("$(", i):
            depth += 1
            current.append("$(")
            i += 2
            continue
        elif ch == ")" and depth:
            depth -= 1
            current.append(ch)
        elif depth:
            current.append(ch)
        elif ch == "|":
            if command.startswith("||", i):
                return None
            stages.append("".join(current))
            current = []
        elif ch in ";&\n`" or (ch == "(" and not "".join(current).strip()):
            return None
        else:
            current.append(ch)
        i += 1
    if quote or depth:
        return None
    stages.append("".join(current))
    stages = [s.strip() for s in stages]
    for stage in stages:
        first = stage.split(None, 1)[0] if stage else ""
        if not first or "=" in first or first in ("for", "while", "until", "if", "case", "{", "!", "exec"):
            return None
    return stages


def sudo_prefix(sudo_user: str | None = None) -> str:
    return f"sudo -n -u {shlex.quote(sudo_user)} " if sudo_user else "sudo -n "


def sudo_command(probe: Probe, mail_config: str | None = None, sudo_user: str | None = None) -> str:
    """The command a privileged probe runs with --sudo: sudo in front of the real program(s)."""
    prefix = sudo_prefix(sudo_user)
    if probe.sudo_form is not None:
        return probe.sudo_form.replace("{sudo}", prefix)
    stages = _split_pipeline(probe.command)
    if stages is None:
        raise ValueError(f"privileged probe {probe.name} is a compound command: give it a sudo_form "
                         f"(postfix_compliance.facts.probes.Probe)")
    out = []
    for stage in stages:
        program, _, rest = stage.partition(" ")
        if mail_config and program in POSTFIX_TOOLS:
            rest = f"-c {shlex.quote(mail_config)} {rest}".strip()
        out.append(f"{prefix}{program} {rest}".strip())
    return " | ".join(out)


def wrap_command(command: str, timeout: float, mail_config: str | None = None) -> str:
    """The command sent to the host (for a privileged probe with --sudo, `command` is already its
    sudo form, see `sudo_command`: sudo goes inside, never around `timeout` or `sh`)."""
    env = "LC_ALL=C "
    if mail_config:
        env += f"MAIL_CONFIG={shlex.quote(mail_config)} "
    env += f"PATH=$PATH:{SBIN_PATH} "
    # </dev/null: no probe reads input, and some tools change behaviour when stdin is a pipe.
    return f"{env}timeout -k 5 {timeout:g} sh -c {shlex.quote(command)} </dev/null"


def unwrap_command(wrapped: str) -> str:
    """The probe's own command inside a wrapped one (or the command itself if not wrapped)."""
    match = _WRAPPED.match(wrapped)
    if not match:
        return wrapped
    parts = shlex.split(match.group("cmd"))
    return parts[0] if len(parts) == 1 else wrapped


class ProbeRunner:
    """Runs probes through one testinfra host (one connection, reused by every probe).

    `connect()` opens the host's connection once, before any thread uses it; a connection
    that is lost later is remembered in `lost` (one line) and every later probe fails fast
    with it, so a host that drops mid-run is one error, not a mix of half-collected facts."""

    def __init__(self, host: Any, timeout: float = DEFAULT_TIMEOUT, mail_config: str | None = None,
                 sudo: bool = False, max_parallel: int = 16, sudo_user: str | None = None):
        self.host = host
        self.timeout = timeout
        self.mail_config = mail_config
        self.sudo = sudo
        self.sudo_user = sudo_user
        sessions = getattr(host.backend, "max_sessions", None)
        self.max_parallel = min(max_parallel, sessions) if sessions else max_parallel
        self.lost: str | None = None
        self._lost_lock = threading.Lock()

    def connect(self) -> None:
        """Open the host's connection now (a no-op for backends without one); raises ConnectError."""
        backend = self.host.backend
        if getattr(backend, "SUITE_BACKEND", False):
            backend.connect()

    def command_for(self, probe: Probe) -> str:
        if self.sudo and probe.privileged:
            return wrap_command(sudo_command(probe, self.mail_config, self.sudo_user), self.timeout,
                                self.mail_config)
        return wrap_command(probe.command, self.timeout, self.mail_config)

    def run(self, probe: Probe) -> Evidence:
        backend = self.host.backend
        started = time.monotonic()
        replay = getattr(backend, "replay", None)
        if replay is not None:  # recorded evidence: no command runs anywhere
            return replay(probe.name, probe.command)

        def failed(error: str) -> Evidence:
            return Evidence(probe.name, probe.command, None, "", "", time.monotonic() - started, error=error)

        if self.lost:
            return failed(self.lost)
        try:
            wrapped = self.command_for(probe)
        except ValueError as exc:
            return failed(str(exc))
        try:
            if getattr(backend, "ACCEPTS_TIMEOUT", False):
                result = backend.run(wrapped, timeout=self.timeout + CLIENT_GRACE)
            else:
                result = backend.run(wrapped)
        except CommandTimeout:
            return failed(f"timed out after {self.timeout:g}s (no answer)")
        except ConnectionLost as exc:
            with self._lost_lock:
                self.lost = self.lost or str(exc)
            return failed(str(exc))
        except ConnectError as exc:
            return failed(str(exc))
        except Exception as exc:  # a transport failure is evidence of its own kind
            return failed(f"{type(exc).__name__}: {exc}".strip())
        duration = time.monotonic() - started
        stdout, stderr = _text(result.stdout_bytes), _text(result.stderr_bytes)
        if result.exit_status == TIMEOUT_EXIT and duration >= self.timeout * 0.9:
            return Evidence(probe.name, probe.command, result.exit_status, stdout, stderr, duration,
                            error=f"timed out after {self.timeout:g}s")
        if self.sudo and probe.privileged and result.exit_status != 0:
            refused = _SUDO_REFUSED.search(stderr)
            if refused:
                return Evidence(probe.name, probe.command, result.exit_status, stdout, stderr, duration,
                                error=f"sudo refused it: {refused.group(0).strip()} (see "
                                      f"contrib/sudoers.d/postfix-compliance)")
        return Evidence(probe.name, probe.command, result.exit_status, stdout, stderr, duration)

    def run_many(self, probes: Iterable[Probe]) -> dict[str, Evidence]:
        """Run probes concurrently; every probe gets a result, a timeout included.

        Each probe has its own client-side deadline, counted from when it starts (a probe
        queued behind slow ones is not cut short for waiting), and the whole batch a hard cap."""
        probes = list(probes)
        results: dict[str, Evidence] = {}
        if not probes:
            return results
        workers = max(1, min(self.max_parallel, len(probes)))
        limit = self.timeout + CLIENT_GRACE
        starts: dict[str, float] = {}

        def timed(probe: Probe) -> Evidence:
            starts[probe.name] = time.monotonic()
            return self.run(probe)

        pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
        begun = time.monotonic()
        hard_cap = begun + limit * -(-len(probes) // workers) + CLIENT_GRACE
        futures = {pool.submit(timed, p): p for p in probes}
        try:
            for future, probe in futures.items():
                while True:
                    now = time.monotonic()
                    start = starts.get(probe.name)
                    until = min(hard_cap, (start + limit) if start is not None else hard_cap)
                    try:
                        results[probe.name] = future.result(timeout=max(0.0, min(until - now, 1.0)))
                        break
                    except concurrent.futures.TimeoutError:
                        if time.monotonic() >= until:
                            results[probe.name] = Evidence(probe.name, probe.command, None, "", "", limit,
                                                           error=f"timed out after {self.timeout:g}s (no answer)")
                            break
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return results


def _text(data: bytes) -> str:
    # Hosts print in their own encoding; never fail on it: undecodable bytes become U+FFFD.
    return data.decode("utf-8", errors="replace")
