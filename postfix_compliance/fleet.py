"""Fleet reports: merge results.json files from several runs into one, and Prometheus metrics.

Several controllers (one per site), or CI shards of one inventory, each write a results.json
(format "postfix-compliance-results/2", or /1 from older runs; see report/results.py). This module merges them:

    python -m postfix_compliance.fleet merge OUT_DIR a.json b.json [DIR ...]

writes OUT_DIR/results.json (the same format: usable as a --baseline, mergeable again),
OUT_DIR/metrics.prom (Prometheus textfile) and OUT_DIR/fleet.html (one self-contained page, no
script, every string from a host escaped). An argument may be a report directory holding a
results.json (e.g. `reports/latest`).

Hosts are identified by the name they report (`host_name`, else the host URL): two sites that
each check themselves as `local` are two hosts, not one. When the same host × check comes from
more than one file, the record from the newest file (its "generated_at") is kept; on a tie, the
file named later on the command line. Every such choice is printed on stderr, listed under
"fleet"."duplicates" in results.json and shown in the HTML page.

Exit status, as the suite's: 0 every merged check passed (or was waived / not applicable),
1 a check failed, 2 a check could not be judged, 4 bad input (one `ERROR:` line).

OUT_DIR/metrics.prom holds the suite's own series (report/metrics.py, as `--metrics` writes them:
postfix_compliance_check_status, postfix_compliance_checks, postfix_compliance_last_run_timestamp_seconds
(here: the earliest start of the runs merged), postfix_compliance_run_duration_seconds (from that start
to the latest end), postfix_compliance_info) plus the fleet's own:
  postfix_compliance_fleet_host_results_timestamp_seconds{host}  when the host's kept results were made
  postfix_compliance_fleet_sources                               results files merged
  postfix_compliance_fleet_duplicates                            host × check records found in more than one file
contrib/alerts/postfix-compliance.rules.yml alerts on them.
"""

from __future__ import annotations

import argparse
import calendar
import html
import json
import os
import sys
import time
from typing import Any, Iterable

from postfix_compliance import __version__
from postfix_compliance.errors import UsageError
from postfix_compliance.inputfiles import load_json
from postfix_compliance.report.results import READABLE_FORMATS, RESULTS_FORMAT, inline_evidence, pack_evidence
from postfix_compliance.text import inert

OUTCOMES = ("pass", "fail", "error", "waived", "not_applicable")
USAGE_EXIT = 4


class FleetError(Exception):
    """Bad input: reported as one line, exit status 4."""


# ---------------------------------------------------------------------- reading
def host_key(record: dict[str, Any]) -> str:
    """A host's identity across runs: the name it reports, else its URL."""
    return str(record.get("host_name") or record.get("host"))


