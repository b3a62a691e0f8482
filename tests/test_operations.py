"""Operations: the scheduled run (systemd units, lock, rotation, metrics, alert rules), change validation,
image gates on a real Debian root file system, per-host profiles from a hosts file, and the fleet merge.

Everything runs the way an operator runs it: the scripts in scripts/, the command the systemd unit
would start (parsed from the unit file, its variables expanded as systemd expands them), and the suite
in a subprocess. Hosts are snapshots (tests/data, tests/report_snapshots.py) except for the image gate,
which checks a real Debian 12 root made by debootstrap (cached under /var/tmp, see `debian_root`).
The Ansible inventory over real loopback sshd hosts is tested in tests/test_ssh.py.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import html.parser
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

import installed
import report_snapshots as snaps
from selftest import N_CHECKS
from postfix_compliance.results_file import inline_evidence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")
UNIT_DIR = os.path.join(REPO, "contrib", "systemd")
INSTALL_PREFIX = "/opt/postfix-compliance"  # where the unit expects the clone (docs/operations.md)
# A pipx install (docs/install.md): the drop-in runs the command from pipx's bin directory, in the state directory.
PIPX_DROPIN = os.path.join("postfix-compliance.service.d", "pipx.conf")
PIPX_BIN_DIR = "/usr/local/bin"
STATE_DIR = "/var/lib/postfix-compliance"
SET_NAME = re.compile(r"^\d{8}T\d{6}Z(-\d{2})?$")
LOCKED_EXIT = 75
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _env(**extra: str) -> dict[str, str]:
    """The scripts' environment: this Python (the one with the suite installed) as PFC_PYTHON."""
    return {**os.environ, "PFC_PYTHON": sys.executable, **extra}


def _run(args: list[str], timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("env", _env())
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=REPO, **kwargs)


def _sets(root: str) -> list[str]:
    return sorted(n for n in os.listdir(root) if SET_NAME.match(n))


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ERROR:")]


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (Debian package prometheus): cannot lint metrics and alert rules")
    return path


@pytest.fixture
def healthy(tmp_path) -> str:
    return snaps.make(str(tmp_path / "snaps"), "healthy")


# ====================================================================== systemd units
def _unit(name: str, *dropins: str) -> dict[str, list[str]]:
    """A unit file, then its drop-ins in order, as {"Section.Key": [values]}: repeated keys kept in order, an
    empty assignment (`ExecStart=`) clears what came before, as systemd reads them (for a setting that takes
    one value, the last one counts)."""
    parsed: dict[str, list[str]] = {}
    for path in (name, *dropins):
        section = ""
        with open(os.path.join(UNIT_DIR, path), encoding="utf-8") as handle:
            for raw in handle:
                line = raw.strip()
                if not line or line[0] in "#;":
                    continue
                if line.startswith("["):
                    section = line.strip("[]")
                    continue
                key, _, value = line.partition("=")
                values = parsed.setdefault(f"{section}.{key.strip()}", [])
                if value.strip():
                    values.append(value.strip())
                else:
                    values.clear()
    return parsed


def _environment_lines(values: list[str]) -> dict[str, str]:
    """Environment= values: whitespace-separated assignments, each may be quoted (systemd.exec)."""
    env: dict[str, str] = {}
    for value in values:
        for assignment in shlex.split(value):
            key, _, val = assignment.partition("=")
            env[key] = val
    return env


def _environment_file(path: str) -> dict[str, str]:
    """EnvironmentFile=: KEY=VALUE lines, # and ; comments; a quoted value is unquoted, an unquoted
    one keeps its interior whitespace (systemd.exec)."""
    env: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            key, _, value = line.partition("=")
            value = value.strip()
            if value[:1] in ("'", '"'):
                value = shlex.split(value)[0]
            env[key.strip()] = value
    return env


def _expand_exec(line: str, env: dict[str, str]) -> list[str]:
    """ExecStart= as systemd expands it: `${X}` stays one word, a word that is exactly `$X` becomes
    X's value split at whitespace (zero or more words); unset variables are empty."""
    words = []
    for word in shlex.split(line):
        bare = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if bare:
            words.extend(env.get(bare.group(1), "").split())
            continue
        words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
    return words


def _installed(text: str, paths: dict[str, str] | None = None) -> str:
    """The one change the install docs ask of a clone elsewhere: its path instead of /opt/... (or, for a pipx
    install, this test's places for pipx's bin directory and the state directory)."""
    for where, here in (paths or {INSTALL_PREFIX: REPO}).items():
        text = text.replace(where, here)
    return text


def test_units_pass_systemd_analyze_verify(tmp_path):
    service, timer = _unit("postfix-compliance.service"), _unit("postfix-compliance.timer")
    assert timer["Timer.Unit"] == ["postfix-compliance.service"]
    assert timer["Timer.Persistent"] == ["true"] and timer["Install.WantedBy"] == ["timers.target"]
    assert service["Service.Type"] == ["oneshot"]
    assert set(service["Service.SuccessExitStatus"][0].split()) == {"1", "2", str(LOCKED_EXIT)}
    assert service["Service.UMask"] == ["0077"]  # reports carry host evidence: not world-readable
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed: the units' syntax was only parsed, not verified")
    for name in ("postfix-compliance.service", "postfix-compliance.timer"):
        with open(os.path.join(UNIT_DIR, name), encoding="utf-8") as handle:
            (tmp_path / name).write_text(_installed(handle.read()))
    proc = subprocess.run([analyze, "verify", str(tmp_path / "postfix-compliance.timer"),
                           str(tmp_path / "postfix-compliance.service")], capture_output=True, text=True, timeout=120)
    complaints = [line for line in proc.stderr.splitlines() if "postfix-compliance" in line]
    assert proc.returncode == 0 and not complaints, proc.stderr
    calendar = subprocess.run([analyze, "calendar", timer["Timer.OnCalendar"][0]], capture_output=True,
                              text=True, timeout=120)
    assert calendar.returncode == 0, calendar.stderr


def _timer_command(env_file: str, *dropins: str, paths: dict[str, str] | None = None
                   ) -> tuple[list[str], dict[str, str], str]:
    """What postfix-compliance.service (with these drop-ins) starts: argv, environment and working directory."""
    service = _unit("postfix-compliance.service", *dropins)
    env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8"}  # systemd's clean environment for a system service
    env.update(_environment_lines(service["Service.Environment"]))
    [env_file_line] = service["Service.EnvironmentFile"]
    assert env_file_line == "-/etc/postfix-compliance/scheduled.env"  # what the docs install
    env.update(_environment_file(env_file))
    [exec_start] = service["Service.ExecStart"]
    argv = _expand_exec(_installed(exec_start, paths), env)
    workdir = service["Service.WorkingDirectory"][-1]
    return argv, env, _installed(workdir, paths)


