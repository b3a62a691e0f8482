"""What the compliance suite must report for each VM scenario, and what it reports today.

`truth` is what the suite should say about the guest after the scenario (check id -> "fail" or
"error"); `na` lists the checks that do not apply there; every other check must pass. The truth was
worked out on the guest itself: its journal, its audit log read directly, `systemctl`, `ls -Z`,
`restorecon -n`; the tier re-checks the key facts of it on every run.

`KNOWN` lists where the suite, run against the real guest, says something else today: false
positives and false negatives of the checks, each with its evidence. A scenario whose outcomes
differ from the truth only by known deviations is an expected failure (xfail, with the reasons);
any other difference fails the tier. When a check is fixed its deviation stops showing and the
scenario simply passes; then delete the entry here.

The same tables drive the offline replay of the recorded evidence (tests/vm/test_vm_replay.py).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Deviation:
    observed: str  # the outcome the suite gives today
    kind: str  # "false positive", "false negative", "not judged"
    why: str


# check id -> how the suite deviates from the truth today; Scenario.known says where it shows. (Empty: the
# last one, SVC-005 never judged on an enforcing Debian host, went with `postfix check` becoming opt-in.)
KNOWN: dict[str, Deviation] = {}

# Checks that legitimately do not apply to the guest: the default queue directory, Postfix on loopback
# only, no SASL maps; and SVC-005, since `postfix check` is opt-in (--postfix-check): run as root over SSH
# it leaves audit records of its own (and on refpolicy root's unconfined_r may not even run it: exit 126).
NA = ("LBL-003", "REL-003", "REL-004", "SVC-005")
# With master down the queue is not read (postqueue would run showq inside the login session), there are
# no daemons to judge and no listener port.
MASTER_DOWN_NA = NA + ("Q-001", "Q-002", "Q-003", "SVC-004", "REL-002")


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str  # also the fixture name: fixtures/hosts/vm-<name>.json
    truth: dict[str, str]
    known: tuple[str, ...] = ()  # KNOWN ids that show in this scenario today
    na: tuple[str, ...] = NA
    profile: str = "debian12"  # the suite's --profile: a shipped name, or a path under the repository


DAY = (
    Scenario("day-healthy", {}),
    Scenario("day-setenforce-0", {"SEL-001": "fail"}),
    # right after setenforce 1, default window: the permissive run left nothing behind
    Scenario("day-setenforce-1", {}),
    Scenario("day-relay-down", {"Q-001": "fail", "Q-002": "fail"}),
    # the suite's flush drains the queue: Q-001 is judged after it
    Scenario("day-relay-back", {}),
    # deferred labelled tmp_t, Postfix restarted (postsuper is denied; master stays down), mail submitted with
    # `mail` from the SSH login (postdrop's denials on the session's pipe: listed by AVC-002, not counted)
    Scenario("day-mislabelled", {"LBL-002": "fail", "AVC-002": "fail", "LOG-001": "fail", "SVC-001": "fail",
                                 "SVC-003": "fail"}, na=MASTER_DOWN_NA),
    # restorecon, restart, a run with --avc-since at the fix
    Scenario("day-fixed", {}),
    # local delivery denied while permissive (boolean off), then enforcing and the boolean on again: the
    # permissive=1 records are in the window (AVC-002), and triage calls them history, not masking
    Scenario("day-history", {"AVC-002": "fail"}),
)

# The targeted-policy guest (tests/vm/test_vm_targeted.py): Debian 12 with RHEL 9's targeted policy. Postfix's
# start at boot logs real denials there (post-install's `chmod 700 hold trace` as root in postfix_master_t,
# which has no fowner under RHEL's policy; the modes are right already), so the scenarios' audit window
# starts at the clean state, after them (the scenarios' `systemctl restart postfix` logs none).
TARGETED_PROFILE = "debian12-targeted"
OLD_NAME_PROFILE = "tests/vm/profiles/debian12-targeted-old-name.yaml"
TARGETED = (
    Scenario("targeted-healthy", {}, profile=TARGETED_PROFILE),
    Scenario("targeted-permissive", {"SEL-001": "fail"}, profile=TARGETED_PROFILE),
    Scenario("targeted-boolean-runtime-off", {
        "BOOL-001": "fail", "BOOL-002": "fail", "AVC-002": "fail", "Q-001": "fail", "Q-002": "fail",
    }, profile=TARGETED_PROFILE),
    Scenario("targeted-boolean-not-persistent", {"BOOL-002": "fail"}, profile=TARGETED_PROFILE),
    Scenario("targeted-old-name", {}, profile=OLD_NAME_PROFILE),
    Scenario("targeted-old-name-off", {"BOOL-001": "fail", "BOOL-002": "fail"}, profile=OLD_NAME_PROFILE),
    # Postfix runs (refpolicy: it does not start); showq cannot open deferred's subdirectories (labelled
    # postfix_qmgr_tmp_t by a type transition on tmp_t): the suite does not read a queue whose directories are
    # mislabelled (no showq denial of its own), so the queue checks do not apply; the operator's mailq logged
    # showq's denial (AVC-002), and triage names the label.
    Scenario("targeted-mislabelled-deferred", {
        "LBL-002": "fail", "LOG-001": "fail", "AVC-002": "fail",
    }, na=NA + ("Q-001", "Q-002", "Q-003"), profile=TARGETED_PROFILE),
    Scenario("targeted-custom-queue-no-equivalence", {"LBL-002": "fail", "LBL-003": "fail"},
             na=("REL-003", "REL-004", "SVC-005"), profile=TARGETED_PROFILE),
    Scenario("targeted-custom-queue-with-equivalence", {}, na=("REL-003", "REL-004", "SVC-005"),
             profile=TARGETED_PROFILE),
    Scenario("targeted-permissive-domain", {"SEL-005": "fail"}, profile=TARGETED_PROFILE),
    Scenario("targeted-local-module", {"BOOL-001": "fail", "BOOL-002": "fail", "MOD-001": "fail", "AVC-002": "fail"},
             profile=TARGETED_PROFILE),
    Scenario("targeted-auditd-stopped", {"AVC-001": "fail"}, profile=TARGETED_PROFILE),
    Scenario("targeted-relay-down", {"Q-001": "fail", "Q-002": "fail"}, profile=TARGETED_PROFILE),
    Scenario("targeted-relay-back", {}, profile=TARGETED_PROFILE),
)

SCENARIOS = {s.name: s for s in (
    Scenario("healthy", {}),
    # permissive: exec of /usr/sbin/postfix is allowed, so SVC-005 is judged (and passes)
    Scenario("boolean-runtime-off", {
        "BOOL-001": "fail", "BOOL-002": "fail",
        # local delivery to /var/mail/root is denied: bounced (5.2.0); the denial leaves a stale
        # /var/mail/root.lock, so the bounce to root is deferred ("File exists") and stays so
        "AVC-002": "fail", "LOG-001": "fail", "Q-001": "fail", "Q-002": "fail",
    }),
    Scenario("mislabelled-deferred", {
        "LBL-002": "fail", "AVC-002": "fail", "LOG-001": "fail",
        # `postfix start` runs postsuper, which cannot open deferred (tmp_t): postfix@- fails, nothing listens
        "SVC-001": "fail", "SVC-003": "fail",
    }, na=MASTER_DOWN_NA),
    Scenario("custom-queue-no-equivalence", {
        # cp -a kept the labels, so Postfix runs; the first relabel would set var_t on the whole queue
        "LBL-002": "fail", "LBL-003": "fail",
    }, na=("REL-003", "REL-004", "SVC-005")),
    Scenario("local-module", {
        "BOOL-001": "fail", "BOOL-002": "fail", "MOD-001": "fail",
        # the denials audit2allow was fed (permissive=1) are in the window
        "AVC-002": "fail",
    }),
    # `semanage permissive -a` installs a priority-400 module permissive_postfix_smtp_t: SEL-005's finding,
    # not MOD-001's (MOD-001 leaves permissive_* modules to SEL-005)
    Scenario("permissive-domain", {"SEL-005": "fail"}),
    Scenario("auditd-stopped", {"AVC-001": "fail"}),
    # An operator's day on one boot, no restore between the steps (tests/vm/test_operators_day.py).
    *DAY,
    *TARGETED,
)}


def failing(outcomes: dict[str, str]) -> dict[str, str]:
    return {cid: out for cid, out in outcomes.items() if out in ("fail", "error")}


def judge(scenario: Scenario, outcomes: dict[str, str]) -> tuple[list[str], list[str]]:
    """(unexpected differences, known deviations seen) between the suite's outcomes and the truth."""
    unexpected, seen = [], []
    ids = set(outcomes) | set(scenario.truth)
    for cid in sorted(ids):
        got = outcomes.get(cid, "missing")
        want = scenario.truth.get(cid) or ("not_applicable" if cid in scenario.na else "pass")
        if got == want:
            continue
        deviation = KNOWN.get(cid)
        if cid in scenario.known and deviation and got == deviation.observed:
            seen.append(f"{cid} ({deviation.kind}): {got}, should be {want}")
            continue
        unexpected.append(f"{cid}: {got}, expected {want}")
    return unexpected, seen
