"""--metrics FILE: Prometheus text exposition format, for node_exporter's textfile collector.

    pytest --hosts=... --metrics /var/lib/node_exporter/textfile_collector/postfix_compliance.prom

Series (label values escaped as the format requires: backslash, double quote, newline):
  postfix_compliance_check_status{host, target, check, severity, section, outcome}  1 compliant
      (pass, waived, not applicable) / 0 not (fail, error): one per host x check
  postfix_compliance_checks{host, target, outcome}       checks per host and outcome (all five, zeros too)
  postfix_compliance_regressions{host, target}           with --baseline: regressions per host
  postfix_compliance_last_run_timestamp_seconds          when the run started (Unix time)
  postfix_compliance_run_duration_seconds                how long it took
  postfix_compliance_info{suite_version, profile}        1
The file is written to a hidden temporary name in the same directory (the collector reads only
*.prom), made world-readable, fsynced, then renamed over FILE: the collector never reads half a file.

`render(run)` is a pure function of the decided run (its start, end, profile, checks and the baseline
comparison); `write(run, path)` writes it. The --metrics option and the hook that calls them are
the plugin's (postfix_compliance/plugin/).
"""

from __future__ import annotations

from typing import Any

from postfix_compliance import __version__
from postfix_compliance.atomicfile import READABLE_MODE, write_atomic
from postfix_compliance.run import OUTCOMES, RunResult

OK_OUTCOMES = ("pass", "waived", "not_applicable")


def escape_label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f'{name}="{escape_label(value)}"' for name, value in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def render(run: RunResult) -> str:
    """The metrics of a run: one status per host x check, counts per host and outcome, regressions
    (when the run was compared with a baseline), when it started, how long it took (`run.ended`)."""
    lines: list[str] = []

    def family(name: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {escape_help(help_text)}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)

    checks = sorted(run.checks(), key=lambda hc: (hc[0].name, hc[0].id, hc[1].check_id))
    family("postfix_compliance_check_status",
           "1 when the check is compliant on the host (pass, waived, not applicable), 0 when it failed or could "
           "not be judged (error); the outcome label says which.",
           [(_labels(host=h.name, target=h.id, check=c.check_id, severity=c.severity, section=c.section,
                     outcome=c.outcome),
             1 if c.outcome in OK_OUTCOMES else 0) for h, c in checks])
    hosts: dict[tuple[str, str], dict[str, int]] = {}
    for h, c in checks:
        counts = hosts.setdefault((h.name, h.id), dict.fromkeys(OUTCOMES, 0))
        counts[c.outcome] = counts.get(c.outcome, 0) + 1
    family("postfix_compliance_checks", "Number of checks per host and outcome in the last run.",
           [(_labels(host=name, target=target, outcome=outcome), count)
            for (name, target), counts in sorted(hosts.items()) for outcome, count in counts.items()])
    if run.changes is not None:
        per_host = {key: 0 for key in hosts}
        for c in run.changes["regressions"]:
            key = (c.get("host_name") or c["host"], c["host"])
            per_host[key] = per_host.get(key, 0) + 1
        family("postfix_compliance_regressions", "Checks that passed in the baseline run and fail now.",
               [(_labels(host=name, target=target), count) for (name, target), count in sorted(per_host.items())])
    started, duration = run.started, run.ended - run.started
    family("postfix_compliance_last_run_timestamp_seconds", "When the last compliance run started (Unix time).",
           [("", round(started, 3))])
    family("postfix_compliance_run_duration_seconds", "How long the last compliance run took.",
           [("", round(duration, 3))])
    family("postfix_compliance_info", "The suite version and profile of the last run.",
           [(_labels(suite_version=__version__, profile=run.profile or "detected per host"), 1)])
    return "\n".join(lines) + "\n"


def write(run: RunResult, path: str) -> None:
    # 0644 whatever the umask: node_exporter's textfile collector reads it as another user.
    write_atomic(path, render(run), mode=READABLE_MODE)