def _site_env_file(tmp_path, **overrides: str) -> str:
    """The shipped example env file (contrib/systemd/postfix-compliance.env) with a site's values."""
    with open(os.path.join(UNIT_DIR, "postfix-compliance.env"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    out = []
    for line in lines:
        key = line.partition("=")[0]
        if key in overrides:
            value = overrides.pop(key)
            line = f'{key}="{value}"'
        out.append(line)
    out += [f'{k}="{v}"' for k, v in overrides.items()]
    path = tmp_path / "scheduled.env"
    path.write_text("\n".join(out) + "\n")
    return str(path)


def test_the_timers_command_runs_as_written(tmp_path, healthy):
    reports, metrics = tmp_path / "state" / "reports", tmp_path / "textfile" / "postfix_compliance.prom"
    env_file = _site_env_file(tmp_path, PFC_REPORTS=str(reports), PFC_METRICS=str(metrics),
                              PFC_SUITE_ARGS=f"--hosts=snapshot://{healthy} --no-flush",
                              PFC_PYTHON=sys.executable)
    argv, env, workdir = _timer_command(env_file)
    assert argv[0] == os.path.join(REPO, "scripts", "scheduled-run.sh")
    assert argv[argv.index("--") + 1:] == [f"--hosts=snapshot://{healthy}", "--no-flush"]
    umask = int(_unit("postfix-compliance.service")["Service.UMask"][0], 8)  # as systemd starts it
    proc = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [only] = _sets(str(reports))
    assert os.readlink(reports / "latest") == only
    latest = reports / "latest"
    for name in ("compliance.html", "results.json", "junit.xml", "metrics.prom", "pytest.log", "run.json"):
        assert (latest / name).is_file(), name
    run = json.loads((latest / "run.json").read_text())
    assert run["exit_status"] == 0 and run["suite_args"] == argv[argv.index("--") + 1:]
    results = json.loads((latest / "results.json").read_text())
    assert {r["host_name"] for r in results["results"]} == {"mail1.example.test"}
    text = metrics.read_text()
    assert text == (latest / "metrics.prom").read_text()
    assert "postfix_compliance_scheduled_run_exit_status 0" in text
    assert re.search(r'postfix_compliance_check_status\{host="mail1.example.test",.*check="SEL-001".*\} 1', text)
    assert oct(metrics.stat().st_mode & 0o777) == "0o644"  # node_exporter runs as another user
    for name in ("compliance.html", "results.json", "junit.xml", "pytest.log", "run.json"):  # host evidence
        assert (latest / name).stat().st_mode & 0o077 == 0, (name, oct((latest / name).stat().st_mode))
    assert (reports / only).stat().st_mode & 0o077 == 0


def test_the_units_own_defaults_check_this_host(tmp_path):
    """No site settings but the reports directory: the unit's defaults (`--hosts=local --no-flush`)."""
    reports = tmp_path / "reports"
    env_file = tmp_path / "scheduled.env"
    env_file.write_text(f"PFC_REPORTS={reports}\nPFC_PYTHON={sys.executable}\n")
    argv, env, workdir = _timer_command(str(env_file))
    assert argv[argv.index("--") + 1:] == ["--hosts=local", "--no-flush"]
    assert "--metrics=" in argv  # empty: metrics only in the report set
    proc = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True, timeout=180)
    success = {0, *map(int, _unit("postfix-compliance.service")["Service.SuccessExitStatus"][0].split())}
    assert proc.returncode in success, proc.stdout + proc.stderr
    results = inline_evidence(json.loads((reports / "latest" / "results.json").read_text()))
    assert {r["host"] for r in results["results"]} == {"local"}
    assert not any(r["evidence"] and any(e["command"] == "postqueue -f" for e in r["evidence"])
                   for r in results["results"])  # --no-flush: scheduled runs never flush


def test_the_timers_command_runs_from_a_pipx_install(tmp_path, tmp_path_factory, healthy):
    """The unit with the pipx drop-in (contrib/systemd/postfix-compliance.service.d/pipx.conf) starts the
    pipx-installed `postfix-compliance-scheduled-run` (pipx's bin directory here stands for /usr/local/bin) in the
    state directory, with the unit's own arguments: it runs the installed suite, not this clone's."""
    app = installed.pipx_install(tmp_path_factory)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)  # systemd makes the StateDirectory, root's alone
    reports, metrics = state / "reports", tmp_path / "textfile" / "postfix_compliance.prom"
    env_file = _site_env_file(tmp_path, PFC_REPORTS=str(reports), PFC_METRICS=str(metrics),
                              PFC_SUITE_ARGS=f"--hosts=snapshot://{healthy} --no-flush",
                              PFC_PYTHON="/opt/postfix-compliance/.venv/bin/python")  # a clone's, gone: not used
    paths = {PIPX_BIN_DIR: str(app.bin_dir), STATE_DIR: str(state)}
    argv, env, workdir = _timer_command(env_file, PIPX_DROPIN, paths=paths)
    assert argv[0] == app.command("postfix-compliance-scheduled-run") and workdir == str(state)
    assert argv[1:] == _timer_command(env_file)[0][1:]  # the clone's unit's arguments, the same
    assert _unit("postfix-compliance.service", PIPX_DROPIN)["Service.StateDirectory"] == ["postfix-compliance"]
    analyze = shutil.which("systemd-analyze")
    if analyze:  # the unit with its drop-in as systemd loads them (the command must exist: pipx's)
        units = tmp_path / "units"
        (units / "postfix-compliance.service.d").mkdir(parents=True)
        for name in ("postfix-compliance.service", "postfix-compliance.timer", PIPX_DROPIN):
            with open(os.path.join(UNIT_DIR, name), encoding="utf-8") as handle:
                (units / name).write_text(_installed(_installed(handle.read()), paths))
        proc = subprocess.run([analyze, "verify", str(units / "postfix-compliance.timer"),
                               str(units / "postfix-compliance.service")], capture_output=True, text=True, timeout=120)
        complaints = [line for line in proc.stderr.splitlines() if "postfix-compliance" in line]
        assert proc.returncode == 0 and not complaints, proc.stderr
    umask = int(_unit("postfix-compliance.service", PIPX_DROPIN)["Service.UMask"][0], 8)
    proc = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [only] = _sets(str(reports))
    latest = reports / "latest"
    assert os.readlink(latest) == only
    for name in ("compliance.html", "results.json", "junit.xml", "metrics.prom", "pytest.log", "run.json"):
        assert (latest / name).is_file(), name
        assert (latest / name).stat().st_mode & 0o077 == 0, name
    assert (reports / "history.html").is_file()
    results = json.loads((latest / "results.json").read_text())
    assert {r["host_name"] for r in results["results"]} == {"mail1.example.test"}
    assert f"rootdir: {app.site_packages() / 'postfix_compliance'}" in (latest / "pytest.log").read_text()
    assert "postfix_compliance_scheduled_run_exit_status 0" in metrics.read_text()
    assert oct(metrics.stat().st_mode & 0o777) == "0o644"
    assert sorted(os.listdir(state)) == ["reports"]  # the state directory holds the reports, nothing else


# ====================================================================== lock, rotation, latest
def _gated_python(tmp_path) -> tuple[str, str]:
    """A PFC_PYTHON that, for the suite's run, waits for a `go` file before it becomes the real Python, and leaves a
    long-lived child behind (as an ssh ControlPersist master would): the run holds the lock meanwhile."""
    gate = tmp_path / "gate"
    gate.mkdir()
    wrapper = gate / "python"
    wrapper.write_text(f"""#!/bin/sh
case "$*" in *"-m pytest"*)  # the suite's run; the script's own checks before the lock go through
  if [ ! -e {gate}/child.pid ]; then
    sleep 120 </dev/null >/dev/null 2>&1 &
    echo $! > {gate}/child.pid
  fi
  touch {gate}/started
  while [ ! -e {gate}/go ]; do sleep 0.05; done ;;
esac
exec {sys.executable} "$@"
""")
    wrapper.chmod(0o755)
    return str(wrapper), str(gate)


