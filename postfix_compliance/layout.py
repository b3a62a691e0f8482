"""Where the suite's own files are: in a clone (the design's top level) or in an installed wheel.

A clone keeps the checks in tests_host/, the profiles in fixtures/profiles/, the pytest settings in
pytest.ini and the operator scripts in scripts/ beside the package. The wheel carries the same files inside
the package (pyproject.toml maps them): postfix_compliance/tests_host/, postfix_compliance/profile_files/,
postfix_compliance/suite.ini, postfix_compliance/operator_scripts/.
"""

from __future__ import annotations

import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_CLONE = os.path.dirname(PACKAGE_DIR)


def _clone_or_package(clone_path: str, package_path: str) -> str:
    clone = os.path.join(_CLONE, clone_path)
    return clone if os.path.exists(clone) else os.path.join(PACKAGE_DIR, package_path)


def from_clone() -> bool:
    """Whether the package runs from a clone (or its editable install) rather than from a wheel."""
    return os.path.isfile(os.path.join(_CLONE, "pytest.ini")) and os.path.isdir(os.path.join(_CLONE, "tests_host"))


CHECKS_DIR = _clone_or_package("tests_host", "tests_host")
PROFILES_DIR = _clone_or_package(os.path.join("fixtures", "profiles"), "profile_files")
SUITE_INI = _clone_or_package("pytest.ini", "suite.ini")
# scheduled-run.sh, change-validate.sh, image-gate.sh (postfix_compliance/operator_commands.py). Chosen by
# from_clone(), not by a scripts/ beside the package: an installed package's neighbour in site-packages
# named scripts/ is some other distribution's.
SCRIPTS_DIR = os.path.join(_CLONE, "scripts") if from_clone() else os.path.join(PACKAGE_DIR, "operator_scripts")
