"""What one run keeps in pytest's stash: its hosts, its collector and its results stage."""

from __future__ import annotations

import pytest

from postfix_compliance.plugin.targets import HostTarget

TARGETS = pytest.StashKey[list[HostTarget]]()
COLLECTOR = pytest.StashKey[object]()  # the run's HostCollector (plugin/collection.py)
