"""`fleet run`: one machine's cores on one fleet, as N local shards of the suite joined by `fleet merge`.

    python -m postfix_compliance.fleet run OUT_DIR [--jobs N] -- SUITE ARGUMENTS

A pytest process runs a host's checks on one core (the GIL), and pytest-xdist adds a controller that
handles every report again (on 2 cores, -n 2 was no faster and used twice the CPU). This starts N
suites instead (default: one more than the cores this process may use), each `--shard K/N` of the same
hosts (targets.py: a host's slice is its own, stable) with its own report directory OUT_DIR/shards/K and its
terminal output in OUT_DIR/shards/K.log, and when all have ended merges their results.json with
fleet.py `cmd_merge` into OUT_DIR (results.json, metrics.prom, fleet.html and each host's page under
hosts/). Each shard holds only its own hosts, so memory is the single run's, spread over N processes.
A shard writes results.json only (--results-only): its pages and junit.xml would be made again by the
merge, and pytest-html and junitxml were a fifth of a shard's CPU.

Exit status, as the suite's: the worse of the merged run's and every shard's (0, 1 or 2; a shard's
--baseline regression counts). Bad input (the suite's exit 4: a bad URL, profile, option) is its one
ERROR line, shown once, and nothing is merged; a shard that ended otherwise (killed, internal error) is
named with its log, and nothing is merged: a report without its hosts would read as a smaller fleet.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any, Sequence

from postfix_compliance.atomicfile import PRIVATE_MODE
from postfix_compliance.errors import UsageError
from postfix_compliance.facts.collect import PREFETCH_HOSTS
from postfix_compliance.outputpaths import check_renderer_paths
from postfix_compliance.private_dirs import private_dir
from postfix_compliance.report import outputs as report_outputs
from postfix_compliance.text import inert

USAGE_EXIT = 4
JUDGED = (0, 1, 2)  # the suite's own verdicts: every host of the shard was checked

# Options a shard cannot take from the command line: fleet run sets them, or each of N shards would
# write the same single file (the merged OUT_DIR has results.json and fleet.html instead). The renderers'
# outputs (report/outputs.py: --metrics, --remediation-script, ...) are taken from the shards' arguments
# and written by the merge, from the merged run (merge_outputs).
_SET_BY_FLEET_RUN = {
    "--shard": "fleet run gives each shard its own --shard K/N",
    "--report-dir": "each shard reports to OUT_DIR/shards/K; the merged report is OUT_DIR",
    "--no-reports": "the shards' results.json are what fleet run merges",
    "--results-only": "fleet run's shards write results.json only already",
    "--html": "one file from N shards; the merged page is OUT_DIR/fleet.html",
}


class FleetRunError(Exception):
    """Bad input to fleet run: one line, exit 4."""


def default_jobs() -> int:
    """One shard more than the cores this process may run on (a container's or taskset's limit, not the
    machine's): a shard also waits on its hosts, and the spare one runs meanwhile. Measured on 2 cores,
    1,000 paramiko:// hosts at 50 ms, 16 hosts in flight each: 2 shards 95.7 s, 3 shards 83.3 s, 4 shards
    90.1 s (more memory, more switching)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores) + 1


def _option_name(arg: str) -> str:
    return arg.split("=", 1)[0]  # "--metrics=FILE" and "--metrics FILE" alike


