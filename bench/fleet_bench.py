#!/usr/bin/env python3
"""Benchmark: the suite alone at fleet size, against replayed SSH hosts over a delayed link (issue #16).

Fresh Debian 12 machine, from the repository, as root (Chromium, asyncssh and OpenSSH come from it):

    scripts/bootstrap.sh --dev
    .venv/bin/python bench/fleet_bench.py --sizes 1,100,300,1000 --rtt-ms 50
    .venv/bin/python bench/fleet_bench.py --sizes 100 --suite-args='-n 2'        # compare xdist workers
    .venv/bin/python bench/fleet_bench.py --sizes 1000 --mix --fleet-jobs 2       # `fleet run`: 2 local shards
    git worktree add /tmp/before COMMIT && ln -s "$PWD/.venv" /tmp/before/.venv
    .venv/bin/python bench/fleet_bench.py --scheme snapshot --sizes 100,300,1000 --before /tmp/before
                                                  # the suite alone (no SSH), an earlier commit side by side
    .venv/bin/python bench/fleet_bench.py --scheme snapshot --sizes 1000 --before /tmp/b1 --before /tmp/b2
                                                  # several earlier commits (oldest first), one line a size:
                                                  # "# side by side: fleet_hosts=N wall_s=b1:..,b2:..,after:.."

What runs:
  - bench/replay_host.py: ONE asyncssh process serving max(--sizes) SSH hosts on 127.0.0.2, 127.0.0.3, ...
    (loopback only), each with its own ed25519 host key in a known_hosts file, answering the suite's
    framed probe batches from a recorded snapshot (--snapshot, default fixtures/hosts/healthy-rhel9.json);
  - bench/fleet_proxy.py: ONE process with one listening socket on each host address (port --port), that
    forwards to the replay host (port --port + 1) through delay_proxy.py's own pump, rtt/2 each way;
  - the suite, as an operator runs it, once per size (the first N hosts):
        python -m pytest -p no:hypothesispytest --hosts=ssh://root@127.0.0.2:2222,... --known-hosts=FILE
            --ssh-identity-file=KEY --profile=rhel9 --report-dir=DIR [--suite-args ...]
    or, with --fleet-jobs N, as N local shards merged into DIR (the figures are the whole tree's):
        python -m postfix_compliance.fleet run DIR --jobs=N -- -p no:hypothesispytest --hosts=... [...]
    (`-p no:hypothesispytest`: a test tool of the dev venv, no part of an operator's install).

Figures per size:
  wall_s             the suite's wall time (process start to exit)
  suite_cpu_ms/host  user+sys CPU of the suite's whole process tree (pytest, xdist workers, the `ssh`
                     clients and ControlMaster processes of ssh://) / hosts: RUSAGE_CHILDREN deltas around
                     the run; this process is a child subreaper (PR_SET_CHILD_SUBREAPER), so the
                     ControlMasters that `ssh -f` detaches are reparented here and reaped after the run:
                     their CPU is counted too. The replay host's and proxy's CPU are apart (replay_cpu_s,
                     proxy_cpu_s, from /proc/PID/stat) and not in the suite's figure.
  peak_mb            the larger of: the peak of the summed PSS (/proc/PID/smaps_rollup) of every process of
                     the suite's tree, sampled each --sample-s seconds; and the largest single process's
                     max RSS (wait4's ru_maxrss: the controller or the largest xdist worker), shown as
                     maxrss_mb. PSS counts shared pages once, so 1,000 ControlMasters are not 1,000 libcryptos;
                     a child between vfork and exec (it shares its parent's memory) is not counted again.
  html_mb, json_mb   compliance.html (fleet.html with --fleet-jobs) and results.json sizes
  html_load_s        headless Chromium (tests/chromium.py, the system's chromium, already started): from
                     Page.navigate of file://compliance.html until its load event has fired and the next
                     frame is painted (requestAnimationFrame + setTimeout 0), best of --page-loads;
                     load_event_s is the page's own loadEventEnd (Navigation Timing) for comparison
  floor_cpu_ms/host  the same number of pytest items (hosts x the catalogue's checks, counted from the run's results.json) in a
                     generated throwaway test file: parametrized trivial tests asserting on facts cached at
                     import (each host's probe exit statuses), run by a bare pytest with its own empty ini
                     (so none of the suite's plugins: they load only from the repository's pytest.ini) and
                     `-p no:html -p no:metadata -p no:testinfra -p no:xdist -p no:cacheprovider
                     -p no:hypothesispytest` (no report plugin; junitxml writes nothing without --junitxml);
                     the same CPU measurement
One row per size, a table, then one summary line per size:
  fleet_hosts=N wall_s=... suite_cpu_ms_per_host=... peak_mb=... html_load_s=... floor_cpu_ms_per_host=...
The issue's targets at 1,000 hosts (wall <= 90 s, <= 20 ms CPU/host, <= 500 MB, HTML <= 3 s) are marked.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
sys.path[:0] = [REPO, BENCH, os.path.join(REPO, "tests")]

from selftest import N_CHECKS as CHECKS_PER_HOST  # noqa: E402  (the catalogue's size, each host's records)
TARGETS = {"wall_s": 90.0, "suite_cpu_ms_per_host": 20.0, "peak_mb": 500.0, "html_load_s": 3.0}
PR_SET_CHILD_SUBREAPER = 36
NEXT_FRAME_JS = "new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))"


# ---------------------------------------------------------------------- processes
def become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except OSError:
        return False


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _proc_table() -> dict[int, int]:
    """pid -> ppid of every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        table[int(name)] = int(fields[1])
    return table