def _timestamp(text: Any) -> float | None:
    """Seconds since the epoch of a results.json time ("2025-11-28T14:43:00Z"), or None."""
    if not isinstance(text, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


_RECORD_TEXT = ("title", "severity", "section", "message", "profile", "source")
_RECORD_LISTS = ("remediation", "rollback", "references")
_DOC_TEXT = ("generated_at", "started_at", "suite_version", "profile")


def load_results(path: str) -> dict[str, Any]:
    """Read one results.json (or a report directory holding one); FleetError names the problem."""
    if os.path.isdir(path):
        candidate = os.path.join(path, "results.json")
        if not os.path.exists(candidate):
            raise FleetError(f"{path}: a directory without results.json")
        path = candidate
    try:
        doc = load_json(path)
    except UsageError as exc:
        raise FleetError(str(exc)) from None
    if not isinstance(doc, dict) or doc.get("format") not in READABLE_FORMATS:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise FleetError(f"{path}: not a results file (\"format\" is {found!r}, expected {RESULTS_FORMAT!r})")
    records = doc.get("results")
    if not isinstance(records, list):
        raise FleetError(f"{path}: \"results\" must be a list")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise FleetError(f"{path}: results[{index}] is not an object")
        for key in ("host", "check_id"):
            if not isinstance(record.get(key), str) or not record[key]:
                raise FleetError(f"{path}: results[{index}].{key} must be a non-empty string")
        if record.get("outcome") not in OUTCOMES:
            raise FleetError(f"{path}: results[{index}].outcome {record.get('outcome')!r} is not one of "
                             f"{', '.join(OUTCOMES)}")
        if record.get("host_name") is not None and not isinstance(record["host_name"], str):
            raise FleetError(f"{path}: results[{index}].host_name must be a string or null")
        # What merging, metrics and the page read from a record: a wrong type there would be a
        # traceback halfway through writing them.
        for key in _RECORD_TEXT:
            if record.get(key) is not None and not isinstance(record[key], str):
                raise FleetError(f"{path}: results[{index}].{key} must be a string or null")
        for key in _RECORD_LISTS:
            if record.get(key) is not None and not isinstance(record[key], list):
                raise FleetError(f"{path}: results[{index}].{key} must be a list or null")
    for key in _DOC_TEXT:
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise FleetError(f"{path}: \"{key}\" must be a string or null")
    generated = doc.get("generated_at")
    if generated is not None and _timestamp(generated) is None:
        raise FleetError(f"{path}: \"generated_at\" {generated!r} is not YYYY-MM-DDTHH:MM:SSZ")
    if not isinstance(doc.get("evidence", {}), dict):
        raise FleetError(f"{path}: \"evidence\" must be an object")
    try:
        inline_evidence(doc)  # format /2: each record given its evidence from the host's table (shared)
    except (ValueError, TypeError, AttributeError) as exc:
        raise FleetError(f"{path}: {exc}") from None
    doc["_path"] = path
    return doc


# ---------------------------------------------------------------------- merging
def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One results document from several; the newest file wins a host × check (ties: the later one)."""
    if not docs:
        raise FleetError("nothing to merge: name one or more results.json files")
    # Order of precedence: older first, so that a later (newer) one replaces it.
    order = sorted(range(len(docs)), key=lambda i: (_timestamp(docs[i].get("generated_at")) or 0.0, i))
    kept: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    duplicates: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for index in order:
        doc = docs[index]
        for record in doc["results"]:
            key = (host_key(record), record["check_id"])
            previous = kept.get(key)
            if previous is not None:
                older = docs[previous[0]]
                if previous[0] == index:
                    reason = (f"twice in one file (as {previous[1]['host']} and {record['host']}): "
                              "kept the later record")
                elif _timestamp(older.get("generated_at")) == _timestamp(doc.get("generated_at")):
                    reason = "same generated_at: kept the file named later"
                else:
                    reason = "kept the newer file"
                entry = duplicates.setdefault((key[0], older["_path"], doc["_path"], reason), {
                    "host": key[0], "kept": doc["_path"], "kept_generated_at": doc.get("generated_at"),
                    "dropped": older["_path"], "dropped_generated_at": older.get("generated_at"),
                    "reason": reason, "checks": []})
                entry["checks"].append(key[1])
            kept[key] = (index, {**record, "source": doc["_path"]})
    records = sorted((r for _, r in kept.values()), key=lambda r: (host_key(r), r["check_id"]))
    summary: dict[str, dict[str, int]] = {}
    for record in records:
        counts = summary.setdefault(host_key(record), {})
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
    starts = [t for t in (_timestamp(d.get("started_at")) for d in docs) if t is not None]
    now = time.time()
    profiles = {d.get("profile") for d in docs}
    sources = []
    for doc in docs:
        hosts = sorted({host_key(r) for r in doc["results"]})
        sources.append({"path": doc["_path"], "generated_at": doc.get("generated_at"),
                        "started_at": doc.get("started_at"),
                        "suite_version": doc.get("suite_version"), "hosts": hosts,
                        "records": len(doc["results"]),
                        "kept": sum(1 for r in records if r["source"] == doc["_path"])})
    dups = sorted(duplicates.values(), key=lambda d: (d["host"], d["dropped"]))
    for entry in dups:
        entry["checks"] = sorted(set(entry["checks"]))
    return {
        "format": RESULTS_FORMAT, "suite_version": __version__,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(min(starts))) if starts else None,
        "duration_s": None,
        "profile": profiles.pop() if len(profiles) == 1 else None,
        # In a fleet document the summary is keyed by host name (results' "host_name").
        "summary": summary,
        "fleet": {"sources": sources, "duplicates": dups},
        "results": records,
    }


def exit_status(records: Iterable[dict[str, Any]]) -> int:
    outcomes = {r["outcome"] for r in records}
    return 2 if "error" in outcomes else (1 if "fail" in outcomes else 0)


# ---------------------------------------------------------------------- metrics
def metrics_text(doc: dict[str, Any]) -> str:
    """The suite's own metrics (report/metrics.py, the same series as `--metrics`) for the merged
    records, plus the fleet's: files merged, duplicates replaced, and each host's results time."""
    from postfix_compliance.report import metrics as suite_metrics

    fleet = doc.get("fleet") or {}
    sources = fleet.get("sources", [])
    starts = [t for t in (_timestamp(s.get("started_at")) for s in sources) if t is not None]
    ends = [t for t in (_timestamp(s.get("generated_at")) for s in sources) if t is not None]
    started = min(starts) if starts else (min(ends) if ends else time.time())
    # For a fleet, "the last run" spans every run merged: from the earliest start to the latest end.
    duration = (max(ends) - started) if ends else 0.0
    text = suite_metrics.render(doc["results"], started, duration, doc.get("profile"))
    when = {s["path"]: _timestamp(s.get("generated_at")) for s in sources}
    per_host: dict[str, float] = {}
    for record in doc["results"]:
        stamp = when.get(record.get("source"))
        if stamp is not None:
            host = host_key(record)
            per_host[host] = min(stamp, per_host.get(host, stamp))
    lab = suite_metrics.escape_label
    lines = ["# HELP postfix_compliance_fleet_host_results_timestamp_seconds When the results kept for "
             "the host were generated (Unix time; the oldest of its files).",
             "# TYPE postfix_compliance_fleet_host_results_timestamp_seconds gauge"]
    lines += [f'postfix_compliance_fleet_host_results_timestamp_seconds{{host="{lab(h)}"}} {int(t)}'
              for h, t in sorted(per_host.items())]
    lines += ["# HELP postfix_compliance_fleet_sources Results files merged into the fleet report.",
              "# TYPE postfix_compliance_fleet_sources gauge",
              f"postfix_compliance_fleet_sources {len(sources)}",
              "# HELP postfix_compliance_fleet_duplicates Host x check records found in more than one "
              "file (the newest was kept).",
              "# TYPE postfix_compliance_fleet_duplicates gauge",
              f"postfix_compliance_fleet_duplicates {sum(len(d['checks']) for d in fleet.get('duplicates', []))}"]
    return text + "\n".join(lines) + "\n"


def write_atomic(path: str, text: str) -> None:
    """Exclusive temporary file, then rename: a reader never sees half a file, a planted symlink is
    replaced, never followed (postfix_compliance/atomicfile.py)."""
    from postfix_compliance.atomicfile import write_atomic as _write_atomic

    _write_atomic(path, text, mode=0o644)  # whatever the umask: node_exporter reads metrics.prom as another user


# ---------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2}
tr.bad td:first-child{border-left:4px solid #c0392b} tr.ok td:first-child{border-left:4px solid #27ae60}
.fail{color:#c0392b;font-weight:bold} .error{color:#d35400;font-weight:bold}
pre{background:#f7f7f7;padding:.4em;white-space:pre-wrap;margin:.2em 0}
.note{color:#555}
td.msg{white-space:pre-wrap} td.src{word-break:break-all;max-width:30em}
"""


def fleet_html(doc: dict[str, Any]) -> str:
    e = html.escape
    records = doc["results"]
    fleet = doc.get("fleet") or {}
    hosts: dict[str, dict[str, Any]] = {}
    for record in records:
        entry = hosts.setdefault(host_key(record), {"counts": dict.fromkeys(OUTCOMES, 0), "bad": [],
                                                     "profiles": set(), "sources": set()})
        entry["counts"][record["outcome"]] += 1
        entry["profiles"].add(record.get("profile") or "")
        entry["sources"].add(record.get("source") or "")
        if record["outcome"] in ("fail", "error"):
            entry["bad"].append(record)
    failing_hosts = sum(1 for h in hosts.values() if h["bad"])
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>Postfix/SELinux compliance — fleet</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>Postfix/SELinux compliance — fleet</h1>",
           f'<p class="note">Merged {e(doc["generated_at"])} by postfix-compliance {e(__version__)}: '
           f"{len(hosts)} hosts, {failing_hosts} with failing or erroring checks, "
           f"{len(fleet.get('sources', []))} results files.</p>"]
    out.append('<h2>Hosts</h2><table id="hosts"><thead><tr><th>Host</th><th>Profile</th><th>Passed</th>'
               "<th>Failed</th><th>Errors</th><th>Waived</th><th>Not applicable</th><th>Failing checks</th>"
               "<th>From</th></tr></thead><tbody>")
    for host, entry in sorted(hosts.items()):
        c = entry["counts"]
        out.append(f'<tr class="{"bad" if entry["bad"] else "ok"}"><td>{e(host)}</td>'
                   f'<td>{e(", ".join(sorted(p for p in entry["profiles"] if p)))}</td>'
                   + "".join(f"<td>{c[o]}</td>" for o in OUTCOMES)
                   + f'<td>{e(", ".join(sorted({r["check_id"] for r in entry["bad"]})))}</td>'
                   f'<td class="src">{e(", ".join(sorted(s for s in entry["sources"] if s)))}</td></tr>')
    out.append("</tbody></table>")
    if failing_hosts:
        out.append("<h2>Failing and erroring checks</h2>")
        for host, entry in sorted(hosts.items()):
            if not entry["bad"]:
                continue
            out.append(f"<h3>{e(host)}</h3><table><thead><tr><th>Check</th><th>Severity</th><th>Outcome</th>"
                       "<th>Message</th><th>Remediation</th></tr></thead><tbody>")
            for r in sorted(entry["bad"], key=lambda r: r["check_id"]):
                remediation = "\n".join(str(x) for x in r.get("remediation") or [])
                out.append(f'<tr><td>{e(r["check_id"])} {e(str(r.get("title") or ""))}</td>'
                           f'<td>{e(str(r.get("severity") or ""))}</td>'
                           f'<td class="{e(r["outcome"])}">{e(r["outcome"])}</td>'
                           f'<td class="msg">{e(str(r.get("message") or ""))}</td>'
                           f"<td>{'<pre>' + e(remediation) + '</pre>' if remediation else ''}</td></tr>")
            out.append("</tbody></table>")
    out.append('<h2>Results files</h2><table id="sources"><thead><tr><th>File</th><th>Generated</th>'
               "<th>Suite</th><th>Hosts</th><th>Records</th><th>Kept</th></tr></thead><tbody>")
    for s in fleet.get("sources", []):
        out.append(f'<tr><td class="src">{e(s["path"])}</td><td>{e(str(s.get("generated_at") or "unknown"))}</td>'
                   f'<td>{e(str(s.get("suite_version") or ""))}</td><td>{e(", ".join(s["hosts"]))}</td>'
                   f'<td>{s["records"]}</td><td>{s["kept"]}</td></tr>')
    out.append("</tbody></table>")
    dups = fleet.get("duplicates", [])
    if dups:
        out.append('<h2>Duplicates</h2><ul id="duplicates">')
        for d in dups:
            out.append(f'<li>{e(d["host"])}: {len(d["checks"])} checks ({e(", ".join(d["checks"]))}) were in '
                       f'both {e(d["dropped"])} ({e(str(d["dropped_generated_at"]))}) and {e(d["kept"])} '
                       f'({e(str(d["kept_generated_at"]))}): {e(d["reason"])}: {e(d["kept"])}.</li>')
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------- CLI
def _duplicate_lines(doc: dict[str, Any]) -> list[str]:
    return [f"fleet: duplicate: host {d['host']}: {len(d['checks'])} checks in {d['dropped']} "
            f"({d['dropped_generated_at']}) and {d['kept']} ({d['kept_generated_at']}): {d['reason']}: "
            f"{d['kept']}" for d in doc["fleet"]["duplicates"]]


