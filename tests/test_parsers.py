"""Parsers against real outputs (tests/reference/) and hand-written samples of RHEL formats."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from postfix_compliance.facts import model as m
from postfix_compliance.facts.evidence import Evidence, evidence
from postfix_compliance.facts.parsers import PARSERS, parse, parser_for
from postfix_compliance.facts.probes import build_probes

REFERENCE = Path(__file__).parent / "reference"
SELINUX = "debian12-selinux-enforcing"
NO_SELINUX = "debian12-no-selinux-kernel"

# Every reference output and the probe whose parser reads it: (probe, stream, exit status).
REFERENCE_PROBES = {
    f"{SELINUX}/audit2why_output.txt": ("audit2why", "stdout", 0),
    f"{SELINUX}/avc_records_interpreted.txt": ("avc_denials", "stdout", 0),
    f"{SELINUX}/avc_records_raw.txt": ("avc_denials", "stdout", 0),
    f"{SELINUX}/etc_selinux_config.txt": ("selinux_config", "stdout", 0),
    f"{SELINUX}/getenforce_enforcing.txt": ("getenforce", "stdout", 0),
    f"{SELINUX}/getenforce_permissive.txt": ("getenforce", "stdout", 0),
    f"{SELINUX}/getsebool_a_postfix_lines.txt": ("getsebool_all", "stdout", 0),
    f"{SELINUX}/getsebool_one.txt": ("getsebool:postfix_local_write_mail_spool", "stdout", 0),
    f"{SELINUX}/getsebool_unknown_name.stderr.txt": ("getsebool:allow_postfix_local_write_mail_spool", "stderr", 255),
    f"{SELINUX}/journal_postfix_queue_dir_mislabelled.txt": ("journal", "stdout", 0),
    f"{SELINUX}/journal_postfix_relay_down.txt": ("journal", "stdout", 0),
    f"{SELINUX}/ls_Z_queue_dir_listing.txt": ("queue_dir_label", "stdout", 0),
    f"{SELINUX}/ls_Zd_deferred_mislabelled.txt": ("queue_dir_label", "stdout", 0),
    f"{SELINUX}/ls_Zd_queue_dir.txt": ("queue_dir_label", "stdout", 0),
    f"{SELINUX}/ls_Zd_daemon_directory.txt": ("daemon_labels", "stdout", 0),
    f"{SELINUX}/restorecon_Rnv_daemon_directory_mislabelled.txt": ("daemon_relabel", "stdout", 0),
    f"{SELINUX}/ps_eZ_daemons_in_master_domain.txt": ("processes", "stdout", 0),
    f"{SELINUX}/postconf_n.txt": ("postconf", "stdout", 0),
    f"{SELINUX}/postqueue_j_deferred.jsonl": ("queue_json", "stdout", 0),
    f"{SELINUX}/postqueue_p_deferred.txt": ("queue_text", "stdout", 0),
    f"{SELINUX}/proc_cmdline.txt": ("proc_cmdline", "stdout", 0),
    f"{SELINUX}/ps_eZ_postfix_lines.txt": ("processes", "stdout", 0),
    f"{SELINUX}/restorecon_Rnv_excerpt_mislabelled.txt": ("queue_dir_relabel", "stdout", 0),
    f"{SELINUX}/restorecon_Rv_excerpt_fix.txt": ("related_relabel", "stdout", 0),
    f"{SELINUX}/semanage_boolean_l_head.txt": ("semanage_boolean", "stdout", 0),
    f"{SELINUX}/semanage_boolean_l_postfix_lines.txt": ("semanage_boolean", "stdout", 0),
    f"{SELINUX}/semanage_boolean_l_postfix_lines_runtime_off.txt": ("semanage_boolean", "stdout", 0),
    f"{SELINUX}/semanage_fcontext_l_postfix_lines.txt": ("fcontext_local", "stdout", 0),
    f"{SELINUX}/semanage_port_l_smtp_lines.txt": ("port_labels", "stdout", 0),
    f"{SELINUX}/semodule_lfull_head.txt": ("policy_modules", "stdout", 0),
    f"{SELINUX}/sestatus_enforcing.txt": ("sestatus", "stdout", 0),
    f"{SELINUX}/sestatus_permissive_runtime.txt": ("sestatus", "stdout", 0),
    f"{SELINUX}/ss_lntp.txt": ("listeners", "stdout", 0),
    f"{NO_SELINUX}/mailq_deferred.txt": ("queue_text", "stdout", 0),
    f"{NO_SELINUX}/mailq_empty.txt": ("queue_text", "stdout", 0),
    f"{NO_SELINUX}/postqueue_j_deferred.jsonl": ("queue_json", "stdout", 0),
    f"{NO_SELINUX}/postqueue_j_empty.jsonl": ("queue_json", "stdout", 0),
}


def reference_evidence(name: str) -> Evidence:
    probe, stream, exit_status = REFERENCE_PROBES[name]
    text = (REFERENCE / name).read_text()
    return evidence(probe, exit_status=exit_status, **{stream: text})


def ref(name: str) -> object:
    """The fact parsed from one reference file."""
    return parse(reference_evidence(name))


@pytest.fixture
def utc(monkeypatch):
    """ausearch -i prints local time: read it as UTC, the zone of the reference host."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --------------------------------------------------------------------------- catalogue
def test_every_reference_file_has_a_parser_case():
    on_disk = {p.relative_to(REFERENCE).as_posix() for p in REFERENCE.rglob("*")
               if p.is_file() and p.suffix != ".md"}
    assert on_disk == set(REFERENCE_PROBES)


