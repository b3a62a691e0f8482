"""Triage on real evidence: denials linked to the queue, a dead relay that is not SELinux, masking."""

from __future__ import annotations

import os

import pytest

from selftest import REFERENCE_DIR
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.facts.parsers import parse
from postfix_compliance.triage import diagnose

ENFORCING = os.path.join(REFERENCE_DIR, "debian12-selinux-enforcing")
NO_MATCHES = dict(stdout="", exit_status=1, stderr="<no matches>\n")


def _fact(probe, file=None, stdout=None, exit_status=0, stderr=""):
    if file is not None:
        with open(os.path.join(ENFORCING, file), encoding="utf-8") as handle:
            stdout = handle.read()
    return parse(Evidence(probe, probe, exit_status, stdout, stderr))


def _mislabelled_host(prefix="postfix_", **overrides):
    """The real guest after `chcon -R -t tmp_t /var/spool/postfix/deferred`, Postfix restarted, mail sent."""
    facts = {
        "avc_denials": _fact("avc_denials", "avc_records_raw.txt"),
        "audit2why": _fact("audit2why", "audit2why_output.txt"),
        "queue_json": _fact("queue_json", "postqueue_j_deferred.jsonl"),
        "getenforce": _fact("getenforce", "getenforce_enforcing.txt"),
        "postconf": _fact("postconf", stdout="queue_directory = /var/spool/postfix\nmail_spool_directory = /var/mail\n"),
        "queue_dir_relabel": _fact("queue_dir_relabel", "restorecon_Rnv_excerpt_mislabelled.txt"),
        "journal": _fact("journal", "journal_postfix_queue_dir_mislabelled.txt"),
    }
    facts.update({k: _fact(k, **v) for k, v in overrides.items()})
    return diagnose(facts.get, prefix)


def test_mislabelled_queue_directory_is_the_cause_and_restorecon_the_fix():
    finding = _mislabelled_host()
    assert finding.kind == "selinux"
    assert finding.summary.startswith("queue stuck (3 deferred) because postfix_master_t was denied read on "
                                      "/var/spool/postfix/deferred labelled tmp_t")
    assert finding.causes[0].remedies[0] == {"kind": "relabel", "path": "/var/spool/postfix/deferred"}
    # the linked evidence: the denials on the queue, the stuck messages, the fatal log line
    assert any('name="deferred"' in line for line in finding.evidence)
    assert any(line.startswith("queue deferred 4155253AD") for line in finding.evidence)
    assert any("fatal: Postfix integrity check failed!" in line for line in finding.evidence)
    # denials of postqueue on sshd's pipes and the udev/getty/tmpfiles ones are never linked
    assert not any("pipe:[" in line or "udev_t" in line or "getty_t" in line for line in finding.evidence)


def test_the_profile_prefix_decides_which_denials_are_postfix():
    # The same host under a profile whose Postfix domains are named otherwise: no denial is Postfix's, so
    # the finding rests on the wrong label alone (as when no AVC record was logged).
    finding = _mislabelled_host(prefix="mta_")
    assert finding.kind == "selinux" and "no AVC record in the window" in finding.summary
    assert finding.summary == _mislabelled_host(avc_denials=NO_MATCHES).summary


def test_wrong_queue_label_without_any_denial_in_the_window_is_still_the_cause():
    # Seen on the guest once: dontaudit rules or an audit gap left no record, while postsuper logged
    # the Permission denied and the queue could not be read.
    finding = _mislabelled_host(avc_denials=NO_MATCHES)
    assert finding.kind == "selinux"
    assert "because /var/spool/postfix/deferred is labelled tmp_t where the policy says " \
           "postfix_spool_maildrop_t" in finding.summary
    assert "no AVC record in the window" in finding.summary
    assert finding.causes[0].remedies[0] == {"kind": "relabel", "path": "/var/spool/postfix/deferred"}


