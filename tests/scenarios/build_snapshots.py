#!/usr/bin/env python3
"""Build every fixtures/hosts/*.json snapshot: healthy bases plus one change per scenario.

    python tests/scenarios/build_snapshots.py           # (re)write fixtures/hosts/*.json
    python tests/scenarios/build_snapshots.py --check   # exit 1 when a file differs or is missing

A snapshot is the evidence one host gives the suite's probes ("postfix-compliance-snapshot/1").
The commands come from postfix_compliance.facts.probes, so probes and fixtures cannot drift apart;
the outputs come from tests/scenarios/scenario_formats.py (each tool's own layout, held to the real
samples in tests/reference/ by tests/test_scenarios.py) or straight from tests/reference/ (the
Debian guest's AVC records, audit2why verdicts, journal lines, postqueue -j lines, ls -Z
listing). Listings a real host prints in full (ps -eZ, getsebool -a, semodule -lfull, semanage
port -l, semanage boolean -l) are abridged to a realistic handful of lines.

Which scenario a snapshot stands for, its profile and the check ids it must fail are in
tests/scenarios/matrix.yaml; tests/test_scenarios.py runs them all and also checks that this
script reproduces the committed files byte for byte.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import yaml  # noqa: E402

import scenario_formats as fmt  # noqa: E402
from postfix_compliance.backends.snapshot import SNAPSHOT_FORMAT  # noqa: E402
from postfix_compliance.facts.probes import QUEUE_MISLABELLED, QUEUE_MISLABELLED_STATUS  # noqa: E402
from postfix_compliance.facts.probes import FLUSH_COMMAND, GATED_OFF, build_probes  # noqa: E402
from postfix_compliance.profiles import load_profile  # noqa: E402

HOSTS_DIR = os.path.join(REPO, "fixtures", "hosts")
MATRIX = os.path.join(HERE, "matrix.yaml")
REF = os.path.join(REPO, "tests", "reference", "debian12-selinux-enforcing")
REF_CI = os.path.join(REPO, "tests", "reference", "debian12-no-selinux-kernel")

MIDNIGHT = 1795824000  # 2026-11-28 00:00:00 UTC, the day the reference outputs were recorded
RECORDED_AT = "2026-11-28T13:20:00Z"  # every scenario host is "recorded" at 13:20 UTC (hosts run UTC)
SOURCE = "built by tests/scenarios/build_snapshots.py"  # marks the files this script owns


def epoch(clock: str) -> int:
    h, m, s = (int(x) for x in clock.split(":"))
    return MIDNIGHT + h * 3600 + m * 60 + s


def ref(name: str, base: str = REF) -> str:
    with open(os.path.join(base, name), encoding="utf-8") as handle:
        return handle.read()


# ----------------------------------------------------------------------------- reference pieces


def _split_events(text: str) -> list[str]:
    """ausearch output -> events (without the `----` separator line)."""
    return [e for e in text.split("----\n") if e.strip()]


def ref_avc_events(*serials: int) -> list[str]:
    """Events of the reference audit log (ausearch -m AVC,USER_AVC output), by audit serial."""
    events = _split_events(ref("avc_records_raw.txt"))
    chosen = [e for e in events if any(f":{s}):" in e for s in serials)]
    assert len(chosen) == len(serials), serials
    return chosen


def ref_audit2why_blocks(*serials: int) -> list[str]:
    """audit2why blocks of the reference (one per AVC record), by audit serial."""
    text = ref("audit2why_output.txt")
    starts = [i for i, line in enumerate(text.split("\n")) if line.startswith("type=")]
    lines = text.split("\n")
    blocks = ["\n".join(lines[a:b]) + "\n" for a, b in zip(starts, starts[1:] + [len(lines) - 1])]
    chosen = [b for b in blocks if any(f":{s}):" in b.split("\n", 1)[0] for s in serials)]
    assert chosen, serials
    return chosen


def ref_queue(name: str = "postqueue_j_deferred.jsonl", base: str = REF) -> list[dict]:
    messages = []
    for line in ref(name, base).splitlines():
        data = json.loads(line)
        messages.append({"queue_name": data["queue_name"], "queue_id": data["queue_id"],
                         "arrival_time": data["arrival_time"], "message_size": data["message_size"],
                         "sender": data["sender"],
                         "recipients": [(r["address"], r.get("delay_reason")) for r in data["recipients"]]})
    return messages


# ----------------------------------------------------------------------------- audit records


def avc_event(clock: str, millis: int, serial: int, syscall: str, avcs: list[str], proctitle: str = "") -> str:
    """One ausearch event in the kernel's raw record format (as avc_records_raw.txt)."""
    stamp = f"{epoch(clock)}.{millis:03d}:{serial}"
    when = "Sat Nov 28 " + clock + " 2026"
    lines = [f"time->{when}"]
    if proctitle:
        lines.append(f"type=PROCTITLE msg=audit({stamp}): proctitle={proctitle.encode().hex().upper()}"
                     if "\0" in proctitle else f"type=PROCTITLE msg=audit({stamp}): proctitle={proctitle}")
    lines.append(f"type=SYSCALL msg=audit({stamp}): {syscall}")
    lines += [f"type=AVC msg=audit({stamp}): avc:  denied  {a}" for a in avcs]
    return "\n".join(lines) + "\n"


def avc_lines(event: str) -> list[str]:
    return [line for line in event.split("\n") if line.startswith("type=AVC ")]


def audit2why_te(line: str) -> str:
    return (f"{line}\n\n\tWas caused by:\n\t\tMissing type enforcement (TE) allow rule.\n\n"
            "\t\tYou can use audit2allow to generate a loadable module to allow this access.\n\n")


def audit2why_allowed(line: str) -> str:
    return (f"{line}\n\n\tWas caused by:\n\t\tUnknown - would be allowed by active policy\n"
            "\t\tPossible mismatch between this policy and the one under which the audit message was generated.\n\n"
            "\t\tPossible mismatch between current in-memory boolean settings vs. permanent ones.\n\n")


def audit2why_boolean(line: str, boolean: str, description: str) -> str:
    return (f"{line}\n\n\tWas caused by:\n\tThe boolean {boolean} was set incorrectly. \n"
            f"\tDescription:\n\t{description}\n\n\tAllow access by executing:\n\t# setsebool -P {boolean} 1\n")


# ----------------------------------------------------------------------------- the host model

RHEL9_KERNEL = "5.14.0-427.13.1.el9_4.x86_64"
RHEL9_OPTIONS = ("root=/dev/mapper/rhel-root ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M "
                 "resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet")
MACHINE_ID = "3f1c9a0d5b7e4e21a6c8d2f4b1e07a93"
SASL_MTIME = MIDNIGHT - 6 * 86400 + 35_000  # the map was last edited six days before

POSTFIX_DESCRIPTION = "Allow postfix to local write mail spool"

OS_RELEASE_RHEL9 = """NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
ANSI_COLOR="0;31"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
HOME_URL="https://www.redhat.com/"
DOCUMENTATION_URL="https://access.redhat.com/documentation/en-us/red_hat_enterprise_linux/9"
BUG_REPORT_URL="https://bugzilla.redhat.com/"

REDHAT_BUGZILLA_PRODUCT="Red Hat Enterprise Linux 9"
REDHAT_BUGZILLA_PRODUCT_VERSION=9.4
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.4"
"""

OS_RELEASE_RHEL8 = """NAME="Red Hat Enterprise Linux"
VERSION="8.2 (Ootpa)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="8.2"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Red Hat Enterprise Linux 8.2 (Ootpa)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:redhat:enterprise_linux:8.2:GA"
HOME_URL="https://www.redhat.com/"
BUG_REPORT_URL="https://bugzilla.redhat.com/"

REDHAT_BUGZILLA_PRODUCT="Red Hat Enterprise Linux 8"
REDHAT_BUGZILLA_PRODUCT_VERSION=8.2
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="8.2"
"""

OS_RELEASE_RHEL7 = """NAME="Red Hat Enterprise Linux Server"
VERSION="7.9 (Maipo)"
ID="rhel"
ID_LIKE="fedora"
VARIANT="Server"
VARIANT_ID="server"
VERSION_ID="7.9"
PRETTY_NAME="Red Hat Enterprise Linux Server 7.9 (Maipo)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:redhat:enterprise_linux:7.9:GA:server"
HOME_URL="https://www.redhat.com/"
BUG_REPORT_URL="https://bugzilla.redhat.com/"

REDHAT_BUGZILLA_PRODUCT="Red Hat Enterprise Linux 7"
REDHAT_BUGZILLA_PRODUCT_VERSION=7.9
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="7.9"
"""

OS_RELEASE_DEBIAN12 = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

# (priority, name, lang_ext, enabled): a short, real-named slice of the targeted policy's modules.
RHEL_MODULES = [(100, name, "pp", True) for name in (
    "abrt", "accountsd", "acct", "afs", "aide", "alsa", "amanda", "apache", "auditadm", "authlogin",
    "bind", "chronyd", "cpufreqselector", "cron", "dbus", "dovecot", "firewalld", "init", "logging",
    "mta", "networkmanager", "postfix", "postgrey", "procmail", "rpm", "selinuxutil", "spamassassin",
    "ssh", "sssd", "sysadm", "systemd", "unconfined", "unconfineduser", "userdomain")]

