"""Real OpenSSH servers on loopback addresses (127.0.0.2, 127.0.0.3, ...) for the SSH tests.

Each `SshHost` is its own sshd process with its own host key, config, log and command log,
listening on one 127.0.0.x address (all of 127/8 is local on Linux: no traffic leaves the
machine, no network namespace). Logins are by a client key generated for the session; every
command a client runs is appended to the host's `commands.log` by a ForceCommand wrapper
(then run by /bin/sh exactly as sshd would), so tests can count what ran where.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time

SSHD = "/usr/sbin/sshd"
LOGIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def keygen(path: str, kind: str = "ed25519") -> str:
    """A new key pair at path / path.pub; returns the public key line."""
    for p in (path, path + ".pub"):
        if os.path.exists(p):
            os.unlink(p)
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", os.path.basename(path), "-f", path],
                   check=True, capture_output=True, timeout=120)
    with open(path + ".pub", encoding="ascii") as handle:
        return handle.read().strip()


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def ensure_user(name: str) -> bool:
    """Create a plain non-root login user (no password, not locked) if missing; True if created."""
    try:
        pwd.getpwnam(name)
        return False
    except KeyError:
        pass
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True,
                   capture_output=True, timeout=120)
    # "*" = no password login, but not a locked account (sshd without PAM refuses locked ones).
    subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True, timeout=120)
    return True


def remove_user(name: str) -> None:
    subprocess.run(["userdel", "--remove", name], capture_output=True, check=False, timeout=120)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclasses.dataclass
class SshHost:
    name: str
    address: str
    port: int
    directory: str
    public_key: str = ""
    proc: subprocess.Popen | None = None
    extra_config: str = ""
    # The ForceCommand wrapper that logs each command (a shell and `id` per command): off for the
    # benchmark, whose hosts should cost what a plain sshd costs.
    log_commands: bool = True

    # ------------------------------------------------------------------ files
    @property
    def host_key(self) -> str:
        return os.path.join(self.directory, "ssh_host_ed25519_key")

    @property
    def log(self) -> str:
        return os.path.join(self.directory, "sshd.log")

    @property
    def command_log(self) -> str:
        return os.path.join(self.directory, "commands.log")

    @property
    def fakebin(self) -> str:
        return os.path.join(self.directory, "fakebin")

    def url(self, scheme: str = "paramiko", user: str = "root") -> str:
        return f"{scheme}://{user}@{self.address}:{self.port}"

    def known_hosts_line(self) -> str:
        keytype, blob = self.public_key.split()[:2]
        return f"[{self.address}]:{self.port} {keytype} {blob}"

    # ------------------------------------------------------------------ what happened there
    def mark(self) -> tuple[int, int]:
        """Where the logs end now: pass to commands()/log_text()/logins() to see only what follows."""
        return len(self.log_text()), len(self.commands())

    def commands(self, since: tuple[int, int] | None = None) -> list[str]:
        """`user<TAB>command` for every command run on this host (by any client)."""
        try:
            with open(self.command_log, encoding="utf-8", errors="replace") as handle:
                lines = [line.rstrip("\n") for line in handle if line.strip()]
        except FileNotFoundError:
            return []
        return lines[since[1]:] if since else lines

    def probe_commands(self, since: tuple[int, int] | None = None) -> list[str]:
        """`user<TAB>command` for every probe run here, a batch (collect.batch_script) counted as the
        probe commands inside it."""
        found = []
        for line in self.commands(since):
            user, _, command = line.partition("\t")
            if command.startswith("sh -c 'read u _ </proc/uptime"):
                script = shlex.split(command)[2]
                # (each probe is followed by its status, or by its output limiter's descriptors)
                found += [f"{user}\t{c}" for c in
                          re.findall(r"LC_ALL=C .*? </dev/null(?=; r=\$\?| 3>&- 6>&- 7>&-;)", script)]
            else:
                found.append(line)
        return found

    def batches(self, since: tuple[int, int] | None = None) -> int:
        """How many batch commands ran here."""
        return sum(c.partition("\t")[2].startswith("sh -c 'read u _ ") for c in self.commands(since))

    def log_text(self, since: tuple[int, int] | None = None) -> str:
        try:
            with open(self.log, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except FileNotFoundError:
            return ""
        return text[since[0]:] if since else text

    def logins(self, since: tuple[int, int] | None = None) -> int:
        """Successful authentications (= SSH connections that got past the host key and auth)."""
        return self.log_text(since).count("Accepted publickey")

    # ------------------------------------------------------------------ lifecycle
    def fake_command(self, name: str, script: str) -> None:
        """Put a fake `name` first in this host's PATH (this host only: sshd's SetEnv)."""
        os.makedirs(self.fakebin, exist_ok=True)
        path = os.path.join(self.fakebin, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("#!/bin/sh\n" + script + "\n")
        os.chmod(path, 0o755)

    def write_config(self, authorized_keys: str, users: tuple[str, ...]) -> str:
        os.makedirs(self.directory, exist_ok=True)
        os.chmod(self.directory, 0o755)  # non-root logins read authorized_keys and the wrapper here
        wrapper = os.path.join(self.directory, "logcmd")
        with open(wrapper, "w", encoding="utf-8") as handle:
            handle.write("#!/bin/sh\n"
                         f"printf '%s\\t%s\\n' \"$(id -un)\" \"$SSH_ORIGINAL_COMMAND\" >> {self.command_log}\n"
                         'exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n')
        os.chmod(wrapper, 0o755)
        if not os.path.exists(self.command_log):
            open(self.command_log, "w").close()
        os.chmod(self.command_log, 0o666)
        path = f"{self.fakebin}:{LOGIN_PATH}" if os.path.isdir(self.fakebin) else LOGIN_PATH
        # SHLVL=1: bash then does not read ~/.bashrc for ssh commands (this machine's root .bashrc
        # runs `pyenv init`, ~100 ms per command, which would drown what these tests measure).
        config = os.path.join(self.directory, "sshd_config")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(f"""ListenAddress {self.address}:{self.port}
