"""The VM tier's helpers: the running guest (commands, QMP snapshots, suite arguments), timings, and the
trimming of recorded snapshots into fixtures. Fixtures live in conftest.py."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VM_DIR = os.path.join(REPO, "vm")
VM_CACHE = os.environ.get("VM_CACHE", "/var/tmp/postfix-compliance-vm")
GUEST_HOSTNAME = "selinux-vm"
SINK_PORT = 2525
# Seconds a probe may run in the guest: semanage takes 10-15 s there under software emulation, and the
# probes run concurrently on two emulated CPUs.
COMMAND_TIMEOUT = 240

TIMINGS: list[str] = []


def timing(line: str) -> None:
    TIMINGS.append(line)


def load_qmp():
    spec = importlib.util.spec_from_file_location("vm_qmp", os.path.join(VM_DIR, "qmp.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return f"({path} unreadable)"


def run_script(name: str, *args: str, env: dict[str, str] | None = None, timeout: float,
               log: str) -> subprocess.CompletedProcess:
    """Run vm/<name>, stderr to `log`; a failure is the tier's failure, with the reason."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a", encoding="utf-8") as err:
        try:
            proc = subprocess.run([os.path.join(VM_DIR, name), *args], stdout=subprocess.PIPE, stderr=err,
                                  text=True, timeout=timeout, env={**os.environ, "VM_CACHE": VM_CACHE, **(env or {})})
        except subprocess.TimeoutExpired:
            pytest.fail(f"vm/{name} did not finish within {timeout:.0f}s; its log {log} ends with:\n{tail(log)}",
                        pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"vm/{name} failed (exit {proc.returncode}): the SELinux VM tier cannot run on this machine."
                    f"\nIts log {log} ends with:\n{tail(log)}", pytrace=False)
    return proc


@dataclasses.dataclass
class Guest:
    rundir: str
    port: int
    ssh_key: str
    known_hosts: str
    qmp_socket: str
    pidfile: str
    console: str
    profile: str = "debian12"  # the suite's profile for this guest's flavour
    avc_since: str | None = None  # where the suite's audit window starts (--avc-since); None: its default

    # ------------------------------------------------------------------ commands in the guest
    def ssh_command(self) -> list[str]:
        return ["ssh", "-i", self.ssh_key, "-p", str(self.port), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "HostKeyAlgorithms=ssh-ed25519",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "root@127.0.0.1"]

    def sh(self, script: str, timeout: float = 300, check: bool = True) -> str:
        """Run a bash script in the guest as root; its stdout. A failure fails the test with the output."""
        try:
            proc = subprocess.run([*self.ssh_command(), "bash -s"], input="set -euo pipefail\n" + script,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"guest command timed out after {timeout}s:\n{script}", pytrace=False)
        if check and proc.returncode != 0:
            pytest.fail(f"guest command failed (exit {proc.returncode}):\n{script}\n--- stdout\n{proc.stdout}"
                        f"\n--- stderr\n{proc.stderr}", pytrace=False)
        return proc.stdout

    def wait_ssh(self, timeout: float = 120) -> float:
        started = time.monotonic()
        while True:
            proc = subprocess.run([*self.ssh_command(), "true"], capture_output=True, text=True, timeout=30)
            if proc.returncode == 0:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                pytest.fail(f"guest SSH did not answer within {timeout}s: {proc.stderr.strip()}", pytrace=False)
            time.sleep(0.5)

    # ------------------------------------------------------------------ snapshots of the running guest
    def hmp(self, command_line: str) -> str:
        qmp = load_qmp()
        with qmp.Qmp(self.qmp_socket) as monitor:
            return monitor.hmp(command_line)

    def savevm(self, name: str) -> float:
        started = time.monotonic()
        out = self.hmp(f"savevm {name}")
        if out.strip():
            pytest.fail(f"savevm {name}: {out.strip()}", pytrace=False)
        return time.monotonic() - started

    def loadvm(self, name: str) -> tuple[float, float]:
        """(seconds for loadvm, seconds until SSH answered again)."""
        started = time.monotonic()
        out = self.hmp(f"loadvm {name}")
        if out.strip():
            pytest.fail(f"loadvm {name}: {out.strip()}", pytrace=False)
        loaded = time.monotonic() - started
        return loaded, self.wait_ssh(60)

    # ------------------------------------------------------------------ the compliance suite against it
    def host_url(self) -> str:
        return f"paramiko://root@127.0.0.1:{self.port}"

    def suite_args(self) -> list[str]:
        return [f"--hosts={self.host_url()}", f"--ssh-identity-file={self.ssh_key}",
                f"--known-hosts={self.known_hosts}", f"--profile={self.profile}",
                f"--command-timeout={COMMAND_TIMEOUT}",
                *([f"--avc-since={self.avc_since}"] if self.avc_since else [])]

    def guest_time(self) -> str:
        """The guest's clock now, in the form --avc-since takes."""
        return self.sh("date '+%m/%d/%Y %H:%M:%S'").strip()


