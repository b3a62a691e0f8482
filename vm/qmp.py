#!/usr/bin/env python3
"""A minimal QMP client for the VM tier (standard library only).

    vm/qmp.py SOCKET system_powerdown          # any QMP command without arguments
    vm/qmp.py SOCKET hmp 'savevm clean'        # an HMP command through human-monitor-command
    vm/qmp.py SOCKET hmp 'loadvm clean'

Importable too: `Qmp(socket_path).hmp("savevm clean")`.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any


class QmpError(RuntimeError):
    pass


class Qmp:
    def __init__(self, path: str, timeout: float = 600.0):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.file = self.sock.makefile("rw", encoding="utf-8")
        greeting = self._read()
        if "QMP" not in greeting:
            raise QmpError(f"not a QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        line = self.file.readline()
        if not line:
            raise QmpError("QMP socket closed")
        return json.loads(line)

    def execute(self, command: str, **arguments: Any) -> Any:
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self.file.write(json.dumps(message) + "\n")
        self.file.flush()
        while True:
            reply = self._read()
            if "event" in reply:  # asynchronous events (STOP, RESUME...) are not replies
                continue
            if "error" in reply:
                raise QmpError(f"{command}: {reply['error'].get('desc', reply['error'])}")
            return reply.get("return")

    def hmp(self, command_line: str) -> str:
        """An HMP command; HMP reports failures as text, so any output of savevm/loadvm is an error."""
        return self.execute("human-monitor-command", **{"command-line": command_line}) or ""

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            self.sock.close()

    def __enter__(self) -> Qmp:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with Qmp(argv[1]) as qmp:
        if argv[2] == "hmp":
            out = qmp.hmp(" ".join(argv[3:]))
            sys.stdout.write(out)
            return 1 if out.strip() and argv[3] in ("savevm", "loadvm", "delvm") else 0
        print(json.dumps(qmp.execute(argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
