#!/usr/bin/env bash
# Change validation: a run before a change saves the baseline, a run after it says what got worse.
#
#   scripts/change-validate.sh pre  [--name NAME] [--reports-root DIR] [--python PY] [--] [SUITE ARGS...]
#   scripts/change-validate.sh post [--name NAME] [--reports-root DIR] [--python PY] [--] [SUITE ARGS...]
#
# pre   runs the suite with its reports in DIR/change/NAME/pre/ (results.json is the baseline) and keeps
#       SUITE ARGS in DIR/change/NAME/args. Exit 0 when the baseline was saved, whatever the host's
#       state before the change (its failures are known state; they are listed); otherwise the suite's
#       status (4 bad input).
# post  runs the suite again (with the pre run's SUITE ARGS unless others are given) with
#       --baseline DIR/change/NAME/pre/results.json, reports in DIR/change/NAME/post/, and AVC-002 and
#       LOG-001 judging only what happened after the pre run ended on each host (--avc-since=baseline;
#       an --avc-since in SUITE ARGS wins). A denial counts as new only when stamped after the pre run
#       ended. Its exit status is for change tooling:
#         0  no regression: nothing that passed before fails or errors now, no new AVC denial for a
#            Postfix domain, no host of the baseline missing (failures that were already there are
#            reported, not counted)
#         1  a regression, a new AVC denial, or a host of the baseline not judged after the change
#         2  the post run gave no comparison (it wrote no results.json or no "changes" section)
#         4  bad input: no pre run under that name, bad SUITE ARGS (one ERROR: line)
#
# NAME (default: $CHANGE_NAME, else "default") names the change, e.g. a ticket id: letters, digits,
# '.', '_', '-'. DIR defaults to the clone's reports/. The regression rules are the suite's
# (--baseline, postfix_compliance/report/baseline.py); this script only reads its "changes".
# Installed, this is the `postfix-compliance-change-validate` command (scripts/lib/suite.sh): it runs the
# installed suite (`python -m postfix_compliance`) in the directory it was started in, and DIR defaults to
# /var/lib/postfix-compliance/reports.
set -uo pipefail
umask 077  # reports and logs carry host evidence: the running user's alone (metrics for node_exporter: 0644)

# shellcheck source-path=SCRIPTDIR source=lib/suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/suite.sh"  # REPO, pfc_*: a clone's suite or the installed one
python=$pfc_python
reports_root=$pfc_reports
name="${CHANGE_NAME:-default}"

die() { echo "ERROR: change-validate: $*" >&2; exit 4; }
say() { echo "change-validate: $*" >&2; }
need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }

phase=${1:-}
case $phase in
  pre|post) shift ;;
  -h|--help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) die "first say pre or post ($pfc_self pre|post [--name NAME] [SUITE ARGS])" ;;
esac
while [[ $# -gt 0 ]]; do
  case $1 in
    --name) need_value "$@"; name=$2; shift 2 ;;
    --reports-root) need_value "$@"; reports_root=$2; shift 2 ;;
    --python) need_value "$@"; python=$2; shift 2 ;;
    --name=*|--reports-root=*|--python=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    --) shift; break ;;
    *) break ;;
  esac
done
suite_args=("$@")
[[ $name =~ ^[A-Za-z0-9._-]+$ && $name != . && $name != .. ]] \
  || die "--name '$name': use letters, digits, '.', '_' and '-' only"
[[ -x $python ]] || die "no Python at ${python:-(none given)}: $pfc_no_python"
# post replays the arguments saved in the change directory, as root: made 0700 if missing, and refused in
# one line if another user can write it or a directory above it (postfix_compliance/private_dirs.py).
pfc_helper -m postfix_compliance.private_dirs --create \
  "change directory" "$reports_root" "$reports_root/change" "$reports_root/change/$name" || exit 4
reports_root=$(cd "$reports_root" && pwd)
change_dir="$reports_root/change/$name"
for arg in "${suite_args[@]}"; do
  case $arg in --report-dir|--report-dir=*|--no-reports|--baseline|--baseline=*)
    die "$arg: change-validate sets the report directory and the baseline itself" ;;
  esac
done

run_suite() {  # run_suite REPORT_DIR ARGS...: the suite as a user runs it, from the clone (or installed)
  local dir=$1; shift
  rm -rf -- "$dir"
  mkdir -m 700 "$dir" || die "cannot create $dir"
  ( cd "$pfc_suite_dir" && exec "$python" "${pfc_suite[@]}" --report-dir="$dir" "$@" ) 2>&1 | tee "$dir/pytest.log"
  return "${PIPESTATUS[0]}"
}