RHEL_PORTS = [
    ("amavisd_recv_port_t", "tcp", "10024"), ("amavisd_send_port_t", "tcp", "10025"),
    ("dns_port_t", "tcp", "53, 853"), ("dns_port_t", "udp", "53, 853"),
    ("http_port_t", "tcp", "80, 81, 443, 488, 8008, 8009, 8443, 9000"),
    ("lmtp_port_t", "tcp", "24"), ("lmtp_port_t", "udp", "24"),
    ("pop_port_t", "tcp", "106, 109, 110, 143, 220, 993, 995, 1109"),
    ("smtp_port_t", "tcp", "25, 465, 587"), ("ssh_port_t", "tcp", "22"),
    ("unreserved_port_t", "tcp", "61000-65535, 1024-32767"),
    ("unreserved_port_t", "udp", "61000-65535, 1024-32767"),
]

RHEL_BOOLEANS = {  # name: [runtime, persistent, description]
    "abrt_anon_write": [False, False, "Allow abrt to anon write"],
    "httpd_can_sendmail": [False, False, "Allow httpd to can sendmail"],
    "logging_syslogd_can_sendmail": [False, False, "Allow logging to syslogd can sendmail"],
    "mail_read_content": [False, False, "Allow mail to read content"],
    "nis_enabled": [False, False, "Allow nis to enabled"],
    "postfix_local_write_mail_spool": [True, True, POSTFIX_DESCRIPTION],
    "ssh_sysadm_login": [False, False, "Allow ssh to sysadm login"],
}

# booleans.subs_dist on RHEL: old name -> current name.
RHEL_BOOLEAN_ALIASES = {"allow_postfix_local_write_mail_spool": "postfix_local_write_mail_spool"}

UNCONFINED = "unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023"

# The RHEL queue directory as `restorecon -Rnv` walks it (no chroot, short queue ids, hashed
# defer/deferred): path relative to the queue directory -> its policy type.
RHEL_QUEUE_TREE = [
    ("", "postfix_spool_t"), ("active", "postfix_spool_t"), ("bounce", "postfix_spool_bounce_t"),
    ("corrupt", "postfix_spool_t"), ("defer", "postfix_spool_t"), ("defer/3", "postfix_spool_t"),
    ("deferred", "postfix_spool_t"), ("deferred/3", "postfix_spool_t"), ("flush", "postfix_spool_t"),
    ("hold", "postfix_spool_t"), ("incoming", "postfix_spool_t"), ("maildrop", "postfix_spool_t"),
    ("pid", "postfix_var_run_t"), ("pid/master.pid", "postfix_var_run_t"),
    ("pid/inet.smtp", "postfix_var_run_t"), ("private", "postfix_private_t")] + [
    (f"private/{s}", "postfix_private_t") for s in (
        "anvil", "bounce", "defer", "discard", "error", "lmtp", "local", "proxymap", "proxywrite",
        "relay", "retry", "rewrite", "scache", "scan", "smtp", "tlsmgr", "trace", "verify", "virtual")] + [
    ("public", "postfix_public_t")] + [
    (f"public/{s}", "postfix_public_t") for s in ("cleanup", "flush", "pickup", "postlog", "qmgr", "showq")] + [
    ("saved", "postfix_spool_t"), ("trace", "postfix_spool_t")]


def ctx(type_: str, user: str = "system_u") -> str:
    return f"{user}:object_r:{type_}:s0"


class Host:
    """Everything one host says to the probes, in terms the formatters take."""

    def __init__(self) -> None:
        self.fqdn = "mail1.example.com"
        self.short = "mail1"
        self.os_release = OS_RELEASE_RHEL9
        self.flavour = "rhel9"  # /etc/selinux/config text
        self.config_template: str | None = None
        self.selinux = "enforcing"  # runtime: enforcing | permissive | no-policy | off (selinux=0)
        self.config_mode = "enforcing"
        self.config_type = "targeted"
        self.loaded_policy = "targeted"
        self.memory_protection = True
        self.max_policy = 33
        self.cmdline = f"BOOT_IMAGE=(hd0,gpt2)/vmlinuz-{RHEL9_KERNEL} {RHEL9_OPTIONS}"
        self.grub_default = ("crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/rhel-swap "
                             "rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet")
        self.boot_entries = {f"/boot/loader/entries/{MACHINE_ID}-0-rescue.conf": RHEL9_OPTIONS,
                             f"/boot/loader/entries/{MACHINE_ID}-{RHEL9_KERNEL}.conf": RHEL9_OPTIONS}
        self.grubenv_kernelopts: str | None = None
        self.boot_exit = 0
        self.booleans = copy.deepcopy(RHEL_BOOLEANS)
        self.boolean_aliases = dict(RHEL_BOOLEAN_ALIASES)
        self.postconf = {
            "queue_directory": "/var/spool/postfix", "config_directory": "/etc/postfix",
            "data_directory": "/var/lib/postfix", "mail_spool_directory": "/var/mail",
            "inet_interfaces": "all", "inet_protocols": "all", "relayhost": "[smtp.example.com]:587",
            "smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd", "mail_version": "3.5.25"}
        self.queue_dir_context = ctx("postfix_spool_t")
        # Postfix's programs (`postconf -h daemon_directory`) and their labels by the policy's file contexts
        self.daemon_dir = "/usr/libexec/postfix"
        self.daemon_labels = dict(DAEMON_LABELS)  # program -> type
        self.daemon_relabels: list[tuple[str, str, str]] = []  # programs restorecon -n would relabel
        self.ls_style = "short"
        self.queue_relabels: list[tuple[str, str, str]] = []
        self.restorecon_style = "would"
        self.related_relabels: list[tuple[str, str, str]] = []
        self.fcontext_rules: list[tuple[str, str, str]] = []
        self.fcontext_equivalences: dict[str, str] = {}
        self.permissive_builtin: list[str] = []
        self.permissive_customized: list[str] = []
        self.modules = list(RHEL_MODULES)
        self.ports = list(RHEL_PORTS)
        self.avc_events: list[str] = []
        self.audit2why_blocks: list[str] = []
        self.pid_width = 7
        self.processes = rhel9_processes(UNCONFINED)
        self.postfix_processes = [("system_u:system_r:postfix_master_t:s0", 1189, "?", "00:00:00", "master"),
                                  ("system_u:system_r:postfix_qmgr_t:s0", 1191, "?", "00:00:00", "qmgr"),
                                  ("system_u:system_r:postfix_pickup_t:s0", 2402, "?", "00:00:00", "pickup")]
        self.auditd_running = True
        self.units_active = {"postfix": "active", "auditd": "active"}
        self.units_enabled = {"postfix": "enabled", "auditd": "enabled"}
        self.ss_style = "compact"
        self.listeners = [("LISTEN", 0, 128, "0.0.0.0", "22", "0.0.0.0", "*", '("sshd",pid=1002,fd=3)'),
                          ("LISTEN", 0, 100, "0.0.0.0", "25", "0.0.0.0", "*", '("master",pid=1189,fd=13)'),
                          ("LISTEN", 0, 128, "[::]", "22", "[::]", "*", '("sshd",pid=1002,fd=4)'),
                          ("LISTEN", 0, 100, "[::]", "25", "[::]", "*", '("master",pid=1189,fd=14)')]
        self.postfix_check = (0, "", "")
        self.queue = [[]]  # postqueue -j answers in order: collection, then each poll after the flush
        self.queue_json = True  # Postfix >= 3.1
        self.forced_expire = True  # Postfix >= 3.5
        self.postqueue_stderr = ""
        self.journal = rhel9_journal_healthy(self.short)
        self.maillog_history: list[str] | None = [
            f"Nov 28 08:{m:02d}:{s:02d} {self.short} {line}" for m, s, line in MAILLOG_HISTORY]
        self.firewall: str | None = fmt.firewall_list_all(
            "public", "enp1s0", ["cockpit", "dhcpv6-client", "smtp", "ssh"])
        self.relay = ("smtp.example.com", ["192.0.2.25"])
        self.sasl = [("root", "600", SASL_MTIME, "/etc/postfix/sasl_passwd"),
                     ("root", "600", SASL_MTIME + 31, "/etc/postfix/sasl_passwd.db"),
                     ("missing", "/etc/postfix/sasl_passwd.lmdb")]
        self.notes: list[str] = []

    # ------------------------------------------------------------------ derived outputs
    @property
    def selinux_on(self) -> bool:
        return self.selinux in ("enforcing", "permissive")


MAILLOG_HISTORY = [
    (2, 11, "postfix/pickup[1874]: 0E3A1209A3F0: uid=0 from=<root>"),
    (2, 11, "postfix/cleanup[1880]: 0E3A1209A3F0: message-id=<20261128080211.0E3A1209A3F0@mail1.example.com>"),
    (2, 11, "postfix/qmgr[1191]: 0E3A1209A3F0: from=<root@mail1.example.com>, size=512, nrcpt=1 (queue active)"),
    (2, 12, "postfix/smtp[1882]: 0E3A1209A3F0: to=<ops@example.org>, relay=smtp.example.com[192.0.2.25]:587, "
            "delay=0.83, delays=0.04/0.01/0.5/0.28, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4Yb1Kq0Zs2z9sVn)"),
    (2, 12, "postfix/qmgr[1191]: 0E3A1209A3F0: removed"),
]


