"""`postfix-compliance-scheduled-run`, `-change-validate`, `-image-gate`: the operator scripts of an installation.

The wheel carries scripts/scheduled-run.sh, change-validate.sh and image-gate.sh, with scripts/lib/suite.sh,
as package data (postfix_compliance/operator_scripts/; layout.SCRIPTS_DIR). Each command runs its script
with bash in its own place (exec: signals, the exit status and the terminal are the script's), with
PFC_PYTHON set to the Python this command runs on, so the script runs this installation's suite
(`python -m postfix_compliance`, scripts/lib/suite.sh) whatever PFC_PYTHON a site's environment file still
names. The arguments, output and exit statuses are the scripts' (docs/operations.md). In a clone's own
venv (its editable install) the same commands run the clone's scripts on the clone's suite.
"""

from __future__ import annotations

import os
import shutil
import sys

from postfix_compliance import layout


def _run_script(name: str, argv: list[str] | None = None) -> int:
    command = f"postfix-compliance-{name}"
    script = os.path.join(layout.SCRIPTS_DIR, f"{name}.sh")
    bash = shutil.which("bash")
    if bash is None:
        problem = "bash is not installed (or not on PATH)"
    elif not os.path.isfile(script):
        problem = f"{script} is missing: reinstall the package"
    elif not sys.executable:
        problem = "cannot tell which Python runs this command"
    else:
        args = sys.argv[1:] if argv is None else argv
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(bash, [bash, script, *args], {**os.environ, "PFC_PYTHON": sys.executable})
    print(f"ERROR: {command}: {problem}", file=sys.stderr)
    return 4


def scheduled_run() -> int:
    return _run_script("scheduled-run")


def change_validate() -> int:
    return _run_script("change-validate")


def image_gate() -> int:
    return _run_script("image-gate")
