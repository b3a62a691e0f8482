"""SELinux mode, configuration, policy, boot arguments and permissive domains."""

from postfix_compliance.checks import bullet_list, check, require_selinux
from postfix_compliance.facts import model


@check(id="SEL-001", title="SELinux runs in enforcing mode", severity="high", section="Prevention",
       rationale="In permissive or disabled mode denials are not enforced: Postfix works by accident and "
                 "stops when enforcing returns; with SELinux disabled no policy protects the mail system.",
       remediation=["setenforce 1",
                    "# disabled: set SELINUX=enforcing in /etc/selinux/config, `touch /.autorelabel`, reboot"],
       rollback=["setenforce 0   # only while investigating; never leave a host permissive"],
       references=["CCE-80868-0", "ComplianceAsCode: selinux_state", "runbook: Prevention & Hardening"])
def test_enforcing(facts, profile):
    mode = facts.get("getenforce")
    if isinstance(mode, model.Unavailable):
        assert False, f"SELinux userland is missing: {mode.reason} (install policycoreutils/libselinux-utils)"
    mode = facts.need("getenforce")
    assert mode.mode == profile.selinux_mode, f"SELinux is {mode.mode.capitalize()}, expected Enforcing"


@check(id="SEL-002", title="/etc/selinux/config sets SELINUX=enforcing", severity="high", section="Prevention",
       rationale="A runtime `setenforce 1` does not survive a reboot: the configured mode is what the host "
                 "comes back with.", static=True,
       remediation=["sed -i 's/^SELINUX=.*/SELINUX=enforcing/' /etc/selinux/config"],
       rollback=["restore /etc/selinux/config from backup"],
       references=["ComplianceAsCode: selinux_state"])
def test_config_enforcing(facts, profile):
    config = facts.get("selinux_config")
    if isinstance(config, model.Unavailable):
        assert False, f"/etc/selinux/config is missing: {config.reason}"
    config = facts.need("selinux_config")
    assert config.selinux == profile.selinux_mode, \
        f"/etc/selinux/config has SELINUX={config.selinux or '(unset)'}, expected SELINUX={profile.selinux_mode}"


@check(id="SEL-003", title="Loaded policy and SELINUXTYPE match the profile", severity="medium",
       section="Prevention", static=True,
       rationale="Postfix's confinement is written for the distribution's policy (targeted on RHEL); mls or "
                 "minimum policies change which domains and booleans exist.",
       remediation=["sed -i 's/^SELINUXTYPE=.*/SELINUXTYPE=<policy>/' /etc/selinux/config",
                    "touch /.autorelabel && reboot"],
       references=["ComplianceAsCode: selinux_policytype"])
def test_policy_type(facts, profile):
    config = facts.need("selinux_config")
    problems = []
    if config.selinuxtype != profile.selinux_policy:
        problems.append(f"/etc/selinux/config has SELINUXTYPE={config.selinuxtype or '(unset)'}")
    status = facts.get("sestatus")
    if isinstance(status, model.SelinuxStatus) and status.enabled and status.loaded_policy != profile.selinux_policy:
        problems.append(f"loaded policy is {status.loaded_policy}")
    assert not problems, "; ".join(problems) + f"; expected {profile.selinux_policy}"


@check(id="SEL-004", title="No selinux=0 or enforcing=0 on the kernel command line or boot entries",
       severity="high", section="Prevention", static=True,
       rationale="A kernel argument overrides /etc/selinux/config: the host boots permissive or without "
                 "SELinux whatever the config says.",
       remediation=["grubby --update-kernel ALL --remove-args 'selinux enforcing'", "reboot"],
       references=["ComplianceAsCode: grub2_enable_selinux"])
def test_kernel_arguments(facts):
    sources = []
    if facts.collected("proc_cmdline"):  # a running kernel's arguments (not in an image gate)
        sources.append(facts.need("proc_cmdline"))
    boot = facts.get("boot_entries")
    if isinstance(boot, model.BootConfig):
        sources.extend(boot.entries)
    elif not sources:
        facts.need("boot_entries")
    found = [f"{src.source}: {arg}" for src in sources for arg in src.args if arg in ("selinux=0", "enforcing=0")]
    assert not found, "SELinux is switched off by kernel arguments:\n" + bullet_list(found)


@check(id="SEL-005", title="No Postfix domain is permissive", severity="high", section="Root cause",
       static=True,
       rationale="A permissive domain logs denials but allows everything: mail flows now and breaks the day "
                 "the exception is removed, and the domain is unconfined meanwhile.",
       remediation=["semanage permissive -d <domain>"],
       rollback=["semanage permissive -a <domain>   # only while investigating"],
       references=["runbook: Root Cause Analysis"])
def test_no_permissive_postfix_domain(facts, profile):
    require_selinux(facts)
    domains = facts.need("permissive_domains")
    postfix = [d for d in domains.all if d.startswith(profile.postfix_domain_prefix)]
    assert not postfix, "permissive Postfix domains: " + ", ".join(postfix)