def rhel9_processes(session_label: str) -> list[tuple[str, int, str, str, str]]:
    k = "system_u:system_r:kernel_t:s0"
    return [
        ("system_u:system_r:init_t:s0", 1, "?", "00:00:04", "systemd"),
        (k, 2, "?", "00:00:00", "kthreadd"), (k, 3, "?", "00:00:00", "rcu_gp"),
        (k, 4, "?", "00:00:00", "rcu_par_gp"), (k, 5, "?", "00:00:00", "slub_flushwq"),
        (k, 6, "?", "00:00:00", "netns"), (k, 12, "?", "00:00:00", "ksoftirqd/0"),
        (k, 13, "?", "00:00:01", "rcu_preempt"), (k, 14, "?", "00:00:00", "migration/0"),
        (k, 72, "?", "00:00:00", "kauditd"), (k, 404, "?", "00:00:00", "xfsaild/dm-0"),
        ("system_u:system_r:syslogd_t:s0", 612, "?", "00:00:00", "systemd-journal"),
        ("system_u:system_r:udev_t:s0-s0:c0.c1023", 628, "?", "00:00:00", "systemd-udevd"),
        ("system_u:system_r:auditd_t:s0", 688, "?", "00:00:00", "auditd"),
        ("system_u:system_r:chronyd_t:s0", 741, "?", "00:00:00", "chronyd"),
        ("system_u:system_r:system_dbusd_t:s0-s0:c0.c1023", 744, "?", "00:00:00", "dbus-broker-lau"),
        ("system_u:system_r:system_dbusd_t:s0-s0:c0.c1023", 745, "?", "00:00:00", "dbus-broker"),
        ("system_u:system_r:firewalld_t:s0", 748, "?", "00:00:01", "firewalld"),
        ("system_u:system_r:systemd_logind_t:s0", 751, "?", "00:00:00", "systemd-logind"),
        ("system_u:system_r:NetworkManager_t:s0", 782, "?", "00:00:00", "NetworkManager"),
        ("system_u:system_r:sshd_t:s0-s0:c0.c1023", 1002, "?", "00:00:00", "sshd"),
        ("system_u:system_r:syslogd_t:s0", 1005, "?", "00:00:00", "rsyslogd"),
        ("system_u:system_r:crond_t:s0-s0:c0.c1023", 1012, "?", "00:00:00", "crond"),
        ("system_u:system_r:getty_t:s0-s0:c0.c1023", 1014, "tty1", "00:00:00", "agetty"),
        ("system_u:system_r:sshd_t:s0-s0:c0.c1023", 2521, "?", "00:00:00", "sshd"),
        (session_label, 2525, "?", "00:00:00", "sshd"),
        (session_label, 2526, "?", "00:00:00", "bash"),
        (session_label, 2531, "?", "00:00:00", "timeout"),
        (session_label, 2533, "?", "00:00:00", "sh"),
        (session_label, 2536, "?", "00:00:00", "ps"),
    ]


def older_processes(processes: list[tuple[str, int, str, str, str]], rcu: str) -> list[tuple[str, int, str, str, str]]:
    """RHEL 7/8 process table: dbus-daemon instead of dbus-broker, no slub_flushwq (kernel 5.16+)."""
    out = []
    for label, pid, tty, cputime, cmd in processes:
        if cmd in ("dbus-broker-lau", "slub_flushwq"):
            continue
        cmd = {"dbus-broker": "dbus-daemon", "rcu_preempt": rcu}.get(cmd, cmd)
        out.append((label, pid, tty, cputime, cmd))
    return out


def jline(short: str, clock: str, program: str, pid: int, message: str) -> str:
    return f"Nov 28 {clock} {short} {program}[{pid}]: {message}"


def rhel9_journal_healthy(short: str) -> list[str]:
    j = lambda clock, prog, pid, msg: jline(short, clock, prog, pid, msg)  # noqa: E731
    return [
        j("13:12:41", "postfix/smtpd", 2412, "connect from app1.example.com[192.0.2.41]"),
        j("13:12:41", "postfix/smtpd", 2412, "9C2D3209A4E1: client=app1.example.com[192.0.2.41]"),
        j("13:12:41", "postfix/cleanup", 2415,
          "9C2D3209A4E1: message-id=<a81f0c2e-5d4b-4a5e-9e61-0b1d2c3e4f50@app1.example.com>"),
        j("13:12:41", "postfix/qmgr", 1191, "9C2D3209A4E1: from=<app@app1.example.com>, size=1834, nrcpt=1 (queue active)"),
        j("13:12:41", "postfix/smtpd", 2412,
          "disconnect from app1.example.com[192.0.2.41] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7"),
        j("13:12:42", "postfix/smtp", 2416,
          "9C2D3209A4E1: to=<ops@example.org>, relay=smtp.example.com[192.0.2.25]:587, delay=0.71, "
          "delays=0.05/0.01/0.42/0.23, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4Yb7Qd2xKqz1wRk)"),
        j("13:12:42", "postfix/qmgr", 1191, "9C2D3209A4E1: removed"),
        j("13:17:03", "postfix/pickup", 2402, "3B8F1209A4E6: uid=0 from=<root>"),
        j("13:17:03", "postfix/cleanup", 2415,
          "3B8F1209A4E6: message-id=<20261128131703.3B8F1209A4E6@mail1.example.com>"),
        j("13:17:03", "postfix/qmgr", 1191, "3B8F1209A4E6: from=<root@mail1.example.com>, size=468, nrcpt=1 (queue active)"),
        j("13:17:04", "postfix/smtp", 2416,
          "3B8F1209A4E6: to=<ops@example.org>, relay=smtp.example.com[192.0.2.25]:587, delay=0.6, "
          "delays=0.02/0/0.38/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4Yb7W03hLzz1wRq)"),
        j("13:17:04", "postfix/qmgr", 1191, "3B8F1209A4E6: removed"),
    ]


# ----------------------------------------------------------------------------- bases


def rhel9() -> Host:
    """Healthy RHEL 9.4 mail relay: Postfix 3.5 listening on all interfaces (firewalld admits
    smtp), relaying through [smtp.example.com]:587 with SASL credentials."""
    return Host()


def rhel8() -> Host:
    """Healthy RHEL 8.2 with Postfix 3.3.1 (postqueue -j has no forced_expire), iproute2 5.3."""
    h = Host()
    h.fqdn, h.short = "mail8.example.com", "mail8"
    h.os_release = OS_RELEASE_RHEL8
    h.flavour = "rhel8"
    kernel = "4.18.0-193.el8.x86_64"
    kernelopts = ("root=/dev/mapper/rhel-root ro crashkernel=auto resume=/dev/mapper/rhel-swap "
                  "rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet")
    h.cmdline = f"BOOT_IMAGE=(hd0,msdos1)/vmlinuz-{kernel} {kernelopts}"
    h.grub_default = ("crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap "
                      "rhgb quiet")
    h.boot_entries = {f"/boot/loader/entries/{MACHINE_ID}-0-rescue.conf": "$kernelopts",
                      f"/boot/loader/entries/{MACHINE_ID}-{kernel}.conf": "$kernelopts $tuned_params"}
    h.grubenv_kernelopts = kernelopts
    h.postconf["mail_version"] = "3.3.1"
    h.forced_expire = False
    h.pid_width = 5  # systemd 239 leaves kernel.pid_max at 32768
    h.ss_style = "spread80"
    h.firewall = fmt.firewall_list_all("public", "ens192", ["cockpit", "dhcpv6-client", "smtp", "ssh"],
                                       forward_line=False)
    h.journal = [line.replace(" mail1 ", " mail8 ").replace("mail1.example.com", "mail8.example.com")
                 for line in h.journal]
    h.maillog_history = [line.replace(" mail1 ", " mail8 ").replace("mail1.example.com", "mail8.example.com")
                         for line in h.maillog_history or []]
    h.processes = older_processes(h.processes, rcu="rcu_sched")
    h.notes.append("RHEL 8.2: Postfix 3.3.1, iproute2 5.3 (80-column ss layout without the Process header)")
    return h


