"""The runbook's loop on the real SELinux-enforcing guest: detect -> fix with Ansible -> verify.

From the guest's clean state, break it three ways at once: the boolean postfix_local_write_mail_spool off
at runtime only (not persistent), the queue's `deferred` subdirectory labelled tmp_t, and the queue moved
to a custom directory (/srv/postfix-queue, labels copied) without an fcontext equivalence; then restart
Postfix (it fails: postsuper cannot open deferred). The suite finds it and writes --remediation-playbook;
`ansible-playbook` (the venv's, ansible from PyPI, pinned in pyproject.toml) previews it with
--check --diff (the guest stays broken), applies it over SSH to 127.0.0.1:PORT with the guest's pinned
host key, and the suite runs again with its audit and log window starting at the fix: every check that
failed passes. A second ansible-playbook run changes nothing (changed=0), and a local mail is delivered.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from test_vm_tier import LIB, apply
from vmtier import timing

from postfix_compliance.report import playbook

pytestmark = pytest.mark.vm

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

BREAK = """
setsebool postfix_local_write_mail_spool off             # runtime only: the stored value stays on
chcon -R -t tmp_t /var/spool/postfix/deferred            # a mislabelled queue subdirectory
systemctl stop postfix
cp -a /var/spool/postfix /srv/postfix-queue              # a custom queue directory, labels copied ...
postconf -e queue_directory=/srv/postfix-queue           # ... and no fcontext equivalence for it
systemctl restart postfix || true                        # postfix@- fails: postsuper cannot open deferred
"""
MUST_FAIL = {"BOOL-001", "BOOL-002", "LBL-002", "LBL-003", "SVC-001"}
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def ansible(book: str, inventory: str, home: str, *args: str) -> tuple[dict[str, int], str, float]:
    """Run ansible-playbook; (the recap of the one host, its output, seconds)."""
    env = {**os.environ, "ANSIBLE_HOME": home, "ANSIBLE_LOCAL_TEMP": os.path.join(home, "tmp"),
           "ANSIBLE_CONFIG": os.path.join(home, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_TIMEOUT": "60",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    started = time.monotonic()
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", inventory, *args, book], capture_output=True, text=True,
                          env=env, timeout=1200, cwd=home)
    elapsed = time.monotonic() - started
    output = proc.stdout + proc.stderr
    recaps = RECAP.findall(proc.stdout)
    assert len(recaps) == 1, f"ansible-playbook {' '.join(args)} (exit {proc.returncode}):\n{output[-6000:]}"
    _, ok, changed, unreachable, failed = recaps[0]
    recap = {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable), "failed": int(failed),
             "exit": proc.returncode}
    return recap, output, elapsed


def test_playbook_fixes_what_the_suite_found(guest, scenario_suite, tmp_path):
    apply(guest, "loop: boolean runtime-off, deferred tmp_t, custom queue without equivalence, restart", BREAK)
    ground = guest.sh("getsebool postfix_local_write_mail_spool; ls -Zd /srv/postfix-queue/deferred;"
                      "pidof master || echo no-master")
    assert "--> off" in ground and "tmp_t" in ground and "no-master" in ground, ground

    book = str(tmp_path / "fix.yml")
    before, _ = scenario_suite(None, f"--remediation-playbook={book}")
    failed_before = before.ids_with("fail")
    assert MUST_FAIL <= failed_before, (sorted(failed_before), before.stdout[-3000:])
    with open(book, encoding="utf-8") as handle:
        (play,) = playbook.load(handle.read())
    tags = {t for task in play["tasks"] for t in task.get("tags", [])}
    assert failed_before <= tags, sorted(failed_before - tags)
    name = str(play["hosts"])  # the name the suite reports for paramiko://root@127.0.0.1:PORT

    home = tempfile.mkdtemp(prefix="pfc-ans-")  # short: ssh's ControlPath socket lives under it
    try:
        inventory = os.path.join(home, "inventory.ini")
        with open(inventory, "w", encoding="utf-8") as handle:
            handle.write(
                f"{name} ansible_host=127.0.0.1 ansible_port={guest.port} ansible_user=root "
                f"ansible_ssh_private_key_file={guest.ssh_key} ansible_python_interpreter=/usr/bin/python3 "
                f"ansible_ssh_common_args='-o UserKnownHostsFile={guest.known_hosts} -o StrictHostKeyChecking=yes "
                "-o GlobalKnownHostsFile=/dev/null -o HostKeyAlgorithms=ssh-ed25519 -o IdentitiesOnly=yes'\n")

        check, output, seconds = ansible(book, inventory, home, "--check", "--diff")
        timing(f"loop: ansible-playbook --check --diff: {seconds:.1f}s, {check}")
        assert check["failed"] == 0 and check["unreachable"] == 0 and check["changed"] >= 3, output[-6000:]
        still = guest.sh("getsebool postfix_local_write_mail_spool; ls -Zd /srv/postfix-queue/deferred;"
                         "semanage fcontext -l -C | grep -c srv || true")
        assert "--> off" in still and "tmp_t" in still and still.split()[-1] == "0", still  # check mode changed nothing

        since = guest.guest_time()
        first, output, seconds = ansible(book, inventory, home)
        timing(f"loop: ansible-playbook (apply): {seconds:.1f}s, {first}")
        assert first["exit"] == 0 and first["failed"] == 0 and first["changed"] >= 3, output[-6000:]

        after, _ = scenario_suite(None, f"--avc-since={since}")
        outcomes = after.outcomes()
        still_failing = {cid: outcomes.get(cid) for cid in failed_before if outcomes.get(cid) != "pass"}
        assert not still_failing, (still_failing, {cid: after.record(cid)["message"][:300] for cid in still_failing})
        timing(f"loop: failed before {sorted(failed_before)}; after the playbook all pass; "
               f"exit {after.exit_status}, fail {sorted(after.ids_with('fail'))}")

        second, output, seconds = ansible(book, inventory, home)
        timing(f"loop: ansible-playbook again: {seconds:.1f}s, {second}")
        assert second["exit"] == 0 and second["failed"] == 0 and second["changed"] == 0, output[-6000:]

        # and mail flows again: a local delivery writes the mail spool (the boolean), through the relabelled queue
        started = time.monotonic()
        guest.sh(LIB + """
send_smtp root@selinux-vm.localdomain 'after the playbook'
wait_for 180 'grep -q "after the playbook" /var/mail/root 2>/dev/null'
""", timeout=400)
        timing(f"loop: a local mail delivered after the fix in {time.monotonic() - started:.1f}s")
    finally:
        shutil.rmtree(home, ignore_errors=True)
