"""A throwaway Postfix instance under a temporary directory, and an SMTP sink, both on loopback.

The instance has its own config, queue and data directories (MAIL_CONFIG=<dir>/etc), listens on a
loopback port of its own (not 25), relays everything to [127.0.0.1]:<relay_port>, logs to a file
(maillog_file, no syslog needed) and runs its daemons without chroot. It never touches the host's
default instance.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class PostfixInstance:
    def __init__(self, relay_port: int, smtpd_port: int | None = None):
        self.root = tempfile.mkdtemp(prefix="pfx-selftest-")
        os.chmod(self.root, 0o755)  # the postfix user must reach its queue and data directories
        self.config_dir = os.path.join(self.root, "etc")
        self.queue_dir = os.path.join(self.root, "spool")
        self.data_dir = os.path.join(self.root, "data")
        self.maillog = os.path.join(self.root, "maillog")
        self.relay_port = relay_port
        self.smtpd_port = smtpd_port or free_port()
        self.env = {**os.environ, "MAIL_CONFIG": self.config_dir}

    def postconf(self, *args: str) -> str:
        return subprocess.run(["postconf", "-c", self.config_dir, *args], check=True, capture_output=True,
                              text=True, timeout=120).stdout

    def start(self) -> None:
        for d in (self.config_dir, self.queue_dir, self.data_dir):
            os.makedirs(d, exist_ok=True)
        shutil.chown(self.data_dir, user="postfix")
        # Listen on a port of our own instead of 25.
        with open("/etc/postfix/master.cf") as handle:
            master = [f"127.0.0.1:{self.smtpd_port} inet n - n - - smtpd\n" if line.startswith("smtp ")
                      and " inet " in line else line for line in handle]
        with open(os.path.join(self.config_dir, "master.cf"), "w") as handle:
            handle.writelines(master)
        with open(os.path.join(self.config_dir, "main.cf"), "w") as handle:
            handle.write(f"""compatibility_level = 3.6
queue_directory = {self.queue_dir}
data_directory = {self.data_dir}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = selftest.example.test
mydestination =
relayhost = [127.0.0.1]:{self.relay_port}
maillog_file = {self.maillog}
maillog_file_prefixes = /var, /dev/stdout, {self.root}
smtp_connect_timeout = 2s
""")
        self.postconf("-F", "*/*/chroot = n")  # daemons outside a chroot: nothing to copy into the queue
        subprocess.run(["postfix", "-c", self.config_dir, "check"], check=True, capture_output=True, timeout=120)
        subprocess.run(["postfix", "-c", self.config_dir, "start"], check=True, capture_output=True, timeout=120)
        self.wait_for(lambda: os.path.exists(os.path.join(self.queue_dir, "public", "pickup")), 15)

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", self.config_dir, "stop"], capture_output=True, timeout=120)
        shutil.rmtree(self.root, ignore_errors=True)

    def send(self, count: int = 1, to: str = "someone@example.test") -> None:
        for n in range(count):
            subprocess.run(["sendmail", "-f", "root@selftest.example.test", to],
                           input=f"Subject: selftest {n}\n\nbody {n}\n", text=True, check=True,
                               env=self.env, timeout=120)

    def queue(self) -> list[str]:
        out = subprocess.run(["postqueue", "-j"], capture_output=True, text=True, env=self.env, timeout=120).stdout
        return [line for line in out.splitlines() if line.strip()]

    def deferred_count(self) -> int:
        return sum('"queue_name": "deferred"' in line for line in self.queue())

    @staticmethod
    def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return False


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that accepts and counts every message."""

    def __init__(self, port: int):
        from aiosmtpd.controller import Controller

        self.messages: list[bytes] = []
        self._lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
                with sink._lock:
                    sink.messages.append(envelope.content)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
