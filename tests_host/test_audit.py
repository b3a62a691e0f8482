"""Audit: auditd running, and no recent denials for Postfix domains."""

from postfix_compliance.checks import bullet_list, check, require_selinux
from postfix_compliance.denials import postfix_denials
from postfix_compliance.facts import model
from postfix_compliance.facts.host import not_applicable


@check(id="AVC-001", title="auditd is running", severity="high", section="Triage",
       rationale="Without auditd, AVC denials are not written to the audit log: every other audit check "
                 "would pass on a host that denies Postfix all day.",
       remediation=["systemctl enable --now auditd"],
       references=["ComplianceAsCode: service_auditd_enabled", "runbook: Quick Triage"])
def test_auditd_running(facts):
    units = facts.get("units_active")
    if isinstance(units, model.UnitStates) and "auditd" in units.states:
        assert units.states["auditd"] == "active", f"auditd is {units.states['auditd']} (systemctl is-active)"
        return
    processes = facts.need("processes")
    assert processes.named("auditd"), "no auditd process is running (ps -eZ); systemd not available to ask"


# Classes whose permissions are privileges of the process itself: no object to name (target = source).
CAPABILITY_CLASSES = ("capability", "capability2", "cap_userns", "cap2_userns")


def _describe(denial, verdicts):
    what = f"{denial.comm or '?'} ({denial.source_type}) denied {{{' '.join(denial.permissions)}}} "
    if denial.tclass in CAPABILITY_CLASSES and not denial.path:
        what += f"({denial.tclass})"  # e.g. chmod as root without fowner: "on ?" would say nothing
    else:
        what += f"on {denial.path or '?'} ({denial.target_type}, {denial.tclass})"
    if denial.permissive:
        what += " [permissive=1: logged, not enforced]"
    verdict = verdicts.get(denial.event_id)
    if verdict:
        what += f"; audit2why: {verdict.cause}"
        if verdict.booleans:
            what += " (boolean " + ", ".join(verdict.booleans) + ")"
    return what


@check(id="AVC-002", title="No AVC denials for Postfix domains in the window", severity="high",
       section="Triage",
       rationale="A denial with a postfix_* source is Postfix being stopped by policy right now: the queue "
                 "errors of the runbook's symptom. Denials on a login session's pipes, terminals or descriptors "
                 "(mail submitted with `mail` from an SSH shell) are listed apart and, by default "
                 "(profile audit.login_session_denials: show), do not fail the check: they say how a person "
                 "used the host, not how mail flows.",
       remediation=["ausearch -m AVC,USER_AVC -ts recent | audit2why",
                    "restorecon -Rv \"$(postconf -h queue_directory)\"   # when the target is mislabelled",
                    "setsebool -P <boolean> on   # when audit2why names a boolean"],
       references=["runbook: Quick Triage (ausearch -m avc -ts recent)"])
def test_no_postfix_denials(facts, profile):
    require_selinux(facts)
    denials = facts.get("avc_denials")
    if isinstance(denials, model.Unavailable):
        raise not_applicable(f"no audit log to search ({denials.reason}); see AVC-001")
    denials = facts.need("avc_denials")
    mail, session = postfix_denials(denials.denials, profile.postfix_domain_prefix, profile.login_session_types)
    why = facts.get("audit2why")
    verdicts = {v.event_id: v for v in why.verdicts} if isinstance(why, model.Audit2Why) else {}
    session_lines = [_describe(d, verdicts) + " [login session: how a person used the host, not mail flow]"
                     for d in session]
    counted = [_describe(d, verdicts) for d in mail]
    aside = ""
    if profile.login_session_denials_fail:
        counted += session_lines
    elif session:
        aside = (f"{len(session)} Postfix denials on a login session's descriptors, not counted "
                 "(profile audit.login_session_denials: show):\n" + bullet_list(session_lines))
    assert not counted, f"{len(counted)} denials for Postfix domains:\n" + bullet_list(counted) + \
        (f"\n{aside}" if aside else "")
    facts.say(aside)