def read_env(path: str) -> dict[str, str]:
    env = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            key, _, value = line.strip().partition("=")
            if key:
                env[key] = value
    return env


# ---------------------------------------------------------------------------------------------- fixtures/hosts
# Recorded snapshots are ~85 KB each, mostly whole-policy listings no check reads beyond a few lines. The
# fixtures keep, of those probes, only the lines the checks can use (headers kept, so the parsers see the
# same format), and say so in "trimmed". The live tier replays every trimmed snapshot at once and requires
# the same outcomes as the live run, so a trim that changed a verdict fails there.
_POSTFIX_DAEMON_OR_AUDITD = re.compile(
    r"postfix_|\s(master|qmgr|pickup|smtpd|smtp|cleanup|local|bounce|showq|auditd|systemd|python3)$")
TRIM_RULES: dict[str, tuple[int, re.Pattern[str], str]] = {
    # probe: (header lines kept, lines kept when they match, what is kept)
    "semanage_boolean": (2, re.compile(r"postfix|mail"), "header and postfix/mail booleans"),
    "getsebool_all": (0, re.compile(r"postfix|mail"), "postfix/mail booleans"),
    "port_labels": (2, re.compile(r"smtp"), "header and smtp port types"),
    "policy_modules": (0, re.compile(r"^(?!100 )|postfix|mta|mail"), "modules not at priority 100, and mail modules"),
    "processes": (1, _POSTFIX_DAEMON_OR_AUDITD, "header, Postfix daemons, auditd, systemd, the sink"),
}


def trim_snapshot(path: str, observed: dict[str, str]) -> None:
    """Name the guest, trim the big listings, and note what the live suite said (for the offline replay)."""
    with open(path, encoding="utf-8") as handle:
        doc = json.load(handle)
    doc["host"] = GUEST_HOSTNAME  # the recorder names the host as the URL does (127.0.0.1)
    doc["source"] = re.sub(r":\d+$", "", str(doc.get("source", "")))  # the port was picked at run time
    trimmed = {}
    for record in doc["evidence"]:
        rule = TRIM_RULES.get(record["probe"])
        if not rule or not record.get("stdout"):
            continue
        header, keep, what = rule
        lines = record["stdout"].splitlines(keepends=True)
        kept = lines[:header] + [line for line in lines[header:] if keep.search(line.rstrip("\n"))]
        record["stdout"] = "".join(kept)
        trimmed[record["probe"]] = f"{what}: {len(kept)} of {len(lines)} lines"
    doc["trimmed"] = trimmed
    doc["observed_outcomes"] = dict(sorted(observed.items()))
    evidence = doc.pop("evidence")
    doc["evidence"] = evidence  # last, so the metadata reads first
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1)
        handle.write("\n")
