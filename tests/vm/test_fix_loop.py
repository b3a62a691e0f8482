"""The remediation plan applied for real: break -> judge -> apply the generated fix as written -> judge again.

On the real SELinux-enforcing guest, on one boot (the clean state is loaded once, then nothing is restored:
each case starts from whatever the ones before it left, as an operator's day does), each case breaks the
guest for real, runs the suite with --remediation-script and --remediation-playbook, applies one of them
exactly as generated, and runs the suite again with its audit and log window starting after the apply:

  - the shell script: the host's block, run on the guest as docs and the script's header say
    (`ssh root@HOST 'bash -s -- HOST' < SCRIPT`); it must exit 0 and say what it changed;
  - the playbook: `ansible-playbook` from the scanner (the venv's, over SSH with the guest's pinned host key),
    first with --check --diff where the case asks (the guest must stay broken), then for real.

Then every check that failed passes, the suite exits 0 and Postfix runs; a second apply changes nothing (the
script says "nothing to do", the playbook reports changed=0).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from test_vm_tier import apply
from vmtier import timing

from postfix_compliance.report import playbook

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

BOOLEAN_OFF = """
setsebool -P postfix_local_write_mail_spool off        # at runtime and persistently
send_smtp root@selinux-vm.localdomain 'boolean off'
wait_for 120 '[ "$(deferred)" -ge 1 ]'                 # the bounce to root, deferred on the stale lock file
"""
DEFERRED_MISLABELLED = """
systemctl stop 'smtp-sink*' || true                    # the relay down: the mail stays
q=$(postconf -h queue_directory)
chcon -R -t tmp_t "$q/deferred"
systemctl restart postfix || true                      # postfix@- fails: postsuper cannot open deferred
for n in 1 2 3; do echo "stuck $n" | mail -s "stuck $n" someone@example.test; done
wait_for 30 '[ "$(ls "$q/maildrop" | wc -l)" = 3 ]'
start_sink "$(date +%s)"                               # the relay is back: only the label stops the mail
"""
# RHEL 9's policy lets Postfix start with a tmp_t deferred directory (refpolicy does not): the mail is picked
# up and deferred into hash subdirectories that qmgr creates as postfix_qmgr_tmp_t (a type transition).
DEFERRED_MISLABELLED_TARGETED = """
systemctl stop 'smtp-sink*' || true                    # the relay down: the mail is deferred
q=$(postconf -h queue_directory)
chcon -R -t tmp_t "$q/deferred"
systemctl restart postfix
send_smtp someone@example.test 'stuck' 3
wait_for 120 '[ "$(find "$q/deferred" -type f | wc -l)" -ge 1 ]'
start_sink "$(date +%s)"                               # the relay is back: only the labels are wrong
"""
SPOOL_MISLABELLED = """
chcon -R -t tmp_t /var/mail
send_smtp root@selinux-vm.localdomain 'spool mislabelled'
sleep 5
"""
PERMISSIVE_DOMAIN = "semanage permissive -a postfix_smtp_t 2>/dev/null"
CONFIG_PERMISSIVE = "sed -i 's/^SELINUX=.*/SELINUX=permissive/' /etc/selinux/config"
DAEMONS_MISLABELLED = """
d=$(postconf -h daemon_directory)
chcon -t bin_t "$d/qmgr" "$d/pickup"                  # their programs mislabelled ...
systemctl restart postfix                              # ... so master starts them in its own domain
wait_for 30 '[ "$(ps -eZ | grep -c "postfix_master_t.* qmgr$")" = 1 ]'
"""
CUSTOM_QUEUE = """
q=$(postconf -h queue_directory)
new=/srv/postfix-queue-$(date +%s)
systemctl stop postfix
cp -a "$q" "$new"                                      # the labels copied: Postfix runs until a relabel
postconf -e queue_directory="$new"                     # ... and no fcontext equivalence for it
systemctl start postfix
send_smtp someone@example.test 'custom queue'
wait_for 60 '[ -z "$(postqueue -j)" ]'
"""
BOOLEAN_RUNTIME_DEFERRED_QUEUE = """
setsebool postfix_local_write_mail_spool off             # runtime only: the stored value stays on
q=$(postconf -h queue_directory)
new=/srv/postfix-queue-$(date +%s)
chcon -R -t tmp_t "$q/deferred"                          # a mislabelled queue subdirectory
systemctl stop postfix
cp -a "$q" "$new"                                        # a custom queue directory, labels copied ...
postconf -e queue_directory="$new"                       # ... and no fcontext equivalence for it
systemctl restart postfix || true                        # postfix@- fails: postsuper cannot open deferred
"""


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    breaks: str
    output: str  # "script" or "playbook"
    must_fail: frozenset[str]
    preview: bool = False  # playbook: --check --diff first, which must change nothing


CASES = (
    Case("boolean off at runtime and persistently", BOOLEAN_OFF, "script",
         frozenset({"BOOL-001", "BOOL-002", "Q-001", "Q-002"})),
    Case("deferred mislabelled, Postfix fails to start", DEFERRED_MISLABELLED, "script",
         frozenset({"LBL-002", "SVC-001"})),
    Case("/var/mail mislabelled", SPOOL_MISLABELLED, "script", frozenset({"LBL-004"})),
    Case("a permissive Postfix domain", PERMISSIVE_DOMAIN, "script", frozenset({"SEL-005"})),
    Case("SELinux permissive in /etc/selinux/config", CONFIG_PERMISSIVE, "script", frozenset({"SEL-002"})),
    Case("qmgr and pickup programs labelled bin_t", DAEMONS_MISLABELLED, "script", frozenset({"LBL-005", "SVC-004"})),
    Case("custom queue directory without equivalence", CUSTOM_QUEUE, "script", frozenset({"LBL-002", "LBL-003"})),
    Case("permissive domain, /var/mail mislabelled, SELinux permissive in config",
         "\n".join((PERMISSIVE_DOMAIN, SPOOL_MISLABELLED, CONFIG_PERMISSIVE)), "playbook",
         frozenset({"SEL-005", "LBL-004", "SEL-002"})),
    Case("boolean off at runtime, deferred mislabelled, custom queue without equivalence",
         BOOLEAN_RUNTIME_DEFERRED_QUEUE, "playbook", frozenset({"BOOL-001", "BOOL-002", "LBL-002", "LBL-003",
                                                                "SVC-001"}), preview=True),
)


# On the targeted-policy guest (RHEL 9's policy; the scheduled tier): the queue cases, and Debian's daemon
# programs relabelled bin_t (the case that first showed qmgr and pickup running in master's domain).
TARGETED_CASES = (
    Case("deferred mislabelled", DEFERRED_MISLABELLED_TARGETED, "script", frozenset({"LBL-002"})),
    Case("qmgr and pickup programs labelled bin_t", DAEMONS_MISLABELLED, "script", frozenset({"LBL-005", "SVC-004"})),
    Case("custom queue directory without equivalence", CUSTOM_QUEUE, "script", frozenset({"LBL-002", "LBL-003"})),
    Case("deferred mislabelled", DEFERRED_MISLABELLED_TARGETED, "playbook", frozenset({"LBL-002"})),
)


def _one_boot(vm_guests, flavour: str):
    """The guest on one boot for the whole module: its clean state loaded once, never again."""
    guest = vm_guests(flavour)
    loaded, ssh = guest.loadvm("clean")
    timing(f"fix loop ({flavour}): loadvm clean once {loaded:.1f}s, SSH {ssh:.1f}s later; no restore after this")
    return guest


@pytest.fixture(scope="module")
def day(vm_guests):
    return _one_boot(vm_guests, "refpolicy")


@pytest.fixture(scope="module")
def targeted_day(vm_guests):
    return _one_boot(vm_guests, "targeted")


def run_script(guest, script: str, selector: str) -> subprocess.CompletedProcess:
    """The host's block, as the script's header says: `ssh root@HOST 'bash -s -- HOST' < SCRIPT`."""
    with open(script, "rb") as handle:
        return subprocess.run([*guest.ssh_command(), f"bash -s -- {selector}"], stdin=handle, capture_output=True,
                              timeout=600)


def ansible(book: str, inventory: str, home: str, *args: str) -> tuple[dict[str, int], str, float]:
    """Run ansible-playbook; (the recap of the one host, its output, seconds)."""
    env = {**os.environ, "ANSIBLE_HOME": home, "ANSIBLE_LOCAL_TEMP": os.path.join(home, "tmp"),
           "ANSIBLE_CONFIG": os.path.join(home, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_TIMEOUT": "60",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    started = time.monotonic()
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", inventory, *args, book], capture_output=True, text=True,
                          env=env, timeout=1200, cwd=home)
    output = proc.stdout + proc.stderr
    recaps = RECAP.findall(proc.stdout)
    assert len(recaps) == 1, f"ansible-playbook {' '.join(args)} (exit {proc.returncode}):\n{output[-6000:]}"
    _, ok, changed, unreachable, failed = recaps[0]
    recap = {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable), "failed": int(failed),
             "exit": proc.returncode}
    return recap, output, time.monotonic() - started


def inventory_for(guest, name: str, home: str) -> str:
    path = os.path.join(home, "inventory.ini")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(
            f"{name} ansible_host=127.0.0.1 ansible_port={guest.port} ansible_user=root "
            f"ansible_ssh_private_key_file={guest.ssh_key} ansible_python_interpreter=/usr/bin/python3 "
            f"ansible_ssh_common_args='-o UserKnownHostsFile={guest.known_hosts} -o StrictHostKeyChecking=yes "
            "-o GlobalKnownHostsFile=/dev/null -o HostKeyAlgorithms=ssh-ed25519 -o IdentitiesOnly=yes'\n")
    return path


def _failing(run) -> dict[str, str]:
    return {r["check_id"]: r["message"][:300] for r in run.results["results"] if r["outcome"] in ("fail", "error")}


@pytest.mark.vm
@pytest.mark.parametrize("case", CASES, ids=[f"{c.output}: {c.name}" for c in CASES])
def test_generated_fix_applied_on_the_guest(day, suite, tmp_path, case):
    fix_loop(day, suite, tmp_path, case)


@pytest.mark.vm_targeted
@pytest.mark.parametrize("case", TARGETED_CASES, ids=[f"{c.output}: {c.name}" for c in TARGETED_CASES])
def test_generated_fix_applied_on_the_targeted_guest(targeted_day, suite, tmp_path, case):
    fix_loop(targeted_day, suite, tmp_path, case)


def fix_loop(guest, suite, tmp_path, case: Case) -> None:
    apply(guest, f"fix loop ({case.output}) {case.name}: broken", case.breaks)  # apply() adds LIB
    script, book = str(tmp_path / "fix.sh"), str(tmp_path / "fix.yml")
    before = suite(*guest.suite_args(), f"--remediation-script={script}", f"--remediation-playbook={book}",
                   timeout=1200)
    failed = set(_failing(before))
    assert case.must_fail <= failed, (sorted(failed), before.stdout[-3000:])
    host = before.results["results"][0]["host"]
    plan = before.results["plan"][host]
    timing(f"fix loop ({case.output}) {case.name}: failing {sorted(failed)}; plan: "
           + "; ".join(f"{a['kind']}" for a in plan["actions"]))

    home = tempfile.mkdtemp(prefix="pfc-fix-")  # short: ssh's ControlPath socket lives under it
    try:
        if case.output == "script":
            started = time.monotonic()
            first = run_script(guest, script, host)
            out = first.stdout.decode(errors="replace") + first.stderr.decode(errors="replace")
            timing(f"fix loop (script) {case.name}: applied in {time.monotonic() - started:.1f}s, exit "
                   f"{first.returncode}")
            assert first.returncode == 0, out
            assert "step(s) changed this host" in out, out
        else:
            with open(book, encoding="utf-8") as handle:
                (play,) = playbook.load(handle.read())
            inventory = inventory_for(guest, str(play["hosts"]), home)
            if case.preview:
                still = guest.sh("getenforce; semanage fcontext -l -C | grep -c srv || true")
                check, out, seconds = ansible(book, inventory, home, "--check", "--diff")
                assert check["failed"] == 0 and check["changed"] >= 1, out[-6000:]
                assert guest.sh("getenforce; semanage fcontext -l -C | grep -c srv || true") == still
                assert set(_failing(suite(*guest.suite_args(), "-k", " or ".join(sorted(case.must_fail)),
                                          timeout=1200))) >= case.must_fail, "--check changed the guest"
            first, out, seconds = ansible(book, inventory, home)
            timing(f"fix loop (playbook) {case.name}: applied in {seconds:.1f}s, {first}")
            assert first["exit"] == 0 and first["failed"] == 0 and first["changed"] >= 1, out[-6000:]

        since = guest.guest_time()
        after = suite(*guest.suite_args(), f"--avc-since={since}", timeout=1200)
        still = _failing(after)
        assert not still, f"after the {case.output}: {still}\n{after.stdout[-3000:]}"
        assert after.exit_status == 0, after.stdout[-3000:]
        assert guest.sh("pidof master || echo no-master").strip() != "no-master"
        timing(f"fix loop ({case.output}) {case.name}: after the apply every check passes, Postfix runs")

        if case.output == "script":
            again = run_script(guest, script, host)
            out = again.stdout.decode(errors="replace")
            assert again.returncode == 0 and "nothing to do: every step is in place" in out, out
        else:
            again, out, _ = ansible(book, inventory_for(guest, str(play["hosts"]), home), home)
            assert again["exit"] == 0 and again["failed"] == 0 and again["changed"] == 0, out[-6000:]
    finally:
        shutil.rmtree(home, ignore_errors=True)
