"""Transport: one registry names every backend a host URL can use.

testinfra's own backends are taken as they are, except where the suite needs a safer or
faster one: `paramiko://` and `ssh://` (and `safe-ssh://`) are the suite's own backends, which
verify host keys, reuse one connection per host and put a deadline on every step (see
docs/ssh.md); plus `snapshot://`, which replays recorded evidence offline, and `image://`, which
runs an unbooted image root's programs in a sandbox (image_sandbox).
"""

from __future__ import annotations

import importlib
import re
import urllib.parse
from typing import Any

import testinfra.backend
import testinfra.host

from postfix_compliance.errors import UsageError

BACKENDS: dict[str, str] = {
    **testinfra.backend.BACKENDS,
    "paramiko": "postfix_compliance.backends.paramiko_safe.SafeParamikoBackend",
    "ssh": "postfix_compliance.backends.ssh_safe.SafeSshBackend",
    "safe-ssh": "postfix_compliance.backends.ssh_safe.SafeSshBackend",
    "snapshot": "postfix_compliance.backends.snapshot.SnapshotBackend",
    "image": "postfix_compliance.backends.image_sandbox.ImageBackend",
}

# Schemes whose rest is a file system path, relative or absolute, not a network location.
PATH_SCHEMES = ("snapshot", "image")

# A host given without a scheme, as testinfra takes it: [USER@]HOST[:PORT][?OPTIONS], HOST a name, an IPv4
# address or a bracketed IPv6 one. Anything else (`ssh//root@mail1`, `snapshot:/x`) is a mistyped URL, refused
# here rather than looked up in DNS as the name before its first ':' or '/'.
_BARE_HOST = re.compile(r"(?:[^@/\s:?#\[\]]+@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::[0-9]+)?(?:\?[^#\s]*)?")

# Options only the suite's own backends take (class attribute SUITE_BACKEND); testinfra's get none.
TRANSPORT_OPTIONS = ("known_hosts", "accept_new_host_keys", "connect_timeout", "command_timeout")


def backend_class(scheme: str) -> type:
    try:
        classpath = BACKENDS[scheme]
    except KeyError:
        raise UsageError(
            f"unknown host URL scheme {scheme!r}: use one of {', '.join(sorted(BACKENDS))}") from None
    module, name = classpath.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def with_scheme(spec: str, default_scheme: str) -> str:
    """A URL as given, or a bare host name with `default_scheme://` in front; a mistyped URL is a UsageError."""
    if spec in ("local", "local://") or "://" in spec:
        return spec
    if not _BARE_HOST.fullmatch(spec):
        raise UsageError(f"bad host URL {spec!r}: use SCHEME://[USER@]HOST[:PORT], snapshot://PATH, image://ROOT, "
                         "local, or a host name")
    return f"{default_scheme}://{spec}"


def parse_host_url(spec: str, default_scheme: str = "paramiko") -> tuple[str, str | None, dict[str, Any]]:
    """`paramiko://root@mail1?timeout=5` -> ("paramiko", "root@mail1", {...}); a bare name takes
    `default_scheme` (testinfra's `--connection`, else paramiko, as testinfra does)."""
    spec = spec.strip()
    if not spec:
        raise UsageError("empty host in --hosts")
    if spec == "local" or spec == "local://":
        return "local", None, {}
    spec = with_scheme(spec, default_scheme)
    scheme = urllib.parse.urlparse(spec).scheme
    if scheme in PATH_SCHEMES:
        path = spec[len(scheme) + 3:]
        if not path:
            raise UsageError(f"bad host URL {spec!r}: {scheme}:// needs a path")
        return scheme, path, {}
    if not scheme:
        raise UsageError(f"bad host URL {spec!r}")
    try:
        host, kwargs = testinfra.backend.parse_hostspec(spec)
    except Exception as exc:  # urllib raises ValueError for e.g. a bad port
        raise UsageError(f"bad host URL {spec!r}: {exc}") from None
    try:  # checked here, once: the backends would each fail on it later, differently
        port = urllib.parse.urlparse(spec).port  # ValueError: not a number, or above 65535
    except ValueError:
        port = 0
    if port == 0:
        raise UsageError(f"bad host URL {spec!r}: the port must be a number from 1 to 65535")
    kwargs.pop("connection", None)
    if scheme != "local" and not host:
        raise UsageError(f"bad host URL {spec!r}: no host name")
    return scheme, host or None, kwargs


def make_host(spec: str, **options: Any) -> testinfra.host.Host:
    """A testinfra Host for a URL, through this registry. Options are defaults the URL may override.

    `sudo` / `sudo_user` (options or `?sudo=true&sudo_user=u` in the URL) never reach the backend:
    testinfra would run every command as `sudo /bin/sh -c ...`, which needs a root shell. They are
    kept on the backend as `probe_sudo` / `probe_sudo_user`, and the probe runner puts `sudo -n`
    in front of the privileged probes' own commands only (see facts/collect.py)."""
    scheme, name, kwargs = parse_host_url(spec)
    for key, value in options.items():
        if value is not None:
            kwargs.setdefault(key, value)
    sudo = _truthy(kwargs.pop("sudo", False))
    sudo_user = kwargs.pop("sudo_user", None)
    klass = backend_class(scheme)
    if not getattr(klass, "SUITE_BACKEND", False):
        for key in TRANSPORT_OPTIONS:
            kwargs.pop(key, None)
    backend = klass(**kwargs) if scheme == "local" else klass(name, **kwargs)
    backend.probe_sudo = sudo
    backend.probe_sudo_user = sudo_user or None
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes")