def test_relay_down_without_denials_is_not_selinux():
    finding = _mislabelled_host(avc_denials=NO_MATCHES, queue_dir_relabel=dict(stdout=""))
    assert finding.kind == "not-selinux"
    assert finding.summary == ("3 queued: relay 127.0.0.1[127.0.0.1]:2525 refuses connections: not an SELinux "
                               "problem; check the relay, DNS, firewall, credentials")
    assert "REL-003" in finding.related_checks
    (remedy,) = finding.causes[0].remedies
    assert remedy["kind"] == "manual" and "getent ahosts 127.0.0.1" in remedy["look"]


def test_only_unrelated_denials_and_an_empty_queue_give_no_finding():
    unrelated = "".join(line for line in open(os.path.join(ENFORCING, "avc_records_raw.txt"), encoding="utf-8")
                        if "postfix_" not in line)
    finding = _mislabelled_host(avc_denials=dict(stdout=unrelated), queue_json=dict(stdout=""),
                                queue_dir_relabel=dict(stdout=""), journal=dict(stdout=""))
    assert finding is None


def test_permissive_host_with_logged_denials_is_masked():
    finding = _mislabelled_host(getenforce=dict(stdout="Permissive\n"))
    assert finding.kind == "masked"
    assert "denials are logged but not enforced: mail flows now and will stop when enforcing returns" \
        in finding.summary
    # enforcing again, after the causes the hidden denials point to (here: the wrong label) are fixed
    assert {"kind": "selinux_state"} in finding.causes[0].remedies
    assert any(r == {"kind": "relabel", "path": "/var/spool/postfix/deferred"} for c in finding.causes[1:]
               for r in c.remedies), finding.causes


BOOLEAN_DENIAL = (
    "----\ntime->Sat Nov 28 13:20:01 2026\n"
    "type=AVC msg=audit(1795872001.100:900): avc:  denied  { append } for  pid=2001 comm=\"local\" "
    "name=\"root\" dev=\"vda\" ino=4242 scontext=system_u:system_r:postfix_local_t:s0 "
    "tcontext=system_u:object_r:mail_spool_t:s0 tclass=file permissive=0\n")
BOOLEAN_WHY = (
    "type=AVC msg=audit(1795872001.100:900): avc:  denied  { append } for  pid=2001 comm=\"local\" "
    "name=\"root\" dev=\"vda\" ino=4242 scontext=system_u:system_r:postfix_local_t:s0 "
    "tcontext=system_u:object_r:mail_spool_t:s0 tclass=file permissive=0\n\n"
    "\tWas caused by:\n\tThe boolean postfix_local_write_mail_spool was set incorrectly. \n"
    "\tDescription:\n\tAllow postfix to local write mail spool\n\n"
    "\tAllow access by executing:\n\t# setsebool -P postfix_local_write_mail_spool 1\n")


def test_boolean_off_denial_names_the_boolean_fix():
    finding = _mislabelled_host(avc_denials=dict(stdout=BOOLEAN_DENIAL), audit2why=dict(stdout=BOOLEAN_WHY),
                                queue_json=dict(stdout=""), queue_dir_relabel=dict(stdout=""))
    assert finding.kind == "selinux"
    assert finding.causes[0].remedies[0] == {"kind": "boolean", "name": "postfix_local_write_mail_spool", "value": True}
    assert "postfix_local_t was denied append" in finding.summary


@pytest.mark.parametrize("reason, expected", [
    ("connect to smtp.example.com[192.0.2.1]:587: Connection timed out", "cannot be reached"),
    ("Host or domain name not found. Name service error for name=smtp.example.com type=A: Host not found",
     "does not resolve"),
    ("SASL authentication failed; server smtp.example.com[192.0.2.1] said: 535 5.7.8 Error", "credentials"),
])
def test_other_network_causes(reason, expected):
    line = ('{"queue_name": "deferred", "queue_id": "ABC123", "arrival_time": 1795871696, "message_size": 430, '
            '"sender": "root@example.test", "recipients": [{"address": "a@example.com", "delay_reason": "%s"}]}\n'
            % reason)
    finding = _mislabelled_host(avc_denials=NO_MATCHES, queue_dir_relabel=dict(stdout=""),
                                queue_json=dict(stdout=line))
    assert finding.kind == "not-selinux" and expected in finding.summary


