"""`ssh://`: the suite's OpenSSH backend — strict host keys, one multiplexed connection, timeouts.

Differences from testinfra's ssh backend (which it replaces in the registry):
- `BatchMode=yes` (never a prompt), `StrictHostKeyChecking=yes`, `UpdateHostKeys=no`, and the
  host key is first checked by the suite itself (key exchange only, see `hostkeys`), so an
  unknown or changed key is one line naming host:port and the SHA256 fingerprint, and
  `--accept-new-host-keys` records only keys never seen before;
- one master connection per host (`ControlMaster`, a `ControlPath` in a private temporary
  directory, `ControlPersist` as a safety net); every command is a session multiplexed on it,
  at most `max_sessions` at once (below OpenSSH's default MaxSessions of 10); if the master
  goes away mid-run the host is reported lost instead of silently logging in again;
- a deadline per command (the local ssh client is killed; the host-side `timeout` wrapper of
  the probe runner ends the command there) and `ConnectTimeout` / `ServerAlive*` for the link;
- no agent, X11 or port forwarding; `LogLevel=ERROR` keeps ssh's own chatter out of evidence;
- no password in URLs (BatchMode): keys or an agent only;
- `max_output`: the ssh client's output is read as it arrives and at most that many bytes of each
  stream are kept (`bounded.run_bounded`).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from typing import Any

from testinfra.backend import base

from postfix_compliance.backends import open_backends
from postfix_compliance.backends.bounded import run_bounded
from postfix_compliance.backends.hostkeys import (AuthRefused, CommandTimeout, ConnectError, ConnectionLost,
                                                  HostKeyRefused, KnownHosts, host_key_name, scan_and_verify, where)
from postfix_compliance.backends.paramiko_safe import (DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
                                                       MAX_SESSIONS, describe_socket_error, describe_ssh_error)
from postfix_compliance.errors import UsageError

SSH = "ssh"
_SESSION_REFUSED = re.compile(rb"Session open refused by peer"
                              rb"|open failed: (?:administratively prohibited|Connect failed)")


class SafeSshBackend(base.BaseBackend):
    NAME = "ssh"
    SUITE_BACKEND = True
    ACCEPTS_TIMEOUT = True
    ACCEPTS_MAX_OUTPUT = True  # run(..., max_output=bytes): result.truncated = (stdout cut, stderr cut)

    def __init__(self, hostspec: str, ssh_config: str | None = None, ssh_identity_file: str | None = None,
                 timeout: Any = None, controlpersist: Any = 120, ssh_extra_args: str | None = None,
                 known_hosts: str | None = None, accept_new_host_keys: bool = False,
                 connect_timeout: float | None = None, command_timeout: float | None = None,
                 max_sessions: int = MAX_SESSIONS, controlpath: str | None = None, *args: Any, **kwargs: Any):
        self.host = self.parse_hostspec(hostspec)
        if self.host.password:
            raise UsageError(f"ssh://{self.host.user}:***@{self.host.name}: ssh:// takes no password "
                             "(it runs in BatchMode): use a key (--ssh-identity-file) or an agent")
        if ssh_config and not os.path.isfile(os.path.expanduser(ssh_config)):
            raise UsageError(f"--ssh-config {ssh_config}: no such file")
        self.ssh_config = ssh_config
        self.ssh_identity_file = ssh_identity_file
        self.connect_timeout = float(timeout if timeout is not None else connect_timeout or DEFAULT_CONNECT_TIMEOUT)
        self.command_timeout = float(command_timeout or DEFAULT_COMMAND_TIMEOUT)
        self.controlpersist = int(controlpersist)
        self.extra_args = shlex.split(ssh_extra_args) if ssh_extra_args else []
        self.known_hosts_option = known_hosts
        self.accept_new = bool(accept_new_host_keys)
        self.max_sessions = int(max_sessions)
        self._sessions = threading.BoundedSemaphore(self.max_sessions)
        self._lock = threading.Lock()
        self._dir: str | None = None
        self._connected = False
        self._failure: ConnectError | None = None
        self._strict = "yes"
        self._known: KnownHosts | None = None
        self.connect_seconds: float | None = None
        self.host_key_outcome: str | None = None
        super().__init__(self.host.name, *args, **kwargs)

    # ------------------------------------------------------------------ ssh command lines
    @property
    def control_path(self) -> str:
        # (after cleanup there is no directory: a path that never exists)
        return os.path.join(self._dir or "/nonexistent-postfix-compliance", "cm")

    def _base_args(self, directory: str | None = None) -> list[str]:
        directory = directory or self._dir
        args = [SSH]
        if self.ssh_config:
            args += ["-F", os.path.expanduser(self.ssh_config)]
        # The first value OpenSSH obtains for an option wins: ours come before any extra args.
        args += ["-o", "BatchMode=yes", "-o", f"StrictHostKeyChecking={self._strict}",
                 "-o", "UpdateHostKeys=no", "-o", "CheckHostIP=no",
                 "-o", f"ConnectTimeout={max(1, round(self.connect_timeout))}",
                 "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3",
                 "-o", "ForwardAgent=no", "-o", "ForwardX11=no", "-o", "ClearAllForwardings=yes",
                 "-o", "RequestTTY=no", "-o", "LogLevel=ERROR"]
        if self._known is not None and self.known_hosts_option:
            args += ["-o", f"UserKnownHostsFile={self._known.record_to}", "-o", "GlobalKnownHostsFile=/dev/null"]
        if directory is not None:
            args += ["-o", f"ControlPath={os.path.join(directory, 'cm')}"]
        if self.ssh_identity_file:
            args += ["-i", os.path.expanduser(self.ssh_identity_file)]
        if self.host.user:
            args += ["-l", self.host.user]
        if self.host.port:
            args += ["-p", str(self.host.port)]
        return args + self.extra_args

    def _resolve(self) -> dict[str, str]:
        """OpenSSH's own view of the host's settings (`ssh -G`): name, port, known_hosts files..."""
        try:
            proc = subprocess.run([*self._base_args(), "-G", "--", self.host.name], stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=self.connect_timeout)
        except FileNotFoundError:
            raise ConnectError("the OpenSSH client (ssh) is not installed on this machine") from None
        except subprocess.TimeoutExpired:
            raise ConnectError("`ssh -G` did not answer") from None
        if proc.returncode != 0:
            raise ConnectError(f"ssh config: {_last_line(proc.stderr)}")
        settings: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            key, _, value = line.partition(" ")
            settings.setdefault(key.lower(), value)
        return settings

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        """Verify the host key and open the master connection, once; later calls re-raise a failure."""
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._connected:
                if not os.path.exists(self.control_path):
                    self._cleanup()
                    self._failure = ConnectionLost("the SSH master connection exited (closed by the host?)")
                    raise self._failure
                return
            started = time.monotonic()
            try:
                self._open()
            except ConnectError as exc:
                self._failure = exc
                self._cleanup()
                raise
            self._connected = True
            self.connect_seconds = time.monotonic() - started

    def _open(self) -> None:
        settings = self._resolve()
        hostname = settings.get("hostname", self.host.name)
        port = int(settings.get("port", "22"))
        alias = settings.get("hostkeyalias", "none")
        key_name = host_key_name(alias, 22) if alias and alias != "none" else host_key_name(hostname, port)
        self._known = KnownHosts.resolve(self.known_hosts_option, settings.get("userknownhostsfile", "").split(),
                                         settings.get("globalknownhostsfile", "").split(), self.accept_new)
        target = where(self.host, hostname, port)
        proxied = settings.get("proxycommand", "none") != "none" or settings.get("proxyjump", "none") != "none"
        if proxied:
            # Only OpenSSH can reach the host: it checks the key itself (no fingerprint in its message).
            self._strict = "accept-new" if self.accept_new else "yes"
        else:
            try:
                sock = socket.create_connection((hostname, port), timeout=self.connect_timeout)
            except OSError as exc:
                raise ConnectError(f"{target}{describe_socket_error(exc, self.connect_timeout)}") from None
            try:
                self.host_key_outcome = scan_and_verify(sock, self._known, key_name, self.connect_timeout)
            except HostKeyRefused:
                raise
            except Exception as exc:  # banner or key exchange failure
                raise ConnectError(f"{target}{describe_ssh_error(exc, self.connect_timeout)}") from None
            finally:
                sock.close()
        self._dir = tempfile.mkdtemp(prefix="pfc-ssh-")  # mode 0700: the control socket is private
        open_backends.opened(self)
        argv = [*self._base_args(), "-o", "ControlMaster=yes", "-o", f"ControlPersist={self.controlpersist}",
                "-N", "-f", "--", self.host.name]
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=self.connect_timeout * 2 + 5)
        except subprocess.TimeoutExpired:
            raise ConnectError(f"{target}no SSH session within {self.connect_timeout * 2 + 5:g}s") from None
        if proc.returncode != 0 or not os.path.exists(self.control_path):
            said = " ".join(line.strip() for line in proc.stderr.splitlines() if line.strip()) or \
                f"ssh exited {proc.returncode}"
            if "Permission denied" in said or "Too many authentication failures" in said:
                raise AuthRefused(f"{target}authentication failed: {said}")
            if "Host key verification failed" in said or "REMOTE HOST IDENTIFICATION HAS CHANGED" in said:
                raise HostKeyRefused(f"host key for {key_name} refused by OpenSSH: {said}")
            raise ConnectError(f"{target}{said}")

    def is_connected(self) -> bool:
        return self._connected and self._failure is None and os.path.exists(self.control_path)

    def close(self) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = ConnectionLost("the SSH connection was closed by the suite")
            self._cleanup()

    def _cleanup(self) -> None:
        if self._dir is None:
            return
        if os.path.exists(self.control_path):
            subprocess.run([*self._base_args(), "-O", "exit", "--", self.host.name], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10, check=False)
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None
        self._connected = False
        open_backends.closed(self)

    # ------------------------------------------------------------------ commands
    def run(self, command: str, *args: str, timeout: float | None = None, max_output: int | None = None,
            **kwargs: Any) -> base.CommandResult:
        command = self.get_command(command, *args)
        self.connect()
        directory = self._dir
        if directory is None:  # closed meanwhile: never fall back to a fresh login
            self.connect()
            raise ConnectionLost("the SSH master connection is gone")
        timeout = float(timeout or self.command_timeout)
        # Only ever through the master: if its socket is gone, ProxyCommand=false makes the fallback
        # (a fresh login) fail at once instead of silently reconnecting mid-run.
        argv = [*self._base_args(directory), "-o", "ControlMaster=no", "-o", "ProxyCommand=false", "-T", "--",
                self.host.name, command]
        deadline = time.monotonic() + timeout
        delay = 0.01
        with self._sessions:
            while True:
                # (raises CommandTimeout past the deadline, the ssh client killed)
                rc, stdout, stderr, cut = run_bounded(argv, max(0.1, deadline - time.monotonic()), max_output)
                # The server's MaxSessions counts a just-closed session until it has reaped it.
                if rc == 255 and _SESSION_REFUSED.search(stderr) \
                        and time.monotonic() + delay < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                break
        if rc == 255 and not os.path.exists(self.control_path):
            self.connect()  # raises ConnectionLost
        result = self.result(rc, self.encode(command), stdout, stderr)
        result.truncated = cut  # type: ignore[attr-defined]
        return result


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"
