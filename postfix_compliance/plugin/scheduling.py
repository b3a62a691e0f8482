"""pytest-xdist: all checks of a host on one worker, so that its evidence is collected once."""

from __future__ import annotations

from typing import Any

import pytest

from postfix_compliance.plugin.state import TARGETS


@pytest.hookimpl(tryfirst=True)  # before xdist turns `-n N` into `--dist load`
def pytest_cmdline_main(config: pytest.Config) -> None:
    """`-n N` without `--dist`: loadgroup, so that all checks of a host run on one worker and its
    evidence is collected once (an explicit --dist is respected)."""
    # xdist's own hook may already have turned "no" into "load" (hook order follows plugin load
    # order), so ask the command line whether the user chose a --dist.
    args = [str(a) for a in config.invocation_params.args] + list(config.getini("addopts") or [])
    explicit = any(a == "-d" or a.startswith("--dist") for a in args)
    if getattr(config.option, "numprocesses", None) and not explicit \
            and getattr(config.option, "dist", None) in ("no", "load"):
        config.option.dist = "loadgroup"


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist (controller), --dist loadgroup: one work unit per host.

    xdist's own loadgroup relies on rewriting node ids (`item._nodeid`), which pytest 9 no longer
    honours, so it would spread a host's checks over workers. This scheduler groups by the host
    each node id names instead (node ids end in `[CHECK-ID-<host id>]`), without changing them."""
    if config.getoption("dist", None) != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    suffixes = sorted(((f"-{t.id}]", t.id) for t in config.stash[TARGETS]), key=lambda p: -len(p[0]))

    class HostScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            for suffix, host in suffixes:
                if nodeid.endswith(suffix):
                    return f"host:{host}"
            return super()._split_scope(nodeid)

    return HostScheduling(config, log)
