"""The suite against the targeted-policy guest: Debian 12 running RHEL 9's targeted policy (MCS), built from
source (vm/targeted-policy.sh), enforcing, with Debian's Postfix and OpenSSH in their RHEL domains.

The scenarios of the refpolicy tier (test_vm_tier.py) and what only targeted policy has: the old
`allow_*` boolean name resolved by booleans.subs_dist, a boolean that is on but not persistent, a custom
queue directory with its equivalence. Each scenario starts from `loadvm clean`, checks its ground truth on
the guest directly, runs the suite with --profile=debian12-targeted, and replays the recorded evidence
offline (fixtures/hosts/vm-targeted-*.json, replayed in the default run by test_vm_replay.py).

A scheduled tier (marker vm_targeted): deselected unless POSTFIX_COMPLIANCE_VM_TARGETED=1 or -m names it.
"""

from __future__ import annotations

import os

import pytest

from test_operators_day import denials_since
from test_vm_tier import (CUSTOM_QUEUE, LOCAL_MODULE, RELAY_DOWN, apply, drain_seconds, truth_with_log,
                          verdict)
from vm_scenarios import OLD_NAME_PROFILE
from vmtier import REPO, timing

pytestmark = pytest.mark.vm_targeted

# What RHEL 9's targeted policy built from ../shared/rhel-policy measures (its README): seinfo's counts.
TARGETED_TYPES, TARGETED_BOOLEANS = 5097, 348


def seinfo_count(out: str, what: str) -> int:
    for line in out.splitlines():
        name, _, value = line.strip().partition(":")
        if name.strip() == what:
            return int(value.split()[0])
    raise AssertionError(f"no {what} in seinfo's output:\n{out}")


def test_the_guest_runs_targeted_policy_confined(guest):
    """sestatus says targeted, enforcing, MCS; Postfix and sshd run in their RHEL domains; seinfo counts
    match RHEL 9's targeted policy; root's SSH login is unconfined_t (as on RHEL)."""
    status = guest.sh("sestatus")
    timing("targeted guest sestatus: " + " | ".join(line.strip() for line in status.splitlines()[:8]))
    assert "Loaded policy name:             targeted" in status, status
    assert "Current mode:                   enforcing" in status, status
    assert "Policy MLS status:              enabled" in status, status  # MCS is MLS with one sensitivity
    ps = guest.sh("ps -e -o label=,comm= | grep -E ' (master|qmgr|pickup|sshd)$'")
    timing("targeted guest ps -eZ: " + " | ".join(line.strip() for line in ps.splitlines()))
    domains = {line.split()[1]: line.split()[0].split(":")[2] for line in ps.splitlines()}
    assert domains.get("master") == "postfix_master_t", ps
    assert domains.get("qmgr") == "postfix_qmgr_t", ps
    assert domains.get("pickup") == "postfix_pickup_t", ps
    assert domains.get("sshd") == "sshd_t", ps
    assert guest.sh("id -Z").strip() == "unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023"
    seinfo = guest.sh("seinfo")
    types, booleans = seinfo_count(seinfo, "Types"), seinfo_count(seinfo, "Booleans")
    timing(f"targeted guest seinfo: {types} types, {booleans} booleans")
    assert (types, booleans) == (TARGETED_TYPES, TARGETED_BOOLEANS), seinfo
    assert guest.sh("semodule -l | grep -cx 'postfix' || true").strip() == "1"


def test_healthy(guest, scenario_suite):
    # the audit log itself: no Postfix denial since the clean state (the boot's are before it)
    assert denials_since(guest, guest.avc_since) == []
    run, replay = scenario_suite("targeted-healthy")
    verdict(run, "targeted-healthy", truth_with_log(guest, "targeted-healthy"), replay)
    assert run.exit_status == 0, run.stdout[-3000:]


def test_permissive(guest, scenario_suite):
    apply(guest, "targeted: setenforce 0", "setenforce 0")
    run, replay = scenario_suite("targeted-permissive")
    assert run.record("SEL-001")["message"] == "SELinux is Permissive, expected Enforcing"
    verdict(run, "targeted-permissive", truth_with_log(guest, "targeted-permissive"), replay)


def test_boolean_runtime_off(guest, scenario_suite):
    apply(guest, "targeted: boolean off without -P, local mail", """
setsebool postfix_local_write_mail_spool off
send_smtp root@selinux-vm.localdomain 'boolean off'
wait_for 120 'journalctl -q --no-pager -u "postfix@*" | grep -q "to=<root@selinux-vm.localdomain>.*status="'
""")
    ground = guest.sh("getsebool postfix_local_write_mail_spool; semanage boolean -l | grep '^postfix_local_write';"
                               "ausearch --input-logs -m AVC -ts recent -c local 2>/dev/null | grep -c 'tcontext=[^ ]*:mail_spool_t' || true")
    timing("targeted boolean-runtime-off ground truth: " + " | ".join(ground.split("\n")))
    assert "--> off" in ground and "(off  ,   on)" in ground, ground
    run, replay = scenario_suite("targeted-boolean-runtime-off")
    assert "runtime off, persistent on" in run.record("BOOL-002")["message"]
    verdict(run, "targeted-boolean-runtime-off", truth_with_log(guest, "targeted-boolean-runtime-off"),
            replay)


