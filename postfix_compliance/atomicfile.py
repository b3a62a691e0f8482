"""The one way the suite writes a file: atomically, and never through a planted name.

Reports and snapshots often go to shared directories (CI workspaces, a node_exporter textfile
directory) and the suite often runs as root. Writing `path + ".tmp"` and renaming it would follow a
symlink someone planted at that predictable name and overwrite its target. Instead the data goes to
a file created exclusively (O_EXCL) under an unpredictable name in the target's own directory, is
flushed to disk, and is renamed over the final path. rename(2) replaces whatever entry is at the
final path (a symlink included) without following it, and a reader sees the old file or the new
one, never half of one.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import Iterable

# Keep the temporary name well under NAME_MAX (255) even when the final name is long.
_PREFIX_CHARS = 60

# Reports carry host evidence (configuration, process lists, audit records): the running user's alone,
# whatever the umask, in directories the suite makes 0700. metrics.prom is the exception (READABLE_MODE):
# node_exporter's textfile collector reads it as another user.
PRIVATE_MODE = 0o600
PRIVATE_EXECUTABLE_MODE = 0o700
READABLE_MODE = 0o644
PRIVATE_DIR_MODE = 0o700


def write_atomic(path: str | os.PathLike[str], data: str | bytes | Iterable[str], mode: int = PRIVATE_MODE) -> None:
    """Write `data` (text is UTF-8) to `path`: a new file, renamed into place. `data` may be an iterable
    of text pieces (e.g. a JSON encoder's `iterencode`): written as they come, never joined in memory.

    `mode` is the final file's exact permission bits, whatever the umask; missing directories are made 0700."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=PRIVATE_DIR_MODE, exist_ok=True)
    prefix = "." + os.path.basename(path)[:_PREFIX_CHARS] + "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".tmp")  # O_EXCL, mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, (str, bytes)):
                handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            else:
                text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=False)
                text.writelines(data)
                text.flush()
                text.detach()
            handle.flush()
            os.fsync(handle.fileno())
            # By descriptor: the name could have been swapped meanwhile, the open file cannot.
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _sync_directory(directory)


def _sync_directory(directory: str) -> None:
    """Make the rename itself durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    """`python -m postfix_compliance.atomicfile [--mode 644] PATH < DATA`: the same, for the scripts."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m postfix_compliance.atomicfile",
                                     description="write standard input to PATH atomically")
    parser.add_argument("--mode", type=lambda text: int(text, 8), default=PRIVATE_MODE, help="octal, e.g. 644")
    parser.add_argument("path")
    args = parser.parse_args(argv)
    try:
        write_atomic(args.path, sys.stdin.buffer.read(), mode=args.mode)
    except OSError as exc:
        print(f"ERROR: cannot write {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
