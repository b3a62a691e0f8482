"""The HTML report: per-host summary, triage, changes, waivers, rows; pure functions of a RunResult.

Two pages are made of the same pieces: pytest-html's (its hooks are in postfix_compliance/plugin/
html_report.py, a thin adapter calling the functions here) and `page(run)`, a complete
self-contained page without pytest-html (what `fleet merge` writes).

How pytest-html 4 renders (and why the escaping here is the whole story): every row's cells and
extras are Python strings put into one JSON blob, stored in a `data-jsonblob` attribute (Jinja
escapes it for the attribute, the browser unescapes it, JSON.parse gives back our exact strings);
its JavaScript then builds the table client-side, inserting cells with `template.innerHTML` and
HTML extras with `insertAdjacentHTML`, and rebuilds every row on each expand/collapse. So whatever
we hand it IS parsed as HTML in the reader's browser, as often as the reader clicks:
  - every string in a cell or a summary section is `html.escape`d here, once, where it enters HTML;
  - a row's log is only a placeholder (`<div class=pfc-d data-r=KEY>`); the detail (message,
    waiver, remediation, rollback, the probes read) and each probe's command and output live once in
    a `<script type="application/json">` data block (`<`, `>`, `&` written as \\u escapes, so nothing
    in it can end the block), and assets/report.js builds them with createElement/textContent when a
    row is shown expanded or a probe opened: what a host printed never enters HTML at all.
`page(run)` builds the same rows (same cells, same placeholders) in its own table and includes the
same data block and script: the same escaping, one renderer.
That also keeps the page fast: rows stay small, a host's output is stored once however many checks
read it, and a large report opens on its failing checks only (bench/report_bench.py measures it).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import time
import urllib.parse
from typing import Any, Iterator, Mapping

from postfix_compliance import __version__
from postfix_compliance.atomicfile import write_atomic
from postfix_compliance.filenames import host_page
from postfix_compliance.run import OUTCOMES, CheckResult, HostResult, RunResult
from postfix_compliance.runbook import SECTIONS, SEVERITIES
from postfix_compliance.text import inert, inert_data

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
CSS = os.path.join(ASSETS, "report.css")
JS = os.path.join(ASSETS, "report.js")
OUTCOME_LABELS = {"pass": "pass", "fail": "FAIL", "error": "ERROR", "waived": "waived",
                  "not_applicable": "not applicable"}
OUTCOME_RANK = {"fail": 0, "error": 1, "waived": 2, "not_applicable": 3, "pass": 4}
# A report with more rows than this opens listing only the failing checks (a click on pytest-html's
# Passed/Skipped filters lists the rest), and with every row collapsed if even those are this many.
LARGE = 200
# A fleet: more hosts than this, and the page is the summary plus the failing checks only (passing checks'
# rows and evidence are left out of it); each host has a page of its own (`host_page`) with all its checks,
# linked from the host summary, so that 1,000 hosts open as fast as 10.
FLEET_HOSTS = 50
# A merge's page (`page`) of more hosts than this holds the roll-up and the host summary only: each host's
# triage finding and failing checks are on its own page. At 10,000 hosts the full page was 19.5 MB and took
# 9.9 s to open in Chromium (bench/report_bench.py --merge-slices); the roll-up already groups the findings.
LARGE_FLEET_HOSTS = 2000
SHOWN_IN_FLEET = ("fail", "error")
CLIP = 50_000  # characters of one output shown in the page (results.json has it all)

e = html.escape


Row = tuple[HostResult, CheckResult]
# pytest-html's word for a check's row: its filters select rows by it, its counters count them by it
# (Passed, Failed, Skipped, XFailed, XPassed, Error, Rerun). It follows the suite's outcome: a check that
# could not be judged is an "Error" (pytest itself calls an exception in the call phase "Failed"), a
# failed one "Failed"; waived and not applicable are "Skipped" (pytest says so too).
RESULT_WORDS = {"pass": "Passed", "fail": "Failed", "error": "Error", "waived": "Skipped",
                "not_applicable": "Skipped"}


def result_word(outcome: str, pytest_word: str | None = None) -> str:
    """pytest-html's word for a check of this outcome. Given pytest's own (`pytest_word`), the suite's
    verdict only settles Failed against Error; every other word stays (an xfail-marked check XFailed or
    XPassed, a rerun attempt Rerun)."""
    if pytest_word is None or (pytest_word in ("Failed", "Error") and outcome in ("fail", "error")):
        return RESULT_WORDS.get(outcome, pytest_word or "Error")
    return pytest_word


# ---------------------------------------------------------------------- title
def _profiles(run: RunResult) -> list[str]:
    return sorted({h.profile for h in run.hosts if h.checks and h.profile})


def title(run: RunResult) -> str:
    profiles = _profiles(run)
    if run.profile is not None:
        profile = f"profile {run.profile}"
    elif profiles:
        profile = ("profile " if len(profiles) == 1 else "profiles ") + ", ".join(profiles)
    else:
        profile = "profile detected per host"
    return (f"Postfix/SELinux compliance — {profile} — "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(run.started))} — suite {__version__}")


def escaped_metadata(value: Any) -> Any:
    """pytest-metadata's environment values, escaped (pytest-html inserts them with innerHTML)."""
    if isinstance(value, dict):
        return {e(str(k)): escaped_metadata(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escaped_metadata(v) for v in value]
    return e(str(value)) if value is not None else value


# ---------------------------------------------------------------------- rows
def row_key(host: HostResult, check: CheckResult) -> str:
    return hashlib.sha256(f"{check.nodeid}\0{host.id}".encode()).hexdigest()[:12]


def evidence_key(ev: dict[str, Any]) -> str:
    payload = json.dumps([ev.get("probe"), ev.get("command"), ev.get("exit_status"), ev.get("stdout"),
                          ev.get("stderr"), ev.get("error")])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _status(ev: dict[str, Any]) -> str:
    if ev.get("error"):
        return f"no result: {ev['error']}"
    if ev.get("truncated") is not None:  # cut at --max-probe-output: said wherever the output is shown
        return f"exit {ev.get('exit_status')}, output truncated at {ev['truncated']} bytes"
    return f"exit {ev.get('exit_status')}"


COLUMNS = (("outcome", "Outcome"), ("host", "Host"), ("check", "Check"), ("severity", "Severity"),
           ("section", "Runbook section"))


def header_cells(cells: list[str]) -> list[str]:
    """pytest-html's header cells (Result; Test; Duration; Links) with ours between Result and Test.
    Result stays, hidden (report.css): its cell holds the word pytest-html's filters, counters and
    expand state read (`result_word`); the Outcome column shows it in the suite's words, so the page
    has one outcome column."""
    result, test, duration = cells[0], cells[1], cells[2]
    ours = [f'<th class="sortable" data-column-type="{name}">{label}</th>' for name, label in COLUMNS]
    return [result, *ours, test, duration]


def row_cells(row: Row | None, *, result: str, test_id: str, duration: str) -> list[str]:
    """A row's cells: HTML that pytest-html's script parses, so escaped, and small (unquoted class
    names, short sort keys), since it holds 3 copies of each in the page and rebuilds every row on
    each expand/collapse. `result` (pytest-html's word for the row, `result_word`: Passed, Failed,
    Error...), `test_id` and `duration` are text; `row` None: a test that is not a check (a collection
    error...)."""
    head = f"<td class=col-result>{e(result)}</td>"
    tail = [f"<td class=col-testId>{e(test_id)}</td>", f"<td class=col-duration>{e(duration)}</td>"]
    if row is None:
        return [head, *[f"<td class=col-{name}></td>" for name, _ in COLUMNS], *tail]
    host, check = row
    outcome, severity, section = check.outcome, check.severity, check.section
    return [
        head,
        f"<td class=col-outcome><i hidden>{_sort_key(check)}</i>"
        f"<b class=o-{_cls(outcome)}>{e(OUTCOME_LABELS.get(outcome, outcome))}</b></td>",
        f"<td class=col-host>{e(host.name)}</td>",  # the URL is in the Test column
        f"<td class=col-check><b>{e(check.check_id)}</b> {e(check.title)}</td>",
        f"<td class=col-severity><i hidden>{_rank(SEVERITIES, severity)}</i>"
        f"<b class=s-{_cls(severity)}>{e(severity)}</b></td>",
        f"<td class=col-section><i hidden>{_rank(SECTIONS, section):02d}</i>{e(section)}</td>",
        *tail,
    ]


def row_detail(row: Row | None, log: list[str], failure_text: str = "") -> list[str]:
    """What is shown below a row, from pytest-html's "log" lines (pytest's failure text and captured
    output, escaped). For a check: a placeholder that report.js fills from the page's data block
    with the check's message, remediation and evidence when the row is shown expanded. The failure
    text repeated the message, so it goes; a check that crashed keeps it (the traceback is the
    evidence of a bug in the suite). One line, starting with "<": pytest-html's script wraps log
    lines that start with "E" in a span, which must not cut through our markup. Not a check: its
    log as pytest-html has it, preformatted."""
    if row is None:
        return ["<pre class=pfc-trace>", *log, "</pre>"]
    host, check = row
    crashed = check.outcome == "error" and not (failure_text or "").startswith(check.check_id + " ")
    trace = ["<pre class=pfc-trace>", *log, "</pre>"] if crashed else []
    return [f"<div class=pfc-d data-r={row_key(host, check)}></div>", *trace]


def _cls(word: str) -> str:
    """A value usable as an unquoted class name (our own enums; anything else is dropped)."""
    return re.sub(r"[^a-z_]", "", word.lower()) or "x"


def _rank(order: tuple[str, ...], value: str) -> int:
    return order.index(value) if value in order else len(order)


def _sort_key(check: CheckResult) -> str:
    """Outcome column's sort key: failures first, then severity, runbook order (ties keep the run's
    order: check by check, host by host)."""
    return f"{OUTCOME_RANK.get(check.outcome, 9)}{_rank(SEVERITIES, check.severity)}" \
           f"{_rank(SECTIONS, check.section):02d}"


def is_fleet(run_or_hosts: RunResult | int, above: int = FLEET_HOSTS) -> bool:
    """Whether a run (or a number of hosts) gets the fleet-sized page (of more than `above` hosts)."""
    hosts = run_or_hosts if isinstance(run_or_hosts, int) else sum(1 for h in run_or_hosts.hosts if h.checks)
    return hosts > above


def shown_checks(run: RunResult) -> list[tuple[HostResult, CheckResult]]:
    """The checks that have a row on the run's page: all, or a fleet's failing ones."""
    fleet = is_fleet(run)
    return [(h, c) for h, c in run.checks() if not fleet or c.outcome in SHOWN_IN_FLEET]


def host_pages(run: RunResult, *, catalog: Mapping[str, Any] | None = None,
               up: str = "compliance.html") -> Iterator[tuple[str, str]]:
    """(file name, page) of each host of a fleet run, one at a time: its own page with every check, linking
    back to `up` (the run's page, a directory above); none for a small run."""
    if not is_fleet(run):
        return
    import dataclasses
    for host in run.hosts:
        if host.checks:
            yield host_page(host), page(dataclasses.replace(run, hosts=(host,)), catalog=catalog, up=f"../{up}")


def page_data(run: RunResult, catalog: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What report.js needs to show any row's detail: per check (once), per row, per output (once).
    `catalog`: check id -> its metadata (checks.CATALOG's CheckMeta: the "why" of a failing check)."""
    checks: dict[str, Any] = {}
    rows: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    steps: dict[str, Any] = {}
    for host, check in shown_checks(run):
        check_id = check.check_id
        if check_id not in checks:
            meta = (catalog or {}).get(check_id)
            checks[check_id] = {"why": getattr(meta, "rationale", "") if meta else "",
                                "refs": list(check.references)}
        evidence = []
        for ev in host.evidence_of(check):
            key = evidence_key(ev)
            evidence.append([key, ev.get("probe") or "?", _status(ev)])
            if key not in outputs:
                outputs[key] = {"cmd": inert(ev.get("command") or ""), "exit": ev.get("exit_status"),
                                "error": ev.get("error"), "s": round(float(ev.get("duration") or 0), 3),
                                # a browser shows a control character as nothing: shown as \x1b instead
                                "out": _clip(inert(ev.get("stdout") or "")), "err": _clip(inert(ev.get("stderr") or ""))}
        waiver = check.waiver
        fix = []  # the host's plan: the steps that serve this check, each once per host in "steps"
        if host.plan is not None and check.outcome == "fail":
            for number, action in enumerate(host.plan.actions, 1):
                if check_id in action.checks:
                    key = hashlib.sha256(f"{host.id}\0{action.id}".encode("utf-8", "surrogatepass")).hexdigest()[:12]
                    fix.append(key)
                    if key not in steps:
                        steps[key] = _step_data(host.plan, number, action)
        rows[row_key(host, check)] = {
            "check": check_id, "outcome": check.outcome, "message": inert(check.message), "fix": fix,
            "notes": [inert(n) for n in check.notes], "evidence": evidence,
            "waiver": None if not waiver else {
                "justification": waiver.get("justification"), "owner": waiver.get("owner"),
                "expires": waiver.get("expires"), "expired": bool(waiver.get("expired")),
                "where": (f"{waiver.get('file')} entry {int(waiver.get('index') or 0) + 1}"
                          if waiver.get("file") else "")},
        }
    return {"checks": checks, "rows": rows, "outputs": outputs, "steps": steps}


def _step_data(plan: Any, number: int, action: Any) -> dict[str, Any]:
    """One action of a host's remediation plan as a check row shows it (its "Fix"): what it does, its commands
    (a step for a person: what to look at), its rollback. The plan's own words: host words are quoted there."""
    from postfix_compliance.remediation_plan import shown_commands
    automatic = [a for a in plan.actions if not a.manual]
    where = f"step {automatic.index(action) + 1}/{len(automatic)}" if not action.manual else "for a person"
    return {"head": inert(f"# {where}: {action.summary}"), "cmds": [inert(c) for c in shown_commands(action)],
            "rollback": [inert(r) for r in action.rollback]}


# ---------------------------------------------------------------------- summary
def _counts(run: RunResult) -> tuple[int, int]:
    """(checks, failing checks: fail or error) of the run."""
    total = failing = 0
    for _, check in run.checks():
        total += 1
        failing += check.outcome in ("fail", "error")
    return total, failing


def render_collapsed(run: RunResult) -> list[str]:
    """pytest-html's renderCollapsed for the run: every row collapsed when even the rows it opens
    with (all, or the failing ones of a large report) are more than LARGE."""
    total, failing = _counts(run)
    shown = total if total <= LARGE else failing
    return ["all"] if shown > LARGE else ["passed", "skipped"]


def summary_prefix(run: RunResult, *, per_host: bool = True) -> list[str]:
    """The pieces above the results table: run line, the roll-up of a run of many hosts, hosts, triage,
    changes, waivers. Without `per_host`, each host's triage finding is left to its own page."""
    from postfix_compliance.report.rollup import rollup_html
    return [piece for piece in (run_line(run), rollup_html(run, host_links=is_fleet(run)),
                                host_summary_html(run, anchors=per_host), triage_html(run) if per_host else "",
                                changes_html(run), waivers_html(run), fleet_html(run)) if piece]


def large_notice(run: RunResult, everything: str = "passed,skipped,failed,error,xfailed,xpassed,rerun") -> str:
    """For a report of more than LARGE checks: it opens listing the failing ones (and how to list all)."""
    total, failing = _counts(run)
    if is_fleet(run):
        return (f'<p id="pfc-large" class="pfc-large">This report holds {total} checks of '
                f'{sum(1 for h in run.hosts if h.checks)} hosts: it lists the {failing} failing ones (Failed, '
                f'Errors); each host\'s own page, linked from the host summary, has all its checks and their '
                f'evidence.</p>')
    if total <= LARGE:
        return ""
    return (f'<p id="pfc-large" class="pfc-large">This report holds {total} checks: it opens listing '
            f'the {failing} failing ones (Failed, Errors). <a href="?visible={everything}">List all '
            f'{total}</a>, or tick Passed and Skipped above; the host summary counts them all.</p>')


def data_block(run: RunResult, catalog: Mapping[str, Any] | None = None, *, rows: bool = True) -> str:
    """The page's data (`page_data` and the view a large report opens with) as a JSON <script> block
    nothing in it can close; without `rows` (a page without a results table), none of the rows' data."""
    total, failing = _counts(run)
    view = {"visible": "failed,error", "total": total, "failing": failing} if total > LARGE else {}
    data = page_data(run, catalog) if rows else {"checks": {}, "rows": {}, "outputs": {}, "steps": {}}
    block = _script_json({**data, "view": view})
    return f'<script type="application/json" id="pfc-data">{block}</script>'


def script() -> str:
    with open(JS, encoding="utf-8") as handle:
        return "<script>" + handle.read() + "</script>"


def summary_postfix(run: RunResult, catalog: Mapping[str, Any] | None = None, *, filters: bool = True,
                    rows: bool = True) -> list[str]:
    """The pieces below the results table: legend, the large-report notice, data block, script. `filters`:
    the page has pytest-html's filter boxes (its own page; `page()` has none); `rows`: it has a results table."""
    return [piece for piece in (legend_html(filters), large_notice(run) if rows else "",
                                data_block(run, catalog, rows=rows), script()) if piece]


def run_line(run: RunResult) -> str:
    total, _ = _counts(run)
    hosts = sum(1 for h in run.hosts if h.checks)
    profile = run.profile or (", ".join(_profiles(run)) or "none detected")
    # how long it took: the count and time pytest-html's own line ("23 tests took ...", hidden) would give in
    # its words; a merge of results files (fleet merge) spans their runs, which is no one run's time
    took = "" if isinstance(run.sections.get("fleet"), Mapping) else f" in {e(_took(run))}"
    return (f'<p class="pfc-run">Profile <b>{e(profile)}</b> · {hosts} host{"s" if hosts != 1 else ""} · '
            f'{total} checks run{took} · started '
            f'{e(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(run.started)))} · suite {e(__version__)}</p>')


def _anchor(check: CheckResult, label: str) -> str:
    return f'<a href="#{e(urllib.parse.quote(check.nodeid, safe=""))}">{e(label)}</a>'


def host_summary_html(run: RunResult, *, anchors: bool = True) -> str:
    """One row per host, worst first. Without `anchors` (a page without the failing checks' rows), the
    failing check ids are text and the host's own page link has them."""
    hosts: dict[str, dict[str, Any]] = {}
    fleet = is_fleet(run)
    for host, check in run.checks():
        entry = hosts.setdefault(host.id, {"name": host.name, "profile": host.profile,
                                           "counts": dict.fromkeys(OUTCOMES, 0), "failing": [],
                                           "page": host_page(host) if fleet else None})
        entry["counts"][check.outcome] = entry["counts"].get(check.outcome, 0) + 1
        if check.outcome in ("fail", "error"):
            entry["failing"].append(check)

    def badness(item: tuple[str, dict[str, Any]]) -> tuple[int, int, str]:
        counts = item[1]["counts"]
        return -counts["fail"], -counts["error"], item[1]["name"]

    rows = []
    for host, entry in sorted(hosts.items(), key=badness):
        counts = entry["counts"]
        bad = counts["fail"] + counts["error"]
        failing = sorted(entry["failing"], key=lambda c: (OUTCOME_RANK[c.outcome], _rank(SECTIONS, c.section),
                                                          c.check_id))
        links = " ".join((_anchor(c, c.check_id) if anchors else e(c.check_id))
                         + (' <span class="pfc-o o-error">error</span>' if c.outcome == "error" else "")
                         for c in failing)
        name = e(entry["name"]) + (f"<br><small>{e(host)}</small>" if host != entry["name"] else "")
        if entry["page"]:  # a fleet: the host's own page has all its checks and evidence
            name = f'<a href="{e(entry["page"])}">{name}</a>'
        if entry["page"] and links:  # its failing checks are rows of this page; the host page has them too
            links += f' <a class="pfc-host-page" href="{e(entry["page"])}">all checks</a>'

        cells = "".join(f'<td class="n-{o}{" zero" if not counts[o] else ""}">{counts[o]}</td>' for o in OUTCOMES)
        rows.append(f'<tr class="{"host-bad" if bad else "host-ok"}" data-host="{e(host)}">'
                    f'<td class="h">{name}</td><td>{e(entry["profile"] or "—")}</td>{cells}'
                    f'<td class="failing">{links or "—"}</td></tr>')
    head = "".join(f"<th>{label}</th>" for label in ("Passed", "Failed", "Errors", "Waived", "Not applicable"))
    return ('<h2 id="host-summary-title">Hosts</h2><table id="host-summary"><thead><tr><th>Host</th><th>Profile</th>'
            + head + "<th>Failing checks</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


TRIAGE_KINDS = {"selinux": ("SELinux is the cause", "o-fail"), "masked": ("masked: SELinux permissive", "o-error"),
                "not-selinux": ("not an SELinux problem", "o-not_applicable"),
                "history": ("history: logged while permissive", "o-not_applicable")}


def triage_html(run: RunResult) -> str:
    """Each host's triage finding (postfix_compliance.triage): the root cause the facts point to."""
    findings = [(h, h.diagnosis) for h in run.hosts if h.checks and h.diagnosis]
    if not findings:
        return ""
    out = ['<div id="triage"><h2>Triage</h2>']
    for host, finding in sorted(findings, key=lambda item: item[0].name or item[0].id):
        finding = inert_data(dict(finding))  # shown visibly (\x1b); its commands are quoted (text.shell)
        label, css = TRIAGE_KINDS.get(finding.get("kind"), (finding.get("kind") or "finding", "o-not_applicable"))
        causes = [c for c in finding.get("causes") or () if isinstance(c, dict)]
        headline = causes[0].get("summary") if len(causes) > 1 else finding.get("summary")
        out.append(f'<div class="pfc-finding" data-host="{e(host.id)}"><p><b>{e(host.name or host.id)}</b> '
                   f'<span class="pfc-o {css}">{e(label)}</span> {e(headline or "")}</p>')
        if len(causes) > 1:  # every distinct reason, each with its own steps in the Fix below
            out.append("<p>Every cause found:</p><ol>" + "".join(f"<li>{e(c.get('summary') or '')}</li>"
                                                                   for c in causes) + "</ol>")
        for key, heading in (("fix", "Fix (steps of the host's remediation plan)"), ("verification", "Verify"),
                             ("rollback", "Rollback")):
            if finding.get(key):
                out.append(f"<b>{heading}</b><pre>{e(chr(10).join(finding[key]))}</pre>")
        if finding.get("related_checks"):
            out.append(f'<p class="pfc-hint">Related checks: {e(", ".join(finding["related_checks"]))}</p>')
        if finding.get("evidence"):
            out.append('<details class="pfc-finding-ev"><summary>Evidence lines</summary><pre>'
                       + e("\n".join(finding["evidence"])) + "</pre></details>")
        out.append("</div>")
    return "".join(out) + "</div>"


def _change_rows(items: list[dict[str, Any]]) -> str:
    return "".join(
        f'<tr><td>{e(c.get("label") or c.get("host_name") or c["host"])}</td>'
        f'<td><b>{e(c["check_id"])}</b> {e(c.get("title") or "")}'
        f'</td><td><span class="pfc-o o-{e(str(c.get("before")))}">{e(str(c.get("before") or "—"))}</span> → '
        f'<span class="pfc-o o-{e(str(c.get("after")))}">{e(str(c.get("after") or "—"))}</span></td>'
        f'<td class="msg">{e(c.get("message") or "")}</td></tr>' for c in items)


def changes_html(run: RunResult) -> str:
    """The comparison with the baseline (`run.changes`), or "" when the run had none."""
    if run.changes is None:
        return ""
    changes = inert_data(dict(run.changes))  # a baseline's messages and denial fields: shown visibly (\x1b)
    base = changes.get("baseline", {})
    counts = (f'{len(changes["regressions"])} regression{"s" if len(changes["regressions"]) != 1 else ""}, '
              f'{len(changes["fixes"])} fix{"es" if len(changes["fixes"]) != 1 else ""}, '
              f'{len(changes["new_avc_denials"])} new AVC denial{"s" if len(changes["new_avc_denials"]) != 1 else ""}, '
              f'{len(changes["new_hosts"])} new host(s), {len(changes["missing_hosts"])} missing host(s)')
    bad = changes["regressions"] or changes["new_avc_denials"]
    out = [f'<div id="changes" class="{"changes-bad" if bad else "changes-ok"}">'
           f'<h2>Changes since the baseline</h2><p>Baseline <code>{e(str(base.get("path", "")))}</code> '
           f'(generated {e(str(base.get("generated_at") or "?"))}, suite {e(str(base.get("suite_version") or "?"))}): '
           f'<b>{e(counts)}</b>.</p>']
    head = "<thead><tr><th>Host</th><th>Check</th><th>Before → after</th><th>Message</th></tr></thead>"
    for key, label in (("regressions", "Regressions (passed before, fail now; a waiver does not hide them)"),
                       ("fixes", "Fixes (failed before, pass now)"), ("other", "Other outcome changes")):
        if changes.get(key):
            out.append(f'<h3 class="{key}">{e(label)}</h3><table class="pfc-changes {key}">{head}<tbody>'
                       + _change_rows(changes[key]) + "</tbody></table>")
    if changes["new_avc_denials"]:
        rows = "".join(
            f'<tr><td>{e(d.get("label") or d.get("host_name") or d["host"])}</td><td>{e(d.get("comm") or "?")}</td>'
            f'<td>{e(" ".join(d.get("permissions") or []))}</td><td>{e(d.get("path") or "?")}</td>'
            f'<td><code>{e(d["scontext"])}</code></td><td><code>{e(d["tcontext"])}</code></td>'
            f'<td>{e(d["tclass"])}</td></tr>' for d in changes["new_avc_denials"])
        out.append('<h3 class="new-avc">New AVC denials (not in the baseline)</h3><table class="pfc-changes new-avc">'
                   "<thead><tr><th>Host</th><th>comm</th><th>Permissions</th><th>Path</th><th>scontext</th>"
                   f"<th>tcontext</th><th>tclass</th></tr></thead><tbody>{rows}</tbody></table>")
    for key, label in (("new_hosts", "New hosts (not in the baseline)"),
                       ("missing_hosts", "Missing hosts (in the baseline, not checked now)")):
        if changes.get(key):
            out.append(f'<h3 class="{key}">{e(label)}</h3><ul class="{key}">'
                       + "".join(f"<li>{e(h)}</li>" for h in changes[key]) + "</ul>")
    if not any(changes.get(k) for k in ("regressions", "fixes", "other", "new_avc_denials", "new_hosts",
                                          "missing_hosts")):
        out.append("<p>No change: every host and check has the outcome it had.</p>")
    return "".join(out) + "</div>"


def waivers_html(run: RunResult) -> str:
    """Which waivers applied, expired, matched nothing (`run.waivers`), or "" without a waiver file."""
    if run.waivers is None:
        return ""
    summary = inert_data(dict(run.waivers))  # the waiver file's words: shown visibly (\x1b)
    out = [f'<div id="waivers"><h2>Waivers</h2><p>From <code>{e(summary["file"])}</code>: '
           f'{len(summary["applied"])} check(s) waived, {len(summary["expired"])} expired waiver(s) matched a '
           f'failing check, {len(summary["unused"])} waiver(s) unused.</p>']
    if summary["expired"]:
        out.append('<p class="expired"><b>Expired</b> (the checks fail again; renew the waiver or fix the host):'
                   '</p><ul class="expired">' + "".join(
                       f'<li><b>{e(w["check"])}</b> on {e(", ".join(w["hosts_matched"]))}: expired {e(w["expires"])}'
                       f' — {e(w["justification"])}{" (owner " + e(w["owner"]) + ")" if w.get("owner") else ""}</li>'
                       for w in summary["expired"]) + "</ul>")
    if summary["unused"]:
        out.append('<p>Unused (match no failing check on any host of this run):</p><ul class="unused">' + "".join(
            f'<li><b>{e(w["check"])}</b> hosts {e(", ".join(w["hosts"]))}: {e(w["why"])}</li>'
            for w in summary["unused"]) + "</ul>")
    return "".join(out) + "</div>"


def legend_html(filters: bool = True) -> str:
    """The outcomes in words; `filters`: the page has pytest-html's filter boxes (`page()` has none)."""
    counted = (' The filters above count the same rows: Failed is FAIL, Errors is ERROR, Skipped is waived and '
               'not applicable, Passed is pass.') if filters else ""
    return ('<p class="pfc-legend"><b>Outcome</b> is the compliance verdict: <span class="pfc-o o-fail">FAIL</span> '
            'the host is out of compliance · <span class="pfc-o o-error">ERROR</span> the check could not be '
            'judged (unreachable host, unreadable output) · <span class="pfc-o o-waived">waived</span> an accepted '
            'exception · <span class="pfc-o o-not_applicable">not applicable</span> · <span class="pfc-o o-pass">'
            f'pass</span>.{counted} Click a row to expand it; open a probe to see its command and output.</p>')


def skipped_label(skipped: Mapping[str, int]) -> str:
    """pytest-html's label of its Skipped counter, saying what its rows are in the suite's words:
    `skipped` counts the page's Skipped rows of checks by outcome ("Skipped (1 waived, 24 not
    applicable)"); "Skipped" when there are none."""
    parts = [f"{skipped[o]} {OUTCOME_LABELS[o]}" for o in ("waived", "not_applicable") if skipped.get(o)]
    return f"Skipped ({', '.join(parts)})" if parts else "Skipped"


def environment(run: RunResult) -> dict[str, str]:
    """The run's own lines of pytest-html's Environment table (before pytest-metadata's Python, platform,
    packages and plugins), escaped: pytest-html inserts them with innerHTML."""
    total, _ = _counts(run)
    hosts = sum(1 for h in run.hosts if h.checks)
    return {"Suite": f"postfix-compliance {e(__version__)}",
            "Profile": e(run.profile or (", ".join(_profiles(run)) or "none detected")) +
            ("" if run.profile else " (detected per host)"),
            "Hosts": str(hosts), "Checks": str(total),
            "Run": e(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(run.started))}, {_took(run)}")}


def _took(run: RunResult) -> str:
    """How long the run took, in words ("0.31 s", "2 min 5 s")."""
    seconds = max(0.0, float(run.ended or 0) - float(run.started or 0))
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _script_json(value: Any) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' can appear, so nothing can close the element."""
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _clip(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= CLIP else text[:CLIP] + f"\n… ({len(text) - CLIP} more characters in results.json)"


# ---------------------------------------------------------------------- fleet
def fleet_html(run: RunResult) -> str:
    """A merged run's "fleet" section (`fleet merge`): the results files and the duplicates it chose
    between, as far as they concern the page's hosts (a fleet host's own page: its file, not every host
    of every file); "" for a run that is not a merge."""
    fleet = run.sections.get("fleet")
    if not isinstance(fleet, Mapping):
        return ""
    shown = {h.name for h in run.hosts} | {h.id for h in run.hosts}
    out = ['<div id="fleet"><h2>Results files</h2><table id="sources" class="pfc-changes"><thead><tr><th>File</th>'
           "<th>Generated</th><th>Suite</th><th>Hosts</th><th>Records</th><th>Kept</th></tr></thead><tbody>"]
    for s in fleet.get("sources", []):
        hosts = [h for h in s["hosts"] if h in shown]
        if s["hosts"] and not hosts:
            continue  # a file of other hosts only (a file without hosts stays listed: an empty shard)
        out.append(f'<tr><td class="src">{e(str(s["path"]))}</td><td>{e(str(s.get("generated_at") or "unknown"))}</td>'
                   f'<td>{e(str(s.get("suite_version") or ""))}</td><td>{e(", ".join(hosts))}</td>'
                   f'<td>{int(s["records"])}</td><td>{int(s["kept"])}</td></tr>')
    out.append("</tbody></table>")
    dups = [d for d in fleet.get("duplicates", []) if d["host"] in shown]
    if dups:
        out.append('<h2>Duplicates</h2><ul id="duplicates">')
        for d in dups:
            out.append(f'<li>{e(d["host"])}: {len(d["checks"])} checks ({e(", ".join(d["checks"]))}) were in '
                       f'both {e(d["dropped"])} ({e(str(d["dropped_generated_at"]))}) and {e(d["kept"])} '
                       f'({e(str(d["kept_generated_at"]))}): {e(d["reason"])}: {e(d["kept"])}.</li>')
        out.append("</ul>")
    return inert("".join(out)) + "</div>"


# ---------------------------------------------------------------------- the page without pytest-html
_PAGE_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em}
#results-table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:12px}
#results-table th,#results-table td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
#results-table th{background:#f2f2f2}
.extras-row.hidden{display:none}
td.src{word-break:break-all;max-width:30em}
"""


def _table(run: RunResult) -> str:
    """Every check as a row (pytest-html's cells, `row_cells`), failing ones first; the failing,
    erroring and waived ones shown expanded (their detail built by report.js from the data block).
    The Result cell is hidden as on pytest-html's page: one outcome column."""
    head = "".join(f"<th{' class=col-result' if label == 'Result' else ''}>{label}</th>"
                   for label in ("Result", *(label for _, label in COLUMNS), "Test", "Duration"))
    rows = sorted(shown_checks(run), key=lambda hc: (_sort_key(hc[1]), hc[0].name, hc[0].id, hc[1].check_id))
    body = []
    for host, check in rows:
        cells = row_cells((host, check), result=result_word(check.outcome),
                          test_id=check.nodeid or f"{check.check_id} [{host.id}]",
                          duration=_duration(check.duration_s))
        shown = check.outcome in ("fail", "error", "waived")
        detail = "".join(row_detail((host, check), [], check.check_id + " "))
        body.append(f'<tbody class="results-table-row"><tr class="collapsible">{"".join(cells)}</tr>'
                    f'<tr class="extras-row{"" if shown else " hidden"}"><td class="extra" colspan="{len(COLUMNS) + 3}">'
                    f'<div class="logwrapper"><div class="log">{detail}</div></div></td></tr></tbody>')
    return f'<h2>Results</h2><table id="results-table"><thead><tr>{head}</tr></thead>{"".join(body)}</table>'


def _duration(seconds: Any) -> str:
    try:
        return f"{float(seconds):.3f} s"
    except (TypeError, ValueError):  # a results file from elsewhere
        return ""


def page(run: RunResult, *, catalog: Mapping[str, Any] | None = None, up: str | None = None) -> str:
    """A complete, self-contained HTML page of the run (no pytest-html, no external file): the same
    summary pieces, rows, data block and script as the pytest-html report, escaped the same way.
    `up`: a link back to the whole run's page (a fleet host's own page)."""
    with open(CSS, encoding="utf-8") as handle:
        css = handle.read()
    heading = e(title(run))
    back = f'<p class="pfc-run"><a href="{e(up)}">← the whole run</a></p>' if up else ""
    per_host = not is_fleet(run, above=LARGE_FLEET_HOSTS)
    table = _table(run) if per_host else (
        '<h2>Results</h2><p id="pfc-large" class="pfc-large">This page holds the roll-up and the host summary of '
        f'{sum(1 for h in run.hosts if h.checks)} hosts. Each host\'s triage finding, failing checks and their '
        "evidence are on its own page, linked from the host summary.</p>")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{heading}</title>",
           f"<style>{_PAGE_CSS}{css}</style></head><body>", f"<h1>{heading}</h1>", back,
           *summary_prefix(run, per_host=per_host), table,
           *summary_postfix(run, catalog, filters=False, rows=per_host), "</body></html>"]
    return "\n".join(out) + "\n"


def render(run: RunResult, **options: Any) -> str:
    return page(run, **options)


def write(run: RunResult, path: str, **options: Any) -> None:
    """`page(run, **options)` written atomically, mode 0644."""
    write_atomic(path, page(run, **options))