def _wait_for(predicate, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_second_run_never_overlaps_a_running_one(tmp_path, healthy):
    reports = str(tmp_path / "reports")
    wrapper, gate = _gated_python(tmp_path)
    run = [os.path.join(SCRIPTS, "scheduled-run.sh"), f"--reports-root={reports}", "--",
           f"--hosts=snapshot://{healthy}", "--no-flush"]
    first = subprocess.Popen(run, env=_env(PFC_PYTHON=wrapper), cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    child_pid = None
    try:
        assert _wait_for(lambda: os.path.exists(os.path.join(gate, "started"))), "the first run did not start"
        holder = open(os.path.join(reports, ".scheduled-run.lock")).read()
        assert f"pid {first.pid} " in holder

        # The second run: refused at once, with who holds the lock, and its own exit status.
        started = time.monotonic()
        second = _run(run, timeout=30)
        assert second.returncode == LOCKED_EXIT, second.stderr
        assert time.monotonic() - started < 10
        assert "another run is still running" in second.stderr and f"pid {first.pid} " in second.stderr
        assert len(_sets(reports)) == 1  # it made no report set

        # A third one that may wait: it waits for the first, then runs.
        third = subprocess.Popen([run[0], "--wait=60", *run[1:]], env=_env(), cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        assert third.poll() is None, "the waiting run started while the first held the lock"
        open(os.path.join(gate, "go"), "w").close()
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, out + err
        child_pid = int(open(os.path.join(gate, "child.pid")).read())
        os.kill(child_pid, 0)  # the first run's long-lived child is still there...
        out3, err3 = third.communicate(timeout=120)
        assert third.returncode == 0, out3 + err3  # ...and did not keep the lock
        first_set, third_set = _sets(reports)
        assert os.readlink(os.path.join(reports, "latest")) == third_set
        assert "changes since baseline" in open(os.path.join(reports, third_set, "pytest.log")).read()
    finally:
        for proc in (first,):
            if proc.poll() is None:
                proc.kill()
        if child_pid is None and os.path.exists(os.path.join(gate, "child.pid")):
            child_pid = int(open(os.path.join(gate, "child.pid")).read())
        if child_pid is not None:
            try:
                os.kill(child_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def test_rotation_keeps_n_sets_and_latest_names_the_newest(tmp_path, healthy):
    reports = str(tmp_path / "reports")
    metrics = str(tmp_path / "textfile" / "pfc.prom")
    base = [os.path.join(SCRIPTS, "scheduled-run.sh"), f"--reports-root={reports}", "--keep=2",
            f"--metrics={metrics}", "--"]
    made = []
    for _ in range(3):
        proc = _run([*base, f"--hosts=snapshot://{healthy}", "--no-flush"])
        assert proc.returncode == 0, proc.stderr
        made.append(os.readlink(os.path.join(reports, "latest")))
    assert len(set(made)) == 3  # distinct sets, even within one second
    assert _sets(reports) == sorted(made)[-2:] == made[-2:]
    assert "removed old report set" in proc.stderr
    # Each run's history spans the sets kept when it ran (rotation comes after): here all three.
    history = json.load(open(os.path.join(reports, "history.json")))
    assert [os.path.basename(os.path.dirname(r["path"])) for r in history["runs"]] == sorted(made)
    assert os.path.isfile(os.path.join(reports, "history.html"))
    assert "postfix_compliance_history_runs 3" in open(metrics).read()

    # Runs that judge nothing (bad input: exit 4) keep their set for the log but never move latest,
    # and rotation never removes the set latest names, however many of them follow.
    good = made[-1]
    for _ in range(2):
        bad = _run([*base, f"--hosts=snapshot://{tmp_path}/missing.json"])
        assert bad.returncode == 4
        assert "wrote no results (exit 4): latest stays at " + good in bad.stderr
    assert os.readlink(os.path.join(reports, "latest")) == good
    remaining = _sets(reports)
    assert good in remaining and len(remaining) == 3  # 2 newest + the one latest names
    newest = remaining[-1]
    assert "no such file" in open(os.path.join(reports, newest, "pytest.log")).read()
    text = open(metrics).read()
    assert "postfix_compliance_scheduled_run_exit_status 4" in text
    assert "postfix_compliance_check_status" not in text  # no results, no check series
    if shutil.which("promtool"):  # the linter, where installed (Debian package prometheus)
        proc = subprocess.run(["promtool", "check", "metrics"], input=open(
            os.path.join(reports, good, "metrics.prom")).read(), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("args, expected", [
    (["--keep=0"], "--keep must be a whole number"),
    (["--wait=soon"], "--wait must be a number of seconds"),
    (["--hosts-file=/nonexistent/hosts"], "hosts file /nonexistent/hosts: no such readable file"),
    (["--python=/nonexistent/python"], "no Python at /nonexistent/python"),
])
def test_scheduled_run_bad_input_is_one_line(tmp_path, args, expected):
    proc = _run([os.path.join(SCRIPTS, "scheduled-run.sh"), f"--reports-root={tmp_path}", *args])
    errors = _errors(proc.stderr)
    assert proc.returncode == 4 and len(errors) == 1 and errors[0].startswith("ERROR: scheduled-run: ")
    assert expected in proc.stderr and "Traceback" not in proc.stderr


def test_empty_hosts_file_is_refused(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("# nothing here yet\n\n   \n")
    proc = _run([os.path.join(SCRIPTS, "scheduled-run.sh"), f"--reports-root={tmp_path}", f"--hosts-file={hosts}"])
    assert proc.returncode == 4 and len(_errors(proc.stderr)) == 1 and "no hosts in it" in proc.stderr
    assert not _sets(str(tmp_path))


# ====================================================================== inventories: hosts file, profiles
def _os_release(os_id: str, version: str, name: str) -> str:
    return f'NAME="{name}"\nVERSION="{version}"\nID="{os_id}"\nID_LIKE="fedora"\nVERSION_ID="{version}"\n'


def test_hosts_file_hosts_each_get_their_own_profile(tmp_path):
    """A RHEL 8 and a RHEL 9 host in one run are judged against their own profiles (detected from
    /etc/os-release), listed in a plain hosts file for the scheduled run."""
    def rhel(version):
        def change(doc):
            snaps.set_output(doc, "os_release", _os_release("rhel", version, "Red Hat Enterprise Linux"))
        return change
    el8 = snaps.make(str(tmp_path), "el8", rhel("8.10"), host="mail-el8.example.test")
    el9 = snaps.make(str(tmp_path), "el9", rhel("9.4"), host="mail-el9.example.test")
    hosts = tmp_path / "hosts"
    hosts.write_text(f"# mail relays\nsnapshot://{el8}\n\n  snapshot://{el9}   # the new one\n")
    reports = tmp_path / "reports"
    proc = _run([os.path.join(SCRIPTS, "scheduled-run.sh"), f"--reports-root={reports}", f"--hosts-file={hosts}",
                 "--", "--no-flush"])
    assert proc.returncode in (0, 1, 2), proc.stderr
    results = json.loads((reports / "latest" / "results.json").read_text())["results"]
    profiles = {(r["host_name"], r["profile"]) for r in results}
    assert profiles == {("mail-el8.example.test", "rhel8"), ("mail-el9.example.test", "rhel9")}


# ====================================================================== change validation
def _has_baseline() -> bool:
    import importlib.util
    return importlib.util.find_spec("postfix_compliance.baseline") is not None


def _change(tmp_path, phase: str, *args: str, name: str = "CHG-1") -> subprocess.CompletedProcess:
    return _run([os.path.join(SCRIPTS, "change-validate.sh"), phase, f"--name={name}",
                 f"--reports-root={tmp_path / 'reports'}", *args])


@pytest.mark.skipif(not _has_baseline(), reason="the suite has no --baseline option yet (report/baseline.py)")
@pytest.mark.parametrize("before, after, expected, says", [
    ((), (snaps.spool_mislabelled,), 1, ["REGRESSION LBL-002 on mail1.example.test: pass -> fail",
                                         "NEW AVC DENIAL on mail1.example.test: qmgr denied {search}"]),
    ((snaps.spool_mislabelled,), (), 0, ["fixed LBL-002 on mail1.example.test: fail -> pass", "-> exit 0"]),
    # Broken before and just as broken after: the suite says 1, but the change made nothing worse.
    ((snaps.permissive,), (snaps.permissive,), 0, ["0 regressions", "(suite exit 1) -> exit 0"]),
    ((snaps.permissive,), (snaps.permissive, snaps.spool_mislabelled), 1, ["REGRESSION LBL-002"]),
], ids=["healthy-to-broken", "broken-to-fixed", "still-broken-no-worse", "broken-then-worse"])
def test_pre_post_change_validation(tmp_path, before, after, expected, says):
    host = tmp_path / "host.json"  # the same host URL before and after, as on a real host
    shutil.copy(snaps.make(str(tmp_path / "s"), "before", *before), host)
    pre = _change(tmp_path, "pre", "--", f"--hosts=snapshot://{host}", "--no-flush")
    assert pre.returncode == 0, pre.stderr
    assert (tmp_path / "reports" / "change" / "CHG-1" / "pre" / "results.json").is_file()
    shutil.copy(snaps.make(str(tmp_path / "s"), "after", *after), host)
    post = _change(tmp_path, "post")  # the pre run's arguments, kept
    assert post.returncode == expected, post.stderr
    for text in says:
        assert text in post.stderr, post.stderr
    post_dir = tmp_path / "reports" / "change" / "CHG-1" / "post"
    assert (post_dir / "compliance.html").is_file()
    assert "changes" in json.loads((post_dir / "results.json").read_text())


@pytest.mark.skipif(not _has_baseline(), reason="the suite has no --baseline option yet (report/baseline.py)")
def test_a_host_not_judged_after_the_change_is_not_a_pass(tmp_path, healthy):
    pre = _change(tmp_path, "pre", "--", f"--hosts=snapshot://{healthy}", "--no-flush")
    assert pre.returncode == 0, pre.stderr
    other = snaps.make(str(tmp_path / "s"), "other", host="mail2.example.test")
    post = _change(tmp_path, "post", "--", f"--hosts=snapshot://{other}", "--no-flush")
    assert post.returncode == 1, post.stderr
    assert "HOST NOT JUDGED after the change: mail1.example.test" in post.stderr


def test_change_validation_bad_input(tmp_path):
    post = _change(tmp_path, "post", name="never-pre")
    assert post.returncode == 4 and len(_errors(post.stderr)) == 1
    assert "no baseline for change 'never-pre'" in post.stderr
    for args, expected in ((["pre", "--name=../x"], "--name '../x'"), (["sideways"], "first say pre or post"),
                           (["pre", "--", "--baseline=x.json"], "sets the report directory and the baseline")):
        proc = _run([os.path.join(SCRIPTS, "change-validate.sh"), *args])
        assert proc.returncode == 4 and len(_errors(proc.stderr)) == 1 and expected in proc.stderr, proc.stderr
    pre = _change(tmp_path, "pre", "--", "--hosts=snapshot:///nonexistent.json")
    assert pre.returncode == 4 and not (tmp_path / "reports" / "change" / "CHG-1" / "args").exists()


def test_change_validation_trusts_no_directory_another_user_can_write(tmp_path, healthy):
    """post replays the arguments saved in the change directory, as root: a reports root others can write,
    or a change directory that is not the running user's, is refused in one line before anything runs."""
    shared = tmp_path / "reports"
    shared.mkdir()
    shared.chmod(0o777)
    pre = _change(tmp_path, "pre", "--", f"--hosts=snapshot://{healthy}", "--no-flush")
    assert pre.returncode == 4 and len(_errors(pre.stderr)) == 1, pre.stderr
    assert "is writable by group or others (mode 0777)" in pre.stderr and os.listdir(shared) == []

    shared.chmod(0o755)
    pre = _change(tmp_path, "pre", "--", f"--hosts=snapshot://{healthy}", "--no-flush")
    assert pre.returncode == 0, pre.stderr
    change_dir = shared / "change" / "CHG-1"
    assert oct(change_dir.stat().st_mode & 0o777) == "0o700"
    if os.geteuid() != 0:
        return
    # Another local user who owns the change directory rewrites what post would replay (an ssh_config with a
    # ProxyCommand runs a command as root): post refuses to read it.
    os.chown(change_dir, 65534, 65534)
    ran = tmp_path / "proxycommand-ran"
    config = tmp_path / "evil_ssh_config"
    config.write_text(f"Host *\n  ProxyCommand touch {ran}\n")
    (change_dir / "args").write_bytes(f"--hosts=ssh://root@127.0.0.1\0--ssh-config={config}\0".encode())
    post = _change(tmp_path, "post")
    assert post.returncode == 4 and len(_errors(post.stderr)) == 1, post.stderr
    assert "belongs to nobody, not to root" in post.stderr
    assert not ran.exists() and not (change_dir / "post").exists()


def test_scheduled_run_trusts_no_shared_root_and_never_reuses_a_set_directory(tmp_path, healthy):
    """A reports root others can write is refused; a report set is always a directory the run made
    (one planted at the run's name, with pytest.log a symlink, is never written into)."""
    reports = tmp_path / "reports"
    reports.mkdir()
    reports.chmod(0o1777)  # sticky, like /tmp: others still add names
    run = [os.path.join(SCRIPTS, "scheduled-run.sh"), f"--reports-root={reports}", "--",
           f"--hosts=snapshot://{healthy}", "--no-flush"]
    proc = _run(run)
    assert proc.returncode == 4 and len(_errors(proc.stderr)) == 1, proc.stderr
    assert "is writable by group or others" in proc.stderr and os.listdir(reports) == []

    reports.chmod(0o755)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    now = int(time.time())
    for second in range(now, now + 8):  # every name the run may choose in the next seconds
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        for name in [stamp] + [f"{stamp}-{n:02d}" for n in range(1, 100)]:
            os.mkdir(reports / name)
            os.symlink(victim, reports / name / "pytest.log")
    proc = _run(run)
    assert proc.returncode == 4 and len(_errors(proc.stderr)) == 1, proc.stderr
    assert "cannot create a report set" in proc.stderr
    assert victim.read_text() == "precious\n"


def test_the_scripts_import_nothing_from_the_directory_they_start_in(tmp_path, healthy):
    """Root's shell in /tmp, where anyone can make a postfix_compliance/ package: the scripts' own Python steps
    (the directory checks, the atomic writes, the history, reading the previous results) never import it
    (PYTHONSAFEPATH, scripts/lib/suite.sh), in a clone as from an installed package (tests/test_distribution.py)."""
    cwd, ran, reports = tmp_path / "shared", tmp_path / "planted-module-ran", tmp_path / "reports"
    (cwd / "postfix_compliance").mkdir(parents=True)
    (cwd / "postfix_compliance" / "__init__.py").write_text(f"open({str(ran)!r}, 'w').close()\n")
    hosts = [f"--hosts=snapshot://{healthy}", "--no-flush"]
    scheduled = [os.path.join(SCRIPTS, "scheduled-run.sh"), f"--reports-root={reports}", "--", *hosts]
    change = [os.path.join(SCRIPTS, "change-validate.sh"), "pre", f"--reports-root={reports}", "--", *hosts]
    for argv in (scheduled, scheduled, change):  # the second scheduled run reads the first one's results
        proc = subprocess.run(argv, env=_env(), cwd=cwd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and "not readable" not in proc.stderr, proc.stderr[-3000:]
        assert not ran.exists(), argv
    assert len(_sets(str(reports))) == 2 and (reports / "history.html").is_file()


# ====================================================================== image gate on a real root
ROOTFS_CACHE = "/var/tmp/postfix-compliance-test-rootfs"
ROOTFS_SUITE = "bookworm"
ROOTFS_PACKAGES = ("postfix", "selinux-utils", "policycoreutils", "policycoreutils-python-utils",
                   "selinux-policy-default")


def _debian_mirror() -> str:
    for path in glob.glob("/etc/apt/sources.list.d/*.sources") + ["/etc/apt/sources.list"]:
        try:
            text = open(path, encoding="utf-8").read()
        except OSError:
            continue
        match = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s+bookworm", text, re.M)
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


def _rootfs_key(mirror: str) -> str:
    return hashlib.sha256(json.dumps([ROOTFS_SUITE, ROOTFS_PACKAGES, mirror, "minbase", 1]).encode()).hexdigest()[:16]


@pytest.fixture(scope="session")
def debian_root() -> str:
    """A real Debian 12 root with Postfix and the SELinux userland and policy, made by debootstrap
    (minbase) once and kept in /var/tmp, keyed by what went into it: ~2 min the first time on this
    machine, nothing after. Never modified: tests work on hard-linked copies."""
    if os.geteuid() != 0:
        pytest.skip("the image gate's chroot needs root")
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        pytest.skip("debootstrap not installed (scripts/bootstrap.sh --dev installs it): cannot build the image root")
    mirror = _debian_mirror()
    key = _rootfs_key(mirror)
    root = os.path.join(ROOTFS_CACHE, key)
    os.makedirs(ROOTFS_CACHE, exist_ok=True)
    with open(os.path.join(ROOTFS_CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(root, ".complete")):
            building = f"{root}.building"
            shutil.rmtree(building, ignore_errors=True)
            shutil.rmtree(root, ignore_errors=True)
            log = os.path.join(ROOTFS_CACHE, f"{key}.log")
            with open(log, "w") as out:
                proc = subprocess.run([debootstrap, "--variant=minbase", "--include=" + ",".join(ROOTFS_PACKAGES),
                                       ROOTFS_SUITE, building, mirror], stdout=out, stderr=subprocess.STDOUT,
                                      timeout=900)
            assert proc.returncode == 0, f"debootstrap failed (exit {proc.returncode}): see {log}"
            os.rename(building, root)
            open(os.path.join(root, ".complete"), "w").close()
        finished = os.path.join(root, ".finished-1")
        if not os.path.exists(finished):
            # What Postfix's first start does on Debian: create the queue directories its package
            # leaves out (hold/, trace/). An RPM-built image ships them; a gate must not create them.
            subprocess.run(["chroot", root, "/bin/sh", "-c", "postfix check"], check=True,
                           capture_output=True, timeout=120)
            open(finished, "w").close()
    return root


def _copy_root(root: str, dest) -> str:
    """A copy to change: hard links (instant); a file to change is replaced, never written in place."""
    subprocess.run(["cp", "-al", root, str(dest)], check=True, timeout=120)
    return str(dest)


def _replace_file(path: str, text: str) -> None:
    os.unlink(path)  # breaks the hard link: the cached root keeps its own file
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _gate(root: str, report_dir, **env: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = _run([os.path.join(SCRIPTS, "image-gate.sh"), f"--chroot={root}", f"--report-dir={report_dir}"],
                env=_env(**env))
    results = inline_evidence(json.load(open(os.path.join(str(report_dir), "results.json"))))
    return proc, results


def _static_probe_names() -> set[str]:
    from postfix_compliance.facts.probes import build_probes
    return {p.name for p in build_probes() if p.static}


@pytest.fixture(scope="module")
def pristine_gate(debian_root, tmp_path_factory):
    """The gate on the image root as debootstrap left it: (a copy of the root, the gate, its results, seconds)."""
    tmp = tmp_path_factory.mktemp("gate")
    root = _copy_root(debian_root, tmp / "mail-image")
    started = time.monotonic()
    proc, results = _gate(root, tmp / "gate1")
    return root, proc, results, time.monotonic() - started


def test_image_gate_judges_a_debian_root_without_booting_it(tmp_path, debian_root, pristine_gate):
    root, proc, results, took = pristine_gate
    outcomes = {r["check_id"]: r["outcome"] for r in results["results"]}
    # Debian's policy package installs SELINUX=permissive: the image fails the gate on it.
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert outcomes["SEL-002"] == "fail"
    assert "SELINUX=permissive" in next(r["message"] for r in results["results"] if r["check_id"] == "SEL-002")
    assert outcomes["SEL-003"] == "pass"  # SELINUXTYPE=default, Debian's policy
    assert outcomes["SVC-005"] == "not_applicable"  # `postfix check` writes: never run by a static gate
    assert {r["host"] for r in results["results"]} == {"image://mail-image"}
    assert {r["profile"] for r in results["results"]} == {"debian12"}  # from the image's os-release
    # Only static checks, and only static probes ran: nothing that needs a running system.
    from postfix_compliance.catalog_doc import load_checks
    catalog = load_checks()
    assert set(outcomes) == {cid for cid, meta in catalog.items() if meta.static}, outcomes
    ran = {e["probe"] for r in results["results"] for e in r["evidence"]}
    assert ran and ran <= _static_probe_names(), ran - _static_probe_names()
    assert os.path.isfile(os.path.join(os.path.dirname(root), "gate1", "LIMITS.txt"))
    assert took < 60

    # The image is fixed the way its build would be: the gate passes on the same root.
    config = os.path.join(root, "etc", "selinux", "config")
    _replace_file(config, open(config).read().replace("SELINUX=permissive", "SELINUX=enforcing"))
    proc, results = _gate(root, tmp_path / "gate2")
    outcomes = {r["check_id"]: r["outcome"] for r in results["results"]}
    assert outcomes["SEL-002"] == "pass" and proc.returncode == 0, (outcomes, proc.stderr)
    assert "SELINUX=permissive" in open(os.path.join(debian_root, "etc", "selinux", "config")).read()


def test_image_gate_judges_the_policy_store(pristine_gate):
    _, _, results, _ = pristine_gate
    outcomes = {r["check_id"]: r["outcome"] for r in results["results"]}
    assert {outcomes[c] for c in ("BOOL-002", "MOD-001", "SEL-005")} == {"pass"}, outcomes


def test_the_pipx_installed_image_gate_judges_as_the_clones_does(tmp_path, tmp_path_factory, debian_root,
                                                                  pristine_gate):
    """`postfix-compliance-image-gate` from a pipx install (docs/install.md), started in this clone: the installed
    suite's static checks, the clone's verdicts and messages on the same root, and nothing imported from here."""
    app = installed.pipx_install(tmp_path_factory)
    root = _copy_root(debian_root, tmp_path / "mail-image")
    proc = _run([app.command("postfix-compliance-image-gate"), f"--chroot={root}", f"--report-dir={tmp_path / 'r'}"],
                env=installed.clean_env())
    _, clone_proc, clone_results, _ = pristine_gate

    def verdicts(doc):
        return {(r["host"], r["check_id"], r["outcome"], r["message"]) for r in doc["results"]}

    results = inline_evidence(json.load(open(tmp_path / "r" / "results.json")))
    assert proc.returncode == clone_proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert verdicts(results) == verdicts(clone_results)
    assert f"rootdir: {app.site_packages() / 'postfix_compliance'}" in proc.stdout
    assert (tmp_path / "r" / "LIMITS.txt").is_file()


def test_image_gate_never_changes_the_image(tmp_path, debian_root):
    """`postfix check` creates missing queue directories (postfix(1)): a static run never runs it, and the
    gate's sandbox sees the root read-only as well, so a root without them stays without them."""
    root = _copy_root(debian_root, tmp_path / "unfinished")
    hold = os.path.join(root, "var", "spool", "postfix", "hold")
    os.rmdir(hold)  # a directory of the copy (cp -al copies directories)
    before = subprocess.run(["find", root, "-newer", os.path.join(root, ".complete")], capture_output=True,
                            text=True, timeout=120).stdout
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    _, results = _gate(root, tmp_path / "gate", TMPDIR=str(scratch))
    assert not os.path.exists(hold)
    after = subprocess.run(["find", root, "-newer", os.path.join(root, ".complete")], capture_output=True,
                           text=True, timeout=120).stdout
    assert after == before
    svc5 = next(r for r in results["results"] if r["check_id"] == "SVC-005")
    assert svc5["outcome"] == "not_applicable" and "read-only" in svc5["message"], svc5["message"]
    assert os.listdir(scratch) == []  # its scratch directory is gone


def test_an_image_root_that_cannot_be_read_says_why_once_with_its_evidence(tmp_path, debian_root):
    """A root without /dev (so no /dev/null for the shell's redirections): the host cannot be judged, and every
    check says the real cause, the shell's own words, with the probe's evidence kept."""
    root = _copy_root(debian_root, tmp_path / "no-dev")
    shutil.rmtree(os.path.join(root, "dev"))
    proc, results = _gate(root, tmp_path / "gate")
    assert proc.returncode == 2, proc.stderr
    messages = {r["message"] for r in results["results"]}
    assert len(messages) == 1 and {r["outcome"] for r in results["results"]} == {"error"}
    [message] = messages
    assert "no readable /etc/os-release: `cat /etc/os-release` exited 2: " in message
    assert "cannot open /dev/null" in message
    evidence = [e for r in results["results"] for e in r["evidence"]]
    assert evidence and {e["probe"] for e in evidence} == {"os_release"}
    assert "cannot open /dev/null" in evidence[0]["stderr"]


def test_image_gate_runs_nothing_of_the_image_with_privilege(tmp_path, debian_root):
    """A hostile image whose /bin/sh leaves a chroot (chroot twice), remounts the image read-write and
    prints the job's environment: it writes nothing on this machine or in the image, and sees no secret.
    (testinfra's chroot backend, which the gate used, ran it as root: it wrote the marker as uid 0.)"""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed (scripts/bootstrap.sh --dev installs it): cannot build the hostile shell")
    root = _copy_root(debian_root, tmp_path / "hostile-image")
    marker = tmp_path / "escaped"
    shell = os.path.join(root, "usr", "bin", "sh")
    os.unlink(shell)  # a symlink to dash in the copy
    subprocess.run([gcc, "-static", "-O2", f'-DMARKER="{marker}"', "-o", shell,
                    os.path.join(REPO, "tests", "data", "hostile", "image_sh.c")], check=True, timeout=120)
    before = subprocess.run(["find", root, "-newer", shell], capture_output=True, text=True, timeout=120).stdout
    proc, results = _gate(root, tmp_path / "gate", PFC_TEST_CI_SECRET="s3cr3t-token-value")
    assert not marker.exists(), marker.read_text()
    after = subprocess.run(["find", root, "-newer", shell], capture_output=True, text=True, timeout=120).stdout
    assert after == before and not os.path.exists(os.path.join(root, "etc", "hostile-was-here"))
    reports = "".join(open(os.path.join(d, f), errors="replace").read()
                      for d, _, files in os.walk(tmp_path / "gate") for f in files)
    assert "s3cr3t-token-value" not in reports
    # The shell did run, in the sandbox: its attempts are in the evidence, and the gate judged the image.
    stderr = "".join(e["stderr"] for r in results["results"] for e in r["evidence"])
    assert "hostile:" not in stderr
    assert {r["outcome"] for r in results["results"] if r["check_id"] in ("SEL-002", "SEL-003")} == {"fail", "pass"}
    assert proc.returncode == 1, proc.stderr


@pytest.fixture(scope="module")
def podman_image(debian_root) -> str:
    """The cached Debian root as a podman image (`podman import`, once), or a skip saying why not."""
    podman = shutil.which("podman")
    if podman is None:
        pytest.skip("podman not installed: the --image form is not tested here")
    image = f"localhost/postfix-compliance-test-rootfs:{os.path.basename(debian_root)}"
    if subprocess.run([podman, "image", "exists", image], timeout=120).returncode != 0:
        tar = subprocess.Popen(["tar", "-C", debian_root, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([podman, "import", "-", image], stdin=tar.stdout, capture_output=True,
                                  text=True, timeout=600)
        tar.wait(60)
        assert imported.returncode == 0, imported.stderr
    mount = subprocess.run([podman, "image", "mount", image], capture_output=True, text=True, timeout=120)
    if mount.returncode != 0:
        pytest.skip(f"podman cannot mount images here: {mount.stderr.strip()}")
    subprocess.run([podman, "image", "unmount", image], capture_output=True, timeout=120)
    return image


def test_image_gate_on_a_podman_image(tmp_path, podman_image, pristine_gate):
    """The same root as a podman image: mounted read-only, never run; the same verdicts."""
    proc = _run([os.path.join(SCRIPTS, "image-gate.sh"), f"--image={podman_image}", f"--report-dir={tmp_path}"])
    results = json.load(open(tmp_path / "results.json"))
    outcomes = {r["check_id"]: r["outcome"] for r in results["results"]}
    _, chroot_proc, chroot_results, _ = pristine_gate
    assert outcomes == {r["check_id"]: r["outcome"] for r in chroot_results["results"]}
    assert proc.returncode == chroot_proc.returncode == 1
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", podman_image)
    assert {r["host"] for r in results["results"]} == {f"image://{safe}"}
    mounted = subprocess.run(["podman", "image", "mount"], capture_output=True, text=True, timeout=120).stdout
    assert podman_image not in mounted  # unmounted again


def test_the_github_gate_step_runs_as_written(tmp_path, podman_image):
    """The example workflow's gate step, run by bash with the variables Actions would set (the image
    as if its build step had made it; we are root already, so sudo is a no-op wrapper here)."""
    workflow = yaml.safe_load(open(os.path.join(REPO, "contrib", "ci", "image-gate.github-workflow.yml")))
    [step] = [s for s in workflow["jobs"]["image-gate"]["steps"] if "image-gate.sh" in s.get("run", "")]
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    os.symlink(REPO, runner_temp / "pfc")  # what the install step's clone would be
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    (bin_dir / "sudo").chmod(0o755)
    env = _env(RUNNER_TEMP=str(runner_temp), GITHUB_WORKSPACE=str(tmp_path / "ws"), IMAGE=podman_image,
               PATH=f"{bin_dir}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # Debian's SELINUX=permissive: the job fails...
    [keep] = [s for s in workflow["jobs"]["image-gate"]["steps"] if "upload-artifact" in str(s.get("uses"))]
    kept = tmp_path / "ws" / keep["with"]["path"]
    assert (kept / "compliance.html").is_file() and (kept / "junit.xml").is_file()  # ...and keeps its report


def test_image_gate_bad_input(tmp_path):
    for args, expected in ((["--chroot=/nonexistent"], "no such directory"),
                           ([f"--chroot={tmp_path}"], "no /bin/sh in it"),
                           ([], "name the image"),
                           (["--chroot=/", "--", "-m", "runtime"], "the gate sets -m static")):
        proc = _run([os.path.join(SCRIPTS, "image-gate.sh"), *args])
        assert proc.returncode == 4 and len(_errors(proc.stderr)) == 1 and expected in proc.stderr, proc.stderr


def test_ci_examples_gate_on_the_exit_status_and_keep_the_report():
    github = yaml.safe_load(open(os.path.join(REPO, "contrib", "ci", "image-gate.github-workflow.yml")))
    steps = github["jobs"]["image-gate"]["steps"]
    gate = [s for s in steps if "image-gate.sh" in s.get("run", "")]
    assert len(gate) == 1 and "continue-on-error" not in gate[0] and "|| true" not in gate[0]["run"]
    keep = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert len(keep) == 1 and keep[0]["if"] == "always()" and "reports/image-gate" in keep[0]["with"]["path"]
    assert steps.index(keep[0]) > steps.index(gate[0])
    gitlab = yaml.safe_load(open(os.path.join(REPO, "contrib", "ci", "image-gate.gitlab-ci.yml")))
    job = gitlab["image-gate"]
    assert any("image-gate.sh" in line and "|| true" not in line for line in job["script"])
    assert "allow_failure" not in job and job["artifacts"]["when"] == "always"
    assert "reports/image-gate/" in job["artifacts"]["paths"]


# ====================================================================== alert rules
def test_alert_rules_fire_on_the_metrics_a_broken_run_writes(tmp_path):
    """promtool runs the alert rules on the series of a real metrics file: a scheduled run that found
    a host broken since the previous run (a mislabelled queue directory and qmgr's AVC denial)."""
    promtool = _promtool()
    rules = os.path.join(REPO, "contrib", "alerts", "postfix-compliance.rules.yml")
    check = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    reports, host = tmp_path / "reports", tmp_path / "host.json"
    run = [os.path.join(SCRIPTS, "scheduled-run.sh"), f"--reports-root={reports}", "--",
           f"--hosts=snapshot://{host}", "--no-flush"]
    shutil.copy(snaps.make(str(tmp_path / "s"), "healthy"), host)
    assert _run(run).returncode == 0
    shutil.copy(snaps.make(str(tmp_path / "s"), "broken", snaps.spool_mislabelled), host)
    assert _run(run).returncode == 1
    scrape = {"instance": "controller1:9100", "job": "node"}  # what node_exporter's scrape adds

    def scraped(name_labels):
        name, _, labels = name_labels.partition("{")
        added = ",".join(f'{k}="{v}"' for k, v in scrape.items())
        return f"{name}{{{added}{',' + labels[:-1] if labels else ''}}}"

    series = []
    for line in (reports / "latest" / "metrics.prom").read_text().splitlines():
        if line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            series.append({"series": scraped(name_labels), "values": f"{value}x30"})
    on = {"host": "mail1.example.test", "target": f"snapshot://{host}", **scrape}
    with open(rules, encoding="utf-8") as handle:
        by_name = {r["alert"]: r for g in yaml.safe_load(handle)["groups"] for r in g["rules"]}

    def alert(name, value, **labels):
        """The alert as Prometheus must fire it: labels, and the annotations rendered from them."""
        rule = by_name[name]
        labels = {**scrape, **labels}
        data = {**labels}
        expected = {**labels, **rule.get("labels", {})}
        def render(text):
            text = re.sub(r"\{\{ \$value \| humanizeDuration \}\}", _humanize_duration(value), text)
            text = text.replace("{{ $value }}", f"{value:g}")
            return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: data.get(m.group(1), "<no value>"), text)
        annotations = {k: render(v) for k, v in rule["annotations"].items()}
        assert not any("<no value>" in v for v in annotations.values()), annotations
        return {"exp_labels": expected, "exp_annotations": annotations}

    def check(name, eval_time, *alerts):
        return {"alertname": name, "eval_time": eval_time, "exp_alerts": list(alerts)}

    high = [alert("PostfixComplianceHighSeverityCheckFailing", 0, **on, check=c, section=s, outcome="fail",
                  severity="high") for c, s in (("AVC-002", "Triage"), ("LBL-002", "Primary fix"))]
    stale = 27 * 3600
    tests = {"rule_files": [rules], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": series, "alert_rule_test": [
            check("PostfixComplianceHighSeverityCheckFailing", "10m", *high),
            check("PostfixComplianceRegression", "10m", alert("PostfixComplianceRegression", 2, **on)),
            check("PostfixComplianceCheckFailing", "10m"),
            check("PostfixComplianceChecksNotJudged", "10m"),
            check("PostfixComplianceScheduledRunBroken", "10m")]},
        # Nothing new for 27 hours, and the last run judged nothing (time() starts at 0 in promtool).
        {"interval": "1m",
         "input_series": [{"series": scraped(name), "values": values} for name, values in (
             ("postfix_compliance_scheduled_run_finished_timestamp_seconds", "0x1700"),
             ("postfix_compliance_last_run_timestamp_seconds", "0x1700"),
             ('postfix_compliance_fleet_host_results_timestamp_seconds{host="mail9"}', "0x1700"),
             ("postfix_compliance_scheduled_run_exit_status", "4x1700"))],
         "alert_rule_test": [
             check("PostfixComplianceScheduledRunStale", "20h"),
             check("PostfixComplianceScheduledRunStale", "27h", alert("PostfixComplianceScheduledRunStale", stale)),
             check("PostfixComplianceResultsStale", "27h", alert("PostfixComplianceResultsStale", stale)),
             check("PostfixComplianceFleetHostStale", "27h", alert("PostfixComplianceFleetHostStale", stale,
                                                                   host="mail9")),
             check("PostfixComplianceScheduledRunBroken", "27h", alert("PostfixComplianceScheduledRunBroken", 4))]}]}
    test_file = tmp_path / "rules.test.yml"
    test_file.write_text(yaml.safe_dump(tests))
    proc = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _humanize_duration(seconds: float) -> str:
    """Prometheus' humanizeDuration for whole seconds of a day or more: "1d 3h 0m 0s"."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d {hours}h {minutes}m {secs}s"


# ====================================================================== fleet merge
class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def _site_results(tmp_path, site: str, *hosts: tuple[str, tuple], snap_dir: str | None = None) -> str:
    """A real suite run over snapshot hosts (name, changes): one site's results.json. The snapshots go to
    `snap_dir` (default: the site's own): one snapshot path is one target, in every run that checks it."""
    paths = [snaps.make(snap_dir or str(tmp_path / site), name.replace("<", "_").replace(">", "_").replace("/", "_"),
                        *changes, host=name) for name, changes in hosts]
    report_dir = tmp_path / site / "reports"
    proc = _run([sys.executable, "-m", "pytest", "-q", f"--report-dir={report_dir}", "--no-flush",
                 "--hosts=" + ",".join(f"snapshot://{p}" for p in paths)])
    assert proc.returncode in (0, 1, 2), proc.stdout + proc.stderr
    return str(report_dir / "results.json")


def _set_generated(path: str, when: str) -> None:
    doc = json.load(open(path))
    doc["generated_at"] = when
    json.dump(doc, open(path, "w"))


HOSTILE_NAME = 'mail3<script>document.title="pwned"</script>'


def test_fleet_merge_of_two_sites(tmp_path):
    """mail2 is checked by both runs, through one target (yesterday permissive, today healthy)."""
    shared = str(tmp_path / "targets")
    site_a = _site_results(tmp_path, "a", ("mail1.example.test", ()), ("mail2.example.test", (snaps.permissive,)),
                           snap_dir=shared)
    site_b = _site_results(tmp_path, "b", ("mail2.example.test", ()), (HOSTILE_NAME, (snaps.hostile,)),
                           snap_dir=shared)
    _set_generated(site_a, "2026-11-27T02:30:00Z")
    _set_generated(site_b, "2026-11-28T02:30:00Z")
    out = tmp_path / "fleet"
    # The newer file wins whatever the order on the command line.
    proc = _run([sys.executable, "-m", "postfix_compliance.fleet", "merge", str(out), site_b, site_a])
    assert proc.returncode == 2, proc.stderr  # the hostile host's unparseable output is an error
    doc = json.load(open(out / "results.json"))
    assert doc["format"] == "postfix-compliance-results/2"
    by_host: dict[str, set] = {}
    for r in doc["results"]:
        by_host.setdefault(r["host_name"], set()).add(r["source"])
    assert set(by_host) == {"mail1.example.test", "mail2.example.test", HOSTILE_NAME}
    assert by_host["mail2.example.test"] == {site_b} and by_host["mail1.example.test"] == {site_a}
    mail2 = {r["check_id"]: r["outcome"] for r in doc["results"] if r["host_name"] == "mail2.example.test"}
    assert mail2["SEL-001"] == "pass"  # site b's (newer) record, not site a's permissive one
    [dup] = doc["fleet"]["duplicates"]
    assert dup["host"] == "mail2.example.test" and dup["kept"] == site_b and dup["dropped"] == site_a
    assert len(dup["checks"]) == N_CHECKS and dup["reason"] == "kept the newer file"
    assert f"fleet: duplicate: host mail2.example.test: {N_CHECKS} checks in {site_a}" in proc.stderr
    assert doc["summary"]["mail2.example.test"]["pass"] >= 1

    # The page (report/html.py's page: the suite's one HTML renderer): self-contained, the hostile host's
    # name and output shown as text, never as markup. Its only scripts are the suite's own: the data
    # block (JSON, not run, nothing in it can close it) and report.js, inline.
    page = (out / "fleet.html").read_text()
    tags = _Tags()
    tags.feed(page)
    # The one SVG is the suite's own roll-up chart (report/rollup.py), none a host's.
    assert [dict(a).get("id") for t, a in tags.tags if t == "svg"] == ["rollup-chart"]
    assert not [t for t, _ in tags.tags if t in ("img", "link", "iframe")]
    assert not [a for _, attrs in tags.tags for a, _ in attrs if a.startswith("on") or a == "src"]
    scripts = [dict(attrs) for t, attrs in tags.tags if t == "script"]
    assert scripts == [{"type": "application/json", "id": "pfc-data"}, {}]
    block = page.split('<script type="application/json" id="pfc-data">', 1)[1].split("</script>", 1)[0]
    assert not set("<>&") & set(block) and HOSTILE_NAME not in page.replace(block, "")
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in page
    assert f"mail2.example.test: {N_CHECKS} checks" in page

    # Metrics: the suite's series for every host plus the fleet's; a linter accepts them.
    metrics = (out / "metrics.prom").read_text()
    assert 'postfix_compliance_checks{host="mail1.example.test"' in metrics
    assert "postfix_compliance_fleet_sources 2" in metrics and f"postfix_compliance_fleet_duplicates {N_CHECKS}" in metrics
    assert 'host="mail3<script>document.title=\\"pwned\\"</script>"' in metrics
    if shutil.which("promtool"):  # the linter, where installed (Debian package prometheus)
        lint = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True,
                              text=True, timeout=120)
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_fleet_merge_ties_and_report_directories(tmp_path):
    """Two CI shards of one inventory, same second: disjoint checks merge; a tie keeps the later file."""
    healthy = snaps.make(str(tmp_path / "s"), "healthy")
    shards = []
    for n, expr in enumerate(("SEL or BOOL", "not (SEL or BOOL)")):
        report_dir = tmp_path / f"shard{n}"
        proc = _run([sys.executable, "-m", "pytest", "-q", f"--report-dir={report_dir}", "--no-flush",
                     f"--hosts=snapshot://{healthy}", "-k", expr])
        assert proc.returncode == 0, proc.stderr
        _set_generated(str(report_dir / "results.json"), "2026-11-28T02:30:00Z")
        shards.append(str(report_dir))
    proc = _run([sys.executable, "-m", "postfix_compliance.fleet", "merge", str(tmp_path / "out"), *shards])
    assert proc.returncode == 0, proc.stderr
    doc = json.load(open(tmp_path / "out" / "results.json"))
    assert len(doc["results"]) == N_CHECKS and doc["fleet"]["duplicates"] == []
    again = _run([sys.executable, "-m", "postfix_compliance.fleet", "merge", str(tmp_path / "out2"),
                  shards[0], shards[0] + "/results.json"])
    [dup] = json.load(open(tmp_path / "out2" / "results.json"))["fleet"]["duplicates"]
    assert dup["reason"] == "same generated_at: kept the file named later" and again.returncode == 0
    # The merged file is a baseline the suite accepts.
    if _has_baseline():
        check = _run([sys.executable, "-m", "pytest", "-q", f"--report-dir={tmp_path / 'post'}", "--no-flush",
                      f"--hosts=snapshot://{healthy}", f"--baseline={tmp_path / 'out' / 'results.json'}"])
        assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("make_args, expected", [
    (lambda d: [str(d / "out")], "nothing to merge"),
    (lambda d: [str(d / "out"), str(d / "missing.json")], "missing.json: no such file"),
    (lambda d: [str(d / "out"), str(d)], "a directory without results.json"),
    (lambda d: [str(d / "out"), _write(d / "x.json", "{nope")], "not JSON"),
    (lambda d: [str(d / "out"), _write(d / "x.json", '{"format": "other"}')], "not a results file"),
    (lambda d: [str(d / "out"), _write(d / "x.json", json.dumps(
        {"format": "postfix-compliance-results/1", "results": [{"host": "h", "check_id": "X", "outcome": "meh"}]}))],
     "results[0].outcome: 'meh' is not one of"),
    (lambda d: [str(d / "out"), _write(d / "x.json", json.dumps(
        {"format": "postfix-compliance-results/1", "generated_at": "2099-01-01T00:00:00Z", "results": []}))],
     '"generated_at" 2099-01-01T00:00:00Z is in the future'),
    (lambda d: [_write(d / "file", "x"), _write(d / "x.json", json.dumps(
        {"format": "postfix-compliance-results/1", "results": []}))], "output directory " + "{d}/file: is not a directory"),
    # Another user could replace the merged reports or read them: refused before anything is written.
    (lambda d: [_shared_dir(d / "out", 0o777), _write(d / "x.json", json.dumps(
        {"format": "postfix-compliance-results/1", "results": []}))], "is writable by group or others (mode 0777)"),
    (lambda d: [_shared_dir(d / "out", 0o755, owner=65534), _write(d / "x.json", json.dumps(
        {"format": "postfix-compliance-results/1", "results": []}))], "belongs to nobody, not to root"),
    (lambda d: [str(_shared_dir(d / "shared", 0o777) and d / "shared" / "out"), _write(d / "x.json", json.dumps(
        {"format": "postfix-compliance-results/1", "results": []}))], "shared above it can be changed by another user"),
])
def test_fleet_bad_input_is_one_line(tmp_path, make_args, expected):
    proc = _run([sys.executable, "-m", "postfix_compliance.fleet", "merge", *make_args(tmp_path)])
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("ERROR: fleet: ")
    assert expected.format(d=tmp_path) in proc.stderr, proc.stderr
    assert not any((tmp_path / d / "results.json").exists() for d in ("out", "shared/out"))


def _shared_dir(path, mode: int, owner: int | None = None) -> str:
    """A directory another user can write (mode), or that belongs to another user (owner; needs root)."""
    if owner is not None and os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    path.mkdir()
    path.chmod(mode)
    if owner is not None:
        os.chown(path, owner, owner)
    return str(path)


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _hostile_field(record_key=None, doc_key=None, value=None):
    def change(doc):
        if doc_key:
            doc[doc_key] = value
        else:
            failed = next(r for r in doc["results"] if r["outcome"] == "fail")
            failed[record_key] = value
    return change


@pytest.mark.parametrize("change, expected", [
    (_hostile_field("nodeid", value=["x"]), ".nodeid: ['x'] is not of type 'string', 'null'"),
    (_hostile_field("waiver", value="yes"), ".waiver: 'yes' is not of type 'object', 'null'"),
    (_hostile_field("host_clock", value="now"), ".host_clock: 'now' is not of type 'object', 'null'"),
    (_hostile_field("notes", value="a note"), ".notes: 'a note' is not of type 'array', 'null'"),
    (_hostile_field("diagnosis", value=[1]), ".diagnosis: [1] is not of type 'object', 'null'"),
    (_hostile_field("message", value="x" * 100_000), None),  # a long message is data, not an error
    (_hostile_field(doc_key="plan", value={"mail1.example.test": "rm -rf /"}), "is not of type 'object', 'null'"),
    (_hostile_field(doc_key="generated_at", value="2099-01-01T00:00:00Z"), '"generated_at" 2099-01-01T00:00:00Z is in the future'),
])
def test_fleet_merge_validates_against_the_schema_and_keeps_the_last_good_output(tmp_path, change, expected):
    """A results file that breaks the published schema (or is dated in the future) is one line, exit 4, and
    the previous merge's files stay as they were, byte for byte: nothing is written unless all of it is."""
    good = _site_results(tmp_path, "a", ("mail1.example.test", (snaps.permissive,)))
    out = tmp_path / "fleet"
    first = _run([sys.executable, "-m", "postfix_compliance.fleet", "merge", str(out), good])
    assert first.returncode == 1, first.stderr
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    doc = json.load(open(good))
    change(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    proc = _run([sys.executable, "-m", "postfix_compliance.fleet", "merge", str(out), str(bad)])
    if expected is None:
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        return
    assert proc.returncode == 4 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and expected in proc.stderr, proc.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not list(out.glob(".fleet-merge-*"))


def test_the_results_schema_is_published_and_holds_what_the_suite_writes(tmp_path):
    """docs/reports.md names the schema; every results file a real run writes validates against it."""
    from postfix_compliance import results_file as results_report
    schema = json.load(open(results_report.SCHEMA_PATH))
    assert schema["properties"]["format"]["enum"] == list(results_report.READABLE_FORMATS)
    assert "postfix_compliance/schemas/results.schema.json" in open(os.path.join(REPO, "docs", "reports.md")).read()
    written = _site_results(tmp_path, "a", ("mail1.example.test", (snaps.permissive,)),
                            ("mail2.example.test", (snaps.hostile,)))
    assert results_report.schema_error(json.load(open(written))) is None


def test_fleet_merge_keeps_two_targets_that_report_one_name(tmp_path):
    """Two targets, one host name (a clone, or a file that claims another's name): both hosts are kept and
    judged, and flagged; neither silently replaces the other (a failing host dropped, exit 0, before)."""
    failing = _site_results(tmp_path, "a", ("mail1.example.test", (snaps.permissive,)))
    passing = _site_results(tmp_path, "b", ("mail1.example.test", ()))
    _set_generated(passing, "2026-11-28T02:30:00Z")  # the passing one is newer: it used to win the host
    out = tmp_path / "fleet"
    proc = _run([sys.executable, "-m", "postfix_compliance.fleet", "merge", str(out), failing, passing])
    assert proc.returncode == 1, proc.stderr
    doc = json.load(open(out / "results.json"))
    targets = {r["host"] for r in doc["results"]}
    assert len(targets) == 2 and len(doc["results"]) == 2 * N_CHECKS
    assert doc["fleet"]["duplicates"] == []
    assert doc["fleet"]["shared_names"] == [{"host_name": "mail1.example.test", "targets": sorted(targets)}]
    assert set(doc["summary"]) == {f"mail1.example.test ({t})" for t in targets}
    assert "fleet: host name mail1.example.test is reported by 2 targets" in proc.stderr


def test_fleet_merge_keeps_two_sites_that_each_check_local(tmp_path):
    """`local` at two sites is two hosts (by the names they report), each with an id of its own."""
    docs = []
    for site, name in (("a", "mail1.example.test"), ("b", "mail2.example.test")):
        path = _site_results(tmp_path, site, (name, ()))
        doc = json.load(open(path))
        for record in doc["results"]:
            record["host"] = "local"
        doc["evidence"] = {"local": next(iter(doc["evidence"].values()))}
        doc["plan"] = {"local": next(iter(doc["plan"].values()))}
        doc["diagnosis"] = {"local": next(iter(doc["diagnosis"].values()))}
        (tmp_path / f"{site}.json").write_text(json.dumps(doc))
        docs.append(str(tmp_path / f"{site}.json"))
    proc = _run([sys.executable, "-m", "postfix_compliance.fleet", "merge", str(tmp_path / "out"), *docs])
    assert proc.returncode == 0, proc.stderr
    doc = json.load(open(tmp_path / "out" / "results.json"))
    assert {r["host"] for r in doc["results"]} == {"local (mail1.example.test)", "local (mail2.example.test)"}
    assert set(doc["summary"]) == {"mail1.example.test", "mail2.example.test"}
    assert doc["fleet"]["shared_names"] == [] and doc["fleet"]["duplicates"] == []
