"""`paramiko://`: the suite's paramiko backend — verified host keys, one reused connection, timeouts.

Differences from testinfra's paramiko backend (which it replaces in the registry):
- host keys are verified against known_hosts (`hostkeys.KnownHosts`); an unknown or changed
  key refuses the connection before any authentication or command. `StrictHostKeyChecking no`
  in an ssh config is ignored: only `--accept-new-host-keys` relaxes anything, and only for
  keys never seen before;
- the connection is opened once, under a lock, and shared by every command; each command
  is its own channel on that transport, so probes overlap (at most `max_sessions` at once,
  below OpenSSH's default MaxSessions of 10);
- TCP_NODELAY on the socket: without it every command waits ~40 ms for delayed ACKs;
- every step has a deadline: TCP connect, banner, authentication and each command (a
  watchdog closes a channel that outlives its deadline, so no thread can hang);
- a lost connection is reported as `ConnectionLost` and never silently re-opened in the
  middle of a host's evidence;
- no agent or X11 forwarding, no pty;
- `max_output`: at most that many bytes of each stream are kept (the rest is read and dropped,
  see `bounded`), so a host printing without end cannot take the scanner's memory.
"""

from __future__ import annotations

import glob
import logging
import os
import select
import socket
import threading
import time
from typing import Any

import paramiko
from testinfra.backend import base

from postfix_compliance.backends.bounded import Capped
from postfix_compliance.backends.hostkeys import (AuthRefused, CommandTimeout, ConnectError, ConnectionLost,
                                                  HostKeyRefused, KnownHosts, VerifyPolicy, host_key_name, where,
                                                  prefer_known_keytypes)
from postfix_compliance.errors import UsageError

DEFAULT_CONNECT_TIMEOUT = 10.0
# paramiko logs transport failures with tracebacks; the suite reports them as one line instead.
# Lower this logger's level to debug a connection.
TRANSPORT_LOG = "postfix_compliance.transport.paramiko"
logging.getLogger(TRANSPORT_LOG).setLevel(logging.CRITICAL)
DEFAULT_COMMAND_TIMEOUT = 60.0  # when a caller gives none (the probe runner always does)
MAX_SESSIONS = 8


def describe_socket_error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"connect timed out after {timeout:g}s"
    if isinstance(exc, socket.gaierror):
        return f"name does not resolve: {exc.strerror or exc}"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"[Errno {exc.errno}] {exc.strerror}"
    return f"{type(exc).__name__}: {exc}".strip()


def describe_ssh_error(exc: BaseException, timeout: float) -> str:
    text = str(exc) or type(exc).__name__
    if "banner" in text.lower():
        return f"no SSH server answered within {timeout:g}s ({text})"
    if text in ("No existing session", "Negotiation failed."):
        return f"no SSH key exchange within {timeout:g}s ({text})"
    return text


def load_ssh_config(path: str | None) -> paramiko.SSHConfig:
    """An OpenSSH client config (the given file, else ~/.ssh/config), `Include`s inlined."""
    explicit = path is not None
    path = os.path.expanduser(path or "~/.ssh/config")
    try:
        text = _read_with_includes(path, os.path.expanduser("~/.ssh"), depth=0)
    except FileNotFoundError:
        if explicit:
            raise UsageError(f"--ssh-config {path}: no such file") from None
        text = ""
    except OSError as exc:
        raise UsageError(f"ssh config {path}: {exc.strerror}") from None
    config = paramiko.SSHConfig()
    config.parse(text.splitlines(keepends=True))
    return config


def _read_with_includes(path: str, base_dir: str, depth: int) -> str:
    if depth > 16:
        raise UsageError(f"ssh config {path}: Include nested too deeply")
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    out = []
    for line in lines:
        words = line.strip().replace("=", " ", 1).split()
        if words and words[0].lower() == "include":
            for pattern in words[1:]:
                pattern = os.path.expanduser(pattern)
                if not os.path.isabs(pattern):
                    pattern = os.path.join(base_dir, pattern)
                for included in sorted(glob.glob(pattern)):
                    out.append(_read_with_includes(included, base_dir, depth + 1))
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def _yes(value: Any) -> bool:
    return str(value).lower() in ("yes", "true", "1")


