"""--remediation-script FILE: each host's remediation plan as a bash script. Never run by the suite.

The script is a view of the plan (remediation_plan.py), as the playbook is: the same actions in the same
order, each one step. One block (a shell function) per host; the script runs one host's block, named on its
command line, on that host:  `sudo bash FILE mail1.example.com`  (over ssh:
`ssh root@mail1 'bash -s -- mail1' < FILE`); `--check` after the host previews it and changes nothing. With
no argument it lists the hosts and exits.

Each step first runs the action's test (`needed_if`): a step with nothing to do says so and is skipped, so a
second run of the block changes nothing and says "nothing to do". A step's commands run in order, the first
that fails ending the step with its status; a step that fails stops the block, which then says which steps were done and which were not (the script
runs under `set -u -o pipefail`, not `-e`: a failure is reported, never a silent stop halfway). Postfix is
restarted once, through systemd, after the steps it depends on, and only when one of them changed something
or no master runs; the last step checks that it runs. Steps a person must take are listed at the end,
never run. Exit status: 0 done (or nothing to do), 1 a step failed, 2 usage, 3 done but steps remain for a
person.

Safety, because it is generated from outputs a host controls: every host word in a command is shell-quoted
by the plan (text.shell); what is printed or commented (summaries, messages, names) is inert text
(text.inert), every line of a comment prefixed with "# ", so `cat`ing the script is safe too; every step's
commands read no standard input (`</dev/null`: the script may itself arrive on stdin).

`render(run, generated=...)` is a pure function of the decided run; `write(run, path)` writes the script
(mode 0755). The --remediation-script option and its hook are the plugin's.
"""

from __future__ import annotations

import time

from postfix_compliance import __version__
from postfix_compliance.atomicfile import PRIVATE_EXECUTABLE_MODE, write_atomic
from postfix_compliance.remediation_plan import HostPlan
from postfix_compliance.run import HostResult, RunResult
from postfix_compliance.text import inert, quote

# The helpers every host block uses; the plan's actions are steps through pfc_step.
PRELUDE = r"""set -u -o pipefail
PFC_CHECK=0 PFC_RESTART=0 PFC_CHANGED=0 PFC_WOULD=0 PFC_LAST=0
# pfc_restart_wanted: a step done above takes effect with the plan's restart of Postfix
pfc_restart_wanted() { [ "$PFC_RESTART" = 1 ]; }
# pfc_step N TOTAL KIND RESTART SUMMARY NEED APPLY: KIND is "change" or "check" (changes nothing)
pfc_step() {
  local n=$1 total=$2 kind=$3 restart=$4 what=$5 need=$6 apply=$7 rc
  PFC_LAST=$n
  if [ "$kind" = check ]; then
    if [ "$PFC_CHECK" = 1 ]; then printf 'step %s/%s (would check): %s\n' "$n" "$total" "$what"; return 0; fi
    if "$apply" </dev/null; then printf 'step %s/%s ok: %s\n' "$n" "$total" "$what"; return 0; fi
    printf 'FAILED step %s/%s: %s\n' "$n" "$total" "$what" >&2
    return 1
  fi
  if ! "$need" </dev/null; then printf 'step %s/%s in place: %s\n' "$n" "$total" "$what"; return 0; fi
  if [ "$PFC_CHECK" = 1 ]; then
    printf 'step %s/%s would run: %s\n' "$n" "$total" "$what"
    PFC_WOULD=$((PFC_WOULD + 1)); [ "$restart" = 1 ] && PFC_RESTART=1
    return 0
  fi
  printf 'step %s/%s: %s\n' "$n" "$total" "$what"
  "$apply" </dev/null; rc=$?
  if [ "$rc" -ne 0 ]; then printf 'FAILED step %s/%s (exit %s): %s\n' "$n" "$total" "$rc" "$what" >&2; return 1; fi
  PFC_CHANGED=$((PFC_CHANGED + 1)); [ "$restart" = 1 ] && PFC_RESTART=1
  return 0
}
# pfc_failed TOTAL: what was done and what was not, after a failed step
pfc_failed() {
  local total=$1
  printf 'stopped at step %s of %s: steps before it are done or were in place (%s changed now); steps %s-%s were not run.\n' \
    "$PFC_LAST" "$total" "$PFC_CHANGED" "$PFC_LAST" "$total" >&2
  printf 'Fix what the step reported and run the block again: the steps already in place are skipped.\n' >&2
  return 1
}
# pfc_done MANUAL: the block's closing lines
pfc_done() {
  if [ "$PFC_CHECK" = 1 ]; then
    if [ "$PFC_WOULD" = 0 ]; then echo 'nothing to do: every step is in place'; else echo "$PFC_WOULD step(s) would change this host"; fi
  elif [ "$PFC_CHANGED" = 0 ]; then echo 'nothing to do: every step is in place'
  else
    echo "$PFC_CHANGED step(s) changed this host. Verify from the scanner, with the audit window from now:"
    printf '  %s --avc-since=%q\n' "$PFC_VERIFY" "$(date '+%m/%d/%Y %H:%M:%S')"
  fi
  [ "$1" = 0 ] || return 3
}
"""