@pytest.mark.parametrize("name", sorted(REFERENCE_PROBES))
def test_reference_file_parses(name, utc):
    fact = ref(name)
    assert not isinstance(fact, (m.Unparsed, m.Unavailable)), fact


def test_every_probe_has_a_parser():
    for probe in build_probes(("allow_postfix_local_write_mail_spool",)):
        assert callable(parser_for(probe.name)), probe.name
    assert parser_for("getsebool:allow_postfix_local_write_mail_spool") is parser_for("getsebool:x")
    with pytest.raises(KeyError):
        parser_for("no_such_probe")


ALL_PROBES = sorted(PARSERS) + ["getsebool:allow_postfix_local_write_mail_spool"]


@pytest.mark.parametrize("probe", ALL_PROBES)
def test_no_result_is_unparsed(probe):
    ev = evidence(probe, exit_status=None, error="timeout after 30s")
    assert parser_for(probe)(ev) == m.Unparsed(probe, "no result: timeout after 30s")


@pytest.mark.parametrize("probe", ALL_PROBES)
def test_missing_tool_is_unavailable(probe):
    ev = evidence(probe, stderr=f"bash: line 1: {probe}: command not found\n", exit_status=127)
    assert isinstance(parser_for(probe)(ev), m.Unavailable)


def test_parse_safety_net():
    assert parse(evidence("no_such_probe")) == m.Unparsed("no_such_probe", "no parser for this probe")


# --------------------------------------------------------------------------- SELinux state
def test_getenforce():
    assert ref(f"{SELINUX}/getenforce_enforcing.txt") == m.SelinuxMode("enforcing")
    assert ref(f"{SELINUX}/getenforce_permissive.txt") == m.SelinuxMode("permissive")
    assert parse(evidence("getenforce", "Disabled\n")) == m.SelinuxMode("disabled")
    odd = parse(evidence("getenforce", "Maybe\n"))
    assert isinstance(odd, m.Unparsed) and "Maybe" in odd.reason


def test_sestatus():
    assert ref(f"{SELINUX}/sestatus_enforcing.txt") == m.SelinuxStatus(True, "default", "enforcing", "enforcing", True)
    assert ref(f"{SELINUX}/sestatus_permissive_runtime.txt") == m.SelinuxStatus(
        True, "default", "permissive", "enforcing", True)
    # README of the no-SELinux host: sestatus prints one line and exits 0.
    assert parse(evidence("sestatus", "SELinux status:                 disabled\n")) == m.SelinuxStatus(False)


def test_selinux_config():
    assert ref(f"{SELINUX}/etc_selinux_config.txt") == m.SelinuxConfig("enforcing", "default")
    quoted = 'SELINUX="Permissive"\n  # comment\n\nSELINUXTYPE=\'targeted\'\n'
    assert parse(evidence("selinux_config", quoted)) == m.SelinuxConfig("permissive", "targeted")
    missing = evidence("selinux_config", stderr="cat: /etc/selinux/config: No such file or directory\n", exit_status=1)
    assert isinstance(parse(missing), m.Unavailable)


def test_kernel_args():
    fact = ref(f"{SELINUX}/proc_cmdline.txt")
    assert fact.source == "/proc/cmdline"
    assert fact.args[0] == "root=/dev/vda" and "security=selinux" in fact.args and fact.args[-1] == "enforcing=1"


def test_boot_entries():
    out = ("/etc/default/grub:GRUB_CMDLINE_LINUX=\"crashkernel=auto rd.lvm.lv=rhel/root selinux=0\"\n"
           "/etc/default/grub:GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"
           "/boot/loader/entries/abc-5.14.0.conf:options root=/dev/mapper/rhel-root ro enforcing=0\n"
           "/boot/grub2/grubenv:kernelopts=root=/dev/mapper/rhel-root ro\n")
    fact = parse(evidence("boot_entries", out, exit_status=2))
    assert fact.entries == (
        m.KernelArgs("/etc/default/grub", ("crashkernel=auto", "rd.lvm.lv=rhel/root", "selinux=0")),
        m.KernelArgs("/etc/default/grub", ("quiet",)),
        m.KernelArgs("/boot/loader/entries/abc-5.14.0.conf", ("root=/dev/mapper/rhel-root", "ro", "enforcing=0")),
        m.KernelArgs("/boot/grub2/grubenv", ("root=/dev/mapper/rhel-root", "ro")),
    )
    assert parse(evidence("boot_entries", "", exit_status=1)) == m.BootConfig(())


# --------------------------------------------------------------------------- booleans
def test_getsebool_all():
    fact = ref(f"{SELINUX}/getsebool_a_postfix_lines.txt")
    assert len(fact.values) == 5
    assert fact.values["postfix_local_write_mail_spool"] is True
    assert fact.values["postfix_manage_all_user_content"] is False
    disabled = evidence("getsebool_all", stderr="getsebool:  SELinux is disabled\n", exit_status=1)
    assert parse(disabled) == m.Unavailable("getsebool_all", "getsebool:  SELinux is disabled")


def test_getsebool_one():
    assert ref(f"{SELINUX}/getsebool_one.txt") == m.BooleanLookup(
        "postfix_local_write_mail_spool", "postfix_local_write_mail_spool", True)
    assert ref(f"{SELINUX}/getsebool_unknown_name.stderr.txt") == m.BooleanLookup(
        "allow_postfix_local_write_mail_spool", None, None,
        error="Error getting active value for allow_postfix_local_write_mail_spool")


