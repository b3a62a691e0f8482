# shellcheck shell=bash disable=SC2034,SC2154  # the variables are for (and $python from) the script that sources this
# Sourced by scheduled-run.sh, change-validate.sh and image-gate.sh: which suite they run, on which Python,
# and where their reports go unless told.
#
# In a clone (scripts/ beside pytest.ini and tests_host/): the clone's suite, `python -m pytest` run in the
# clone, on the clone's .venv/bin/python (scripts/bootstrap.sh) unless PFC_PYTHON or --python names another;
# reports under the clone's reports/.
# Installed (the wheel carries these scripts as postfix_compliance/operator_scripts/, started by the
# postfix-compliance-scheduled-run, -change-validate and -image-gate commands,
# postfix_compliance/operator_commands.py, which set PFC_PYTHON to their own Python): the installed suite,
# `python -m postfix_compliance` (the `postfix-compliance` command), run in the directory the command was
# started in; reports under /var/lib/postfix-compliance/reports (the scheduled unit's state directory), the
# image gate's where --report-dir says. Python never puts the current directory on its import path there
# (PYTHONSAFEPATH): a directory another user can write (/tmp) cannot plant a module the run imports.
#
# Sets REPO (the clone; empty when installed), PFC_INSTALLED (0 or 1), pfc_self (how the user starts this
# script), pfc_python (the default Python), pfc_pythonpath (PYTHONPATH for the helper modules), pfc_suite
# (the suite's command after the Python), pfc_suite_dir (where it runs), pfc_reports (the default reports
# root) and pfc_no_python (what to do when there is no Python); defines pfc_helper.
pfc_scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pfc_name=$(basename "${BASH_SOURCE[1]}" .sh)
if [[ -f $pfc_scripts/../pytest.ini && -d $pfc_scripts/../tests_host ]]; then
  PFC_INSTALLED=0
  REPO=$(cd "$pfc_scripts/.." && pwd)
  pfc_self="scripts/$pfc_name.sh"
  pfc_python="${PFC_PYTHON:-$REPO/.venv/bin/python}"
  pfc_pythonpath="$REPO${PYTHONPATH:+:$PYTHONPATH}"
  pfc_suite=(-m pytest)
  pfc_suite_dir=$REPO
  pfc_reports="$REPO/reports"
  pfc_no_python="run scripts/bootstrap.sh, or give --python / PFC_PYTHON"
else
  PFC_INSTALLED=1
  REPO=""
  pfc_self="postfix-compliance-$pfc_name"
  pfc_python="${PFC_PYTHON:-}"
  pfc_pythonpath="${PYTHONPATH:-}"
  pfc_suite=(-m postfix_compliance)
  pfc_suite_dir=$PWD
  pfc_reports=/var/lib/postfix-compliance/reports
  pfc_no_python="start it as $pfc_self (it runs on the Python it is installed in), or give --python / PFC_PYTHON"
  export PYTHONSAFEPATH=1
fi

# pfc_helper ARGS...: the script's own Python steps (the directory checks, atomic writes, the history, reading
# results) on "$python", in a clone or installed. They run in whatever directory the user started the script
# in, so Python must not import from it (PYTHONSAFEPATH): a postfix_compliance/ planted in /tmp never runs.
pfc_helper() {
  PYTHONSAFEPATH=1 PYTHONPATH="$pfc_pythonpath" "$python" "$@"
}
