"""An operator's day on the real SELinux-enforcing guest: one boot, one sequence, no restore between steps.

The scenario tests (test_vm_tier.py) start each case from the saved clean state, so the suite only ever meets
a host with no past there. Here the guest keeps its past, as a production host does: every run happens inside
the audit window of the runs before it, and after the fixes of the steps before it. Each step checks the
outcomes against its truth (vm_scenarios.DAY), the triage finding, and that the suite's own runs left no
Postfix denial behind. Then scripts/change-validate.sh is run on the guest both ways, as an operator would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from test_vm_tier import RELAY_DOWN, apply, drain_seconds, truth_with_log, verdict
from vm_scenarios import SCENARIOS
from vmtier import REPO, timing

pytestmark = pytest.mark.vm

# Postfix-domain AVC records in the audit log since a point in time (guest clock), read on the guest directly.
POSTFIX_DENIALS_SINCE = ("ausearch --input-logs -m AVC,USER_AVC -ts {since} 2>/dev/null "
                         "| grep 'scontext=[^ ]*:postfix_' || true")


def finding(run) -> dict | None:
    [value] = run.results["diagnosis"].values()
    return value


def denials_since(guest, since: str) -> list[str]:
    """Postfix denials logged since `since` (MM/DD/YYYY HH:MM:SS on the guest's clock), as ausearch prints them."""
    day, clock = since.split()
    month, mday, year = day.split("/")
    out = guest.sh(POSTFIX_DENIALS_SINCE.format(since=f"{month}/{mday}/{year[2:]} {clock}"))
    return [line for line in out.splitlines() if line.strip()]


def truth_since(guest, name: str, since: str) -> dict[str, str]:
    """The scenario's truth, LOG-001's read from the guest's journal since `since` (the run's own window)."""
    day, clock = since.split()
    month, mday, year = day.split("/")
    bad = guest.sh(f"journalctl --no-pager -q -u postfix -u 'postfix@*' --since '{year}-{month}-{mday} {clock}' "
                   "| grep -Eci '(fatal|panic):|permission denied' || true")
    truth = dict(SCENARIOS[name].truth)
    if int(bad.strip() or 0):
        truth["LOG-001"] = "fail"
    return truth


def test_an_operators_day(guest, scenario_suite):
    args = ("--poll-interval=0.5", "--drain-timeout=60")

    # 1. healthy
    started = guest.guest_time()
    run, replay = scenario_suite("day-healthy", *args)
    verdict(run, "day-healthy", truth_with_log(guest, "day-healthy"), replay)
    assert finding(run) is None and run.exit_status == 0

    # 2. setenforce 0: SEL-001 fails, nothing else
    apply(guest, "day: setenforce 0", "setenforce 0")
    assert guest.sh("getenforce").strip() == "Permissive"
    run, replay = scenario_suite("day-setenforce-0", *args)
    assert run.record("SEL-001")["message"] == "SELinux is Permissive, expected Enforcing"
    verdict(run, "day-setenforce-0", truth_with_log(guest, "day-setenforce-0"), replay)

    # 3. setenforce 1 and a run right after, default window: the permissive run left nothing to report
    apply(guest, "day: setenforce 1", "setenforce 1")
    run, replay = scenario_suite("day-setenforce-1", *args)
    verdict(run, "day-setenforce-1", truth_with_log(guest, "day-setenforce-1"), replay)
    assert run.exit_status == 0 and finding(run) is None, finding(run)
    assert denials_since(guest, started) == [], "the suite's own runs left Postfix denials"

    # 4. relay down, mail over SMTP: the queue does not drain, and triage says it is not SELinux
    apply(guest, "day: relay down, 3 messages over SMTP", RELAY_DOWN)
    run, replay = scenario_suite("day-relay-down", *args)
    verdict(run, "day-relay-down", truth_with_log(guest, "day-relay-down"), replay)
    q2 = run.record("Q-002")
    assert "does not drain" in q2["message"] and "Connection refused" in q2["message"], q2["message"]
    timing(f"dead relay: Q-002 decided (fail) after {drain_seconds(q2):.1f}s")
    assert drain_seconds(q2) < 15, q2["notes"]  # decided early, not at the 60 s timeout
    assert finding(run)["kind"] == "not-selinux" and "not an SELinux problem" in finding(run)["summary"]

    # 5. relay back: the suite's flush drains the queue; Q-001 is judged after it; every check passes
    apply(guest, "day: relay back", "start_sink back")
    run, replay = scenario_suite("day-relay-back", *args)
    verdict(run, "day-relay-back", truth_with_log(guest, "day-relay-back"), replay)
    q1 = run.record("Q-001")
    assert q1["message"].startswith("3 deferred when collected, 0 after the suite's flush"), q1
    timing(f"live sink: Q-002 drained after {drain_seconds(run.record('Q-002')):.1f}s")
    assert guest.sh("journalctl -q --no-pager -u smtp-sink-back | grep -c 'relay down'").strip() == "3"
    assert run.exit_status == 0 and finding(run) is None, finding(run)

    # 6. a mislabelled queue subdirectory; Postfix restarted (it fails), mail submitted from the login
    apply(guest, "day: chcon deferred tmp_t, restart, mail from the login", """
chcon -R -t tmp_t /var/spool/postfix/deferred
systemctl restart postfix || true
for n in 1 2 3; do echo "stuck $n" | mail -s "stuck $n" someone@example.test; done
wait_for 30 '[ "$(ls /var/spool/postfix/maildrop | wc -l)" = 3 ]'
""")
    broken_at = guest.guest_time()
    run, replay = scenario_suite("day-mislabelled", *args)
    verdict(run, "day-mislabelled", truth_with_log(guest, "day-mislabelled"), replay)
    triage = finding(run)
    # the plan's relabel of the whole queue (LBL-002) covers the denied deferred; then the one restart
    assert triage["kind"] == "selinux" and triage["fix"][0].startswith("restorecon -Rv ") and \
        triage["fix"][0].endswith(" -- /var/spool/postfix") and "systemctl restart postfix" in triage["fix"], triage
    avc = run.record("AVC-002")["message"]
    counted = avc.split(" Postfix denials on a login session's descriptors, not counted")[0]
    assert "postsuper (postfix_master_t) denied {read} on deferred (tmp_t, dir)" in counted, avc
    # postdrop's denials on the login's pipe (mail submitted with `mail`) are listed apart, not counted
    assert "postdrop" not in counted, avc
    # the queue is not read with master down: no showq inside the login session, no denial of the suite's own
    assert not [d for d in denials_since(guest, broken_at) if 'comm="showq"' in d or 'comm="postqueue"' in d]

    # 7. restorecon and restart; a run whose window starts at the fix: every check passes
    fixed_at = guest.guest_time()
    apply(guest, "day: restorecon, restart", """
restorecon -Rv /var/spool/postfix >/dev/null
systemctl restart postfix
wait_for 60 'systemctl is-active -q postfix@-'
wait_for 120 '[ -z "$(postqueue -j)" ]'   # the three messages from maildrop go out to the sink
""")
    run, replay = scenario_suite("day-fixed", *args, f"--avc-since={fixed_at}")
    verdict(run, "day-fixed", truth_since(guest, "day-fixed", fixed_at), replay)
    assert run.exit_status == 0 and finding(run) is None, finding(run)

    # 8. history: a local delivery denied while permissive (the boolean off), then enforcing with the boolean
    #    on: the permissive=1 records are in the window, but nothing is masked now
    apply(guest, "day: boolean off while permissive, local mail, then enforcing and the boolean on", """
setsebool postfix_local_write_mail_spool off
setenforce 0
send_smtp root@selinux-vm.localdomain 'while permissive'
wait_for 60 'grep -q "while permissive" /var/mail/root 2>/dev/null'
setenforce 1
setsebool postfix_local_write_mail_spool on
""")
    run, replay = scenario_suite("day-history", *args)
    verdict(run, "day-history", truth_with_log(guest, "day-history"), replay)
    assert "permissive=1: logged, not enforced" in run.record("AVC-002")["message"]
    triage = finding(run)
    assert triage and triage["kind"] == "history", triage
    assert "SELinux enforces now" in triage["summary"]


# ---------------------------------------------------------------------------------------------- change-validate
def change_validate(guest, tmp_path, phase: str, name: str) -> tuple[int, str, dict]:
    """scripts/change-validate.sh PHASE on the guest as an operator runs it: (exit status, stderr, results)."""
    env = {**os.environ, "PFC_PYTHON": sys.executable}
    args = [*guest.suite_args(), "--poll-interval=0.5"] if phase == "pre" else []
    started = time.monotonic()
    proc = subprocess.run([os.path.join(REPO, "scripts", "change-validate.sh"), phase, "--name", name,
                           "--reports-root", str(tmp_path), *(["--", *args] if args else [])],
                          capture_output=True, text=True, timeout=1200, env=env)
    with open(tmp_path / "change" / name / phase / "results.json", encoding="utf-8") as handle:
        results = json.load(handle)
    failing = sorted(r["check_id"] for r in results["results"] if r["outcome"] in ("fail", "error"))
    timing(f"change-validate {name} {phase}: {time.monotonic() - started:.1f}s, exit {proc.returncode}, "
           f"fail {failing}")
    return proc.returncode, proc.stderr, results


def test_change_validate_on_the_guest(guest, vm_session, tmp_path):
    # A change that breaks: healthy -> pre -> boolean off -> post exits 1 naming BOOL-001
    status, said, _ = change_validate(guest, tmp_path, "pre", "boolean-off")
    assert status == 0, said[-3000:]
    apply(guest, "change: setsebool postfix_local_write_mail_spool off", "setsebool postfix_local_write_mail_spool off")
    status, said, _ = change_validate(guest, tmp_path, "post", "boolean-off")
    assert status == 1, said[-3000:]
    assert "REGRESSION BOOL-001" in said, said[-3000:]

    # A change that fixes: mislabelled queue -> pre -> restorecon and restart -> post exits 0, fixes listed,
    # and the post run's own report is clean: AVC-002 and LOG-001 judge what happened after the pre run
    loaded, ssh = vm_session.loadvm("clean")
    timing(f"change-validate: loadvm clean {loaded:.1f}s, SSH answered {ssh:.1f}s later")
    apply(guest, "change: chcon deferred tmp_t, restart", """
chcon -R -t tmp_t /var/spool/postfix/deferred
systemctl restart postfix || true
""")
    status, said, pre = change_validate(guest, tmp_path, "pre", "relabel")
    assert status == 0, said[-3000:]
    assert {r["check_id"] for r in pre["results"] if r["outcome"] == "fail"} >= {"LBL-002", "AVC-002"}
    apply(guest, "change: restorecon, restart", """
restorecon -Rv /var/spool/postfix >/dev/null
systemctl restart postfix
wait_for 60 'systemctl is-active -q postfix@-'
""")
    status, said, post = change_validate(guest, tmp_path, "post", "relabel")
    assert status == 0, said[-3000:]
    for check_id in ("LBL-002", "AVC-002", "LOG-001", "SVC-001"):
        assert f"fixed {check_id} on" in said, said[-3000:]
    failing = {r["check_id"]: r["message"] for r in post["results"] if r["outcome"] in ("fail", "error")}
    assert failing == {}, failing
    assert post["changes"]["new_avc_denials"] == [] and post["changes"]["regressions"] == []