def test_getsebool_old_name_on_rhel():
    # RHEL's booleans.subs_dist maps the old name and getsebool prints the new one.
    ev = evidence("getsebool:allow_postfix_local_write_mail_spool", "postfix_local_write_mail_spool --> on\n")
    assert parse(ev) == m.BooleanLookup("allow_postfix_local_write_mail_spool", "postfix_local_write_mail_spool", True)
    disabled = evidence("getsebool:x", stderr="getsebool:  SELinux is disabled\n", exit_status=1)
    assert isinstance(parse(disabled), m.Unavailable)


def test_semanage_boolean():
    head = ref(f"{SELINUX}/semanage_boolean_l_head.txt")
    assert head.settings == {"aide_mmap_files": m.BooleanSetting("aide_mmap_files", False, False, "Allow aide to mmap files")}
    on = ref(f"{SELINUX}/semanage_boolean_l_postfix_lines.txt").settings
    off = ref(f"{SELINUX}/semanage_boolean_l_postfix_lines_runtime_off.txt").settings
    assert len(on) == len(off) == 5
    assert on["postfix_local_write_mail_spool"] == m.BooleanSetting(
        "postfix_local_write_mail_spool", True, True, "Allow postfix to local write mail spool")
    assert (off["postfix_local_write_mail_spool"].current, off["postfix_local_write_mail_spool"].default) == (False, True)
    assert off["postfix_read_generic_user_content"].current is True
    touching = "httpd_can_network_connect_cobbler(off  ,  off)  Allow httpd to can network connect cobbler\n"
    assert "httpd_can_network_connect_cobbler" in parse(evidence("semanage_boolean", touching)).settings


@pytest.mark.parametrize("stderr", [
    "ValueError: SELinux policy is not managed or store cannot be accessed.\n",
    "Could not open kernel policy /etc/selinux/default/policy/policy.kern\n",
])
def test_semanage_without_selinux(stderr):
    for probe in ("semanage_boolean", "fcontext_local", "permissive_domains", "port_labels"):
        assert isinstance(parse(evidence(probe, stderr=stderr, exit_status=1)), m.Unavailable)


# --------------------------------------------------------------------------- labels
def test_ls_z():
    assert ref(f"{SELINUX}/ls_Zd_queue_dir.txt") == m.FileLabels(
        (m.FileLabel("/var/spool/postfix", "system_u:object_r:postfix_spool_t:s0"),))
    assert ref(f"{SELINUX}/ls_Zd_deferred_mislabelled.txt").get("/var/spool/postfix/deferred").type == "tmp_t"
    listing = ref(f"{SELINUX}/ls_Z_queue_dir_listing.txt")
    assert len(listing.labels) == 19
    assert listing.get("active").type == "postfix_spool_t"
    assert listing.get("deferred").type == "postfix_spool_maildrop_t"
    assert listing.get("usr") == m.FileLabel("usr", "system_u:object_r:lib_t:s0")


def test_ls_z_other_forms():
    assert parse(evidence("queue_dir_label", "? /var/spool/postfix\n")) == m.FileLabels(
        (m.FileLabel("/var/spool/postfix", None),))
    rhel7 = "drwxr-xr-x. root root system_u:object_r:postfix_spool_t:s0 /srv/mail queue\n"
    assert parse(evidence("queue_dir_label", rhel7)) == m.FileLabels(
        (m.FileLabel("/srv/mail queue", "system_u:object_r:postfix_spool_t:s0"),))
    missing = evidence("queue_dir_label", stderr="ls: cannot access '/x': No such file or directory\n", exit_status=2)
    assert isinstance(parse(missing), m.Unparsed)


def test_restorecon():
    fact = ref(f"{SELINUX}/restorecon_Rnv_excerpt_mislabelled.txt")
    assert [item.path for item in fact.items] == [
        "/var/spool/postfix/deferred", "/var/spool/postfix/deferred/4",
        "/var/spool/postfix/deferred/8", "/var/spool/postfix/deferred/E"]
    assert {(i.current_type, i.expected_type) for i in fact.items} == {("tmp_t", "postfix_spool_maildrop_t")}
    assert ref(f"{SELINUX}/restorecon_Rv_excerpt_fix.txt") == fact
    # README of the no-SELinux host: restorecon -v prints nothing, exits 0.
    assert parse(evidence("queue_dir_relabel", "")) == m.LabelMismatches(())


def test_restorecon_rhel7_wording():
    out = ("restorecon reset /var/spool/postfix/deferred context "
           "system_u:object_r:tmp_t:s0->system_u:object_r:postfix_spool_t:s0\n"
           "Would reset /var/spool/postfix/my dir context unconfined_u:object_r:var_t:s0->system_u:object_r:postfix_spool_t:s0\n")
    fact = parse(evidence("queue_dir_relabel", out))
    assert fact.items == (
        m.Relabel("/var/spool/postfix/deferred", "system_u:object_r:tmp_t:s0", "system_u:object_r:postfix_spool_t:s0"),
        m.Relabel("/var/spool/postfix/my dir", "unconfined_u:object_r:var_t:s0", "system_u:object_r:postfix_spool_t:s0"),
    )


def test_restorecon_errors():
    gone = ("restorecon: SELinux: Could not get canonical path for /var/mail restorecon: "
            "No such file or directory.\n")
    unparsed = parse(evidence("related_relabel", stderr=gone, exit_status=255))
    assert isinstance(unparsed, m.Unparsed) and "canonical path" in unparsed.reason
    no_db = "Error while opening file contexts database: No such file or directory\n"
    assert isinstance(parse(evidence("related_relabel", stderr=no_db, exit_status=255)), m.Unavailable)


