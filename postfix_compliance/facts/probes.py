"""The probe catalogue: every read-only command the suite runs on a host, by name.

A probe's command is what an operator would type; the runner adds `LC_ALL=C`, the Postfix
instance (MAIL_CONFIG) and a timeout around it. Commands that depend on Postfix's own
settings ask `postconf` on the host inside the same command, so that a host's whole
evidence is one round of concurrent commands.
"""

from __future__ import annotations

import calendar
import dataclasses
import re
import shlex

# Postfix's own idea of its directories, asked on the host.
QUEUE_DIR = '"$(postconf -h queue_directory)"'
CONFIG_DIR = '"$(postconf -h config_directory)"'
DATA_DIR = '"$(postconf -h data_directory)"'
MAIL_SPOOL = '"$(postconf -h mail_spool_directory)"'
DAEMON_DIR = '"$(postconf -h daemon_directory)"'

POSTCONF_PARAMS = (
    "queue_directory", "config_directory", "data_directory", "mail_spool_directory",
    "inet_interfaces", "inet_protocols", "relayhost", "smtp_sasl_password_maps", "mail_version",
    "daemon_directory",
)

# ausearch -ts takes these keywords or "MM/DD/YYYY HH:MM:SS"; anything else is refused up front.
AUSEARCH_KEYWORDS = ("recent", "now", "today", "yesterday", "this-week", "week-ago", "this-month",
                     "this-year", "boot", "checkpoint")
_EXPLICIT = re.compile(r"^(?P<month>\d{2})/(?P<day>\d{2})/(?P<year>\d{2}|\d{4})"
                       r"(?: (?P<hh>\d{2}):(?P<mm>\d{2})(?::(?P<ss>\d{2}))?)?$")


def _explicit(since: str) -> tuple[int, int, int, int, int, int] | None:
    """'MM/DD/YYYY[ HH:MM[:SS]]' (or a 2-digit year) -> (year, month, day, hh, mm, ss)."""
    m = _EXPLICIT.match(since)
    if not m:
        return None
    year = int(m["year"]) + (2000 if len(m["year"]) == 2 else 0)
    return year, int(m["month"]), int(m["day"]), int(m["hh"] or 0), int(m["mm"] or 0), int(m["ss"] or 0)


def validate_since(since: str) -> str:
    """Return `since` if it is a window the suite can pass on, else raise ValueError saying the forms."""
    if since in AUSEARCH_KEYWORDS or _explicit(since):
        return since
    raise ValueError(
        f"--avc-since {since!r}: use one of {', '.join(AUSEARCH_KEYWORDS)} or 'MM/DD/YYYY HH:MM:SS'")


def ausearch_since(since: str) -> str:
    """The `-ts` words for ausearch. A date is two words, and under LC_ALL=C ausearch reads it with
    strptime's %x (MM/DD/YY) and requires hour, minute and second (seen on the real guest)."""
    explicit = _explicit(validate_since(since))
    if explicit is None:
        return shlex.quote(since)
    year, month, day, hh, mm, ss = explicit
    return f"{month:02d}/{day:02d}/{year % 100:02d} {hh:02d}:{mm:02d}:{ss:02d}"


def journal_since(since: str) -> str:
    """The journalctl --since form of an ausearch window."""
    mapping = {"recent": "-10min", "now": "now", "today": "today", "yesterday": "yesterday",
               "boot": "-100years", "checkpoint": "-10min", "this-week": "-7d", "week-ago": "-7d",
               "this-month": "-31d", "this-year": "-366d"}
    if since in mapping:
        return mapping[since]
    year, month, day, hh, mm, ss = _explicit(since)
    return f"{year:04d}-{month:02d}-{day:02d} {hh:02d}:{mm:02d}:{ss:02d}"


def window_start(since: str, host_now: float, utc_offset: int = 0) -> float | None:
    """Start of an ausearch-style window in seconds since the epoch, on the host's clock; None: no limit."""
    day = 86400
    local_now = host_now + utc_offset
    midnight = local_now - local_now % day - utc_offset
    spans = {"recent": 600, "checkpoint": 600, "now": 0, "this-week": 7 * day, "week-ago": 7 * day,
             "this-month": 31 * day, "this-year": 366 * day}
    if since in spans:
        return host_now - spans[since]
    if since == "today":
        return midnight
    if since == "yesterday":
        return midnight - day
    if since == "boot":
        return None
    year, month, mday, hh, mm, ss = _explicit(since)
    return calendar.timegm((year, month, mday, hh, mm, ss, 0, 0, 0)) - utc_offset


