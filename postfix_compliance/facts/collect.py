"""Run probes on a host: each read-only, with LC_ALL=C and a timeout, concurrently, once.

The command sent to the host is the probe's command wrapped as
`LC_ALL=C [MAIL_CONFIG=DIR] PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin timeout -k 5 T sh -c '<command>'`:
the host's own `timeout` ends a hung command (so nothing is left running there), and the
client gives up a little later still, in case the transport itself hangs. The sbin
directories are appended because an SSH login of a non-root user on Debian has no sbin in
its PATH, where getenforce, semanage, restorecon and postconf live.

With `--sudo`, only privileged probes use sudo, and sudo runs the real command, never a shell:
`... timeout -k 5 T sh -c 'sudo -n semanage boolean -l'` (the `sh` and `timeout` run as the login
user). A pipeline gets `sudo -n` on each stage (`sudo -n ausearch ... | sudo -n audit2why`);
compound probes declare their own `sudo_form` (probes.py). So a sudoers drop-in that
lists exact commands (contrib/sudoers.d/postfix-compliance) is enough, and no shell is ever
allowed as root.

Output is bounded (`--max-probe-output`, default 4 MiB a stream): on the host, a batch pipes each
probe's stdout and stderr through `head -c CAP+1` (`batch_script`), so a probe printing 100 MB sends
CAP+1 bytes and is stopped by SIGPIPE; on the client, the transports keep at most a batch's worth of
capped answers per stream (`bounded`), whatever the host's `head` does. Evidence cut at the cap is
marked (`Evidence.truncated`) and never parsed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import re
import secrets
import shlex
import threading
import time
from typing import Any, Iterable

from postfix_compliance.backends.bounded import run_bounded
from postfix_compliance.errors import CommandTimeout, ConnectError, ConnectionLost
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.facts.probes import Probe

DEFAULT_TIMEOUT = 30.0
PREFETCH_HOSTS = 16  # hosts collected ahead of their checks, by default (fleet_run.py shares them out)
CLIENT_GRACE = 10.0  # seconds the client waits beyond the host-side timeout
TIMEOUT_EXIT = 124  # what coreutils' timeout exits with when it had to stop the command
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"
DEFAULT_MAX_OUTPUT = 4 * 1024 * 1024  # bytes kept of each stream of one probe (--max-probe-output)
FRAME_BYTES = 256  # room for one probe's frame lines in a batch's streams (a marker line is ~60 bytes)

_WRAPPED = re.compile(r"^LC_ALL=C (?:MAIL_CONFIG=\S+ )?(?:PATH=\S+ )?(?:sudo -n )?timeout -k 5 [0-9.]+ sh -c "
                      r"(?P<cmd>.*?)(?: </dev/null)?$", re.S)

# Postfix's own commands take the instance as `-c DIR`: through sudo, MAIL_CONFIG is not kept.
POSTFIX_TOOLS = ("postfix", "postqueue", "postsuper", "postconf", "postcat", "postmap")

# What sudo says when it will not run a command for us (as opposed to the command failing).
_SUDO_REFUSED = re.compile(r"^sudo: (?:a password is required|a terminal is required|sorry, you must have a tty"
                           r"|.*is not allowed to execute|.*is not in the sudoers file|.*may not run sudo).*$",
                           re.MULTILINE | re.IGNORECASE)


def _split_pipeline(command: str) -> list[str] | None:
    """The stages of a plain pipeline (`a | b`), or None for anything compound (`;`, `&&`,
    `||`, `&`, loops, redirections at top level are fine). Quotes and `$(...)` are skipped."""
    stages, current, depth, i = [], [], 0, 0
    quote: str | None = None
    while i < len(command):
        ch = command[i]
        if quote:
            if ch == "\\" and quote == '"' and i + 1 < len(command):
                current.append(command[i:i + 2])
                i += 2
                continue
            if ch == quote:
                quote = None
            current.append(ch)
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == "\\" and i + 1 < len(command):
            current.append(command[i:i + 2])
            i += 2
            continue
        elif command.startswith("$(", i):
            depth += 1
            current.append("$(")
            i += 2
            continue
        elif ch == ")" and depth:
            depth -= 1
            current.append(ch)
        elif depth:
            current.append(ch)
        elif ch == "|":
            if command.startswith("||", i):
                return None
            stages.append("".join(current))
            current = []
        elif ch in ";&\n`" or (ch == "(" and not "".join(current).strip()):
            return None
        else:
            current.append(ch)
        i += 1
    if quote or depth:
        return None
    stages.append("".join(current))
    stages = [s.strip() for s in stages]
    for stage in stages:
        first = stage.split(None, 1)[0] if stage else ""
        if not first or "=" in first or first in ("for", "while", "until", "if", "case", "{", "!", "exec"):
            return None
    return stages


def parse_size(text: str) -> int:
    """`--max-probe-output`: bytes, or with a suffix K, M, G (powers of 1024; `KiB`, `MB`... too)."""
    match = re.fullmatch(r"\s*([0-9]+)\s*([kmg]?)(?:i?b)?\s*", str(text), re.I)
    if not match:
        raise ValueError(f"--max-probe-output {text!r}: expected a number of bytes, e.g. 4194304 or 4M")
    size = int(match.group(1)) * 1024 ** " kmg".index((match.group(2) or " ").lower())
    if size < 1024:
        raise ValueError(f"--max-probe-output {text!r}: at least 1K (a probe's normal answer must fit)")
    return size


def sudo_prefix(sudo_user: str | None = None) -> str:
    return f"sudo -n -u {shlex.quote(sudo_user)} " if sudo_user else "sudo -n "


def sudo_command(probe: Probe, mail_config: str | None = None, sudo_user: str | None = None) -> str:
    """The command a privileged probe runs with --sudo: sudo in front of the real program(s)."""
    prefix = sudo_prefix(sudo_user)
    if probe.sudo_form is not None:
        return probe.sudo_form.replace("{sudo}", prefix)
    stages = _split_pipeline(probe.command)
    if stages is None:
        raise ValueError(f"privileged probe {probe.name} is a compound command: give it a sudo_form "
                         f"(postfix_compliance.facts.probes.Probe)")
    out = []
    for stage in stages:
        program, _, rest = stage.partition(" ")
        if mail_config and program in POSTFIX_TOOLS:
            rest = f"-c {shlex.quote(mail_config)} {rest}".strip()
        out.append(f"{prefix}{program} {rest}".strip())
    return " | ".join(out)


def wrap_command(command: str, timeout: float, mail_config: str | None = None) -> str:
    """The command sent to the host (for a privileged probe with --sudo, `command` is already its
    sudo form, see `sudo_command`: sudo goes inside, never around `timeout` or `sh`)."""
    env = "LC_ALL=C "
    if mail_config:
        env += f"MAIL_CONFIG={shlex.quote(mail_config)} "
    env += f"PATH=$PATH:{SBIN_PATH} "
    # </dev/null: no probe reads input, and some tools change behaviour when stdin is a pipe.
    return f"{env}timeout -k 5 {timeout:g} sh -c {shlex.quote(command)} </dev/null"


def unwrap_command(wrapped: str) -> str:
    """The probe's own command inside a wrapped one (or the command itself if not wrapped)."""
    match = _WRAPPED.match(wrapped)
    if not match:
        return wrapped
    parts = shlex.split(match.group("cmd"))
    return parts[0] if len(parts) == 1 else wrapped


