"""Evidence: what one probe printed on one host, exactly as it came back."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class Evidence:
    """The result of one read-only probe command.

    `error` is set when the command could not produce a result at all (timeout, lost
    connection); exit_status is then None. A non-zero exit status is not an error here:
    many probes signal facts through it (ausearch exits 1 on "<no matches>").

    `truncated` is the cap in bytes (--max-probe-output) when the host printed more than that on
    stdout or stderr: only the first `truncated` bytes of each stream were kept. The parsers then
    judge nothing from it (`parsers.parse`), so a check never passes on half an output.
    """

    probe: str
    command: str
    exit_status: int | None
    stdout: str
    stderr: str
    duration: float = 0.0
    error: str | None = None
    truncated: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_status == 0

    def to_dict(self) -> dict[str, Any]:
        # The fields in their order, as dataclasses.asdict gives them (every value is a str, number or None:
        # nothing to copy deeply), without its recursion: a fleet's evidence is turned into dicts once each.
        data = {"probe": self.probe, "command": self.command, "exit_status": self.exit_status,
                "stdout": self.stdout, "stderr": self.stderr, "duration": self.duration, "error": self.error}
        if self.truncated is not None:  # (only when cut: older readers and recorded files stay as they were)
            data["truncated"] = self.truncated
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(
            probe=str(data["probe"]),
            command=str(data["command"]),
            exit_status=None if data.get("exit_status") is None else int(data["exit_status"]),
            stdout=str(data.get("stdout", "")),
            stderr=str(data.get("stderr", "")),
            duration=float(data.get("duration", 0.0)),
            error=data.get("error"),
            truncated=None if data.get("truncated") is None else int(data["truncated"]),
        )

    def digest(self) -> str:
        """A short stable hash of what the host printed (for results.json)."""
        fields: list[Any] = [self.command, self.exit_status, self.stdout, self.stderr, self.error]
        if self.truncated is not None:
            fields.append(self.truncated)
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


def evidence_id(data: dict[str, Any]) -> str:
    """The id of one probe run in results.json ("evidence" of a host, a record's "evidence_refs"):
    the probe's name and a hash of everything recorded, so equal ids always mean equal evidence,
    whichever run, worker or merged file they come from."""
    payload = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return f"{data.get('probe')}@{hashlib.sha256(payload.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def evidence(probe: str, stdout: str = "", stderr: str = "", exit_status: int | None = 0,
             command: str | None = None, error: str | None = None, truncated: int | None = None) -> Evidence:
    """Build evidence by hand (tests, parsers' fuzzing)."""
    return Evidence(probe=probe, command=command or probe, exit_status=exit_status,
                    stdout=stdout, stderr=stderr, error=error, truncated=truncated)