def rhel7() -> Host:
    """Healthy RHEL 7.9: Postfix 2.10.1 (no postqueue -j: the queue comes from mailq text),
    policycoreutils 2.5, coreutils 8.22, iproute 4.11, loopback-only Postfix (RHEL default)."""
    h = Host()
    h.fqdn, h.short = "mail7.example.com", "mail7"
    h.os_release = OS_RELEASE_RHEL7
    h.flavour = "rhel7"
    h.memory_protection = False
    h.max_policy = 31
    kernel = "3.10.0-1160.el7.x86_64"
    options = ("root=/dev/mapper/rhel-root ro crashkernel=auto rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap "
               "rhgb quiet LANG=en_US.UTF-8")
    h.cmdline = f"BOOT_IMAGE=/vmlinuz-{kernel} {options}"
    h.grub_default = "crashkernel=auto rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet"
    h.boot_entries = {}
    h.boot_exit = 2  # no /boot/loader/entries on RHEL 7 (grub.cfg), grep exits 2 for the glob
    h.postconf.update({"inet_interfaces": "localhost", "mail_version": "2.10.1"})
    h.queue_json = False
    h.ls_style = "long"
    h.restorecon_style = "reset"
    h.pid_width = 5
    h.ss_style = "legacy"
    h.listeners = [("LISTEN", 0, 128, "0.0.0.0", "22", "0.0.0.0", "*", '("sshd",pid=1093,fd=3)'),
                   ("LISTEN", 0, 100, "127.0.0.1", "25", "0.0.0.0", "*", '("master",pid=1372,fd=13)'),
                   ("LISTEN", 0, 128, "[::]", "22", "[::]", "*", '("sshd",pid=1093,fd=4)'),
                   ("LISTEN", 0, 100, "[::1]", "25", "[::]", "*", '("master",pid=1372,fd=14)')]
    h.postfix_processes = [("system_u:system_r:postfix_master_t:s0", 1372, "?", "00:00:00", "master"),
                           ("system_u:system_r:postfix_qmgr_t:s0", 1380, "?", "00:00:00", "qmgr"),
                           ("system_u:system_r:postfix_pickup_t:s0", 2290, "?", "00:00:00", "pickup")]
    h.processes = [p for p in older_processes(h.processes, rcu="rcu_sched") if p[4] not in ("rcu_gp", "rcu_par_gp")]
    h.firewall = fmt.firewall_list_all("public", "eth0", ["dhcpv6-client", "ssh"], forward_line=False,
                                       rich_tab=True)
    h.journal = [line.replace(" mail1 ", " mail7 ").replace("mail1.example.com", "mail7.example.com")
                 .replace("postfix/qmgr[1191]", "postfix/qmgr[1380]").replace("postfix/pickup[2402]", "postfix/pickup[2290]")
                 for line in h.journal if "smtpd" not in line and "9C2D3209A4E1" not in line]
    h.maillog_history = [line.replace(" mail1 ", " mail7 ").replace("mail1.example.com", "mail7.example.com")
                         .replace("[1191]", "[1380]") for line in h.maillog_history or []]
    h.notes.append("RHEL 7.9: Postfix 2.10.1 (mailq text), policycoreutils 2.5 (`restorecon reset`), "
                   "coreutils 8.22 (`ls -Zd` long form), iproute 4.11")
    return h


def debian12() -> Host:
    """The reference Debian 12 guest (refpolicy "default"), from tests/reference/: sestatus,
    config, cmdline, booleans, queue label, ss, Postfix processes and journal are its real outputs."""
    h = Host()
    h.fqdn, h.short = "selinux-vm.localdomain", "selinux-vm"
    h.os_release = OS_RELEASE_DEBIAN12
    h.config_template = ref("etc_selinux_config.txt").replace("SELINUX=enforcing", "SELINUX={selinux}") \
        .replace("SELINUXTYPE=default", "SELINUXTYPE={selinuxtype}")
    h.config_type = h.loaded_policy = "default"
    h.cmdline = ref("proc_cmdline.txt").rstrip("\n")
    h.boot_entries, h.grub_default, h.boot_exit = {}, None, 2  # direct kernel boot: no grub files
    h.booleans = {
        "aide_mmap_files": [False, False, "Allow aide to mmap files"],
        "postfix_local_write_mail_spool": [True, True, POSTFIX_DESCRIPTION],
        "postfix_manage_all_user_content": [False, False, "Allow postfix to manage all user content"],
        "postfix_manage_generic_user_content": [False, False, "Allow postfix to manage generic user content"],
        "postfix_read_all_user_content": [False, False, "Allow postfix to read all user content"],
        "postfix_read_generic_user_content": [True, True, "Allow postfix to read generic user content"],
    }
    h.boolean_aliases = {}  # refpolicy has no booleans.subs_dist entry for the old name
    h.daemon_dir = "/usr/lib/postfix/sbin"  # ls_Zd_daemon_directory.txt
    h.daemon_labels = {line.split()[1].rsplit("/", 1)[1]: line.split()[0].split(":")[2]
                       for line in ref("ls_Zd_daemon_directory.txt").splitlines()}
    h.postconf = {"queue_directory": "/var/spool/postfix", "config_directory": "/etc/postfix",
                  "data_directory": "/var/lib/postfix", "mail_spool_directory": "/var/mail",
                  "inet_interfaces": "loopback-only", "inet_protocols": "ipv4", "relayhost": "",
                  "smtp_sasl_password_maps": "", "mail_version": "3.7.11"}
    head = ref("semodule_lfull_head.txt").splitlines()
    h.modules = [(int(line[:3]), line.split()[1], line.split()[2], "disabled" not in line) for line in head] + [
        (100, name, "pp", True) for name in ("cpufreqselector", "mta", "postfix", "ssh", "sysadm", "unconfined")]
    h.ports = [("smtp_port_t", "tcp", "25, 465, 587"), ("ssh_port_t", "tcp", "22"),
               ("unreserved_port_t", "tcp", "1024-32767, 61000-65535")]
    reference_ps = [tuple(line.split(None, 4)) for line in ref("ps_eZ_postfix_lines.txt").splitlines()]
    h.postfix_processes = [(label, int(pid), tty, cputime, cmd) for label, pid, tty, cputime, cmd in reference_ps
                           if cmd != "showq"]
    h.processes = [("system_u:system_r:init_t:s0", 1, "?", "00:00:02", "systemd"),
                   ("system_u:system_r:kernel_t:s0", 2, "?", "00:00:00", "kthreadd"),
                   ("system_u:system_r:syslogd_t:s0", 206, "?", "00:00:00", "systemd-journal"),
                   ("system_u:system_r:udev_t:s0", 225, "?", "00:00:00", "systemd-udevd"),
                   ("system_u:system_r:auditd_t:s0", 318, "?", "00:00:00", "auditd"),
                   ("system_u:system_r:getty_t:s0", 327, "tty1", "00:00:00", "agetty"),
                   ("system_u:system_r:getty_t:s0", 336, "ttyS0", "00:00:00", "agetty"),
                   ("system_u:system_r:sshd_t:s0-s0:c0.c1023", 337, "?", "00:00:00", "sshd"),
                   ("system_u:system_r:sshd_t:s0-s0:c0.c1023", 1501, "?", "00:00:00", "sshd"),
                   (UNCONFINED, 1508, "?", "00:00:00", "sshd"), (UNCONFINED, 1509, "?", "00:00:00", "bash"),
                   (UNCONFINED, 1514, "?", "00:00:00", "timeout"), (UNCONFINED, 1516, "?", "00:00:00", "sh"),
                   (UNCONFINED, 1518, "?", "00:00:00", "ps")]
    h.listeners = [("LISTEN", 0, 100, "127.0.0.1", "25", "0.0.0.0", "*", '("master",pid=551,fd=13)'),
                   ("LISTEN", 0, 128, "0.0.0.0", "22", "0.0.0.0", "*", '("sshd",pid=337,fd=3)'),
                   ("LISTEN", 0, 128, "[::]", "22", "[::]", "*", '("sshd",pid=337,fd=4)')]  # ss_lntp.txt
    h.journal = ref("journal_postfix_relay_down.txt").splitlines()[:8]
    h.maillog_history = None  # no rsyslog, no maillog_file: the probe exits 1
    h.firewall = None  # firewalld not installed
    h.relay = ("", [])
    h.sasl = []
    h.notes.append("Debian 12 guest of tests/reference/debian12-selinux-enforcing")
    return h


# ----------------------------------------------------------------------------- rendering

DURATIONS = {  # seconds, typical of a real run over SSH
    "os_release": 0.012, "host_clock": 0.002, "getenforce": 0.009, "sestatus": 0.031, "selinux_config": 0.011,
    "proc_cmdline": 0.01, "boot_entries": 0.014, "getsebool_all": 0.021, "semanage_boolean": 2.412,
    "postconf": 0.048, "queue_dir_label": 0.052, "queue_dir_relabel": 0.187,
    "related_relabel": 0.241, "fcontext_local": 2.218, "permissive_domains": 2.364, "policy_modules": 0.392,
    "port_labels": 2.157, "avc_denials": 0.094, "audit2why": 1.873, "processes": 0.062,
    "units_active": 0.018, "units_enabled": 0.02, "listeners": 0.027, "postfix_check": 1.106,
    "queue_json": 0.041, "queue_text": 0.043, "journal": 0.071, "maillog": 0.016, "firewall": 0.612,
    "relay_resolution": 0.067, "sasl_maps": 0.058, "queue_flush": 0.033,
}


# The policy's labels of Postfix's programs (RHEL's postfix.fc; refpolicy's agree): a daemon of its own runs
# in postfix_<daemon>_t, every other program is postfix_exec_t and runs in master's domain.
_OWN = {"bounce": "bounce", "cleanup": "cleanup", "local": "local", "master": "master", "pickup": "pickup",
        "pipe": "pipe", "qmgr": "qmgr", "nqmgr": "qmgr", "showq": "showq", "smtp": "smtp", "lmtp": "smtp",
        "scache": "smtp", "smtpd": "smtpd", "virtual": "virtual"}
DAEMON_LABELS = {name: f"postfix_{_OWN[name]}_exec_t" if name in _OWN else "postfix_exec_t" for name in (
    "anvil", "bounce", "cleanup", "discard", "dnsblog", "error", "flush", "lmtp", "local", "master", "nqmgr",
    "oqmgr", "pickup", "pipe", "postlogd", "postscreen", "proxymap", "qmgr", "qmqpd", "scache", "showq", "smtp",
    "smtpd", "spawn", "tlsmgr", "tlsproxy", "trivial-rewrite", "verify", "virtual")}