class ProbeRunner:
    """Runs probes through one testinfra host (one connection, reused by every probe).

    `connect()` opens the host's connection once, before any thread uses it; a connection
    that is lost later is remembered in `lost` (one line) and every later probe fails fast
    with it, so a host that drops mid-run is one error, not a mix of half-collected facts."""

    def __init__(self, host: Any, timeout: float = DEFAULT_TIMEOUT, mail_config: str | None = None,
                 sudo: bool = False, max_parallel: int = 16, sudo_user: str | None = None,
                 max_output: int = DEFAULT_MAX_OUTPUT):
        self.host = host
        self.max_output = max_output
        self.timeout = timeout
        self.mail_config = mail_config
        self.sudo = sudo
        self.sudo_user = sudo_user
        sessions = getattr(host.backend, "max_sessions", None)
        self.max_parallel = min(max_parallel, sessions) if sessions else max_parallel
        self.lost: str | None = None
        self._lost_lock = threading.Lock()

    def connect(self) -> None:
        """Open the host's connection now (a no-op for backends without one); raises ConnectError."""
        backend = self.host.backend
        if getattr(backend, "SUITE_BACKEND", False):
            backend.connect()

    def command_for(self, probe: Probe) -> str:
        if self.sudo and probe.privileged:
            return wrap_command(sudo_command(probe, self.mail_config, self.sudo_user), self.timeout,
                                self.mail_config)
        return wrap_command(probe.command, self.timeout, self.mail_config)

    def run(self, probe: Probe) -> Evidence:
        backend = self.host.backend
        started = time.monotonic()
        replay = getattr(backend, "replay", None)
        if replay is not None:  # recorded evidence: no command runs anywhere
            return self._capped(replay(probe.name, probe.command))

        def failed(error: str) -> Evidence:
            return Evidence(probe.name, probe.command, None, "", "", time.monotonic() - started, error=error)

        if self.lost:
            return failed(self.lost)
        try:
            wrapped = self.command_for(probe)
        except ValueError as exc:
            return failed(str(exc))
        result, error = self._execute(wrapped, self.timeout + CLIENT_GRACE, limit=self.max_output)
        if error is not None:
            return failed(error)
        out, err = result.stdout_bytes, result.stderr_bytes
        cut = any(getattr(result, "truncated", ())) or len(out) > self.max_output or len(err) > self.max_output
        return self._evidence(probe, result.exit_status, _text(out[:self.max_output]), _text(err[:self.max_output]),
                              time.monotonic() - started, truncated=self.max_output if cut else None)

    def _capped(self, ev: Evidence) -> Evidence:
        """Recorded evidence cut at --max-probe-output as live output is: a snapshot of 60 MB is no
        more to parse, hold and write than a host printing it."""
        cap = self.max_output
        if len(ev.stdout) <= cap // 4 and len(ev.stderr) <= cap // 4:  # UTF-8: at most 4 bytes a character
            return ev
        out, err = ev.stdout.encode("utf-8", "surrogateescape"), ev.stderr.encode("utf-8", "surrogateescape")
        if len(out) <= cap and len(err) <= cap:
            return ev
        return dataclasses.replace(ev, stdout=_text(out[:cap]), stderr=_text(err[:cap]),
                                   truncated=min(cap, ev.truncated or cap))

    def _evidence(self, probe: Probe, rc: int, stdout: str, stderr: str, duration: float,
                  truncated: int | None = None) -> Evidence:
        """What one probe's answer is evidence of: a result, a host-side timeout, or a sudo refusal."""
        if rc == TIMEOUT_EXIT and duration >= self.timeout * 0.9:
            return Evidence(probe.name, probe.command, rc, stdout, stderr, duration,
                            error=f"timed out after {self.timeout:g}s", truncated=truncated)
        if self.sudo and probe.privileged and rc != 0:
            refused = _SUDO_REFUSED.search(stderr)
            if refused:
                return Evidence(probe.name, probe.command, rc, stdout, stderr, duration,
                                error=f"sudo refused it: {refused.group(0).strip()} (see "
                                      f"contrib/sudoers.d/postfix-compliance)", truncated=truncated)
        return Evidence(probe.name, probe.command, rc, stdout, stderr, duration, truncated=truncated)

    def _execute(self, command: str, timeout: float, idle: float | None = None,
                 limit: int | None = None) -> tuple[Any, str | None]:
        """(the backend's result, None), or (None, one line) when the transport gave no answer.
        `limit`: bytes of each stream the transport may keep (see `bounded`); the result's
        `truncated` is then (stdout cut, stderr cut)."""
        backend = self.host.backend
        extra: dict[str, Any] = {}
        if limit is not None and getattr(backend, "ACCEPTS_MAX_OUTPUT", False):
            extra["max_output"] = limit
        try:
            if limit is not None and _is_testinfra_local(backend):
                return _run_local(backend, command, timeout, limit), None
            if idle is not None and getattr(backend, "ACCEPTS_IDLE_TIMEOUT", False):
                return backend.run(command, timeout=timeout, idle_timeout=idle, **extra), None
            if getattr(backend, "ACCEPTS_TIMEOUT", False):
                return backend.run(command, timeout=timeout, **extra), None
            return backend.run(command), None
        except CommandTimeout:
            return None, f"timed out after {self.timeout:g}s (no answer)"
        except ConnectionLost as exc:
            return None, self._note_lost(exc)
        except ConnectError as exc:
            return None, str(exc)
        except Exception as exc:  # a transport failure is evidence of its own kind
            return None, f"{type(exc).__name__}: {exc}".strip()

    def _note_lost(self, exc: Exception) -> str:
        with self._lost_lock:
            self.lost = self.lost or str(exc)
        return str(exc)

    def run_many(self, probes: Iterable[Probe]) -> dict[str, Evidence]:
        """Run probes concurrently; every probe gets a result, a timeout included.

        The probes are dealt into at most `max_parallel` batches (balanced by each probe's cost
        hint); each batch is ONE command on the host that runs its probes one after another
        and frames their answers (`batch_script`). A host then costs one round of sessions
        instead of one session per probe: at 50 ms RTT, 31 probes in waves of 8 sessions were
        four rounds of channel set-up; batched they are one."""
        probes = list(probes)
        if not probes:
            return {}
        if getattr(self.host.backend, "replay", None) is not None or len(probes) == 1:
            return self._run_each(probes)
        batches = plan_batches(probes, self.max_parallel)
        results: dict[str, Evidence] = {}
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(batches))
        try:
            for answer in pool.map(self._run_batch, batches):
                results.update(answer)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return results

    def _run_batch(self, probes: list[Probe]) -> dict[str, Evidence]:
        started = time.monotonic()
        batch: list[Probe] = []
        commands: list[str] = []
        refused: dict[str, Evidence] = {}
        for probe in probes:
            try:
                commands.append(self.command_for(probe))
                batch.append(probe)
            except ValueError as exc:  # a privileged compound probe without a sudo form: its own error
                refused[probe.name] = Evidence(probe.name, probe.command, None, "", "", 0.0, error=str(exc))

        def all_failed(error: str) -> dict[str, Evidence]:
            return {**refused, **{p.name: Evidence(p.name, p.command, None, "", "", time.monotonic() - started,
                                                   error=error) for p in batch}}

        if not batch:
            return refused
        if self.lost:
            return all_failed(self.lost)
        nonce = secrets.token_hex(12)
        # The host ends each probe itself (timeout -k 5 T): the batch may take all of them in turn, but
        # it prints after each one, so a longer silence than one probe's is a stalled link (paramiko;
        # ssh:// has ServerAlive for that).
        budget = len(batch) * (self.timeout + 5) + CLIENT_GRACE
        cap = self.max_output
        # What a batch may send per stream: every probe's capped answer and its frame. The host's `head`
        # keeps within it; a host that does not (its own `head`) is cut here, by the transport.
        limit = len(batch) * (cap + 1 + FRAME_BYTES) + FRAME_BYTES
        result, error = self._execute(batch_script(commands, nonce, cap), budget, idle=self.timeout + 5 + CLIENT_GRACE,
                                      limit=limit)
        if error is not None:
            return all_failed(error)
        elapsed = time.monotonic() - started
        cut = any(getattr(result, "truncated", ()))
        try:
            answers = split_batch(result.stdout_bytes, result.stderr_bytes, nonce, len(batch))
        except BatchFramingError as exc:
            return all_failed(str(exc))
        results: dict[str, Evidence] = {}
        for index, probe in enumerate(batch):
            if index >= len(answers) and cut:
                results[probe.name] = Evidence(
                    probe.name, probe.command, None, "", "", elapsed,
                    error=f"no answer: the batch's output passed {limit} bytes before this probe's end "
                          f"(output truncated at {cap} bytes a probe, --max-probe-output)")
                continue
            if index >= len(answers):
                tail = _text(result.stderr_bytes[-4096:]).strip().splitlines()[-1:] or [""]
                results[probe.name] = Evidence(
                    probe.name, probe.command, None, "", "", elapsed,
                    error=f"no answer: the batch ended early (exit {result.exit_status})"
                          + (f": {tail[0][:200]}" if tail[0] else ""))
                continue
            rc, out, err, seconds = answers[index]
            truncated = cap if len(out) > cap or len(err) > cap else None  # (the host's head sends CAP+1)
            results[probe.name] = self._evidence(probe, rc, _text(out[:cap]), _text(err[:cap]),
                                                 elapsed if seconds is None else seconds, truncated=truncated)
        return {**results, **refused}

    def _run_each(self, probes: list[Probe]) -> dict[str, Evidence]:
        """One command per probe (recorded evidence, or a single probe)."""
        results: dict[str, Evidence] = {}
        if getattr(self.host.backend, "replay", None) is not None:
            # Recorded evidence is a lookup, not a wait: in turn, in this thread (a pool of up to 16 threads
            # per host cost a fleet of snapshots more than the lookups, and the GIL besides).
            for probe in probes:
                results[probe.name] = self.run(probe)
            return results
        workers = max(1, min(self.max_parallel, len(probes)))
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
        try:
            for probe, evidence in zip(probes, pool.map(self.run, probes)):
                results[probe.name] = evidence
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return results


