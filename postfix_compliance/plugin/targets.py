"""Which hosts a run checks: --hosts URLs or an Ansible inventory, validated before any is contacted."""

from __future__ import annotations

import dataclasses

import pytest

from postfix_compliance.backends import backend_class, parse_host_url
from postfix_compliance.inventory import resolve_host_specs


@dataclasses.dataclass
class HostTarget:
    spec: str  # the URL as given (or resolved from the inventory)
    id: str  # how the run names the host: "local", "ssh://mail1", ...


def resolve_targets(config: pytest.Config) -> list[HostTarget]:
    """The run's hosts, once each; a bad URL, scheme or snapshot file is a UsageError."""
    specs = resolve_host_specs(config.getoption("hosts", None), config.getoption("ansible_inventory", None),
                               config.getoption("connection", None),
                               reader=config.getoption("inventory_reader", "auto"))
    targets: list[HostTarget] = []
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
    return targets
