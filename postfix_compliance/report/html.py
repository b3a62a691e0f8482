"""The HTML report, through pytest-html's hooks: per-host summary, check columns, evidence.

Everything a host printed is escaped here, at the one place it enters HTML.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any

import pytest

from postfix_compliance import __version__

_STATE_KEY = "postfix_compliance_state"


def _record(report: Any) -> dict[str, Any] | None:
    for key, value in getattr(report, "user_properties", ()):
        if key == "compliance":
            return json.loads(value)
    return None


def _state(config: pytest.Config) -> Any:
    from postfix_compliance.plugin import STATE
    return config.stash.get(STATE, None)


def pytest_html_report_title(report: Any) -> None:
    report.title = f"Postfix/SELinux compliance — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}" \
                   f" — suite {__version__}"


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str], session: Any) -> None:
    state = _state(session.config)
    if state is None:
        return
    profile = state.profile.name if state.profile else "detected per host"
    prefix.append(f"<p>Profile: <b>{html.escape(profile)}</b></p>")
    hosts: dict[str, dict[str, Any]] = {}
    for record in state.results:
        entry = hosts.setdefault(record["host"], {"counts": {}, "failing": []})
        entry["counts"][record["outcome"]] = entry["counts"].get(record["outcome"], 0) + 1
        if record["outcome"] in ("fail", "error"):
            entry["failing"].append(record["check_id"])
    rows = []
    for host, entry in sorted(hosts.items()):
        counts = entry["counts"]
        bad = counts.get("fail", 0) + counts.get("error", 0)
        cls = "host-bad" if bad else "host-ok"
        rows.append(
            f'<tr class="{cls}" data-host="{html.escape(host, quote=True)}"><td>{html.escape(host)}</td>'
            + "".join(f"<td>{counts.get(o, 0)}</td>" for o in ("pass", "fail", "error", "waived", "not_applicable"))
            + f"<td>{html.escape(', '.join(sorted(set(entry['failing']))))}</td></tr>")
    prefix.append(
        '<table id="host-summary"><thead><tr><th>Host</th><th>Passed</th><th>Failed</th><th>Errors</th>'
        "<th>Waived</th><th>Not applicable</th><th>Failing checks</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>")


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list[str]) -> None:
    cells.insert(1, '<th class="sortable" data-column-type="host">Host</th>')
    cells.insert(2, '<th class="sortable" data-column-type="check">Check</th>')
    cells.insert(3, '<th class="sortable" data-column-type="severity">Severity</th>')
    cells.insert(4, '<th class="sortable" data-column-type="section">Runbook section</th>')
    cells.insert(5, '<th class="sortable" data-column-type="compliance">Outcome</th>')


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: Any, cells: list[str]) -> None:
    record = _record(report)
    values = ("", "", "", "", "")
    if record:
        values = (record["host"], f"{record['check_id']} {record['title']}", record["severity"],
                  record["section"], record["outcome"])
    for offset, value in enumerate(values, start=1):
        cells.insert(offset, f'<td class="col-c{offset}">{html.escape(value)}</td>')


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_html(report: Any, data: list[str]) -> None:
    record = _record(report)
    if not record:
        return
    parts = []
    if record["message"]:
        parts.append(f'<p class="message"><b>{html.escape(record["outcome"])}:</b> '
                     f'{html.escape(record["message"])}</p>')
    if record["outcome"] in ("fail", "error") and record["remediation"]:
        parts.append("<p><b>Remediation</b></p><pre class=\"remediation\">"
                     + html.escape("\n".join(record["remediation"])) + "</pre>")
        if record["rollback"]:
            parts.append("<p><b>Rollback</b></p><pre class=\"rollback\">"
                         + html.escape("\n".join(record["rollback"])) + "</pre>")
    for ev in record["evidence"]:
        status = ev["error"] or f"exit {ev['exit_status']}"
        parts.append(
            f'<div class="evidence"><p><code>$ {html.escape(ev["command"])}</code> '
            f'({html.escape(str(status))}, {ev["duration"]:.2f}s)</p>'
            f'<pre class="stdout">{html.escape(_clip(ev["stdout"]))}</pre>'
            + (f'<pre class="stderr">{html.escape(_clip(ev["stderr"]))}</pre>' if ev["stderr"] else "")
            + "</div>")
    # pytest-html puts the captured log here too; the evidence is what matters for a check.
    data[:] = ['<div class="compliance-detail">' + "".join(parts) + "</div>"]


def _clip(text: str, limit: int = 20000) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"
