"""Compliance over time: the report sets scheduled runs keep (and any results.json given), as one history.

    python -m postfix_compliance.history OUT_DIR REPORTS_ROOT_OR_RESULTS...

Each argument is a scheduled run's reports root (every `<UTC time>/results.json` under it), a report
directory, or a results.json. The files are read one at a time, validated as `fleet merge` validates them
(the published schema), ordered by their generated_at; of each, only every host × check's outcome is kept.
OUT_DIR gets (each written atomically, private but the metrics):
- history.html (report/history_html.py): the fleet's pass rate over time as an inline SVG chart; per host
  and check, what fails now and since when (the first run of its current failing streak), when it last
  passed, and what flaps (changes outcome 3 times or more); the hosts that dropped out of the latest run;
  an index of the runs, linked to their pages where they sit under OUT_DIR's reports root;
- history.json: the same, as data;
- history.prom: `postfix_compliance_history_runs`, `postfix_compliance_history_fleet_pass_ratio`,
  `postfix_compliance_history_host_missing{host,...}` (1 for each host of the previous run that the
  latest did not check: contrib/alerts has the rule) and `postfix_compliance_history_failing_since_timestamp_seconds`.
scripts/scheduled-run.sh runs it over its reports root after every run. Bad input: one ERROR line, exit 4.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import sys
from typing import Any, Iterable

from postfix_compliance.atomicfile import READABLE_MODE, write_atomic
from postfix_compliance.errors import UsageError
from postfix_compliance.fleet import FleetError, load_results
from postfix_compliance.results_file import seconds_of
from postfix_compliance.private_dirs import private_dir
from postfix_compliance.text import inert

FLAPPING_FLIPS = 3  # changes of outcome (pass <-> fail/error) within the history that make a check "flapping"
BAD = ("fail", "error")


@dataclasses.dataclass(frozen=True)
class RunPoint:
    path: str
    generated_at: str
    hosts: int
    judged: int  # pass, waived, fail, error
    passed: int  # pass, waived

    @property
    def pass_ratio(self) -> float | None:
        return self.passed / self.judged if self.judged else None


@dataclasses.dataclass(frozen=True)
class CheckHistory:
    host: str  # the target
    host_name: str
    check_id: str
    title: str
    outcomes: tuple[str | None, ...]  # one per run, oldest first; None: not checked in that run
    current: str | None
    failing_since: str | None  # generated_at of the first run of the current failing streak
    last_passed: str | None
    flips: int

    @property
    def flapping(self) -> bool:
        return self.flips >= FLAPPING_FLIPS


@dataclasses.dataclass(frozen=True)
class History:
    runs: tuple[RunPoint, ...]
    checks: tuple[CheckHistory, ...]
    dropped: tuple[tuple[str, str], ...]  # (target, host name) checked by the previous run, not the latest
    flapping_flips: int = FLAPPING_FLIPS  # what `flapping` means here (the page says it)

    def to_dict(self) -> dict[str, Any]:
        return {"format": "postfix-compliance-history/1",
                "runs": [dataclasses.asdict(r) | {"pass_ratio": r.pass_ratio} for r in self.runs],
                "failing": [_check_dict(c) for c in self.checks if c.current in BAD],
                "flapping": [_check_dict(c) for c in self.checks if c.flapping],
                "dropped": [{"host": h, "host_name": n} for h, n in self.dropped]}


def _check_dict(check: CheckHistory) -> dict[str, Any]:
    data = dataclasses.asdict(check)
    data["outcomes"] = list(check.outcomes)
    data["flapping"] = check.flapping
    return data


def result_files(paths: Iterable[str]) -> list[str]:
    """Every results.json the arguments name: a file, a report directory, or a root of report sets."""
    found: list[str] = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
        elif os.path.isfile(os.path.join(path, "results.json")):
            found.append(os.path.join(path, "results.json"))
        elif os.path.isdir(path):
            sets = sorted(glob.glob(os.path.join(glob.escape(path), "[0-9]*", "results.json")))
            if not sets:
                raise UsageError(f"{path}: no results.json in it, nor in a report set under it")
            found += sets
        else:
            raise UsageError(f"{path}: no such file or directory")
    return list(dict.fromkeys(os.path.abspath(p) for p in found))


def build(paths: Iterable[str]) -> History:
    """The history of the runs in `paths` (result_files), one file in memory at a time."""
    runs: list[tuple[float, str, RunPoint, dict[tuple[str, str], tuple[str, str, str]]]] = []
    for path in result_files(paths):
        try:
            doc = load_results(path)
        except FleetError as exc:
            raise UsageError(str(exc)) from None
        when = seconds_of(doc.get("generated_at")) or 0.0
        outcomes: dict[tuple[str, str], tuple[str, str, str]] = {}
        judged = passed = 0
        for record in doc["results"]:
            outcome = str(record.get("outcome"))
            key = (str(record.get("host")), str(record.get("check_id")))
            outcomes[key] = (outcome, str(record.get("host_name") or record.get("host")), str(record.get("title") or ""))
            if outcome in ("pass", "waived", "fail", "error"):
                judged += 1
                passed += outcome in ("pass", "waived")
        point = RunPoint(path=path, generated_at=str(doc.get("generated_at") or "unknown"),
                         hosts=len({h for h, _ in outcomes}), judged=judged, passed=passed)
        runs.append((when, path, point, outcomes))
        del doc
    if not runs:
        raise UsageError("no results to make a history of")
    runs.sort(key=lambda r: (r[0], r[1]))
    keys = list(dict.fromkeys(k for *_, outcomes in runs for k in outcomes))
    checks = []
    for key in keys:
        series = tuple(outcomes.get(key, (None, "", ""))[0] for *_, outcomes in runs)
        latest = next(outcomes[key] for *_, outcomes in reversed(runs) if key in outcomes)
        known = [(i, o) for i, o in enumerate(series) if o is not None]
        current = known[-1][1] if known else None
        since = None
        if current in BAD:
            start = len(known) - 1
            while start > 0 and known[start - 1][1] in BAD:
                start -= 1
            since = runs[known[start][0]][2].generated_at
        last_passed = next((runs[i][2].generated_at for i, o in reversed(known) if o == "pass"), None)
        flips = sum(1 for (_, a), (_, b) in zip(known, known[1:]) if (a in BAD) != (b in BAD)
                    and "not_applicable" not in (a, b))
        checks.append(CheckHistory(host=key[0], host_name=latest[1], check_id=key[1], title=latest[2],
                                   outcomes=series, current=current, failing_since=since, last_passed=last_passed,
                                   flips=flips))
    dropped: tuple[tuple[str, str], ...] = ()
    if len(runs) > 1:
        before = {k[0]: v[1] for k, v in runs[-2][3].items()}
        now = {k[0] for k in runs[-1][3]}
        dropped = tuple(sorted((h, n) for h, n in before.items() if h not in now))
    checks.sort(key=lambda c: (c.host_name, c.host, c.check_id))
    return History(runs=tuple(r[2] for r in runs), checks=tuple(checks), dropped=dropped)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(history: History) -> str:
    latest = history.runs[-1]
    lines = ["# HELP postfix_compliance_history_runs Runs in the compliance history.",
             "# TYPE postfix_compliance_history_runs gauge", f"postfix_compliance_history_runs {len(history.runs)}",
             "# HELP postfix_compliance_history_fleet_pass_ratio Passed (or waived) checks over judged checks, latest run.",
             "# TYPE postfix_compliance_history_fleet_pass_ratio gauge",
             f"postfix_compliance_history_fleet_pass_ratio {latest.pass_ratio if latest.pass_ratio is not None else 'NaN'}",
             "# HELP postfix_compliance_history_host_missing 1 for a host the previous run checked and the latest did not.",
             "# TYPE postfix_compliance_history_host_missing gauge"]
    lines += [f'postfix_compliance_history_host_missing{{host="{_label(h)}",host_name="{_label(n)}"}} 1'
              for h, n in history.dropped]
    lines += ["# HELP postfix_compliance_history_failing_since_timestamp_seconds When a failing check's current "
              "failing streak began.", "# TYPE postfix_compliance_history_failing_since_timestamp_seconds gauge"]
    for check in history.checks:
        if check.failing_since:
            when = seconds_of(check.failing_since)
            if when is not None:
                lines.append(f'postfix_compliance_history_failing_since_timestamp_seconds{{host="{_label(check.host)}",'
                             f'check="{_label(check.check_id)}"}} {when:.0f}')
    return "\n".join(lines) + "\n"


def write(history: History, out_dir: str) -> None:
    from postfix_compliance.report.history_html import page
    private_dir(out_dir, "history directory")
    write_atomic(os.path.join(out_dir, "history.json"), json.dumps(history.to_dict(), indent=1) + "\n")
    write_atomic(os.path.join(out_dir, "history.prom"), metrics(history), mode=READABLE_MODE)
    write_atomic(os.path.join(out_dir, "history.html"), page(history, base=out_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m postfix_compliance.history",
                                     description="Compliance over time from report sets and results files.")
    parser.add_argument("out_dir")
    parser.add_argument("results", nargs="+", help="a reports root of scheduled runs, a report directory, or a "
                                                   "results.json")
    args = parser.parse_args(argv)
    try:
        history = build(args.results)
        write(history, args.out_dir)
    except (UsageError, OSError) as exc:
        print(inert(f"ERROR: history: {exc}"), file=sys.stderr)
        return 4
    latest = history.runs[-1]
    print(inert(f"history: {len(history.runs)} runs, {sum(1 for c in history.checks if c.current in BAD)} failing "
                f"now, {sum(1 for c in history.checks if c.flapping)} flapping, {len(history.dropped)} dropped out "
                f"(latest {latest.generated_at}) -> {args.out_dir}/history.html"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
