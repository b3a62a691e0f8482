"""The HTML report, through pytest-html's hooks: per-host summary, triage, changes, waivers, rows.

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
from typing import Any

import pytest

from postfix_compliance import __version__
from postfix_compliance.checks import CATALOG, SECTIONS, SEVERITIES
from postfix_compliance.report.results import OUTCOMES
from postfix_compliance.text import inert, inert_data

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
CSS = os.path.join(ASSETS, "report.css")
JS = os.path.join(ASSETS, "report.js")
REPORT_DATA = pytest.StashKey[Any]()
OUTCOME_LABELS = {"pass": "pass", "fail": "FAIL", "error": "ERROR", "waived": "waived",
                  "not_applicable": "not applicable"}
OUTCOME_RANK = {"fail": 0, "error": 1, "waived": 2, "not_applicable": 3, "pass": 4}
# A report with more rows than this opens listing only the failing checks (a click on pytest-html's
# Passed/Skipped filters lists the rest), and with every row collapsed if even those are this many.
LARGE = 200
CLIP = 50_000  # characters of one output shown in the page (results.json has it all)

e = html.escape


def _record(report: Any) -> dict[str, Any] | None:
    for key, value in getattr(report, "user_properties", ()):
        if key == "compliance":
            return json.loads(value)
    return None


def _state(config: pytest.Config) -> Any:
    from postfix_compliance.plugin import STATE
    return config.stash.get(STATE, None)


# ---------------------------------------------------------------------- setup
@pytest.hookimpl(tryfirst=True)  # before pytest-html reads --css
def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "css") and CSS not in config.option.css:
        config.option.css.append(CSS)


@pytest.hookimpl(hookwrapper=True)
def pytest_sessionstart(session: pytest.Session) -> Any:
    """pytest-html inserts environment values (pytest-metadata: CI variables such as a branch name,
    --metadata values) into the page with innerHTML, unescaped. It reads them during this hook: hand
    it escaped copies, then put the originals back for everyone else."""
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        yield
        return
    original = session.config.stash.get(metadata_key, None)
    if isinstance(original, dict):
        session.config.stash[metadata_key] = _escaped(original)
    try:
        yield
    finally:
        if isinstance(original, dict):
            session.config.stash[metadata_key] = original


def _escaped(value: Any) -> Any:
    if isinstance(value, dict):
        return {e(str(k)): _escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escaped(v) for v in value]
    return e(str(value)) if value is not None else value


def pytest_html_report_title(report: Any) -> None:
    config = report.config
    config.stash[REPORT_DATA] = report
    report.title = _title(config, profiles=None)
    if config.getini("initial_sort") == "result":  # the default: sort by our outcome key instead
        report.set_data("initialSort", "outcome")


def _title(config: pytest.Config, profiles: list[str] | None) -> str:
    state = _state(config)
    if state is not None and state.profile is not None:
        profile = f"profile {state.profile.name}"
    elif profiles:
        profile = ("profile " if len(profiles) == 1 else "profiles ") + ", ".join(profiles)
    else:
        profile = "profile detected per host"
    started = state.started if state is not None else time.time()
    return (f"Postfix/SELinux compliance — {profile} — "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} — suite {__version__}")


# ---------------------------------------------------------------------- rows
def record_key(record: dict[str, Any]) -> str:
    return hashlib.sha256(f"{record['nodeid']}\0{record['host']}".encode()).hexdigest()[:12]


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


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list[str]) -> None:
    # pytest-html's: Result (its own pass/fail view, and the row's expand handle), Test, Duration, Links.
    result, test, duration = cells[0], cells[1], cells[2]
    ours = [f'<th class="sortable" data-column-type="{name}">{label}</th>' for name, label in COLUMNS]
    cells[:] = [result, *ours, test, duration]


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: Any, cells: list[str]) -> None:
    """Cells are HTML that pytest-html's script parses: escaped, and small (unquoted class names,
    short sort keys), since it holds 3 copies of each in the page and rebuilds every row on each
    expand/collapse."""
    record = _record(report)
    test_id = report.nodeid + (f"::{report.when}" if getattr(report, "when", "call") != "call" else "")
    result = re.sub(r"<[^>]*>", "", cells[0])  # its outcome word: Passed, Failed, Skipped, Error...
    duration = re.sub(r"<[^>]*>", "", cells[2])
    # pytest-html puts the node id in unescaped; a host URL is part of it.
    head = f"<td class=col-result>{e(result)}</td>"
    tail = [f"<td class=col-testId>{e(test_id)}</td>", f"<td class=col-duration>{e(duration)}</td>"]
    if record is None:
        cells[:] = [head, *[f"<td class=col-{name}></td>" for name, _ in COLUMNS], *tail]
        return
    outcome, severity, section = record["outcome"], record["severity"], record["section"]
    name = record.get("host_name") or record["host"]
    cells[:] = [
        head,
        f"<td class=col-outcome><i hidden>{_sort_key(record)}</i>"
        f"<b class=o-{_cls(outcome)}>{e(OUTCOME_LABELS.get(outcome, outcome))}</b></td>",
        f"<td class=col-host>{e(name)}</td>",  # the URL is in the Test column
        f"<td class=col-check><b>{e(record['check_id'])}</b> {e(record['title'])}</td>",
        f"<td class=col-severity><i hidden>{_rank(SEVERITIES, severity)}</i>"
        f"<b class=s-{_cls(severity)}>{e(severity)}</b></td>",
        f"<td class=col-section><i hidden>{_rank(SECTIONS, section):02d}</i>{e(section)}</td>",
        *tail,
    ]


def _cls(word: str) -> str:
    """A value usable as an unquoted class name (our own enums; anything else is dropped)."""
    return re.sub(r"[^a-z_]", "", word.lower()) or "x"


def _rank(order: tuple[str, ...], value: str) -> int:
    return order.index(value) if value in order else len(order)


def _sort_key(record: dict[str, Any]) -> str:
    """Outcome column's sort key: failures first, then severity, runbook order (ties keep the run's
    order: check by check, host by host)."""
    return f"{OUTCOME_RANK.get(record['outcome'], 9)}{_rank(SEVERITIES, record['severity'])}" \
           f"{_rank(SECTIONS, record['section']):02d}"


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_html(report: Any, data: list[str]) -> None:
    """`data` is what pytest-html shows below the row (its "log": pytest's failure text and captured
    output, escaped). For a check it becomes a placeholder that report.js fills from the page's data
    block with the check's message, remediation and evidence when the row is shown expanded. The
    failure text repeated the message, so it goes; a check that crashed keeps it (the traceback is
    the evidence of a bug in the suite). One line, starting with "<": pytest-html's script wraps log
    lines that start with "E" in a span, which must not cut through our markup."""
    record = _record(report)
    if record is None:  # not a check (a collection error...): its log as pytest-html has it, preformatted
        data[:] = ["<pre class=pfc-trace>", *data, "</pre>"]
        return
    crashed = record["outcome"] == "error" and not (report.longreprtext or "").startswith(record["check_id"] + " ")
    trace = ["<pre class=pfc-trace>", *data, "</pre>"] if crashed else []
    data[:] = [f"<div class=pfc-d data-r={record_key(record)}></div>", *trace]


def page_data(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What report.js needs to show any row's detail: per check (once), per record, per output (once)."""
    checks: dict[str, Any] = {}
    rows: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for record in records:
        check_id = record["check_id"]
        if check_id not in checks:
            meta = CATALOG.get(check_id)
            checks[check_id] = {"why": meta.rationale if meta else "", "fix": record.get("remediation") or [],
                                "rollback": record.get("rollback") or [], "refs": record.get("references") or []}
        evidence = []
        for ev in record.get("evidence") or []:
            key = evidence_key(ev)
            evidence.append([key, ev.get("probe") or "?", _status(ev)])
            if key not in outputs:
                outputs[key] = {"cmd": inert(ev.get("command") or ""), "exit": ev.get("exit_status"),
                                "error": ev.get("error"), "s": round(float(ev.get("duration") or 0), 3),
                                # a browser shows a control character as nothing: shown as \x1b instead
                                "out": _clip(inert(ev.get("stdout") or "")), "err": _clip(inert(ev.get("stderr") or ""))}
        waiver = record.get("waiver")
        rows[record_key(record)] = {
            "check": check_id, "outcome": record["outcome"], "message": inert(record.get("message") or ""),
            "notes": [inert(n) for n in record.get("notes") or []], "evidence": evidence,
            "waiver": None if not waiver else {
                "justification": waiver.get("justification"), "owner": waiver.get("owner"),
                "expires": waiver.get("expires"), "expired": bool(waiver.get("expired")),
                "where": (f"{waiver.get('file')} entry {int(waiver.get('index') or 0) + 1}"
                          if waiver.get("file") else "")},
        }
    return {"checks": checks, "rows": rows, "outputs": outputs}


