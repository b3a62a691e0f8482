"""Which hosts a run checks: --hosts URLs or an Ansible inventory, validated before any is contacted.

`--shard K/N` keeps one slice of them (a CI job of N running side by side, joined again by
`python -m postfix_compliance.fleet merge`): a host's slice is sha256 of its id (the target id the run
names it by) modulo N, so it depends on that host alone. Adding or removing a host moves no other host
between slices, and every job of the N resolves the same inventory to the same slices.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

import pytest

from postfix_compliance.backends import backend_class, parse_host_url
from postfix_compliance.errors import UsageError
from postfix_compliance.inventory import resolve_hosts


@dataclasses.dataclass
class HostTarget:
    spec: str  # the URL as given (or resolved from the inventory)
    id: str  # how the run names the host: "local", "ssh://mail1", ...
    inventory_name: str | None = None  # from an Ansible inventory: its name there
    groups: tuple[str, ...] = ()  # and its groups there (Ansible's group_names)


def resolve_targets(config: pytest.Config) -> list[HostTarget]:
    """The run's hosts, once each; a bad URL, scheme or snapshot file is a UsageError. With --shard K/N
    only the hosts of slice K (see the module doc): possibly none, which is not an error."""
    resolved = resolve_hosts(config.getoption("hosts", None), config.getoption("ansible_inventory", None),
                             config.getoption("connection", None),
                             reader=config.getoption("inventory_reader", "auto"))
    targets: list[HostTarget] = []
    for host in resolved:
        spec = host.url
        scheme, name, _ = parse_host_url(spec)
        backend_class(scheme)  # an unknown scheme is a usage error, not 27 errors later
        if scheme == "snapshot":
            from postfix_compliance.backends.snapshot import load_snapshot
            load_snapshot(name or "")  # a bad path or file is a usage error before anything runs
        target_id = "local" if scheme == "local" else f"{scheme}://{name}"
        if any(t.id == target_id for t in targets):
            continue
        targets.append(HostTarget(spec.strip(), target_id, host.inventory_name, host.groups))
    shard_text = config.getoption("shard", None)
    if shard_text is None:
        return targets
    index, count = parse_shard(shard_text)
    kept = [t for t in targets if shard_of(t.id, count) == index]
    if not config.pluginmanager.has_plugin(_PLUGIN_NAME):
        config.pluginmanager.register(_ShardPlugin(index, count, len(kept), len(targets)), _PLUGIN_NAME)
    return kept


# ---------------------------------------------------------------------- --shard K/N
_SHARD = re.compile(r"\s*([0-9]{1,9})\s*/\s*([0-9]{1,9})\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """"K/N" -> (K, N) with 1 <= K <= N; anything else is one UsageError line."""
    match = _SHARD.fullmatch(text or "")
    if not match:
        raise UsageError(f"--shard {text!r}: give K/N, this job's slice K of N (e.g. --shard=2/4)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise UsageError(f"--shard {text!r}: N (the number of slices) must be at least 1")
    if not 1 <= index <= count:
        raise UsageError(f"--shard {text!r}: K must be between 1 and N ({count}); slices count from 1")
    return index, count


def shard_of(target_id: str, count: int) -> int:
    """The slice (1..count) of a host: sha256 of its target id modulo count, the host's alone."""
    digest = hashlib.sha256(target_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


_PLUGIN_NAME = "postfix-compliance-shard"


class _ShardPlugin:
    """What --shard adds to a run (registered by `resolve_targets`, on xdist workers too):

    - a slice without hosts runs nothing: its checks (parametrized over no host) are deselected and the
      exit status is 0, not pytest's 5 ("no tests collected"); the inventory itself was not empty
      (an empty one is still refused, inventory.py). Its results.json has no results, and is merged as such;
    - one terminal line saying which slice ran, and how many of the run's hosts it holds.
    results.json says which slice it holds (`"shard": {"index": K, "count": N}`): see `shard_section`."""

    def __init__(self, index: int, count: int, kept: int, total: int) -> None:
        self.section = {"index": index, "count": count}
        self.kept, self.total = kept, total

    @pytest.hookimpl(tryfirst=True)  # before the suite's own hook reads each item's host
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.kept:
            return
        empty = [i for i in items if "host_target" in getattr(getattr(i, "callspec", None), "params", {})
                 or "host_target" in getattr(i, "fixturenames", ())]
        if empty:
            items[:] = [i for i in items if i not in empty]
            config.hook.pytest_deselected(items=empty)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.kept and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(f"shard {self.section['index']}/{self.section['count']}: "
                                    f"{self.kept} of the run's {self.total} hosts")


def inventory_section(targets: list[HostTarget]) -> dict[str, dict[str, Any]] | None:
    """results.json's "inventory": target id -> {"name", "groups"} for the hosts taken from an Ansible
    inventory (the playbook names them so, the roll-up groups them so), or None when none was."""
    found = {t.id: {"name": t.inventory_name, "groups": list(t.groups)} for t in targets if t.inventory_name}
    return found or None


def shard_section(config: pytest.Config) -> dict[str, int] | None:
    """{"index": K, "count": N} for a --shard run (the results stage adds it to results.json), else None."""
    plugin = config.pluginmanager.get_plugin(_PLUGIN_NAME)
    return dict(plugin.section) if plugin is not None else None
