"""The distribution: the wheel carries the whole suite, and installed outside the clone it runs as the clone does.

Built from this checkout (wheel and sdist) with the venv's own setuptools, installed with its locked
dependencies into a fresh venv outside the clone, then run from an empty directory both ways a user would:
the `postfix-compliance` command and plain `pytest --hosts=...` (the pytest11 entry point). Each run's
results.json must be the clone's own run's, normalised as the golden outputs are (tests/results_golden.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

from results_golden import normalise
from selftest import REPO, snapshot

HOSTS = [os.path.join(REPO, snapshot(name)) for name in ("healthy-rhel9", "auditd-stopped")]
HOST_ARG = "--hosts=" + ",".join(f"snapshot://{path}" for path in HOSTS)


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH, no virtualenv of ours: the installed suite must not find the clone."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS")}


def _run(argv: list[str], cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=str(cwd), env=_clean_env(), capture_output=True, text=True, timeout=timeout)


# Not copied into the build's source: what a clone has that the distribution must not depend on.
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache",
                                     ".hypothesis", "reports")


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """(wheel path, sdist path), built from a copy of this checkout (a build in place writes build/ and
    *.egg-info into the clone, and two builds at once there collide)."""
    out = tmp_path_factory.mktemp("dist")
    source = out / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE, symlinks=True)
    proc = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                 str(source)], cwd=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                 "print(b.build_sdist(sys.argv[1]))", str(out)], cwd=source)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [wheel] = [p for p in os.listdir(out) if p.endswith(".whl")]
    [sdist] = [p for p in os.listdir(out) if p.endswith(".tar.gz")]
    return str(out / wheel), str(out / sdist)


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory):
    """A fresh venv outside the clone: the locked dependencies, then the wheel."""
    where = tmp_path_factory.mktemp("installed") / "venv"
    proc = _run([sys.executable, "-m", "venv", str(where)], cwd=where.parent)
    assert proc.returncode == 0, proc.stderr
    pip = [str(where / "bin" / "python"), "-m", "pip", "install", "-q"]
    proc = _run([*pip, "--require-hashes", "-r", os.path.join(REPO, "requirements", "suite.lock.txt")],
                cwd=where.parent, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _run([*pip, "--no-deps", dist[0]], cwd=where.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return where


def test_the_wheel_and_sdist_carry_the_whole_suite(dist):
    wheel, sdist = dist
    names = set(zipfile.ZipFile(wheel).namelist())
    checks = {n for n in os.listdir(os.path.join(REPO, "tests_host")) if n.startswith("test_") and n.endswith(".py")}
    assert {f"postfix_compliance/tests_host/{n}" for n in checks} <= names
    profiles = {n for n in os.listdir(os.path.join(REPO, "fixtures", "profiles")) if n.endswith(".yaml")}
    assert profiles and {f"postfix_compliance/profile_files/{n}" for n in profiles} <= names
    for name in ("postfix_compliance/suite.ini", "postfix_compliance/schemas/results.schema.json",
                 "postfix_compliance/report/assets/report.css", "postfix_compliance/cli.py"):
        assert name in names, name
    [info] = {n.split("/")[0] for n in names if ".dist-info/" in n}
    assert f"{info}/licenses/LICENSE" in names
    meta = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert "Classifier: Framework :: Pytest" in meta and "License-Expression: Apache-2.0" in meta
    entry = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    assert "postfix-compliance = postfix_compliance.cli:main" in entry
    assert "[pytest11]" in entry and "postfix_compliance = postfix_compliance.pytest_entry" in entry
    # The installed settings are the clone's: one file, copied.
    assert open(os.path.join(REPO, "postfix_compliance", "suite.ini")).read() == open(
        os.path.join(REPO, "pytest.ini")).read()
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    assert {"pytest.ini", "LICENSE", "README.md", "tests_host/test_queue.py", "fixtures/profiles/rhel9.yaml",
            "pyproject.toml"} <= members


def _results(report_dir) -> str:
    text = open(os.path.join(str(report_dir), "results.json"), encoding="utf-8").read()
    return normalise("results.json", text, str(report_dir))


def test_installed_outside_the_clone_it_writes_what_the_clone_writes(venv, tmp_path):
    clone = _run([sys.executable, "-m", "pytest", HOST_ARG, "--no-flush", f"--report-dir={tmp_path / 'clone'}"],
                 cwd=REPO)
    assert clone.returncode == 1, clone.stdout[-2000:] + clone.stderr[-2000:]  # auditd-stopped fails
    expected = _results(tmp_path / "clone")
    empty = tmp_path / "empty"
    empty.mkdir()
    command = _run([str(venv / "bin" / "postfix-compliance"), HOST_ARG, "--no-flush",
                    f"--report-dir={tmp_path / 'command'}"], cwd=empty)
    plain = _run([str(venv / "bin" / "pytest"), HOST_ARG, "--no-flush", f"--report-dir={tmp_path / 'plain'}"],
                 cwd=empty)
    for run, name in ((command, "command"), (plain, "plain")):
        assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
        assert _results(tmp_path / name) == expected, name
        assert os.path.isfile(tmp_path / name / "compliance.html") and os.path.isfile(tmp_path / name / "junit.xml")
    assert set(os.listdir(empty)) <= {".pytest_cache"}  # plain pytest's own cache, as in any pytest run
    # The profiles are the package's own, read from the installed files.
    where = _run([str(venv / "bin" / "python"), "-c", "from postfix_compliance import layout; "
                  "print(layout.PROFILES_DIR, layout.CHECKS_DIR, layout.from_clone())"], cwd=empty)
    assert where.stdout.split() == [str(p) for p in (*_site(venv, "profile_files", "tests_host"), False)]


def _site(venv, *names: str) -> list[str]:
    [lib] = (venv / "lib").iterdir()
    return [str(lib / "site-packages" / "postfix_compliance" / name) for name in names]


def test_the_installed_command_says_every_usage_error_in_one_line(venv, tmp_path):
    for args, says in ((["--hots=x"], "ERROR: unrecognized arguments: --hots=x"),
                       (["--drain-timeout=abc"], "ERROR: --drain-timeout 'abc': not a number of seconds"),
                       (["--hosts=ssh//root@mail1"], "ERROR: bad host URL 'ssh//root@mail1'")):
        run = _run([str(venv / "bin" / "postfix-compliance"), *args, f"--report-dir={tmp_path / 'r'}"],
                   cwd=tmp_path)
        lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
        assert run.returncode == 4 and len(lines) == 1 and lines[0].startswith(says), (args, lines)


def test_installed_beside_other_tests_the_suite_stays_out_of_their_runs(venv, tmp_path):
    """A plain pytest run of someone else's tests in the same environment: no checks, no options' effects,
    no reports."""
    (tmp_path / "test_mine.py").write_text("def test_mine():\n    assert True\n")
    run = _run([str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider"], cwd=tmp_path)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
    assert set(os.listdir(tmp_path)) - {"__pycache__"} == {"test_mine.py"}  # no reports/
    # Asked for (--postfix-compliance): the user's test and the suite's checks in one run and one report.
    run = _run([str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "--postfix-compliance",
                HOST_ARG, "--no-flush", f"--report-dir={tmp_path / 'r'}", "test_mine.py"], cwd=tmp_path)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    junit = open(tmp_path / "r" / "junit.xml").read()
    assert 'name="test_mine"' in junit
    results = json.load(open(tmp_path / "r" / "results.json"))
    assert {r["host"] for r in results["results"]} == {f"snapshot://{p}" for p in HOSTS}
