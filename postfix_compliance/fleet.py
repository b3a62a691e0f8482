"""Fleet reports: merge results.json files from several runs into one, and Prometheus metrics.

Several controllers (one per site), or CI shards of one inventory, each write a results.json
(format "postfix-compliance-results/2", or /1 from older runs; see results_file.py). This module merges them:

    python -m postfix_compliance.fleet merge OUT_DIR a.json b.json [DIR ...]

reads the files one at a time, each into a run result (results_file.py `run_from_document`: the
suite's own type, postfix_compliance/run.py), and merges it into the run so far (`Merger`), keeping of
each file only its records that win so far and the evidence they read: memory is bounded by the merged
run plus one input, not by the sum of the inputs. It writes the merged run with the suite's own renderers:
OUT_DIR/results.json (results_file.py; the same format: usable as a --baseline, mergeable
again), OUT_DIR/metrics.prom (report/metrics.py, Prometheus textfile) and OUT_DIR/fleet.html
(report/html.py `page`: the suite's report as one self-contained page, every string from a host
escaped, plus the files merged and the duplicates) and, for a fleet (more than html.FLEET_HOSTS hosts),
each host's own page under OUT_DIR/hosts/, which fleet.html links to. An argument may be a report
directory holding a results.json (e.g. `reports/latest`).

    python -m postfix_compliance.fleet run OUT_DIR [--jobs N] -- SUITE ARGUMENTS

runs the suite as N local shards of the same hosts (default: the cores + 1) and merges them into OUT_DIR
(fleet_run.py).

A host is its target (the URL the run checked) and the name it reported: two sites that each check
themselves as `local` are two hosts, not one, and two targets that report one name (a renamed clone, a
forged file) are both kept and flagged ("fleet"."shared_names", a line on stderr), never merged into one.
When the same host × check comes from more than one file, the record from the newest file (its
"generated_at") is kept; on a tie, the file named later on the command line. Every such choice is printed
on stderr, listed under "fleet"."duplicates" in results.json and shown in the HTML page.

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
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Iterable, Mapping

from postfix_compliance.atomicfile import PRIVATE_DIR_MODE, PRIVATE_MODE, READABLE_MODE
from postfix_compliance.atomicfile import write_atomic as _write_atomic
from postfix_compliance.errors import UsageError
from postfix_compliance.outputpaths import check_renderer_paths
from postfix_compliance.private_dirs import private_dir
from postfix_compliance.report import html as html_report
from postfix_compliance.report import junit as junit_report
from postfix_compliance.report import metrics as suite_metrics
from postfix_compliance.report import outputs as report_outputs
from postfix_compliance import results_file
from postfix_compliance.results_file import seconds_of
from postfix_compliance.run import CheckResult, HostResult, RunResult
from postfix_compliance.text import inert

USAGE_EXIT = 4


class FleetError(Exception):
    """Bad input: reported as one line, exit status 4."""


# ---------------------------------------------------------------------- reading
def load_results(path: str) -> dict[str, Any]:
    """Read one results.json (or a report directory holding one) as results_file.load reads any, refusing
    one dated in the future (it would win every host x check); FleetError names the problem."""
    try:
        doc = results_file.load(path, directory=True, refuse_future=True)
    except results_file.ResultsFileError as exc:
        raise FleetError(str(exc)) from None
    doc["_path"] = os.path.join(path, "results.json") if os.path.isdir(path) else path
    return doc


# ---------------------------------------------------------------------- merging
@dataclasses.dataclass(frozen=True)
class Merged:
    """A merge: the run (its "fleet" section in `run.sections`), where each kept host x check came
    from (target id, check id) -> file, and when the merge was made."""
    run: RunResult
    source: dict[tuple[str, str], str]
    generated: float


class Merger:
    """A merge fed one results document at a time (`add`), with bounded memory: of each file it keeps
    only what the merged run needs, then lets the file go.

    Per host x check (by target, host name and check id) it keeps the record that wins so far, the highest
    (generated_at, position on the command line, position in the file); where a host x check is
    found more than once, also where each was found (a few numbers), to list the duplicates as the
    files' order says. Of each file's hosts it keeps only the evidence their kept records read. So
    the memory is the merged run plus one input, whatever the number of files: N shards of a fleet
    cost about what the fleet's own results.json does, not N times it."""

    def __init__(self) -> None:
        # (target, host name, check id) -> (rank, file index, host, check): the record kept so far.
        self._best: dict[tuple[str, str, str], tuple[tuple[Any, ...], int, HostResult, CheckResult]] = {}
        # (target, host name, check id) -> every (rank, file index, host id) where it was found, when more than once.
        self._found: dict[tuple[str, str, str], list[tuple[tuple[Any, ...], int, str]]] = {}
        self._files: list[dict[str, Any]] = []  # per file: what the sources list and the run's times need
        self._inventory: dict[str, Any] = {}  # target id -> its inventory name and groups (the later file's)

    def add(self, doc: dict[str, Any]) -> None:
        """Merge one document (as `load_results` returns it); nothing of it is kept but the records
        that win so far and the evidence they read."""
        index = len(self._files)
        generated = seconds_of(doc.get("generated_at"))
        self._files.append({"path": doc["_path"], "generated": generated, "generated_at": doc.get("generated_at"),
                            "started_at": doc.get("started_at"), "suite_version": doc.get("suite_version"),
                            "profile": doc.get("profile"),
                            "hosts": sorted({results_file.host_key(r) for r in doc["results"]}),
                            "records": len(doc["results"])})
        inventory = doc.get("inventory")
        if isinstance(inventory, dict):
            self._inventory.update(inventory)
        # Older first: a later (newer) one replaces it; a tie, the file named later; in one file, the later record.
        precedence = (generated or 0.0, index)
        won: list[tuple[str, str, str]] = []
        for position, (host, check) in enumerate(results_file.run_from_document(doc).checks()):
            key = (host.id, host.name, check.check_id)
            rank = (precedence, position)
            best = self._best.get(key)
            if best is not None:
                found = self._found.get(key)
                if found is None:
                    found = self._found[key] = [(best[0], best[1], best[2].id)]
                found.append((rank, index, host.id))
            if best is None or rank > best[0]:
                self._best[key] = (rank, index, host, check)
                won.append(key)
        # This file's hosts, as far as they are kept: only the evidence their kept checks read.
        refs: dict[str, set[str]] = {}
        for key in won:
            _, at, host, check = self._best[key]
            if at == index:
                refs.setdefault(host.id, set()).update(check.evidence_refs)
        trimmed: dict[str, HostResult] = {}
        for key in won:
            rank, at, host, check = self._best[key]
            if at != index:
                continue
            small = trimmed.get(host.id)
            if small is None:
                wanted = refs[host.id]
                small = trimmed[host.id] = dataclasses.replace(
                    host, checks=(), evidence={ref: ev for ref, ev in host.evidence.items() if ref in wanted})
            self._best[key] = (rank, at, small, check)

    def result(self) -> Merged:
        if not self._files:
            raise FleetError("nothing to merge: name one or more results.json files")
        files = self._files
        duplicates: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        # Each later finding of a host x check replaced the one before it, in the order of the files'
        # precedence: listed in that order.
        events = []
        for key, found in self._found.items():
            found.sort(key=lambda f: f[0])
            events += [(cur[0], key, prev, cur) for prev, cur in zip(found, found[1:])]
        events.sort(key=lambda e: e[0])
        for _, key, (_, prev_at, prev_host), (_, cur_at, cur_host) in events:
            older, newer = files[prev_at], files[cur_at]
            if prev_at == cur_at:
                reason = f"twice in one file (as {prev_host} and {cur_host}): kept the later record"
            elif older["generated"] == newer["generated"]:
                reason = "same generated_at: kept the file named later"
            else:
                reason = "kept the newer file"
            entry = duplicates.setdefault((key[1], key[0], older["path"], newer["path"], reason), {
                "host": key[1], "target": key[0], "kept": newer["path"], "kept_generated_at": newer["generated_at"],
                "dropped": older["path"], "dropped_generated_at": older["generated_at"],
                "reason": reason, "checks": []})
            entry["checks"].append(key[2])
        chosen = sorted(self._best.values(), key=lambda k: (k[2].name, k[2].id, k[3].check_id))
        # The merged hosts, by target and name: each kept check with the evidence it read and its host's finding.
        grouped: dict[tuple[str, str], list[tuple[HostResult, CheckResult]]] = {}
        for _, _, host, check in chosen:
            grouped.setdefault((host.id, host.name), []).append((host, check))
        # One target, two names (each site's `local`): the merged run names each "TARGET (NAME)", so that
        # every host of it has its own id (records, pages, the source of each check).
        names_of: dict[str, set[str]] = {}
        targets_of: dict[str, set[str]] = {}
        for host_id, name in grouped:
            names_of.setdefault(host_id, set()).add(name)
            targets_of.setdefault(name, set()).add(host_id)
        merged_id = {(host_id, name): host_id if len(names_of[host_id]) == 1 else f"{host_id} ({name})"
                     for host_id, name in grouped}
        source = {(merged_id[(host.id, host.name)], check.check_id): files[index]["path"]
                  for _, index, host, check in chosen}
        shared = [{"host_name": name, "targets": sorted(ids)} for name, ids in sorted(targets_of.items())
                  if len(ids) > 1]
        hosts = []
        for ident, pairs in grouped.items():
            first = dataclasses.replace(pairs[-1][0], id=merged_id[ident])
            evidence: dict[str, Any] = {}
            for host, check in pairs:
                for ref in check.evidence_refs:
                    if ref in host.evidence:
                        evidence.setdefault(ref, host.evidence[ref])
            hosts.append(dataclasses.replace(first, checks=tuple(c for _, c in pairs), evidence=evidence,
                                             diagnosis=next((h.diagnosis for h, _ in reversed(pairs)
                                                             if h.diagnosis), None)))
        starts = [t for t in (seconds_of(f["started_at"]) for f in files) if t is not None]
        ends = [f["generated"] for f in files if f["generated"] is not None]
        now = time.time()
        # For a fleet, "the run" spans every run merged: from the earliest start to the latest end.
        started = min(starts) if starts else (min(ends) if ends else now)
        ended = max(ends) if ends else started
        profiles = {f["profile"] for f in files}
        kept_from: dict[str, int] = {}
        for path in source.values():
            kept_from[path] = kept_from.get(path, 0) + 1
        sources = [{"path": f["path"], "generated_at": f["generated_at"], "started_at": f["started_at"],
                    "suite_version": f["suite_version"], "hosts": f["hosts"], "records": f["records"],
                    "kept": kept_from.get(f["path"], 0)} for f in files]
        dups = sorted(duplicates.values(), key=lambda d: (d["host"], d["dropped"]))
        for entry in dups:
            entry["checks"] = sorted(set(entry["checks"]))
        sections: dict[str, Any] = {"fleet": {"sources": sources, "duplicates": dups, "shared_names": shared}}
        inventory = {merged_id[ident]: self._inventory[ident[0]] for ident in grouped if ident[0] in self._inventory}
        if inventory:  # the hosts' inventory names and groups, as their runs took them (playbook, roll-up)
            sections["inventory"] = inventory
        run = RunResult(started=started, ended=ended, profile=profiles.pop() if len(profiles) == 1 else None,
                        hosts=tuple(hosts), sections=sections)
        return Merged(run=run, source=source, generated=now)