# ---------------------------------------------------------------------- through the suite, on snapshots
QUEUE_RELABEL = ("restorecon -Rv -e /var/spool/postfix/etc -e /var/spool/postfix/lib -e /var/spool/postfix/usr "
                 "-e /var/spool/postfix/dev -- /var/spool/postfix")
CHAINS = {
    # recorded on the real enforcing guest: chcon -t tmp_t deferred, Postfix restarted, mail sent; the plan's
    # relabel of the whole queue (LBL-002) covers the denied deferred, then the one restart
    "vm-mislabelled-deferred": ("selinux", QUEUE_RELABEL,
                                "queue unreadable (the mail system is down: no running master) because "
                                "postfix_master_t was denied read on /var/spool/postfix/deferred labelled tmp_t"),
    # recorded on the targeted-policy guest: the same change, Postfix runs; qmgr's hash subdirectories in the
    # tmp_t deferred get postfix_qmgr_tmp_t and showq (the operator's mailq) is denied one of them; the suite
    # does not read a queue so labelled: the fix is their parent
    "vm-targeted-mislabelled-deferred": ("selinux", QUEUE_RELABEL,
                                         "queue unreadable (not read: its directories do not carry the policy's "
                                         "labels) because postfix_showq_t was denied read on "
                                         "/var/spool/postfix/deferred/"),
    "boolean-off-local-delivery": ("selinux", "setsebool -P postfix_local_write_mail_spool on",
                                   "mail delivery fails because postfix_local_t was denied"),
    # not SELinux: a step for a person, with what to look at
    "vm-day-relay-down": ("not-selinux", "# by hand: relay 127.0.0.1[127.0.0.1]:2525 refuses connections",
                          "relay 127.0.0.1[127.0.0.1]:2525 refuses connections: not an SELinux problem"),
    "queue-not-draining": ("not-selinux", "# by hand: relay 127.0.0.1[127.0.0.1]:2525 refuses",
                           "relay 127.0.0.1[127.0.0.1]:2525 refuses"),
    # enforcing now, no permissive domain: the permissive=1 records are history, not masking: nothing to change,
    # the suite run again with a later window is the verdict
    "avc-permissive-denials": ("history", None,
                               "logged with permissive=1, while SELinux or the domain was permissive; SELinux "
                               "enforces now"),
    "healthy-rhel9-unrelated-denials": None,
    "vm-healthy": None,
}


def test_findings_through_the_suite(suite):
    hosts = ",".join(f"snapshot://fixtures/hosts/{name}.json" for name in CHAINS)
    run = suite(f"--hosts={hosts}", "-k", "SEL-001 or LBL-002")  # any check: the finding is per host
    diagnosis = run.results["diagnosis"]
    for name, expected in CHAINS.items():
        finding = diagnosis[f"snapshot://fixtures/hosts/{name}.json"]
        if expected is None:
            assert finding is None, (name, finding)
            continue
        kind, first_fix, summary = expected
        assert finding["kind"] == kind, (name, finding)
        if first_fix is None:
            assert finding["fix"] == [], (name, finding["fix"])
        else:  # the card's Fix is the plan's: the same steps the script and the playbook run
            assert finding["fix"][0].startswith(first_fix), (name, finding["fix"])
            plan = run.results["plan"][f"snapshot://fixtures/hosts/{name}.json"]
            assert finding["actions"] and set(finding["actions"]) <= {a["id"] for a in plan["actions"]}
        assert summary in finding["summary"], (name, finding["summary"])
        assert finding["verification"][0].startswith(
            f".venv/bin/python -m pytest --hosts=snapshot://fixtures/hosts/{name}.json -k "), finding
        assert finding["evidence"], name
