"""Remote hosts over real SSH: host keys, connection reuse, timeouts, dead hosts, sudo, fleets.

Every "host" is a real OpenSSH server started by these tests on its own loopback address
(127.0.0.2, 127.0.0.3, ...; see tests/sshd.py), with its own host key; the suite connects to it
as a user would, through `pytest --hosts=...`. Each host logs every command a client runs, so
the tests can tell what ran where (nothing, for a refused host key).
"""

from __future__ import annotations

import grp
import json
import os
import re
import shlex
import socket
import subprocess
import time

import pytest

from selftest import REPO
from sshd import SshFleet, ensure_user, remove_user, require_sshd

pytestmark = pytest.mark.ssh

# Per-run names: several runs of these tests may share the machine.
_RUN = os.urandom(3).hex()
SCAN_USER = f"pfcscan{_RUN}"
SCAN_GROUP = f"pfcgroup{_RUN}"  # stands for the drop-in's `postfix-compliance` group
DROPIN = os.path.join(REPO, "contrib", "sudoers.d", "postfix-compliance")
FAST = ("--no-flush", "--drain-timeout=1")

# A getenforce that kills the sshd processes serving its own connection: the host "drops".
DROP_SCRIPT = """listener=$(cat {pidfile})
p=$$ chain=
while [ "$p" -gt 1 ]; do
  p=$(cut -d' ' -f4 /proc/$p/stat)
  [ "$p" = "$listener" ] && break
  [ "$(cat /proc/$p/comm)" = sshd ] && chain="$chain $p"
done
kill -9 $chain
exit 1"""


@pytest.fixture(scope="module")
def fleet():
    require_sshd("starts sshd and adds a user")
    created_user = ensure_user(SCAN_USER)
    fleet = SshFleet(users=("root", SCAN_USER))
    fleet.live = [fleet.add(f"live{i}") for i in range(5)]
    fleet.hang = fleet.add("hang", fakes={"getenforce": "sleep 300"})
    # semanage is only started where getenforce does not say Disabled (probes.py): this host says
    # Enforcing, so the sudo test sees semanage really run through sudo.
    fleet.sudo_host = fleet.add("sudo", fakes={"getenforce": "echo Enforcing"})
    drop = fleet.add("drop", start=False)
    drop.fake_command("getenforce", DROP_SCRIPT.format(pidfile=os.path.join(drop.directory, "sshd.pid")))
    fleet.restart(drop)
    fleet.drop = drop
    fleet.known = fleet.known_hosts(*fleet.live, fleet.hang, fleet.drop, fleet.sudo_host)
    fleet.config = fleet.ssh_config()
    yield fleet
    fleet.stop()
    if created_user:
        remove_user(SCAN_USER)


def transport_args(fleet, known_hosts=None):
    return (f"--ssh-config={fleet.config}", f"--known-hosts={known_hosts or fleet.known}")


def assert_fully_checked(run, host):
    outcomes = run.outcomes(host)
    assert outcomes, f"no results for {host}"
    assert "error" not in outcomes.values(), {c: r["message"] for c in outcomes
                                              if (r := run.record(c, host))["outcome"] == "error"}
    return outcomes


def _evidence_of(record):
    # What the host printed, numbers masked (pids, times, sizes change between two collections).
    return sorted((e["probe"], e["exit_status"], re.sub(r"\d+", "#", e["stdout"] + e["stderr"]))
                  for e in record.get("evidence", []))


def assert_same_outcomes(run, reference, other):
    """Same outcome per check id for two views of one machine. This machine is shared with other
    tests (throwaway Postfix instances come and go), so a check may differ only where the host
    itself printed something else between the two collections, never for the same evidence."""
    expected, got = run.outcomes(reference), run.outcomes(other)
    assert set(expected) == set(got)
    unexplained = {c: (expected[c], got[c], run.record(c, other)["message"]) for c in expected
                   if expected[c] != got[c]
                   and _evidence_of(run.record(c, reference)) == _evidence_of(run.record(c, other))}
    assert not unexplained, unexplained
    changed = [c for c in expected if expected[c] != got[c]]
    assert len(changed) <= 3, f"{other}: too many checks differ from {reference}: {changed}"


