"""File contexts of the queue directory and Postfix's other directories, judged by the host's policy."""

from postfix_compliance.checks import bullet_list, check, require_labels, require_postfix, require_selinux
from postfix_compliance.facts import model
from postfix_compliance.facts.host import not_applicable


def _relabel_lines(mismatches):
    return [f"{m.path}: {m.current_type or m.current} → {m.expected_type or m.expected}" for m in mismatches.items]


def _assert_policy_labels(facts, probe: str, what: str) -> None:
    """The paths that probe's `restorecon -n` would relabel: none, or FAIL naming each."""
    require_postfix(facts)
    require_labels(facts)
    mismatches = facts.need(probe)
    assert not mismatches.items, f"{len(mismatches.items)} {what} mislabelled:\n" + \
        bullet_list(_relabel_lines(mismatches))


@check(id="LBL-001", title="The queue directory has the profile's type", severity="high",
       section="Primary fix", static=True,
       rationale="Postfix daemons may only use a queue directory labelled for them (postfix_spool_t); any "
                 "other type stops qmgr, pickup and postdrop with Permission denied.",
       remediation=["restorecon -Rv \"$(postconf -h queue_directory)\"", "postfix reload"],
       rollback=["none needed: restorecon restores the policy's own labels"],
       references=["runbook: Step-by-Step Diagnosis (ls -Zd /var/spool/postfix)"])
def test_queue_directory_type(facts, profile):
    require_postfix(facts)
    require_labels(facts)
    queue_dir = facts.postconf("queue_directory")
    labels = facts.need("queue_dir_label")
    label = labels.get(queue_dir) or (labels.labels[0] if labels.labels else None)
    assert label is not None, f"ls -Zd printed nothing for {queue_dir}"
    assert label.type == profile.queue_directory_type, \
        f"{label.path} is labelled {label.type or 'nothing (?)'}, expected {profile.queue_directory_type}"


@check(id="LBL-002", title="Nothing under the queue directory would be relabelled", severity="high",
       section="Primary fix", static=True,
       rationale="One mislabelled subdirectory (deferred, maildrop, private...) is enough for a stuck queue.",
       remediation=["restorecon -Rv \"$(postconf -h queue_directory)\"", "postfix reload"],
       references=["runbook: Solution – Primary Fix (restorecon -Rv /var/spool/postfix)"])
def test_queue_tree_labels(facts, profile):
    require_postfix(facts)
    require_labels(facts)
    mismatches = facts.need("queue_dir_relabel")
    queue_dir = facts.postconf("queue_directory").rstrip("/")
    copies = tuple(f"{queue_dir}/{sub}/" for sub in profile.chroot_copies)
    tolerated = [m for m in mismatches.items if m.path.startswith(copies)]
    wrong = [m for m in mismatches.items if m not in tolerated]
    if tolerated:
        facts.note(f"{len(tolerated)} files the distribution copies into the chroot "
                   f"({', '.join(profile.chroot_copies)}) differ from the policy's labels; not a queue fault")
    assert not wrong, f"{len(wrong)} paths under {queue_dir} are mislabelled:\n" + \
        bullet_list(_relabel_lines(model.LabelMismatches(tuple(wrong))))


@check(id="LBL-003", title="A custom queue directory has an fcontext equivalence to /var/spool/postfix",
       severity="high", section="Environment", static=True,
       rationale="restorecon labels a custom spool mount by the generic rules (var_t, default_t): without an "
                 "equivalence rule every relabel breaks Postfix again.",
       remediation=["semanage fcontext -a -e /var/spool/postfix <queue_directory>",
                    "restorecon -Rv <queue_directory>"],
       rollback=["semanage fcontext -d -e /var/spool/postfix <queue_directory>"],
       references=["runbook: Environment & Reproduction (custom spool mounts)"])
def test_custom_queue_equivalence(facts, profile):
    require_postfix(facts)
    require_selinux(facts)
    queue_dir = facts.postconf("queue_directory")
    default = profile.default_queue_directory
    if queue_dir.rstrip("/") == default.rstrip("/"):
        raise not_applicable(f"queue_directory is the default {default}")
    local = facts.need("fcontext_local")
    target = local.equivalences.get(queue_dir.rstrip("/"))
    assert target == default, \
        f"queue_directory {queue_dir} has no local fcontext equivalence to {default}" + \
        (f" (it is equivalent to {target})" if target else "") + \
        ": restorecon would label it by the generic rules"


@check(id="LBL-004", title="/etc/postfix, /var/lib/postfix and the mail spool carry policy labels",
       severity="medium", section="Related", static=True,
       rationale="Mislabelled configuration, data or mailbox files give the same Permission denied "
                 "failures outside the queue (lookup tables, TLS caches, local delivery).",
       remediation=["restorecon -Rv \"$(postconf -h config_directory)\" \"$(postconf -h data_directory)\" "
                    "\"$(postconf -h mail_spool_directory)\""],
       references=["design: RHEL file contexts"])
def test_related_labels(facts):
    _assert_policy_labels(facts, "related_relabel", "paths are")


@check(id="LBL-005", title="Postfix's daemon programs carry the policy's labels", severity="high",
       section="Root cause", static=True,
       rationale="A daemon program's label decides the domain it runs in: qmgr labelled bin_t instead of "
                 "postfix_qmgr_exec_t runs in master's wider domain, and its own policy (and its denials) no "
                 "longer apply.",
       remediation=["restorecon -Rv \"$(postconf -h daemon_directory)\"", "systemctl restart postfix"],
       references=["design: RHEL file contexts (/usr/libexec/postfix/*)"])
def test_daemon_program_labels(facts):
    _assert_policy_labels(facts, "daemon_relabel", "of Postfix's programs are")
