"""results.json, the file: its one module. Written from a run, read back into one, validated, upgraded.

Every reader and writer of a results file goes through here: the suite's report (plugin/outputs.py),
`--baseline` (baseline.py), `fleet merge` (fleet.py), the history (history.py), the scripts. The renderers
(report/) only ever see the RunResult.

Format "postfix-compliance-results/2" (documented in docs/reports.md; readers must ignore keys they
do not know, writers only add keys within a format version):
  {"format", "suite_version", "generated_at", "started_at", "duration_s", "profile",
   "summary": {host: {outcome: count}},
   "evidence": {host: {evidence id: {"probe", "command", "exit_status", "stdout", "stderr",
                "duration", "error", "truncated" (only when cut at --max-probe-output)}}},
   "results": [{"host", "host_name", "profile", "check_id", "title", "severity", "section",
                "outcome" (pass|fail|error|waived|not_applicable), "message", "remediation",
                "rollback", "references", "evidence_digest", "evidence_refs": [evidence id],
                "nodeid", "duration_s",
                "waiver" (null, or {"check", "hosts", "justification", "owner", "expires", "file",
                "index", "outcome", "expired"})}],
   "diagnosis": {host: triage finding or null}, "plan": {host: remediation plan or null},
   optional: "changes" (with --baseline), "waivers" (with --waivers)}

Each probe's evidence is stored once per host (a host printing megabytes is not copied into every
check that read it); a record names what it read in "evidence_refs". Format /1 (still read, e.g. as
a baseline) had each record's evidence inline as "evidence": [...]; reading upgrades it (`load`:
each record given "evidence", whichever the format; `run_from_document`: the same RunResult).

Write: `document(run)` / `render(run)` / `write(run, path)`. Read: `load(path)` (format, schema, time
stamps checked; a problem is one ResultsFileError line naming the file), then `run_from_document(doc)`.
A document's records (from `load`, `inline_evidence`) carry "evidence": the list of its evidence objects,
shared with the host's table (not copies), so readers read a record's evidence the same way whichever
format it came from; `document` stores each once again.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import json
import os
import time
from typing import Any, Iterable, Iterator, Mapping

from postfix_compliance import __version__
from postfix_compliance.atomicfile import write_atomic
from postfix_compliance.run import RunResult, evidence_entries, hosts_from_records

RESULTS_FORMAT = "postfix-compliance-results/2"
FORMAT_1 = "postfix-compliance-results/1"
READABLE_FORMATS = (FORMAT_1, RESULTS_FORMAT)

# The published JSON Schema of the format (shipped in the package; docs/reports.md points to it): what every
# reader of a results file (--baseline, fleet merge) checks before it uses a key.
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas", "results.schema.json")
_ERROR_TEXT_MAX = 300  # a hostile value is named in the error line, cut to this


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        return jsonschema.Draft202012Validator(json.load(handle))


def schema_error(doc: Any) -> str | None:
    """The first place where `doc` breaks the results schema, as "where: what" (one line), or None."""
    import jsonschema
    error = jsonschema.exceptions.best_match(_validator().iter_errors(doc))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    message = " ".join(error.message.split())
    if len(message) > _ERROR_TEXT_MAX:
        message = message[:_ERROR_TEXT_MAX] + "…"
    return f"{where or 'top level'}: {message}"


def inline_evidence(doc: dict[str, Any]) -> dict[str, Any]:
    """A results document read from disk, its records given "evidence" (in place): format /2's refs
    resolved against the top-level "evidence" (shared objects, nothing copied); /1 has it already.
    A ref with no evidence is a ValueError naming the record."""
    tables = doc.get("evidence") if doc.get("format") != FORMAT_1 else None
    if not isinstance(tables, dict):
        tables = {}
    for index, record in enumerate(doc.get("results") or []):
        if not isinstance(record, dict) or "evidence" in record and "evidence_refs" not in record:
            continue  # format /1: inline already
        table = tables.get(record.get("host")) or {}
        refs = record.get("evidence_refs") or []
        missing = [ref for ref in refs if ref not in table]
        if missing:
            raise ValueError(f"results[{index}].evidence_refs: {missing[0]!r} is not in "
                             f"\"evidence\" of host {record.get('host')!r}")
        record["evidence"] = [table[ref] for ref in refs]
    return doc


def pack_evidence(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(records without "evidence", {host: {id: evidence}}): each evidence once per host, for writing."""
    tables: dict[str, dict[str, Any]] = {}
    packed = []
    for record in records:
        record = dict(record)
        evidence = record.pop("evidence", None)
        refs = record.get("evidence_refs")
        if evidence is not None:
            if refs is None or len(refs) != len(evidence):
                refs = [i for i, _ in evidence_entries(evidence)]
                record["evidence_refs"] = refs
            table = tables.setdefault(record["host"], {})
            for ref, ev in zip(refs, evidence):
                table.setdefault(ref, ev)
        elif refs is None:
            record["evidence_refs"] = []
        packed.append(record)
    return packed, tables