def messages(run, host):
    return {r["message"] for r in run.results["results"] if r["host"] == host}


# ---------------------------------------------------------------------- a user's testinfra tests
def test_testinfra_host_fixture_goes_through_the_suites_transport(fleet, suite, tmp_path):
    """A user's plain testinfra tests (tests/data/site_checks) in a run of the suite, on real sshd hosts:
    testinfra's `host` is the suite's backend, so a known key connects and an unknown one is refused (testinfra's
    own paramiko backend only warns and connects)."""
    import shutil
    site = tmp_path / "site"
    shutil.copytree(os.path.join(REPO, "tests", "data", "site_checks"), site)
    host = fleet.live[2]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    for url, known, expected in ((host.url("ssh"), None, "passed"), (host.url("paramiko"), str(empty), "refused")):
        mark = host.mark()
        run = suite(f"--hosts={url}", *transport_args(fleet, known), *FAST, "-c", os.path.join(REPO, "pytest.ini"),
                    "-rA", str(site / "test_site_testinfra.py"))
        lines = [line for line in run.stdout.splitlines() if "test_os_release_names_the_system" in line]
        assert lines, run.stdout[-3000:] + run.stderr[-3000:]
        if expected == "passed":
            assert run.exit_status == 0 and all(line.startswith("PASSED") for line in lines), run.stdout[-3000:]
        else:
            assert run.exit_status != 0 and "is UNKNOWN" in run.stdout, run.stdout[-3000:]
            assert "Accepted" not in host.log_text(mark)  # refused at the key exchange: no login


# ---------------------------------------------------------------------- known / unknown / changed keys
def test_known_key_connects_once_and_gives_the_same_results_as_local(fleet, suite):
    host = fleet.live[0]
    mark = host.mark()
    urls = [host.url("paramiko"), host.url("ssh")]
    run = suite(f"--hosts=local,{','.join(urls)}", *transport_args(fleet), *FAST)
    assert run.outcomes("local")
    for url in urls:
        assert_fully_checked(run, url)
        assert_same_outcomes(run, "local", url)
    # One connection per transport, reused by every probe; every probe ran once per transport.
    assert host.logins(mark) == 2
    commands = host.probe_commands(mark)
    assert sum("cat /etc/os-release" in c for c in commands) == 2
    assert len(commands) >= 2 * 30
    # ... in few sessions: all probes after os-release in one batch per session slot (8 at most)
    assert 2 <= host.batches(mark) <= 2 * 8
    assert "Traceback" not in run.stdout + run.stderr


def test_unknown_host_key_is_refused_before_anything_runs(fleet, suite, tmp_path):
    host = fleet.live[1]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    mark = host.mark()
    urls = [host.url("paramiko"), host.url("ssh")]
    started = time.monotonic()
    run = suite(f"--hosts={','.join(urls)}", *transport_args(fleet, str(empty)), *FAST)
    assert run.exit_status != 0
    fingerprint = _fingerprint(host)
    for url in urls:
        assert set(run.outcomes(url).values()) == {"error"}
        [message] = messages(run, url)  # one line, the same for every check of the host
        assert message.startswith(f"host {url} refused: host key for [{host.address}]:{host.port} is UNKNOWN")
        assert fingerprint in message and "\n" not in message
    # Refused at the key exchange: no login, no session, no command on the host.
    log = host.log_text(mark)
    assert "Accepted" not in log and "Starting session" not in log
    assert host.commands(mark) == []
    assert empty.read_text() == ""  # nothing recorded without the opt-in
    assert time.monotonic() - started < 20


