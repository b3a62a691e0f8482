"""The distribution: the wheel carries the whole suite, and installed outside the clone it runs as the clone does.

Built from this checkout (wheel and sdist) with the venv's own setuptools, installed two ways a user would
(tests/installed.py): into a fresh venv with the locked dependencies, and with `pipx install` (the project's
locked pipx, the lock as constraints). Each is run from an empty directory: the `postfix-compliance` command,
plain `pytest --hosts=...` (the pytest11 entry point) and, from the pipx install, the operator commands
(`postfix-compliance-scheduled-run`, `-change-validate`, `-image-gate`). Each run's results.json must be the
clone's own run's, normalised as the golden outputs are (tests/results_golden.py).
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import zipfile

import pytest

import installed
from installed import HOST_ARG, HOSTS, REPO, results, run

OPERATOR_COMMANDS = ("scheduled-run", "change-validate", "image-gate")


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    return installed.dist(tmp_path_factory)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    return installed.venv(tmp_path_factory)


@pytest.fixture(scope="module")
def pipx_app(tmp_path_factory):
    return installed.pipx_install(tmp_path_factory)


@pytest.fixture(scope="module")
def clone_results(tmp_path_factory) -> str:
    """The clone's own run on HOSTS (`python -m pytest` in the clone), normalised: what every install must write."""
    where = tmp_path_factory.mktemp("clone") / "reports"
    clone = run([sys.executable, "-m", "pytest", HOST_ARG, "--no-flush", f"--report-dir={where}"], cwd=installed.REPO)
    assert clone.returncode == 1, clone.stdout[-2000:] + clone.stderr[-2000:]  # auditd-stopped fails
    return results(where)


def test_the_wheel_and_sdist_carry_the_whole_suite(dist):
    wheel, sdist = dist
    names = set(zipfile.ZipFile(wheel).namelist())
    checks = {n for n in os.listdir(os.path.join(REPO, "tests_host")) if n.startswith("test_") and n.endswith(".py")}
    assert {f"postfix_compliance/tests_host/{n}" for n in checks} <= names
    profiles = {n for n in os.listdir(os.path.join(REPO, "fixtures", "profiles")) if n.endswith(".yaml")}
    assert profiles and {f"postfix_compliance/profile_files/{n}" for n in profiles} <= names
    for name in ("postfix_compliance/suite.ini", "postfix_compliance/schemas/results.schema.json",
                 "postfix_compliance/report/assets/report.css", "postfix_compliance/cli.py",
                 "postfix_compliance/operator_commands.py", "postfix_compliance/operator_scripts/lib/suite.sh",
                 *(f"postfix_compliance/operator_scripts/{c}.sh" for c in OPERATOR_COMMANDS)):
        assert name in names, name
    # The operator scripts, each as the clone has it; not the clone's own set-up (bootstrap, lock).
    wheel_zip = zipfile.ZipFile(wheel)
    for command in OPERATOR_COMMANDS:
        assert wheel_zip.read(f"postfix_compliance/operator_scripts/{command}.sh").decode() == open(
            os.path.join(REPO, "scripts", f"{command}.sh")).read()
    assert not {n for n in names if n.endswith(("bootstrap.sh", "lock.sh", "python-choice.sh"))}
    [info] = {n.split("/")[0] for n in names if ".dist-info/" in n}
    assert f"{info}/licenses/LICENSE" in names
    meta = wheel_zip.read(f"{info}/METADATA").decode()
    assert "Classifier: Framework :: Pytest" in meta and "License-Expression: Apache-2.0" in meta
    entry = wheel_zip.read(f"{info}/entry_points.txt").decode()
    assert "postfix-compliance = postfix_compliance.cli:main" in entry
    for command in OPERATOR_COMMANDS:
        assert f"postfix-compliance-{command} = postfix_compliance.operator_commands:{command.replace('-', '_')}" \
            in entry, command
    assert "[pytest11]" in entry and "postfix_compliance = postfix_compliance.pytest_entry" in entry
    # The installed settings are the clone's: one file, copied.
    assert open(os.path.join(REPO, "postfix_compliance", "suite.ini")).read() == open(
        os.path.join(REPO, "pytest.ini")).read()
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    assert {"pytest.ini", "LICENSE", "README.md", "tests_host/test_queue.py", "fixtures/profiles/rhel9.yaml",
            "pyproject.toml", "scripts/scheduled-run.sh", "scripts/lib/suite.sh",
            "contrib/systemd/postfix-compliance.service.d/pipx.conf"} <= members


