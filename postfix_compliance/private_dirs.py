"""Directories the suite reads back from or writes evidence into: another user must not be able to write them.

A reports root on a shared jump host, a change directory whose saved `args` root's `post` replays, a
scheduled run's report sets, fleet run's shard logs: if another local user can write one of them (or
replace it, through a parent they can write), they choose what the suite later runs or trusts. So such
a directory must be a real directory (not a symlink) owned by the user running the suite and not
writable by group or others, and so must each directory above it, or be owned by root, or be sticky
(like /tmp, where nobody can rename what is not theirs). Otherwise the command refuses in one line.

Directories the suite creates are 0700; report files are 0600 (atomicfile.PRIVATE_MODE).
"""

from __future__ import annotations

import os
import stat
import sys

from postfix_compliance.atomicfile import PRIVATE_DIR_MODE
from postfix_compliance.errors import UsageError


def _who(uid: int) -> str:
    try:
        import pwd
        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return f"uid {uid}"


def check_private_dir(path: str, what: str) -> None:
    """UsageError unless `path` is a directory only the running user (and root) can write, all the way up."""
    euid = os.geteuid()
    given = os.path.abspath(path)
    path = os.path.realpath(given)
    if path != given:  # a symlink on the way: whoever can replace it chooses the directory
        _check_above(given, what)
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise UsageError(f"{what} {given}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{what} {path}: is not a directory")
    if st.st_uid != euid:
        raise UsageError(f"{what} {path}: belongs to {_who(st.st_uid)}, not to {_who(euid)} who runs the suite; "
                         "another user must not be able to change what it holds")
    if st.st_mode & 0o022:
        raise UsageError(f"{what} {path}: is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                         f"chmod go-w {path}")
    _check_above(path, what)


def _check_above(path: str, what: str) -> None:
    """Each existing directory above `path`: root's or the running user's, and writable by no one else
    unless sticky; else another user could rename `path` away and put their own in its place."""
    euid = os.geteuid()
    parent = os.path.dirname(path)
    while True:
        try:
            pst = os.stat(parent)  # a symlinked parent is judged by where it leads
        except FileNotFoundError:
            pst = None  # to be created by private_dir, 0700
        except OSError as exc:
            raise UsageError(f"{what} {path}: {parent}: {exc.strerror or exc}") from None
        if pst is not None and (pst.st_uid not in (0, euid)
                                or (pst.st_mode & 0o022 and not pst.st_mode & stat.S_ISVTX)):
            raise UsageError(f"{what} {path}: {parent} above it can be changed by another user "
                             f"(owner {_who(pst.st_uid)}, mode {stat.S_IMODE(pst.st_mode):04o}): "
                             "they could replace the directory")
        if parent == os.path.dirname(parent):
            return
        parent = os.path.dirname(parent)


def private_dir(path: str, what: str) -> str:
    """`path`, created 0700 (with its missing parents) if it is not there, then checked (check_private_dir)."""
    path = os.path.abspath(path)
    if not os.path.lexists(path):
        _check_above(path, what)  # before anything is made there
        try:
            os.makedirs(path, mode=PRIVATE_DIR_MODE, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{what} {path}: cannot be created: {exc.strerror or exc}") from None
    check_private_dir(path, what)
    return os.path.abspath(path)


def main(argv: list[str] | None = None) -> int:
    """`python -m postfix_compliance.private_dirs [--create] WHAT DIR...`: the same check, for the scripts."""
    args = list(sys.argv[1:] if argv is None else argv)
    create = bool(args) and args[0] == "--create"
    if create:
        args = args[1:]
    if len(args) < 2:
        print("usage: python -m postfix_compliance.private_dirs [--create] WHAT DIR...", file=sys.stderr)
        return 4
    what, paths = args[0], args[1:]
    try:
        for path in paths:
            private_dir(path, what) if create else check_private_dir(path, what)
    except UsageError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
