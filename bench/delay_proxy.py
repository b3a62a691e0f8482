"""A user-space TCP proxy on loopback that delays every byte by a fixed time in each direction.

This kernel has no netem, so this is the honest substitute for a WAN link: each chunk read from one
side is written to the other `delay` seconds after it arrived, in order, without limiting
throughput (a 25 ms delay each way makes a 50 ms round trip).

    python bench/delay_proxy.py --listen 127.0.0.1:20022 --upstream 127.0.0.2:22 --delay-ms 25
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            if chunk is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await reader.read(65536)
            await queue.put((time.monotonic() + delay, chunk or None))
            if not chunk:
                break
        await sender
    except BaseException:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        raise


async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, up_r: asyncio.StreamReader,
                up_w: asyncio.StreamWriter, delay: float) -> None:
    """Both directions of one connection, each delayed. An orderly end (EOF) is passed on as it comes; when
    one direction fails (a reset), both sockets are reset at once, as a dropped link is seen from both ends.
    (Before, the other end was left open: a client whose server had reset the connection waited on it until
    its own timeout, e.g. paramiko's 30 s probe timeouts in bench/fleet_bench.py.)"""
    pumps = {asyncio.create_task(_pump(client_r, up_w, delay)), asyncio.create_task(_pump(up_r, client_w, delay))}
    try:
        pending = pumps
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(not task.cancelled() and task.exception() is not None for task in done):
                for writer in (client_w, up_w):
                    writer.transport.abort()
                break
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


class DelayProxy:
    """Start with `start()` (a background thread and event loop); `port` is where to connect."""

    def __init__(self, upstream_host: str, upstream_port: int, delay_ms: float,
                 listen_host: str = "127.0.0.1", listen_port: int = 0):
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay_ms / 1000.0
        self.listen = (listen_host, listen_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        # asyncio holds connection tasks weakly: keep a reference, or a closing peer gets it collected.
        task = asyncio.current_task()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        for sock_writer in (client_w, up_w):
            sock = sock_writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await relay(client_r, client_w, up_r, up_w, self.delay)
        except asyncio.CancelledError:  # the proxy is stopping: close both sides quietly
            pass
        finally:
            for w in (client_w, up_w):
                w.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, *self.listen))
        self.port = server.sockets[0].getsockname()[1]
        self._server = server
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> DelayProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def _close() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()
        asyncio.run_coroutine_threadsafe(_close(), self._loop)
        self._thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--delay-ms", type=float, default=25.0)
    args = parser.parse_args()
    lhost, lport = args.listen.rsplit(":", 1)
    uhost, uport = args.upstream.rsplit(":", 1)
    if not (lhost.startswith("127.") and uhost.startswith("127.")):
        parser.error("loopback addresses only")
    proxy = DelayProxy(uhost, int(uport), args.delay_ms, lhost, int(lport)).start()
    print(f"delaying {args.delay_ms:g} ms each way: 127.0.0.1:{proxy.port} -> {args.upstream}", flush=True)
    try:
        threading.Event().wait()  # unbounded: the proxy serves until Ctrl-C
    except KeyboardInterrupt:
        proxy.stop()


if __name__ == "__main__":
    main()