def daemon_ls(h: "Host") -> str:
    """ls -Zd DAEMON_DIR/*: one line per program, sorted as the shell's glob sorts them, the contexts
    right-aligned to the widest (coreutils' column for several files; ls_Zd_daemon_directory.txt)."""
    wrong = {path: current for path, current, _ in h.daemon_relabels}
    rows = []
    for name in sorted(h.daemon_labels):
        path = f"{h.daemon_dir}/{name}"
        rows.append((wrong.get(path) or ctx(h.daemon_labels[name]), path))
    width = max(len(c) for c, _ in rows) if rows else 0
    return "".join(f"{c:>{width}} {p}\n" for c, p in rows)


QUEUE_SUBDIRS = ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "maildrop", "pid",
                 "private", "public", "saved", "trace")


def _queue_mislabelled(h: Host) -> str:
    """What the queue probes print when the queue's directories would be relabelled to a Postfix type (their
    guard: the queue dir, its subdirectories and theirs, asked of restorecon -n), or "" when they read it."""
    if not h.selinux_on:
        return ""
    queue = h.postconf["queue_directory"].rstrip("/")
    def guarded(path: str) -> bool:
        rest = path[len(queue) + 1:].split("/") if path.startswith(queue + "/") else None
        return path == queue or (rest is not None and rest[0] in QUEUE_SUBDIRS and len(rest) <= 2)
    found = [r for r in h.queue_relabels if guarded(r[0]) and ":postfix_" in r[2]][:3]
    if not found:
        return ""
    return QUEUE_MISLABELLED + "\n" + fmt.restorecon(found, h.restorecon_style)


def outputs(h: Host, boolean_names: tuple[str, ...]) -> dict[str, list[tuple[int, str, str]]]:
    """probe name -> [(exit status, stdout, stderr), ...] (several entries replay in order)."""
    o: dict[str, list[tuple[int, str, str]]] = {}
    disabled_msg = "getsebool:  SELinux is disabled\n"
    o["os_release"] = [(0, h.os_release, "")]
    mode = {"enforcing": "Enforcing", "permissive": "Permissive"}.get(h.selinux, "Disabled")
    o["getenforce"] = [(0, mode + "\n", "")]
    o["sestatus"] = [(0, fmt.sestatus(h.selinux_on, h.loaded_policy, h.selinux, h.config_mode,
                                      memory_protection=h.memory_protection, max_policy=h.max_policy), "")]
    o["selinux_config"] = [(0, fmt.selinux_config(h.flavour, h.config_mode, h.config_type, h.config_template), "")]
    o["proc_cmdline"] = [(0, h.cmdline + "\n", "")]
    boot = []
    if h.grub_default is not None:
        boot.append(f'/etc/default/grub:GRUB_CMDLINE_LINUX="{h.grub_default}"')
    boot += [f"{path}:options {options}" for path, options in sorted(h.boot_entries.items())]
    if h.grubenv_kernelopts:
        boot.append(f"/boot/grub2/grubenv:kernelopts={h.grubenv_kernelopts}")
    o["boot_entries"] = [(h.boot_exit, "".join(line + "\n" for line in boot), "")]
    if h.selinux_on:
        o["getsebool_all"] = [(0, fmt.getsebool({n: v[0] for n, v in sorted(h.booleans.items())}), "")]
    else:
        o["getsebool_all"] = [(1, "", disabled_msg)]
    o["semanage_boolean"] = [(0, fmt.semanage_boolean(
        [(n, v[0], v[1], v[2]) for n, v in h.booleans.items()]), "")]
    # (semanage probes are not started where getenforce says Disabled: probes.py, _SELINUX_ONLY)
    gated_off = [(1, "", GATED_OFF.format(tool="semanage") + "\n")] if mode == "Disabled" else None
    params = {**h.postconf, "daemon_directory": h.daemon_dir}
    o["postconf"] = [(0, "".join(f"{k} = {v}\n" if v else f"{k} =\n" for k, v in params.items()), "")]
    o["daemon_labels"] = [(0, daemon_ls(h), "")]
    o["daemon_relabel"] = [(0, fmt.restorecon(h.daemon_relabels, h.restorecon_style) if h.selinux_on else "", "")]
    queue_dir = h.postconf["queue_directory"]
    # ls -Z reads the label stored on disk, whether or not the kernel enforces anything
    o["queue_dir_label"] = [(0, fmt.ls_zd(queue_dir, h.queue_dir_context, h.ls_style), "")]
    o["queue_dir_relabel"] = [(0, fmt.restorecon(h.queue_relabels, h.restorecon_style) if h.selinux_on else "", "")]
    o["related_relabel"] = [(0, fmt.restorecon(h.related_relabels, h.restorecon_style) if h.selinux_on else "", "")]
    o["fcontext_local"] = [(0, fmt.semanage_fcontext_local(h.fcontext_rules, h.fcontext_equivalences), "")]
    o["permissive_domains"] = [(0, fmt.semanage_permissive(h.permissive_builtin, h.permissive_customized), "")]
    o["policy_modules"] = [(0, fmt.semodule_lfull(h.modules), "")]
    o["port_labels"] = [(0, fmt.semanage_port(h.ports), "")]
    if gated_off:
        for name in ("semanage_boolean", "fcontext_local", "permissive_domains", "port_labels"):
            o[name] = gated_off
    if h.avc_events:
        o["avc_denials"] = [(0, "".join("----\n" + e for e in h.avc_events), "")]
    else:
        o["avc_denials"] = [(1, "", "<no matches>\n")]
    if not h.avc_events:  # audit2why is only started when ausearch found records (probes.py)
        o["audit2why"] = [(0, "", "<no matches>\n")]
    elif not h.selinux_on:
        # audit2why cannot load a policy: the real message of the reference no-SELinux host
        o["audit2why"] = [(1, "", "ValueError: You must specify the -p option with the path to the policy file.\n")]
    else:
        o["audit2why"] = [(0, "".join(h.audit2why_blocks), "")]
    procs = list(h.processes)
    if not h.auditd_running:
        procs = [p for p in procs if p[4] != "auditd"]
    procs = sorted(procs + list(h.postfix_processes), key=lambda p: p[1])
    if h.selinux == "off":
        procs = [("-",) + p[1:] for p in procs]
    elif h.selinux == "no-policy":
        procs = [("kernel",) + p[1:] for p in procs]
    o["processes"] = [(0, fmt.ps_eZ(procs, h.pid_width), "")]
    states = [h.units_active["postfix"], h.units_active["auditd"]]
    o["units_active"] = [(0 if all(s == "active" for s in states) else 3, "".join(s + "\n" for s in states), "")]
    enabled = [h.units_enabled["postfix"], h.units_enabled["auditd"]]
    o["units_enabled"] = [(0 if all(s == "enabled" for s in enabled) else 1, "".join(s + "\n" for s in enabled), "")]
    o["listeners"] = [(0, fmt.ss_lntp(h.listeners, h.ss_style), "")]
    o["postfix_check"] = [h.postfix_check]
    unreadable = _queue_mislabelled(h)
    if unreadable:  # the probe asks restorecon -n about the queue's directories first, and reads nothing
        o["queue_json"] = [(QUEUE_MISLABELLED_STATUS, "", unreadable)]
        o["queue_text"] = [(QUEUE_MISLABELLED_STATUS, "", unreadable)]
    elif h.queue_json:
        o["queue_json"] = [(0, fmt.postqueue_j(q, h.forced_expire), h.postqueue_stderr) for q in h.queue]
        o["queue_text"] = [(0, fmt.mailq(h.queue[0]), h.postqueue_stderr)]
    else:
        # Postfix < 3.1: the probe asks mail_version first and does not run postqueue -j at all
        o["queue_json"] = [(3, "", f"postqueue -j needs Postfix 3.1 or newer (mail_version "
                                   f"{h.postconf['mail_version']})\n")]
        o["queue_text"] = [(0, fmt.mailq(q), h.postqueue_stderr) for q in h.queue]
    o["journal"] = [(0, "".join(line + "\n" for line in h.journal), "")]
    # The host's clock, as `date '+%s %z'` prints it: a minute after the last journal line, in UTC.
    stamps = [line.split()[2] for line in h.journal if len(line.split()) > 2 and line.split()[2].count(":") == 2]
    o["host_clock"] = [(0, f"{(max(epoch(c) for c in stamps) if stamps else epoch('13:30:00')) + 60} +0000\n", "")]
    if h.maillog_history is None:
        o["maillog"] = [(1, "", "")]
    else:
        mail_lines = [line for line in h.journal if line.split(" ", 5)[4].startswith("postfix")]
        # The probe prints the host's clock first; here: a minute after the last journal line, in UTC.
        clocks = [line.split()[2] for line in h.journal if len(line.split()) > 2 and line.split()[2].count(":") == 2]
        log_now = (max(epoch(c) for c in clocks) if clocks else epoch("13:30:00")) + 60
        o["maillog"] = [(0, f"now={log_now} +0000\n"
                            + "".join(line + "\n" for line in h.maillog_history + mail_lines), "")]
    if h.firewall is None:
        o["firewall"] = [(127, "", "sh: 1: firewall-cmd: not found\n")]
    else:
        o["firewall"] = [(0, h.firewall, "")]
    name, addresses = h.relay
    o["relay_resolution"] = [(0 if addresses or not name else 2,
                              f"relayhost={name}\n" + fmt.getent_ahosts(name, addresses), "")]
    sasl = "".join(f"missing {f[1]}\n" if f[0] == "missing" else f"{f[0]} {f[1]} {f[2]} {f[3]}\n" for f in h.sasl)
    o["sasl_maps"] = [(0, sasl, "")]
    for requested in boolean_names:
        key = f"getsebool:{requested}"
        current = h.boolean_aliases.get(requested, requested)
        if not h.selinux_on:
            o[key] = [(1, "", disabled_msg)]
        elif current in h.booleans:
            o[key] = [(0, f"{current} --> {'on' if h.booleans[current][0] else 'off'}\n", "")]
        else:
            o[key] = [(255, "", f"Error getting active value for {requested}\n")]
    return o


