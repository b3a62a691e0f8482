"""Bounded reading of a command's output: a host cannot make the scanner hold more than a cap.

The transports (`paramiko_safe`, `ssh_safe`, and the probe runner's local runs) read each stream
as it arrives and keep at most `limit` bytes of it; the rest is read and dropped (so the command
still ends and its exit status is known) and the stream is marked cut. Memory is then bounded by
the cap, whatever the host prints.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time

from postfix_compliance.errors import CommandTimeout

CHUNK = 65536


class Capped:
    """One stream's bytes, up to `limit` (None: no limit); `cut` once more than that arrived."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self.parts: list[bytes] = []
        self.kept = 0
        self.seen = 0

    def add(self, data: bytes) -> None:
        self.seen += len(data)
        if self.limit is None:
            self.parts.append(data)
            self.kept += len(data)
            return
        room = self.limit - self.kept
        if room > 0:
            part = data[:room]
            self.parts.append(part)
            self.kept += len(part)

    @property
    def cut(self) -> bool:
        return self.limit is not None and self.seen > self.limit

    def value(self) -> bytes:
        return b"".join(self.parts)


def run_bounded(argv: list[str] | str, timeout: float, limit: int | None, shell: bool = False
                ) -> tuple[int, bytes, bytes, tuple[bool, bool]]:
    """Run a local process (an `ssh` client, or a probe on this host): (exit status, stdout, stderr,
    (stdout cut, stderr cut)). Past `timeout` the process is killed and CommandTimeout raised."""
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(argv, shell=shell, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = Capped(limit), Capped(limit)
    streams = {proc.stdout: out, proc.stderr: err}
    try:
        with selectors.DefaultSelector() as selector:
            for pipe in streams:
                selector.register(pipe, selectors.EVENT_READ)
            open_pipes = len(streams)
            while open_pipes:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CommandTimeout("no complete answer before the deadline")
                for key, _ in selector.select(min(left, 1.0)):
                    data = os.read(key.fd, CHUNK)
                    if not data:
                        selector.unregister(key.fileobj)
                        open_pipes -= 1
                    else:
                        streams[key.fileobj].add(data)  # type: ignore[index]
        try:
            rc = proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise CommandTimeout("no exit status before the deadline") from None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        for pipe in streams:
            pipe.close()  # type: ignore[union-attr]
    return rc, out.value(), err.value(), (out.cut, err.cut)