# ---------------------------------------------------------------------- batches
class BatchFramingError(Exception):
    """A batch's output does not have the framing the batch script prints."""


def plan_batches(probes: list[Probe], count: int) -> list[list[Probe]]:
    """Deal probes into at most `count` batches, costliest first onto the least loaded batch
    (Python tools such as semanage cost ~50 small C tools), keeping catalogue order inside each.

    An intrusive probe runs last in the batch of the probes that read logs: `postfix check`
    logs (and, run from an SSH session on a permissive host, raises AVC records), and the
    run must not then report what it caused itself (seen on the real guest)."""
    count = max(1, min(count, len(probes)))
    loads = [0] * count
    members: list[list[int]] = [[] for _ in range(count)]
    pinned = [i for i, p in enumerate(probes) if p.reads_logs or p.intrusive]
    if any(probes[i].intrusive for i in pinned):
        pinned.sort(key=lambda i: probes[i].intrusive)  # stable: log readers in catalogue order, then intrusive
        members[0], loads[0] = pinned, sum(probes[i].cost for i in pinned)
    else:
        pinned = []
    order = sorted((i for i in range(len(probes)) if i not in pinned), key=lambda i: -probes[i].cost)
    for i in order:
        lane = min(range(count), key=lambda k: (loads[k], k))
        loads[lane] += probes[i].cost
        members[lane].append(i)
    return [[probes[i] for i in (m if m is members[0] and pinned else sorted(m))] for m in members if m]


