#!/usr/bin/env python3
"""The delay proxy (bench/delay_proxy.py) for a whole replayed fleet, in ONE process.

    .venv/bin/python bench/fleet_proxy.py --hosts 100 --port 2222 --upstream-port 2223 --delay-ms 25

One asyncio loop, one listening socket on each host address (127.0.0.2:PORT, 127.0.0.3:PORT, ... as
bench/replay_host.py numbers them, loopback only), each connection forwarded to the same address on
UPSTREAM_PORT (where replay_host.py listens, so the replay host still tells hosts apart by address),
every chunk delayed by `--delay-ms` in each direction by delay_proxy.py's own `relay` (25 ms each way =
50 ms round trip, throughput not limited). One process instead of one DelayProxy (thread and loop)
per host; the per-byte behaviour is the same code.

At exit (SIGTERM, SIGINT) it prints its own CPU: `fleet_proxy cpu_s=... connections=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from delay_proxy import relay  # noqa: E402
from replay_host import host_address  # noqa: E402

CONNECTIONS = 0


async def forward(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, address: str, port: int,
                  delay: float) -> None:
    global CONNECTIONS
    CONNECTIONS += 1
    try:
        up_r, up_w = await asyncio.open_connection(address, port)
    except OSError:
        client_w.close()
        return
    for writer in (client_w, up_w):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await relay(client_r, client_w, up_r, up_w, delay)
    except asyncio.CancelledError:
        pass
    finally:
        for writer in (client_w, up_w):
            writer.close()


def cpu_line() -> str:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (f"fleet_proxy cpu_s={usage.ru_utime + usage.ru_stime:.2f} user_s={usage.ru_utime:.2f} "
            f"sys_s={usage.ru_stime:.2f} connections={CONNECTIONS}")


async def serve(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    delay = args.delay_ms / 1000.0
    tasks: set[asyncio.Task] = set()
    servers = []
    for index in range(args.hosts):
        address = host_address(index)

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter, address: str = address) -> None:
            task = asyncio.current_task()  # asyncio holds these weakly: keep them
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await forward(r, w, address, args.upstream_port, delay)

        servers.append(await asyncio.start_server(handle, address, args.port, backlog=512))
    print(f"ready hosts={args.hosts} port={args.port} upstream_port={args.upstream_port} "
          f"delay_ms={args.delay_ms:g} each way", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()  # unbounded: the proxy serves until its signal
    for server in servers:
        server.close()
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(cpu_line(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, required=True)
    parser.add_argument("--port", type=int, default=2222, help="where the suite connects (default 2222)")
    parser.add_argument("--upstream-port", type=int, default=2223, help="where replay_host.py listens (2223)")
    parser.add_argument("--delay-ms", type=float, default=25.0, help="delay each way (default 25 = 50 ms RTT)")
    args = parser.parse_args()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