def test_boolean_on_but_not_persistent(guest, scenario_suite):
    apply(guest, "targeted: boolean off with -P, on again without", """
setsebool -P postfix_local_write_mail_spool off
setsebool postfix_local_write_mail_spool on
""", timeout=900)
    ground = guest.sh("getsebool postfix_local_write_mail_spool; semanage boolean -l | grep '^postfix_local_write'")
    assert "--> on" in ground and "(on   ,  off)" in ground, ground
    run, replay = scenario_suite("targeted-boolean-not-persistent")
    assert "runtime on, persistent off" in run.record("BOOL-002")["message"], run.record("BOOL-002")
    verdict(run, "targeted-boolean-not-persistent",
            truth_with_log(guest, "targeted-boolean-not-persistent"), replay)


def test_old_boolean_name_resolves(guest, scenario_suite):
    """A profile that names the boolean as RHEL 7 did: getsebool resolves it through booleans.subs_dist on
    the host, and the checks judge the current boolean; then, off persistently, they fail by it."""
    subs = guest.sh("grep -x 'allow_postfix_local_write_mail_spool postfix_local_write_mail_spool' "
                             "/etc/selinux/targeted/booleans.subs_dist; getsebool allow_postfix_local_write_mail_spool")
    assert subs.splitlines()[-1] == "postfix_local_write_mail_spool --> on", subs
    run, replay = scenario_suite("targeted-old-name", f"--profile={os.path.join(REPO, OLD_NAME_PROFILE)}")
    verdict(run, "targeted-old-name", truth_with_log(guest, "targeted-old-name"), replay)
    bool1 = run.record("BOOL-001")  # judged by the boolean the host resolved the old name to
    assert "booleans.subs_dist: allow_postfix_local_write_mail_spool" in bool1["references"], bool1
    assert bool1["remediation"] == ["setsebool -P postfix_local_write_mail_spool on"], bool1
    apply(guest, "targeted: boolean off with -P", "setsebool -P postfix_local_write_mail_spool off",
          timeout=900)
    run, replay = scenario_suite("targeted-old-name-off", f"--profile={os.path.join(REPO, OLD_NAME_PROFILE)}")
    verdict(run, "targeted-old-name-off", truth_with_log(guest, "targeted-old-name-off"), replay)


def test_mislabelled_deferred_queue(guest, scenario_suite):
    """Unlike refpolicy, Postfix starts with a tmp_t deferred directory; qmgr's hash subdirectories there get
    postfix_qmgr_tmp_t (a type transition on tmp_t), and showq, which cannot open them, is denied: the
    operator's `mailq` fails and logs the denial. The suite does not read the queue while its directories are
    mislabelled (the queue checks are not applicable, naming LBL-002), so it leaves no showq denial of its own;
    triage names the label, and the plan relabels the queue and restarts Postfix."""
    apply(guest, "targeted: chcon deferred tmp_t, restart, dead relay, mail, mailq", """
systemctl stop smtp-sink
chcon -R -t tmp_t /var/spool/postfix/deferred
systemctl restart postfix
send_smtp someone@example.test 'stuck' 3
wait_for 120 '[ "$(find /var/spool/postfix/deferred -type f | wc -l)" -ge 1 ]'
mailq >/dev/null 2>&1 || true     # what an operator runs first: showq is denied
""")
    ground = guest.sh("systemctl is-active postfix@-; ls -Zd /var/spool/postfix/deferred/* | awk '{print $1}' | sort -u;"
                      "journalctl -q --no-pager -u 'postfix@*' | grep -c 'showq.*scan_dir_push: open directory deferred/.*Permission denied';"
                      "ausearch --input-logs -m AVC -ts recent -c showq 2>/dev/null | grep -c 'tcontext=[^ ]*:postfix_qmgr_tmp_t' || true")
    timing("targeted mislabelled-deferred ground truth: " + " | ".join(ground.split()))
    lines = ground.split()
    assert lines[0] == "active" and "postfix_qmgr_tmp_t" in ground, ground
    assert int(lines[-2]) >= 1 and int(lines[-1]) >= 1, ground  # showq denied: logged and audited
    before = guest.guest_time()
    run, replay = scenario_suite("targeted-mislabelled-deferred")
    ours = [d for d in denials_since(guest, before) if 'comm="showq"' in d or 'comm="postqueue"' in d]
    assert not ours, f"the suite's own visit made showq denied (a footprint): {ours}"
    lbl = run.record("LBL-002")["message"]
    assert "/var/spool/postfix/deferred: tmp_t → postfix_spool_t" in lbl, lbl
    assert "postfix_qmgr_tmp_t → postfix_spool_t" in lbl, lbl
    assert "showq (postfix_showq_t) denied" in run.record("AVC-002")["message"], run.record("AVC-002")
    [finding] = run.results["diagnosis"].values()
    assert finding["kind"] == "selinux" and finding["fix"][0].startswith("restorecon -Rv ") and \
        finding["fix"][0].endswith(" -- /var/spool/postfix") and "systemctl restart postfix" in finding["fix"], finding
    verdict(run, "targeted-mislabelled-deferred", truth_with_log(guest, "targeted-mislabelled-deferred"), replay)