def merge(docs: Iterable[dict[str, Any]]) -> Merged:
    """One run from several results documents (as `load_results` returns them); the newest file wins
    a host × check (ties: the later one). Give an iterator that loads each file when asked
    (`cmd_merge` does) and only one is held at a time."""
    merger = Merger()
    for doc in docs:
        merger.add(doc)
        del doc  # before the next file is read
    return merger.result()


def exit_status(run: RunResult) -> int:
    outcomes = run.outcomes()
    return 2 if "error" in outcomes else (1 if "fail" in outcomes else 0)


def _summary(run: RunResult) -> dict[str, dict[str, int]]:
    """In a fleet document the summary is keyed by host name (results' "host_name"), or by "NAME (TARGET)"
    where targets share a name."""
    shared = {s["host_name"] for s in run.sections.get("fleet", {}).get("shared_names", ())}
    summary: dict[str, dict[str, int]] = {}
    for host, check in sorted(run.checks(), key=lambda hc: (hc[0].name, hc[0].id, hc[1].check_id)):
        counts = summary.setdefault(f"{host.name} ({host.id})" if host.name in shared else host.name, {})
        counts[check.outcome] = counts.get(check.outcome, 0) + 1
    return summary


def document(merged: Merged) -> dict[str, Any]:
    """The merged results.json: results_file.py's document of the run, as a fleet has it: records
    ordered by host name and naming the file each came from ("source"), the summary by host name,
    generated when merged, started at the earliest run's start (none known: null), no duration."""
    run = merged.run
    doc = results_file.document(run)
    doc.pop("diagnosis", None)  # each record carries its host's finding
    starts = [s.get("started_at") for s in run.sections["fleet"]["sources"] if seconds_of(s.get("started_at"))]
    doc.update({"generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(merged.generated)),
                "started_at": doc["started_at"] if starts else None, "duration_s": None,
                "summary": _summary(run)})
    for record in doc["results"]:
        record["source"] = merged.source[(record["host"], record["check_id"])]
    doc["results"].sort(key=lambda r: (results_file.host_key(r), r["check_id"]))
    return doc