def test_fcontext_reference_lines():
    fact = ref(f"{SELINUX}/semanage_fcontext_l_postfix_lines.txt")
    assert len(fact.rules) == 84
    assert fact.rules[0] == m.FcontextRule("/etc/mailman/postfix-to-mailman\\.py", "regular file",
                                           "system_u:object_r:mailman_mail_exec_t:s0")
    assert m.FcontextRule("/var/spool/postfix/deferred(/.*)?", "directory",
                          "system_u:object_r:postfix_spool_maildrop_t:s0") in fact.rules
    assert fact.rules[-1].spec == "/var/spool/postfix/usr(/.*)?"
    assert fact.equivalences == {}


def test_fcontext_local_with_equivalences():
    out = ("SELinux fcontext                                   type               Context\n\n"
           "/srv/mailqueue(/.*)?                               all files          system_u:object_r:postfix_spool_t:s0 \n"
           "/srv/mail spool                                    socket             <<None>>\n\n"
           "SELinux Distribution fcontext Equivalence \n\n/run = /var/run\n\n"
           "SELinux Local fcontext Equivalence \n\n/srv/mailqueue = /var/spool/postfix\n")
    fact = parse(evidence("fcontext_local", out))
    assert fact.rules == (
        m.FcontextRule("/srv/mailqueue(/.*)?", "all files", "system_u:object_r:postfix_spool_t:s0"),
        m.FcontextRule("/srv/mail spool", "socket", None),
    )
    assert fact.equivalences == {"/srv/mailqueue": "/var/spool/postfix"}
    assert parse(evidence("fcontext_local", "")) == m.LocalFcontexts((), {})


# --------------------------------------------------------------------------- policy store
def test_permissive_domains():
    out = "\nBuiltin Permissive Types \n\nsanlk_resetd_t\n\nCustomized Permissive Types\n\npostfix_local_t\npostfix_smtp_t\n"
    fact = parse(evidence("permissive_domains", out))
    assert fact == m.PermissiveDomains(("sanlk_resetd_t",), ("postfix_local_t", "postfix_smtp_t"))
    assert parse(evidence("permissive_domains", "")) == m.PermissiveDomains((), ())


def test_policy_modules():
    fact = ref(f"{SELINUX}/semodule_lfull_head.txt")
    assert len(fact.modules) == 10
    assert fact.modules[0] == m.PolicyModule(100, "accountsd", "pp")
    assert fact.modules[-1] == m.PolicyModule(100, "amtu", "pp", disabled=True)
    local = parse(evidence("policy_modules", "400 postfix_local    pp         \n"))
    assert local.modules == (m.PolicyModule(400, "postfix_local", "pp"),)
    # README of the no-SELinux host.
    assert parse(evidence("policy_modules", "No modules.\n")) == m.PolicyModules(())


def test_port_labels():
    assert ref(f"{SELINUX}/semanage_port_l_smtp_lines.txt") == m.PortLabels(
        (m.PortLabel("smtp_port_t", "tcp", ((25, 25), (465, 465), (587, 587))),))
    out = ("SELinux Port Type              Proto    Port Number\n\n"
           "ephemeral_port_t               tcp      32768-60999\n"
           "smtp_port_t                    tcp      25, 465, 587, 2525\n")
    fact = parse(evidence("port_labels", out))
    assert fact.types_for(2525) == ("smtp_port_t",)
    assert fact.types_for(40000) == ("ephemeral_port_t",)


# --------------------------------------------------------------------------- audit
def test_avc_raw_reference():
    denials = ref(f"{SELINUX}/avc_records_raw.txt").denials
    assert len(denials) == 33
    first, last = denials[0], denials[-1]
    assert first == m.AvcDenial(
        "AVC", 1795871420.476, 14, ("search",), "system_u:system_r:udev_t:s0",
        "system_u:object_r:sysctl_fs_t:s0", "dir", False, pid=225, comm="systemd-udevd", path="fs",
        raw=first.raw)
    assert first.event_id == "1795871420.476:14" and first.raw.startswith("type=AVC msg=audit(1795871420.476:14)")
    assert (last.event_id, last.source_type, last.target_type, last.path) == (
        "1795871829.276:768", "postfix_showq_t", "tmp_t", "deferred")
    sources = {d.source_type for d in denials}
    assert {"udev_t", "getty_t", "systemd_tmpfiles_t"} <= sources
    assert {"postfix_master_t", "postfix_postqueue_t", "postfix_postdrop_t", "postfix_showq_t"} <= sources
    assert sum(d.source_type.startswith("postfix_") for d in denials) == 27
    assert any(d.permissions == ("read", "write") and d.path == "socket:[25908]" for d in denials)
    # One event can carry several denials (serial 373: three pipes).
    assert [d.path for d in denials if d.serial == 373] == ["pipe:[20718]", "pipe:[20717]", "pipe:[20716]"]


def test_avc_interpreted_reference(utc):
    raw = ref(f"{SELINUX}/avc_records_raw.txt").denials
    interpreted = ref(f"{SELINUX}/avc_records_interpreted.txt").denials
    strip = [(d.event_id, d.permissions, d.scontext, d.tcontext, d.tclass, d.pid, d.comm, d.path) for d in raw]
    assert [(d.event_id, d.permissions, d.scontext, d.tcontext, d.tclass, d.pid, d.comm, d.path)
            for d in interpreted] == strip