def snapshot(name: str, h: Host, profile_ref: str, description: str) -> dict[str, Any]:
    profile = load_profile(profile_path(profile_ref))
    names = tuple(n for n, _ in profile.booleans)
    since = profile.data.get("audit", {}).get("since", "recent")
    probes = {p.name: p for p in build_probes(names, since)}
    produced = outputs(h, names)
    assert set(produced) == set(probes), set(produced) ^ set(probes)
    order = ["os_release"] + [n for n in probes if n != "os_release"]
    evidence = []
    for probe in order:
        for status, stdout, stderr in produced[probe]:
            evidence.append({"probe": probe, "command": probes[probe].command, "exit_status": status,
                             "stdout": stdout, "stderr": stderr, "duration": DURATIONS.get(probe, 0.024), "error": None})
    first_queue = h.queue[0]
    if len([m for m in first_queue if m["queue_name"] == "deferred"]) > profile.deferred_threshold:
        evidence.append({"probe": "queue_flush", "command": FLUSH_COMMAND, "exit_status": 0, "stdout": "",
                         "stderr": "", "duration": DURATIONS["queue_flush"], "error": None})
    doc: dict[str, Any] = {"format": SNAPSHOT_FORMAT, "host": h.fqdn, "recorded_at": RECORDED_AT,
                           "source": SOURCE, "scenario": name,
                           "description": description}
    if h.notes:
        doc["notes"] = list(h.notes)
    doc["evidence"] = evidence
    return doc


def profile_path(profile_ref: str) -> str:
    """A matrix profile: a name from fixtures/profiles or a path relative to the repository."""
    if "/" in profile_ref or profile_ref.endswith((".yaml", ".yml")):
        return os.path.join(REPO, profile_ref)
    return profile_ref


def dump(doc: dict[str, Any]) -> str:
    """The same layout as the suite's own --record-snapshot writer."""
    return json.dumps(doc, indent=1, sort_keys=False) + "\n"


# ----------------------------------------------------------------------------- scenario helpers


def deferred_message(queue_id: str, clock: str, reason: str, recipient: str = "ops@example.org",
                     sender: str = "app@app1.example.com", size: int = 1834, queue: str = "deferred") -> dict:
    return {"queue_name": queue, "queue_id": queue_id, "arrival_time": epoch(clock), "message_size": size,
            "sender": sender, "recipients": [(recipient, reason)]}


def moved(messages: list[dict], queue: str) -> list[dict]:
    return [dict(m, queue_name=queue) for m in messages]


def spool_relabel(h: Host, paths: list[str], wrong: str) -> list[tuple[str, str, str]]:
    """restorecon lines for queue paths (relative, "" = the directory) now labelled `wrong`."""
    queue_dir = h.postconf["queue_directory"]
    tree = dict(RHEL_QUEUE_TREE)
    out = []
    for rel in paths:
        path = queue_dir + ("/" + rel if rel else "")
        out.append((path, ctx(wrong), ctx(tree[rel])))
    return out


# ----------------------------------------------------------------------------- scenarios


def s_healthy_rhel9() -> Host:
    return rhel9()


def s_healthy_rhel9_unrelated_denials() -> Host:
    h = rhel9()
    h.avc_events = ref_avc_events(14, 15, 16, 17, 35, 36)
    h.audit2why_blocks = ref_audit2why_blocks(14, 15, 16, 17, 35, 36)
    return h


def s_permissive() -> Host:
    h = rhel9()
    h.selinux = "permissive"
    return h


def s_disabled() -> Host:
    h = rhel9()
    h.config_mode = "disabled"
    h.selinux = "no-policy"  # RHEL 9 boots with SELinux but loads no policy: every context reads "kernel"
    return h


def s_config_permissive_runtime_enforcing() -> Host:
    h = rhel9()
    h.config_mode = "permissive"
    return h


def s_kernel_cmdline_selinux0() -> Host:
    h = rhel9()
    h.cmdline += " selinux=0"
    h.boot_entries = {path: options + " selinux=0" for path, options in h.boot_entries.items()}
    h.selinux = "off"  # selinux=0: no SELinux in the kernel at all, ps prints "-"
    return h


def s_boot_entry_selinux0_pending() -> Host:
    h = rhel9()
    h.boot_entries = {path: options + " selinux=0" for path, options in h.boot_entries.items()}
    return h


def s_policy_type_mismatch() -> Host:
    h = rhel9()
    h.config_type = "mls"
    return h


def s_boolean_off() -> Host:
    h = rhel9()
    h.booleans["postfix_local_write_mail_spool"][:2] = [False, False]
    return h


def _local_delivery_denials(permissive: bool) -> list[str]:
    flag = "1" if permissive else "0"
    success = "success=yes exit=14" if permissive else "success=no exit=-13"
    subj = "subj=system_u:system_r:postfix_local_t:s0 key=(null)"
    ids = ("auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) "
           "ses=4294967295")
    src = "scontext=system_u:system_r:postfix_local_t:s0 tcontext=system_u:object_r:mail_spool_t:s0"
    title = "local\0-t\0unix"
    lock_avcs = [f'{{ write }} for  pid=2431 comm="local" name="mail" dev="dm-0" ino=16797766 {src} '
                 f"tclass=dir permissive={flag}"]
    if permissive:
        lock_avcs += [f'{{ add_name }} for  pid=2431 comm="local" name="alice.lock" {src} tclass=dir permissive=1',
                      f'{{ create }} for  pid=2431 comm="local" name="alice.lock" {src} tclass=file permissive=1']
    events = [avc_event("13:15:02", 311, 812, f"arch=c000003e syscall=257 {success} a0=ffffff9c a1=55d0c4a1e2a0 "
                                             f"a2=c1 a3=0 items=0 ppid=1189 pid=2431 {ids} comm=\"local\" "
                                             f"exe=\"/usr/libexec/postfix/local\" {subj}", lock_avcs, title),
              avc_event("13:15:02", 315, 813, f"arch=c000003e syscall=257 {'success=yes exit=15' if permissive else success} "
                                             f"a0=ffffff9c a1=55d0c4a1e3c0 a2=c01 a3=180 items=0 ppid=1189 pid=2431 "
                                             f"{ids} comm=\"local\" exe=\"/usr/libexec/postfix/local\" {subj}",
                        [f'{{ append }} for  pid=2431 comm="local" name="alice" dev="dm-0" ino=16797791 '
                         f"{src} tclass=file permissive={flag}"], title)]
    return events


def s_boolean_off_local_delivery() -> Host:
    h = s_boolean_off()
    h.avc_events = _local_delivery_denials(permissive=False)
    h.audit2why_blocks = [audit2why_boolean(line, "postfix_local_write_mail_spool", POSTFIX_DESCRIPTION)
                          for e in h.avc_events for line in avc_lines(e)]
    j = lambda clock, prog, pid, msg: jline(h.short, clock, prog, pid, msg)  # noqa: E731
    h.journal += [
        j("13:15:01", "postfix/smtpd", 2412, "connect from app1.example.com[192.0.2.41]"),
        j("13:15:01", "postfix/smtpd", 2412, "6F1E2209A4E5: client=app1.example.com[192.0.2.41]"),
        j("13:15:01", "postfix/cleanup", 2415,
          "6F1E2209A4E5: message-id=<c0ffee12-3456-4789-abcd-ef0123456789@app1.example.com>"),
        j("13:15:01", "postfix/qmgr", 1191, "6F1E2209A4E5: from=<app@app1.example.com>, size=2210, nrcpt=1 (queue active)"),
        j("13:15:01", "postfix/smtpd", 2412,
          "disconnect from app1.example.com[192.0.2.41] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7"),
        j("13:15:02", "postfix/local", 2431,
          "6F1E2209A4E5: to=<alice@mail1.example.com>, relay=local, delay=0.09, delays=0.05/0.01/0/0.03, "
          "dsn=5.2.0, status=bounced (cannot update mailbox /var/mail/alice for user alice. cannot open file: "
          "Permission denied)"),
        j("13:15:02", "postfix/cleanup", 2415, "71A3D209A4E9: message-id=<20261128131502.71A3D209A4E9@mail1.example.com>"),
        j("13:15:02", "postfix/bounce", 2433, "6F1E2209A4E5: sender non-delivery notification: 71A3D209A4E9"),
        j("13:15:02", "postfix/qmgr", 1191, "71A3D209A4E9: from=<>, size=4412, nrcpt=1 (queue active)"),
        j("13:15:02", "postfix/qmgr", 1191, "6F1E2209A4E5: removed"),
        j("13:15:03", "postfix/smtp", 2416,
          "71A3D209A4E9: to=<app@app1.example.com>, relay=smtp.example.com[192.0.2.25]:587, delay=0.66, "
          "delays=0.01/0/0.41/0.24, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4Yb7Sp1vQxz1wRm)"),
        j("13:15:03", "postfix/qmgr", 1191, "71A3D209A4E9: removed"),
    ]
    h.journal.sort(key=lambda line: line[7:15])
    return h


