"""Fuzzing: every parser, fed arbitrary or mangled output, returns a fact, Unparsed or
Unavailable and never raises. Parsers are called directly, without `parse`'s safety net."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postfix_compliance.facts import model as m
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.facts.parsers import PARSERS, parser_for
from postfix_compliance.facts.probes import build_probes

REFERENCE = Path(__file__).parent / "reference"
FILES = {p.name: p.read_text() for p in sorted(REFERENCE.rglob("*")) if p.is_file() and p.suffix != ".md"}
BOOLEAN_PROBE = "getsebool:allow_postfix_local_write_mail_spool"

# Each probe's own outputs (reference files by name prefix, or short hand-written samples), so that
# mangled input reaches deep into its parser; other probes' outputs are fed too.
OWN_FILES = {
    "audit2why": "audit2why", "avc_denials": "avc_records", "selinux_config": "etc_selinux",
    "getenforce": "getenforce", "getsebool_all": "getsebool_a", BOOLEAN_PROBE: "getsebool_",
    "journal": "journal", "maillog": "journal", "queue_dir_label": "ls_Z", "postconf": "postconf_n",
    "daemon_labels": "ls_Zd_daemon", "daemon_relabel": "restorecon_Rnv_daemon",
    "queue_json": "postqueue_j", "queue_text": ("postqueue_p", "mailq"), "proc_cmdline": "proc_cmdline",
    "processes": "ps_eZ", "queue_dir_relabel": "restorecon", "related_relabel": "restorecon",
    "semanage_boolean": "semanage_boolean", "fcontext_local": "semanage_fcontext",
    "port_labels": "semanage_port", "policy_modules": "semodule", "sestatus": "sestatus", "listeners": "ss_",
}
OWN_SAMPLES = {
    "os_release": 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n',
    "boot_entries": '/etc/default/grub:GRUB_CMDLINE_LINUX="quiet selinux=0"\n/boot/grubenv:kernelopts=root=/x ro\n'
                    "/boot/loader/entries/a.conf:options root=/x enforcing=0\n",
    "queue_dir_matchpathcon": "/var/spool/postfix verified.\n/x has context a:b:c:s0, should be a:b:d:s0\n",
    "permissive_domains": "\nBuiltin Permissive Types \n\nsanlk_t\n\nCustomized Permissive Types\n\npostfix_local_t\n",
    "units_active": "active\ninactive\n", "units_enabled": "enabled\ndisabled\n",
    "firewall": "public (active)\n  target: default\n  services: ssh smtp\n  ports: 25/tcp\n  rich rules: \n\trule x\n",
    "relay_resolution": "relayhost=mx\n127.0.0.1       STREAM mx\n::1             DGRAM\n",
    "sasl_maps": "root 600 1795869441 /etc/postfix/sasl_passwd\nmissing /etc/postfix/sasl_passwd.lmdb\n",
    "postfix_check": "postfix/postfix-script: warning: not owned by postfix: /var/spool/postfix/hold\n",
    "host_clock": "1795871639 +0100\n",
}


def own_samples(probe: str) -> list[str]:
    if probe in OWN_SAMPLES:
        return [OWN_SAMPLES[probe]]
    return [text for name, text in FILES.items() if name.startswith(OWN_FILES[probe])]

COMMANDS = {p.name: p.command for p in build_probes(("allow_postfix_local_write_mail_spool",))}

# The fact type each probe's parser returns when it understands the output.
FACT_TYPES = {
    "os_release": m.OsRelease, "host_clock": m.HostClock, "getenforce": m.SelinuxMode, "sestatus": m.SelinuxStatus,
    "selinux_config": m.SelinuxConfig, "proc_cmdline": m.KernelArgs, "boot_entries": m.BootConfig,
    "getsebool_all": m.Booleans, "semanage_boolean": m.BooleanSettings, "postconf": m.PostfixConfig,
    "queue_dir_label": m.FileLabels, "queue_dir_relabel": m.LabelMismatches,
    "daemon_labels": m.FileLabels, "daemon_relabel": m.LabelMismatches,
    "related_relabel": m.LabelMismatches,
    "fcontext_local": m.LocalFcontexts, "permissive_domains": m.PermissiveDomains,
    "policy_modules": m.PolicyModules, "port_labels": m.PortLabels, "avc_denials": m.AvcDenials,
    "audit2why": m.Audit2Why, "processes": m.Processes, "units_active": m.UnitStates,
    "units_enabled": m.UnitStates, "listeners": m.Listeners, "postfix_check": m.PostfixCheckResult,
    "queue_json": m.QueueState, "queue_text": m.QueueState, "journal": m.MailLog, "maillog": m.MailLog,
    "firewall": m.FirewallState, "relay_resolution": m.HostResolution, "sasl_maps": m.FileStats,
    BOOLEAN_PROBE: m.BooleanLookup,
}
PROBES = sorted(PARSERS) + [BOOLEAN_PROBE]

# Characters the real formats are made of, so random text reaches past the first regex.
ALPHABET = st.sampled_from(list("abcdefgpstuvxyz_019:=()[]{}<>*!?,.-/\"'#%@|> \t\n\r\x1d") + ["é", "\x00", "٣"])
TEXT = st.text(ALPHABET, max_size=300) | st.text(max_size=100)
EXIT = st.sampled_from([0, 0, 1, 2, 3, 127, 252, 255]) | st.integers(-1, 300)
GARBAGE_LINES = st.sampled_from([
    "", " ", "----", "time->Sat Nov 28 13:10:20 2026", "\tWas caused by:", "Mail queue is empty",
    "type=AVC msg=audit(1.5:1): avc:  denied  { x } for scontext=a:b:c tclass=d", "pid=99999999999999999999",
    "SELinux status:                 enabled", "-- 0 Kbytes in 0 Requests.", "{\"queue_name\": 1}", "[[[[",
    "x --> on", "relayhost=", "users:((\"a\",pid=1,fd=2))", "no such thing", "9" * 5000,
])


@st.composite
def mangled(draw, probe: str) -> str:
    """A sample output (mostly the probe's own) with lines dropped, duplicated or replaced by
    garbage, then maybe truncated."""
    samples = own_samples(probe) * 3 + list(FILES.values())
    out = []
    for line in draw(st.sampled_from(samples)).split("\n"):
        action = draw(st.sampled_from(["keep"] * 6 + ["drop", "dup", "garbage", "cut"]))
        if action == "keep":
            out.append(line)
        elif action == "dup":
            out += [line, line]
        elif action == "garbage":
            out.append(draw(GARBAGE_LINES | TEXT))
        elif action == "cut":
            out.append(line[: draw(st.integers(0, len(line)))])
    text = "\n".join(out)
    return text[: draw(st.integers(0, len(text)))] if draw(st.booleans()) else text


def run(probe: str, stdout: str, stderr: str, exit_status: int | None, error: str | None = None) -> None:
    ev = Evidence(probe, COMMANDS[probe], exit_status, stdout, stderr, 0.0, error)
    result = parser_for(probe)(ev)
    assert isinstance(result, (FACT_TYPES[probe], m.Unparsed, m.Unavailable)), result
    if isinstance(result, (m.Unparsed, m.Unavailable)):
        assert result.probe == probe and isinstance(result.reason, str) and result.reason


FUZZ = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def test_fact_types_cover_every_probe():
    assert set(FACT_TYPES) == set(PROBES) == set(COMMANDS)
    assert all(own_samples(probe) for probe in PROBES)


@pytest.mark.parametrize("probe", PROBES)
@FUZZ
@given(stdout=TEXT, stderr=TEXT | GARBAGE_LINES, exit_status=EXIT)
def test_arbitrary_text(probe, stdout, stderr, exit_status):
    run(probe, stdout, stderr, exit_status)


@pytest.mark.parametrize("probe", PROBES)
@FUZZ
@given(data=st.data(), exit_status=EXIT)
def test_mangled_samples(probe, data, exit_status):
    stdout = data.draw(mangled(probe), "stdout")
    stderr = data.draw(st.just("") | GARBAGE_LINES | mangled(probe), "stderr")
    run(probe, stdout, stderr, exit_status)


@pytest.mark.parametrize("probe", PROBES)
@settings(max_examples=10, deadline=None, database=None)
@given(stdout=TEXT, error=st.text(min_size=1, max_size=40))
def test_no_result(probe, stdout, error):
    run(probe, stdout, "", None, error)


def test_the_audit_parser_keeps_its_reading_with_linear_patterns():
    """The AVC patterns were made linear (a brace-free, bounded permission set; keys only where a word
    starts): a permission set with spaces and a key glued to a longer word read as before."""
    line = ("type=AVC msg=audit(1795869441.123:456): avc:  denied  {  read write  } for  pid=42 "
            'comm="local" xpath="/decoy" path="/var/mail/root" scontext=system_u:system_r:postfix_local_t:s0 '
            "tcontext=system_u:object_r:mail_spool_t:s0 tclass=file permissive=0")
    ev = Evidence(probe="avc_denials", command=COMMANDS["avc_denials"], exit_status=0, stdout=line + "\n", stderr="")
    [denial] = PARSERS["avc_denials"](ev).denials
    assert denial.permissions == ("read", "write") and denial.path == "/var/mail/root" and denial.comm == "local"
    flood = ev.__class__(**{**ev.__dict__, "stdout": "type=AVC msg=audit(1.1:2): " + "avc: denied { " * 20_000})
    assert isinstance(PARSERS["avc_denials"](flood), m.Unparsed)


def test_the_parser_benchmark_runs():
    """bench/parser_bench.py (figures, not a timed test): it runs over every probe and prints its summary."""
    proc = subprocess.run([sys.executable, str(Path(__file__).parent.parent / "bench" / "parser_bench.py"),
                           "--size", "16K"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "parse_avc_denials_s" in proc.stdout and "parser_bench size=16384 worst" in proc.stdout