def test_user_avc_and_granted():
    user_avc = ("type=USER_AVC msg=audit(1700000000.123:456): pid=1 uid=0 auid=4294967295 ses=4294967295 "
                "subj=system_u:system_r:init_t:s0 msg='avc:  denied  { status } for auid=n/a uid=0 gid=0 "
                "path=\"/usr/lib/systemd/system/postfix.service\" cmdline=\"/usr/bin/systemctl status postfix\" "
                "function=\"mac_selinux_filter\" scontext=system_u:system_r:postfix_master_t:s0 "
                "tcontext=system_u:object_r:postfix_unit_file_t:s0 tclass=service permissive=0  "
                "exe=\"/usr/lib/systemd/systemd\" sauid=0 hostname=? addr=? terminal=?'")
    granted = ("type=AVC msg=audit(1700000001.000:457): avc:  granted  { setsecparam } for  pid=9 comm=\"x\" "
               "scontext=system_u:system_r:kernel_t:s0 tcontext=system_u:object_r:security_t:s0 tclass=security")
    notice = ("type=USER_AVC msg=audit(1700000002.000:458): pid=1 uid=0 auid=4294967295 ses=4294967295 "
              "subj=system_u:system_r:init_t:s0 msg='avc:  received policyload notice (seqno=2)  "
              "exe=\"/usr/lib/systemd/systemd\" sauid=0 hostname=? addr=? terminal=?'")
    permissive = ("node=mail1 type=AVC msg=audit(1700000003.500:459): avc:  denied  { write } for  pid=77 "
                  "comm=2F7573722F62696E2F6D7920746F6F6C name=\"spool\" scontext=system_u:system_r:postfix_local_t:s0 "
                  "tcontext=system_u:object_r:mail_spool_t:s0 tclass=dir permissive=1")
    fact = parse(evidence("avc_denials", "\n----\n".join(["", user_avc, granted, notice, permissive])))
    assert len(fact.denials) == 2
    systemd, local = fact.denials
    assert (systemd.record_type, systemd.event_id, systemd.permissions, systemd.tclass) == (
        "USER_AVC", "1700000000.123:456", ("status",), "service")
    assert (systemd.source_type, systemd.target_type, systemd.pid) == ("postfix_master_t", "postfix_unit_file_t", None)
    assert systemd.path == "/usr/lib/systemd/system/postfix.service" and systemd.permissive is False
    assert (local.permissive, local.comm, local.path, local.pid) == (True, "/usr/bin/my tool", "spool", 77)


def test_enriched_log_format():
    # log_format=ENRICHED (RHEL 8+) appends interpreted fields after \x1d.
    line = ("type=USER_AVC msg=audit(1700000000.123:456): pid=1 uid=0 auid=4294967295 ses=4294967295 "
            "subj=system_u:system_r:init_t:s0 msg='avc:  denied  { start } for auid=n/a uid=0 gid=0 "
            "path=\"/usr/lib/systemd/system/postfix.service\" scontext=system_u:system_r:postfix_master_t:s0 "
            "tcontext=system_u:object_r:postfix_unit_file_t:s0 tclass=service permissive=0  "
            "exe=\"/usr/lib/systemd/systemd\" sauid=0 hostname=? addr=? terminal=?'\x1dUID=\"root\" AUID=\"unset\"")
    (denial,) = parse(evidence("avc_denials", f"----\ntime->Tue Nov 14 22:13:20 2023\n{line}\n")).denials
    assert denial.permissions == ("start",) and denial.raw.endswith("terminal=?'")


def test_ausearch_outcomes():
    # README of the no-SELinux host: nothing found, and auditd never started.
    assert parse(evidence("avc_denials", stderr="<no matches>\n", exit_status=1)) == m.AvcDenials(())
    readme = evidence("avc_denials", stderr="Error opening /var/log/audit/audit.log\n", exit_status=1)
    assert isinstance(parse(readme), m.Unavailable)
    never = evidence("avc_denials", stderr="Error opening /var/log/audit/audit.log (No such file or directory)\n",
                     exit_status=1)
    assert isinstance(parse(never), m.Unavailable)
    denied = evidence("avc_denials", stderr="Error opening /var/log/audit/audit.log (Permission denied)\n",
                      exit_status=1)
    assert isinstance(parse(denied), m.Unparsed)


def test_audit2why_reference():
    verdicts = ref(f"{SELINUX}/audit2why_output.txt").verdicts
    denials = ref(f"{SELINUX}/avc_records_raw.txt").denials
    assert [v.event_id for v in verdicts] == [d.event_id for d in denials]
    assert {v.cause for v in verdicts} == {"Missing type enforcement (TE) allow rule."}
    assert all(v.booleans == () for v in verdicts)
    assert verdicts[-1] == m.Audit2WhyVerdict(
        "1795871829.276:768", "unconfined_u:unconfined_r:postfix_showq_t:s0-s0:c0.c1023",
        "system_u:object_r:tmp_t:s0", "dir", ("read",), "Missing type enforcement (TE) allow rule.")


AUDIT2WHY_RHEL = """\
type=AVC msg=audit(1700000000.123:45): avc:  denied  { write } for  pid=1 comm="local" name="root" dev="dm-0" ino=1 scontext=system_u:system_r:postfix_local_t:s0 tcontext=system_u:object_r:mail_spool_t:s0 tclass=file permissive=0

\tWas caused by:
\tThe boolean postfix_local_write_mail_spool was set incorrectly. 
\tDescription:
\tAllow postfix to local write mail spool

\tAllow access by executing:
\t# setsebool -P postfix_local_write_mail_spool 1
type=AVC msg=audit(1700000000.200:46): avc:  denied  { read } for  pid=2 comm="smtpd" name="x" scontext=system_u:system_r:postfix_smtpd_t:s0 tcontext=system_u:object_r:user_home_t:s0 tclass=file permissive=0

\tWas caused by:
\tOne of the following booleans was set incorrectly.
\tDescription:
\tAllow postfix to read all user content

\tAllow access by executing:
\t# setsebool -P postfix_read_all_user_content 1
\tDescription:
\tAllow postfix to manage all user content

\tAllow access by executing:
\t# setsebool -P postfix_manage_all_user_content 1
type=AVC msg=audit(1700000000.300:47): avc:  denied  { read } for  pid=3 comm="qmgr" name="y" scontext=system_u:system_r:postfix_qmgr_t:s0 tcontext=system_u:object_r:tmp_t:s0 tclass=file permissive=0

\tWas caused by:
\t\tUnknown - would be allowed by active policy
\t\tPossible mismatch between this policy and the one under which the audit message was generated.

\t\tPossible mismatch between current in-memory boolean settings vs. permanent ones.

type=AVC msg=audit(1700000000.400:48): avc:  denied  { write } for  pid=4 comm="pickup" name="z" scontext=system_u:system_r:postfix_pickup_t:s0 tcontext=unconfined_u:object_r:postfix_spool_t:s0 tclass=file permissive=0

\tWas caused by:

#Constraint rule:

#\tconstrain file { write } ((u1 == u2 -Fail-) );
#\tPossible cause is the source user (system_u) and target user (unconfined_u) are different.

"""