def cmd_merge(out_dir: str, paths: list[str]) -> int:
    if not paths:
        raise FleetError("nothing to merge: name one or more results.json files")
    docs = [load_results(p) for p in paths]
    doc = merge(docs)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise FleetError(f"{out_dir}: cannot create the output directory: {exc.strerror}") from None
    if not os.path.isdir(out_dir):
        raise FleetError(f"{out_dir}: not a directory")
    records, evidence = pack_evidence(doc["results"])  # each probe's evidence once per host, as the suite writes
    write_atomic(os.path.join(out_dir, "results.json"), json.dumps({**doc, "evidence": evidence, "results": records},
                                                                   indent=1) + "\n")
    write_atomic(os.path.join(out_dir, "metrics.prom"), metrics_text(doc))
    write_atomic(os.path.join(out_dir, "fleet.html"), fleet_html(doc))
    for line in _duplicate_lines(doc):
        print(inert(line), file=sys.stderr)  # host names and paths from files: shown, never obeyed
    status = exit_status(doc["results"])
    print(inert(f"fleet: {len(doc['summary'])} hosts, {len(doc['results'])} results from {len(docs)} files "
                f"-> {out_dir}/fleet.html, results.json, metrics.prom (exit {status})"), file=sys.stderr)
    return status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 4, like the suite's bad input
        raise FleetError(message)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m postfix_compliance.fleet",
                     description="Merge results.json files into a fleet report; write Prometheus metrics.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_merge = sub.add_parser("merge", help="merge results.json files (or report directories) into OUT_DIR")
    p_merge.add_argument("out_dir")
    p_merge.add_argument("results", nargs="*")
    p_merge.error = parser.error  # type: ignore[method-assign]
    try:
        args = parser.parse_args(argv)
        return cmd_merge(args.out_dir, args.results)
    except FleetError as exc:
        print(inert(f"ERROR: fleet: {exc}"), file=sys.stderr)
        return USAGE_EXIT
    except OSError as exc:
        print(inert(f"ERROR: fleet: {exc}"), file=sys.stderr)
        return USAGE_EXIT


if __name__ == "__main__":
    sys.exit(main())