def evidence_digest(evidence: list[dict[str, Any]]) -> str:
    """A short stable hash of what the host printed for a check (same inputs, same digest)."""
    return hashlib.sha256(json.dumps([[e["command"], e["exit_status"], e["stdout"], e["stderr"], e["error"]]
                                      for e in evidence]).encode()).hexdigest()[:16]


def host_key(record: dict[str, Any]) -> str:
    """How runs are matched host by host: the name the host reports (its hostname, or a snapshot's
    "host"), so a pre-change snapshot and a post-change one of the same machine pair up."""
    return record.get("host_name") or record["host"]


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    summary: dict[str, dict[str, int]] = {}
    for record in records:
        counts = summary.setdefault(record["host"], {})
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
    return summary


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def seconds_of(text: Any) -> float | None:
    """Seconds since the epoch of a results.json time ("2025-11-28T14:43:00Z"), or None."""
    if not isinstance(text, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def _sort_key(record: Mapping[str, Any]) -> tuple[str, str]:
    return record["host"], record["check_id"]


def document(run: RunResult) -> dict[str, Any]:
    """The results.json document of a run: generated at `run.ended`; the verdict step's "changes"
    and "waivers" when set, then the run's further `sections` (e.g. "fleet")."""
    records, evidence = pack_evidence(sorted(run.records(with_evidence=True), key=_sort_key))
    doc: dict[str, Any] = {
        "format": RESULTS_FORMAT, "suite_version": __version__,
        "generated_at": _stamp(run.ended), "started_at": _stamp(run.started),
        "duration_s": round(run.ended - run.started, 3), "profile": run.profile,
        "summary": summarize(records),
        # One triage finding per host (or null): the correlated root cause, see triage.py.
        "diagnosis": {r["host"]: r.get("diagnosis") for r in records},
        # One remediation plan per host (or null): the ordered actions every fix output shows, see
        # remediation_plan.py.
        "plan": {host.id: host.plan.to_dict() if host.plan is not None else None
                 for host in sorted(run.hosts, key=lambda h: h.id) if host.checks},
        # Each probe's evidence once per host; records name theirs in "evidence_refs".
        "evidence": evidence,
        "results": records,
    }
    if run.changes is not None:
        doc["changes"] = run.changes
    if run.waivers is not None:
        doc["waivers"] = run.waivers
    doc.update(run.sections)
    return doc


def render(run: RunResult) -> str:
    return "".join(json_pieces(document(run)))


def json_pieces(doc: Mapping[str, Any]) -> Iterator[str]:
    """The document as JSON, in pieces for writing as they come: a key a line at the top, and in each
    top-level list or object an element a line, each element encoded by the C encoder at once. (An
    indented document goes through json's pure-Python encoder, a piece per token: at a fleet's size
    that cost more CPU than running the checks; a document as one string cost more memory.)"""
    encode = json.JSONEncoder().encode
    yield "{"
    for number, (key, value) in enumerate(doc.items()):
        yield f"{',' if number else ''}\n{encode(key)}: "
        if isinstance(value, list) and value:
            for index, item in enumerate(value):
                yield f"{',' if index else '['}\n {encode(item)}"
            yield "\n]"
        elif isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            for index, (name, item) in enumerate(value.items()):
                yield f"{',' if index else '{'}\n {encode(name)}: {encode(item)}"
            yield "\n}"
        else:
            yield encode(value)
    yield "\n}\n"


def write(run: RunResult, path: str) -> None:
    """Write atomically, never through a planted symlink (postfix_compliance/atomicfile.py)."""
    write_json(path, document(run))


def write_json(path: str, doc: dict[str, Any]) -> None:
    """Write a document atomically, never through a planted symlink (postfix_compliance/atomicfile.py)."""
    write_atomic(path, json_pieces(doc))


# The top-level keys `document` writes itself; any other is a further section of the run.
_DOCUMENT_KEYS = ("format", "suite_version", "generated_at", "started_at", "duration_s", "profile", "summary",
                  "diagnosis", "plan", "evidence", "results", "changes", "waivers")


def run_from_document(doc: Mapping[str, Any]) -> RunResult:
    """A results document (as `load` returns it: format /1 or /2, records given "evidence") as a
    RunResult: hosts in the order the records name them, each probe's evidence once per host. Its
    start and end are the document's "started_at" and "generated_at" (whole seconds; an end without
    a start, or the reverse, stands for both); "changes" and "waivers" as the verdict step set them;
    other top-level keys (e.g. "fleet") become `sections`. `facts` stay empty: parsing evidence is
    the results stage's job, not a reader's."""
    records = [r for r in doc.get("results") or [] if isinstance(r, dict)]
    tables = doc.get("evidence") if doc.get("format") != FORMAT_1 else None
    from postfix_compliance.remediation_plan import HostPlan
    plans = doc.get("plan") if isinstance(doc.get("plan"), dict) else {}
    hosts = hosts_from_records(records, tables if isinstance(tables, dict) else None,
                               doc.get("diagnosis") if isinstance(doc.get("diagnosis"), dict) else None,
                               {host: HostPlan.from_dict(plan) for host, plan in plans.items()
                                if isinstance(plan, Mapping)})
    started = seconds_of(doc.get("started_at"))
    ended = seconds_of(doc.get("generated_at"))
    if started is None and ended is None:
        started = ended = 0.0
    started = ended if started is None else started
    ended = started if ended is None else ended
    return RunResult(started=started, ended=ended, profile=doc.get("profile"), hosts=hosts,
                     changes=doc.get("changes"), waivers=doc.get("waivers"),
                     sections={k: v for k, v in doc.items() if k not in _DOCUMENT_KEYS and not k.startswith("_")})


class ResultsFileError(ValueError):
    """A results file that cannot be used: one line, naming the file."""


# How far ahead of this machine's clock a file's time stamps may be (clocks differ a little): a file dated
# later than that is refused where it would outrank real results (`fleet merge` keeps the newest record).
CLOCK_SKEW_S = 300


def load(path: str, *, directory: bool = False, refuse_future: bool = False) -> dict[str, Any]:
    """Read a results.json of format /1 or /2 (a baseline, a file to merge), validated against the
    schema, its records given "evidence" (`inline_evidence`: format /1 upgraded as it is read). With
    `directory`, a report directory holding a results.json is taken too; with `refuse_future`, a file
    dated ahead of this machine's clock is refused. Any problem is one ResultsFileError naming the file."""
    from postfix_compliance.errors import UsageError
    from postfix_compliance.inputfiles import load_json

    if directory and os.path.isdir(path):
        candidate = os.path.join(path, "results.json")
        if not os.path.exists(candidate):
            raise ResultsFileError(f"{path}: a directory without results.json")
        path = candidate
    try:
        doc = load_json(path)
    except UsageError as exc:
        raise ResultsFileError(str(exc)) from None
    if not isinstance(doc, dict) or doc.get("format") not in READABLE_FORMATS:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ResultsFileError(f"{path}: not a results file (\"format\" is {found!r}, expected "
                               f"{RESULTS_FORMAT!r} or {FORMAT_1!r})")
    error = schema_error(doc)  # every key a reader uses, typed
    if error is not None:
        raise ResultsFileError(f"{path}: {error}")
    generated = doc.get("generated_at")
    if generated is not None and seconds_of(generated) is None:
        raise ResultsFileError(f"{path}: \"generated_at\" {generated!r} is not YYYY-MM-DDTHH:MM:SSZ")
    if refuse_future:
        latest = time.time() + CLOCK_SKEW_S
        for key in ("generated_at", "started_at"):
            when = seconds_of(doc.get(key))
            if when is not None and when > latest:
                raise ResultsFileError(f"{path}: \"{key}\" {doc[key]} is in the future (more than {CLOCK_SKEW_S} "
                                       "s ahead of this machine's clock): refused, it would outrank every real "
                                       "result")
    try:
        inline_evidence(doc)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ResultsFileError(f"{path}: {exc}") from None
    return doc
