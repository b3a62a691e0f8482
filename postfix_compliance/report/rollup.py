"""The roll-up of a run of many hosts: the first screen of a fleet's page.

A pure function of the decided run (`rollup_html(run)`), shown above the host table on compliance.html
and fleet.html whenever a run has more than one host:
- each check's pass rate across the hosts, as an inline SVG bar chart (no script, no network): passed,
  waived, not applicable, failed, not judged (error), by check id;
- the failing hosts grouped by shared root cause and shared fix: the triage finding's summary (or, without
  one, the checks that fail) and the plan's commands; a group is as many hosts as one fix mends, each
  named (linked to its own page on a fleet-sized run);
- the hosts by profile, and by Ansible inventory group where the run took its hosts from an inventory
  (a host in two groups counts in each).
Everything a host wrote (names, summaries, commands) is escaped and inert, as everywhere in the report.
"""

from __future__ import annotations

import html
from typing import Iterable

from postfix_compliance.filenames import host_page
from postfix_compliance.run import CheckResult, HostResult, RunResult
from postfix_compliance.text import inert

# Outcome -> (label, colour): the order the bar's segments stand in, left to right.
SEGMENTS = (("pass", "passed", "#2e7d32"), ("waived", "waived", "#81c784"),
            ("not_applicable", "not applicable", "#bdbdbd"), ("fail", "failed", "#c62828"),
            ("error", "not judged (error)", "#ef6c00"))
HOSTS_LISTED = 12  # names shown per group; the rest counted
BAR_WIDTH = 420
ROW_HEIGHT = 18
LABEL_WIDTH = 86


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _id_order(check: CheckResult) -> tuple[str, int, str]:
    """SEL-002 before SEL-010: by family, then number (a site's own ids after, by name)."""
    family, _, number = check.check_id.partition("-")
    return (family, int(number) if number.isdigit() else 0, check.check_id)


def _per_check(run: RunResult) -> list[tuple[CheckResult, dict[str, int]]]:
    """Each check once (its first record, for the title), with its outcomes counted over the hosts."""
    first: dict[str, CheckResult] = {}
    counts: dict[str, dict[str, int]] = {}
    for _, check in run.checks():
        first.setdefault(check.check_id, check)
        tally = counts.setdefault(check.check_id, {})
        tally[check.outcome] = tally.get(check.outcome, 0) + 1
    order = sorted(first.values(), key=_id_order)
    return [(check, counts[check.check_id]) for check in order]


def chart_svg(run: RunResult) -> str:
    """One bar per check: its hosts by outcome, to scale, with the pass count written beside it."""
    rows = _per_check(run)
    height = ROW_HEIGHT * len(rows) + 4
    width = LABEL_WIDTH + BAR_WIDTH + 150
    out = [f'<svg id="rollup-chart" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" font-family="system-ui,sans-serif" font-size="11">',
           "<title>Pass rate per check across the hosts</title>"]
    for row, (check, tally) in enumerate(rows):
        y = row * ROW_HEIGHT + 2
        total = sum(tally.values()) or 1
        out.append(f'<g class="rollup-row" data-check="{e(check.check_id)}"><title>{e(check.check_id)} '
                   f'{e(check.title)}: ' + ", ".join(f"{tally.get(k, 0)} {label}" for k, label, _ in SEGMENTS
                                                   if tally.get(k)) + "</title>")
        out.append(f'<text x="0" y="{y + 12}">{e(check.check_id)}</text>')
        x = float(LABEL_WIDTH)
        for key, _, colour in SEGMENTS:
            count = tally.get(key, 0)
            if count:
                w = BAR_WIDTH * count / total
                out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{ROW_HEIGHT - 4}" fill="{colour}"/>')
                x += w
        judged = sum(tally.get(k, 0) for k in ("pass", "waived", "fail", "error"))
        passed = tally.get("pass", 0) + tally.get("waived", 0)
        rate = f"{100 * passed / judged:.0f}%" if judged else "n/a"
        out.append(f'<text x="{LABEL_WIDTH + BAR_WIDTH + 6}" y="{y + 12}">{rate} ({passed}/{judged})</text></g>')
    out.append("</svg>")
    return "".join(out)


def _fix_of(host: HostResult) -> tuple[str, ...]:
    """The host's plan as the commands a person runs (automatic steps, then the manual ones' words)."""
    plan = host.plan
    if plan is None:
        return ()
    return tuple(command for action in plan.actions for command in (action.commands or (action.summary,)))


def _cause_of(host: HostResult, failing: Iterable[CheckResult]) -> str:
    if host.error:
        return host.error
    diagnosis = host.diagnosis or {}
    summary = diagnosis.get("summary") if isinstance(diagnosis, dict) else None
    return str(summary) if summary else "failing: " + ", ".join(c.check_id for c in failing)