def test_installed_outside_the_clone_it_writes_what_the_clone_writes(venv, clone_results, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    command = run([str(venv / "bin" / "postfix-compliance"), HOST_ARG, "--no-flush",
                   f"--report-dir={tmp_path / 'command'}"], cwd=empty)
    plain = run([str(venv / "bin" / "pytest"), HOST_ARG, "--no-flush", f"--report-dir={tmp_path / 'plain'}"],
                cwd=empty)
    for proc, name in ((command, "command"), (plain, "plain")):
        assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert results(tmp_path / name) == clone_results, name
        assert os.path.isfile(tmp_path / name / "compliance.html") and os.path.isfile(tmp_path / name / "junit.xml")
    assert set(os.listdir(empty)) <= {".pytest_cache"}  # plain pytest's own cache, as in any pytest run
    # The profiles are the package's own, read from the installed files.
    assert _layout(str(venv / "bin" / "python"), empty) == [
        *_site(venv / "lib", "profile_files", "tests_host", "operator_scripts"), "False"]


def _layout(python: str, cwd) -> list[str]:
    where = run([python, "-c", "from postfix_compliance import layout; "
                 "print(layout.PROFILES_DIR, layout.CHECKS_DIR, layout.SCRIPTS_DIR, layout.from_clone())"], cwd=cwd)
    assert where.returncode == 0, where.stderr
    return where.stdout.split()


def _site(lib_parent, *names: str) -> list[str]:
    [lib] = lib_parent.iterdir()
    return [str(lib / "site-packages" / "postfix_compliance" / name) for name in names]


def test_pipx_install_of_the_wheel_runs_as_the_clone_does(pipx_app, clone_results, tmp_path):
    """`pipx install WHEEL` (docs/install.md): the lock's versions, the commands on PIPX_BIN_DIR, and the
    suite from an empty directory writes what the clone writes."""
    installed_now = installed.installed_versions(str(pipx_app.venv / "bin" / "python"), pipx_app.site_packages())
    locked = installed.locked_versions()
    assert installed_now.pop("postfix-compliance")
    assert installed_now and {name: locked.get(name) for name in installed_now} == installed_now
    assert {f"postfix-compliance{s}" for s in ("", *(f"-{c}" for c in OPERATOR_COMMANDS))} <= set(
        os.listdir(pipx_app.bin_dir))
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run([pipx_app.command("postfix-compliance"), HOST_ARG, "--no-flush", f"--report-dir={tmp_path / 'r'}"],
               cwd=empty)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert results(tmp_path / "r") == clone_results
    assert os.listdir(empty) == []
    assert _layout(str(pipx_app.venv / "bin" / "python"), empty) == [
        *_site(pipx_app.venv / "lib", "profile_files", "tests_host", "operator_scripts"), "False"]


def test_pipx_installed_scheduled_run(pipx_app, clone_results, tmp_path):
    """`postfix-compliance-scheduled-run` from the pipx install, started from a directory another user could
    have written: one run into a reports root of its own, the installed suite on the installed Python
    (PFC_PYTHON from a site's old environment file is not used), nothing imported from that directory."""
    cwd = tmp_path / "cwd"
    (cwd / "postfix_compliance").mkdir(parents=True)
    planted = tmp_path / "planted-module-ran"
    (cwd / "postfix_compliance" / "__init__.py").write_text(f"open({str(planted)!r}, 'w').close()\n")
    reports = tmp_path / "reports"
    proc = run([pipx_app.command("postfix-compliance-scheduled-run"), f"--reports-root={reports}", "--",
                HOST_ARG, "--no-flush"], cwd=cwd, timeout=300,
               env=installed.clean_env(PFC_PYTHON="/nonexistent/clone/.venv/bin/python"))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]  # auditd-stopped fails
    assert "scheduled-run: run " in proc.stderr and "python -m postfix_compliance " in proc.stderr
    latest = reports / "latest"
    assert latest.is_symlink() and (reports / os.readlink(latest)).is_dir()
    for name in ("results.json", "compliance.html", "junit.xml", "metrics.prom", "pytest.log", "run.json"):
        assert (latest / name).is_file(), name
    assert (reports / "history.html").is_file() and (reports / "history.json").is_file()
    assert results(reports / os.readlink(latest)) == clone_results
    log = (latest / "pytest.log").read_text()
    assert f"rootdir: {pipx_app.site_packages() / 'postfix_compliance'}" in log, log[:2000]
    assert installed.REPO not in log.replace(os.path.join(installed.REPO, "fixtures", "hosts"), "")
    assert "postfix_compliance_scheduled_run_exit_status 1" in (latest / "metrics.prom").read_text()
    assert json.loads((latest / "run.json").read_text())["suite_args"] == [HOST_ARG, "--no-flush"]
    assert not planted.exists() and sorted(os.listdir(cwd)) == ["postfix_compliance"]


