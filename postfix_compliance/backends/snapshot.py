"""`snapshot://PATH`: a testinfra backend that replays a host's recorded evidence offline.

A snapshot is one readable JSON file per host (see `SNAPSHOT_FORMAT`). Several records for
the same probe form a sequence, replayed in order, the last repeating: that is how queue
polls replay a queue that drains (or does not).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from testinfra.backend import base

from postfix_compliance.errors import UsageError
from postfix_compliance.facts.collect import unwrap_command
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.inputfiles import load_json

SNAPSHOT_FORMAT = "postfix-compliance-snapshot/1"


def load_snapshot(path: str) -> dict[str, Any]:
    """Read and validate a snapshot file; any problem is one UsageError line naming the file."""
    data = load_json(path, "snapshot")
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        raise UsageError(f"snapshot {path}: not a snapshot (expected \"format\": \"{SNAPSHOT_FORMAT}\")")
    records = data.get("evidence")
    if not isinstance(records, list) or not records:
        raise UsageError(f"snapshot {path}: \"evidence\" must be a non-empty list")
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("probe"), str) \
                or not isinstance(record.get("command"), str):
            raise UsageError(f"snapshot {path}: evidence[{index}] needs string \"probe\" and \"command\"")
        for key in ("stdout", "stderr"):
            if not isinstance(record.get(key, ""), str):
                raise UsageError(f"snapshot {path}: evidence[{index}].{key} must be a string")
        status = record.get("exit_status")
        # bool is an int to Python, but `true` is no exit status.
        if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
            raise UsageError(f"snapshot {path}: evidence[{index}].exit_status must be an integer or null, "
                             f"not {_shown(status)}")
        duration = record.get("duration", 0.0)
        if not isinstance(duration, (int, float)) or isinstance(duration, bool) or not 0 <= duration < float("inf"):
            raise UsageError(f"snapshot {path}: evidence[{index}].duration must be a number of seconds, "
                             f"not {_shown(duration)}")
        if record.get("error") is not None and not isinstance(record["error"], str):
            raise UsageError(f"snapshot {path}: evidence[{index}].error must be a string or null")
        cap = record.get("truncated")  # the output cap in bytes, when the host printed more
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 0):
            raise UsageError(f"snapshot {path}: evidence[{index}].truncated must be a number of bytes or null, "
                             f"not {_shown(cap)}")
    if data.get("host") is not None and not isinstance(data["host"], str):
        raise UsageError(f"snapshot {path}: \"host\" must be a string")
    return data


def _shown(value: Any) -> str:
    """A wrong value for an error line: repr() (control characters escaped), cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def snapshot_document(host: str, evidence: list[Evidence], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"format": SNAPSHOT_FORMAT, "host": host, **(meta or {}),
            "evidence": [e.to_dict() for e in evidence]}


class SnapshotBackend(base.BaseBackend):
    NAME = "snapshot"

    def __init__(self, hostspec: str, *args: Any, **kwargs: Any):
        self.path = hostspec
        data = load_snapshot(hostspec)
        self.recorded_host = str(data.get("host") or os.path.basename(hostspec))
        self.meta = {k: v for k, v in data.items() if k != "evidence"}
        self._sequences: dict[str, list[Evidence]] = {}
        self._by_command: dict[str, str] = {}
        for record in data["evidence"]:
            ev = Evidence.from_dict(record)
            self._sequences.setdefault(ev.probe, []).append(ev)
            self._by_command.setdefault(ev.command, ev.probe)
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        super().__init__(self.recorded_host, *args, **kwargs)

    def get_pytest_id(self) -> str:
        return "snapshot://" + self.path

    def replay(self, probe: str, command: str) -> Evidence:
        with self._lock:
            sequence = self._sequences.get(probe)
            if sequence is None:
                probe = self._by_command.get(command, probe)
                sequence = self._sequences.get(probe)
            if sequence is None:
                return Evidence(probe, command, None, "", "", error="not recorded in this snapshot")
            index = self._served.get(probe, 0)
            self._served[probe] = index + 1
            return sequence[min(index, len(sequence) - 1)]

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        """testinfra's interface: a command recorded in the snapshot replays; others fail (127)."""
        inner = unwrap_command(self.quote(command, *args))
        probe = self._by_command.get(inner)
        if probe is None:
            return self.result(127, inner.encode(), b"", f"{inner}: not recorded in snapshot\n".encode())
        ev = self.replay(probe, inner)
        return self.result(ev.exit_status if ev.exit_status is not None else 255, inner.encode(),
                           ev.stdout.encode(), ev.stderr.encode())
