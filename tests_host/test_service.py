"""The Postfix service: running, enabled, listening, confined, and its own consistency check."""

from postfix_compliance.errors import EvidenceError
from postfix_compliance.checks import bullet_list, check, require_postfix, require_selinux
from postfix_compliance.facts import model
from postfix_compliance.facts.host import not_applicable

# Postfix daemon process names (ps comm), for SVC-004.
POSTFIX_DAEMONS = ("master", "qmgr", "nqmgr", "pickup", "smtpd", "smtp", "cleanup", "trivial-rewrite", "local",
                   "bounce", "showq", "scache", "anvil", "tlsmgr", "postscreen", "proxymap", "verify", "flush",
                   "lmtp", "pipe", "virtual", "spawn", "dnsblog", "tlsproxy", "discard", "error", "oqmgr")


def _unit_state(facts, probe):
    units = facts.get(probe)
    if isinstance(units, model.UnitStates):
        return units.states.get("postfix")
    return None


@check(id="SVC-001", title="Postfix is running", severity="high", section="Environment",
       rationale="The runbook's symptom starts from an active service; a stopped Postfix is its own outage.",
       remediation=["systemctl start postfix", "journalctl -u postfix -n 80 --no-pager"],
       references=["runbook: Environment & Reproduction (systemctl status postfix)"])
def test_postfix_active(facts):
    require_postfix(facts)
    # The process list decides: Debian's postfix.service is a oneshot wrapper that stays "active"
    # while postfix@- has failed and no master runs (seen on the real guest).
    processes = facts.need("processes")
    state = _unit_state(facts, "units_active")
    assert processes.named("master"), "no Postfix master process is running (ps -eZ)" + (
        f"; postfix.service says {state}" if state else "")
    if state is not None and state != "unknown":  # "unknown": systemd has no such unit
        assert state == "active", f"postfix.service is {state} (systemctl is-active) while a master process " \
                                  "runs: Postfix was started outside systemd"


@check(id="SVC-002", title="Postfix starts at boot", severity="medium", section="Prevention", static=True,
       rationale="A host that comes back from a reboot without Postfix queues nothing and accepts nothing.",
       remediation=["systemctl enable postfix"],
       references=["ComplianceAsCode: service_postfix_enabled"])
def test_postfix_enabled(facts):
    require_postfix(facts)
    units = facts.get("units_enabled")
    if not isinstance(units, model.UnitStates):
        facts.need("units_enabled")
    state = units.states.get("postfix")
    assert state in ("enabled", "enabled-runtime", "static", "alias", "indirect"), \
        f"postfix.service is {state or 'not installed'} (systemctl is-enabled)"


def _interface_ok(address: str, inet_interfaces: str) -> bool:
    wanted = inet_interfaces.replace(",", " ").split()
    if not wanted or "all" in wanted:
        return True
    loopback = address.startswith("127.") or address in ("[::1]", "::1")
    if any(w in ("loopback-only", "localhost") for w in wanted) and loopback:
        return True
    bare = address.strip("[]").split("%")[0]
    return bare in (w.strip("[]") for w in wanted) or address in ("0.0.0.0", "*", "[::]")


@check(id="SVC-003", title="master listens on port 25 on the configured interfaces", severity="high",
       section="Diagnosis",
       rationale="Without a listener on 25 nothing is received; a listener on other interfaces than "
                 "inet_interfaces means the configuration in force is not the one on disk.",
       remediation=["postconf inet_interfaces", "postfix reload   # or: systemctl restart postfix",
                    "ss -lntp | grep ':25 '"],
       references=["runbook: Step-by-Step Diagnosis (ss -lntp | grep ':25 ')"])
def test_listening_on_smtp(facts):
    require_postfix(facts)
    listeners = facts.need("listeners")
    smtp = [l for l in listeners.listeners if l.port == 25]
    assert smtp, "nothing listens on port 25 (ss -lntp)"
    inet_interfaces = facts.postconf("inet_interfaces") or "all"
    by_master = [l for l in smtp if l.held_by("master") or not l.processes]
    assert by_master, "port 25 is held by " + ", ".join(n for l in smtp for n, _ in l.processes) + ", not Postfix"
    wrong = [l.address for l in by_master if not _interface_ok(l.address, inet_interfaces)]
    assert not wrong, f"master listens on {', '.join(wrong)}:25 but inet_interfaces = {inet_interfaces}"