def _descendants(root: int, table: dict[int, int], exclude: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in exclude and child not in found:
                found.add(child)
                todo.append(child)
    return found


KCMP_VM = 1
_KCMP_SYSCALL = {"x86_64": 312, "aarch64": 272}.get(os.uname().machine)
_LIBC: list = []


def _same_memory(pid: int, other: int) -> bool:
    """Whether two processes share one address space (kcmp(2) KCMP_VM): a child between vfork and exec
    (Python's subprocess uses vfork) shows its parent's whole memory in its own smaps_rollup, and a
    sample that caught one counted the suite twice. False where kcmp is not available."""
    if _KCMP_SYSCALL is None:
        return False
    if not _LIBC:
        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0].syscall(_KCMP_SYSCALL, pid, other, KCMP_VM, 0, 0) == 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _cpu_of(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TreeSampler(threading.Thread):
    """Peak of the summed PSS of this process's descendants (less `exclude`: the replay host, the proxy)."""

    def __init__(self, exclude: set[int], interval: float):
        super().__init__(daemon=True)
        self.exclude, self.interval = exclude, interval
        self.peak_kb = 0
        self.peak_procs = 0
        self._halt = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._halt.is_set():
            table = _proc_table()
            pids = _descendants(me, table, self.exclude)
            # (asked before reading: a process that has its own memory now never shares its parent's again)
            total = sum(_pss_kb(pid) for pid in pids if not _same_memory(pid, table[pid]))
            if total > self.peak_kb:
                self.peak_kb, self.peak_procs = total, len(pids)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def reap_orphans(keep: set[int], timeout: float) -> int:
    """Wait for the processes reparented here (ssh ControlMasters, Chromium helpers) to exit and reap
    them, so that their CPU is in RUSAGE_CHILDREN; `keep` (the replay host, the proxy) are left alone."""
    me, reaped = os.getpid(), 0
    deadline = time.monotonic() + timeout
    while True:
        mine = [pid for pid, ppid in _proc_table().items() if ppid == me and pid not in keep]
        for pid in mine:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
                reaped += bool(done)
            except ChildProcessError:
                pass
        if not mine or time.monotonic() > deadline:
            return reaped
        time.sleep(0.1)


def measured_run(command: list[str], cwd: str, log: str, keep: set[int], sample_s: float,
                 env: dict[str, str] | None = None) -> dict[str, float]:
    """Run `command` (its output to `log`), with wall time, the CPU of its whole tree and its memory."""
    sampler = TreeSampler(keep, sample_s)
    cpu_before = _children_cpu()
    with open(log, "wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # stopped (SIGTERM/SIGINT): stop the suite too, then the servers (main's finally)
            proc.terminate()
            proc.wait(30)
            sampler.stop()
            raise
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop()
    orphans = reap_orphans(keep, 30)
    return {"wall_s": wall, "cpu_s": _children_cpu() - cpu_before, "maxrss_mb": usage.ru_maxrss / 1024,
            "tree_pss_mb": sampler.peak_kb / 1024, "tree_procs": sampler.peak_procs, "orphans_reaped": orphans,
            "rc": proc.returncode}


class Server:
    """replay_host.py or fleet_proxy.py, started and waited for ('ready'), stopped with SIGTERM. Its stdout
    (the ready line, its closing CPU line) goes to LOG, its stderr (a library's warnings) to LOG.err."""

    def __init__(self, argv: list[str], log: str):
        self.log = log
        self.handle = open(log, "wb")
        with open(log + ".err", "wb") as err:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=self.handle, stderr=err)

    def wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = open(self.log, encoding="utf-8", errors="replace").read().splitlines()
            ready = [line for line in lines if line.startswith("ready ")]
            if ready:
                return ready[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        said = open(self.log, errors="replace").read()[-1500:] + open(self.log + ".err", errors="replace").read()[-1500:]
        raise SystemExit(f"fleet_bench: {self.proc.args[1]} did not start within {timeout:g}s:\n{said}")

    def cpu(self) -> float:
        return _cpu_of(self.proc.pid)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.handle.close()
        lines = open(self.log, encoding="utf-8", errors="replace").read().strip().splitlines()
        return lines[-1] if lines else ""


# ---------------------------------------------------------------------- pieces
def outcomes(report_dir: str) -> tuple[int, dict[str, int], str]:
    """(records, count per outcome, the first error's message) of results.json."""
    path = os.path.join(report_dir, "results.json")
    if not os.path.exists(path):
        return 0, {}, "no results.json"
    with open(path, encoding="utf-8") as handle:
        records = json.load(handle)["results"]
    counts: dict[str, int] = {}
    first_error = ""
    for record in records:
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
        if record["outcome"] == "error" and not first_error:
            first_error = str(record.get("message", ""))[:300]
    return len(records), counts, first_error


def html_load(html: str, loads: int) -> tuple[float, float]:
    """(seconds from navigate to the first frame after the load event, the page's loadEventEnd), best of
    `loads`, in headless Chromium (started before timing)."""
    from chromium import Chromium

    best, best_event = float("inf"), float("inf")
    with Chromium(timeout=900) as browser:
        for _ in range(loads):
            page = browser.new_page(width=1400, height=900)
            started = time.monotonic()
            page.navigate("file://" + html, timeout=900)
            page.evaluate(NEXT_FRAME_JS, timeout=900)
            seconds = time.monotonic() - started
            event = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000
            best, best_event = min(best, seconds), min(best_event, event)
            browser.send("Target.closeTarget", {"targetId": page.target})
    return best, best_event


FLOOR_TEST = '''"""Generated by bench/fleet_bench.py: the floor, {items} trivial items on cached facts."""
import json

import pytest

with open({facts!r}, encoding="utf-8") as handle:
    FACTS = json.load(handle)  # per host: probe -> exit status, cached once
PROBES = sorted(FACTS[0])


@pytest.mark.parametrize("check", range({checks}))
@pytest.mark.parametrize("host", range({hosts}))
def test_floor(host, check):
    facts = FACTS[host]
    assert facts[PROBES[check % len(PROBES)]] in (0, 1, 127, None)
'''


def floor_run(work: str, snapshot_dir: str, hosts: int, checks: int, keep: set[int], sample_s: float
              ) -> dict[str, float]:
    floor = os.path.join(work, f"floor{hosts}")
    os.makedirs(floor, exist_ok=True)
    facts = []
    for index in range(hosts):
        with open(os.path.join(snapshot_dir, f"host{index:04d}.json"), encoding="utf-8") as handle:
            facts.append({ev["probe"]: ev.get("exit_status") for ev in json.load(handle)["evidence"]})
    facts_path = os.path.join(floor, "facts.json")
    with open(facts_path, "w", encoding="utf-8") as handle:
        json.dump(facts, handle)
    with open(os.path.join(floor, "test_floor.py"), "w", encoding="utf-8") as handle:
        handle.write(FLOOR_TEST.format(items=hosts * checks, facts=facts_path, checks=checks, hosts=hosts))
    with open(os.path.join(floor, "pytest.ini"), "w", encoding="utf-8") as handle:
        handle.write("[pytest]\n")
    command = [sys.executable, "-m", "pytest", "-c", os.path.join(floor, "pytest.ini"), "--rootdir", floor,
               "-p", "no:html", "-p", "no:metadata", "-p", "no:testinfra", "-p", "no:xdist",
               "-p", "no:cacheprovider", "-p", "no:hypothesispytest", os.path.join(floor, "test_floor.py")]
    result = measured_run(command, floor, os.path.join(floor, "pytest.log"), keep, sample_s)
    if result["rc"] != 0:
        raise SystemExit(f"fleet_bench: the floor run failed ({result['rc']}): "
                         f"{open(os.path.join(floor, 'pytest.log')).read()[-2000:]}")
    return result


def is_before(label: str) -> bool:
    return label == "before" or label.startswith("before-")


def before_suites(checkouts: list[str]) -> list[tuple[str, str]]:
    """(label, checkout) of each --before: "before" for one (as ever), "before-COMMIT" for several (the
    checkout's short commit, else its directory's name)."""
    if len(checkouts) == 1:
        return [("before", os.path.abspath(checkouts[0]))]
    suites = []
    for checkout in checkouts:
        found = subprocess.run(["git", "-C", checkout, "rev-parse", "--short=7", "HEAD"], capture_output=True,
                               text=True, check=False, timeout=60)
        name = found.stdout.strip() if found.returncode == 0 and found.stdout.strip() else os.path.basename(
            os.path.abspath(checkout))
        suites.append((f"before-{name}", os.path.abspath(checkout)))
    return suites


def side_by_side(rows: list[dict], size: int) -> str | None:
    """One line for a size run by several suites: each figure per suite (its label: the commit, or "after"),
    and this code's CPU as a multiple of pytest's floor for the same items."""
    runs = [r for r in rows if r["hosts"] == size]
    if len(runs) < 2:
        return None

    def name(r: dict) -> str:
        return r["label"].removeprefix("before-") if r["label"].startswith("before-") else r["label"]

    def each(key: str, form: str) -> str:
        return ",".join(f"{name(r)}:{r[key]:{form}}" for r in runs)

    after = runs[-1]
    floor = after["floor_cpu_ms_per_host"]
    ratio = after["suite_cpu_ms_per_host"] / floor if floor == floor and floor > 0 else float("nan")
    return (f"# side by side: fleet_hosts={size} wall_s={each('wall_s', '.1f')} cpu_s={each('cpu_s', '.1f')} "
            f"suite_cpu_ms_per_host={each('suite_cpu_ms_per_host', '.1f')} peak_mb={each('peak_mb', '.0f')} "
            f"html_load_s={each('html_load_s', '.2f')} floor_cpu_ms_per_host={floor:.1f} "
            f"cpu_vs_floor={ratio:.2f}")


def _mark(key: str, value: float, hosts: int) -> str:
    if hosts != 1000 or key not in TARGETS:
        return ""
    return " ok" if value <= TARGETS[key] else f" MISSES target {TARGETS[key]:g}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100,300,1000", help="host counts, one suite run each")
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="round trip added by the proxy (0: no proxy)")
    parser.add_argument("--port", type=int, default=2222, help="port on each 127.0.0.x (replay host: port+1)")
    parser.add_argument("--snapshot", default=os.path.join(REPO, "fixtures", "hosts", "healthy-rhel9.json"))
    parser.add_argument("--mix", action="store_true", help="replay_host --mix: some hosts fail checks")
    parser.add_argument("--profile", default="rhel9")
    parser.add_argument("--scheme", default="ssh", choices=("ssh", "paramiko", "snapshot"),
                        help="host URL scheme (default ssh://, the suite's OpenSSH backend; snapshot://: the "
                             "replay host's snapshot files read directly, no SSH at all)")
    parser.add_argument("--before", metavar="CHECKOUT", action="append", default=[],
                        help="a checkout of an earlier commit (git worktree add DIR COMMIT): each size runs its "
                             "suite too, on the same hosts with the same arguments, just before this one's; "
                             "repeat it to put several earlier commits side by side (oldest first)")
    parser.add_argument("--fleet-jobs", type=int, default=0, metavar="N",
                        help="run each suite as `python -m postfix_compliance.fleet run --jobs N` (N local shards, "
                             "merged; the page measured is fleet.html) instead of one pytest (default 0: pytest)")
    parser.add_argument("--suite-args", default="", help="more suite arguments, e.g. '-n 2' (shell words)")
    parser.add_argument("--page-loads", type=int, default=1, help="HTML loads per size; the best is shown")
    parser.add_argument("--no-html-load", dest="html_load", action="store_false")
    parser.add_argument("--no-floor", dest="floor", action="store_false")
    parser.add_argument("--sample-s", type=float, default=1.0, help="memory sampling interval (default 1 s)")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir, removed)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",") if n.strip()]
    if not sizes or min(sizes) < 1:
        parser.error("--sizes: positive host counts, e.g. 1,100,300,1000")
    suite_args = shlex.split(args.suite_args)
    for before in args.before:
        if args.fleet_jobs and not os.path.exists(os.path.join(before, "postfix_compliance", "fleet_run.py")):
            parser.error(f"--fleet-jobs: {before} has no `fleet run` (postfix_compliance/fleet_run.py)")
    if args.html_load:
        from chromium import find_chromium
        if not find_chromium():
            parser.error("no Chromium (Debian: apt-get install chromium), or pass --no-html-load")
    subreaper = become_subreaper()
    # SIGTERM, and SIGINT even where a non-interactive shell started this in the background (SIG_IGN):
    # unwind through the finally blocks, so the suite, the proxy and the replay host are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    work = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="pfc-fleet-bench-")
    os.makedirs(work, exist_ok=True)
    fleet_dir = os.path.join(work, "fleet")
    hosts_max = max(sizes)
    upstream = args.port + 1 if args.rtt_ms > 0 else args.port
    replay = Server([sys.executable, os.path.join(BENCH, "replay_host.py"), "--hosts", str(hosts_max),
                     "--port", str(upstream), "--advertise-port", str(args.port), "--dir", fleet_dir,
                     "--snapshot", args.snapshot, *(["--mix"] if args.mix else [])],
                    os.path.join(work, "replay_host.log"))
    proxy = None
    rows = []
    try:
        print(f"# {replay.wait_ready(120)}", flush=True)
        if args.rtt_ms > 0 and args.scheme != "snapshot":
            proxy = Server([sys.executable, os.path.join(BENCH, "fleet_proxy.py"), "--hosts", str(hosts_max),
                            "--port", str(args.port), "--upstream-port", str(upstream),
                            "--delay-ms", str(args.rtt_ms / 2)], os.path.join(work, "fleet_proxy.log"))
            print(f"# {proxy.wait_ready(60)}", flush=True)
        keep = {replay.proc.pid} | ({proxy.proc.pid} if proxy else set())
        with open(os.path.join(fleet_dir, "hosts.txt"), encoding="ascii") as handle:
            urls = [line.strip().replace("ssh://", f"{args.scheme}://", 1) for line in handle if line.strip()]
        print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; rtt {args.rtt_ms:g} ms; scheme "
              f"{args.scheme}://; suite args: {' '.join(suite_args) or '(none)'}; subreaper: {subreaper}; work {work}",
              flush=True)
        suites = [*before_suites(args.before), ("after", REPO)] if args.before else [("", REPO)]
        for size, (label, suite_repo) in [(size, suite) for size in sizes for suite in suites]:
            report_dir = os.path.join(work, f"reports{size}{label}")
            if args.scheme == "snapshot":
                hosts = [f"snapshot://{os.path.join(fleet_dir, 'snapshots', name)}"
                         for name in sorted(os.listdir(os.path.join(fleet_dir, "snapshots")))[:size]]
                access: list[str] = []
            else:
                hosts = urls[:size]
                access = [f"--known-hosts={os.path.join(fleet_dir, 'known_hosts')}",
                          f"--ssh-identity-file={os.path.join(fleet_dir, 'client_key')}"]
            arguments = ["-p", "no:hypothesispytest", "--hosts=" + ",".join(hosts), *access,
                         f"--profile={args.profile}"]
            if args.fleet_jobs:  # N local shards, merged into report_dir (fleet.html, results.json)
                command = [sys.executable, "-m", "postfix_compliance.fleet", "run", report_dir,
                           f"--jobs={args.fleet_jobs}", "--", *arguments, *suite_args]
            else:
                command = [sys.executable, "-m", "pytest", *arguments, f"--report-dir={report_dir}", *suite_args]
            replay_cpu, proxy_cpu = replay.cpu(), proxy.cpu() if proxy else 0.0
            run = measured_run(command, suite_repo, os.path.join(work, f"suite{size}{label}.log"), keep, args.sample_s)
            run["replay_cpu_s"] = replay.cpu() - replay_cpu
            run["proxy_cpu_s"] = (proxy.cpu() - proxy_cpu) if proxy else 0.0
            records, counts, first_error = outcomes(report_dir)
            html = os.path.join(report_dir, "fleet.html" if args.fleet_jobs else "compliance.html")
            row = {"hosts": size, "label": label, **run, "records": records, "counts": counts,
                   "html_mb": os.path.getsize(html) / 1e6 if os.path.exists(html) else float("nan"),
                   "json_mb": os.path.getsize(os.path.join(report_dir, "results.json")) / 1e6 if records else float("nan")}
            row["suite_cpu_ms_per_host"] = run["cpu_s"] * 1000 / size
            row["peak_mb"] = max(run["tree_pss_mb"], run["maxrss_mb"])
            print(f"hosts={size}{' ' + label if label else ''} load_avg={os.getloadavg()[0]:.2f} rc={run['rc']} "
                  f"wall_s={run['wall_s']:.1f} suite_cpu_s={run['cpu_s']:.1f} "
                  f"replay_cpu_s={run['replay_cpu_s']:.1f} proxy_cpu_s={run['proxy_cpu_s']:.1f} "
                  f"tree_pss_mb={run['tree_pss_mb']:.0f} (peak {run['tree_procs']} processes) "
                  f"maxrss_mb={run['maxrss_mb']:.0f} orphans_reaped={run['orphans_reaped']} records={records} "
                  f"outcomes={json.dumps(counts, sort_keys=True)}", flush=True)
            # an earlier checkout (--before) may have had fewer checks: only this code's count is known
            if counts.get("error") or (not is_before(label) and records != size * CHECKS_PER_HOST):
                print(f"#  WARNING: {counts.get('error', 0)} errors, {records} records for {size} hosts "
                      f"(expected {size * CHECKS_PER_HOST}); first error: {first_error}", flush=True)
            if args.html_load and os.path.exists(html):
                row["html_load_s"], row["load_event_s"] = html_load(html, args.page_loads)
                reap_orphans(keep, 10)
            else:
                row["html_load_s"] = row["load_event_s"] = float("nan")
            if args.floor and not is_before(label):  # the floor is the same pytest for all: once a size
                items = records // size if records else CHECKS_PER_HOST
                floor = floor_run(work, os.path.join(fleet_dir, "snapshots"), size, items, keep, args.sample_s)
                row["floor_cpu_ms_per_host"] = floor["cpu_s"] * 1000 / size
                row["floor_wall_s"] = floor["wall_s"]
                row["floor_mb"] = max(floor["tree_pss_mb"], floor["maxrss_mb"])
            else:
                row["floor_cpu_ms_per_host"] = row["floor_wall_s"] = row["floor_mb"] = float("nan")
            for earlier in rows:
                if earlier["hosts"] == size and is_before(earlier["label"]):
                    earlier.update({k: row[k] for k in ("floor_cpu_ms_per_host", "floor_wall_s", "floor_mb")})
            print(f"hosts={size}{' ' + label if label else ''} html_mb={row['html_mb']:.1f} json_mb={row['json_mb']:.1f} "
                  f"html_load_s={row['html_load_s']:.2f} load_event_s={row['load_event_s']:.2f} "
                  f"floor_cpu_ms_per_host={row['floor_cpu_ms_per_host']:.1f} floor_wall_s={row['floor_wall_s']:.1f} "
                  f"floor_mb={row['floor_mb']:.0f}", flush=True)
            rows.append(row)
    finally:
        if proxy is not None:
            print(f"# {proxy.stop()}")
        print(f"# {replay.stop()}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print()
    header = ("hosts", *(("run",) if args.before else ()), "wall s", "suite CPU s", "CPU ms/host", "peak MB",
              "maxrss MB", "html MB", "json MB", "html load s", "floor ms/host", "replay CPU s", "proxy CPU s")
    print(" | ".join(header))
    for r in rows:
        print(" | ".join([f"{r['hosts']}", *([r["label"]] if args.before else []), f"{r['wall_s']:.1f}",
                          f"{r['cpu_s']:.1f}", f"{r['suite_cpu_ms_per_host']:.1f}", f"{r['peak_mb']:.0f}", f"{r['maxrss_mb']:.0f}", f"{r['html_mb']:.1f}", f"{r['json_mb']:.1f}",
                          f"{r['html_load_s']:.2f}", f"{r['floor_cpu_ms_per_host']:.1f}", f"{r['replay_cpu_s']:.1f}",
                          f"{r['proxy_cpu_s']:.1f}"]))
    print()
    for r in rows:
        print(f"{'# ' + r['label'].replace('-', ' ') + ': ' if is_before(r['label']) else ''}"
              f"fleet_hosts={r['hosts']} wall_s={r['wall_s']:.1f} "
              f"suite_cpu_ms_per_host={r['suite_cpu_ms_per_host']:.1f} "
              f"peak_mb={r['peak_mb']:.0f} html_load_s={r['html_load_s']:.2f} "
              f"floor_cpu_ms_per_host={r['floor_cpu_ms_per_host']:.1f}")
    for size in sizes:
        line = side_by_side(rows, size)
        if line:
            print(line)
    for r in rows:
        if r["hosts"] == 1000 and not is_before(r["label"]):
            marks = [f"{k}={r[k]:.1f}{_mark(k, r[k], 1000)}" for k in TARGETS]
            print("# targets at 1000 hosts: " + ", ".join(marks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