# ---------------------------------------------------------------------- metrics
def metrics_text(merged: Merged) -> str:
    """The suite's own metrics (report/metrics.py, the same series as `--metrics`) for the merged
    run, plus the fleet's: files merged, duplicates replaced, and each host's results time."""
    run = merged.run
    fleet = run.sections["fleet"]
    sources = fleet.get("sources", [])
    text = suite_metrics.render(run)
    when = {s["path"]: seconds_of(s.get("generated_at")) for s in sources}
    per_host: dict[str, float] = {}
    for host, check in run.checks():
        stamp = when.get(merged.source.get((host.id, check.check_id)))
        if stamp is not None:
            per_host[host.name] = min(stamp, per_host.get(host.name, stamp))
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


def write_atomic(path: str, text: str | Iterable[str], mode: int = PRIVATE_MODE) -> None:
    """Exclusive temporary file, then rename: a reader never sees half a file, a planted symlink is
    replaced, never followed (postfix_compliance/atomicfile.py). Private unless `mode` says otherwise."""
    _write_atomic(path, text, mode=mode)


# ---------------------------------------------------------------------- CLI
def _move_into_place(staging: str, out_dir: str) -> None:
    """Every file staged, renamed to the same place under out_dir (rename(2): a planted symlink at a
    final name is replaced, never followed); fleet.html last, so the page found is never older than
    the files it describes."""
    staged = []
    for directory, _, names in os.walk(staging):
        staged += [os.path.relpath(os.path.join(directory, name), staging) for name in names]
    for rel in sorted(staged, key=lambda r: (r == "fleet.html", r)):
        final = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(final), mode=PRIVATE_DIR_MODE, exist_ok=True)
        os.replace(os.path.join(staging, rel), final)


