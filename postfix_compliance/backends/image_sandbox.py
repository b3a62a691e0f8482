"""`image://ROOT`: an unbooted image root (an image gate's target), its programs run in a sandbox.

An image from a merge request is untrusted code. testinfra's `chroot://` runs the image's own
`/bin/sh` as root on the runner, and a program that calls chroot(2) twice leaves a chroot. Here every
command runs as follows, and nothing of the image ever runs with a privilege on this machine:

- a **user namespace** whose uid and gid 0..65535 are 1000000.. on this machine (SANDBOX_BASE_ID):
  root in the sandbox is an unprivileged uid here, with capabilities inside its namespaces only;
- an **id-mapped, read-only view** of ROOT (open_tree + mount_setattr(MOUNT_ATTR_IDMAP), Linux 5.12),
  nosuid and nodev, so that the image's root-owned files are the sandbox root's (the policy store
  is 0700) and nothing can be written. The view is mounted in a private mount namespace of the
  suite's (never in this machine's: nothing to clean up, whatever ends the run), and the sandbox's own copy of it is locked read-only: it is
  owned by a less privileged user namespace, so a remount read-write is refused;
- `pivot_root` into the view, the old root detached: nothing of this machine's file system is left
  to climb back to, whatever a program does with chroot(2);
- **no network** (a new network namespace holds only a down loopback), new IPC, UTS and PID
  namespaces with their own /proc, a /dev of null, zero, random and urandom, a private /tmp;
- an **empty environment** but PATH and LC_ALL: a CI runner's variables (its tokens) never reach
  the image's programs, which could otherwise print them into the report.

Needs root (creating the id-mapped view needs CAP_SYS_ADMIN) and util-linux's unshare, nsenter,
pivot_root; on a file system that cannot be id-mapped (overlayfs: a podman image mount),
scripts/image-gate.sh copies the image to a private directory first. docs/operations.md, "Image gates".
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

from testinfra.backend import base

from postfix_compliance.backends import open_backends
from postfix_compliance.backends.bounded import run_bounded
from postfix_compliance.errors import ConnectError

SANDBOX_BASE_ID = 1_000_000  # uid/gid 0 of the image, on this machine; 65536 ids from there
SANDBOX_ID_COUNT = 65536
SETUP_TIMEOUT = 30.0
DEFAULT_COMMAND_TIMEOUT = 60.0
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REQUIRED_TOOLS = ("unshare", "nsenter", "pivot_root", "mount", "umount")

# Run by this machine's /bin/sh inside the new namespaces, before anything of the image: $1 is the
# view, $2 the command. Only after the pivot and the detach is a path resolved in the image.
_ENTER = r"""set -e
v=$1
mount --rbind "$v" "$v"
if [ -d "$v/dev" ]; then
  mount -t tmpfs -o mode=755,size=64k,nosuid tmpfs "$v/dev"
  for d in null zero random urandom; do : > "$v/dev/$d"; mount --bind "/dev/$d" "$v/dev/$d"; done
fi
if [ -d "$v/tmp" ]; then mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev tmpfs "$v/tmp"; fi
if [ -d "$v/proc" ]; then mount -t proc -o nosuid,nodev,noexec proc "$v/proc"; fi
cd "$v"
pivot_root . .
umount -l .
cd /
set +e
exec /bin/sh -c "$2"
"""

# Linux's new mount API (the numbers are the same on every architecture since 5.2).
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442
_OPEN_TREE_CLONE, _AT_RECURSIVE, _AT_EMPTY_PATH, _AT_FDCWD = 1, 0x8000, 0x1000, -100
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV, _MOUNT_ATTR_IDMAP = 0x1, 0x2, 0x4, 0x100000
_MS_PRIVATE = 1 << 18
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x2, 0x4, 0x8
VIEW = "/tmp/image-view"  # in the suite's private mount namespace only
_MOVE_MOUNT_F_EMPTY_PATH = 0x4


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_idmapped_view(root: str, userns: str) -> None:
    """In the calling process's mount namespace: a small tmpfs on /tmp, and on VIEW in it `root`, recursively,
    read-only, nosuid, nodev, its owners mapped through the user namespace file `userns`. Run in a helper
    process that nsenter put in the suite's private mount namespace (see ImageSandbox.start), where that
    /tmp hides this machine's: the sandbox's uid can reach VIEW whatever the modes of the suite's
    directories. Raises OSError."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def check(result: int, what: str) -> int:
        if result < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")
        return result

    userns_fd = os.open(userns, os.O_RDONLY | os.O_CLOEXEC)
    tree = check(libc.syscall(_SYS_OPEN_TREE, _AT_FDCWD, os.fsencode(root),
                              _OPEN_TREE_CLONE | os.O_CLOEXEC | _AT_RECURSIVE), "open_tree")
    attr = _MountAttr(_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV | _MOUNT_ATTR_IDMAP, 0,
                      _MS_PRIVATE, userns_fd)
    check(libc.syscall(_SYS_MOUNT_SETATTR, tree, b"", _AT_EMPTY_PATH | _AT_RECURSIVE, ctypes.byref(attr),
                       ctypes.sizeof(attr)), "an id-mapped mount (mount_setattr)")
    # The root was opened before: the tmpfs may hide it (a root under /tmp).
    check(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, b"mode=0755,size=64k"),
          "a tmpfs for the view")
    os.mkdir(VIEW, 0o755)
    check(libc.syscall(_SYS_MOVE_MOUNT, tree, b"", _AT_FDCWD, os.fsencode(VIEW), _MOVE_MOUNT_F_EMPTY_PATH),
          "move_mount")