def send_eof(channel: paramiko.Channel) -> None:
    """The channel's EOF (stdin at its end), never after its CLOSE.

    paramiko's `shutdown_write()` makes the EOF message under the channel's lock but sends it after
    letting go of the lock. A command that answers within a round trip has its server's CLOSE arrive
    meanwhile, and the transport thread answers it with our CLOSE, which can then go out before the EOF:
    the server gets an EOF for a channel it has closed (or already forgotten). That is a protocol error;
    asyncssh (bench/replay_host.py) drops the whole connection for it, with every other command on it
    (a few hosts a hundred at --prefetch-hosts 16 on a loaded machine, where a thread waits long for
    the GIL). Sent under the lock, the EOF goes out first, or not at all once the channel is closed.
    (paramiko sends outside the lock so as not to wait on a key re-exchange while holding it: here the
    wait is at most paramiko's clear_to_send_timeout, and only if a re-exchange, at 512 MB of traffic on
    one connection, meets the server closing this channel.)"""
    with channel.lock:
        if channel.closed or channel.eof_sent:
            return
        message = channel._send_eof()
        if message is not None:
            channel.transport._send_user_message(message)


class SafeParamikoBackend(base.BaseBackend):
    NAME = "paramiko"
    SUITE_BACKEND = True  # accepts the suite's transport options (see backends.make_host)
    ACCEPTS_TIMEOUT = True  # run(..., timeout=seconds)
    ACCEPTS_IDLE_TIMEOUT = True  # run(..., idle_timeout=seconds)
    ACCEPTS_MAX_OUTPUT = True  # run(..., max_output=bytes): result.truncated = (stdout cut, stderr cut)

    def __init__(self, hostspec: str, ssh_config: str | None = None, ssh_identity_file: str | None = None,
                 timeout: Any = None, known_hosts: str | None = None, accept_new_host_keys: bool = False,
                 connect_timeout: float | None = None, command_timeout: float | None = None,
                 max_sessions: int = MAX_SESSIONS, *args: Any, **kwargs: Any):
        self.host = self.parse_hostspec(hostspec)
        self.ssh_config = ssh_config
        self.ssh_identity_file = ssh_identity_file
        # `?timeout=N` in a host URL (testinfra's spelling) is the connect timeout.
        self.connect_timeout = float(timeout if timeout is not None else connect_timeout or DEFAULT_CONNECT_TIMEOUT)
        self.command_timeout = float(command_timeout or DEFAULT_COMMAND_TIMEOUT)
        self.known_hosts_option = known_hosts
        self.accept_new = bool(accept_new_host_keys)
        self.max_sessions = int(max_sessions)
        self._sessions = threading.BoundedSemaphore(self.max_sessions)
        self._lock = threading.Lock()
        self._client: paramiko.SSHClient | None = None
        self._failure: ConnectError | None = None
        self.connect_seconds: float | None = None
        self.host_key_outcome: str | None = None
        super().__init__(self.host.name, *args, **kwargs)

    # ------------------------------------------------------------------ connection
    def _settings(self) -> dict[str, Any]:
        config = load_ssh_config(self.ssh_config).lookup(self.host.name)
        if config.get("proxyjump"):
            raise UsageError(f"{self.host.name}: ProxyJump is not supported by paramiko://; use ssh:// "
                             "(OpenSSH) or a ProxyCommand")
        hostname = config.get("hostname", self.host.name)
        port = int(self.host.port or config.get("port", 22))
        user = self.host.user or config.get("user")
        identities = [os.path.expanduser(self.ssh_identity_file)] if self.ssh_identity_file else \
            [os.path.expanduser(p) for p in config.get("identityfile", [])]
        alias = config.get("hostkeyalias")
        known = KnownHosts.resolve(self.known_hosts_option,
                                   (config.get("userknownhostsfile") or "").split(),
                                   (config.get("globalknownhostsfile") or "").split(),
                                   accept_new=self.accept_new)
        return {"hostname": hostname, "port": port, "user": user, "identities": identities,
                "key_name": host_key_name(alias, 22) if alias else host_key_name(hostname, port),
                "known": known, "proxycommand": config.get("proxycommand"),
                "identities_only": _yes(config.get("identitiesonly", "no")),
                "password": self.host.password}

    def connect(self) -> paramiko.SSHClient:
        """Open the host's one connection (once, thread-safely) or raise the same ConnectError again."""
        with self._lock:
            if self._client is not None:
                transport = self._client.get_transport()
                if transport is not None and transport.is_active():
                    return self._client
                if self._failure is None:
                    self._failure = ConnectionLost(self._lost_reason(transport))
            if self._failure is not None:
                raise self._failure
            started = time.monotonic()
            try:
                self._client = self._open()
            except ConnectError as exc:
                self._failure = exc
                raise
            self.connect_seconds = time.monotonic() - started
            return self._client

    def _open(self) -> paramiko.SSHClient:
        settings = self._settings()
        timeout = self.connect_timeout
        # Name the address in messages only where the ssh config made it differ from the URL.
        target = where(self.host, settings["hostname"], settings["port"])
        if settings["proxycommand"]:
            sock: Any = paramiko.ProxyCommand(settings["proxycommand"])
        else:
            try:
                sock = socket.create_connection((settings["hostname"], settings["port"]), timeout=timeout)
            except OSError as exc:
                raise ConnectError(f"{target}{describe_socket_error(exc, timeout)}") from None
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        known: KnownHosts = settings["known"]
        keytypes = known.known_keytypes(settings["key_name"])

        def transport_factory(sock: Any, **kwargs: Any) -> paramiko.Transport:
            transport = paramiko.Transport(sock, **kwargs)
            transport.set_log_channel(TRANSPORT_LOG)
            prefer_known_keytypes(transport, keytypes)
            return transport

        client = paramiko.SSHClient()
        policy = VerifyPolicy(known, settings["key_name"])
        client.set_missing_host_key_policy(policy)  # the client has no keys of its own: always asked
        try:
            client.connect(settings["hostname"], port=settings["port"], username=settings["user"],
                           password=settings["password"], key_filename=settings["identities"] or None,
                           look_for_keys=not settings["identities"], allow_agent=not settings["identities_only"],
                           # (with sock= given, `timeout` only bounds the key exchange: a little
                           # longer than the banner wait, whose message says more)
                           sock=sock, timeout=timeout + 2, banner_timeout=timeout, auth_timeout=timeout,
                           channel_timeout=timeout, transport_factory=transport_factory)
        except HostKeyRefused:
            client.close()
            raise
        except paramiko.AuthenticationException as exc:
            client.close()
            user = settings["user"] or "(local user)"
            raise AuthRefused(f"{target}authentication failed for user {user}: {exc}") from None
        except paramiko.SSHException as exc:
            client.close()
            raise ConnectError(f"{target}{describe_ssh_error(exc, timeout)}") from None
        except OSError as exc:
            client.close()
            raise ConnectError(f"{target}{describe_socket_error(exc, timeout)}") from None
        except EOFError:
            client.close()
            raise ConnectError(f"{target}the server closed the connection") from None
        self.host_key_outcome = policy.outcome
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(15)
        return client

    def _lost_reason(self, transport: Any) -> str:
        exc = transport.get_exception() if transport is not None else None
        if exc is None or isinstance(exc, EOFError):
            return "the SSH connection was closed (EOF)"
        if isinstance(exc, OSError) and exc.errno is not None:
            return f"the SSH connection failed: [Errno {exc.errno}] {exc.strerror}"
        return f"the SSH connection failed: {type(exc).__name__}: {exc}".rstrip(": ")

    def is_connected(self) -> bool:
        client = self._client
        transport = client.get_transport() if client else None
        return bool(transport and transport.is_active())

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None
            self._failure = ConnectionLost("the SSH connection was closed by the suite")

    # ------------------------------------------------------------------ commands
    def run(self, command: str, *args: str, timeout: float | None = None, idle_timeout: float | None = None,
            max_output: int | None = None, **kwargs: Any) -> base.CommandResult:
        """`timeout`: for the whole command; `idle_timeout`: for a silence of the command (a batch of
        probes prints after each probe, so a long silence is a stalled link, not a slow probe);
        `max_output`: bytes kept of each stream (`result.truncated` says which were cut)."""
        command = self.get_command(command, *args)
        cmd = self.encode(command)
        out, err = Capped(max_output), Capped(max_output)
        rc = self._exec(cmd, float(timeout or self.command_timeout), idle_timeout, out, err)
        result = self.result(rc, cmd, out.value(), err.value())
        result.truncated = (out.cut, err.cut)  # type: ignore[attr-defined]
        return result

    def _exec(self, command: bytes, timeout: float, idle: float | None, out: Capped, err: Capped) -> int:
        client = self.connect()
        deadline = time.monotonic() + timeout
        with self._sessions:
            transport = client.get_transport()
            if transport is None or not transport.is_active():
                self.connect()  # raises ConnectionLost
            assert transport is not None
            channel = self._open_session(transport, deadline)
            fired = threading.Event()

            def expire() -> None:
                fired.set()
                channel.close()

            # exec_command() and window waits in paramiko have no timeout of their own: a
            # watchdog closes the channel at the deadline, which wakes every wait on it.
            watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
            watchdog.daemon = True
            watchdog.start()
            try:
                return self._exchange(channel, command, deadline, fired, transport, idle, out, err)
            finally:
                watchdog.cancel()
                channel.close()

    def _open_session(self, transport: paramiko.Transport, deadline: float) -> paramiko.Channel:
        delay = 0.01
        while True:
            try:
                return transport.open_session(timeout=max(0.1, deadline - time.monotonic()))
            except paramiko.ChannelException as exc:
                # The server's MaxSessions counts a just-closed session until it has reaped it:
                # a refused open is retried briefly rather than failing the probe.
                if exc.code in (1, 2) and time.monotonic() + delay < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                raise ConnectError(f"the host refused a session: {exc.text}") from None
            except (paramiko.SSHException, EOFError, OSError) as exc:
                if not transport.is_active():
                    self.connect()  # raises ConnectionLost
                raise ConnectError(f"cannot open a channel: {exc}") from None

    def _exchange(self, channel: paramiko.Channel, command: bytes, deadline: float, fired: threading.Event,
                  transport: paramiko.Transport, idle: float | None, out: Capped, err: Capped) -> int:
        def check() -> None:
            if not transport.is_active():
                self.connect()  # raises ConnectionLost
            if fired.is_set() or time.monotonic() >= deadline:
                raise CommandTimeout("no complete answer before the deadline")

        try:
            channel.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            check()
            raise ConnectError(f"exec refused: {exc}") from None
        send_eof(channel)  # stdin at EOF, as with ssh -n: ausearch & co. read a pipe on stdin
        channel.setblocking(False)
        wake = channel.fileno()  # readable when either stream has data or the channel closed
        heard = time.monotonic()
        while True:
            moved = False
            # Read while it arrives (past the cap too: dropped, and the window keeps moving, so the
            # command ends and gives its exit status); only `Capped` decides what is kept.
            while channel.recv_ready():
                out.add(channel.recv(65536))
                moved = True
            while channel.recv_stderr_ready():
                err.add(channel.recv_stderr(65536))
                moved = True
            if channel.eof_received or channel.closed:
                if not (channel.recv_ready() or channel.recv_stderr_ready()):
                    break
                continue
            if moved:
                heard = time.monotonic()
                continue
            check()
            wait = min(1.0, deadline - time.monotonic())
            if idle is not None:
                silent = time.monotonic() - heard
                if silent >= idle:
                    raise CommandTimeout(f"nothing received for {silent:.0f}s")
                wait = min(wait, idle - silent)
            select.select([wake], [], [], max(0.0, wait))
        if not channel.status_event.wait(max(0.0, deadline - time.monotonic())) or channel.exit_status < 0:
            check()
            if channel.exit_status < 0 and channel.status_event.is_set():
                # Closed without an exit status (killed by a signal, or the server gave up).
                return 255
            raise CommandTimeout("no exit status before the deadline")
        return channel.exit_status
