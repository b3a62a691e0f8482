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
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from postfix_compliance import __version__
from postfix_compliance.atomicfile import write_atomic
from postfix_compliance.report.results import OUTCOMES

OK_OUTCOMES = ("pass", "waived", "not_applicable")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("postfix-compliance")
    group.addoption("--metrics", metavar="FILE", default=None,
                    help="write Prometheus textfile-collector metrics (one gauge per host x check) to FILE, "
                         "atomically")


def escape_label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f'{name}="{escape_label(value)}"' for name, value in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def render(records: list[dict[str, Any]], started: float, duration: float, profile: str | None,
           changes: dict[str, Any] | None = None) -> str:
    lines: list[str] = []

    def family(name: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {escape_help(help_text)}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)

    records = sorted(records, key=lambda r: (r.get("host_name") or r["host"], r["host"], r["check_id"]))
    family("postfix_compliance_check_status",
           "1 when the check is compliant on the host (pass, waived, not applicable), 0 when it failed or could "
           "not be judged (error); the outcome label says which.",
           [(_labels(host=r.get("host_name") or r["host"], target=r["host"], check=r["check_id"],
                     severity=r.get("severity", ""), section=r.get("section", ""), outcome=r["outcome"]),
             1 if r["outcome"] in OK_OUTCOMES else 0) for r in records])
    hosts: dict[tuple[str, str], dict[str, int]] = {}
    for r in records:
        counts = hosts.setdefault((r.get("host_name") or r["host"], r["host"]), dict.fromkeys(OUTCOMES, 0))
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    family("postfix_compliance_checks", "Number of checks per host and outcome in the last run.",
           [(_labels(host=name, target=target, outcome=outcome), count)
            for (name, target), counts in sorted(hosts.items()) for outcome, count in counts.items()])
    if changes is not None:
        per_host = {key: 0 for key in hosts}
        for c in changes["regressions"]:
            key = (c.get("host_name") or c["host"], c["host"])
            per_host[key] = per_host.get(key, 0) + 1
        family("postfix_compliance_regressions", "Checks that passed in the baseline run and fail now.",
               [(_labels(host=name, target=target), count) for (name, target), count in sorted(per_host.items())])
    family("postfix_compliance_last_run_timestamp_seconds", "When the last compliance run started (Unix time).",
           [("", round(started, 3))])
    family("postfix_compliance_run_duration_seconds", "How long the last compliance run took.",
           [("", round(duration, 3))])
    family("postfix_compliance_info", "The suite version and profile of the last run.",
           [(_labels(suite_version=__version__, profile=profile or "detected per host"), 1)])
    return "\n".join(lines) + "\n"


def pytest_compliance_finish(config: pytest.Config, records: list[dict[str, Any]], report_dir: str) -> int | None:
    path = config.getoption("metrics", None)
    if not path:
        return None
    from postfix_compliance.plugin import STATE
    from postfix_compliance.report import baseline
    state = config.stash[STATE]
    # 0644 whatever the umask: node_exporter's textfile collector reads it as another user.
    write_atomic(path, render(records, state.started, time.time() - state.started,
                              state.profile.name if state.profile else None, baseline.changes_of(config)),
                 mode=0o644)
    return None