# `read u _ </proc/uptime`: the host's clock in 10 ms steps without starting a program.
_UPTIME = "read u _ </proc/uptime 2>/dev/null || u=-"


def _limited(command: str) -> str:
    """`command` with its stdout and stderr each through `c` (head -c CAP+1, see batch_script), its own
    exit status kept (on fd 3, as the value of `r`): POSIX sh has no pipefail. The probe itself gets
    none of the extra descriptors (3: the status, 6 and 7: the batch's real stdout and stderr)."""
    return (f"r=$( {{ {{ {{ {command} 3>&- 6>&- 7>&-; echo $? >&3; }} 2>&1 >&4 | c >&7; }} 4>&1 | c >&6; }} "
            f"3>&1 )")


def batch_script(commands: list[str], nonce: str, cap: int | None = None) -> str:
    """One shell command that runs `commands` in turn and frames their answers with `nonce`.

    stdout: `NONCE UPTIME` first, then each probe's output followed by `\nNONCE I RC UPTIME\n`;
    stderr: each probe's own stderr followed by `\nNONCE I\n`. The newline before a marker is
    the frame's, so output without a final newline comes back exactly as printed. The nonce is
    random per batch: a host cannot print a marker ahead of time, and `split_batch` refuses any
    output that carries one anyway. The script runs under `sh -c` so the login shell's own
    syntax (fish, tcsh) never matters.

    With `cap`, each probe's stdout and stderr pass through `head -c CAP+1` on the host (`_limited`):
    a probe printing more sends CAP+1 bytes (the reader then knows it was cut) and gets SIGPIPE, so
    the host stops producing it too. Where `head` is missing or refuses `-c`, `cat` passes the
    output on and the client's own cap holds (`ProbeRunner._run_batch`)."""
    lines = [_UPTIME, f"printf '%s %s\\n' {nonce} \"$u\""]
    if cap is not None:
        lines.append(f"c() {{ head -c {int(cap) + 1} 2>/dev/null || cat; }}; exec 6>&1 7>&2")
    for index, command in enumerate(commands):
        lines.append(_limited(command) if cap is not None else command)
        lines.append(("" if cap is not None else "r=$?; ") +
                     f"{_UPTIME}; printf '\\n%s {index} %s %s\\n' {nonce} \"$r\" \"$u\"; "
                     f"printf '\\n%s {index}\\n' {nonce} >&2")
    return "sh -c " + shlex.quote("; ".join(lines))  # one line: as it shows in logs and process lists