def test_changed_key_is_refused_even_with_accept_new_which_records_new_keys(fleet, suite, tmp_path):
    changed, new = fleet.live[2], fleet.live[3]
    known = tmp_path / "known_hosts"
    known.write_text(changed.known_hosts_line() + "\n")  # the old key of `changed`; `new` never seen
    saved = {path: open(path, "rb").read() for path in (changed.host_key, changed.host_key + ".pub")}
    old_key = changed.public_key
    changed.new_host_key()
    fleet.restart(changed)
    mark_changed, mark_new = changed.mark(), new.mark()
    try:
        run = suite(f"--hosts={changed.url('paramiko')},{changed.url('ssh')},{new.url('paramiko')}",
                    *transport_args(fleet, str(known)), "--accept-new-host-keys", *FAST)
        for url in (changed.url("paramiko"), changed.url("ssh")):
            [message] = messages(run, url)
            assert f"host key for [{changed.address}]:{changed.port} has CHANGED" in message, message
            assert _fingerprint(changed) in message  # the key it offers now
        assert changed.commands(mark_changed) == [] and "Accepted" not in changed.log_text(mark_changed)
        assert changed.public_key.split()[1] not in known.read_text()  # the changed key was not recorded
        # The never-seen host: recorded, then checked.
        assert_fully_checked(run, new.url("paramiko"))
        assert new.logins(mark_new) == 1
        assert new.known_hosts_line() in known.read_text().splitlines()
        # ... and from now on known, without the opt-in, through OpenSSH too.
        again = suite(f"--hosts={new.url('ssh')}", *transport_args(fleet, str(known)), *FAST)
        assert_fully_checked(again, new.url("ssh"))
    finally:  # the original key back: later tests know the host by it
        for path, data in saved.items():
            with open(path, "wb") as handle:
                handle.write(data)
        changed.public_key = old_key
        fleet.restart(changed)


# ---------------------------------------------------------------------- timeouts, dead and dropping hosts
def test_hanging_probe_ends_at_the_command_timeout_naming_the_probe(fleet, suite):
    hang = fleet.hang
    urls = [hang.url("paramiko"), hang.url("ssh")]
    started = time.monotonic()
    run = suite(f"--hosts={','.join(urls)}", *transport_args(fleet), "--command-timeout=3", *FAST, timeout=60)
    elapsed = time.monotonic() - started
    assert elapsed < 25, f"the run took {elapsed:.1f}s"
    for url in urls:
        record = run.record("SEL-001", url)
        assert record["outcome"] == "error", record
        assert record["message"] == "probe getenforce (getenforce): no result: timed out after 3s", record
        # Only what depends on getenforce errs: the rest of the host was checked.
        assert run.record("SEL-002", url)["outcome"] == "fail", run.record("SEL-002", url)
    # The host's own `timeout` ended the command there too: no fake getenforce left sleeping.
    for _ in range(50):
        leftover = subprocess.run(["pgrep", "-f", hang.fakebin], capture_output=True,
                                  text=True, timeout=120).stdout.strip()
        if not leftover:
            break
        time.sleep(0.1)
    assert not leftover, leftover


def test_one_dead_host_among_five_live_ones_on_two_xdist_workers(fleet, suite, tmp_path):
    """A fleet run: `-n 2`; each host's checks stay on one worker (its evidence is collected once),
    the reports merge every host, the dead host is one error line and the rest is fully checked."""
    dead = fleet.dead("dead")  # an address and port where nothing listens
    known = tmp_path / "known_hosts"
    known.write_text(open(fleet.known).read() + f"[{dead.address}]:{dead.port} {fleet.live[0].public_key}\n")
    live_urls = [h.url("paramiko" if i % 2 else "ssh") for i, h in enumerate(fleet.live)]
    dead_url = dead.url("paramiko")
    marks = [h.mark() for h in fleet.live]
    run = suite("-n", "2", f"--hosts={','.join([*live_urls[:2], dead_url, *live_urls[2:]])}",
                f"--ssh-identity-file={fleet.client_key}", f"--known-hosts={known}", "--connect-timeout=5", *FAST)
    assert run.exit_status != 0
    records = run.results["results"]
    pairs = [(r["host"], r["check_id"]) for r in records]
    assert len(pairs) == len(set(pairs)), "a check ran twice"
    checks = {r["check_id"] for r in records}
    assert set(pairs) == {(u, c) for u in [*live_urls, dead_url] for c in checks}
    for host, mark, url in zip(fleet.live, marks, live_urls):
        if "error" in run.outcomes(url).values():  # say what the host saw, to tell whose fault it is
            pytest.fail(f"{url}: {messages(run, url)}\nsshd log:\n{host.log_text(mark)[-3000:]}\n"
                        f"commands: {host.commands(mark)[-5:]}")
        assert set(assert_fully_checked(run, url)) == checks
        # Evidence collected once: one login, one os-release read, on one worker.
        assert host.logins(mark) == 1, url
        assert sum("cat /etc/os-release" in c for c in host.commands(mark)) == 1, url
    assert set(run.outcomes(dead_url).values()) == {"error"}
    [message] = messages(run, dead_url)
    assert message == f"host {dead_url} unreachable: [Errno 111] Connection refused"
    assert run.results["summary"][dead_url] == {"error": len(checks)}
    junit = open(os.path.join(run.report_dir, "junit.xml"), encoding="utf-8").read()
    assert all(url in junit for url in [*live_urls, dead_url])
    assert "Traceback" not in run.stdout + run.stderr


