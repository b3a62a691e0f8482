"""A compromised host against the operator: nothing it prints reaches a terminal raw, and no command
the suite shows a person runs what the host wrote into it.

The hosts are hostile snapshots, built here with the scenario builder (tests/scenarios/build_snapshots.py,
so probes and fixtures cannot drift apart), whose host-supplied words (queue directory, paths from
restorecon and AVC records, boolean names from getsebool and audit2why, permissive domains, module
names, SASL map paths, queue entries, the host name) carry escape sequences, `$(...)`, backticks, `;`,
`&`, `|`, quotes, globs and newlines; and a real sshd on loopback whose postconf prints the same.

Every command the suite shows (a check message's `fix: ...`, the triage finding's Fix, Verify and
Rollback lines, the remediation script) is executed by bash in a sandbox: PATH holds only stubs that
log their argv, and the payloads create marker files with a shell redirection alone (no program), so
a marker file means host text ran, and a stub's argv shows whether the host's word arrived as one
literal argument.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from selftest import REPO

sys.path.insert(0, os.path.join(REPO, "tests", "scenarios"))
import build_snapshots as builder  # noqa: E402

PYTHON = sys.executable
FAST = ("--no-flush", "--drain-timeout=1", "--poll-interval=0.2")

# What a terminal must never receive raw: C0 but newline and tab, DEL, C1, lone surrogates (bytes that
# were not UTF-8). Written out here, not imported from postfix_compliance.text: the test judges it.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# pytest's own colours (--color=yes): the only escape sequences allowed on the terminal.
PYTEST_SGR = re.compile(r"\x1b\[[0-9;]*m")

# The terminal attack of the issue: retitle (OSC), clear the screen and home the cursor (CSI), say
# "ALL CHECKS PASSED" in green, and the same CSI as the single C1 byte.
SCREEN = "\x1b]0;pwned\x07\x1b[2J\x1b[H\x1b[32mALL CHECKS PASSED\x1b[0m\x9b2J"


def run_marker(name: str) -> str:
    """Shell text that creates the file M_<name> in the current directory, with no program at all."""
    return f"$(>M_{name})"


# Host-supplied words, each carrying its own markers. Words that the host's tools print in
# whitespace-separated columns hold no space (the parsers would not take them at all).
QDIR = ("/srv/postfix" + SCREEN + "'\"*?[a]{b,c}~" + run_marker("qdir") + "`>M_qtick`" + ";>M_qsemi"
        + "&>M_qamp|>M_qpipe")
QSUB = QDIR + "/deferred" + run_marker("qsub")
BOOLEAN = "postfix_local_write_mail_spool;" + run_marker("bool") + "`>M_booltick`"
DOMAIN = "postfix_local_t;" + run_marker("domain")
MODULE = "postfix_x" + run_marker("module")
SASL = "/etc/postfix/sasl_passwd;" + run_marker("sasl")
SPOOL = "/var/mail" + SCREEN + ";" + run_marker("spool") + "`>M_spooltick`"
AVC_PATH = "/var/spool/postfix/deferred;" + run_marker("avc")
# An AVC name with spaces, a newline and escapes: the kernel writes it hex-encoded, the parser decodes it.
AVC_HEX_PATH = "/var/spool/postfix/x\x1b[2J\n>M_newline " + run_marker("hex")
A2W_BOOLEAN = "postfix_b;" + run_marker("a2w") + "`>M_a2wtick`"
HOST_NAME = "mail1" + SCREEN + ".example.com"
RELAY_NAME = "relay.example;" + run_marker("relay") + "`>M_relaytick`"
RELAY_ADDRESS = "192.0.2.1" + run_marker("address")
REASON = "connect to smtp.example.com[192.0.2.25]:587: \x00\x0c\x7f\x9b31m" + SCREEN + " timed out"


def _labels_host() -> builder.Host:
    """A mislabelled custom queue directory whose name is the attack; triage: a label cause."""
    h = builder.rhel9()
    h.fqdn = HOST_NAME
    h.postconf["queue_directory"] = QDIR
    h.queue_dir_context = builder.ctx("var_spool_t")
    h.queue_relabels = [(QDIR, builder.ctx("var_spool_t"), builder.ctx("postfix_spool_t")),
                        (QSUB, builder.ctx("tmp_t"), builder.ctx("postfix_spool_t"))]
    h.queue = [[builder.deferred_message("1C4F0209A501", "13:01:11", REASON)]]
    return h


def _avc_host() -> builder.Host:
    """Postfix denials on hostile paths, and audit2why naming a hostile boolean; triage: SELinux cause."""
    h = builder.rhel9()
    src = "scontext=system_u:system_r:postfix_qmgr_t:s0 tcontext=system_u:object_r:tmp_t:s0"
    syscall = ('arch=c000003e syscall=257 success=no exit=-13 ppid=1189 pid=1191 comm="qmgr" '
               'exe="/usr/libexec/postfix/qmgr" subj=system_u:system_r:postfix_qmgr_t:s0 key=(null)')
    event = builder.avc_event("13:15:02", 311, 900, syscall, [
        f'{{ read }} for  pid=1191 comm="qmgr" path="{AVC_PATH}" dev="dm-0" ino=11 {src} tclass=dir permissive=0',
        f'{{ write }} for  pid=1191 comm="qmgr" path={AVC_HEX_PATH.encode().hex().upper()} dev="dm-0" ino=12 {src} '
        "tclass=dir permissive=0"])
    other = builder.avc_event("13:15:03", 120, 901, syscall, [
        f'{{ getattr }} for  pid=1191 comm="qmgr" name="whatever" dev="dm-0" ino=13 {src} tclass=file '
        "permissive=0"])
    h.avc_events = [event, other]
    # the label checks find the denied objects mislabelled: the denials are linked to them by label
    h.queue_relabels = [(AVC_PATH, builder.ctx("tmp_t"), builder.ctx("postfix_spool_t"))]
    first, second = builder.avc_lines(event)
    h.audit2why_blocks = [builder.audit2why_te(first), builder.audit2why_te(second),
                          builder.audit2why_boolean(builder.avc_lines(other)[0], A2W_BOOLEAN, "hostile")]
    h.queue = [[builder.deferred_message("1C4F0209A501", "13:01:11", REASON)]]
    return h


def _names_host() -> builder.Host:
    """Hostile names where checks put them into fixes: boolean, permissive domain, module, SASL map."""
    h = builder.rhel9()
    h.booleans[BOOLEAN] = [False, False, "hostile"]
    h.boolean_aliases["postfix_local_write_mail_spool"] = BOOLEAN
    h.permissive_customized = [DOMAIN]
    h.modules = h.modules + [(400, MODULE, "pp", True)]
    h.sasl = [("root", "600", builder.MIDNIGHT + 47_000, SASL),
              ("root", "600", builder.SASL_MTIME, SASL + ".db"), ("missing", SASL + ".lmdb")]
    h.postconf["smtp_sasl_password_maps"] = "hash:" + SASL
    h.postconf["mail_spool_directory"] = SPOOL
    h.related_relabels = [(SPOOL, builder.ctx("tmp_t"), builder.ctx("mail_spool_t"))]
    return h


def _relay_host() -> builder.Host:
    """A relay that refuses, named by the host's queue; triage: not SELinux, check that relay."""
    h = builder.rhel9()
    reason = f"connect to {RELAY_NAME}[{RELAY_ADDRESS}]:25: Connection refused"
    h.queue = [[builder.deferred_message("2B5D0209A502", "13:02:12", reason)]]
    return h