# ---------------------------------------------------------------------- summary
@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str], session: Any) -> None:
    config = session.config
    state = _state(config)
    if state is None:
        return
    records = state.results
    failing = sum(1 for r in records if r["outcome"] in ("fail", "error"))
    profiles = sorted({r["profile"] for r in records if r.get("profile")})
    report_data = config.stash.get(REPORT_DATA, None)
    if report_data is not None:
        report_data.title = _title(config, profiles)
        if config.getini("render_collapsed") == "passed":  # the default: ours instead
            shown = len(records) if len(records) <= LARGE else failing
            report_data.set_data("renderCollapsed", ["all"] if shown > LARGE else ["passed", "skipped"])
    prefix.append(run_line(state, records, profiles))
    prefix.append(host_summary_html(records))
    prefix.append(triage_html(records))
    from postfix_compliance.report import baseline, waivers
    changes = baseline.changes_of(config)
    if changes is not None:
        prefix.append(changes_html(changes))
    waiver_summary = waivers.summary_of(config)
    if waiver_summary is not None:
        prefix.append(waivers_html(waiver_summary))
    postfix.append(legend_html())
    view = {}
    if len(records) > LARGE:
        view = {"visible": "failed,error", "total": len(records), "failing": failing}
        everything = "passed,skipped,failed,error,xfailed,xpassed,rerun"
        postfix.append(f'<p id="pfc-large" class="pfc-large">This report holds {len(records)} checks: it opens listing '
                       f'the {failing} failing ones (Failed, Errors). <a href="?visible={everything}">List all '
                       f'{len(records)}</a>, or tick Passed and Skipped above; the host summary counts them all.</p>')
    block = _script_json({**page_data(records), "view": view})
    postfix.append(f'<script type="application/json" id="pfc-data">{block}</script>')
    with open(JS, encoding="utf-8") as handle:
        postfix.append("<script>" + handle.read() + "</script>")