def test_host_dropping_mid_run_is_one_error(fleet, suite):
    drop = fleet.drop
    urls = [drop.url("paramiko"), drop.url("ssh")]
    started = time.monotonic()
    run = suite(f"--hosts={','.join(urls)},{fleet.live[4].url('paramiko')}", *transport_args(fleet), *FAST)
    assert time.monotonic() - started < 30
    assert run.exit_status != 0
    for url in urls:
        assert set(run.outcomes(url).values()) == {"error"}
        [message] = messages(run, url)
        assert message.startswith(f"host {url} dropped the connection during evidence collection: "), message
    assert_fully_checked(run, fleet.live[4].url("paramiko"))
    assert drop.proc.poll() is None  # only the connections died, not the server


@pytest.mark.parametrize("scheme", ["paramiko", "ssh"])
def test_connect_timeout_and_refused_login_are_one_line_each(fleet, scheme, tmp_path):
    from postfix_compliance.backends import make_host
    from postfix_compliance.backends.hostkeys import AuthRefused, ConnectError, error_line
    from postfix_compliance.facts.collect import ProbeRunner

    # A port that accepts TCP but never says a word (no SSH banner): the connect timeout ends it.
    silent = socket.socket()
    silent.bind(("127.0.0.250", 0))
    silent.listen(8)
    try:
        url = f"{scheme}://root@127.0.0.250:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(ConnectError) as refused:
            ProbeRunner(make_host(url, known_hosts=fleet.known, connect_timeout=1)).connect()
        assert time.monotonic() - started < 8
        line = error_line(url, refused.value)
        assert line.startswith(f"host {url} unreachable: ") and "\n" not in line, line
    finally:
        silent.close()
    # A key the host does not accept: refused at authentication, one line naming the user.
    stranger = str(tmp_path / "stranger")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", stranger], check=True, timeout=120)
    host = fleet.live[0]
    with pytest.raises(AuthRefused) as refused:
        ProbeRunner(make_host(host.url(scheme), ssh_identity_file=stranger, known_hosts=fleet.known)).connect()
    line = error_line(host.url(scheme), refused.value)
    assert line.startswith(f"host {host.url(scheme)} refused: ") and "authentication failed" in line
    assert "\n" not in line


