"""Host key verification shared by the suite's SSH backends (paramiko:// and ssh://).

The rule, for both transports: a host's key must already be in a known_hosts file.
- unknown key: refused (one line naming host:port and the SHA256 fingerprint), unless the
  user opted in with `--accept-new-host-keys`, which appends the key to the known_hosts file;
- changed key (the host is known, but not with this key, whatever its type) or a key marked
  `@revoked`: always refused, the opt-in does not change that.

known_hosts files are read the way OpenSSH reads them: plain and hashed (`|1|salt|hash`) host
names, `[host]:port` for ports other than 22, patterns with `*`, `?` and `!negation`, and the
`@revoked` marker. `@cert-authority` lines are ignored (host certificates are not supported).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import hmac
import os
import re
import threading
from typing import Any, Iterable, Iterator

import paramiko

# The connection errors live in errors.py (the fact layer raises and catches them too); imported here
# for this module and re-exported for older importers.
from postfix_compliance.errors import CommandTimeout, ConnectError, ConnectionLost  # noqa: F401

DEFAULT_USER_FILES = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_FILES = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


class HostKeyRefused(ConnectError):
    """The host's key is unknown, changed or revoked: nothing was sent to it (no login, no command)."""


class AuthRefused(ConnectError):
    """The host refused our credentials."""


def error_line(host_id: str, exc: ConnectError) -> str:
    """The one line every check of an unreachable host reports."""
    if isinstance(exc, (HostKeyRefused, AuthRefused)):
        return f"host {host_id} refused: {exc}"
    if isinstance(exc, ConnectionLost):
        return f"host {host_id} dropped the connection: {exc}"
    return f"host {host_id} unreachable: {exc}"