def comment(text: str, prefix: str = "# ") -> list[str]:
    """Text as comment lines: every line commented, nothing a host printed can become a command."""
    text = inert(text.replace("\r\n", "\n").replace("\r", "\n"))
    return [(prefix + line).rstrip() for line in text.split("\n")]


def _function_name(index: int) -> str:
    return f"fix_host_{index + 1}"


def render(run: RunResult, *, generated: float | None = None) -> str:
    """The script of the plans of `run` (its profile named in the header); `generated` (seconds since the
    epoch) is when it says it was written: the run's end unless given."""
    generated = run.ended if generated is None else generated
    profile = run.profile
    hosts: dict[str, HostResult] = {h.id: h for h in run.hosts if h.checks}
    names: dict[str, str] = {h.id: h.name for h in hosts.values()}
    order = sorted(hosts, key=lambda h: (names[h], h))
    failing_total = sum(1 for _, c in run.checks() if c.outcome == "fail")
    out = [
        "#!/usr/bin/env bash",
        "# REVIEW BEFORE RUNNING. This script changes hosts; the compliance suite never runs it.",
        f"# Generated by postfix-compliance {__version__} on "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(generated))}"
        + (f" (profile {profile})" if profile else "") + ":",
        f"# the remediation plan for {failing_total} failed check(s), one block per host, its steps in",
        "# dependency order (policy store, booleans, labels, files, enforcement, units, one restart, a check).",
        "# Run ONE host's block, on that host, as root:   bash THIS_SCRIPT HOST",
        "#   preview, changing nothing:                  bash THIS_SCRIPT HOST --check",
        "#   over ssh:   ssh root@HOST 'bash -s -- HOST' < THIS_SCRIPT",
        "# A step tests first whether it has anything to do: a second run changes nothing. A failed step stops",
        "# the block, which says what was done and what was not. Each step's rollback is in the comments above it.",
        "# Exit status: 0 done, 1 a step failed, 2 usage, 3 done but steps remain for a person.",
        PRELUDE,
    ]
    cases = []
    for index, host in enumerate(order):
        function = _function_name(index)
        out.extend(_host_block(hosts[host], names[host], function, index + 1))
        out.append("")
        # A name two targets share (before/after snapshots of one machine) selects neither: use the URL.
        shared = sum(1 for other in order if names[other] == names[host]) > 1
        selectors = sorted({host} if shared else {names[host], host})
        cases.append("  " + "|".join(quote(s) for s in selectors) + f") {function} ;;")
    listing = [f"  echo {quote(inert(names[h] + ('' if names[h] == h else '  (' + h + ')')))}" for h in order]
    out.extend([
        "usage() {",
        "  echo \"usage: $0 HOST [--check]   (run on that host, as root, after reading the script)\" >&2",
        "  echo \"hosts in this script:\" >&2",
        *[line + " >&2" for line in listing],
        "}",
        "",
        "case \"${2:-}\" in",
        "  '') ;;",
        "  --check) PFC_CHECK=1 ;;",
        "  *) usage; exit 2 ;;",
        "esac",
        "case \"${1:-}\" in",
        *cases,
        "  *) usage; exit 2 ;;",
        "esac",
        "",
    ])
    return "\n".join(out)