def test_audit2why_rhel_forms():
    verdicts = parse(evidence("audit2why", AUDIT2WHY_RHEL)).verdicts
    assert [(v.event_id, v.cause, v.booleans) for v in verdicts] == [
        ("1700000000.123:45", "The boolean postfix_local_write_mail_spool was set incorrectly.",
         ("postfix_local_write_mail_spool",)),
        ("1700000000.200:46", "One of the following booleans was set incorrectly.",
         ("postfix_read_all_user_content", "postfix_manage_all_user_content")),
        ("1700000000.300:47", "Unknown - would be allowed by active policy", ()),
        ("1700000000.400:48", "Constraint rule: constrain file { write } ((u1 == u2 -Fail-) );", ()),
    ]
    assert verdicts[0].tclass == "file" and verdicts[0].permissions == ("write",)
    assert verdicts[0].scontext == "system_u:system_r:postfix_local_t:s0"


def test_audit2why_outcomes():
    assert parse(evidence("audit2why", "", stderr="<no matches>\n")) == m.Audit2Why(())
    assert isinstance(parse(evidence("audit2why", stderr="sh: 1: audit2why: not found\n", exit_status=127)),
                      m.Unavailable)


# --------------------------------------------------------------------------- system
def test_processes():
    fact = ref(f"{SELINUX}/ps_eZ_postfix_lines.txt")
    assert [(p.domain, p.pid, p.comm) for p in fact.processes] == [
        ("postfix_master_t", 551, "master"), ("postfix_pickup_t", 552, "pickup"),
        ("postfix_qmgr_t", 553, "qmgr"), ("postfix_showq_t", 878, "showq")]
    no_selinux = ("LABEL                               PID TTY          TIME CMD\n"
                  "-                                     1 ?        00:00:01 init\n")
    assert parse(evidence("processes", no_selinux)).processes == (m.ProcessInfo(None, 1, "init"),)


def test_units():
    cmd = "systemctl is-active postfix auditd"
    assert parse(evidence("units_active", "active\ninactive\n", exit_status=3, command=cmd)) == m.UnitStates(
        {"postfix": "active", "auditd": "inactive"})
    # systemd < 243 prints nothing on stdout for a unit it cannot find.
    old = evidence("units_enabled", "enabled\n",
                   "Failed to get unit file state for auditd.service: No such file or directory\n",
                   exit_status=1, command="systemctl is-enabled postfix auditd")
    assert parse(old).states == {"postfix": "enabled", "auditd": "not-found"}
    no_systemd = evidence("units_active", stderr="System has not been booted with systemd as init system (PID 1). "
                          "Can't operate.\nFailed to connect to bus: Host is down\n", exit_status=1, command=cmd)
    assert isinstance(parse(no_systemd), m.Unavailable)


def test_listeners():
    fact = ref(f"{SELINUX}/ss_lntp.txt")
    assert fact.listeners == (
        m.Listener("tcp", "127.0.0.1", 25, (("master", 551),)),
        m.Listener("tcp", "0.0.0.0", 22, (("sshd", 337),)),
        m.Listener("tcp", "::", 22, (("sshd", 337),)),
    )
    more = ("State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n"
            "LISTEN 0      100                *:25              *:*    "
            "users:((\"master\",pid=9,fd=13),(\"master\",pid=9,fd=14))\n"
            "LISTEN 0      4096   127.0.0.1%lo:53        0.0.0.0:*\n")
    assert parse(evidence("listeners", more)).listeners == (
        m.Listener("tcp", "*", 25, (("master", 9),)), m.Listener("tcp", "127.0.0.1", 53, ()))


FIREWALL = """\
public (active)
  target: default
  icmp-block-inversion: no
  interfaces: eth0
  sources: 
  services: cockpit dhcpv6-client ssh
  ports: 2525/tcp
  protocols: 
  forward: yes
  masquerade: no
  forward-ports: 
  source-ports: 
  icmp-blocks: 
  rich rules: 
\trule family="ipv4" source address="10.0.0.0/8" service name="smtp" accept
"""


def test_firewall():
    assert parse(evidence("firewall", FIREWALL)) == m.FirewallState(True, ("cockpit", "dhcpv6-client", "ssh"), ("2525/tcp",))
    assert parse(evidence("firewall", stderr="FirewallD is not running\n", exit_status=252)) == m.FirewallState(False)
    assert isinstance(parse(evidence("firewall", stderr="sudo: firewall-cmd: command not found\n", exit_status=1)),
                      m.Unavailable)