def _uptime(word: bytes) -> float | None:
    try:
        return float(word)
    except ValueError:
        return None


def split_batch(stdout: bytes, stderr: bytes, nonce: str, count: int
                ) -> list[tuple[int, bytes, bytes, float | None]]:
    """(rc, stdout, stderr, seconds) for each probe the batch finished, in order; a batch cut
    short gives fewer. Raises BatchFramingError when the frames are not the script's."""
    tag = nonce.encode()
    head, newline, body = stdout.partition(b"\n")
    words = head.split(b" ")
    if not newline or len(words) != 2 or words[0] != tag:
        if not stdout and count:
            return []  # nothing ran at all: the caller reports the exit status and stderr
        raise BatchFramingError("the batch's output does not start with its marker: "
                                + repr(_text(head[:120])))
    last = _uptime(words[1])
    answers: list[tuple[int, bytes, bytes, float | None]] = []
    out_pos = err_pos = 0
    for index in range(count):
        out_marker = b"\n" + tag + b" %d " % index
        end = body.find(out_marker, out_pos)
        if end < 0:
            break
        eol = body.find(b"\n", end + len(out_marker))
        fields = body[end + len(out_marker):eol if eol >= 0 else len(body)].split(b" ")
        err_marker = b"\n" + tag + b" %d\n" % index
        err_end = stderr.find(err_marker, err_pos)
        if eol < 0 or len(fields) != 2 or not fields[0].isdigit() or err_end < 0:
            break
        out, err = body[out_pos:end], stderr[err_pos:err_end]
        if tag in out or tag in err:
            raise BatchFramingError(f"probe {index} of the batch printed the batch's marker")
        now = _uptime(fields[1])
        seconds = None if now is None or last is None else max(0.0, now - last)
        answers.append((int(fields[0]), out, err, seconds))
        last = now
        out_pos, err_pos = eol + 1, err_end + len(err_marker)
    if len(answers) == count and (body[out_pos:] or stderr[err_pos:].strip()):
        raise BatchFramingError("the batch printed more after its last marker")
    return answers


def _is_testinfra_local(backend: Any) -> bool:
    from testinfra.backend.local import LocalBackend
    return type(backend) is LocalBackend


def _run_local(backend: Any, command: str, timeout: float, limit: int) -> Any:
    """A command on this host, as testinfra's local backend runs it (its sudo included), but read as
    it arrives and kept to `limit` bytes a stream, and with a deadline (testinfra's has neither)."""
    cmd = backend.encode(backend.get_command(command))
    rc, out, err, cut = run_bounded(cmd, timeout, limit, shell=True)
    result = backend.result(rc, cmd, out, err)
    result.truncated = cut
    return result


def _text(data: bytes) -> str:
    # Hosts print in their own encoding; never fail on it: undecodable bytes become U+FFFD.
    return data.decode("utf-8", errors="replace")