def merge_outputs(args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """(the shards' arguments, the outputs the merge writes: dest -> path): `--xccdf FILE` and `--xccdf=FILE`
    taken out of the arguments before `--` (what follows is pytest's positional arguments)."""
    flags = {o.flag: o.dest for o in report_outputs.OUTPUTS}
    shard_args: list[str] = []
    outputs: dict[str, str] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            shard_args += [arg, *rest]
            break
        name = _option_name(arg)
        if name in flags:
            if "=" in arg:
                outputs[flags[name]] = arg.split("=", 1)[1]
            elif rest:
                outputs[flags[name]] = rest.pop(0)
            else:
                raise FleetRunError(f"{name} needs a value")
            continue
        shard_args.append(arg)
    return shard_args, outputs


def check_suite_args(args: Sequence[str]) -> None:
    for arg in args:
        name = _option_name(arg)
        if name in _SET_BY_FLEET_RUN:
            raise FleetRunError(f"{name} cannot be given to fleet run: {_SET_BY_FLEET_RUN[name]}")
        if arg == "--":
            return  # what follows is pytest's positional arguments


def shard_command(suite_args: Sequence[str], index: int, count: int, report_dir: str) -> list[str]:
    """A shard's suite. Unless the arguments say otherwise, the single run's hosts in flight
    (--prefetch-hosts) are shared out over the shards, at least 4 each: 3 shards of 16 held three times
    the SSH sessions (ssh://, 1,000 hosts: 546 MB with its ControlMasters and clients, 402 MB shared out;
    paramiko:// 83.3 s with 16 each, 86.2 s shared out)."""
    prefetch = [] if any(_option_name(a) == "--prefetch-hosts" for a in suite_args) else \
        [f"--prefetch-hosts={max(4, -(-PREFETCH_HOSTS // count))}"]
    return [sys.executable, "-m", "pytest", *suite_args, f"--shard={index}/{count}", f"--report-dir={report_dir}",
            "--results-only", *prefetch]


def _tail(log_path: str, size: int) -> list[str]:
    """The non-empty lines of the last `size` bytes of a shard's log (none if it cannot be read)."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - size))
            return [line for line in handle.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return []


def _error_lines(log_path: str, limit: int = 3) -> list[str]:
    """The suite's own ERROR: lines at the end of a shard's log (its bad-input message), and pytest's
    argparse line after its usage line (`python -m pytest: error: unrecognized arguments: ...`)."""
    return [line for line in _tail(log_path, 65536) if line.startswith("ERROR") or ": error: " in line][-limit:]


def _last_line(log_path: str) -> str:
    lines = _tail(log_path, 4096)
    return lines[-1].strip("= ") if lines else ""


def _new_log(path: str) -> Any:
    """A shard's log, a new file (O_EXCL, O_NOFOLLOW): one left by an earlier run is removed first, and a
    name planted meanwhile is refused rather than written through."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_MODE)
    return os.fdopen(fd, "wb")


def run(out_dir: str, jobs: int, suite_args: Sequence[str], merge: Any) -> int:
    """Start `jobs` shards, wait for all, merge with `merge(out_dir, report_dirs)` (fleet.cmd_merge)."""
    suite_args, outputs = merge_outputs(suite_args)
    if not 1 <= jobs <= 256:
        raise FleetRunError(f"--jobs {jobs}: give a number of shards from 1 to 256")
    check_suite_args(suite_args)
    try:  # before any shard starts: a bad path is one line
        check_renderer_paths(outputs)
    except UsageError as exc:
        raise FleetRunError(str(exc)) from None
    shards_dir = os.path.join(out_dir, "shards")
    try:  # a directory another user could write would let them plant the shards' logs and results
        private_dir(out_dir, "output directory")
        private_dir(shards_dir, "shard directory")
    except UsageError as exc:
        raise FleetRunError(str(exc)) from None
    report_dirs = [os.path.join(shards_dir, str(k)) for k in range(1, jobs + 1)]
    logs = [os.path.join(shards_dir, f"{k}.log") for k in range(1, jobs + 1)]
    started = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, _frame: Any) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        for index, (report_dir, log_path) in enumerate(zip(report_dirs, logs), start=1):
            with _new_log(log_path) as log:
                procs.append(subprocess.Popen(shard_command(suite_args, index, jobs, report_dir),
                                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT))
        print(f"fleet run: {jobs} shard{'s' if jobs != 1 else ''} started, logs in {shards_dir}/K.log",
              file=sys.stderr, flush=True)
        statuses: dict[int, int] = {}
        while len(statuses) < jobs:
            pid, wait_status = os.wait()
            for index, proc in enumerate(procs, start=1):
                if proc.pid == pid:
                    proc.returncode = os.waitstatus_to_exitcode(wait_status)
                    statuses[index] = proc.returncode
                    said = f": {_last_line(logs[index - 1])}" if proc.returncode in JUDGED else ""
                    print(inert(f"fleet run: shard {index}/{jobs}: exit {proc.returncode} after "
                                f"{time.monotonic() - started:.1f} s{said}"), file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # the shards had the terminal's SIGINT too: let them end, then stop
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in procs:  # stopped by a signal: SIGTERM went to each; a shard that lingers is killed
            if proc.returncode is None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    usage = [k for k, s in statuses.items() if s == USAGE_EXIT]
    if usage:  # every shard read the same arguments: the suite's own line, once
        lines = _error_lines(logs[usage[0] - 1]) or [f"ERROR: fleet run: shard {usage[0]}/{jobs}: bad input, "
                                                     f"see {logs[usage[0] - 1]}"]
        for line in lines:
            print(inert(line), file=sys.stderr)
        return USAGE_EXIT
    broken = [k for k, s in sorted(statuses.items()) if s not in JUDGED]
    if broken:
        k = broken[0]
        print(inert(f"ERROR: fleet run: shard {k}/{jobs} ended with exit {statuses[k]}, its hosts were not all "
                    f"checked; nothing merged: see {logs[k - 1]}"), file=sys.stderr)
        return 2
    return max([merge(out_dir, report_dirs, outputs, "--sudo" in suite_args), *statuses.values()])