def test_relay_resolution():
    out = ("relayhost=localhost\n127.0.0.1       STREAM localhost\n127.0.0.1       DGRAM  \n"
           "127.0.0.1       RAW    \n::1             STREAM\n")
    assert parse(evidence("relay_resolution", out)) == m.HostResolution("localhost", ("127.0.0.1", "::1"))
    assert parse(evidence("relay_resolution", "relayhost=\n")) == m.HostResolution("", ())
    assert parse(evidence("relay_resolution", "relayhost=nx.example\n", exit_status=2)) == m.HostResolution("nx.example", ())


def test_sasl_maps():
    out = ("root 600 1795869441 /etc/postfix/sasl_passwd\nroot 644 1795869442 /etc/postfix/sasl_passwd.db\n"
           "missing /etc/postfix/sasl_passwd.lmdb\n")
    assert parse(evidence("sasl_maps", out)).files == (
        m.FileStat("/etc/postfix/sasl_passwd", True, "root", 0o600, 1795869441),
        m.FileStat("/etc/postfix/sasl_passwd.db", True, "root", 0o644, 1795869442),
        m.FileStat("/etc/postfix/sasl_passwd.lmdb", False),
    )
    assert parse(evidence("sasl_maps", "")) == m.FileStats(())


def test_os_release():
    rhel = ('NAME="Red Hat Enterprise Linux"\nVERSION="9.4 (Plow)"\nID="rhel"\nID_LIKE="fedora"\n'
            'VERSION_ID="9.4"\nPRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"\n')
    assert parse(evidence("os_release", rhel)) == m.OsRelease("rhel", "9.4", ("fedora",), "Red Hat Enterprise Linux 9.4 (Plow)")
    debian = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n'
    assert parse(evidence("os_release", debian)) == m.OsRelease("debian", "12", (), "Debian GNU/Linux 12 (bookworm)")


# --------------------------------------------------------------------------- Postfix
def test_postconf():
    params = ref(f"{SELINUX}/postconf_n.txt").params
    assert len(params) == 23
    assert params["relayhost"] == "" and params["inet_interfaces"] == "loopback-only"
    assert params["smtp_tls_session_cache_database"] == "btree:${data_directory}/smtp_scache"
    warned = evidence("postconf", "queue_directory = /var/spool/postfix\n",
                      "postconf: warning: smtp_sasl_password_mapz: unknown parameter\n")
    assert parse(warned) == m.PostfixConfig({"queue_directory": "/var/spool/postfix"})


def test_postfix_check():
    warning = "postfix/postfix-script: warning: not owned by postfix: /var/spool/postfix/hold\n"
    assert parse(evidence("postfix_check", stderr=warning, exit_status=0)) == m.PostfixCheckResult(
        0, ("postfix/postfix-script: warning: not owned by postfix: /var/spool/postfix/hold",))
    assert parse(evidence("postfix_check", exit_status=1)) == m.PostfixCheckResult(1, ())


def test_queue_json_reference():
    debian = ref(f"{SELINUX}/postqueue_j_deferred.jsonl")
    assert debian.source == "json" and debian.deferred_count == 3
    assert debian.messages[0] == m.QueueMessage(
        "deferred", "4155253AD", 1795871696, 430, "root@selinux-vm.localdomain",
        (m.QueueRecipient("alice@example.com", "connect to 127.0.0.1[127.0.0.1]:2525: Connection refused"),), False)
    ci = ref(f"{NO_SELINUX}/postqueue_j_deferred.jsonl")
    assert ci.deferred_count == 5
    assert ci.messages[0].recipients[0].delay_reason.startswith("delivery temporarily suspended")
    assert ref(f"{NO_SELINUX}/postqueue_j_empty.jsonl") == m.QueueState((), "json")


def test_queue_json_postfix_3_3():
    # Postfix 3.3 (RHEL 8) prints no forced_expire.
    line = ('{"queue_name": "active", "queue_id": "4C2A8C0D5F", "arrival_time": 1700000000, "message_size": 300, '
            '"sender": "", "recipients": [{"address": "bob@example.com"}]}\n')
    (message,) = parse(evidence("queue_json", line)).messages
    assert message == m.QueueMessage("active", "4C2A8C0D5F", 1700000000, 300, "",
                                     (m.QueueRecipient("bob@example.com", None),), None)
    assert isinstance(parse(evidence("queue_json", line + "Mail queue is empty\n")), m.Unparsed)


def test_queue_json_unavailable():
    old = evidence("queue_json", stderr="postqueue: invalid option -- 'j'\npostqueue: fatal: usage: postqueue "
                   "-f | postqueue -i queueid | postqueue -p | postqueue -s site\n", exit_status=1)
    assert isinstance(parse(old), m.Unavailable)
    down = evidence("queue_json", stderr="postqueue: fatal: Queue report unavailable - mail system is down\n",
                    exit_status=1)
    assert parse(down) == m.Unparsed("queue_json", "postqueue: fatal: Queue report unavailable - mail system is down")


def test_queue_text_reference():
    debian = ref(f"{SELINUX}/postqueue_p_deferred.txt")
    assert debian.source == "text"
    assert [msg.queue_id for msg in debian.messages] == ["4155253AD", "8151B53AA", "EFB7353A8"]
    assert debian.messages[0] == m.QueueMessage(
        "deferred", "4155253AD", None, 430, "root@selinux-vm.localdomain",
        (m.QueueRecipient("alice@example.com", "connect to 127.0.0.1[127.0.0.1]:2525: Connection refused"),))
    ci = ref(f"{NO_SELINUX}/mailq_deferred.txt")
    assert ci.deferred_count == 5
    # A long reason is printed without indentation.
    assert ci.messages[0].recipients == (m.QueueRecipient(
        "someone@example.test", "delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:2525: Connection refused"),)
    assert ref(f"{NO_SELINUX}/mailq_empty.txt") == m.QueueState((), "text")