def fingerprint(key_blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob: `SHA256:base64-without-padding`."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key_blob).digest()).decode().rstrip("=")


def where(url_host: Any, hostname: str, port: int) -> str:
    """A message prefix naming the address actually dialled, when it is not the URL's own."""
    if hostname == url_host.name and int(port) == int(url_host.port or 22):
        return ""
    return f"{hostname}:{port}: "


def host_key_name(host: str, port: int) -> str:
    """How known_hosts names a host: `host` on port 22, else `[host]:port`."""
    return host if int(port) == 22 else f"[{host}]:{int(port)}"


@dataclasses.dataclass(frozen=True)
class KnownKey:
    path: str
    line: int
    marker: str | None  # None, "@revoked" or "@cert-authority"
    patterns: str
    keytype: str
    blob: bytes

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def _match_hashed(pattern: str, name: str) -> bool:
    try:
        _, magic, salt, digest = pattern.split("|", 3)
        if magic != "1":
            return False
        mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
        return hmac.compare_digest(mac, base64.b64decode(digest))
    except (ValueError, binascii.Error):
        return False


@functools.lru_cache(maxsize=4096)
def _wildcard(pattern: str) -> re.Pattern[str]:
    """OpenSSH's patterns: `*` and `?` are the only wildcards (`[` is literal, as in `[host]:port`)."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower()))


def patterns_match(patterns: str, name: str) -> bool:
    """OpenSSH's host pattern list: any positive match and no negated match."""
    matched = False
    for pattern in patterns.split(","):
        if not pattern:
            continue
        if pattern.startswith("|"):
            if _match_hashed(pattern, name):
                matched = True
            continue
        negate = pattern.startswith("!")
        if negate:
            pattern = pattern[1:]
        if _wildcard(pattern).fullmatch(name.lower()):
            if negate:
                return False
            matched = True
    return matched


def read_known_hosts(paths: Iterable[str]) -> list[KnownKey]:
    keys: list[KnownKey] = []
    for path in paths:
        try:
            with open(os.path.expanduser(path), encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        except OSError as exc:
            raise ConnectError(f"cannot read known_hosts file {path}: {exc.strerror}") from None
        for number, text in enumerate(lines, 1):
            fields = text.split()
            if not fields or fields[0].startswith("#"):
                continue
            marker = None
            if fields[0].startswith("@"):
                marker, fields = fields[0], fields[1:]
            if len(fields) < 3:
                continue
            try:
                blob = base64.b64decode(fields[2], validate=True)
            except (binascii.Error, ValueError):
                continue
            keys.append(KnownKey(path, number, marker, fields[0], fields[1], blob))
    return keys


_PLAIN = re.compile(r"[^*?!|,]+(?:,[^*?!|,]+)*")


class KnownHostsTable:
    """The keys of a set of known_hosts files, read once, with the plain host names indexed.

    A fleet run asks about every host it connects to; matching each line's patterns for each host
    is quadratic (1,000 hosts and a 1,000-line file: a million pattern matches). Lines that name hosts
    plainly (no wildcard, negation or hash) are found by name; the others are matched as before."""

    def __init__(self, keys: list[KnownKey]):
        self.keys = keys
        self.by_name: dict[str, list[int]] = {}
        self.scan: list[int] = []  # lines with wildcards, negations or hashed names
        for index, key in enumerate(keys):
            if _PLAIN.fullmatch(key.patterns):
                for name in dict.fromkeys(key.patterns.lower().split(",")):
                    self.by_name.setdefault(name, []).append(index)
            else:
                self.scan.append(index)

    def matching(self, name: str) -> list[KnownKey]:
        """The keys whose patterns match `name`, in file order (as OpenSSH reads them)."""
        found = set(self.by_name.get(name.lower(), ()))
        found.update(i for i in self.scan if patterns_match(self.keys[i].patterns, name))
        return [self.keys[i] for i in sorted(found)]


_TABLES: dict[tuple[str, ...], tuple[tuple[Any, ...], KnownHostsTable]] = {}
_TABLES_LOCK = threading.Lock()


def _file_state(path: str) -> tuple[Any, ...]:
    try:
        st = os.stat(os.path.expanduser(path))
    except OSError as exc:
        return (path, type(exc).__name__)
    return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def known_hosts_table(paths: tuple[str, ...]) -> KnownHostsTable:
    """The table of these files, read again whenever one of them changed (a key recorded by
    --accept-new-host-keys, by another worker, or by the operator during the run)."""
    state = tuple(_file_state(p) for p in paths)
    with _TABLES_LOCK:
        cached = _TABLES.get(paths)
        if cached is not None and cached[0] == state:
            return cached[1]
    table = KnownHostsTable(read_known_hosts(paths))
    with _TABLES_LOCK:
        _TABLES[paths] = (state, table)
    return table


@dataclasses.dataclass
class KnownHosts:
    """The known_hosts files for one host: `files` are read, new keys go to `record_to`."""

    files: tuple[str, ...]
    record_to: str
    accept_new: bool = False

    @classmethod
    def resolve(cls, known_hosts: str | None, user_files: Iterable[str] = (), global_files: Iterable[str] = (),
                accept_new: bool = False) -> KnownHosts:
        """`--known-hosts FILE` alone, else the ssh config's files (or OpenSSH's defaults)."""
        if known_hosts:
            path = os.path.abspath(os.path.expanduser(known_hosts))
            return cls((path,), path, accept_new)
        users = [os.path.expanduser(p) for p in (user_files or DEFAULT_USER_FILES) if p and p != "none"]
        globals_ = [os.path.expanduser(p) for p in (global_files or DEFAULT_GLOBAL_FILES) if p and p != "none"]
        record_to = users[0] if users else os.path.expanduser(DEFAULT_USER_FILES[0])
        return cls(tuple(users + globals_), record_to, accept_new)

    def known_keytypes(self, name: str) -> list[str]:
        """The key types known for this host (to offer them first in the key exchange)."""
        types = []
        for key in known_hosts_table(self.files).matching(name):
            if key.marker is None and key.keytype not in types:
                types.append(key.keytype)
        return types

    def verify(self, name: str, keytype: str, blob: bytes) -> str:
        """Accept the key (returns "known" or "recorded") or raise HostKeyRefused, one line."""
        fp = fingerprint(blob)
        entries = known_hosts_table(self.files).matching(name)
        for key in entries:
            if key.marker == "@revoked" and key.blob == blob:
                raise HostKeyRefused(f"host key for {name} is REVOKED ({key.where}): {keytype} {fp}")
        plain = [k for k in entries if k.marker is None]
        if any(k.blob == blob for k in plain):
            return "known"
        if plain:
            known = plain[0]
            raise HostKeyRefused(
                f"host key for {name} has CHANGED: it offers {keytype} {fp}, but {known.where} has "
                f"{known.keytype} {fingerprint(known.blob)}; refusing to connect (possible "
                f"man-in-the-middle; if the change is expected: ssh-keygen -R '{name}' -f {known.path})")
        if not self.accept_new:
            raise HostKeyRefused(
                f"host key for {name} is UNKNOWN: {keytype} {fp} is not in {', '.join(self.files) or '(no file)'}; "
                f"verify the fingerprint and add it to known_hosts (or run once with --accept-new-host-keys)")
        self.record(name, keytype, blob)
        return "recorded"

    _lock = threading.Lock()

    def record(self, name: str, keytype: str, blob: bytes) -> None:
        path = self.record_to
        line = f"{name} {keytype} {base64.b64encode(blob).decode()}\n"
        with self._lock, _locked_append(path) as handle:
            # Another worker may have recorded it meanwhile: check again under the lock.
            handle.seek(0)
            for existing in read_known_hosts([path]):
                if existing.marker is None and patterns_match(existing.patterns, name):
                    if existing.blob == blob:
                        return
                    raise HostKeyRefused(
                        f"host key for {name} has CHANGED while connecting: {existing.where} now has "
                        f"{existing.keytype} {fingerprint(existing.blob)}, it offers {keytype} {fingerprint(blob)}")
            handle.seek(0, os.SEEK_END)
            if handle.tell() and not _ends_with_newline(path):
                handle.write("\n")
            handle.write(line)


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


@contextlib.contextmanager
def _locked_append(path: str) -> Iterator[Any]:
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # xdist workers may record keys at the same time
        try:
            yield handle
        finally:
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


def prefer_known_keytypes(transport: paramiko.Transport, keytypes: list[str]) -> None:
    """Offer the key types known_hosts has for this host first, as OpenSSH does."""
    if not keytypes:
        return
    options = transport.get_security_options()
    available = list(options.key_types)
    wanted: list[str] = []
    for keytype in keytypes:
        candidates = ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if keytype == "ssh-rsa" else [keytype]
        wanted += [c for c in candidates if c in available and c not in wanted]
    if wanted:
        options.key_types = wanted + [k for k in available if k not in wanted]


class VerifyPolicy(paramiko.MissingHostKeyPolicy):
    """paramiko's hook, called for every key because the client is given no host keys of its own."""

    def __init__(self, known: KnownHosts, name: str):
        self.known = known
        self.name = name
        self.outcome: str | None = None

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        self.outcome = self.known.verify(self.name, key.get_name(), key.asbytes())


def scan_and_verify(sock: Any, known: KnownHosts, name: str, timeout: float) -> str:
    """Key exchange only (no authentication, no command): verify the host's key over `sock`."""
    transport = paramiko.Transport(sock)
    transport.set_log_channel("postfix_compliance.transport.paramiko")  # silenced: errors become one line
    try:
        transport.banner_timeout = timeout
        prefer_known_keytypes(transport, known.known_keytypes(name))
        transport.start_client(timeout=timeout + 2)
        key = transport.get_remote_server_key()
        return known.verify(name, key.get_name(), key.asbytes())
    finally:
        transport.close()
