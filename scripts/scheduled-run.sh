#!/usr/bin/env bash
# One scheduled compliance run: what contrib/systemd/postfix-compliance.timer starts (docs/operations.md).
#
#   scripts/scheduled-run.sh [--reports-root DIR] [--keep N] [--lock FILE] [--wait SECONDS]
#                            [--metrics FILE] [--hosts-file FILE] [--no-compare-previous]
#                            [--python PY] [--] [SUITE ARGS...]
#
# Runs the suite (`python -m pytest SUITE ARGS`; installed: `python -m postfix_compliance SUITE ARGS`, in the
# directory it was started in) with its reports in DIR/<UTC timestamp>/
# (compliance.html, results.json, junit.xml, metrics.prom, pytest.log, run.json), then:
#   - points DIR/latest at that set (a relative symlink, replaced atomically by rename(2)), when
#     the run judged checks (it wrote results.json); a run that did not (bad input) keeps its set
#     for its log, and `latest` stays where it was;
#   - keeps the newest N sets (default 14) and removes older ones; never the one `latest` names;
#   - writes Prometheus metrics: the suite's (--metrics) plus this run's exit status and finish
#     time, to the set's metrics.prom and, atomically, to --metrics FILE (node_exporter's
#     textfile collector directory);
#   - compares with the previous run (the suite's --baseline DIR/latest/results.json), so the
#     report lists what changed since then (--no-compare-previous: don't).
#   - writes DIR/history.html, history.json and history.prom (python -m postfix_compliance.history):
#     per host and check, since when it fails, when it last passed, what flaps, which hosts dropped
#     out of this run; their metrics join this run's.
#
# Never two at once on one reports directory: the run holds an flock on DIR/.scheduled-run.lock
# (or --lock FILE) from start to finish. A second run exits 75 at once, saying who holds the lock;
# with --wait S it waits up to S seconds for the lock first (then exits 75). The lock is not
# passed to the suite's processes, so nothing they leave behind (an ssh master) can hold it.
#
# --hosts-file FILE (or PFC_HOSTS_FILE): a plain hosts file, one testinfra host URL per line
# (# comments, blank lines ignored), passed as --hosts. An Ansible inventory goes in SUITE ARGS.
# PFC_PYTHON: the Python with the suite installed (default: the clone's .venv, scripts/bootstrap.sh).
# DIR defaults to the clone's reports/. Installed, this is the `postfix-compliance-scheduled-run` command
# (scripts/lib/suite.sh): DIR defaults to /var/lib/postfix-compliance/reports, the Python is the command's own.
#
# Exit status: the suite's (0 pass, 1 a check failed, 2 a check could not be judged, 4 bad input
# to the suite); 4 bad input to this script (one ERROR: line); 75 another run holds the lock.
set -uo pipefail
umask 077  # reports and logs carry host evidence: the running user's alone (metrics for node_exporter: 0644)

# shellcheck source-path=SCRIPTDIR source=lib/suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/suite.sh"  # REPO, pfc_*: a clone's suite or the installed one
LOCKED_EXIT=75
reports_root=$pfc_reports
keep=14
lock=""
wait_s=""
metrics=""
hosts_file="${PFC_HOSTS_FILE:-}"
compare_previous=1
python=$pfc_python

die() { echo "ERROR: scheduled-run: $*" >&2; exit 4; }
say() { echo "scheduled-run: $*" >&2; }
need_value() { [[ $# -ge 2 ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --reports-root) need_value "$@"; reports_root=$2; shift 2 ;;
    --keep) need_value "$@"; keep=$2; shift 2 ;;
    --lock) need_value "$@"; lock=$2; shift 2 ;;
    --wait) need_value "$@"; wait_s=$2; shift 2 ;;
    --metrics) need_value "$@"; metrics=$2; shift 2 ;;
    --hosts-file) need_value "$@"; hosts_file=$2; shift 2 ;;
    --no-compare-previous) compare_previous=0; shift ;;
    --python) need_value "$@"; python=$2; shift 2 ;;
    --reports-root=*|--keep=*|--lock=*|--wait=*|--metrics=*|--hosts-file=*|--python=*)
      set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    -h|--help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    *) break ;;  # the suite's arguments from here on
  esac