def test_pipx_installed_change_validation(pipx_app, tmp_path):
    """`postfix-compliance-change-validate` pre and post from the pipx install: post replays pre's arguments
    (from another directory: the hosts are absolute paths), and a check that passed before the change and fails
    after it (the same host name, auditd stopped) is a regression."""
    command, reports = pipx_app.command("postfix-compliance-change-validate"), tmp_path / "reports"
    healthy = f"--hosts=snapshot://{HOSTS[0]}"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pre = run([command, "pre", "--name=CHG-7", f"--reports-root={reports}", "--", healthy, "--no-flush"],
              cwd=tmp_path / "a")
    assert pre.returncode == 0, pre.stdout[-3000:] + pre.stderr[-3000:]
    assert "after the change: postfix-compliance-change-validate post --name CHG-7" in pre.stderr
    post = run([command, "post", "--name=CHG-7", f"--reports-root={reports}"], cwd=tmp_path / "b")
    assert post.returncode == 0, post.stdout[-3000:] + post.stderr[-3000:]
    assert "0 regressions" in post.stderr
    other = run([command, "post", "--name=CHG-7", f"--reports-root={reports}", "--",
                 f"--hosts=snapshot://{HOSTS[1]}", "--no-flush"], cwd=tmp_path / "b")
    assert other.returncode == 1 and "REGRESSION AVC-001 on mail1.example.com" in other.stderr, other.stderr[-3000:]
    assert os.listdir(tmp_path / "a") == [] and os.listdir(tmp_path / "b") == []
    missing = run([command, "post", "--name=CHG-8", f"--reports-root={reports}"], cwd=tmp_path)
    errors = [line for line in missing.stderr.splitlines() if line.startswith("ERROR:")]
    assert missing.returncode == 4 and len(errors) == 1 and "postfix-compliance-change-validate pre --name CHG-8" \
        in errors[0], missing.stderr


def test_pipx_installed_image_gate_needs_a_report_directory(pipx_app, tmp_path):
    """Installed, the gate has no clone's reports/ to default to: --report-dir is required, in one line."""
    proc = run([pipx_app.command("postfix-compliance-image-gate"), f"--chroot={tmp_path}"], cwd=tmp_path)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 4 and lines == ["ERROR: image-gate: name the report directory: --report-dir DIR"]
    assert os.listdir(tmp_path) == []


def test_the_installed_command_says_every_usage_error_in_one_line(venv, tmp_path):
    for args, says in ((["--hots=x"], "ERROR: unrecognized arguments: --hots=x"),
                       (["--drain-timeout=abc"], "ERROR: --drain-timeout 'abc': not a number of seconds"),
                       (["--hosts=ssh//root@mail1"], "ERROR: bad host URL 'ssh//root@mail1'")):
        proc = run([str(venv / "bin" / "postfix-compliance"), *args, f"--report-dir={tmp_path / 'r'}"],
                   cwd=tmp_path)
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
        assert proc.returncode == 4 and len(lines) == 1 and lines[0].startswith(says), (args, lines)


def test_installed_beside_other_tests_the_suite_stays_out_of_their_runs(venv, tmp_path):
    """A plain pytest run of someone else's tests in the same environment: no checks, no options' effects,
    no reports."""
    (tmp_path / "test_mine.py").write_text("def test_mine():\n    assert True\n")
    proc = run([str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider"], cwd=tmp_path)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr
    assert set(os.listdir(tmp_path)) - {"__pycache__"} == {"test_mine.py"}  # no reports/
    # Asked for (--postfix-compliance): the user's test and the suite's checks in one run and one report.
    proc = run([str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "--postfix-compliance",
                HOST_ARG, "--no-flush", f"--report-dir={tmp_path / 'r'}", "test_mine.py"], cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    junit = open(tmp_path / "r" / "junit.xml").read()
    assert 'name="test_mine"' in junit
    doc = json.load(open(tmp_path / "r" / "results.json"))
    assert {r["host"] for r in doc["results"]} == {f"snapshot://{p}" for p in HOSTS}
