"""SELinux booleans the profile requires: runtime value and persistence."""

from postfix_compliance.checks import bullet_list, check, require_selinux
from postfix_compliance.facts import model


def _word(value: bool) -> str:
    return "on" if value else "off"


def _resolved(facts, name):
    """(host's name for the boolean, lookup) — the host resolves old names (allow_...) itself."""
    lookup = facts.boolean(name)
    if isinstance(lookup, model.BooleanLookup) and lookup.name:
        return lookup.name, lookup
    return None, lookup


@check(id="BOOL-001", title="Required Postfix booleans have their runtime value", severity="high",
       section="Primary fix",
       rationale="postfix_local_write_mail_spool off makes local delivery to /var/spool/mail fail with "
                 "permission errors (bounced or deferred mail).",
       remediation=["setsebool -P postfix_local_write_mail_spool on"],
       rollback=["setsebool -P postfix_local_write_mail_spool off"],
       references=["runbook: Solution – Primary Fix", "booleans.subs_dist: allow_postfix_local_write_mail_spool"])
def test_boolean_values(facts, profile):
    require_selinux(facts)
    problems = []
    for name, expected in profile.booleans:
        resolved, lookup = _resolved(facts, name)
        if resolved is None:
            if isinstance(lookup, model.BooleanLookup):
                problems.append(f"{name}: not defined by this host's policy ({lookup.error})")
                continue
            facts.need(f"getsebool:{name}")
        alias = f" (asked as {name})" if resolved != name else ""
        if lookup.value != expected:
            problems.append(f"{resolved}{alias} is {_word(lookup.value)}, expected {_word(expected)}")
    assert not problems, "booleans not as required:\n" + bullet_list(problems)


@check(id="BOOL-002", title="Required Postfix booleans are persistent", severity="medium",
       section="Primary fix", static=True,
       rationale="A boolean set without -P reverts at the next reboot or policy reload: the fix silently "
                 "undoes itself.",
       remediation=["setsebool -P postfix_local_write_mail_spool on"],
       rollback=["setsebool -P postfix_local_write_mail_spool off"],
       references=["runbook: Solution – Primary Fix"])
def test_boolean_persistence(facts, profile):
    require_selinux(facts)
    settings = facts.need("semanage_boolean")
    problems = []
    for name, expected in profile.booleans:
        resolved, lookup = _resolved(facts, name)
        if resolved is None:
            resolved = name  # semanage knows only current names; an unknown one fails below
        setting = settings.settings.get(resolved)
        if setting is None:
            problems.append(f"{name}: not listed by semanage boolean -l")
        elif setting.default != expected or setting.current != setting.default:
            problems.append(f"{resolved}: runtime {_word(setting.current)}, persistent {_word(setting.default)}, "
                            f"expected {_word(expected)} for both")
    assert not problems, "booleans not persistent as required:\n" + bullet_list(problems)