done
suite_args=("$@")

[[ $keep =~ ^[1-9][0-9]*$ ]] || die "--keep must be a whole number of report sets, 1 or more (got '$keep')"
[[ -z $wait_s || $wait_s =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--wait must be a number of seconds (got '$wait_s')"
[[ -x $python ]] || die "no Python at ${python:-(none given)}: $pfc_no_python"
[[ -n $reports_root ]] || die "--reports-root is empty"
# The root holds what later runs read back (latest, the previous results): made 0700 if missing, refused
# in one line if another user can write it (postfix_compliance/private_dirs.py).
pfc_helper -m postfix_compliance.private_dirs --create --reports-root \
  "$reports_root" || exit 4
reports_root=$(cd "$reports_root" && pwd)
lock=${lock:-$reports_root/.scheduled-run.lock}

if [[ -n $hosts_file ]]; then
  [[ -f $hosts_file && -r $hosts_file ]] || die "hosts file $hosts_file: no such readable file"
  hosts=$(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$hosts_file" | grep -v '^$' | paste -sd, -)
  [[ -n $hosts ]] || die "hosts file $hosts_file: no hosts in it (one host URL a line)"
  suite_args=("--hosts=$hosts" "${suite_args[@]}")
fi

# ------------------------------------------------------------------ the lock
# The holder line below is written by name: a symlink planted there (a shared reports root) would be followed.
[[ -L $lock ]] && die "the lock file $lock is a symlink: not writing through it"
( : 9<>"$lock" ) 2>/dev/null || die "cannot open the lock file $lock"
exec 9<>"$lock"
if [[ -n $wait_s ]]; then take_lock=(flock -w "$wait_s" 9); else take_lock=(flock -n 9); fi
if ! "${take_lock[@]}"; then
  holder=$(head -c 200 "$lock" 2>/dev/null | tr -d '\n')
  say "another run is still running (${holder:-holder unknown}; lock $lock)${wait_s:+, waited ${wait_s}s}: not starting a second one (exit $LOCKED_EXIT)"
  exit $LOCKED_EXIT
fi
started=$(date +%s.%N)
printf 'pid %s on %s since %s\n' "$$" "$(hostname)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$lock"

# ------------------------------------------------------------------ this run's report set
# A new directory, made here (mkdir fails on any existing name): never one found in place, which could hold
# a planted pytest.log symlink.
stamp=$(date -u +%Y%m%dT%H%M%SZ)
set_dir=""
for n in "" $(seq -w 1 99); do
  set_name=$stamp${n:+-$n}
  if mkdir -m 700 "$reports_root/$set_name" 2>/dev/null; then set_dir="$reports_root/$set_name"; break; fi
done
[[ -n $set_dir ]] || die "cannot create a report set under $reports_root ($stamp and $stamp-01..99 exist)"

baseline_args=()
previous=$(readlink "$reports_root/latest" 2>/dev/null || true)
if [[ $compare_previous == 1 && -n $previous && -f $reports_root/$previous/results.json ]]; then
  # Only a baseline the suite can read: an unreadable one would make every run a usage error.
  if pfc_helper -c 'import sys; from postfix_compliance.fleet import load_results; load_results(sys.argv[1])' \
      "$reports_root/$previous/results.json" 2>/dev/null 9>&-; then
    baseline_args=("--baseline=$reports_root/$previous/results.json")
  else
    say "previous results $reports_root/$previous/results.json are not readable: not comparing with them"
  fi
fi

say "run $set_name: python ${pfc_suite[*]} ${suite_args[*]}"
( cd "$pfc_suite_dir" && exec "$python" "${pfc_suite[@]}" --report-dir="$set_dir" --metrics="$set_dir/suite.prom" \
    "${baseline_args[@]}" "${suite_args[@]}" ) 9>&- 2>&1 | tee "$set_dir/pytest.log"
status=${PIPESTATUS[0]}
finished=$(date +%s.%N)
duration=$(awk -v a="$started" -v b="$finished" 'BEGIN { printf "%.3f", b - a }')

pfc_helper - "$set_dir/run.json" "$status" "$started" "$finished" "$set_name" "${suite_args[@]}" <<'PY' 9>&-
import json, os, socket, sys, time
path, status, started, finished, name, *args = sys.argv[1:]
iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(t)))
doc = {"report_set": name, "controller": socket.gethostname(), "exit_status": int(status),
       "started_at": iso(started), "finished_at": iso(finished),
       "duration_s": round(float(finished) - float(started), 3), "suite_args": args}
from postfix_compliance.atomicfile import write_atomic  # never through a planted path.tmp
write_atomic(path, json.dumps(doc, indent=1) + "\n")
PY

# ------------------------------------------------------------------ history
# Compliance over time across the kept sets (postfix_compliance/history.py): REPORTS/history.html, history.json,
# and history.prom, whose series (a host that dropped out of this run) join this run's metrics below.
if ! pfc_helper -m postfix_compliance.history "$reports_root" \
    "$reports_root" 2>"$set_dir/history.log" 9>&-; then
  say "no history: $(head -c 300 "$set_dir/history.log" | tr '\n' ' ')"
fi

# ------------------------------------------------------------------ metrics
{
  [[ -f $set_dir/suite.prom ]] && cat "$set_dir/suite.prom"
  [[ -f $reports_root/history.prom ]] && cat "$reports_root/history.prom"
  echo "# HELP postfix_compliance_scheduled_run_exit_status Exit status of the last scheduled run: 0 pass, 1 a check failed, 2 a check could not be judged, 4 bad input."
  echo "# TYPE postfix_compliance_scheduled_run_exit_status gauge"
  echo "postfix_compliance_scheduled_run_exit_status $status"
  echo "# HELP postfix_compliance_scheduled_run_finished_timestamp_seconds When the last scheduled run finished (Unix time)."
  echo "# TYPE postfix_compliance_scheduled_run_finished_timestamp_seconds gauge"
  echo "postfix_compliance_scheduled_run_finished_timestamp_seconds ${finished%.*}"
  echo "# HELP postfix_compliance_scheduled_run_duration_seconds How long the last scheduled run took, reports included."
  echo "# TYPE postfix_compliance_scheduled_run_duration_seconds gauge"
  echo "postfix_compliance_scheduled_run_duration_seconds $duration"
} > "$set_dir/metrics.prom"
rm -f "$set_dir/suite.prom"
if [[ -n $metrics ]]; then
  # The textfile collector's directory may be shared: an exclusive random temporary name, not .NAME.$$.tmp
  # (a planted symlink there would be followed); 0644 for node_exporter.
  if ! pfc_helper -m postfix_compliance.atomicfile --mode 644 "$metrics" < "$set_dir/metrics.prom" 9>&-; then
    say "could not write metrics to $metrics"
  fi
fi

# ------------------------------------------------------------------ latest, rotation
if [[ -f $set_dir/results.json ]]; then
  if ! { ln -sfn "$set_name" "$reports_root/.latest.$$" && mv -fT "$reports_root/.latest.$$" "$reports_root/latest"; }; then
    rm -f "$reports_root/.latest.$$"
    say "could not update $reports_root/latest"
  fi
else
  say "run $set_name wrote no results (exit $status): latest stays at $(readlink "$reports_root/latest" 2>/dev/null || echo nothing)"
fi

current=$(readlink "$reports_root/latest" 2>/dev/null || true)
sets=()
for path in "$reports_root"/[0-9]*; do
  [[ -d $path && ! -L $path && ${path##*/} =~ ^[0-9]{8}T[0-9]{6}Z(-[0-9]{2})?$ ]] && sets+=("${path##*/}")
done
if (( ${#sets[@]} )); then mapfile -t sets < <(printf '%s\n' "${sets[@]}" | LC_ALL=C sort); fi
excess=$(( ${#sets[@]} - keep ))
for (( i = 0; i < excess; i++ )); do
  old=${sets[$i]}
  [[ $old == "$current" ]] && continue
  rm -rf -- "${reports_root:?}/$old" && say "removed old report set $old (keeping $keep)"
done

say "run $set_name finished: exit $status in ${duration}s; reports in $set_dir"
exit "$status"