def s_boolean_runtime_only() -> Host:
    h = rhel9()
    h.booleans["postfix_local_write_mail_spool"][:2] = [True, False]
    return h


def s_boolean_old_name_only() -> Host:
    return debian12()


def s_boolean_old_name_resolved() -> Host:
    return rhel9()


def s_healthy_debian12() -> Host:
    return debian12()


def s_spool_mislabelled() -> Host:
    h = rhel9()
    h.queue_dir_context = ctx("var_spool_t")
    h.queue_relabels = spool_relabel(h, [""], "var_spool_t")
    return h


def s_spool_subdir_mislabelled() -> Host:
    h = rhel9()
    # restorecon_Rnv_excerpt_mislabelled.txt, judged by RHEL's policy (deferred is postfix_spool_t there)
    h.queue_relabels = [(path, old, new.replace("postfix_spool_maildrop_t", "postfix_spool_t"))
                        for path, old, new in (
                            (line.split()[2], line.split()[4], line.split()[6])
                            for line in ref("restorecon_Rnv_excerpt_mislabelled.txt").splitlines())]
    return h


def _custom_queue(h: Host) -> None:
    h.postconf["queue_directory"] = "/data/postfix"


def s_custom_queue_dir_no_equivalence() -> Host:
    h = rhel9()
    _custom_queue(h)
    tree = dict(RHEL_QUEUE_TREE)
    h.queue_relabels = [("/data/postfix" + ("/" + rel if rel else ""), ctx(tree[rel]), ctx("default_t"))
                        for rel, _ in RHEL_QUEUE_TREE]
    return h


def s_custom_queue_dir_with_equivalence() -> Host:
    h = rhel9()
    _custom_queue(h)
    h.fcontext_equivalences = {"/data/postfix": "/var/spool/postfix"}
    return h


def s_related_mislabelled() -> Host:
    h = rhel9()
    h.related_relabels = [("/etc/postfix/main.cf", ctx("admin_home_t", "unconfined_u"), ctx("postfix_etc_t")),
                          ("/etc/postfix/transport", ctx("admin_home_t", "unconfined_u"), ctx("postfix_etc_t"))]
    return h


def s_avc_denials() -> Host:
    h = rhel9()
    serials = (373, 519, 520, 521)
    h.avc_events = ref_avc_events(*serials)
    h.audit2why_blocks = ref_audit2why_blocks(*serials)
    return h


def s_avc_permissive_denials() -> Host:
    h = rhel9()
    h.avc_events = _local_delivery_denials(permissive=True)
    h.audit2why_blocks = [audit2why_allowed(line) for e in h.avc_events for line in avc_lines(e)]
    j = lambda clock, prog, pid, msg: jline(h.short, clock, prog, pid, msg)  # noqa: E731
    h.journal += [
        j("13:15:01", "postfix/pickup", 2402, "6F1E2209A4E5: uid=0 from=<root>"),
        j("13:15:01", "postfix/cleanup", 2415, "6F1E2209A4E5: message-id=<20261128131501.6F1E2209A4E5@mail1.example.com>"),
        j("13:15:01", "postfix/qmgr", 1191, "6F1E2209A4E5: from=<root@mail1.example.com>, size=402, nrcpt=1 (queue active)"),
        j("13:15:02", "postfix/local", 2431,
          "6F1E2209A4E5: to=<alice@mail1.example.com>, orig_to=<alice>, relay=local, delay=0.08, "
          "delays=0.04/0.01/0/0.03, dsn=2.0.0, status=sent (delivered to mailbox)"),
        j("13:15:02", "postfix/qmgr", 1191, "6F1E2209A4E5: removed"),
    ]
    h.journal.sort(key=lambda line: line[7:15])
    return h


def s_auditd_stopped() -> Host:
    h = rhel9()
    h.auditd_running = False
    h.units_active["auditd"] = "inactive"
    return h


def s_postfix_stopped() -> Host:
    h = rhel9()
    h.units_active["postfix"] = "inactive"
    h.postfix_processes = []
    h.listeners = [l for l in h.listeners if '"master"' not in (l[7] or "")]
    h.postqueue_stderr = ("postqueue: warning: Mail system is down -- accessing queue directly "
                          "(Connect to the Postfix showq service: No such file or directory)\n")
    j = lambda clock, prog, pid, msg: jline(h.short, clock, prog, pid, msg)  # noqa: E731
    h.journal += [
        j("13:18:30", "systemd", 1, "Stopping postfix.service - Postfix Mail Transport Agent..."),
        j("13:18:30", "postfix/postfix-script", 2570, "stopping the Postfix mail system"),
        j("13:18:30", "postfix/master", 1189, "terminating on signal 15"),
        j("13:18:30", "systemd", 1, "postfix.service: Deactivated successfully."),
        j("13:18:30", "systemd", 1, "Stopped postfix.service - Postfix Mail Transport Agent."),
    ]
    return h


def s_daemons_mislabelled() -> Host:
    """qmgr and pickup relabelled bin_t (nqmgr is qmgr's hard link) and Postfix restarted: master starts both
    in its own domain (seen on both guests: ps_eZ_daemons_in_master_domain.txt)."""
    h = rhel9()
    h.daemon_relabels = [(f"{h.daemon_dir}/{name}", ctx("bin_t"), ctx(DAEMON_LABELS[name]))
                         for name in ("qmgr", "nqmgr", "pickup")]
    h.postfix_processes = [(label.replace("postfix_qmgr_t", "postfix_master_t").replace("postfix_pickup_t",
                                                                                         "postfix_master_t"),
                            pid, tty, cputime, cmd) for label, pid, tty, cputime, cmd in h.postfix_processes]
    return h


def s_daemons_not_restarted() -> Host:
    """The programs relabelled back, Postfix not restarted: qmgr and pickup still run in master's domain."""
    h = s_daemons_mislabelled()
    h.daemon_relabels = []
    return h


def s_postfix_unconfined() -> Host:
    h = rhel9()
    h.units_active["postfix"] = "inactive"
    h.postfix_processes = [(UNCONFINED, 2588, "?", "00:00:00", "master"),
                           (UNCONFINED, 2589, "?", "00:00:00", "pickup"),
                           (UNCONFINED, 2590, "?", "00:00:00", "qmgr")]
    h.listeners = [(s, r, q, la, lp, pa, pp, u.replace("pid=1189", "pid=2588") if u else u)
                   for s, r, q, la, lp, pa, pp, u in h.listeners]
    j = lambda clock, prog, pid, msg: jline(h.short, clock, prog, pid, msg)  # noqa: E731
    h.journal += [
        j("13:18:30", "postfix/postfix-script", 2570, "stopping the Postfix mail system"),
        j("13:18:30", "postfix/master", 1189, "terminating on signal 15"),
        j("13:18:30", "systemd", 1, "postfix.service: Deactivated successfully."),
        j("13:18:41", "postfix/postfix-script", 2585, "starting the Postfix mail system"),
        j("13:18:41", "postfix/master", 2588, "daemon started -- version 3.5.25, configuration /etc/postfix"),
    ]
    return h


def s_postfix_disabled_at_boot() -> Host:
    h = rhel9()
    h.units_enabled["postfix"] = "disabled"
    return h


def s_not_listening() -> Host:
    h = rhel9()
    h.listeners = [l for l in h.listeners if '"master"' not in (l[7] or "")]
    return h


def _relay_down(h: Host) -> None:
    j = lambda clock, prog, pid, msg: jline(h.short, clock, prog, pid, msg)  # noqa: E731
    for m in h.queue[0]:
        h.journal.append(j("13:14:57", "postfix/smtp", 2416,
                           f"{m['queue_id']}: to=<{m['recipients'][0][0]}>, relay=none, delay=1.3, "
                           f"delays=0.23/0.78/0.28/0, dsn=4.4.1, status=deferred ({m['recipients'][0][1]})"))
    h.journal.sort(key=lambda line: line[7:15])


def s_queue_over_threshold() -> Host:
    h = rhel9()
    reason = "connect to smtp.example.com[192.0.2.25]:587: Connection timed out"
    ids = ["1C4F0209A501", "1F2A1209A505", "2A9B3209A50C", "3D0E4209A511", "4E7F5209A519",
           "5B1C6209A51E", "6C8D7209A523", "7DA08209A52A"]
    first = [deferred_message(qid, f"13:0{i}:1{i}", reason) for i, qid in enumerate(ids)]
    # the relay is back: after the flush all eight are tried (active), five leave, then the rest
    h.queue = [first, moved(first, "active"), moved(first[5:], "active"), []]
    j = lambda clock, prog, pid, msg: jline(h.short, clock, prog, pid, msg)  # noqa: E731
    for i, qid in enumerate(ids):
        tried = f"13:1{i}:3{i}"
        h.journal.append(j(tried, "postfix/smtp", 2416,
                           f"{qid}: to=<ops@example.org>, relay=none, delay={epoch(tried) - first[i]['arrival_time']}, "
                           f"delays=0.02/0/30/0, dsn=4.4.1, status=deferred ({reason})"))
    h.journal.sort(key=lambda line: line[7:15])
    return h