@dataclasses.dataclass(frozen=True)
class Probe:
    name: str
    command: str
    # "runtime" probes need a running system; static ones read configuration only.
    static: bool = False
    # Needs root to read what it reads (audit log, policy store): run through sudo when asked.
    privileged: bool = False
    # Changes the host (postfix check creates missing queue directories): skipped in read-only runs.
    intrusive: bool = False
    # With --sudo, a compound privileged command runs as this instead, `{sudo}` standing before each
    # program that needs root (a plain pipeline gets sudo on each stage without it).
    sudo_form: str | None = None
    # Relative cost on the host, to balance batches: a Python tool (semanage, audit2why) or
    # postfix-script costs about 40 small C tools (~150 ms against ~3 ms of CPU).
    cost: int = 1
    # Reads a log that an intrusive probe may write to: runs before it (collect.plan_batches).
    reads_logs: bool = False


# `{{`/`}}` are the shell's own braces; {test} and {sudo} are filled per form.
_MAILLOG = ('echo "now=$(date \'+%s %z\')"; for f in "$(postconf -h maillog_file 2>/dev/null)" /var/log/maillog '
            '/var/log/mail.log; do [ -n "$f" ] && [ {test} "$f" ] && exec {sudo}tail -n 2000 "$f"; done; exit 1')
SASL_MAPS = ("for m in $(postconf -h smtp_sasl_password_maps | tr ',' ' '); do f=${m#*:}; "
             'for p in "$f" "$f.db" "$f.lmdb"; do stat -c \'%U %a %Y %n\' "$p" 2>/dev/null '
             '|| echo "missing $p"; done; done')


HEAVY = 40

# The queue is read only through a running master. With master down, root's `postqueue` runs showq
# itself, inside the scan's login session: on an SELinux host showq is then denied the session's
# pipes and sockets (seen on the real guest), and those denials would be the suite's own footprint
# in the next run's AVC-002. A non-root postqueue would log a fatal line instead (LOG-001's). So the
# probe asks master's pid file (or, where that is unreadable to this login, the process table) first.
MAIL_SYSTEM_DOWN = "mail system is down: no running master process, queue not read"
MAIL_SYSTEM_DOWN_STATUS = 75  # EX_TEMPFAIL
_MASTER_RUNNING = ('q=$(postconf -h queue_directory); '
                   'if [ -r "$q/pid/master.pid" ]; then read -r p < "$q/pid/master.pid"; '
                   '[ "$(cat "/proc/${p:-0}/comm" 2>/dev/null)" = master ]; '
                   'else ps -C master >/dev/null 2>&1; fi || '
                   f'{{ echo "{MAIL_SYSTEM_DOWN}" >&2; exit {MAIL_SYSTEM_DOWN_STATUS}; }}; ')

# ... and only where its directories carry the policy's labels. A Postfix program reading a queue directory the
# policy gives a Postfix type that it does not have now (`deferred` relabelled tmp_t; qmgr's hash subdirectories
# made in it) is denied: showq's denial would be an audit record of this scan (seen on the targeted-policy
# guest), counted by the next run's AVC-002. The queue directory, its own subdirectories and their
# subdirectories (the hash levels) are asked of restorecon -n first; a custom queue without an fcontext
# equivalence (the policy would take its Postfix type away: LBL-002's finding) is still read.
QUEUE_MISLABELLED = "queue not read: its directories do not carry the policy's labels (see LBL-002)"
QUEUE_MISLABELLED_STATUS = 76
_QUEUE_SUBDIRS = "active bounce corrupt defer deferred flush hold incoming maildrop pid private public saved trace"
_QUEUE_LABELLED = ('if command -v restorecon >/dev/null 2>&1 && [ "$(getenforce 2>/dev/null)" != Disabled ]; then '
                   f'm=$({{ printf \'%s\\n\' "$q"; for d in {_QUEUE_SUBDIRS}; do [ -d "$q/$d" ] && '
                   'find "$q/$d" -maxdepth 1 -type d 2>/dev/null; done; } | restorecon -nv -f - 2>/dev/null | '
                   "grep -E ' to [^ ]*:postfix_|->[^ ]*:postfix_' | head -n 3); "
                   f'if [ -n "$m" ]; then {{ echo "{QUEUE_MISLABELLED}"; printf \'%s\\n\' "$m"; }} >&2; '
                   f'exit {QUEUE_MISLABELLED_STATUS}; fi; fi; ')
