"""history.html: compliance over time (postfix_compliance/history.py), a pure function of the History.

Self-contained (inline CSS and SVG, no script, no network). Everything a results file carried (host names,
check titles, paths) is escaped and inert.
"""

from __future__ import annotations

import html
import os
from typing import Any

from postfix_compliance.text import inert

CHART_W, CHART_H, PAD = 720, 180, 36
MARK = {"pass": ("✓", "#2e7d32"), "waived": ("w", "#81c784"), "not_applicable": ("·", "#9e9e9e"),
        "fail": ("✗", "#c62828"), "error": ("!", "#ef6c00"), None: (" ", "#ffffff")}
_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:12px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}
td.runs{font-family:monospace;white-space:pre;letter-spacing:1px}
"""


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def chart(history: Any) -> str:
    """The fleet's pass rate (passed or waived over judged checks) per run, as a line over time."""
    points = [(i, r.pass_ratio) for i, r in enumerate(history.runs) if r.pass_ratio is not None]
    width, height = CHART_W + 2 * PAD, CHART_H + 2 * PAD
    out = [f'<svg id="history-chart" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="system-ui,sans-serif" font-size="11">',
           "<title>Fleet pass rate per run</title>",
           f'<rect x="{PAD}" y="{PAD}" width="{CHART_W}" height="{CHART_H}" fill="#fafafa" stroke="#ccc"/>']
    # The axis starts at the lowest tenth the fleet reached: a fleet at 97-99 % shows its dips.
    low = min((int(r * 10) / 10 for _, r in points), default=0.0)
    low = min(low, 0.9)
    for level in (low, (low + 1) / 2, 1.0):
        y = PAD + CHART_H * (1 - (level - low) / (1 - low))
        out.append(f'<line x1="{PAD}" x2="{PAD + CHART_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0e0e0"/>'
                   f'<text x="2" y="{y + 4:.1f}">{level:.0%}</text>')
    count = max(len(history.runs) - 1, 1)

    def xy(index: int, ratio: float) -> tuple[float, float]:
        return PAD + CHART_W * index / count, PAD + CHART_H * (1 - (ratio - low) / (1 - low))

    if points:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, r) for i, r in points))
        out.append(f'<polyline fill="none" stroke="#1565c0" stroke-width="2" points="{line}"/>')
        for i, ratio in points:
            x, y = xy(i, ratio)
            run = history.runs[i]
            out.append(f'<circle class="history-point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1565c0">'
                       f"<title>{e(run.generated_at)}: {ratio:.1%} ({run.passed}/{run.judged} checks, "
                       f"{run.hosts} hosts)</title></circle>")
    first, last = history.runs[0].generated_at, history.runs[-1].generated_at
    out.append(f'<text x="{PAD}" y="{height - 8}">{e(first)}</text>'
               f'<text x="{PAD + CHART_W}" y="{height - 8}" text-anchor="end">{e(last)}</text></svg>')
    return "".join(out)


def _runs_cell(outcomes: tuple[str | None, ...]) -> str:
    return "".join(f'<span style="color:{MARK.get(o, MARK[None])[1]}">{MARK.get(o, MARK[None])[0]}</span>'
                   for o in outcomes)


def _check_rows(checks: list[Any]) -> str:
    return "".join(
        f"<tr><td>{e(c.host_name)}<br><small>{e(c.host)}</small></td><td>{e(c.check_id)} {e(c.title)}</td>"
        f"<td>{e(c.current)}</td><td>{e(c.failing_since or '')}</td><td>{e(c.last_passed or 'never in this history')}</td>"
        f'<td>{c.flips}</td><td class="runs">{_runs_cell(c.outcomes)}</td></tr>' for c in checks)


_HEAD = ("<tr><th>Host</th><th>Check</th><th>Now</th><th>Failing since</th><th>Last passed</th><th>Changes</th>"
         "<th>Runs, oldest first</th></tr>")


def page(history: Any, base: str | None = None) -> str:
    """The page; `base`: where it is written, so that runs under it link to their own compliance.html."""
    latest = history.runs[-1]
    failing = [c for c in history.checks if c.current in ("fail", "error")]
    flapping = [c for c in history.checks if c.flapping]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>Postfix/SELinux compliance over time</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>Postfix/SELinux compliance over time</h1>",
           f'<p id="history-summary">{len(history.runs)} runs from {e(history.runs[0].generated_at)} to '
           f"{e(latest.generated_at)}; latest: {latest.hosts} hosts, "
           f"{'n/a' if latest.pass_ratio is None else f'{latest.pass_ratio:.1%}'} of judged checks passed; "
           f"{len(failing)} host × check failing now, {len(flapping)} flapping, {len(history.dropped)} "
           f"host{'' if len(history.dropped) == 1 else 's'} dropped out of the latest run.</p>",
           "<h2>Fleet pass rate per run</h2>", chart(history)]
    if history.dropped:
        out.append('<h2>Dropped out of the latest run</h2><ul id="history-dropped">' + "".join(
            f"<li>{e(name)} <small>({e(host)})</small>: checked by the run before, not by the latest</li>"
            for host, name in history.dropped) + "</ul>")
    out.append(f'<h2>Failing now</h2><table id="history-failing"><thead>{_HEAD}</thead><tbody>'
               f"{_check_rows(failing)}</tbody></table>")
    if flapping:
        out.append(f'<h2>Flapping (changed outcome {history.flapping_flips} times or more)</h2><table id="history-flapping"><thead>'
                   f"{_HEAD}</thead><tbody>{_check_rows(flapping)}</tbody></table>")
    out.append('<h2>Runs</h2><table id="history-runs"><thead><tr><th>Run</th><th>Hosts</th><th>Passed / judged</th>'
               "<th>Results</th></tr></thead><tbody>")
    for run in reversed(history.runs):
        link = e(run.path)
        page_path = os.path.join(os.path.dirname(run.path), "compliance.html")
        if base and os.path.isfile(page_path):
            rel = os.path.relpath(page_path, base)
            if not rel.startswith(".."):
                link = f'<a href="{e(rel)}">{e(rel)}</a>'
        ratio = "n/a" if run.pass_ratio is None else f"{run.pass_ratio:.1%}"
        out.append(f"<tr><td>{e(run.generated_at)}</td><td>{run.hosts}</td><td>{run.passed} / {run.judged} "
                   f"({ratio})</td><td>{link}</td></tr>")
    out.append("</tbody></table></body></html>")
    return inert("\n".join(out)) + "\n"