def groups(run: RunResult) -> list[tuple[str, tuple[str, ...], list[HostResult]]]:
    """(cause, fix, hosts) for the hosts with a failed or unjudged check, largest group first."""
    found: dict[tuple[str, tuple[str, ...]], list[HostResult]] = {}
    for host in run.hosts:
        failing = [c for c in host.checks if c.outcome in ("fail", "error")]
        if not failing and not host.error:
            continue
        found.setdefault((_cause_of(host, failing), _fix_of(host)), []).append(host)
    return sorted(((cause, fix, hosts) for (cause, fix), hosts in found.items()),
                  key=lambda g: (-len(g[2]), g[0]))


def rollup_html(run: RunResult, host_links: bool = False) -> str:
    """The roll-up section, or "" for a run of one host. `host_links`: link each host to its own page
    (hosts/..., written for a fleet-sized run)."""
    hosts = [h for h in run.hosts if h.checks or h.error]
    if len(hosts) < 2:
        return ""

    failing_hosts = sum(1 for h in hosts if any(c.outcome == "fail" for c in h.checks))
    error_hosts = sum(1 for h in hosts if h.error or any(c.outcome == "error" for c in h.checks))
    clean = sum(1 for h in hosts if not h.error and all(c.outcome not in ("fail", "error") for c in h.checks))
    out = ['<div id="rollup"><h2>Fleet roll-up</h2>',
           f'<p class="rollup-counts">{len(hosts)} hosts: {clean} with every check passed, waived or not '
           f"applicable; {failing_hosts} with a failed check; {error_hosts} with a check not judged.</p>",
           "<h3>Pass rate per check</h3>", chart_svg(run),
           '<p class="rollup-legend">' + " ".join(
               f'<span style="display:inline-block;width:10px;height:10px;background:{c}"></span> {label}'
               for _, label, c in SEGMENTS) + "</p>"]

    def name(host: HostResult) -> str:
        """The host's name, its target in the tooltip (two targets may report one name)."""
        title = f' title="{e(host.id)}"' if host.name != host.id else ""
        if host_links:
            return f'<a href="{e(host_page(host))}"{title}>{e(host.name)}</a>'
        return f"<span{title}>{e(host.name)}</span>"

    grouped = groups(run)
    if grouped:
        out.append('<h3>Hosts by root cause and fix</h3><table id="rollup-causes" class="pfc-changes"><thead><tr>'
                   "<th>Hosts</th><th>Cause</th><th>The one fix (each host's plan)</th><th>Which</th></tr></thead><tbody>")
        for cause, fix, members in grouped:
            steps = "".join(f"<li><code>{e(step)}</code></li>" for step in fix) or "<li>no automatic fix: see each host</li>"
            listed = ", ".join(name(h) for h in members[:HOSTS_LISTED])
            more = f" and {len(members) - HOSTS_LISTED} more" if len(members) > HOSTS_LISTED else ""
            out.append(f'<tr><td class="rollup-n">{len(members)}</td><td>{e(cause)}</td><td><ol>{steps}</ol></td>'
                       f"<td>{listed}{more}</td></tr>")
        out.append("</tbody></table>")
    profiles: dict[str, list[HostResult]] = {}
    for host in hosts:
        profiles.setdefault(host.profile or "(none)", []).append(host)
    out.append(_count_table("By profile", "rollup-profiles", "Profile", profiles))
    inventory = run.inventory()
    if inventory:
        by_group: dict[str, list[HostResult]] = {}
        for host in hosts:
            _, names = inventory.get(host.id, (None, ("(not from the inventory)",)))
            for group in names or ("ungrouped",):
                by_group.setdefault(group, []).append(host)
        out.append(_count_table("By inventory group", "rollup-groups", "Group", by_group))
    out.append("</div>")
    return inert("".join(out))


def _count_table(heading: str, table_id: str, key: str, rows: dict[str, list[HostResult]]) -> str:
    """Hosts per key (a profile, a group), with how many of them have a failed check and a check not judged."""
    out = [f'<h3>{heading}</h3><table id="{table_id}" class="pfc-changes"><thead><tr><th>{key}</th>'
           "<th>Hosts</th><th>With a failed check</th><th>With a check not judged</th></tr></thead><tbody>"]
    for name, members in sorted(rows.items()):
        fails = sum(1 for h in members if any(c.outcome == "fail" for c in h.checks))
        errors = sum(1 for h in members if h.error or any(c.outcome == "error" for c in h.checks))
        out.append(f"<tr><td>{e(name)}</td><td>{len(members)}</td><td>{fails}</td><td>{errors}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)