def _duplicate_lines(run: RunResult) -> list[str]:
    return [f"fleet: duplicate: host {d['host']}: {len(d['checks'])} checks in {d['dropped']} "
            f"({d['dropped_generated_at']}) and {d['kept']} ({d['kept_generated_at']}): {d['reason']}: "
            f"{d['kept']}" for d in run.sections["fleet"]["duplicates"]]


def _shared_name_lines(run: RunResult) -> list[str]:
    return [f"fleet: host name {s['host_name']} is reported by {len(s['targets'])} targets, each kept as a host "
            f"of its own: {', '.join(s['targets'])}" for s in run.sections["fleet"].get("shared_names", ())]


def cmd_merge(out_dir: str, paths: list[str], outputs: Mapping[str, str | None] | None = None,
              sudo: bool = False) -> int:
    """Merge `paths` into out_dir (results.json, metrics.prom, fleet.html, hosts/, junit.xml), and write each of the
    renderers' `outputs` (report/outputs.py: dest -> path) as the single run writes it."""
    outputs = {dest: path for dest, path in (outputs or {}).items() if path}
    if not paths:
        raise FleetError("nothing to merge: name one or more results.json files")
    try:  # before anything is read: a bad path is one line, nothing written
        check_renderer_paths(outputs)
    except UsageError as exc:
        raise FleetError(str(exc)) from None
    merged = merge(load_results(p) for p in paths)  # one file at a time (Merger)
    run = merged.run
    try:  # the merged reports carry every host's evidence: a directory no other user can write
        private_dir(out_dir, "output directory")
    except UsageError as exc:
        raise FleetError(str(exc)) from None
    doc = document(merged)
    # Everything is written into a staging directory first and moved into place only when all of it is
    # written: a merge that fails halfway leaves the previous results.json and fleet.html as they were,
    # never a new results.json beside an old page.
    staging = tempfile.mkdtemp(dir=out_dir, prefix=".fleet-merge-")  # mode 0700, a name nobody planted
    try:
        write_atomic(os.path.join(staging, "results.json"), results_file.json_pieces(doc))
        # readable whatever the umask: node_exporter reads metrics.prom as another user
        write_atomic(os.path.join(staging, "metrics.prom"), metrics_text(merged), mode=READABLE_MODE)
        write_atomic(os.path.join(staging, "fleet.html"), html_report.page(run))
        write_atomic(os.path.join(staging, "junit.xml"), junit_report.render(run))  # a CI server's test list
        # The page links each host of a fleet to its own page (every check, its evidence): written here too,
        # one at a time, as the suite writes them beside compliance.html.
        for name, text in html_report.host_pages(run, up="fleet.html"):
            write_atomic(os.path.join(staging, name), text)  # makes hosts/ as it needs
        _move_into_place(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if outputs:
        from postfix_compliance.catalog_doc import load_checks
        catalog = {cid: dataclasses.asdict(meta) for cid, meta in load_checks().items()}
        report_outputs.write_outputs(run, outputs, report_outputs.RenderContext(catalog=catalog, sudo=sudo))
    for line in _duplicate_lines(run) + _shared_name_lines(run):
        print(inert(line), file=sys.stderr)  # host names and paths from files: shown, never obeyed
    status = exit_status(run)
    print(inert(f"fleet: {len(doc['summary'])} hosts, {len(doc['results'])} results from {len(paths)} files "
                f"-> {out_dir}/fleet.html, results.json, junit.xml, metrics.prom (exit {status})"), file=sys.stderr)
    return status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 4, like the suite's bad input
        raise FleetError(message)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m postfix_compliance.fleet",
                     description="Merge results.json files into a fleet report, with Prometheus metrics; "
                                 "or run a fleet as local shards and merge them.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_merge = sub.add_parser("merge", help="merge results.json files (or report directories) into OUT_DIR")
    p_merge.add_argument("out_dir")
    p_merge.add_argument("results", nargs="*")
    for output in report_outputs.OUTPUTS:  # what a single run writes, from the merged run
        p_merge.add_argument(output.flag, dest=output.dest, metavar="DIR" if output.kind == "dir" else "FILE",
                             help=f"also write {output.help}")
    p_merge.error = parser.error  # type: ignore[method-assign]
    p_run = sub.add_parser("run", help="check a fleet with N local shards of the suite (default: cores + 1), "
                                       "then merge them into OUT_DIR: fleet run OUT_DIR [--jobs N] -- SUITE ARGS")
    p_run.add_argument("out_dir")
    p_run.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="shards run side by side (default: one more than the cores this process may use)")
    p_run.error = parser.error  # type: ignore[method-assign]
    argv = list(sys.argv[1:] if argv is None else argv)
    # The suite's own arguments follow "--" (argparse's subparsers would take them for their own).
    suite_args = argv[argv.index("--") + 1:] if argv[:1] == ["run"] and "--" in argv else None
    try:
        args = parser.parse_args(argv[:argv.index("--")] if suite_args is not None else argv)
        if args.command == "run":
            from postfix_compliance import fleet_run
            if suite_args is None:
                raise FleetError("run: give the suite's arguments after --, e.g. "
                                 "fleet run OUT_DIR -- --ansible-inventory=inventory.ini --known-hosts=FILE")
            try:
                return fleet_run.run(args.out_dir, args.jobs if args.jobs is not None else fleet_run.default_jobs(),
                                     suite_args, cmd_merge)
            except fleet_run.FleetRunError as exc:
                raise FleetError(f"run: {exc}") from None
        return cmd_merge(args.out_dir, args.results, {o.dest: getattr(args, o.dest) for o in report_outputs.OUTPUTS})
    except FleetError as exc:
        print(inert(f"ERROR: fleet: {exc}"), file=sys.stderr)
        return USAGE_EXIT
    except OSError as exc:
        print(inert(f"ERROR: fleet: {exc}"), file=sys.stderr)
        return USAGE_EXIT


if __name__ == "__main__":
    sys.exit(main())