_QUEUE_READABLE = _MASTER_RUNNING + _QUEUE_LABELLED

# semanage needs a policy store and only feeds checks that are not applicable without SELinux
# (require_selinux): on a live host whose getenforce says Disabled it is not started at all.
GATED_OFF = "SELinux is disabled (getenforce: Disabled): {tool} not started"  # what a gated probe says
_SELINUX_ONLY = ("[ \"$(getenforce 2>/dev/null)\" != Disabled ] || "
                 "{{ echo '" + GATED_OFF + "' >&2; exit 1; }}; ")

# audit2why loads the whole policy (about a second on a real host): started only when ausearch
# found records to explain. `read` takes the first record; the rest follows it through `cat`.
_AUDIT2WHY = ("{sudo}ausearch --input-logs -m AVC,USER_AVC -ts {since} --raw | "
              "{{ IFS= read -r first || exit 0; {{ printf '%s\\n' \"$first\"; cat; }} | {sudo}audit2why; }}")


def _semanage(name: str, arguments: str, live: bool) -> Probe:
    """A semanage probe; on a live host, gated on SELinux being enabled (see _SELINUX_ONLY)."""
    command = f"semanage {arguments}"
    if not live:
        return Probe(name, command, static=True, privileged=True, cost=HEAVY)
    gate = _SELINUX_ONLY.format(tool="semanage")
    return Probe(name, gate + command, static=True, privileged=True, cost=HEAVY,
                 sudo_form=gate + "{sudo}" + command)


# Asked first when the profile is detected from the host (it names the booleans to ask).
OS_RELEASE = Probe("os_release", "cat /etc/os-release", static=True)


# One `getsebool NAME` probe per boolean of the profile, named with this prefix.
BOOLEAN_PROBE_PREFIX = "getsebool:"


def boolean_probe_name(boolean: str) -> str:
    return f"{BOOLEAN_PROBE_PREFIX}{boolean}"


def is_boolean_probe(probe: str) -> bool:
    """Whether a probe name is one of the per-boolean lookups (boolean_probe_name)."""
    return probe.startswith(BOOLEAN_PROBE_PREFIX)


_POSTCONF_NAME = re.compile(r"[a-z0-9_]{1,64}")


