"""Transport: one registry names every backend a host URL can use.

testinfra's own backends are taken as they are, except where the suite needs a safer or
faster one (its paramiko and ssh backends are replaced by the suite's), plus `snapshot://`,
which replays recorded evidence offline.
"""

from __future__ import annotations

import importlib
import urllib.parse
from typing import Any

import testinfra.backend
import testinfra.host

from postfix_compliance.errors import UsageError

BACKENDS: dict[str, str] = {
    **testinfra.backend.BACKENDS,
    "snapshot": "postfix_compliance.backends.snapshot.SnapshotBackend",
}


def backend_class(scheme: str) -> type:
    try:
        classpath = BACKENDS[scheme]
    except KeyError:
        raise UsageError(
            f"unknown host URL scheme {scheme!r}: use one of {', '.join(sorted(BACKENDS))}") from None
    module, name = classpath.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def parse_host_url(spec: str) -> tuple[str, str | None, dict[str, Any]]:
    """`paramiko://root@mail1?timeout=5` -> ("paramiko", "root@mail1", {...}); bare names mean ssh."""
    spec = spec.strip()
    if not spec:
        raise UsageError("empty host in --hosts")
    if spec == "local" or spec == "local://":
        return "local", None, {}
    if "://" not in spec:
        spec = "paramiko://" + spec
    scheme = urllib.parse.urlparse(spec).scheme
    if scheme == "snapshot":  # the rest is a file path, relative or absolute, not a network location
        path = spec[len("snapshot://"):]
        if not path:
            raise UsageError(f"bad host URL {spec!r}: snapshot:// needs a file path")
        return scheme, path, {}
    if not scheme:
        raise UsageError(f"bad host URL {spec!r}")
    try:
        host, kwargs = testinfra.backend.parse_hostspec(spec)
    except Exception as exc:  # urllib raises ValueError for e.g. a bad port
        raise UsageError(f"bad host URL {spec!r}: {exc}") from None
    kwargs.pop("connection", None)
    if scheme not in ("local", "snapshot") and not host:
        raise UsageError(f"bad host URL {spec!r}: no host name")
    return scheme, host or None, kwargs


def make_host(spec: str, **options: Any) -> testinfra.host.Host:
    """A testinfra Host for a URL, through this registry. Options are defaults the URL may override."""
    scheme, name, kwargs = parse_host_url(spec)
    for key, value in options.items():
        if value is not None:
            kwargs.setdefault(key, value)
    klass = backend_class(scheme)
    backend = klass(**kwargs) if scheme == "local" else klass(name, **kwargs)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host
