#!/usr/bin/env python3
"""A fleet of replayed SSH hosts in ONE process: each 127.0.0.x address is a "host" with its own key.

Fresh Debian 12 machine:  scripts/bootstrap.sh --dev   (installs asyncssh from the dev extras), then

    .venv/bin/python bench/replay_host.py --hosts 100 --port 2222 --dir /tmp/fleet
    .venv/bin/python -m pytest --hosts="$(paste -sd, /tmp/fleet/hosts.txt)" --known-hosts=/tmp/fleet/known_hosts \
        --ssh-identity-file=/tmp/fleet/client_key --profile=rhel9 --report-dir=/tmp/fleet/reports

What it is: asyncssh (PyPI) serving SSH on 127.0.0.2, 127.0.0.3, ... (only loopback: 127.0.0.0/8; past 250
hosts the third octet counts up: 127.0.1.2, ...), one listening socket per address on `--port`, each
address with its own ed25519 host key, generated at start and written to DIR/known_hosts (named
`[ADDR]:ADVERTISED_PORT`, so a delay proxy in front may listen on another port, see fleet_proxy.py). Login:
the public key of DIR/client_key (ed25519, generated at start), any user name; nothing else is accepted.

What it answers: each exec request from a recorded snapshot (fixtures/hosts/*.json), looked up by the
suite's own snapshot backend (postfix_compliance.backends.snapshot.SnapshotBackend: one per connection,
so recorded sequences such as queue polls replay from the start for every run):
  - a single wrapped probe (`LC_ALL=C ... timeout -k 5 T sh -c '...' </dev/null`) as SnapshotBackend.run
    answers it (a command that is not recorded: exit 127, as a shell would);
  - a probe batch (facts/collect.py `batch_script`): the script is parsed into its nonce, output cap
    and probe commands, then checked by rebuilding it with the suite's own `batch_script` (a batch this
    parser does not understand is refused: exit 2 and one line on stderr, never a guessed answer), and
    answered as a shell running it would: stdout `NONCE UPTIME`, each probe's stdout (cut at CAP+1 bytes,
    as its `head -c` does) and `\\nNONCE I RC UPTIME\\n`; stderr each probe's stderr and `\\nNONCE I\\n`.
Hosts differ: host number i is `vary(snapshot, i)` of bench/report_bench.py (its own host name and pids;
with --mix also every 3rd permissive, every 7th mislabelled with denials, every 5th with a long process
list, as report_bench makes them), and the snapshot's host name in every output is replaced by its own.

UPTIME is this process's monotonic clock; answers are immediate (the suite alone is measured), unless
--replay-durations, which waits each probe's recorded duration (as the host's CPU would) before answering.

At exit (SIGTERM, SIGINT or end of stdin with --stdin-exit) it prints one line with its own CPU time:
`replay_host cpu_s=... user_s=... sys_s=... connections=... sessions=... batches=... refused=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import re
import resource
import shlex
import signal
import sys
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "bench")]

import asyncssh  # noqa: E402

from postfix_compliance.backends.snapshot import SnapshotBackend, load_snapshot  # noqa: E402
from postfix_compliance.facts.collect import batch_script, unwrap_command  # noqa: E402

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
PER_OCTET = 250  # hosts per third octet: .2 .. .251


def host_address(index: int) -> str:
    """Host number `index` (0-based): 127.0.0.2, 127.0.0.3, ..., 127.0.0.251, 127.0.1.2, ..."""
    high, low = divmod(index, PER_OCTET)
    if high > 255:
        raise ValueError("at most 64,000 replayed hosts")
    address = f"127.0.{high}.{low + 2}"
    assert ipaddress.ip_address(address) in LOOPBACK
    return address


def host_url(index: int, port: int, user: str = "root", scheme: str = "ssh") -> str:
    return f"{scheme}://{user}@{host_address(index)}:{port}"


# ---------------------------------------------------------------------- batches
_HEAD = re.compile(r"^sh -c ")
_CAPPED_OPEN = "r=$( { { { "
_CAPPED_CLOSE = " 3>&- 6>&- 7>&-; echo $? >&3; } 2>&1 >&4 | c >&7; } 4>&1 | c >&6; } 3>&1 )"
_NONCE = re.compile(r"printf '%s %s\\n' ([0-9a-f]{8,64}) \"\$u\"")
_CAP = re.compile(r"c\(\) \{ head -c ([0-9]+) 2>/dev/null \|\| cat; \}")


class BatchRefused(Exception):
    pass


def parse_batch(command: str) -> tuple[str, int | None, list[str]] | None:
    """(nonce, cap, commands) of a batch script as facts/collect.py `batch_script` builds it; None for a
    command that is no batch. A batch that does not rebuild to exactly `command` raises BatchRefused."""
    if not _HEAD.match(command):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if len(words) != 3 or words[:2] != ["sh", "-c"]:
        return None
    script = words[2]
    nonce_m = _NONCE.search(script)
    if not nonce_m:
        return None
    nonce = nonce_m.group(1)
    cap_m = _CAP.search(script)
    cap = int(cap_m.group(1)) - 1 if cap_m else None
    # Every probe's segment ends with its stderr marker, which carries the random nonce and its index.
    prefix_end = script.index("exec 6>&1 7>&2; ") + len("exec 6>&1 7>&2; ") if cap is not None \
        else nonce_m.end() + 2
    commands: list[str] = []
    pos, index = prefix_end, 0
    while pos < len(script):
        end_marker = f"printf '\\n%s {index}\\n' {nonce} >&2"
        end = script.find(end_marker, pos)
        if end < 0:
            raise BatchRefused(f"batch segment {index}: no end marker")
        segment = script[pos:end]
        if cap is not None:
            close = segment.rfind(_CAPPED_CLOSE)
            if not segment.startswith(_CAPPED_OPEN) or close < 0:
                raise BatchRefused(f"batch segment {index}: not a capped probe")
            commands.append(segment[len(_CAPPED_OPEN):close])
        else:
            close = segment.rfind("; r=$?; ")
            if close < 0:
                raise BatchRefused(f"batch segment {index}: no exit status")
            commands.append(segment[:close])
        pos = end + len(end_marker) + 2  # "; " between segments
        index += 1
    if batch_script(commands, nonce, cap) != command:
        raise BatchRefused("the batch does not rebuild to the same script (collect.py's framing changed?)")
    return nonce, cap, commands


# ---------------------------------------------------------------------- hosts
class ReplayedHost:
    def __init__(self, index: int, snapshot_path: str, key: asyncssh.SSHKey):
        self.index = index
        self.address = host_address(index)
        self.snapshot_path = snapshot_path
        self.key = key


class Stats:
    connections = sessions = batches = refused = 0


STATS = Stats()


class Session:
    """One exec request on a connection of host `host`, answered from that connection's snapshot."""

    def __init__(self, replay_durations: bool):
        self.replay_durations = replay_durations

    async def run(self, process: asyncssh.SSHServerProcess, backend: SnapshotBackend) -> None:
        STATS.sessions += 1
        command = process.command or ""
        try:
            try:
                batch = parse_batch(command)
            except BatchRefused as exc:
                STATS.refused += 1
                process.stderr.write(f"replay host: {exc}\n".encode())
                process.exit(2)
                return
            if batch is None:
                rc, out, err, seconds = self.one(backend, command)
                if seconds:
                    await asyncio.sleep(seconds)
                process.stdout.write(out)
                process.stderr.write(err)
                process.exit(rc)
                return
            STATS.batches += 1
            nonce, cap, commands = batch
            out, err = await self.batch(backend, nonce, cap, commands)
            process.stdout.write(out)
            process.stderr.write(err)
            process.exit(0)
        except (asyncssh.Error, BrokenPipeError, ConnectionError):
            pass

    async def batch(self, backend: SnapshotBackend, nonce: str, cap: int | None, commands: list[str]
                    ) -> tuple[bytes, bytes]:
        """What `sh -c` running the batch script prints on stdout and on stderr (see collect.batch_script)."""
        tag = nonce.encode()
        out_parts = [b"%s %s\n" % (tag, _uptime())]
        err_parts = []
        for index, wrapped in enumerate(commands):
            rc, out, err, seconds = self.one(backend, wrapped)
            if seconds:
                await asyncio.sleep(seconds)
            if cap is not None:  # each stream through `head -c CAP+1`
                out, err = out[:cap + 1], err[:cap + 1]
            out_parts += [out, b"\n%s %d %d %s\n" % (tag, index, rc, _uptime())]
            err_parts += [err, b"\n%s %d\n" % (tag, index)]
        return b"".join(out_parts), b"".join(err_parts)

    def one(self, backend: SnapshotBackend, wrapped: str) -> tuple[int, bytes, bytes, float]:
        result = backend.run(wrapped)
        seconds = 0.0
        if self.replay_durations:
            probe = backend._by_command.get(unwrap_command(wrapped))  # (the recorded duration only)
            seq = backend._sequences.get(probe or "", [])
            seconds = seq[0].duration if seq else 0.0
        return result.rc, result.stdout_bytes, result.stderr_bytes, seconds