def _host_block(host: HostResult, name: str, function: str, number: int) -> list[str]:
    checks = host.checks
    failing = [c for c in checks if c.outcome == "fail"]
    errors = [c for c in checks if c.outcome == "error"]
    waived = [c for c in checks if c.outcome == "waived"]
    plan: HostPlan = host.plan if host.plan is not None else HostPlan(target=host.id)
    steps = plan.automatic
    total = len(steps)
    lines = ["# " + "=" * 98, *comment(f"host {name}" + (f"  ({host.id})" if host.id != name else "")),
             f"#   {len(failing)} failed, {len(errors)} could not be judged, {len(waived)} waived; "
             f"{total} step(s), {len(plan.manual)} for a person",
             "# " + "=" * 98]
    functions: list[str] = []
    body = [f"{function}() {{", f"  PFC_VERIFY={quote(inert(plan.verify_base()))}",
            *comment(f"the checks that failed: {', '.join(c.check_id for c in failing) or 'none'}", "  # ")]
    for n, action in enumerate(steps, 1):
        prefix = f"h{number}_s{n}"
        # each command stops the step when it fails (`|| return`: its status is the step's)
        functions += [f"{prefix}_need() {{ {action.needed_if or 'true'}; }}", f"{prefix}_apply() {{",
                      *[f"  {{ {command}; }} || return" for command in action.commands or ("true",)], "}"]
        body.append("")
        body.extend(comment(f"step {n}/{total} [{action.kind}] for {', '.join(action.checks)}: {action.summary}",
                            "  # "))
        body.extend(comment(f"when: {action.condition}", "  #   "))
        for rollback in action.rollback:
            body.extend(comment(f"rollback: {rollback}", "  #   "))
        if action.reboot:
            body.extend(comment("a reboot completes it: reboot by hand when the block is done", "  #   "))
        kind = "check" if action.kind == "verify_postfix_running" else "change"
        body.append(f"  pfc_step {n} {total} {kind} {int(action.restart)} {quote(inert(action.summary))} "
                    f"{prefix}_need {prefix}_apply || {{ pfc_failed {total}; return 1; }}")
    for check in errors:
        body.append("")
        body.extend(comment(f"{check.check_id} {check.title}: could not be judged, so the plan has nothing for "
                            "it; find out why first", "  # "))
        body.extend(comment(f"ERROR: {check.message}", "  #   "))
    for check in waived:
        waiver = check.waiver or {}
        body.append("")
        body.extend(comment(f"{check.check_id} {check.title}: WAIVED, not fixed here: "
                            f"{waiver.get('justification', '')}"
                            + (f" (owner {waiver['owner']})" if waiver.get("owner") else "")
                            + (f", until {waiver['expires']}" if waiver.get("expires") else ""), "  # "))
    manual = plan.manual
    if manual:
        body.append("")
        body.append(f"  echo {quote(f'{len(manual)} step(s) need a person (nothing was run for them):')}")
        for action in manual:
            body.append(f"  echo {quote(inert(f'  - {action.summary} ({chr(44).join(action.checks)})'))}")
            for look in action.commands:
                body.append(f"  echo {quote(inert(f'      look: {look}'))}")
    if any(a.reboot for a in steps):
        body.append("  echo 'a reboot completes the changes above: reboot this host by hand when ready'")
    body.append(f"  pfc_done {len(manual)}")
    body.append("}")
    return lines + functions + body


def write(run: RunResult, path: str, *, generated: float | None = None) -> None:
    write_atomic(path, render(run, generated=generated), mode=PRIVATE_EXECUTABLE_MODE)
