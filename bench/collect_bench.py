"""Benchmark: evidence collection against the floor, over a delayed link, and whole-suite fleet runs.

Real sshd hosts on 127.0.0.x (tests/sshd.py), a user-space proxy in front that delays each direction
(bench/delay_proxy.py: this kernel has no netem), and the suite's own transport. Prints one figure a
line and a closing summary line. Run as root from the repository (sshd needs it):

    .venv/bin/python bench/collect_bench.py                       # 25 ms each way, 1/10/50/100 hosts
    .venv/bin/python bench/collect_bench.py --delay-ms 25 --fleet 1,10 --workers 8 --rounds 3 --no-drain

Figures:
  collect_<scheme>_ms     all probes of a host (not the queue drain), concurrently on one connection,
                          connection set-up included (median of --rounds)
  sequential_<scheme>_ms  the same probes one after another on one connection (what one command per
                          check costs)
  floor_<scheme>_ms       one connection set-up + the slowest probe alone: nothing can be faster
  connect+true            one connection set-up + `true` (the transport's own floor)
  hostsN_s                the whole suite (`pytest -n W`) against N loopback hosts, wall time, with
                          the CPU it took: the hosts' (sshd, shells, probes) and the suite's own; on
                          one machine both share its cores, so wall >= their sum / cores
  drain_<case>_s          Q-002 against a throwaway Postfix with 3 deferred messages: seconds from the
                          flush to the decision, with a dead relay, then with a real SMTP sink there
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests"), os.path.join(REPO, "bench")]

from delay_proxy import DelayProxy  # noqa: E402
from sshd import SshFleet  # noqa: E402

from postfix_compliance.backends import make_host  # noqa: E402
from postfix_compliance.facts.collect import ProbeRunner  # noqa: E402
from postfix_compliance.facts.probes import Probe, build_probes  # noqa: E402

BOOLEANS = ("postfix_local_write_mail_spool",)


def _runner(url: str, known_hosts: str, fleet: SshFleet) -> ProbeRunner:
    host = make_host(url, known_hosts=known_hosts, ssh_identity_file=fleet.client_key,
                     ssh_config=fleet.ssh_config(), connect_timeout=10, command_timeout=40)
    return ProbeRunner(host, timeout=30)


def _close(runner: ProbeRunner) -> None:
    close = getattr(runner.host.backend, "close", None)
    if close:
        close()


def _timed(url: str, known_hosts: str, fleet: SshFleet, work) -> tuple[float, object]:
    """Seconds for a fresh connection plus `work(runner)`, and what work returned."""
    runner = _runner(url, known_hosts, fleet)
    started = time.monotonic()
    runner.connect()
    result = work(runner)
    seconds = time.monotonic() - started
    _close(runner)
    return seconds, result


def measure_host(url: str, known_hosts: str, fleet: SshFleet, rounds: int) -> dict[str, float]:
    probes = [p for p in build_probes(BOOLEANS) if not p.intrusive]
    figures: dict[str, list[float]] = {"collect": [], "sequential": [], "floor": [], "connect_true": []}
    slowest: Probe | None = None
    for _ in range(rounds):
        seconds, evidence = _timed(url, known_hosts, fleet, lambda r: r.run_many(probes))
        figures["collect"].append(seconds)
        errors = [e.probe for e in evidence.values() if e.error]
        if errors:
            raise SystemExit(f"probes failed over {url}: {errors}")
        slowest = max(probes, key=lambda p: evidence[p.name].duration)
        figures["sequential"].append(_timed(url, known_hosts, fleet, lambda r: [r.run(p) for p in probes])[0])
        figures["floor"].append(_timed(url, known_hosts, fleet, lambda r: r.run(slowest))[0])
        figures["connect_true"].append(_timed(url, known_hosts, fleet, lambda r: r.run(Probe("true", "true")))[0])
    result = {k: statistics.median(v) * 1000 for k, v in figures.items()}
    result["slowest"] = slowest.name if slowest else "?"
    return result


def suite_wall(fleet: SshFleet, count: int, workers: int) -> tuple[float, float, float]:
    """Wall seconds of the whole suite against `count` hosts, and the CPU seconds it took: the
    suite's own processes (client side) and the hosts' (sshd, shells, probes)."""
    hosts = fleet.hosts[:count]
    known = fleet.known_hosts(*hosts)
    report_dir = tempfile.mkdtemp(prefix="pfc-bench-reports-")
    # (-p no:...: the test tools of a development venv are no part of the suite an operator runs)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:hypothesispytest", f"-n{workers}",
               "--hosts=" + ",".join(h.url("paramiko") for h in hosts), f"--known-hosts={known}",
               f"--ssh-identity-file={fleet.client_key}", f"--report-dir={report_dir}", "--profile=debian12",
               "--drain-timeout=5"]
    host_cpu = fleet.cpu_seconds()
    client_cpu = _children_cpu()
    started = time.monotonic()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - started
    client_cpu = _children_cpu() - client_cpu
    time.sleep(0.5)  # sshd reaps the closed connections' processes; their CPU counts from then
    host_cpu = fleet.cpu_seconds() - host_cpu
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"suite failed ({proc.returncode}): {proc.stderr[-2000:] or proc.stdout[-2000:]}")
    return wall, client_cpu, host_cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


_DECISION = re.compile(r"drain decision: (?P<verdict>\S+) after (?P<seconds>[0-9.]+)s, (?P<polls>\d+) polls")


def drain_run(instance: Any, poll: float) -> dict[str, Any]:
    """Q-002 alone against the throwaway Postfix instance: its verdict, seconds and polls after the flush."""
    report_dir = tempfile.mkdtemp(prefix="pfc-bench-drain-")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-k", "Q-002", "--profile=debian12",
               f"--postfix-config-dir={instance.config_dir}", f"--poll-interval={poll:g}", "--drain-timeout=60",
               f"--report-dir={report_dir}"]
    subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600)
    with open(os.path.join(report_dir, "results.json"), encoding="utf-8") as handle:
        [record] = [r for r in json.load(handle)["results"] if r["check_id"] == "Q-002"]
    match = next(filter(None, (_DECISION.search(n) for n in record.get("notes", []))), None)
    if match is None:
        raise SystemExit(f"Q-002 made no drain decision: {record.get('message')}")
    return {"outcome": record["outcome"], "verdict": match["verdict"], "seconds": float(match["seconds"]),
            "polls": int(match["polls"])}


def drain_figures(poll: float) -> dict[str, dict[str, Any]]:
    """A real Postfix with 3 deferred messages: first its relay is dead (no listener), then a real SMTP
    sink listens there and the same queue drains."""
    from postfix_instance import PostfixInstance, SmtpSink, free_port

    instance = PostfixInstance(free_port())
    instance.start()
    try:
        instance.send(3)
        if not instance.wait_for(lambda: instance.deferred_count() == 3, 30):
            raise SystemExit(f"the test messages were not deferred: {instance.queue()}")
        figures = {"dead_relay": drain_run(instance, poll)}
        sink = SmtpSink(instance.relay_port)
        sink.start()
        try:
            figures["sink"] = drain_run(instance, poll)
        finally:
            sink.stop()
        return figures
    finally:
        instance.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=25.0, help="added delay each way (default 25)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fleet", default="1,10,50,100", help="host counts for whole-suite runs ('' = none)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--poll-interval", type=float, default=0.5, help="queue drain poll interval (default 0.5)")
    parser.add_argument("--no-drain", dest="drain", action="store_false",
                        help="skip the queue-drain figures (they start a throwaway Postfix)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark starts sshd instances")
    counts = [int(n) for n in args.fleet.split(",") if n.strip()]

    fleet = SshFleet(log_commands=False)  # plain sshd hosts: no per-command logging wrapper
    proxy = None
    try:
        host = fleet.add("bench-delayed")
        proxy = DelayProxy(host.address, host.port, args.delay_ms).start()
        keytype, blob = host.public_key.split()[:2]
        known = os.path.join(fleet.base, "known_hosts.delayed")
        with open(known, "w", encoding="ascii") as handle:
            handle.write(f"[127.0.0.1]:{proxy.port} {keytype} {blob}\n")
        print(f"link: {2 * args.delay_ms:g} ms round trip (delay proxy {args.delay_ms:g} ms each way)")
        summary: dict[str, str] = {}
        for scheme in ("paramiko", "ssh"):
            url = f"{scheme}://root@127.0.0.1:{proxy.port}"
            figures = measure_host(url, known, fleet, args.rounds)
            speedup = figures["sequential"] / figures["collect"]
            for key in ("collect", "sequential", "floor", "connect_true"):
                print(f"{key}_{scheme}_ms={figures[key]:.0f}")
            print(f"speedup_{scheme}={speedup:.1f}  (slowest probe: {figures['slowest']}; "
                  f"collect/floor={figures['collect'] / figures['floor']:.2f})")
            if scheme == "paramiko":
                summary.update(collect_ms=f"{figures['collect']:.0f}", sequential_ms=f"{figures['sequential']:.0f}",
                               floor_ms=f"{figures['floor']:.0f}", speedup=f"{speedup:.1f}")
        proxy.stop()
        proxy = None

        if counts:
            for n in range(len(fleet.hosts), max(counts) + 1):
                fleet.add(f"fleet{n}")
        cores = os.cpu_count() or 1
        for count in counts:
            wall, client_cpu, host_cpu = suite_wall(fleet, count, args.workers)
            print(f"hosts{count}_s={wall:.1f}  ({wall / count:.2f} s per host, -n {args.workers}; CPU: hosts "
                  f"{host_cpu:.1f} s ({host_cpu / count:.2f} s each) + suite {client_cpu:.1f} s = "
                  f"{(host_cpu + client_cpu) / cores:.1f} s of this machine's {cores} cores)")
            summary[f"hosts{count}_s"] = f"{wall:.1f}"
        if args.drain:
            drains = drain_figures(args.poll_interval)
            for name, figure in drains.items():
                print(f"drain_{name}_s={figure['seconds']:.2f}  (Q-002 {figure['outcome']}: {figure['verdict']} after "
                      f"{figure['polls']} polls of {args.poll_interval:g} s)")
                summary[f"drain_{name}_s"] = f"{figure['seconds']:.2f}"
        print(" ".join(f"{k}={v}" for k, v in summary.items()))
    finally:
        if proxy is not None:
            proxy.stop()
        fleet.stop()


if __name__ == "__main__":
    main()