def _uptime() -> bytes:
    return b"%.2f" % time.monotonic()


class HostServer(asyncssh.SSHServer):
    def __init__(self, host: ReplayedHost):
        self.host = host
        self.backend: SnapshotBackend | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        STATS.connections += 1
        conn.set_extra_info(replay_server=self)

    def snapshot(self) -> SnapshotBackend:
        if self.backend is None:  # fresh per connection: recorded sequences replay from the start
            self.backend = SnapshotBackend(self.host.snapshot_path)
        return self.backend


def make_hosts(count: int, snapshot: str, work: str, mix: bool) -> list[ReplayedHost]:
    from report_bench import vary  # bench/report_bench.py: the same host variations as the report benchmark

    base = load_snapshot(snapshot)
    old_name = str(base.get("host") or "")
    short = old_name.split(".")[0]
    snap_dir = os.path.join(work, "snapshots")
    os.makedirs(snap_dir, exist_ok=True)
    hosts = []
    for index in range(count):
        doc = vary(base, index) if mix else json.loads(json.dumps(base))
        name = f"mail{index:04d}.example.test"
        doc["host"] = name
        if old_name:
            for ev in doc["evidence"]:
                for key in ("stdout", "stderr"):
                    text = ev.get(key) or ""
                    text = text.replace(old_name, name)
                    if short:
                        text = re.sub(rf"\b{re.escape(short)}\b", name.split(".")[0], text)
                    ev[key] = text
        path = os.path.join(snap_dir, f"host{index:04d}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(doc, handle)
        hosts.append(ReplayedHost(index, path, asyncssh.generate_private_key("ssh-ed25519")))
    return hosts


def write_files(hosts: list[ReplayedHost], work: str, advertised_port: int, user: str) -> asyncssh.SSHKey:
    client = asyncssh.generate_private_key("ssh-ed25519", comment="postfix-compliance-bench")
    key_path = os.path.join(work, "client_key")
    if os.path.exists(key_path):
        os.unlink(key_path)
    client.write_private_key(key_path)
    os.chmod(key_path, 0o600)
    client.write_public_key(key_path + ".pub")
    with open(os.path.join(work, "known_hosts"), "w", encoding="ascii") as handle:
        for host in hosts:
            blob = host.key.export_public_key("openssh").decode().split()[:2]
            handle.write(f"[{host.address}]:{advertised_port} {blob[0]} {blob[1]}\n")
    with open(os.path.join(work, "hosts.txt"), "w", encoding="ascii") as handle:
        for host in hosts:
            handle.write(host_url(host.index, advertised_port, user) + "\n")
    return client


def cpu_line() -> str:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (f"replay_host cpu_s={usage.ru_utime + usage.ru_stime:.2f} user_s={usage.ru_utime:.2f} "
            f"sys_s={usage.ru_stime:.2f} maxrss_mb={usage.ru_maxrss / 1024:.0f} connections={STATS.connections} "
            f"sessions={STATS.sessions} batches={STATS.batches} refused={STATS.refused}")


async def serve(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.makedirs(args.dir, exist_ok=True)
    hosts = make_hosts(args.hosts, args.snapshot, args.dir, args.mix)
    client = write_files(hosts, args.dir, args.advertise_port or args.port, args.user)
    authorized = asyncssh.import_authorized_keys(client.export_public_key("openssh").decode())
    session = Session(args.replay_durations)

    async def handle(process: asyncssh.SSHServerProcess) -> None:
        server: HostServer = process.get_extra_info("connection").get_extra_info("replay_server")
        await session.run(process, server.snapshot())

    servers = []
    for host in hosts:
        servers.append(await asyncssh.listen(
            host.address, args.port, server_factory=lambda h=host: HostServer(h), server_host_keys=[host.key],
            authorized_client_keys=authorized, process_factory=handle, encoding=None, allow_scp=False,
            agent_forwarding=False, x11_forwarding=False, sftp_factory=None, allow_pty=False,
            login_timeout=30, backlog=512))
    print(f"ready hosts={len(hosts)} first={hosts[0].address}:{args.port} last={hosts[-1].address}:{args.port} "
          f"dir={args.dir}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.stdin_exit:
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 4096) else None)
    await stop.wait()  # unbounded: the replay host serves until its signal (or stdin ends)
    for server in servers:
        server.close()
    print(cpu_line(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=2, help="how many hosts (default 2)")
    parser.add_argument("--port", type=int, default=2222, help="port to listen on at each address (default 2222)")
    parser.add_argument("--advertise-port", type=int, default=0,
                        help="port named in known_hosts and hosts.txt (a delay proxy's; default --port)")
    parser.add_argument("--dir", required=True, help="where known_hosts, client_key, hosts.txt are written")
    parser.add_argument("--snapshot", default=os.path.join(REPO, "fixtures", "hosts", "healthy-rhel9.json"))
    parser.add_argument("--user", default="root", help="user name in hosts.txt (any is accepted)")
    parser.add_argument("--mix", action="store_true",
                        help="vary hosts as report_bench does (some permissive, mislabelled, long ps)")
    parser.add_argument("--replay-durations", action="store_true",
                        help="wait each probe's recorded duration before answering (default: answer at once)")
    parser.add_argument("--stdin-exit", action="store_true", help="also stop when stdin closes")
    args = parser.parse_args()
    if args.hosts < 1:
        parser.error("--hosts must be at least 1")
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        print(cpu_line(), flush=True)


if __name__ == "__main__":
    main()
