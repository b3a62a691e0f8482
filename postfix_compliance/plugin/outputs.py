"""The run's output files and terminal summaries: each a renderer (report/) called with the decided run.

results.json is always written (unless --no-reports); the others when their option names a file.
pytest-html's page and junitxml's file are written by those plugins (plugin/html_report.py and
plugin/junit_names.py adapt them); this module writes everything else, once, on the controller.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
from typing import Any

import pytest

from postfix_compliance.atomicfile import write_atomic
from postfix_compliance.plugin.staging import html_report_path
from postfix_compliance.run import RunResult
from postfix_compliance.text import InertTerminal


def write_outputs(config: pytest.Config, run: RunResult, report_dir: str, profile: Any) -> None:
    from postfix_compliance import results_file

    if not config.getoption("no_reports"):
        results_file.write(run, os.path.join(report_dir, "results.json"))
        page_path = html_report_path(config)
        if page_path:  # a fleet: each host's own page, under hosts/ beside the report that links to it
            from postfix_compliance.checks import CATALOG
            from postfix_compliance.report import html
            for name, text in html.host_pages(run, catalog=CATALOG, up=os.path.basename(page_path)):
                path = os.path.join(os.path.dirname(page_path), name)
                write_atomic(path, text)  # makes hosts/ (0700) as it needs
    from postfix_compliance.report.outputs import OUTPUTS, write_outputs as write_files
    paths = {o.dest: config.getoption(o.dest, None) for o in OUTPUTS if not o.pytest_writes}
    if any(paths.values()):
        write_files(run, paths, render_context(config), in_pytest=True)


def render_context(config: pytest.Config) -> Any:
    """What the renderers know besides the run: the catalogue and who ran it."""
    from postfix_compliance.checks import CATALOG
    from postfix_compliance.report.outputs import RenderContext
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):
        user = None
    return RenderContext(catalog={cid: dataclasses.asdict(meta) for cid, meta in CATALOG.items()}, local_user=user,
                         sudo=bool(config.getoption("sudo", False)))


# ---------------------------------------------------------------------- terminal
def waivers_summary(tr: Any, summary: dict[str, Any]) -> None:
    tr = InertTerminal(tr)  # host names, paths, denials, file values: shown, never obeyed
    tr.write_sep("-", f"waivers from {summary['file']}")
    for w in summary["expired"]:
        tr.write_line(f"EXPIRED WAIVER: {w['check']} on {', '.join(w['hosts_matched'])} expired {w['expires']} "
                      f"({w['justification']}{'; owner ' + w['owner'] if w.get('owner') else ''}): "
                      f"the check fails again", red=True)
    for w in summary["unused"]:
        tr.write_line(f"unused waiver: {w['check']} hosts {', '.join(w['hosts'])}: {w['why']}", yellow=True)
    tr.write_line(f"{len(summary['applied'])} checks waived, {len(summary['expired'])} expired waivers, "
                  f"{len(summary['unused'])} unused waivers")


def changes_summary(tr: Any, changes: dict[str, Any]) -> None:
    tr = InertTerminal(tr)
    tr.write_sep("-", f"changes since baseline {changes['baseline']['path']}")
    for key, label, red in (("regressions", "REGRESSION", True), ("fixes", "fixed", False),
                            ("other", "changed", False)):
        for c in changes[key]:
            tr.write_line(f"{label}: {c['check_id']} on {c.get('label') or c['host']}: "
                          f"{c['before']} -> {c['after']}", red=red, green=not red and key == "fixes")
    for d in changes["new_avc_denials"]:
        tr.write_line(f"NEW AVC DENIAL on {d.get('label') or d['host']}: {d.get('comm') or '?'} denied "
                      f"{{{' '.join(d['permissions'])}}} on {d.get('path') or '?'} ({d['tcontext']}, {d['tclass']})",
                      red=True)
    for h in changes["new_hosts"]:
        tr.write_line(f"new host: {h}")
    for h in changes["missing_hosts"]:
        tr.write_line(f"missing host: {h} (in the baseline, not checked now)", yellow=True)
    tr.write_line(f"{len(changes['regressions'])} regressions, {len(changes['fixes'])} fixes, "
                  f"{len(changes['new_avc_denials'])} new AVC denials, {len(changes['new_hosts'])} new hosts, "
                  f"{len(changes['missing_hosts'])} missing hosts")


PLAN_HOSTS_SHOWN = 10  # a fleet's plans are in its script and playbook, not on the terminal


def plan_summary(tr: Any, run: RunResult) -> None:
    """Each host's remediation plan, step by step (the script and the playbook run the same steps)."""
    planned = [h for h in run.hosts if h.plan is not None and h.plan.actions]
    if not planned:
        return
    tr = InertTerminal(tr)
    tr.write_sep("-", f"remediation plan ({len(planned)} host{'s' if len(planned) != 1 else ''})")
    for host in planned[:PLAN_HOSTS_SHOWN]:
        plan = host.plan
        tr.write_line(f"{host.name}" + (f" ({host.id})" if host.id != host.name else "") + ":")
        for number, action in enumerate(plan.automatic, 1):
            tr.write_line(f"  {number}. {action.summary} [{', '.join(action.checks)}]")
            for command in action.commands if action.kind != "verify_postfix_running" else ():
                tr.write_line(f"       {command}")
        for action in plan.manual:
            tr.write_line(f"  for a person: {action.summary} [{', '.join(action.checks)}]", yellow=True)
    if len(planned) > PLAN_HOSTS_SHOWN:
        tr.write_line(f"... and {len(planned) - PLAN_HOSTS_SHOWN} more hosts: see results.json, or write them all "
                      "with --remediation-script / --remediation-playbook")
    else:
        tr.write_line("--remediation-script FILE / --remediation-playbook FILE write these steps to run")