def test_custom_queue_without_equivalence(guest, scenario_suite):
    apply(guest, "targeted: queue moved to /srv/postfix-queue", CUSTOM_QUEUE)
    ground = guest.sh("ls -Zd /srv/postfix-queue; matchpathcon /srv/postfix-queue")
    assert "postfix_spool_t" in ground.splitlines()[0] and "var_t" in ground.splitlines()[1], ground
    run, replay = scenario_suite("targeted-custom-queue-no-equivalence")
    assert "/srv/postfix-queue: postfix_spool_t → var_t" in run.record("LBL-002")["message"]
    verdict(run, "targeted-custom-queue-no-equivalence",
            truth_with_log(guest, "targeted-custom-queue-no-equivalence"), replay)


def test_custom_queue_with_equivalence(guest, scenario_suite):
    apply(guest, "targeted: queue moved, equivalence, restorecon", CUSTOM_QUEUE + """
semanage fcontext -a -e /var/spool/postfix /srv/postfix-queue
restorecon -R /srv/postfix-queue
""", timeout=900)
    ground = guest.sh("matchpathcon /srv/postfix-queue /srv/postfix-queue/deferred; restorecon -Rn -v /srv/postfix-queue | wc -l")
    assert "postfix_spool_t" in ground.splitlines()[0] and ground.split()[-1] == "0", ground
    run, replay = scenario_suite("targeted-custom-queue-with-equivalence")
    verdict(run, "targeted-custom-queue-with-equivalence",
            truth_with_log(guest, "targeted-custom-queue-with-equivalence"), replay)


def test_permissive_postfix_domain(guest, scenario_suite):
    apply(guest, "targeted: semanage permissive -a postfix_smtp_t", "semanage permissive -a postfix_smtp_t",
          timeout=900)
    run, replay = scenario_suite("targeted-permissive-domain")
    assert "postfix_smtp_t" in run.record("SEL-005")["message"]
    verdict(run, "targeted-permissive-domain", truth_with_log(guest, "targeted-permissive-domain"), replay)


def test_local_module_from_audit2allow(guest, scenario_suite):
    apply(guest, "targeted: audit2allow -M postfix_local + semodule -i", LOCAL_MODULE, timeout=900)
    ground = guest.sh("semodule -lfull | grep -c '^400 postfix_local ' ; cat /root/postfix_local.te")
    assert ground.split()[0] == "1" and "allow postfix_local_t mail_spool_t:file" in ground, ground
    run, replay = scenario_suite("targeted-local-module")
    assert "postfix_local" in run.record("MOD-001")["message"]
    verdict(run, "targeted-local-module", truth_with_log(guest, "targeted-local-module"), replay)


def test_auditd_stopped(guest, scenario_suite):
    apply(guest, "targeted: auditd stopped", "systemctl stop auditd")
    assert guest.sh("systemctl is-active auditd || true").strip() == "inactive"
    run, replay = scenario_suite("targeted-auditd-stopped")
    verdict(run, "targeted-auditd-stopped", truth_with_log(guest, "targeted-auditd-stopped"), replay)


def test_dead_relay_then_live_sink(guest, scenario_suite):
    """One boot, two runs: the relay down (the queue does not drain, not an SELinux problem), then back
    (the suite's flush drains it)."""
    args = ("--poll-interval=0.5", "--drain-timeout=60")
    apply(guest, "targeted: relay down, 3 messages over SMTP", RELAY_DOWN)
    run, replay = scenario_suite("targeted-relay-down", *args)
    verdict(run, "targeted-relay-down", truth_with_log(guest, "targeted-relay-down"), replay)
    q2 = run.record("Q-002")
    assert "does not drain" in q2["message"] and "Connection refused" in q2["message"], q2["message"]
    [finding] = run.results["diagnosis"].values()
    assert finding["kind"] == "not-selinux", finding
    apply(guest, "targeted: relay back", "start_sink back")
    run, replay = scenario_suite("targeted-relay-back", *args)
    verdict(run, "targeted-relay-back", truth_with_log(guest, "targeted-relay-back"), replay)
    timing(f"targeted live sink: Q-002 drained after {drain_seconds(run.record('Q-002')):.1f}s")
    assert run.record("Q-001")["message"].startswith("3 deferred when collected, 0 after the suite's flush")
    assert run.exit_status == 0