HostKey {self.host_key}
PidFile {os.path.join(self.directory, 'sshd.pid')}
AuthorizedKeysFile {authorized_keys}
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {' '.join(users)}
UsePAM no
StrictModes no
PrintMotd no
LogLevel VERBOSE
{"ForceCommand " + wrapper if self.log_commands else ""}
SetEnv PATH={path} SHLVL=1
{self.extra_config}
""")
        return config

    def start(self, authorized_keys: str, users: tuple[str, ...]) -> None:
        if not os.path.exists(self.host_key):
            self.public_key = keygen(self.host_key)
        config = self.write_config(authorized_keys, users)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        check = subprocess.run([SSHD, "-t", "-f", config], capture_output=True, text=True, timeout=120)
        if check.returncode != 0:
            raise RuntimeError(f"sshd config {config}: {check.stderr.strip()}")
        self.proc = subprocess.Popen([SSHD, "-D", "-f", config, "-E", self.log], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd on {self.address}:{self.port} exited: {self.log_text()[-500:]}")
            try:
                with socket.create_connection((self.address, self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"sshd on {self.address}:{self.port} did not answer")

    def stop(self) -> None:
        """Stop the server and the connections it still serves (sshd's per-connection children
        outlive the listener otherwise, and clients would stay connected to a stopped host)."""
        if self.proc is not None and self.proc.poll() is None:
            for pid in _descendants(self.proc.pid):
                try:
                    os.kill(pid, 15)
                except ProcessLookupError:
                    pass
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def new_host_key(self) -> None:
        """The same host, a different key (a reinstall or a man in the middle): restart with it."""
        self.public_key = keygen(self.host_key)


class SshFleet:
    """sshd "hosts" on 127.0.0.2, 127.0.0.3, ...; a client key; a known_hosts file; cleanup."""

    def __init__(self, users: tuple[str, ...] = ("root",), log_commands: bool = True):
        self.base = tempfile.mkdtemp(prefix="pfc-sshd-")
        os.chmod(self.base, 0o755)
        self.users = users
        self.log_commands = log_commands
        self.client_key = os.path.join(self.base, "client_ed25519")
        client_public = keygen(self.client_key)
        self.authorized_keys = os.path.join(self.base, "authorized_keys")
        with open(self.authorized_keys, "w", encoding="ascii") as handle:
            handle.write(client_public + "\n")
        os.chmod(self.authorized_keys, 0o644)
        self.hosts: list[SshHost] = []
        self._next = 2

    def add(self, name: str, start: bool = True, fakes: dict[str, str] | None = None,
            extra_config: str = "") -> SshHost:
        address = f"127.0.0.{self._next}"
        self._next += 1
        host = SshHost(name, address, free_port(address), os.path.join(self.base, name), extra_config=extra_config,
                       log_commands=self.log_commands)
        os.makedirs(host.directory)
        host.public_key = keygen(host.host_key)
        for command, script in (fakes or {}).items():
            host.fake_command(command, script)
        if start:
            host.start(self.authorized_keys, self.users)
        self.hosts.append(host)
        return host

    def cpu_seconds(self) -> float:
        """CPU time the hosts have spent so far: each sshd, with every session and command it has
        reaped (a connection's processes count once it has closed)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for host in self.hosts:
            if host.proc is None or host.proc.poll() is not None:
                continue
            try:
                with open(f"/proc/{host.proc.pid}/stat", encoding="ascii") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        return total / tick

    def dead(self, name: str = "dead") -> SshHost:
        """A loopback address and port where nothing listens."""
        return self.add(name, start=False)

    def restart(self, host: SshHost) -> None:
        host.stop()
        host.start(self.authorized_keys, self.users)

    def known_hosts(self, *hosts: SshHost, path: str | None = None) -> str:
        path = path or os.path.join(self.base, f"known_hosts.{len(os.listdir(self.base))}")
        with open(path, "w", encoding="ascii") as handle:
            for host in hosts:
                handle.write(host.known_hosts_line() + "\n")
        return path

    def ssh_config(self, path: str | None = None, extra: str = "") -> str:
        """A client config that isolates ssh:// from this machine's ~/.ssh (no agent, only our key)."""
        path = path or os.path.join(self.base, "ssh_config")
        with open(path, "w", encoding="ascii") as handle:
            handle.write(f"Host *\n  IdentityFile {self.client_key}\n  IdentitiesOnly yes\n"
                         f"  IdentityAgent none\n{extra}")
        return path

    def stop(self) -> None:
        for host in self.hosts:
            host.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def require_sshd(what: str = "starts sshd") -> None:
    """Skip the calling test or fixture where real sshd hosts cannot run: not root, or OpenSSH missing."""
    import pytest

    if os.geteuid() != 0:
        pytest.skip(f"{what}: run as root")
    if not os.path.exists(SSHD) or not shutil.which("ssh"):
        pytest.skip("needs openssh-server and openssh-client")