class SandboxError(ConnectError):
    """The sandbox could not be made: nothing of the image is run."""


class ImageSandbox:
    """The namespaces and the view for one image root; `argv(command)` runs a command in a fresh sandbox."""

    def __init__(self, root: str):
        self.root = root
        self._holders: list[subprocess.Popen] = []

    def start(self) -> None:
        if os.geteuid() != 0:
            raise SandboxError("the image sandbox needs root (an id-mapped mount); run the gate with sudo")
        missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
        if missing:
            raise SandboxError(f"the image sandbox needs util-linux's {', '.join(missing)}")
        if not os.path.isdir(self.root):
            raise SandboxError(f"{self.root}: no such directory")
        try:
            # Holders keep two namespaces alive while the run lasts, and go when the suite does (their
            # stdin closes): a mount namespace of this machine's user namespace, where the view is
            # mounted, and the sandbox's user namespace.
            mounts = self._hold(["--mount", "--propagation=private"], "mnt")
            users = self._hold(["--user"], "user")
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/{users}/{name}", "w", encoding="ascii") as handle:
                    handle.write(f"0 {SANDBOX_BASE_ID} {SANDBOX_ID_COUNT}\n")
            package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            helper = ("import sys; sys.path.insert(0, sys.argv[1]); "
                      "from postfix_compliance.backends.image_sandbox import mount_idmapped_view as m; "
                      "m(*sys.argv[2:4])")
            proc = subprocess.run(
                ["nsenter", f"--mount=/proc/{mounts}/ns/mnt", "--", sys.executable, "-I", "-c", helper,
                 package_parent, self.root, f"/proc/{users}/ns/user"],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=SETUP_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as exc:
            self.close()
            raise SandboxError(f"cannot make the image sandbox: {exc}") from None
        if proc.returncode != 0:
            self.close()
            said = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise SandboxError(f"cannot make the image sandbox's read-only view of {self.root}: {said[:300]}")
        self._mounts, self._users = mounts, users

    def _hold(self, unshare_args: list[str], kind: str) -> int:
        holder = subprocess.Popen(["unshare", *unshare_args, "--", "cat"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._holders.append(holder)
        ours = os.readlink(f"/proc/self/ns/{kind}")
        deadline = time.monotonic() + SETUP_TIMEOUT
        while time.monotonic() < deadline:
            if holder.poll() is not None:
                raise OSError(f"unshare {' '.join(unshare_args)} failed (exit {holder.returncode})")
            try:
                if os.readlink(f"/proc/{holder.pid}/ns/{kind}") != ours:
                    return holder.pid
            except OSError:
                pass
            time.sleep(0.005)
        raise OSError(f"unshare {' '.join(unshare_args)} did not start in {SETUP_TIMEOUT:g}s")

    def argv(self, command: str) -> list[str]:
        return ["nsenter", f"--mount=/proc/{self._mounts}/ns/mnt", f"--user=/proc/{self._users}/ns/user",
                "--setuid=0", "--setgid=0", "--",
                "unshare", "--mount", "--net", "--ipc", "--uts", "--pid", "--fork", "--kill-child",
                "--propagation=private", "--",
                "env", "-i", f"PATH={SANDBOX_PATH}", "LC_ALL=C", "HOME=/root",
                "/bin/sh", "-c", _ENTER, "sh", VIEW, command]

    def close(self) -> None:
        for holder in self._holders:  # the view goes with its mount namespace: nothing left on this machine
            try:
                if holder.stdin:
                    holder.stdin.close()
                holder.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                holder.kill()
                holder.wait(10)
        self._holders = []




class ImageBackend(base.BaseBackend):
    """testinfra's interface to an image root through ImageSandbox. The host name is the root's path as
    given (the gate gives a short relative name)."""
    NAME = "image"
    SUITE_BACKEND = True
    ACCEPTS_TIMEOUT = True
    ACCEPTS_MAX_OUTPUT = True

    def __init__(self, hostspec: str, command_timeout: float | None = None, *args: Any, **kwargs: Any):
        for key in ("known_hosts", "accept_new_host_keys", "connect_timeout"):
            kwargs.pop(key, None)
        self.path = hostspec
        self.command_timeout = float(command_timeout or DEFAULT_COMMAND_TIMEOUT)
        self._sandbox: ImageSandbox | None = None
        self._failure: SandboxError | None = None
        self._lock = threading.Lock()
        super().__init__(hostspec, *args, **kwargs)

    def get_pytest_id(self) -> str:
        return "image://" + self.path

    def connect(self) -> ImageSandbox:
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._sandbox is None:
                sandbox = ImageSandbox(os.path.abspath(self.path))
                try:
                    sandbox.start()
                except SandboxError as exc:
                    self._failure = exc
                    raise
                self._sandbox = sandbox
                open_backends.opened(self)
            return self._sandbox

    def run(self, command: str, *args: str, timeout: float | None = None, max_output: int | None = None,
            **kwargs: Any) -> base.CommandResult:
        command = self.get_command(command, *args)
        sandbox = self.connect()
        rc, out, err, cut = run_bounded(sandbox.argv(command), float(timeout or self.command_timeout), max_output)
        result = self.result(rc, self.encode(command), out, err)
        result.truncated = cut
        return result

    def close(self) -> None:
        with self._lock:
            if self._sandbox is not None:
                self._sandbox.close()
                self._sandbox = None
            open_backends.closed(self)
