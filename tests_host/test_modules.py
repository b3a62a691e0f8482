"""Local policy modules: no audit2allow-made module quietly widening Postfix's rights."""

from postfix_compliance.checks import check, require_selinux


@check(id="MOD-001", title="No local policy module for Postfix (priority 400), unless waived",
       severity="medium", section="Rollback", static=True,
       rationale="`audit2allow -M postfix_local` turns denials into permanent allow rules: it hides a label "
                 "or boolean problem and broadens the policy beyond what the runbook accepts.",
       remediation=["semodule -r postfix_local"],
       rollback=["semodule -i postfix_local.pp"],
       references=["runbook: Solution – Alternative Approaches; Rollback Plan"])
def test_no_local_postfix_module(facts, profile):
    require_selinux(facts)
    modules = facts.need("policy_modules")
    local = [m for m in modules.modules if m.priority == 400 and not m.disabled]
    # `semanage permissive -a T` makes a module permissive_T at priority 400: SEL-005 reports those.
    suspect = [m.name for m in local if "postfix" in m.name and not m.name.startswith("permissive_")
               and m.name not in profile.allowed_local_modules]
    assert not suspect, "local policy modules for Postfix: " + ", ".join(suspect)