@check(id="SVC-004", title="Each Postfix daemon runs in its own domain", severity="high", section="Root cause",
       rationale="Postfix started by hand (unconfined_t) or by an init script without a transition "
                 "(initrc_t) is unconfined; a daemon whose program is mislabelled (bin_t) runs in master's "
                 "wider domain instead of its own: either way the policy written for it no longer applies.",
       remediation=["postfix stop; systemctl start postfix   # let systemd start it in postfix_master_t",
                    "restorecon -Rv \"$(postconf -h daemon_directory)\"; systemctl restart postfix"],
       references=["runbook: Root Cause Analysis"])
def test_postfix_domains(facts, profile):
    require_postfix(facts)
    require_selinux(facts)
    processes = facts.need("processes").named(*POSTFIX_DAEMONS)
    if not any(p.comm == "master" for p in processes):
        raise not_applicable("no Postfix master process is running (see SVC-001)")
    # With SELinux on, ps prints `-` only for a label it could not read: a process that exited between
    # ps listing it and reading its label (seen on the real guest: idle smtpd and cleanup ending at
    # max_idle). Unknown, not unconfined: noted, not judged.
    unread = [p for p in processes if p.label is None]
    labelled = [p for p in processes if p.label is not None]
    if not labelled:
        raise EvidenceError("ps -eZ printed no label for any Postfix process although SELinux is on")
    if unread:
        facts.note("not judged, label unreadable (the process was ending): " +
                   ", ".join(f"{p.comm} (pid {p.pid})" for p in unread))
    prefix = profile.postfix_domain_prefix
    wrong = [f"{p.comm} (pid {p.pid}) in {p.domain}" for p in labelled if not (p.domain or "").startswith(prefix)]
    own = _own_domains(facts, prefix)
    for p in labelled:
        expected, how = own.get(p.comm, (None, ""))
        if expected and p.domain != expected and (p.domain or "").startswith(prefix):
            wrong.append(f"{p.comm} (pid {p.pid}) in {p.domain}, not its own {expected} ({how})")
    assert not wrong, "Postfix processes outside their domains:\n" + bullet_list(wrong)


def _own_domains(facts, prefix):
    """Daemon name -> (the domain the host's policy gives it, why): where the policy labels its program
    PREFIX<daemon>_exec_t, master's transition runs it in PREFIX<daemon>_t (postfix_qmgr_exec_t ->
    postfix_qmgr_t); a program labelled PREFIX + "exec_t" (anvil, proxymap, tlsmgr...) has no domain of its
    own and runs in master's. The policy's label is restorecon's where the program is mislabelled now."""
    labels, mismatches = facts.get("daemon_labels"), facts.get("daemon_relabel")
    if not isinstance(labels, model.FileLabels) or not isinstance(mismatches, model.LabelMismatches):
        facts.note("each daemon's own domain not judged: its program's labels were not read")
        return {}
    wrong = {m.path: m for m in mismatches.items}
    own = {}
    for label in labels.labels:
        name = label.path.rsplit("/", 1)[-1]
        mismatch = wrong.get(label.path)
        policy = (mismatch.expected_type if mismatch else label.type) or ""
        daemon = policy[len(prefix):-len("_exec_t")] if policy.startswith(prefix) and policy.endswith("_exec_t") else ""
        if daemon and "_" not in daemon:
            how = f"its program is labelled {mismatch.current_type} where the policy says {policy}" if mismatch \
                else f"its program is {policy}"
            own[name] = (f"{prefix}{daemon}_t", how)
    return own


@check(id="SVC-005", title="`postfix check` is clean", severity="medium", section="Diagnosis", static=True,
       intrusive=True,
       rationale="postfix check reports wrong ownership and permissions in the queue, which look like SELinux "
                 "denials in the log but are not. It is opt-in (--postfix-check): it runs Postfix's own programs "
                 "as root, which create missing queue directories and, on an SELinux host, leave audit records "
                 "of the scan's login session (a footprint the next run's AVC-002 would report).",
       remediation=["postfix check", "postfix set-permissions   # when it reports ownership or modes"],
       references=["postfix(1): check"])
def test_postfix_check(facts):
    require_postfix(facts)
    if not facts.collected("postfix_check"):
        raise not_applicable("postfix check was not run: " + facts.not_run.get("postfix_check", "not asked"))
    result = facts.need("postfix_check")
    if result.exit_status != 0 and not result.messages:
        assert False, (f"postfix check exited {result.exit_status} without a message "
                       "(Postfix prints details only on a terminal: run `postfix check` there)")
    assert result.exit_status == 0 and not result.messages, \
        "postfix check reports problems:\n" + bullet_list(result.messages)