if [[ $phase == pre ]]; then
  [[ -f $change_dir/pre/results.json ]] && say "replacing the earlier baseline of change '$name'"
  rm -rf -- "$change_dir/post"
  run_suite "$change_dir/pre" "${suite_args[@]}"
  status=$?
  if [[ ! -f $change_dir/pre/results.json || $status -gt 2 ]]; then
    say "no baseline saved: the suite exited $status (see $change_dir/pre/pytest.log)"
    exit "$status"
  fi
  # The arguments, NUL-separated, so that post runs exactly the same checks on the same hosts.
  # Through the suite's atomic writer: never through a symlink planted in the (maybe shared) reports root.
  { if (( ${#suite_args[@]} )); then printf '%s\0' "${suite_args[@]}"; fi; } \
    | pfc_helper -m postfix_compliance.atomicfile "$change_dir/args" \
    || die "cannot save the arguments in $change_dir/args"
  # Host names and messages in results.json are a host's words: printed through text.inert, never raw.
  pfc_helper - "$change_dir/pre/results.json" <<'PY'
import json, sys
from postfix_compliance.text import inert
def say(text):
    print(inert(text), file=sys.stderr)
doc = json.load(open(sys.argv[1], encoding="utf-8"))
bad = [f"{r.get('host_name') or r['host']} {r['check_id']} ({r['outcome']})" for r in doc["results"]
       if r["outcome"] in ("fail", "error")]
say(f"change-validate: baseline saved: {len(doc['results'])} results, {len(bad)} failing or erroring "
    "before the change (known state, not counted by post)")
for line in bad:
    say(f"change-validate:   {line}")
PY
  say "baseline: $change_dir/pre/results.json; after the change: $pfc_self post --name $name"
  exit 0
fi

# ------------------------------------------------------------------ post
baseline="$change_dir/pre/results.json"
[[ -f $baseline ]] || die "no baseline for change '$name' ($baseline): run '$pfc_self pre --name $name' before the change"
if [[ ${#suite_args[@]} -eq 0 && -f $change_dir/args ]]; then
  mapfile -d '' suite_args < "$change_dir/args"
fi
# AVC-002 and LOG-001 judge what happened since the pre run ended on each host (its clock, as the
# baseline recorded it), unless SUITE ARGS choose a window: a fault the change fixed is not reported again.
window=(--avc-since=baseline)
for arg in "${suite_args[@]}"; do
  case $arg in --avc-since|--avc-since=*) window=() ;; esac
done
run_suite "$change_dir/post" --baseline="$baseline" "${window[@]}" "${suite_args[@]}"
status=$?
if [[ $status -gt 2 ]]; then
  say "the post run exited $status (see $change_dir/post/pytest.log)"
  exit "$status"
fi
pfc_helper - "$change_dir/post/results.json" "$status" <<'PY'
import json, sys
from postfix_compliance.text import inert
def say(text):
    print(inert(text), file=sys.stderr)
path, suite_status = sys.argv[1], sys.argv[2]
try:
    with open(path, encoding="utf-8") as handle:
        changes = json.load(handle).get("changes")
except (OSError, ValueError) as exc:
    say(f"change-validate: no comparison: cannot read {path}: {exc}")
    sys.exit(2)
if not isinstance(changes, dict):
    say(f"change-validate: no comparison: {path} has no \"changes\" section")
    sys.exit(2)
def who(c):
    return c.get("host_name") or c.get("host")
regressions = changes.get("regressions", [])
denials = changes.get("new_avc_denials", [])
missing = changes.get("missing_hosts", [])
for c in regressions:
    say(f"change-validate: REGRESSION {c['check_id']} on {who(c)}: {c.get('before')} -> {c.get('after')}"
        f"{': ' + c['message'] if c.get('message') else ''}")
for d in denials:
    say(f"change-validate: NEW AVC DENIAL on {who(d)}: {d.get('comm') or '?'} denied "
        f"{{{' '.join(d.get('permissions') or [])}}} ({d.get('tcontext')}, {d.get('tclass')})")
for h in missing:
    say(f"change-validate: HOST NOT JUDGED after the change: {h} (in the baseline, not in this run)")
for c in changes.get("fixes", []):
    say(f"change-validate: fixed {c['check_id']} on {who(c)}: {c.get('before')} -> {c.get('after')}")
bad = bool(regressions or denials or missing)
say(f"change-validate: {len(regressions)} regressions, {len(denials)} new AVC denials, {len(missing)} hosts "
    f"not judged, {len(changes.get('fixes', []))} fixes (suite exit {suite_status}) -> exit {1 if bad else 0}")
sys.exit(1 if bad else 0)
PY
result=$?
say "report: $change_dir/post/compliance.html"
exit "$result"
