"""The dependency ranges of pyproject.toml, tested at both ends.

- The lowest end: every direct dependency's lower bound is the version the lock holds, and the lock is
  what bootstrap and CI install (requirements/*.lock.txt): the whole project test suite runs on it. A lock
  refreshed to newer versions (scripts/lock.sh) fails here until the lower bounds follow, so a range
  never claims a version nobody tested.
- The newest end: a fresh venv with the newest releases the ranges allow today (what `pip install` of
  the package gives a new user), on which the golden outputs of every snapshot and the bad-input tests
  must hold as they do on the lock.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from selftest import REPO


def _requirements(extra: str | None = None) -> list[Requirement]:
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)["project"]
    texts = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return [Requirement(t) for t in texts]


def _locked(lock: str) -> dict[str, str]:
    text = open(os.path.join(REPO, "requirements", lock), encoding="utf-8").read()
    return {m[1].lower().replace("_", "-"): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M)}


def _lower_bound(req: Requirement) -> str | None:
    found = [s.version for s in req.specifier if s.operator == ">="]
    return found[0] if found else None


@pytest.mark.parametrize("lock, extra", [("suite.lock.txt", None), ("dev.lock.txt", "dev")])
def test_every_lower_bound_is_the_locked_version(lock, extra):
    locked = _locked(lock)
    for req in _requirements(extra):
        name = req.name.lower().replace("_", "-")
        assert name in locked, f"{req.name} is not in requirements/{lock}"
        assert req.specifier.contains(locked[name]), f"{lock}: {name}=={locked[name]} is outside {req}"
        assert Version(_lower_bound(req) or "0") == Version(locked[name]), (
            f"{req}: the lower bound is not the locked {locked[name]}, the version CI tests; raise it")
        assert any(s.operator == "<" for s in req.specifier) or extra, f"{req}: no upper bound"


def test_the_newest_versions_the_ranges_allow_give_the_same_outputs(tmp_path):
    venv = tmp_path / "newest"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    source = tmp_path / "source"  # a build in place would write build/ and *.egg-info into the clone
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", "reports"))
    proc = subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", str(source), "pytest-timeout"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    versions = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                              timeout=120).stdout
    print(versions)  # what "newest" was today, in the test's output
    proc = subprocess.run([python, "-m", "pytest", "-c", os.path.join(REPO, "tests", "pytest.ini"), "-q", "-p",
                           "no:cacheprovider", os.path.join(REPO, "tests", "test_results_equivalence.py"),
                           os.path.join(REPO, "tests", "test_hostile_input.py")],
                          cwd=REPO, capture_output=True, text=True, timeout=1200,
                          env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
