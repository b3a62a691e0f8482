"""Files the suite writes: reports and recorded snapshots, in directories others may share.

The suite often runs as root. Whatever someone planted in a report or snapshot directory (a symlink at a
report's name or at a predictable temporary name) must never be written through, and each host URL gets a
snapshot file of its own whose name stays short, whatever the host calls itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from selftest import REPO, assert_one_error_line, run_suite, snapshot
from sshd import SshFleet, SshHost, free_port, keygen, require_sshd

FAST = ("--no-flush", "--drain-timeout=1")
FIXTURE = os.path.join(REPO, snapshot("auditd-stopped"))  # one failing check: exit 1
VICTIM_TEXT = "precious: a file the report directory's symlinks point at\n"


def _snapshot_with_host(path, host):
    with open(FIXTURE, encoding="utf-8") as handle:
        doc = json.load(handle)
    doc["host"] = host
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle)
    return str(path)


def _plant(path, victim):
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(victim, path)


def _assert_untouched(victim):
    with open(victim, encoding="utf-8") as handle:
        assert handle.read() == VICTIM_TEXT, "a report was written through a planted symlink"


def _no_traceback(run):
    for stream in (run.stdout, run.stderr):
        assert "Traceback" not in stream and "INTERNALERROR" not in stream, stream[-3000:]


def _recorded(directory):
    """name -> snapshot document, for every file in a --record-snapshot directory (not planted links)."""
    docs = {}
    for name in sorted(os.listdir(directory)):
        if os.path.islink(os.path.join(directory, name)):
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as handle:
            docs[name] = json.load(handle)
    return docs


# ---------------------------------------------------------------------- the one writer
def test_write_atomic_replaces_what_is_at_the_path_and_leaves_nothing_behind(tmp_path):
    from postfix_compliance.atomicfile import write_atomic

    victim = tmp_path / "victim"
    victim.write_text(VICTIM_TEXT)
    out = tmp_path / "out"
    out.mkdir()
    _plant(out / "r.json", victim)
    old_umask = os.umask(0o027)
    try:
        write_atomic(out / "r.json", "new\n")
        write_atomic(out / "m.prom", b"bytes\n", mode=0o644)
    finally:
        os.umask(old_umask)
    _assert_untouched(victim)
    assert not os.path.islink(out / "r.json") and (out / "r.json").read_text() == "new\n"
    assert oct(os.stat(out / "r.json").st_mode & 0o777) == "0o600"  # private whatever the umask (evidence)
    assert oct(os.stat(out / "m.prom").st_mode & 0o777) == "0o644"  # exactly as asked
    (out / "taken").mkdir()
    (out / "taken" / "x").write_text("")
    with pytest.raises(OSError):  # a directory where the file goes: an error, and no temporary file left
        write_atomic(out / "taken", "data")
    assert sorted(os.listdir(out)) == ["m.prom", "r.json", "taken"]


# ---------------------------------------------------------------------- planted symlinks
def test_symlinks_planted_in_the_report_directory_are_replaced_never_followed(tmp_path):
    """Every report (HTML and JUnit, which pytest-html and junitxml write themselves, results.json,
    metrics, remediation script), at its final name and at the `NAME.tmp` an older writer used."""
    victim = tmp_path / "victim"
    victim.write_text(VICTIM_TEXT)
    reports = tmp_path / "reports"
    reports.mkdir()
    names = ("compliance.html", "junit.xml", "results.json", "metrics.prom", "fix.sh")
    for name in names:
        _plant(reports / name, victim)
        _plant(reports / f"{name}.tmp", victim)
    run = run_suite(f"--hosts=snapshot://{FIXTURE}", f"--metrics={reports / 'metrics.prom'}",
                    f"--remediation-script={reports / 'fix.sh'}", "-v", *FAST,  # -v: undoes -q, for the
                    report_dir=str(reports))                              # "generated ..." lines
    _no_traceback(run)
    assert run.exit_status == 1, run.stdout[-2000:]
    _assert_untouched(victim)
    for name in names:  # the reports are there, as files of their own
        assert not os.path.islink(reports / name) and os.path.getsize(reports / name) > 0, name
    assert run.outcomes() and "<html" in (reports / "compliance.html").read_text()
    assert oct(os.stat(reports / "metrics.prom").st_mode & 0o777) == "0o644"  # node_exporter reads it
    # The reports' "generated" lines name the real files, not a private staging directory.
    assert f"generated xml file: {reports / 'junit.xml'}" in run.stdout
    assert f"Generated html report: file://{reports / 'compliance.html'}" in run.stdout
    leftovers = sorted(set(os.listdir(reports)) - set(names) - {f"{n}.tmp" for n in names})
    assert leftovers == [], leftovers  # no temporary file or staging directory stays behind


def test_explicit_html_and_junit_paths_are_guarded_too(tmp_path):
    """--html and --junitxml elsewhere than the report directory: the same private staging; the HTML is
    self-contained (pytest-html would otherwise leave its assets/ in the private directory)."""
    victim = tmp_path / "victim"
    victim.write_text(VICTIM_TEXT)
    out = tmp_path / "ci-artifacts"
    out.mkdir()
    _plant(out / "mail.html", victim)
    _plant(out / "mail.xml", victim)
    run = run_suite(f"--hosts=snapshot://{FIXTURE}", f"--html={out / 'mail.html'}", f"--junitxml={out / 'mail.xml'}",
                    *FAST, report_dir=str(tmp_path / "reports"))
    _no_traceback(run)
    _assert_untouched(victim)
    html = (out / "mail.html").read_text()
    assert not os.path.islink(out / "mail.html") and "assets/style.css" not in html and "<style" in html
    assert not os.path.islink(out / "mail.xml") and "<testsuites" in (out / "mail.xml").read_text()
    assert sorted(os.listdir(out)) == ["mail.html", "mail.xml"]


def test_symlinks_planted_in_the_snapshot_directory_are_replaced_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text(VICTIM_TEXT)
    snaps = tmp_path / "snaps"
    args = (f"--hosts=snapshot://{FIXTURE}", f"--record-snapshot={snaps}", *FAST)
    run_suite(*args, report_dir=str(tmp_path / "r1"))
    [name] = os.listdir(snaps)  # the name this host's recording gets
    _plant(snaps / name, victim)
    _plant(snaps / f"{name}.tmp", victim)
    run = run_suite(*args, report_dir=str(tmp_path / "r2"))
    _no_traceback(run)
    _assert_untouched(victim)
    assert not os.path.islink(snaps / name)
    assert _recorded(snaps)[name]["host"] == "mail1.example.com"


# ---------------------------------------------------------------------- one snapshot file per host URL
def test_snapshots_of_one_host_name_are_recorded_to_a_file_each(tmp_path):
    """Three inputs, one host name; two of the paths differ only where the file name must sanitise them
    alike ("site b" and "site_b"); two xdist workers, each recording the hosts it ran."""
    inputs = [_snapshot_with_host(tmp_path / f"{stem}.json", "mail.example.test")
              for stem in ("site-a", "site b", "site_b")]
    snaps = tmp_path / "snaps"
    run = run_suite(f"--hosts={','.join('snapshot://' + p for p in inputs)}", f"--record-snapshot={snaps}",
                    "-n", "2", *FAST, report_dir=str(tmp_path / "reports"))
    _no_traceback(run)
    docs = _recorded(snaps)
    assert sorted(d["source"] for d in docs.values()) == sorted(f"snapshot://{p}" for p in inputs)
    for name, doc in docs.items():  # readable: the host's name and where it came from
        assert name.startswith("mail.example.test--snapshot_"), name
        assert re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(doc["source"])) in name, name
    # The two that sanitise alike carry a hash of their URL (the other one too only if its name is long:
    # it holds this test's temporary path).
    clashing = [n for n, d in docs.items() if os.path.basename(d["source"]) in ("site b.json", "site_b.json")]
    assert all(re.search(r"_b\.json-[0-9a-f]{16}\.json$", n) for n in clashing), clashing
    assert all(len(n) <= 105 for n in docs), sorted(docs)
    # Each replays as the host it recorded.
    replay = run_suite(*[f"--hosts=snapshot://{snaps / n}" for n in docs], *FAST,
                       report_dir=str(tmp_path / "replay"))
    assert {r["host_name"] for r in replay.results["results"]} == {"mail.example.test"}


def test_a_300_character_host_name_runs_and_its_snapshot_name_is_shortened_with_a_hash(tmp_path):
    long_name = "a" * 300
    path = _snapshot_with_host(tmp_path / "long.json", long_name)
    snaps, reports = tmp_path / "snaps", tmp_path / "reports"
    run = run_suite(f"--hosts=snapshot://{path}", f"--record-snapshot={snaps}",
                    f"--metrics={reports / 'metrics.prom'}", f"--remediation-script={reports / 'fix.sh'}",
                    "--junitxml", str(reports / "junit.xml"), *FAST, report_dir=str(reports))
    _no_traceback(run)
    assert run.exit_status == 1, run.stdout[-2000:]
    assert {r["host_name"] for r in run.results["results"]} == {long_name}
    for name in ("compliance.html", "metrics.prom", "fix.sh"):
        assert long_name in (reports / name).read_text(), name
    assert 'name="postfix-compliance"' in (reports / "junit.xml").read_text()  # (it names hosts by URL)
    [name] = os.listdir(snaps)
    # The head of the host's name, the tail of its URL (the file name), a hash of the URL.
    assert len(name) <= 110 and re.fullmatch(r"a{30,}_.*_long\.json-[0-9a-f]{16}\.json", name), name
    assert _recorded(snaps)[name]["host"] == long_name
    replay = run_suite(f"--hosts=snapshot://{snaps / name}", *FAST, report_dir=str(tmp_path / "replay"))
    assert replay.outcomes() == run.outcomes()


# ---------------------------------------------------------------------- two sshd ports on one address
@pytest.fixture(scope="module")
def one_address_two_ports():
    """Two real sshd hosts on the same loopback address, on different ports."""
    require_sshd()
    fleet = SshFleet()
    try:
        first = fleet.add("port-a")
        # SshFleet gives each host its own address; this one shares the first one's.
        second = SshHost("port-b", first.address, free_port(first.address), os.path.join(fleet.base, "port-b"))
        os.makedirs(second.directory)
        second.public_key = keygen(second.host_key)
        second.start(fleet.authorized_keys, fleet.users)
        fleet.hosts.append(second)
        fleet.pair = (first, second)
        fleet.known = fleet.known_hosts(first, second)
        fleet.config = fleet.ssh_config()
        yield fleet
    finally:
        fleet.stop()


@pytest.mark.ssh
def test_two_hosts_on_one_address_get_a_snapshot_file_each(one_address_two_ports, tmp_path):
    fleet = one_address_two_ports
    urls = [h.url("paramiko") for h in fleet.pair]
    snaps = tmp_path / "snaps"
    run = run_suite(f"--hosts={','.join(urls)}", f"--ssh-config={fleet.config}", f"--known-hosts={fleet.known}",
                    f"--record-snapshot={snaps}", *FAST, report_dir=str(tmp_path / "reports"))
    _no_traceback(run)
    for url in urls:
        assert run.outcomes(url), f"no results for {url}: {run.stdout[-2000:]}"
    docs = _recorded(snaps)
    assert sorted(d["source"] for d in docs.values()) == sorted(urls)
    for name, doc in docs.items():  # named after the URL: its port tells the two apart
        host = next(h for h in fleet.pair if h.url("paramiko") == doc["source"])
        assert name == f"paramiko_root_{host.address}_{host.port}.json", name


# ---------------------------------------------------------------------- the scripts' own files
def test_the_image_gate_writes_limits_txt_through_no_planted_symlink(tmp_path):
    """scripts/image-gate.sh adds LIMITS.txt to the report directory, through the same atomic writer."""
    if os.geteuid() != 0:
        pytest.skip("the gate's --chroot needs root")
    root = tmp_path / "root"  # just enough of an image root for the gate to start (its checks then error)
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    os.symlink("/bin/sh", root / "bin" / "sh")
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    victim = tmp_path / "victim"
    victim.write_text(VICTIM_TEXT)
    reports = tmp_path / "gate"
    reports.mkdir()
    _plant(reports / "LIMITS.txt", victim)
    proc = subprocess.run([os.path.join(REPO, "scripts", "image-gate.sh"), "--chroot", str(root),
                           "--report-dir", str(reports), "--python", sys.executable],
                          capture_output=True, text=True, timeout=300)
    assert "LIMITS.txt" in proc.stderr, proc.stderr[-2000:]
    _assert_untouched(victim)
    assert not os.path.islink(reports / "LIMITS.txt")
    assert (reports / "LIMITS.txt").read_text().startswith("What an image gate")


def test_change_validation_saves_its_arguments_through_no_planted_symlink(tmp_path):
    """scripts/change-validate.sh keeps the pre run's arguments in CHANGE_DIR/args for the post run."""
    victim = tmp_path / "victim"
    victim.write_text(VICTIM_TEXT)
    change_dir = tmp_path / "reports" / "change" / "CHG-1"
    change_dir.mkdir(parents=True)
    _plant(change_dir / "args", victim)
    host = tmp_path / "host.json"
    shutil.copy(os.path.join(REPO, snapshot("healthy-rhel9")), host)
    proc = subprocess.run([os.path.join(REPO, "scripts", "change-validate.sh"), "pre", "--name=CHG-1",
                           f"--reports-root={tmp_path / 'reports'}", f"--python={sys.executable}", "--",
                           f"--hosts=snapshot://{host}", "--no-flush"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _assert_untouched(victim)
    assert not os.path.islink(change_dir / "args")
    assert (change_dir / "args").read_bytes() == f"--hosts=snapshot://{host}\0--no-flush\0".encode()


def test_the_scheduled_run_writes_through_no_symlink_planted_at_its_lock(tmp_path):
    """scripts/scheduled-run.sh writes who holds the lock into the lock file, by name: a symlink there
    (the reports root may be shared) is refused, one ERROR line, exit 4, before anything runs."""
    victim = tmp_path / "victim"
    victim.write_text(VICTIM_TEXT)
    reports = tmp_path / "reports"
    reports.mkdir()
    _plant(reports / ".scheduled-run.lock", victim)
    proc = subprocess.run([os.path.join(REPO, "scripts", "scheduled-run.sh"), f"--reports-root={reports}",
                           f"--python={sys.executable}", "--", f"--hosts=snapshot://{FIXTURE}", *FAST],
                          capture_output=True, text=True, timeout=300)
    _assert_untouched(victim)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert proc.returncode == 4 and len(errors) == 1 and "is a symlink" in errors[0], proc.stderr
    assert os.listdir(reports) == [".scheduled-run.lock"]  # no report set was started


# ---------------------------------------------------------------------- who may read and write
def test_reports_are_private_whatever_the_umask(tmp_path):
    """Reports carry host evidence: 0600 in a 0700 directory the suite makes, under umask 022 too; the
    metrics file stays readable for node_exporter, the remediation script is executable by its owner."""
    reports = tmp_path / "new" / "reports"
    old_umask = os.umask(0o022)
    try:
        run = run_suite(f"--hosts=snapshot://{FIXTURE}", f"--metrics={tmp_path / 'metrics.prom'}",
                        f"--remediation-script={tmp_path / 'fix.sh'}", f"--xccdf={tmp_path / 'x.xml'}", *FAST,
                        report_dir=str(reports))
    finally:
        os.umask(old_umask)
    _no_traceback(run)
    assert run.exit_status == 1, run.stdout[-2000:]

    def mode(path):
        return oct(os.stat(path).st_mode & 0o777)
    assert mode(reports) == "0o700"
    assert {name: mode(reports / name) for name in os.listdir(reports)} == {
        "results.json": "0o600", "compliance.html": "0o600", "junit.xml": "0o600"}
    assert mode(tmp_path / "x.xml") == "0o600" and mode(tmp_path / "fix.sh") == "0o700"
    assert mode(tmp_path / "metrics.prom") == "0o644"


@pytest.mark.parametrize("mode, owner, says", [
    (0o777, None, "is writable by group or others (mode 0777)"),
    (0o775, None, "is writable by group or others (mode 0775)"),
    (0o755, 65534, "belongs to nobody, not to root"),
])
def test_a_report_directory_another_user_can_write_is_refused(tmp_path, mode, owner, says):
    """--report-dir (results.json there is a later run's --baseline) must be the running user's alone."""
    if owner is not None and os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    reports = tmp_path / "shared"
    reports.mkdir()
    reports.chmod(mode)
    if owner is not None:
        os.chown(reports, owner, owner)
    run = run_suite(f"--hosts=snapshot://{FIXTURE}", *FAST, report_dir=str(reports))
    line = assert_one_error_line(run, f"--report-dir {reports}: ", says)
    assert "Traceback" not in line and os.listdir(reports) == []


def test_a_fleet_run_refuses_a_shared_directory_and_never_writes_through_a_planted_log(tmp_path):
    from postfix_compliance import fleet_run

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    proc = subprocess.run([sys.executable, "-m", "postfix_compliance.fleet", "run", str(shared / "out"), "--",
                           f"--hosts=snapshot://{FIXTURE}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("ERROR: fleet: ") and "can be changed by another user" in proc.stderr
    assert not (shared / "out").exists()
    # In the suite's own directory, a log left in place (here a symlink) is replaced, never written through.
    victim = tmp_path / "victim"
    victim.write_text(VICTIM_TEXT)
    _plant(tmp_path / "1.log", victim)
    with fleet_run._new_log(str(tmp_path / "1.log")) as log:
        log.write(b"shard output\n")
    _assert_untouched(victim)
    assert not os.path.islink(tmp_path / "1.log") and oct(os.stat(tmp_path / "1.log").st_mode & 0o777) == "0o600"