def s_queue_not_draining() -> Host:
    h = rhel9()
    # the reference guest's dead relay: relayhost [127.0.0.1]:2525, three messages re-deferred
    h.postconf["relayhost"] = "[127.0.0.1]:2525"
    h.relay = ("127.0.0.1", ["127.0.0.1"])
    first = [dict(m, sender=m["sender"].replace("selinux-vm.localdomain", h.fqdn)) for m in ref_queue()]
    h.queue = [first, moved(first, "active"), first]
    for line in ref("journal_postfix_relay_down.txt").splitlines():
        program = line.split(" ", 5)[4]
        if program.startswith("postfix/") and not program.startswith(("postfix/postfix-script", "postfix/master")):
            h.journal.append(line.replace("selinux-vm.localdomain", h.fqdn).replace(" selinux-vm ", f" {h.short} "))
    h.journal.sort(key=lambda line: line[7:15])
    return h


def s_queue_permission_denied() -> Host:
    h = rhel9()
    reason = "connect to mail1.example.com[private/dovecot-lmtp]: Permission denied"
    first = [deferred_message("5A2C1209A4F2", "13:06:40", reason, "bob@example.net"),
             deferred_message("8E0B3209A4F9", "13:09:12", reason, "carol@example.net", size=5120)]
    h.queue = [first, moved(first, "active"), first]
    j = lambda clock, prog, pid, msg: jline(h.short, clock, prog, pid, msg)  # noqa: E731
    h.journal += [
        j("13:16:40", "postfix/qmgr", 1191, "5A2C1209A4F2: from=<app@app1.example.com>, size=1834, nrcpt=1 (queue active)"),
        j("13:16:40", "postfix/qmgr", 1191, "8E0B3209A4F9: from=<app@app1.example.com>, size=5120, nrcpt=1 (queue active)"),
        j("13:16:40", "postfix/lmtp", 2497, f"5A2C1209A4F2: to=<bob@example.net>, relay=none, delay=600, "
                                            f"delays=600/0.01/0/0, dsn=4.4.1, status=deferred ({reason})"),
        j("13:16:40", "postfix/lmtp", 2498, f"8E0B3209A4F9: to=<carol@example.net>, relay=none, delay=448, "
                                            f"delays=448/0.01/0/0, dsn=4.4.1, status=deferred ({reason})"),
    ]
    h.journal.sort(key=lambda line: line[7:15])
    return h


def s_postfix_check_fails() -> Host:
    h = rhel9()
    # Real output of `postfix check` here with the hold directory owned by root (postsuper exits 1).
    h.postfix_check = (1, "", "postsuper: fatal: scan_dir_push: open directory hold: Permission denied\n")
    return h


def s_custom_module_present() -> Host:
    h = rhel9()
    h.modules = h.modules + [(400, "postfix_local", "pp", True)]
    return h


def s_permissive_domain() -> Host:
    h = rhel9()
    h.permissive_customized = ["postfix_local_t"]
    h.modules = h.modules + [(400, "permissive_postfix_local_t", "cil", True)]
    return h


def s_listener_port_unlabelled() -> Host:
    h = rhel9()
    h.listeners.insert(0, ("LISTEN", 0, 100, "127.0.0.1", "2525", "0.0.0.0", "*", '("master",pid=1189,fd=15)'))
    return h


def s_relayhost_unresolvable() -> Host:
    h = rhel9()
    h.postconf["relayhost"] = "[smtp.example.invalid]:587"
    h.relay = ("smtp.example.invalid", [])
    return h


def s_firewall_blocks_smtp() -> Host:
    h = rhel9()
    h.firewall = fmt.firewall_list_all("public", "enp1s0", ["cockpit", "dhcpv6-client", "ssh"])
    return h


def s_sasl_map_loose() -> Host:
    h = rhel9()
    h.sasl = [("root", "644", SASL_MTIME, "/etc/postfix/sasl_passwd"),
              ("root", "644", SASL_MTIME + 31, "/etc/postfix/sasl_passwd.db"),
              ("missing", "/etc/postfix/sasl_passwd.lmdb")]
    return h


def s_sasl_map_stale() -> Host:
    h = rhel9()
    h.sasl = [("root", "600", MIDNIGHT + 47_000, "/etc/postfix/sasl_passwd"),
              ("root", "600", SASL_MTIME + 31, "/etc/postfix/sasl_passwd.db"),
              ("missing", "/etc/postfix/sasl_passwd.lmdb")]
    return h


def s_rhel8_postfix33() -> Host:
    return rhel8()


def s_rhel8_postfix33_deferred() -> Host:
    h = rhel8()
    reason = "connect to smtp.example.com[192.0.2.25]:587: Connection refused"
    first = [deferred_message("B41D2209A533", "13:11:05", reason), deferred_message("C93A4209A541", "13:13:47", reason,
                                                                                   size=912)]
    h.queue = [first, moved(first, "active"), first]
    _relay_down(h)
    return h


def s_rhel7_healthy() -> Host:
    return rhel7()


def s_rhel7_style() -> Host:
    h = rhel7()
    # restored with `mv` from /tmp: the queue directory and deferred keep tmp_t
    h.queue_dir_context = ctx("tmp_t")
    h.queue_relabels = spool_relabel(h, ["", "deferred", "deferred/3"], "tmp_t")
    return h


SCENARIOS: dict[str, Callable[[], Host]] = {
    "daemons-mislabelled": s_daemons_mislabelled,
    "daemons-not-restarted": s_daemons_not_restarted,
    "healthy-rhel9": s_healthy_rhel9,
    "healthy-rhel9-unrelated-denials": s_healthy_rhel9_unrelated_denials,
    "healthy-debian12": s_healthy_debian12,
    "permissive": s_permissive,
    "disabled": s_disabled,
    "config-permissive-runtime-enforcing": s_config_permissive_runtime_enforcing,
    "kernel-cmdline-selinux0": s_kernel_cmdline_selinux0,
    "boot-entry-selinux0-pending": s_boot_entry_selinux0_pending,
    "policy-type-mismatch": s_policy_type_mismatch,
    "boolean-off": s_boolean_off,
    "boolean-off-local-delivery": s_boolean_off_local_delivery,
    "boolean-runtime-only": s_boolean_runtime_only,
    "boolean-old-name-only": s_boolean_old_name_only,
    "boolean-old-name-resolved": s_boolean_old_name_resolved,
    "spool-mislabelled": s_spool_mislabelled,
    "spool-subdir-mislabelled": s_spool_subdir_mislabelled,
    "custom-queue-dir-no-equivalence": s_custom_queue_dir_no_equivalence,
    "custom-queue-dir-with-equivalence": s_custom_queue_dir_with_equivalence,
    "related-mislabelled": s_related_mislabelled,
    "avc-denials": s_avc_denials,
    "avc-denials-session-strict": s_avc_denials,
    "avc-permissive-denials": s_avc_permissive_denials,
    "auditd-stopped": s_auditd_stopped,
    "postfix-stopped": s_postfix_stopped,
    "postfix-unconfined": s_postfix_unconfined,
    "postfix-disabled-at-boot": s_postfix_disabled_at_boot,
    "not-listening": s_not_listening,
    "queue-over-threshold": s_queue_over_threshold,
    "queue-not-draining": s_queue_not_draining,
    "queue-permission-denied": s_queue_permission_denied,
    "custom-module-present": s_custom_module_present,
    "postfix-check-fails": s_postfix_check_fails,
    "permissive-domain": s_permissive_domain,
    "listener-port-unlabelled": s_listener_port_unlabelled,
    "relayhost-unresolvable": s_relayhost_unresolvable,
    "firewall-blocks-smtp": s_firewall_blocks_smtp,
    "sasl-map-loose": s_sasl_map_loose,
    "sasl-map-stale": s_sasl_map_stale,
    "rhel8-postfix33": s_rhel8_postfix33,
    "rhel8-postfix33-deferred": s_rhel8_postfix33_deferred,
    "rhel7-healthy": s_rhel7_healthy,
    "rhel7-style": s_rhel7_style,
}


def load_matrix(path: str = MATRIX) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)["scenarios"]


def build_all(matrix: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """file name -> exact file content, for every scenario of the matrix."""
    matrix = matrix if matrix is not None else load_matrix()
    files = {}
    for entry in matrix:
        name = entry["name"]
        host = SCENARIOS[name]()
        files[f"{name}.json"] = dump(snapshot(name, host, entry["profile"], entry["reason"]))
    return files


def built_files(directory: str = HOSTS_DIR) -> list[str]:
    """The snapshots in fixtures/hosts/ this script wrote (others, e.g. the VM tier's recorded
    vm-*.json, are left alone)."""
    names = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if name.endswith(".json"):
            try:
                with open(os.path.join(directory, name), encoding="utf-8") as handle:
                    if json.load(handle).get("source") == SOURCE:
                        names.append(name)
            except (OSError, ValueError, AttributeError):
                continue
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on any difference")
    args = parser.parse_args(argv)
    files = build_all()
    stale = sorted(set(built_files()) - set(files))
    if args.check:
        bad = stale + [n for n, text in sorted(files.items())
                       if not os.path.exists(os.path.join(HOSTS_DIR, n))
                       or open(os.path.join(HOSTS_DIR, n), encoding="utf-8").read() != text]
        for name in bad:
            print(f"out of date: fixtures/hosts/{name}")
        return 1 if bad else 0
    os.makedirs(HOSTS_DIR, exist_ok=True)
    for name in stale:
        os.remove(os.path.join(HOSTS_DIR, name))
    for name, text in sorted(files.items()):
        with open(os.path.join(HOSTS_DIR, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    print(f"wrote {len(files)} snapshots to fixtures/hosts/" + (f", removed {len(stale)}" if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
