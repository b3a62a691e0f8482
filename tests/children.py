"""Child processes of the project's tests (servers, replay hosts): their streams kept apart, every read bounded.

A child's stdout carries its protocol ("ready ..." and the like) and nothing else; its stderr (warnings a
library prints at import, logs) goes to a file, so a warning is never taken for a protocol line and a full
stderr pipe never stalls the child. `read_line` waits for one line until a deadline and fails at once on a
line it did not expect, with that line and the tail of stderr: never a hang, never a read to a child's end.
tests/test_bounded_waits.py holds the tests to reading a child's pipe only through here."""

from __future__ import annotations

import os
import select
import subprocess
import time


class ChildFailed(AssertionError):
    """The child said something else, said nothing in time, or ended: the message names what it printed."""


def start(argv: list[str], *, stderr_path: str, cwd: str | None = None,
          env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err)
    proc.stderr_path = stderr_path  # type: ignore[attr-defined]
    proc.pending = b""  # type: ignore[attr-defined]  # read past the last line returned
    return proc


def stderr_tail(proc: subprocess.Popen, limit: int = 2000) -> str:
    try:
        with open(proc.stderr_path, "rb") as handle:  # type: ignore[attr-defined]
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - limit))
            return handle.read().decode(errors="replace")
    except OSError as exc:
        return f"(stderr unreadable: {exc})"


def _name(proc: subprocess.Popen) -> str:
    args = proc.args if isinstance(proc.args, list) else [str(proc.args)]
    shown = [os.path.basename(str(a)) if i < 2 else str(a) for i, a in enumerate(args[:3])]
    return " ".join(shown) + (" ..." if len(args) > 3 else "")


def read_line(proc: subprocess.Popen, *, expect: str, timeout: float) -> str:
    """The child's next stdout line, which must start with `expect`, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    buf: bytes = proc.pending  # type: ignore[attr-defined]
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChildFailed(f"{_name(proc)}: no line within {timeout}s on stdout (so far: {buf[-500:]!r}); "
                              f"stderr ends:\n{stderr_tail(proc)}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            try:
                status = proc.wait(5)
            except subprocess.TimeoutExpired:
                status = "unknown (stdout closed, still running)"
            raise ChildFailed(f"{_name(proc)}: exited with status {status} before a line starting {expect!r} "
                              f"(stdout: {buf[-500:]!r}); stderr ends:\n{stderr_tail(proc)}")
        buf += chunk
    line, proc.pending = buf.split(b"\n", 1)  # type: ignore[attr-defined]
    text = line.decode(errors="replace")
    if not text.startswith(expect):
        raise ChildFailed(f"{_name(proc)}: printed {text!r} where a line starting {expect!r} was expected; "
                          f"stderr ends:\n{stderr_tail(proc)}")
    return text


def stop(proc: subprocess.Popen, timeout: float = 30) -> str:
    """SIGTERM, SIGKILL past `timeout`; what the child printed on stdout after the lines already read."""
    if proc.poll() is None:
        proc.terminate()
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
    return (proc.pending + (out or b"")).decode(errors="replace")  # type: ignore[attr-defined]