# ---------------------------------------------------------------------- least privilege
def test_sudo_through_the_shipped_dropin_for_a_non_root_login(fleet, suite):
    host = fleet.sudo_host
    installed = f"/etc/sudoers.d/postfix-compliance-selftest-{_RUN}"
    created_group = _ensure_group(SCAN_GROUP)
    subprocess.run(["usermod", "-aG", SCAN_GROUP, SCAN_USER], check=True, timeout=120)
    text = open(DROPIN, encoding="utf-8").read()
    assert text.count("%postfix-compliance") == 2  # the Defaults line and the rule: only the group changes
    with open(installed, "w", encoding="utf-8") as handle:
        handle.write(text.replace("%postfix-compliance", f"%{SCAN_GROUP}"))
    os.chmod(installed, 0o440)
    try:
        check = subprocess.run(["visudo", "-c"], capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr
        # sudo -l for the account: exact commands only, nothing that is or starts a shell.
        listing = subprocess.run(["sudo", "-l", "-U", SCAN_USER], capture_output=True, text=True,
                                 check=True, timeout=120).stdout
        allowed = _listed_commands(listing)
        assert allowed and all(c.split()[0].startswith("/usr/") for c in allowed), allowed
        shells = re.compile(r"(^|/)(sh|bash|dash|zsh|su|env|sudo|python3?|perl|vi|vim|less|more|find|ALL)( |$)")
        assert not [c for c in allowed if shells.search(c)], allowed
        refused = subprocess.run(["runuser", "-u", SCAN_USER, "--", "sudo", "-n", "/bin/sh", "-c", "id"],
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0 and "uid=0" not in refused.stdout

        mark = host.mark()
        root_url, scan_url = host.url("paramiko"), host.url("paramiko", SCAN_USER)
        scan_ssh = host.url("ssh", SCAN_USER)
        run = suite(f"--hosts={root_url},{scan_url},{scan_ssh}", *transport_args(fleet), "--sudo", *FAST)
        assert_fully_checked(run, root_url)
        for url in (scan_url, scan_ssh):
            # (with Postfix stopped, `postqueue` reads the queue only as root: the queue probes are
            # not privileged ones, so Q-* may differ for the non-root login, with different evidence)
            assert_same_outcomes(run, root_url, url)
        ran = [c.split("\t", 1)[1] for c in host.probe_commands(mark) if c.startswith(SCAN_USER + "\t")]
        assert any("; sudo -n semanage boolean -l" in c for c in ran), ran
        assert any("sudo -n ausearch --input-logs -m AVC,USER_AVC -ts recent --raw | " in c and
                   "| sudo -n audit2why;" in c for c in ran)
        assert not any("sudo -n timeout" in c or "sudo -n sh" in c or "sudo /bin/sh" in c for c in ran)
        unprivileged = [c for c in ran if "sh -c getenforce " in c]
        assert unprivileged and "sudo" not in unprivileged[0]  # only privileged probes use sudo
        evidence = [e for r in run.results["results"] if r["host"] == scan_url for e in r.get("evidence", [])]
        assert not [e for e in evidence if "sudo refused" in json.dumps(e)]
        # semanage ran as root: its own complaint about this machine's missing policy, not the gate's
        semanage = [e for e in evidence if e.get("probe") == "semanage_boolean"]
        assert semanage and all("not started" not in e["stderr"] and "Could not open kernel policy" in e["stderr"]
                                for e in semanage), semanage
    finally:
        os.unlink(installed)
        subprocess.run(["gpasswd", "-d", SCAN_USER, SCAN_GROUP], capture_output=True, timeout=120)
        if created_group:
            subprocess.run(["groupdel", SCAN_GROUP], capture_output=True, timeout=120)


# ---------------------------------------------------------------------- inventories and usage errors
@pytest.mark.parametrize("make_args, expected", [
    (lambda d: ["--hosts="], "names no host"),
    (lambda d: ["--hosts=,"], "names no host"),
    (lambda d: ["--ansible-inventory=/nonexistent/hosts.ini"], "/nonexistent/hosts.ini: no such file"),
    (lambda d: ["--ansible-inventory=" + _write(d / "empty.ini", "# nothing yet\n[mail]\n")], "has no hosts"),
])
def test_empty_or_missing_inventory_is_one_line_and_non_zero(suite, tmp_path, make_args, expected):
    run = suite(*make_args(tmp_path))
    assert run.exit_status != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and expected in errors[0], run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_ansible_inventory_hosts_are_checked_over_ssh(fleet, suite, tmp_path):
    a, b = fleet.live[0], fleet.live[1]
    inventory = _write(tmp_path / "hosts.yml", f"""
all:
  vars:
    ansible_user: root
    ansible_ssh_private_key_file: {fleet.client_key}
  children:
    mail:
      hosts:
        mail-a: {{ansible_host: {a.address}, ansible_port: {a.port}}}
        mail-b: {{ansible_host: {b.address}, ansible_port: {b.port}, ansible_connection: paramiko}}
""")
    run = suite(f"--ansible-inventory={inventory}", "--hosts=ansible://mail", f"--known-hosts={fleet.known}",
                *FAST)
    assert_fully_checked(run, f"ssh://root@{a.address}:{a.port}")
    assert_fully_checked(run, f"paramiko://root@{b.address}:{b.port}")


# ---------------------------------------------------------------------- no sshd needed
DISTRO_PATHS = {  # what `postconf -h` prints by default
    "debian": {"queue_directory": "/var/spool/postfix", "config_directory": "/etc/postfix",
               "data_directory": "/var/lib/postfix", "mail_spool_directory": "/var/mail"},
    "rhel": {"queue_directory": "/var/spool/postfix", "config_directory": "/etc/postfix",
             "data_directory": "/var/lib/postfix", "mail_spool_directory": "/var/spool/mail"},
}


def _dropin_commands():
    """(program basename, argument string) for every command the shipped drop-in allows."""
    text = open(DROPIN, encoding="utf-8").read().replace("\\\n", " ")
    allowed = set()
    for line in text.splitlines():
        if not line.startswith("Cmnd_Alias"):
            continue
        for entry in re.split(r"(?<!\\),", line.split("=", 1)[1]):
            path, _, args = entry.strip().partition(" ")
            args = re.sub(r"\\(.)", r"\1", " ".join(args.split()))
            allowed.add((os.path.basename(path), "" if args == '""' else args))
    return allowed


def _sudo_invocations(command, paths):
    """Every `sudo -n PROGRAM ARGS` in a command, with postconf lookups and "$f" filled in."""
    for name, value in paths.items():
        command = command.replace(f'"$(postconf -h {name})"', value)
    found = []
    for part in re.split(r"\|", command):
        if "sudo -n " not in part:
            continue
        words = shlex.split(part.split("sudo -n ", 1)[1].split(";")[0])
        if words[-1] == "$f":
            found += [(words[0], " ".join(words[1:-1] + [log])) for log in ("/var/log/maillog", "/var/log/mail.log")]
        else:
            found.append((words[0], " ".join(words[1:])))
    return found


def test_privileged_probes_use_sudo_only_for_commands_the_dropin_lists():
    from postfix_compliance.facts.collect import sudo_command
    from postfix_compliance.facts.probes import FLUSH_COMMAND, build_probes

    allowed = _dropin_commands()
    privileged = [p for p in build_probes(("postfix_local_write_mail_spool",)) if p.privileged]
    assert privileged
    for distro, paths in DISTRO_PATHS.items():
        for probe in privileged:
            command = sudo_command(probe)
            for program, args in _sudo_invocations(command, paths):
                assert program not in ("sh", "bash", "dash", "timeout", "env", "sudo"), (probe.name, command)
                assert (program, args) in allowed, f"{distro}: {probe.name}: `{program} {args}` not in the drop-in"
    assert tuple(FLUSH_COMMAND.split(" ", 1)) in allowed
    # And nothing in the drop-in is a shell or takes arbitrary arguments.
    assert not [c for c in allowed
                if c[0] in ("sh", "bash", "dash", "env", "sudo", "su") or "*" in c[1].replace("@*", "")]


def test_a_compound_privileged_probe_needs_an_explicit_sudo_form():
    from postfix_compliance.facts.collect import _split_pipeline, sudo_command
    from postfix_compliance.facts.probes import Probe

    assert _split_pipeline("ausearch -m AVC -ts recent --raw | audit2why") == \
        ["ausearch -m AVC -ts recent --raw", "audit2why"]
    assert _split_pipeline('restorecon -Rnv "$(postconf -h queue_directory)"') is not None
    for compound in ("a; b", "a && b", "a || b", "for f in x; do y; done", "X=1 cmd", "(a)", "a & b"):
        assert _split_pipeline(compound) is None, compound
    with pytest.raises(ValueError, match="sudo_form"):
        sudo_command(Probe("new_probe", "cat /etc/shadow; true", privileged=True))
    assert sudo_command(Probe("postfix_check", "postfix check", privileged=True), mail_config="/etc/postfix-out") \
        == "sudo -n postfix -c /etc/postfix-out check"


def test_known_hosts_matching_like_openssh(tmp_path):
    import base64, hashlib, hmac
    from postfix_compliance.backends.hostkeys import HostKeyRefused, KnownHosts, fingerprint

    key, other = b"\x00\x00\x00\x0bssh-ed25519" + b"A" * 36, b"\x00\x00\x00\x0bssh-ed25519" + b"B" * 36
    b64 = base64.b64encode(key).decode()
    salt = b"0123456789abcdefghij"
    hashed = "|1|" + base64.b64encode(salt).decode() + "|" + base64.b64encode(
        hmac.new(salt, b"[10.0.0.7]:2222", hashlib.sha1).digest()).decode()
    path = tmp_path / "known_hosts"
    path.write_text(f"# comment\n{hashed} ssh-ed25519 {b64}\n*.example.test,!bad.example.test ssh-ed25519 {b64}\n"
                    f"[127.0.0.2]:2200 ssh-ed25519 {b64}\n@revoked revoked.example.test ssh-ed25519 {b64}\n")
    known = KnownHosts.resolve(str(path))
    assert known.verify("[10.0.0.7]:2222", "ssh-ed25519", key) == "known"  # hashed name
    assert known.verify("mail.example.test", "ssh-ed25519", key) == "known"  # wildcard
    assert known.verify("[127.0.0.2]:2200", "ssh-ed25519", key) == "known"  # "[" is literal
    with pytest.raises(HostKeyRefused, match="UNKNOWN"):
        known.verify("bad.example.test", "ssh-ed25519", key)  # negated
    with pytest.raises(HostKeyRefused, match="REVOKED"):
        known.verify("revoked.example.test", "ssh-ed25519", key)
    accepting = KnownHosts.resolve(str(path), accept_new=True)
    with pytest.raises(HostKeyRefused, match=re.escape(f"has CHANGED: it offers ssh-ed25519 {fingerprint(other)}")):
        accepting.verify("[127.0.0.2]:2200", "ssh-ed25519", other)
    before = path.read_text()
    assert accepting.verify("[127.0.0.9]:22", "ssh-ed25519", other) == "recorded"
    assert path.read_text() == before + f"[127.0.0.9]:22 ssh-ed25519 {base64.b64encode(other).decode()}\n"
    assert KnownHosts.resolve(str(path)).verify("[127.0.0.9]:22", "ssh-ed25519", other) == "known"


def test_known_hosts_index_finds_what_line_by_line_matching_finds_in_file_order(tmp_path):
    """A fleet's known_hosts is read once and indexed by plain name (matching every line for every host
    is quadratic): the index must give exactly the lines OpenSSH's matching gives, in file order, and
    see a line added or removed during the run."""
    import base64, hashlib, hmac
    from postfix_compliance.backends.hostkeys import (KnownHosts, known_hosts_table, patterns_match,
                                                      read_known_hosts)

    b64 = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"A" * 36).decode()
    salt = b"0123456789abcdefghij"
    hashed = "|1|" + base64.b64encode(salt).decode() + "|" + base64.b64encode(
        hmac.new(salt, b"[127.0.0.5]:2222", hashlib.sha1).digest()).decode()
    lines = [f"[127.0.0.{i}]:2222 ssh-ed25519 {b64}" for i in range(2, 40)]
    lines[5:5] = [f"[127.0.0.5]:2222,OTHER.example.test ecdsa-sha2-nistp256 {b64}", f"{hashed} ssh-rsa {b64}",
                  f"*.example.test,!bad.example.test ssh-ed25519 {b64}", f"[127.0.0.?]:2222 ssh-dss {b64}",
                  f"@revoked [127.0.0.5]:2222 ssh-ed25519 {b64}", f"a,,[127.0.0.5]:2222 ssh-ed25519 {b64}"]
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    names = ["[127.0.0.5]:2222", "[127.0.0.7]:2222", "[127.0.0.39]:2222", "other.example.test",
             "Other.Example.Test", "bad.example.test", "[127.0.0.99]:2222", "nothing"]
    for name in names:
        expected = [k for k in read_known_hosts([str(path)]) if patterns_match(k.patterns, name)]
        assert known_hosts_table((str(path),)).matching(name) == expected, name
    assert [k.keytype for k in known_hosts_table((str(path),)).matching("[127.0.0.5]:2222")] == [
        "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", "ssh-dss", "ssh-ed25519", "ssh-ed25519"]
    known = KnownHosts.resolve(str(path))
    assert known.known_keytypes("[127.0.0.5]:2222") == ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", "ssh-dss"]
    # Edited during the run (a key removed, another added): the next lookup reads the file again.
    path.write_text("\n".join(lines[:3]) + f"\n[127.0.0.77]:2222 ssh-ed25519 {b64}\n")
    assert known.known_keytypes("[127.0.0.77]:2222") == ["ssh-ed25519"]
    assert known.known_keytypes("[127.0.0.5]:2222") == []


def test_inventory_files_without_ansible(tmp_path):
    from postfix_compliance.inventory import inventory_urls

    ini = _write(tmp_path / "hosts.ini", """
lone ansible_host=10.0.0.9
[mail]
mail[01:02].example.test ansible_user=root
mail3 ansible_host=10.0.0.3 ansible_port=2222 ansible_become=true ansible_ssh_private_key_file=/k/id
[mail:vars]
ansible_user=scan
[all:children]
mail
""")
    assert inventory_urls(ini) == [  # Ansible's order (`ansible all --list-hosts`): ungrouped hosts first
        "ssh://10.0.0.9", "ssh://root@mail01.example.test", "ssh://root@mail02.example.test",
        "ssh://scan@10.0.0.3:2222?ssh_identity_file=%2Fk%2Fid&sudo=true"]
    assert inventory_urls(ini, "mail:!mail3", connection="paramiko") == [
        "paramiko://root@mail01.example.test", "paramiko://root@mail02.example.test"]


# ---------------------------------------------------------------------- helpers
def _write(path, text):
    path.write_text(text)
    return str(path)


def _fingerprint(host):
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", host.host_key + ".pub"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return out.split()[1]


def _ensure_group(name):
    try:
        grp.getgrnam(name)
        return False
    except KeyError:
        subprocess.run(["groupadd", "-r", name], check=True, timeout=120)
        return True


def _listed_commands(listing):
    """The commands `sudo -l -U user` prints after "may run the following commands"."""
    body = listing.split("may run the following commands", 1)[-1]
    commands = []
    for line in body.splitlines():
        line = line.strip()
        if not line or ":" not in line and not line.startswith("/"):
            continue
        if line.startswith("("):
            line = line.split(")", 1)[1].strip()
            line = re.sub(r"^[A-Z_]+:\s*", "", line)
        commands += [c.strip() for c in re.split(r",\s*(?=/)", line) if c.strip().startswith("/")]
    return commands


def test_paramiko_gives_up_on_a_silent_command_after_the_idle_deadline_not_the_whole_one(fleet):
    """A batch of probes prints after each probe: silence longer than one probe's timeout is a stalled
    link, noticed then, not after every probe of the batch could have timed out."""
    from postfix_compliance.backends import make_host
    from postfix_compliance.backends.hostkeys import CommandTimeout

    backend = make_host(fleet.live[0].url("paramiko"), known_hosts=fleet.known, ssh_config=fleet.config).backend
    try:
        started = time.monotonic()
        ticking = backend.run("for i in 1 2 3 4 5; do echo $i; sleep 0.4; done", timeout=60, idle_timeout=1.5)
        assert ticking.stdout == "1\n2\n3\n4\n5\n"  # 2 s in all: output keeps the idle deadline away
        assert time.monotonic() - started < 10
        started = time.monotonic()
        with pytest.raises(CommandTimeout, match="nothing received for"):
            backend.run("echo one; sleep 20; echo two", timeout=60, idle_timeout=1.5)
        assert time.monotonic() - started < 5
    finally:
        backend.close()
