#!/usr/bin/env python3
"""Benchmark the HTML report: 100 hosts x all checks, rendered by pytest-html through the real suite,
loaded in headless Chromium.

    .venv/bin/python bench/report_bench.py                 # 100 hosts, our report
    .venv/bin/python bench/report_bench.py --stock         # the same run with our HTML plugin off
    .venv/bin/python bench/report_bench.py --hosts 20 --keep /tmp/bench

How: it makes N copies of one healthy host snapshot (fixtures/hosts/<--base>.json, else
tests/data/healthy-debian12.json), each with its own host name and pids and a few outputs changed
so that hosts differ (some permissive, some with a mislabelled queue and denials, some with long
process lists), runs
`python -m pytest --hosts=snapshot://...` once over all of them (the real suite, real pytest-html
rendering), then opens the report in headless Chromium (Debian's chromium) and measures:
  - size_kb: the self-contained HTML file
  - dcl_s / load_s: DOMContentLoaded and load, from navigation start (pytest-html builds its whole
    results table client-side, in the inline script that runs before DOMContentLoaded)
  - parsed_s: the HTML is parsed up to pytest-html's data blob (its script starts then)
  - table_s: the results table is in the DOM with all its rows (table_s - parsed_s: pytest-html's
    JavaScript building the rows)
  - painted_s: the first frame after that (style, layout and paint of the table done)
  - toggle_s: one click on a row's result cell until the next frame (pytest-html redraws the whole
    table on every expand/collapse)
  - all_rows_s: following the banner's "List all" link until the page is painted again (a large
    report of ours opens listing only the failing checks; this lists all rows)
  - toggle_all_s: one row's expand/collapse with every row listed
One figure per line, then a summary line: hosts=... checks=... size_kb=... load_s=...

    .venv/bin/python bench/report_bench.py --hosts 10000 --merge-slices 10

a fleet merged from slices instead: the hosts checked by N suite runs of --results-only (slices of at most
--hosts/N hosts, as CI shards run them), merged by `fleet merge`, and its fleet.html (the roll-up first,
each host's own page under hosts/) loaded in Chromium: size_kb, load_s, painted_s (the first frame
after load), and merge_s.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))  # the Chromium driver is test code (tests/chromium.py)

from chromium import Chromium, find_chromium  # noqa: E402

# Runs before the report's own scripts: notes when the results table (with rows) enters the DOM.
PROBE_JS = """
window.__bench = {};
new MutationObserver((mutations, observer) => {
  if (!window.__bench.blob && document.getElementById('data-container')) {
    window.__bench.blob = performance.now();
  }
  const table = document.getElementById('results-table');
  if (table && table.querySelector('tbody.results-table-row')) {
    window.__bench.table = performance.now();
    window.__bench.rows = table.querySelectorAll('tbody.results-table-row').length;
    observer.disconnect();
    requestAnimationFrame(() => setTimeout(() => { window.__bench.painted = performance.now(); }, 0));
  }
}).observe(document, {childList: true, subtree: true});
"""

NEXT_FRAME_JS = "new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))"


def base_snapshot(name: str, work: str) -> dict:
    for path in (os.path.join(REPO, "fixtures", "hosts", f"{name}.json"),
                 os.path.join(REPO, "tests", "data", "healthy-debian12.json")):
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
    print("# no healthy snapshot: recording this machine as the base", file=sys.stderr)
    record_dir = os.path.join(work, "record")
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "--no-reports",
                    f"--record-snapshot={record_dir}"], cwd=REPO, capture_output=True, check=False, timeout=3600)
    found = glob.glob(os.path.join(record_dir, "*.json"))
    if not found:
        sys.exit("bench: could not record a base snapshot")
    with open(found[0], encoding="utf-8") as handle:
        return json.load(handle)


DENIAL = ("type=AVC msg=audit(1795871700.{n:03d}:{n}): avc:  denied  {{ search }} for  pid={pid} comm=\"qmgr\" "
          "name=\"deferred\" dev=\"vda\" ino=5411 scontext=system_u:system_r:postfix_qmgr_t:s0 "
          "tcontext=system_u:object_r:tmp_t:s0 tclass=dir permissive=0")


def vary(doc: dict, index: int) -> dict:
    """Host number `index`, as fleets differ: its own name and pids (so its process list, listeners and
    logs are its own: no two hosts' outputs are byte-identical); every 3rd host permissive; every 7th
    with a mislabelled queue and qmgr's denials; every 5th with a long process list."""
    doc = json.loads(json.dumps(doc))
    doc["host"] = f"mail{index:03d}.example.test"
    for ev in doc["evidence"]:
        if ev["probe"] in ("processes", "listeners"):
            ev["stdout"] = re.sub(r"(?<=[ =])(\d{3,5})(?=[ ,?])", lambda m: str(int(m.group(1)) + 7 * index),
                                  ev["stdout"])
        if ev["probe"] == "processes" and index % 5 == 0:
            ev["stdout"] += "".join(f"system_u:system_r:kernel_t:s0 {9000 + n} ? 00:00:00 kworker/{n}\n"
                                    for n in range(200))
        if ev["probe"] == "getenforce" and index % 3 == 0:
            ev["stdout"] = "Permissive\n"
        if ev["probe"] == "sestatus" and index % 3 == 0:
            ev["stdout"] = ev["stdout"].replace("Current mode:                   enforcing",
                                                "Current mode:                   permissive")
        if index % 7 == 0 and ev["probe"] == "queue_dir_relabel":
            ev["stdout"] = ("Would relabel /var/spool/postfix/deferred from system_u:object_r:tmp_t:s0 to "
                            "system_u:object_r:postfix_spool_t:s0\n")
        if index % 7 == 0 and ev["probe"] == "avc_denials":
            ev.update(exit_status=0, stderr="", stdout="".join(
                f"----\ntime->Sat Nov 28 13:15:00 2026\n{DENIAL.format(n=n, pid=1000 + index)}\n" for n in range(3)))
    return doc


def write_hosts(work: str, hosts: int, base: dict) -> list[str]:
    """`hosts` varied copies of the base snapshot under work/hosts/: their snapshot:// URLs."""
    snap_dir = os.path.join(work, "hosts")
    os.makedirs(snap_dir, exist_ok=True)
    specs = []
    for index in range(hosts):
        path = os.path.join(snap_dir, f"mail{index:05d}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(vary(base, index), handle)
        specs.append(f"snapshot://{path}")
    return specs


def run_suite(work: str, hosts: int, base: dict, stock: bool, extra: list[str]) -> tuple[str, float, int]:
    specs = write_hosts(work, hosts, base)
    report_dir = os.path.join(work, "reports")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", f"--report-dir={report_dir}",
               "--hosts=" + ",".join(specs), *extra]
    if stock:
        command += ["-p", "no:postfix_compliance.plugin.html_report"]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600)
    elapsed = time.monotonic() - started
    html = os.path.join(report_dir, "compliance.html")
    if not os.path.exists(html):
        sys.exit(f"bench: no report written (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    with open(os.path.join(report_dir, "results.json"), encoding="utf-8") as handle:
        records = json.load(handle)["results"]
    return html, elapsed, len({r["check_id"] for r in records})


def run_merged(work: str, hosts: int, slices: int, base: dict, extra: list[str]) -> tuple[str, float, float]:
    """N --results-only suite runs over slices of the hosts, then `fleet merge`: (fleet.html, suites_s, merge_s)."""
    specs = write_hosts(work, hosts, base)
    size = -(-hosts // slices)
    dirs = []
    started = time.monotonic()
    for number in range(slices):
        report_dir = os.path.join(work, f"slice-{number}")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", f"--report-dir={report_dir}",
                   "--results-only", "--hosts=" + ",".join(specs[number * size:(number + 1) * size]), *extra]
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600)
        if not os.path.exists(os.path.join(report_dir, "results.json")):
            sys.exit(f"bench: slice {number} wrote no results (exit {proc.returncode}):\n{proc.stdout[-3000:]}")
        dirs.append(report_dir)
    suites = time.monotonic() - started
    out = os.path.join(work, "fleet")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "postfix_compliance.fleet", "merge", out, *dirs], cwd=REPO,
                          capture_output=True, text=True, timeout=3600)
    merge = time.monotonic() - started
    if proc.returncode not in (0, 1, 2):
        sys.exit(f"bench: fleet merge failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return os.path.join(out, "fleet.html"), suites, merge


def measure_page(html: str, runs: int) -> dict[str, float]:
    """Opening a page, the best of `runs`: its load event and the first frame after it (fleet_bench's measure)."""
    from fleet_bench import html_load
    painted, load = html_load(html, runs)
    return {"load_s": load, "painted_s": painted}


def measure(html: str, runs: int) -> dict[str, float]:
    best: dict[str, float] = {}
    with Chromium(timeout=300) as browser:
        for _ in range(runs):
            page = browser.new_page(width=1400, height=900)
            page.add_init_script(PROBE_JS)
            page.navigate("file://" + html, timeout=300)
            page.evaluate(NEXT_FRAME_JS, timeout=300)
            nav = page.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0]; "
                                "return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd}; })()")
            bench = page.evaluate("window.__bench")
            started = time.monotonic()
            page.click("tbody.results-table-row .col-result")
            page.evaluate(NEXT_FRAME_JS, timeout=300)
            toggle = time.monotonic() - started
            # The banner's "List all" link: the same page with every row listed (one render).
            started = time.monotonic()
            if page.evaluate("!!document.querySelector('#pfc-large a')"):
                page.click_and_wait_load("#pfc-large a", timeout=300)
            else:  # pytest-html as it comes: everything is listed already
                for result in ("passed", "skipped"):
                    page.evaluate(f"(() => {{ const box = document.querySelector('input[data-test-result={result}]'); "
                                  f"if (box && !box.checked) box.click(); }})()", timeout=300)
            page.evaluate(NEXT_FRAME_JS, timeout=300)
            all_rows = time.monotonic() - started
            listed = page.evaluate("document.querySelectorAll('tbody.results-table-row').length")
            started = time.monotonic()
            page.click("tbody.results-table-row .col-result")
            page.evaluate(NEXT_FRAME_JS, timeout=300)
            toggle_all = time.monotonic() - started
            figures = {"dcl_s": nav["dcl"] / 1000, "load_s": nav["load"] / 1000,
                       "table_s": bench.get("table", float("nan")) / 1000,
                       "painted_s": bench.get("painted", float("nan")) / 1000, "toggle_s": toggle,
                       "parsed_s": bench.get("blob", float("nan")) / 1000,
                       "rows": bench.get("rows", 0), "all_rows_s": all_rows, "rows_all": listed,
                       "toggle_all_s": toggle_all}
            for key, value in figures.items():
                best[key] = min(best.get(key, value), value)
            browser.send("Target.closeTarget", {"targetId": page.target})
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--base", default="healthy-rhel9", help="fixtures/hosts/NAME.json to copy")
    parser.add_argument("--runs", type=int, default=3, help="page loads; the best of each figure is shown")
    parser.add_argument("--stock", action="store_true", help="turn our HTML plugin off (pytest-html as is)")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir)")
    parser.add_argument("--merge-slices", type=int, default=0, metavar="N",
                        help="check the hosts in N --results-only runs and measure fleet merge's fleet.html")
    parser.add_argument("suite_args", nargs="*", help="extra arguments for the suite (after --)")
    args = parser.parse_args()
    if not find_chromium():
        print("bench: no Chromium (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    work = args.keep or tempfile.mkdtemp(prefix="pfc-bench-")
    os.makedirs(work, exist_ok=True)
    try:
        base = base_snapshot(args.base, work)
        if args.merge_slices:
            html, suites_s, merge_s = run_merged(work, args.hosts, args.merge_slices, base, args.suite_args)
            figures = measure_page(html, args.runs)
            print(f"hosts={args.hosts} slices={args.merge_slices} suites_s={suites_s:.1f} merge_s={merge_s:.1f} "
                  f"size_kb={os.path.getsize(html) / 1024:.0f} load_s={figures['load_s']:.3f} painted_s={figures['painted_s']:.3f} mode=merged")
            return 0
        html, suite_s, checks = run_suite(work, args.hosts, base, args.stock, args.suite_args)
        size_kb = os.path.getsize(html) / 1024
        figures = measure(html, args.runs)
        mode = "stock" if args.stock else "suite"
        print(f"mode={mode}")
        print(f"hosts={args.hosts}")
        print(f"checks={checks}")
        print(f"rows_listed_on_open={figures['rows']}")
        print(f"rows_all={figures['rows_all']}")
        print(f"suite_run_s={suite_s:.2f}")
        print(f"size_kb={size_kb:.0f}")
        for key in ("parsed_s", "table_s", "dcl_s", "load_s", "painted_s", "toggle_s", "all_rows_s",
                    "toggle_all_s"):
            print(f"{key}={figures[key]:.3f}")
        print(f"hosts={args.hosts} checks={checks} size_kb={size_kb:.0f} load_s={figures['load_s']:.3f} "
              f"table_s={figures['table_s']:.3f} painted_s={figures['painted_s']:.3f} "
              f"toggle_s={figures['toggle_s']:.3f} all_rows_s={figures['all_rows_s']:.3f} "
              f"toggle_all_s={figures['toggle_all_s']:.3f} mode={mode}")
        if args.keep:
            print(f"# report: {html}", file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