def build_probes(boolean_names: tuple[str, ...] = (), avc_since: str = "recent", live: bool = True,
                 postconf_params: tuple[str, ...] = (), extra: tuple[Probe, ...] = ()) -> tuple[Probe, ...]:
    """All probes for one host run. `boolean_names` are the profile's names, as written there;
    `live` is False for an image gate (no running kernel: getenforce cannot gate anything);
    `postconf_params` and `extra` come from users' hooks (hookspecs.py), checked here."""
    for name in postconf_params:
        if not isinstance(name, str) or not _POSTCONF_NAME.fullmatch(name):
            raise ValueError(f"postconf parameter {name!r}: not a Postfix parameter name")
    since = ausearch_since(avc_since)
    probes = [
        OS_RELEASE,
        # The host's clock: a baseline comparison places the pre run's end on it (see report/baseline.py).
        Probe("host_clock", "date '+%s %z'", static=True),
        Probe("getenforce", "getenforce"),
        Probe("sestatus", "sestatus"),
        Probe("selinux_config", "cat /etc/selinux/config", static=True),
        Probe("proc_cmdline", "cat /proc/cmdline"),
        Probe("boot_entries",
              "grep -H -E '^(options|kernelopts=|GRUB_CMDLINE_LINUX(_DEFAULT)?=)' /etc/default/grub "
              "/boot/loader/entries/*.conf /boot/grub2/grubenv 2>/dev/null", static=True),
        Probe("getsebool_all", "getsebool -a"),
        _semanage("semanage_boolean", "boolean -l", live),
        Probe("postconf", "postconf " + " ".join(dict.fromkeys(POSTCONF_PARAMS + tuple(postconf_params))),
              static=True),
        Probe("queue_dir_label", f"ls -Zd {QUEUE_DIR}", static=True),
        Probe("queue_dir_relabel", f"restorecon -Rnv {QUEUE_DIR}", static=True, privileged=True),
        Probe("related_relabel", f"restorecon -Rnv {CONFIG_DIR} {DATA_DIR} {MAIL_SPOOL}",
              static=True, privileged=True),
        # Postfix's daemon programs: their labels now, and what the policy says (a program labelled bin_t runs
        # in master's domain instead of its own). Both are readable by any login.
        Probe("daemon_labels", f"ls -Zd {DAEMON_DIR}/*", static=True),
        Probe("daemon_relabel", f"restorecon -Rnv {DAEMON_DIR}", static=True),
        _semanage("fcontext_local", "fcontext -l -C", live),
        _semanage("permissive_domains", "permissive -l", live),
        Probe("policy_modules", "semodule -lfull", static=True, privileged=True),
        _semanage("port_labels", "port -l", live),
        # --input-logs: ausearch reads stdin instead of the audit log when stdin is a pipe, as it is
        # over SSH (seen on the real guest: "<no matches>" with denials in the log).
        Probe("avc_denials", f"ausearch --input-logs -m AVC,USER_AVC -ts {since}", privileged=True, reads_logs=True),
        Probe("audit2why", _AUDIT2WHY.format(sudo="", since=since), privileged=True, cost=HEAVY, reads_logs=True,
              sudo_form=_AUDIT2WHY.format(sudo="{sudo}", since=since)),
        Probe("processes", "ps -eZ"),
        Probe("units_active", "systemctl is-active postfix auditd"),
        Probe("units_enabled", "systemctl is-enabled postfix auditd", static=True),
        Probe("listeners", "ss -lntp", privileged=True),
        # Opt-in (--postfix-check): it runs Postfix's own programs as root, which create missing queue
        # directories and, under SELinux, leave audit records of the scan's login session.
        Probe("postfix_check", "postfix check", static=True, privileged=True, intrusive=True, cost=HEAVY),
        # postqueue -j exists from Postfix 3.1; asking an older one logs a fatal usage line that
        # LOG-001 would then report, so the version is asked first.
        Probe("queue_json", _QUEUE_READABLE + 'v=$(postconf -h mail_version); case "$v" in 2.*|3.0|3.0.*) '
                            'echo "postqueue -j needs Postfix 3.1 or newer (mail_version $v)" >&2; exit 3;; esac; '
                            "exec postqueue -j"),
        Probe("queue_text", _QUEUE_READABLE + "exec postqueue -p"),
        Probe("journal",
              f"journalctl --no-pager -q -o short -u postfix -u 'postfix@*' "
              f"--since {shlex.quote(journal_since(avc_since))}", privileged=True, reads_logs=True),
        Probe("maillog",  # the host's clock first: syslog lines carry neither year nor zone
              _MAILLOG.format(test="-r", sudo=""), privileged=True, reads_logs=True,
              # with sudo, existence is checked as the login user (-e needs no read permission)
              sudo_form=_MAILLOG.format(test="-e", sudo="{sudo}")),
        Probe("firewall", "firewall-cmd --list-all", privileged=True),
        Probe("relay_resolution",
              "r=$(postconf -h relayhost | sed -E 's/^\\[([^]]*)\\].*$/\\1/; s/:[0-9]+$//'); "
              'echo "relayhost=$r"; [ -z "$r" ] || getent ahosts "$r"'),
        Probe("sasl_maps", SASL_MAPS, static=True, privileged=True,
              sudo_form=SASL_MAPS),  # stat needs search permission on the directories only: no sudo
    ]
    for name in dict.fromkeys(boolean_names):
        probes.append(Probe(boolean_probe_name(name), f"getsebool {shlex.quote(name)}"))
    ours = {p.name for p in probes}
    for probe in extra:
        if not isinstance(probe, Probe) or probe.name in ours or is_boolean_probe(probe.name):
            raise ValueError(f"{probe!r}: an extra probe must be a Probe with a name of its own")
        ours.add(probe.name)
        probes.append(probe)
    return tuple(probes)


# The commands the queue-drain helper runs besides the catalogue above.
FLUSH_COMMAND = "postqueue -f"