def run_line(state: Any, records: list[dict[str, Any]], profiles: list[str]) -> str:
    hosts = len({r["host"] for r in records})
    profile = state.profile.name if state.profile else (", ".join(profiles) or "none detected")
    return (f'<p class="pfc-run">Profile <b>{e(profile)}</b> · {hosts} host{"s" if hosts != 1 else ""} · '
            f'{len(records)} checks run · started '
            f'{e(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.started)))} · suite {e(__version__)}</p>')


def _anchor(record: dict[str, Any], label: str) -> str:
    return f'<a href="#{e(urllib.parse.quote(record["nodeid"], safe=""))}">{e(label)}</a>'


def host_summary_html(records: list[dict[str, Any]]) -> str:
    hosts: dict[str, dict[str, Any]] = {}
    for record in records:
        entry = hosts.setdefault(record["host"], {"name": record.get("host_name") or record["host"],
                                                  "profile": record.get("profile"),
                                                  "counts": dict.fromkeys(OUTCOMES, 0), "failing": []})
        entry["counts"][record["outcome"]] = entry["counts"].get(record["outcome"], 0) + 1
        if record["outcome"] in ("fail", "error"):
            entry["failing"].append(record)

    def badness(item: tuple[str, dict[str, Any]]) -> tuple[int, int, str]:
        counts = item[1]["counts"]
        return -counts["fail"], -counts["error"], item[1]["name"]

    rows = []
    for host, entry in sorted(hosts.items(), key=badness):
        counts = entry["counts"]
        bad = counts["fail"] + counts["error"]
        failing = sorted(entry["failing"], key=lambda r: (OUTCOME_RANK[r["outcome"]], _rank(SECTIONS, r["section"]),
                                                          r["check_id"]))
        links = " ".join(_anchor(r, r["check_id"]) + (' <span class="pfc-o o-error">error</span>'
                                                      if r["outcome"] == "error" else "") for r in failing)
        name = e(entry["name"]) + (f"<br><small>{e(host)}</small>" if host != entry["name"] else "")
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


def triage_html(records: list[dict[str, Any]]) -> str:
    """Each host's triage finding (postfix_compliance.triage): the root cause the facts point to."""
    findings: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for record in records:
        if record.get("diagnosis") and record["host"] not in findings:
            findings[record["host"]] = (record, record["diagnosis"])
    if not findings:
        return ""
    out = ['<div id="triage"><h2>Triage</h2>']
    for host, (record, finding) in sorted(findings.items(), key=lambda item: item[1][0].get("host_name") or item[0]):
        finding = inert_data(finding)  # shown visibly (\x1b); its commands are quoted (text.shell)
        label, css = TRIAGE_KINDS.get(finding.get("kind"), (finding.get("kind") or "finding", "o-not_applicable"))
        out.append(f'<div class="pfc-finding" data-host="{e(host)}"><p><b>{e(record.get("host_name") or host)}</b> '
                   f'<span class="pfc-o {css}">{e(label)}</span> {e(finding.get("summary") or "")}</p>')
        for key, title in (("fix", "Fix"), ("verification", "Verify"), ("rollback", "Rollback")):
            if finding.get(key):
                out.append(f"<b>{title}</b><pre>{e(chr(10).join(finding[key]))}</pre>")
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


def changes_html(changes: dict[str, Any]) -> str:
    changes = inert_data(changes)  # a baseline's messages and denial fields: shown visibly (\x1b)
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


def waivers_html(summary: dict[str, Any]) -> str:
    summary = inert_data(summary)  # the waiver file's words: shown visibly (\x1b)
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


def legend_html() -> str:
    return ('<p class="pfc-legend"><b>Outcome</b> is the compliance verdict: <span class="pfc-o o-fail">FAIL</span> '
            'the host is out of compliance · <span class="pfc-o o-error">ERROR</span> the check could not be '
            'judged (unreachable host, unreadable output) · <span class="pfc-o o-waived">waived</span> an accepted '
            'exception · <span class="pfc-o o-not_applicable">not applicable</span> · <span class="pfc-o o-pass">'
            'pass</span>. <b>Result</b> is pytest\'s own view of the same test (a check error is a pytest '
            '"Failed", waived and not applicable are "Skipped"). Click a row to expand it; open a probe to see its '
            'command and output.</p>')


def _script_json(value: Any) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' can appear, so nothing can close the element."""
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _clip(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= CLIP else text[:CLIP] + f"\n… ({len(text) - CLIP} more characters in results.json)"