HOSTILE = {"labels": _labels_host, "avc": _avc_host, "names": _names_host, "relay": _relay_host}


def write_snapshot(directory: str, name: str, host: builder.Host) -> str:
    path = os.path.join(directory, f"{name}.json")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(builder.dump(builder.snapshot(f"hostile-{name}", host, "rhel9", "hostile host")))
    return path


def run_raw(*args: str, cwd: str = REPO, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """A command as a user runs it, its output kept as bytes (what the terminal would receive)."""
    return subprocess.run(list(args), cwd=cwd, capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def suite(report_dir: str, *args: str) -> subprocess.CompletedProcess:
    return run_raw(PYTHON, "-m", "pytest", "-p", "no:randomly", "-ra", "--color=yes",
                   f"--report-dir={report_dir}", "--profile=rhel9", *FAST, *args)


def terminal_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def assert_terminal_safe(data: bytes, where: str) -> None:
    """Only pytest's colours may reach the terminal as escape sequences; no other control character."""
    text = PYTEST_SGR.sub("", terminal_text(data))
    found = sorted({m.group() for m in RAW_CONTROL.finditer(text)})
    assert not found, f"{where}: raw control characters reach the terminal: {found}"


# ---------------------------------------------------------------------- the sandbox
STUBS = ("restorecon", "setsebool", "semanage", "semodule", "postfix", "postqueue", "mailq", "journalctl",
         "ausearch", "audit2why", "systemctl", "getent", "nc", "postconf", "postmap", "firewall-cmd",
         "setenforce", "chown", "chmod", "pytest", "ss", "cat", "sed", "grep", "head", "ls", "getsebool", "awk",
         "stat", "date", "pidof", "getenforce", "seq", "sleep", "rm", "touch")


class Sandbox:
    """bash with a PATH of stubs that log their argv (NUL-separated, count first) and do nothing else."""

    def __init__(self, base: str):
        self.bin = os.path.join(base, "bin")
        self.cwd = os.path.join(base, "cwd")
        self.log = os.path.join(base, "calls")
        os.makedirs(self.bin)
        os.makedirs(self.cwd)
        for name in STUBS:
            path = os.path.join(self.bin, name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(f"#!/bin/bash\nprintf '%s\\0' \"$#\" {name} \"$@\" >> {self.log}\n")
            os.chmod(path, 0o755)

    def run(self, command: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["/bin/bash", "-c", command, "bash", *args], cwd=self.cwd, capture_output=True,
                              timeout=30, env={"PATH": self.bin, "HOME": self.cwd, "LC_ALL": "C.UTF-8"})

    def calls(self) -> list[list[str]]:
        """[program, arg1, ...] per stub call."""
        if not os.path.exists(self.log):
            return []
        fields = open(self.log, "rb").read().split(b"\0")[:-1]
        calls, index = [], 0
        while index < len(fields):
            count = int(fields[index])
            calls.append([f.decode("utf-8", "surrogateescape") for f in fields[index + 1:index + 2 + count]])
            index += 2 + count
        return calls

    def markers(self) -> list[str]:
        """Files the commands left behind: only host text can have made one (the stubs write elsewhere)."""
        return sorted(os.listdir(self.cwd))


def shown_commands(doc: dict) -> list[str]:
    """Every command results.json shows a person or the script runs as root: each host's remediation plan (its
    actions' tests, commands, rollbacks and the look-commands of the steps for a person) and the triage card's
    Fix, Verify and Rollback. (Check messages carry no fix of their own: the plan is the one source.)"""
    commands: list[str] = []
    for plan in (doc.get("plan") or {}).values():
        for action in (plan or {}).get("actions") or ():
            commands += [action["needed_if"]] if action["needed_if"] else []
            commands += [*action["commands"], *[r for r in action["rollback"] if not r.startswith("none")]]
    for finding in (doc.get("diagnosis") or {}).values():
        if finding:
            commands += [c for c in finding["fix"] if not c.startswith("# by hand")]
            commands += [*finding["verification"], *[r for r in finding["rollback"] if not r.startswith("none")]]
    for record in doc["results"]:
        assert not re.search(r"(?<![A-Za-z])fix: ", record.get("message") or ""), record  # not "Postfix: "
    return list(dict.fromkeys(commands))


# ---------------------------------------------------------------------- one run of the hostile fleet
@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    snapshots = {name: write_snapshot(str(base), name, make()) for name, make in HOSTILE.items()}
    report_dir = str(base / "reports")
    hosts = ",".join(f"snapshot://{path}" for path in snapshots.values())
    proc = suite(report_dir, f"--hosts={hosts}", f"--remediation-script={base / 'fix.sh'}")
    with open(os.path.join(report_dir, "results.json"), encoding="utf-8") as handle:
        doc = json.load(handle)
    return {"base": str(base), "proc": proc, "doc": doc, "snapshots": snapshots, "report_dir": report_dir,
            "script": str(base / "fix.sh")}


def _record(doc: dict, check_id: str, snapshot: str) -> dict:
    return next(r for r in doc["results"] if r["check_id"] == check_id and r["host"] == f"snapshot://{snapshot}")


def test_terminal_gets_no_control_character_from_a_host(hostile):
    proc = hostile["proc"]
    assert_terminal_safe(proc.stdout, "pytest stdout")
    assert_terminal_safe(proc.stderr, "pytest stderr")
    out = terminal_text(proc.stdout)
    # The host's sequences are shown, as text: the operator sees what the host tried.
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[H\\x1b[32mALL CHECKS PASSED" in out
    assert "\\x00\\x0c\\x7f\\x9b31m" in out  # NUL, form feed, DEL, the one-byte CSI, in Q-001's message
    assert "\x1b[32mALL CHECKS PASSED" not in out


def test_records_and_html_show_control_characters_visibly(hostile):
    """results.json keeps raw bytes only in the evidence (JSON escapes them); every shown text (message,
    triage finding, host name) holds none, and the HTML page shows them as text (\\x1b), not invisibly."""
    doc = hostile["doc"]
    for record in doc["results"]:
        shown = [record["message"] or "", record["host_name"], *(record.get("notes") or [])]
        if record.get("diagnosis"):
            d = record["diagnosis"]
            shown += [d["summary"], *d["fix"], *d["verification"], *d["rollback"], *d["evidence"]]
        for text in shown:
            assert not RAW_CONTROL.search(text), (record["check_id"], text)
    html = open(os.path.join(hostile["report_dir"], "compliance.html"), encoding="utf-8").read()
    assert not RAW_CONTROL.search(html.replace("\r", "")), sorted(set(RAW_CONTROL.findall(html)))
    data = json.loads(re.search(r'<script type="application/json" id="pfc-data">(.*?)</script>', html, re.S)[1])
    texts = [row["message"] for row in data["rows"].values()]
    texts += [o[k] for o in data["outputs"].values() for k in ("cmd", "out", "err")]
    assert all(not RAW_CONTROL.search(t) for t in texts), [t for t in texts if RAW_CONTROL.search(t)][:3]
    assert any("\\x1b]0;pwned" in t for t in texts)  # visible, in messages and in the probes' output
    assert "\\x1b]0;pwned" in html.split('id="triage"', 1)[1].split("</div></div>", 1)[0]


def assert_fixture_bites(hostile) -> None:
    """The fixture does what it is for: the checks that show host words in fixes fail on these hosts
    (a hostile value a parser refused would prove nothing below). semanage's listings are parsed
    strictly (a name with `;` or `$` there is an unexpected line: BOOL-002 and SEL-005 are errors)."""
    doc, snaps = hostile["doc"], hostile["snapshots"]
    assert hostile["proc"].returncode == 2, terminal_text(hostile["proc"].stderr)
    for check_id, host in (("LBL-001", "labels"), ("LBL-002", "labels"), ("LBL-003", "labels"),
                           ("Q-001", "avc"), ("AVC-002", "avc"), ("BOOL-001", "names"),
                           ("MOD-001", "names"), ("REL-004", "names")):
        record = _record(doc, check_id, snaps[host])
        assert record["outcome"] == "fail", (check_id, record["message"])
    kinds = {r["host"]: (r["diagnosis"] or {}).get("kind") for r in doc["results"]}
    assert kinds[f"snapshot://{snaps['labels']}"] == "selinux"
    assert kinds[f"snapshot://{snaps['avc']}"] == "selinux"
    assert kinds[f"snapshot://{snaps['relay']}"] == "not-selinux"


def test_every_shown_command_runs_nothing_the_host_wrote(hostile, tmp_path):
    assert_fixture_bites(hostile)
    sandbox = Sandbox(str(tmp_path))
    commands = shown_commands(hostile["doc"])
    assert len(commands) >= 12, commands
    for command in commands:
        assert "\n" not in command and not RAW_CONTROL.search(command), command  # one line, paste-exact
        sandbox.run(command)
    assert sandbox.markers() == [], "host text ran from a shown command"
    calls = sandbox.calls()
    # Each hostile word arrived as one literal argument, exactly as the host wrote it.
    for call in (["restorecon", "-Rv", "--", QDIR],
                 ["restorecon", "-Rnv", "--", QDIR],
                 ["semanage", "fcontext", "-a", "-e", "/var/spool/postfix", QDIR],
                 ["semanage", "fcontext", "-d", QDIR],
                 ["restorecon", "-Rv", "--", "/etc/postfix", "/var/lib/postfix", SPOOL],
                 ["postmap", SASL],
                 ["getent", "ahosts", RELAY_NAME],
                 ["nc", "-vz", RELAY_ADDRESS, "25"]):
        assert call in calls, (call, calls)
    # A name that cannot be a boolean, a domain or a module is never put into a command: the plan makes it a
    # step for a person, which names it as inert text.
    for word in (BOOLEAN, A2W_BOOLEAN, DOMAIN, MODULE, AVC_PATH, AVC_HEX_PATH):
        assert not any(word in arg for call in calls for arg in call), word


def test_triage_card_names_hostile_avc_paths_as_text_only(hostile):
    """An AVC record naming `deferred;$(...)` under the queue directory, which the label checks find mislabelled:
    the plan relabels the queue (LBL-002), which covers it, so no command takes the denied path itself; the card
    names it as inert text."""
    finding = _record(hostile["doc"], "AVC-002", hostile["snapshots"]["avc"])["diagnosis"]
    assert "/var/spool/postfix/deferred;$(>M_avc)" in finding["summary"]
    assert not any("M_avc" in line or "M_hex" in line for line in finding["fix"]), finding["fix"]
    assert any(line.startswith("restorecon -Rv") and line.endswith("-- /var/spool/postfix")
               for line in finding["fix"]), finding["fix"]
    html = open(os.path.join(hostile["report_dir"], "compliance.html"), encoding="utf-8").read()
    assert "/var/spool/postfix/deferred;$(&gt;M_avc)" in html


def test_the_remediation_script_runs_nothing_the_host_wrote(hostile, tmp_path):
    script = open(hostile["script"], encoding="utf-8").read()
    assert not RAW_CONTROL.search(script)  # `cat`ing it is safe too
    sandbox = Sandbox(str(tmp_path))
    hosts = [f"snapshot://{path}" for path in hostile["snapshots"].values()]
    for host in hosts:  # the stubs say "nothing to do" to every test: each step is in place, or for a person
        done = sandbox.run('/bin/bash "$1" "$2"', hostile["script"], host)
        assert done.returncode in (0, 3), done.stderr
    listing = sandbox.run('/bin/bash "$1"', hostile["script"])
    assert listing.returncode == 2 and not RAW_CONTROL.search(terminal_text(listing.stderr))
    assert "\\x1b]0;pwned" in terminal_text(listing.stderr)
    assert sandbox.markers() == []
    # the script ran each step's test with the host's word as one argument
    assert ["restorecon", "-Rnv", "--", QDIR] in sandbox.calls(), sandbox.calls()
    assert ["semanage", "fcontext", "-l", "-C"] in sandbox.calls()


def test_fleet_merge_prints_no_control_character(hostile, tmp_path):
    """fleet merge reads other runs' files: a duplicate host × check names the host on stderr."""
    text = json.dumps(hostile["doc"])
    for name, path in hostile["snapshots"].items():  # every mention of the host (records, per-host maps)
        text = text.replace(json.dumps(f"snapshot://{path}")[1:-1], json.dumps(f"ssh://{name}{SCREEN}")[1:-1])
    doc = json.loads(text)
    for record in doc["results"]:  # as another tool (or an older suite) would write it: raw
        record["host_name"] = record["host"].removeprefix("ssh://")
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    doc["generated_at"] = "2026-01-01T00:00:00Z"
    first.write_text(json.dumps(doc))
    doc["generated_at"] = "2026-01-02T00:00:00Z"  # newer (a date in the future would be refused)
    second.write_text(json.dumps(doc))
    proc = run_raw(PYTHON, "-m", "postfix_compliance.fleet", "merge", str(tmp_path / "out"), str(first),
                   str(second))
    assert b"duplicate" in proc.stderr, proc.stderr
    assert_terminal_safe(proc.stderr, "fleet merge")
    assert "labels\\x1b]0;pwned" in terminal_text(proc.stderr)


def test_change_validate_prints_no_control_character(tmp_path):
    """pre lists the baseline's failing checks by host name; post prints each regression's message (the
    AVC-002 one names the host's paths); the suite's own baseline summary and page show them too."""
    snapshot = write_snapshot(str(tmp_path), "host", _healthy_named_hostile())
    script = os.path.join(REPO, "scripts", "change-validate.sh")
    root = str(tmp_path / "reports")
    pre = run_raw(script, "pre", "--name", "hostile", "--reports-root", root, "--python", PYTHON, "--",
                  f"--hosts=snapshot://{snapshot}", "--profile=rhel9", *FAST, "--color=yes")
    assert pre.returncode == 0, terminal_text(pre.stderr)
    assert_terminal_safe(pre.stderr, "change-validate pre")
    assert "mail1\\x1b]0;pwned" in terminal_text(pre.stderr)
    broken = _labels_host()  # the change broke the host: labels, and denials on hostile paths
    broken.avc_events, broken.audit2why_blocks = _avc_host().avc_events, _avc_host().audit2why_blocks
    write_snapshot(str(tmp_path), "host", broken)
    post = run_raw(script, "post", "--name", "hostile", "--reports-root", root, "--python", PYTHON)
    assert post.returncode == 1, terminal_text(post.stderr)
    assert_terminal_safe(post.stderr, "change-validate post")
    assert_terminal_safe(post.stdout, "change-validate post (pytest)")
    assert "REGRESSION LBL-001" in terminal_text(post.stderr)
    assert "\\x1b[2J" in terminal_text(post.stderr)
    assert "REGRESSION AVC-002" in terminal_text(post.stderr)  # its message names the hostile paths
    assert "/var/spool/postfix/x\\x1b[2J" in terminal_text(post.stderr)
    assert "REGRESSION: AVC-002" in PYTEST_SGR.sub("", terminal_text(post.stdout))  # the suite's baseline summary
    page = open(os.path.join(root, "change", "hostile", "post", "compliance.html"), encoding="utf-8").read()
    changes = page.split('id="changes"', 1)[1].split('id="waivers"', 1)[0]
    assert not RAW_CONTROL.search(page.replace("\r", "")) and "/var/spool/postfix/x\\x1b[2J" in changes


def _healthy_named_hostile() -> builder.Host:
    h = builder.rhel9()
    h.fqdn = HOST_NAME
    h.modules = h.modules + [(400, "postfix_local", "pp", True)]  # one known failure for pre to list
    return h


# ---------------------------------------------------------------------- a real host over SSH
SSH_QDIR_PRINTF = r"/srv/postfix\033]0;pwned\007\033[2J\033[32mALL CHECKS PASSED\033[0m\302\233;$(>M_ssh)`>M_sshtick`"
SSH_QDIR = "/srv/postfix\x1b]0;pwned\x07\x1b[2J\x1b[32mALL CHECKS PASSED\x1b[0m\x9b;$(>M_ssh)`>M_sshtick`"
# postconf as a compromised host's: the queue directory is the attack. (printf's format is in single
# quotes: the host's shell prints the payload, it does not run it.)
FAKE_POSTCONF = """Q=$(printf '%QDIR%')
if [ "$1" = -h ]; then
  case $2 in
    queue_directory) printf '%s\\n' "$Q" ;;
    config_directory) echo /etc/postfix ;;
    data_directory) echo /var/lib/postfix ;;
    mail_spool_directory) echo /var/mail ;;
    mail_version) echo 3.7.11 ;;
    *) echo ;;
  esac
  exit 0
fi
printf 'queue_directory = %s\\n' "$Q"
printf '%s\\n' 'config_directory = /etc/postfix' 'data_directory = /var/lib/postfix' \\
  'mail_spool_directory = /var/mail' 'inet_interfaces = loopback-only' 'inet_protocols = all' 'relayhost =' \\
  'smtp_sasl_password_maps =' 'mail_version = 3.7.11'
""".replace("%QDIR%", SSH_QDIR_PRINTF)


@pytest.mark.ssh
def test_real_ssh_host_printing_escape_sequences(tmp_path):
    from sshd import SshFleet, require_sshd
    require_sshd()
    fleet = SshFleet()
    try:
        host = fleet.add("hostile", fakes={"postconf": FAKE_POSTCONF, "getenforce": "echo Enforcing",
                                           "semanage": "exit 0"})
        proc = suite(str(tmp_path / "reports"), f"--hosts={host.url()}", f"--ssh-config={fleet.ssh_config()}",
                     f"--known-hosts={fleet.known_hosts(host)}")
    finally:
        fleet.stop()
    assert_terminal_safe(proc.stdout, "pytest stdout")
    assert_terminal_safe(proc.stderr, "pytest stderr")
    out = terminal_text(proc.stdout)
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[32mALL CHECKS PASSED" in out
    doc = json.load(open(tmp_path / "reports" / "results.json", encoding="utf-8"))
    record = next(r for r in doc["results"] if r["check_id"] == "LBL-003")
    assert record["outcome"] == "fail", record["message"]
    (plan,) = doc["plan"].values()
    fixes = [c for a in plan["actions"] if "LBL-003" in a["checks"] for c in a["commands"]]
    assert fixes[0].startswith("semanage fcontext -a -e /var/spool/postfix $'/srv/postfix\\x1b]0;pwned"), fixes
    assert fixes[0] in out  # the terminal's plan shows the very command a person would paste
    sandbox = Sandbox(str(tmp_path / "sandbox"))
    for fix in fixes:
        sandbox.run(fix)
    assert sandbox.markers() == []
    assert sandbox.calls()[:2] == [["semanage", "fcontext", "-a", "-e", "/var/spool/postfix", SSH_QDIR],
                                   ["restorecon", "-Rv", "--", SSH_QDIR]]


# ---------------------------------------------------------------------- the helpers themselves
NASTY_WORDS = ["plain", "", "a b", "it's", '"', "\\", "*", "~root", "-rf", "{a,b}", "$HOME", "!!", "#x",
               QDIR, AVC_HEX_PATH, "tab\there", "cr\rlf\n", "\x7f\x9b\x85", "bidi\u202eevil\u2066", "line\u2028sep",
               "\udc9b\udcff not UTF-8", "é ü 中"]


def test_quote_gives_bash_back_the_exact_word_on_one_printable_line(tmp_path):
    from postfix_compliance.text import inert, quote, shell
    sandbox = Sandbox(str(tmp_path))
    for word in NASTY_WORDS:
        quoted = quote(word)
        assert "\n" not in quoted and inert(quoted) == quoted, (word, quoted)  # shown as it will be pasted
        sandbox.run(shell("postmap {} {}", word, "end"))
    assert sandbox.markers() == []
    assert [call[1:] for call in sandbox.calls()] == [[w, "end"] for w in NASTY_WORDS]
    assert inert("a\x1b[2J\r\x00\x9b\u202e\tb\n") == "a\\x1b[2J\\x0d\\x00\\x9b\\u202e\tb\n"
