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
    """

    probe: str
    command: str
    exit_status: int | None
    stdout: str
    stderr: str
    duration: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_status == 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
        )

    def digest(self) -> str:
        """A short stable hash of what the host printed (for results.json)."""
        payload = json.dumps([self.command, self.exit_status, self.stdout, self.stderr, self.error])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def evidence(probe: str, stdout: str = "", stderr: str = "", exit_status: int | None = 0,
             command: str | None = None, error: str | None = None) -> Evidence:
    """Build evidence by hand (tests, parsers' fuzzing)."""
    return Evidence(probe=probe, command=command or probe, exit_status=exit_status,
                    stdout=stdout, stderr=stderr, error=error)