def test_queue_text_flags():
    out = ("-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
           "A1B2C3D4E5*     512 Mon Nov  3 09:01:02  MAILER-DAEMON\n"
           "                                         a@example.com\n"
           "                                         b@example.com\n\n"
           "F6E5D4C3B2!     100 Mon Nov  3 09:01:03  root@example.com\n"
           "                    (Permission denied)\n"
           "                                         c@example.com\n\n"
           "-- 1 Kbytes in 2 Requests.\n")
    fact = parse(evidence("queue_text", out))
    assert [(x.queue_name, x.queue_id, x.sender) for x in fact.messages] == [
        ("active", "A1B2C3D4E5", "MAILER-DAEMON"), ("hold", "F6E5D4C3B2", "root@example.com")]
    assert fact.messages[0].recipients == (m.QueueRecipient("a@example.com", None), m.QueueRecipient("b@example.com", None))
    assert fact.messages[1].recipients == (m.QueueRecipient("c@example.com", "Permission denied"),)
    down = evidence("queue_text", stderr="postqueue: fatal: Queue report unavailable - mail system is down\n",
                    exit_status=69)
    assert parse(down) == m.Unparsed("queue_text", "postqueue: fatal: Queue report unavailable - mail system is down")


def test_journal_reference():
    relay = ref(f"{SELINUX}/journal_postfix_relay_down.txt").lines
    assert len(relay) == 23
    assert relay[0].program == "systemd" and relay[0].pid == 1
    assert relay[-1] == m.LogLine(
        "Nov 28 13:14:57", "selinux-vm", "postfix/smtp", 1061,
        "4155253AD: to=<alice@example.com>, relay=none, delay=1.3, delays=0.23/0.78/0.28/0, dsn=4.4.1, "
        "status=deferred (connect to 127.0.0.1[127.0.0.1]:2525: Connection refused)", relay[-1].raw)
    mislabelled = ref(f"{SELINUX}/journal_postfix_queue_dir_mislabelled.txt").lines
    fatal = [line for line in mislabelled if "Permission denied" in line.message]
    assert [(line.program, line.pid) for line in fatal] == [("postfix/postsuper", 1391), ("postmulti", 1391)]


def test_log_variants():
    out = ("-- No entries --\n"
           "Nov  8 12:37:21 mx postfix/smtp[123]: connect refused\n"
           "Nov 28 12:37:21.123456 mx postfix/qmgr[9]: removed\n"
           "2026-11-28T12:37:21.123456+00:00 mx postfix/smtp[123]: msg\n"
           "Nov 28 12:37:22 mx postfix/master[1]: first line\n"
           "    continued\n")
    lines = parse(evidence("maillog", out)).lines
    assert [(line.timestamp, line.program, line.pid) for line in lines] == [
        ("Nov  8 12:37:21", "postfix/smtp", 123), ("Nov 28 12:37:21.123456", "postfix/qmgr", 9),
        ("2026-11-28T12:37:21.123456+00:00", "postfix/smtp", 123), ("Nov 28 12:37:22", "postfix/master", 1)]
    assert lines[-1].message == "first line\ncontinued"
    assert isinstance(parse(evidence("journal", stderr="No journal files were found.\n")), m.Unavailable)
    assert isinstance(parse(evidence("maillog", exit_status=1)), m.Unavailable)
    assert isinstance(parse(evidence("maillog", "not a log line\n")), m.Unparsed)


def test_exit_126_permission_denied_is_unavailable_not_a_finding():
    # Real, on the Debian 12 enforcing guest: root over SSH cannot execute /usr/sbin/postfix.
    from postfix_compliance.facts.evidence import Evidence
    from postfix_compliance.facts.model import Unavailable
    from postfix_compliance.facts.parsers import parse
    fact = parse(Evidence("postfix_check", "postfix check", 126, "", "sh: 1: postfix: Permission denied\n"))
    assert isinstance(fact, Unavailable) and "Permission denied" in fact.reason


def test_postqueue_j_guard_on_old_postfix_is_unavailable():
    # The probe asks mail_version first: an old Postfix never runs (and never logs) postqueue -j.
    from postfix_compliance.facts.evidence import Evidence
    from postfix_compliance.facts.model import Unavailable
    from postfix_compliance.facts.parsers import parse
    fact = parse(Evidence("queue_json", "postqueue -j", 3, "",
                          "postqueue -j needs Postfix 3.1 or newer (mail_version 2.10.1)\n"))
    assert isinstance(fact, Unavailable)


def test_daemon_directory_listing_with_right_aligned_contexts():
    """ls -Zd of several files aligns the contexts to the widest (the real guest's daemon directory)."""
    labels = parse(reference_evidence(f"{SELINUX}/ls_Zd_daemon_directory.txt"))
    assert isinstance(labels, m.FileLabels) and len(labels.labels) >= 30
    assert labels.get("/usr/lib/postfix/sbin/qmgr").type == "postfix_qmgr_exec_t"
    assert labels.get("/usr/lib/postfix/sbin/anvil").type == "postfix_exec_t"
    relabel = parse(reference_evidence(f"{SELINUX}/restorecon_Rnv_daemon_directory_mislabelled.txt"))
    assert [(r.path.rsplit("/", 1)[1], r.current_type, r.expected_type) for r in relabel.items] == [
        ("qmgr", "bin_t", "postfix_qmgr_exec_t"), ("nqmgr", "bin_t", "postfix_qmgr_exec_t"),
        ("pickup", "bin_t", "postfix_pickup_exec_t")]
