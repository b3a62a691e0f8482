"""Triage: one root-cause finding per host, correlating queue errors, log lines and AVC denials.

The runbook's triage step is "correlate queue errors with audit denials". This module does it from
the facts already collected (no new commands): it links Postfix denials to the queue directory, the
mail spool and the labels the label checks found wrong, and says plainly when the queue trouble is
not an SELinux problem at all. It judges nothing about compliance; the checks do that.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Callable, Mapping

from postfix_compliance.denials import postfix_denials
from postfix_compliance.facts import model
from postfix_compliance.text import shell
from postfix_compliance.facts.probes import MAIL_SYSTEM_DOWN, QUEUE_MISLABELLED

# Names of the queue's own subdirectories: an AVC record names only the last path component.
QUEUE_SUBDIRS = {"active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "maildrop",
                 "pid", "private", "public", "saved", "trace"}
# Time before the oldest queue error in which a denial still counts as its cause (seconds).
WINDOW_SLACK = 600

NETWORK_CAUSES = (
    (re.compile(r"connect to (?P<relay>[^\s\[]*\[[^\]]*\]:\d+): Connection refused", re.I),
     "relay {relay} refuses connections", ("REL-003",)),
    (re.compile(r"connect to (?P<relay>[^\s\[]*\[[^\]]*\]:\d+): (Connection timed out|No route to host|"
                r"Network is unreachable)", re.I),
     "relay {relay} cannot be reached (timed out / no route)", ("REL-003", "REL-001")),
    (re.compile(r"(Host or domain name not found|Name service error)(.*?name=(?P<relay>[\w.\-]+))?", re.I),
     "the name {relay} does not resolve", ("REL-001",)),
    (re.compile(r"SASL authentication failed|authentication failed|Authentication required", re.I),
     "the relay rejects the credentials", ("REL-004",)),
)
# The mail spool's types in the policies the profiles name (a queue's types start with the Postfix prefix).
MAIL_SPOOL_TYPES = ("mail_spool_t",)
POSTFIX_TYPES = "postfix_"  # the policy module's own file types, whatever the profile calls its domains
# audit2why's words for a denial the policy loaded now would not make (seen on the guest after the boolean
# was set on again): "Unknown - would be allowed by active policy".
ALLOWED_NOW = "would be allowed by active policy"
# A stale dotlock: local(8) could not create it because it exists (a delivery that was denied left it).
STALE_LOCK = re.compile(r"unable to create lock file (?P<path>/\S+?): File exists")


@dataclasses.dataclass(frozen=True)
class Cause:
    """One distinct reason behind the host's trouble, with what fixes it. A remedy is a dict naming an action
    kind of the remediation plan and its values ({"kind": "boolean", "name": ..., "value": True}, {"kind":
    "relabel", "path": ...}, {"kind": "remove_stale_lock", "path": ...}, {"kind": "manual", "summary": ...,
    "look": [...]}): the plan (remediation_plan.py) turns it into its action, so triage never writes a fix."""
    summary: str
    checks: tuple[str, ...]
    remedies: tuple[Mapping[str, Any], ...] = ()
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "checks": list(self.checks),
                "remedies": [dict(r) for r in self.remedies], "evidence": list(self.evidence)}


@dataclasses.dataclass(frozen=True)
class Finding:
    kind: str  # selinux | not-selinux | masked | history
    summary: str
    causes: tuple[Cause, ...]
    related_checks: tuple[str, ...]
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "summary": self.summary, "causes": [c.to_dict() for c in self.causes],
                "related_checks": list(self.related_checks), "evidence": list(self.evidence)}


def diagnose(get: Callable[[str], Any], prefix: str, session_types: tuple[str, ...] = ()) -> Finding | None:
    """The host's finding, from `get(probe) -> fact` (the stage facts of a host: stage_probes.py). `prefix` is
    the profile's Postfix domain prefix, `session_types` its login-session target types (denials.py). It names
    every distinct cause it finds (a denial, a wrong label, each distinct reason the queue holds mail), each
    with its remedies."""
    facts = _Facts(get, prefix, session_types)
    denials = facts.postfix_denials()
    # "Masked" rests on the state now (getenforce, permissive domains now): a permissive=1 record from
    # an earlier permissive spell is history, whatever the mode is today.
    masked = facts.masking()
    # A denial logged with permissive=1 was not enforced, so it stopped nothing; and one whose cause is gone
    # (relabelled since, the boolean on again, the queue empty) is no cause now.
    unenforced = [d for d in denials if d.permissive]
    linked = facts.linked_denials([d for d in denials if not d.permissive])
    current = [(d, reason) for d, reason in linked if facts.still_holds(d, reason)]
    past = [d for d, reason in linked if (d, reason) not in current]
    if masked and (unenforced or current):
        # Permissive now: what it hides is every logged-not-enforced denial, and enforced ones still standing.
        hidden = current + [(d, r) for d, r in facts.linked_denials(unenforced) if facts.still_holds(d, r)]
        return _masked(facts, masked, unenforced + [d for d, _ in current], hidden)
    selinux = _selinux_causes(facts, current) if current else _label_causes(facts)
    queue = _queue_causes(facts, explained=bool(selinux))
    history = _history_cause(unenforced, past)
    if selinux:
        return _finding("selinux", facts, selinux + queue + history)
    if queue:
        return _finding("not-selinux", facts, queue + history)
    return _finding("history", facts, history) if history else None


def _finding(kind: str, facts: _Facts, causes: list[Cause]) -> Finding:
    summary = causes[0].summary
    if len(causes) > 1:
        summary += "".join(f"; also: {c.summary}" for c in causes[1:])
    related = tuple(dict.fromkeys(c for cause in causes for c in cause.checks))
    evidence = list(dict.fromkeys(line for cause in causes for line in cause.evidence))
    return Finding(kind, summary, tuple(causes), related, tuple(evidence[:40]))


class _Facts:
    def __init__(self, get: Callable[[str], Any], prefix: str, session_types: tuple[str, ...] = ()):
        self._get = get
        self.prefix = prefix
        self.session_types = session_types

    def fact(self, probe: str, kind: type) -> Any:
        value = self._get(probe)
        return value if isinstance(value, kind) else None

    def postconf(self, name: str) -> str:
        config = self.fact("postconf", model.PostfixConfig)
        return (config.params.get(name) or "") if config else ""

    def queue(self) -> model.QueueState | None:
        return self.fact("queue_json", model.QueueState) or self.fact("queue_text", model.QueueState)

    def postfix_denials(self) -> list[model.AvcDenial]:
        """Postfix denials that concern mail flow (a login session's are never a queue's cause)."""
        denials = self.fact("avc_denials", model.AvcDenials)
        mail, _ = postfix_denials(denials.denials if denials else (), self.prefix, self.session_types)
        return mail

    def masking(self) -> str | None:
        mode = self.fact("getenforce", model.SelinuxMode)
        if mode and mode.mode == "permissive":
            return "SELinux is permissive"
        permissive = self.fact("permissive_domains", model.PermissiveDomains)
        domains = [d for d in (permissive.all if permissive else ()) if d.startswith(self.prefix)]
        return f"Postfix domain(s) {', '.join(domains)} are permissive" if domains else None

    def mismatches(self) -> list[model.Relabel]:
        found = []
        for probe in ("queue_dir_relabel", "related_relabel"):
            fact = self.fact(probe, model.LabelMismatches)
            found += list(fact.items) if fact else []
        return found

    def boolean_on(self, name: str) -> bool | None:
        """A boolean's runtime value now (getsebool -a, else semanage's current column); None: unknown."""
        values = self.fact("getsebool_all", model.Booleans)
        if values and name in values.values:
            return values.values[name]
        settings = self.fact("semanage_boolean", model.BooleanSettings)
        if settings and name in settings.settings:
            return settings.settings[name].current
        return None

    def queue_in_trouble(self) -> bool:
        queue = self.queue()
        return queue is None or queue.deferred_count > 0

    def still_holds(self, denial: model.AvcDenial, reason: str) -> bool:
        """Whether what a linked denial points at is still wrong now: the label is still wrong (that is how it
        was linked), a boolean audit2why names is still off, or the queue it touched is still in trouble. A
        denial audit2why says the loaded policy would allow now (a boolean turned on since) is history."""
        if reason == "label":
            return True
        verdict = self.verdicts().get(denial.event_id)
        if verdict and ALLOWED_NOW in verdict.cause.lower():
            return False
        if reason == "path" and not self.proper_type(denial.target_type) and not self.mislabelled_under(denial):
            return False  # denied on a wrong label (tmp_t, var_t...) that the label checks find fixed now
        if reason == "boolean":
            verdict = self.verdicts().get(denial.event_id)
            return any(self.boolean_on(b) is not True for b in (verdict.booleans if verdict else ()))
        return self.queue_in_trouble()

    def proper_type(self, target_type: str | None) -> bool:
        """A type Postfix's policy gives the queue or the mail spool (a denial on it is the policy's, not a
        label's): the profile's Postfix types and the mail spool's."""
        return bool(target_type) and (target_type.startswith((self.prefix, POSTFIX_TYPES))
                                      or target_type in MAIL_SPOOL_TYPES)

    def mislabelled_under(self, denial: model.AvcDenial) -> bool:
        """Whether the label checks find something wrong now where the denial was (by path, or by its name)."""
        path = denial.path or ""
        for m in self.mismatches():
            if path.startswith("/") and (m.path == path or m.path.startswith(path.rstrip("/") + "/")):
                return True
            if not path.startswith("/") and os.path.basename(m.path) == path:
                return True
        return False

    def verdicts(self) -> dict[str, model.Audit2WhyVerdict]:
        why = self.fact("audit2why", model.Audit2Why)
        return {v.event_id: v for v in why.verdicts} if why else {}

    def error_window_start(self) -> float | None:
        queue = self.queue()
        arrivals = [m.arrival_time for m in (queue.messages if queue else ()) if m.arrival_time]
        return min(arrivals) - WINDOW_SLACK if arrivals else None

    def linked_denials(self, denials: list[model.AvcDenial]) -> list[tuple[model.AvcDenial, str]]:
        """Denials tied to the queue or the mail spool by path, by a wrong label, or by audit2why's boolean."""
        queue_dir = self.postconf("queue_directory").rstrip("/")
        spool = self.postconf("mail_spool_directory").rstrip("/")
        mismatches = self.mismatches()
        verdicts = self.verdicts()
        start = self.error_window_start()
        linked = []
        for denial in denials:
            if start is not None and denial.timestamp < start:
                continue  # older than anything in the queue: not its cause
            path = denial.path or ""
            if any(_same_object(m, denial) for m in mismatches):
                reason = "label"
            elif verdicts.get(denial.event_id) and verdicts[denial.event_id].booleans:
                reason = "boolean"
            elif path.startswith("/") and any(root and (path == root or path.startswith(root + "/"))
                                              for root in (queue_dir, spool)):
                reason = "path"
            elif not path.startswith("/") and path in QUEUE_SUBDIRS:
                reason = "path"
            else:
                continue
            linked.append((denial, reason))
        return linked


def _same_object(mismatch: model.Relabel, denial: model.AvcDenial) -> bool:
    """Whether a mislabelled path the label checks found is the object a denial names (its type and its name:
    an AVC record names only the last path component)."""
    return mismatch.current_type == denial.target_type and (
        not denial.path or os.path.basename(mismatch.path) == os.path.basename(denial.path)
        or mismatch.path == denial.path)


def _where(facts: _Facts, denial: model.AvcDenial) -> tuple[str, str | None]:
    """A full path for the denied object and the mismatch that explains it, if the label checks found one."""
    for mismatch in facts.mismatches():
        if _same_object(mismatch, denial):
            return mismatch.path, mismatch.expected_type
    path = denial.path or "?"
    if not path.startswith("/") and path in QUEUE_SUBDIRS and facts.postconf("queue_directory"):
        path = os.path.join(facts.postconf("queue_directory"), path)
    return path, None


def _relabel_root(facts: _Facts, path: str) -> str:
    """The topmost mislabelled directory whose mislabel runs down to `path`: restorecon there fixes the whole
    subtree. (Under targeted policy a tmp_t `deferred` gives the hash subdirectories qmgr makes in it a type of
    their own, postfix_qmgr_tmp_t: the denial names one of them, the fault is their parent.)"""
    mislabelled = {m.path.rstrip("/") for m in facts.mismatches()}
    root = path.rstrip("/")
    while (parent := os.path.dirname(root)) != root and parent in mislabelled:
        root = parent
    return root


def _queue_lines(facts: _Facts, limit: int = 10) -> list[str]:
    queue = facts.queue()
    lines = []
    for m in (queue.messages if queue else ())[:limit]:
        reasons = "; ".join(sorted({r.delay_reason or "-" for r in m.recipients}))
        lines.append(f"queue {m.queue_name} {m.queue_id}: {reasons}")
    return lines


def _log_lines(facts: _Facts, pattern: re.Pattern, limit: int = 10) -> list[str]:
    lines = []
    for probe in ("journal", "maillog"):
        log = facts.fact(probe, model.MailLog)
        for line in (log.lines if log else ()):
            if line.program.startswith("postfix") and pattern.search(line.message) and line.raw not in lines:
                lines.append(line.raw)
    return lines[-limit:]


_PERMISSION = re.compile(r"permission denied|fatal:", re.I)


_PERMISSION = re.compile(r"permission denied|fatal:", re.I)


def _effect(facts: _Facts) -> str:
    queue = facts.queue()
    unreadable = queue is None and _queue_error(facts)
    stuck = queue.deferred_count if queue else 0
    return (f"queue unreadable ({unreadable})" if unreadable else
            f"queue stuck ({stuck} deferred)" if stuck else "mail delivery fails")


def _selinux_causes(facts: _Facts, linked: list[tuple[model.AvcDenial, str]]) -> list[Cause]:
    """One cause per distinct remedy the linked denials point to: a boolean audit2why names, or the relabel
    of the topmost mislabelled directory above the denied object."""
    verdicts = facts.verdicts()
    grouped: dict[tuple[str, str], list[model.AvcDenial]] = {}
    for denial, _ in linked:
        verdict = verdicts.get(denial.event_id)
        path, expected = _where(facts, denial)
        if verdict and verdict.booleans:
            for name in verdict.booleans:
                grouped.setdefault(("boolean", name), []).append(denial)
        elif expected is not None:  # the label checks found this object mislabelled
            grouped.setdefault(("relabel", _relabel_root(facts, path)), []).append(denial)
        else:  # on the queue or the spool, but neither a wrong label nor a boolean: what audit2why says
            grouped.setdefault(("manual", verdict.cause if verdict else "no audit2why verdict"), []).append(denial)
    restart = _restart_remedy(facts)
    causes = []
    for number, ((kind, value), found) in enumerate(grouped.items()):
        first = found[0]
        path, expected = _where(facts, first)
        labelled = f" labelled {first.target_type}" + (f" (policy says {expected})" if expected else "")
        if kind == "boolean":
            why = f"; audit2why: the boolean {value} is off"
            remedies: tuple[Mapping[str, Any], ...] = ({"kind": "boolean", "name": value, "value": True},)
            checks = ("AVC-002", "BOOL-001", "BOOL-002", "Q-001", "Q-002", "Q-003", "LOG-001")
        elif kind == "manual":
            why = f"; audit2why: {' '.join(value.split())}"
            remedies = ({"kind": "manual", "summary": f"{first.source_type} denied {' '.join(first.permissions)} on "
                         f"{path}: neither a wrong label nor a boolean; read audit2why before changing policy",
                         "look": ["ausearch -m AVC,USER_AVC -ts recent | audit2why"]},)
            checks = ("AVC-002", "Q-001", "Q-002", "Q-003", "LOG-001")
        else:
            why = f"; the label is wrong from {value} down"
            remedies = ({"kind": "relabel", "path": value},)
            checks = ("AVC-002", "LBL-001", "LBL-002", "Q-001", "Q-002", "Q-003", "LOG-001", "SVC-001")
        summary = (f"{_effect(facts) if number == 0 else 'and'} because {first.source_type} was denied "
                   f"{' '.join(first.permissions)} on {path}{labelled}{why}")
        evidence = [d.raw for d in found][:10] + _log_lines(facts, _PERMISSION)
        causes.append(Cause(summary, checks, remedies + restart, tuple(evidence)))
    if causes:
        causes[0] = dataclasses.replace(causes[0], evidence=causes[0].evidence + tuple(_queue_lines(facts)))
    return causes


# Queue subdirectories that hold the chroot's copies of system files, not mail (Debian refills them).
CHROOT_COPY_DIRS = {"etc", "lib", "lib64", "usr", "dev"}


def _label_causes(facts: _Facts) -> list[Cause]:
    """A wrong label on the queue itself, and Postfix failing on it, with no AVC record in the window
    (dontaudit rules and audit gaps hide denials: seen on the real guest, where postsuper logged
    'open directory deferred: Permission denied' and ausearch found nothing)."""
    queue_dir = facts.postconf("queue_directory").rstrip("/")
    if not queue_dir:
        return []
    # Only where the policy gives a Postfix type the path lacks: a custom queue without an equivalence (the
    # policy would take its Postfix type away) works now; LBL-002/LBL-003 report it, and its plan.
    wrong = [m for m in facts.mismatches() if (m.path == queue_dir or (
        m.path.startswith(queue_dir + "/") and m.path[len(queue_dir) + 1:].split("/")[0] not in CHROOT_COPY_DIRS))
        and facts.proper_type(m.expected_type) and m.current_type != m.expected_type]
    if not wrong:
        return []
    names = {os.path.basename(m.path) for m in wrong}
    logged = [line for line in _log_lines(facts, _PERMISSION) if any(name in line for name in names)]
    queue = facts.queue()
    unreadable = queue is None and _queue_error(facts)
    if not (logged or unreadable or (queue and queue.deferred_count)):
        return []
    top = min(wrong, key=lambda m: m.path.count("/"))
    effect = _effect(facts) if (unreadable or (queue and queue.deferred_count)) else "Postfix fails"
    said = f" (Postfix logged: {logged[-1].split(': ', 1)[-1]})" if logged else ""
    summary = (f"{effect} because {top.path} is labelled {top.current_type} where the policy says "
               f"{top.expected_type}{said}; no AVC record in the window (dontaudit rules or an audit gap "
               "can hide denials)")
    evidence = [f"restorecon -Rn: {m.path} {m.current_type} -> {m.expected_type}" for m in wrong][:10]
    evidence += logged + _queue_lines(facts) + ([unreadable] if unreadable else [])
    return [Cause(summary, ("LBL-001", "LBL-002", "Q-001", "Q-002", "SVC-001"),
                  ({"kind": "relabel", "path": top.path},) + _restart_remedy(facts), tuple(evidence))]


def _restart_remedy(facts: _Facts) -> tuple[Mapping[str, Any], ...]:
    """Postfix down because of the cause: the plan's one restart brings it back once the cause is fixed."""
    queue = facts._get("queue_json")
    if isinstance(queue, model.Unavailable) and queue.reason == MAIL_SYSTEM_DOWN:
        return ({"kind": "restart_postfix"},)
    return ()


def _queue_error(facts: _Facts) -> str | None:
    """What postqueue said when the queue could not be read (its fatal line), if it could not."""
    for probe in ("queue_json", "queue_text"):
        fact = facts._get(probe)
        if isinstance(fact, model.Unparsed):
            return fact.reason
        if isinstance(fact, model.Unavailable) and fact.reason == MAIL_SYSTEM_DOWN:
            return "the mail system is down: no running master"
        if isinstance(fact, model.Unavailable) and fact.reason == QUEUE_MISLABELLED:
            return "not read: its directories do not carry the policy's labels"
    return None


def _masked(facts: _Facts, masking: str, hidden: list[model.AvcDenial],
            causes: list[tuple[model.AvcDenial, str]]) -> Finding:
    """Permissive now, with denials it hides: enforcing again (the masking cause's remedy) after each hidden
    denial's own cause is fixed (a wrong label, a boolean); the ones with no cause found are for a person."""
    summary = (f"{masking}: {len(hidden)} Postfix denials are logged but not enforced: mail flows now and "
               "will stop when enforcing returns")
    remedies: list[Mapping[str, Any]] = []
    mode = facts.fact("getenforce", model.SelinuxMode)
    if mode and mode.mode == "permissive":
        remedies.append({"kind": "selinux_state"})
    permissive = facts.fact("permissive_domains", model.PermissiveDomains)
    remedies += [{"kind": "permissive_domain_off", "domain": d}
                 for d in (permissive.customized if permissive else ()) if d.startswith(facts.prefix)]
    explained = {id(d) for d, _ in causes}
    unexplained = [d for d in hidden if id(d) not in explained]
    if unexplained:
        remedies.insert(0, {"kind": "manual", "summary": f"{len(unexplained)} hidden denials have no cause the "
                            "suite found (no wrong label, no boolean): read what audit2why says before "
                            "enforcing again", "look": ["ausearch -m AVC,USER_AVC -ts recent | audit2why"]})
    masking_cause = Cause(summary, ("SEL-001", "SEL-002", "SEL-005", "AVC-002"), tuple(remedies),
                          tuple(d.raw for d in hidden[:10]))
    own = _selinux_causes(facts, list(dict.fromkeys(causes))) if causes else []
    return _finding("masked", facts, [masking_cause, *own])


def _history_cause(permissive: list[model.AvcDenial], resolved: list[model.AvcDenial]) -> list[Cause]:
    """Denials in the window that are no cause now: logged with permissive=1 on a host that enforces now, or
    enforced on the queue or spool but pointing at what is in order now."""
    if not permissive and not resolved:
        return []
    parts = []
    if permissive:
        parts.append(f"{len(permissive)} Postfix denials were logged with permissive=1, while SELinux or the domain "
                     "was permissive; SELinux enforces now and no Postfix domain is permissive (the same access "
                     "would be denied if it happened again)")
    if resolved:
        parts.append(f"{len(resolved)} enforced Postfix denials on the queue or the mail spool point at what is in "
                     "order now (labels as the policy says, the booleans they name on, the queue readable and "
                     "empty): fixed since")
    summary = "; ".join(parts) + ": history, not the state now"
    # Nothing to change: the suite run again, its window after these records, is AVC-002's verdict.
    remedy = {"kind": "verify", "summary": "history: judged again with --avc-since after these records"}
    return [Cause(summary, ("AVC-002",), (remedy,), tuple(d.raw for d in (resolved + permissive)[:10]))]


# The relay as Postfix names it in a delay reason: name[address]:port (the name may be empty or "none").
_RELAY = re.compile(r"^(?P<name>[^\s\[]*)\[(?P<address>[^\]]+)\]:(?P<port>\d{1,5})$")


def _relay_probes(relay: str | None) -> tuple[str, str]:
    """getent and nc for the relay the queue names: the host's words, quoted (text.shell); placeholders
    where the reason does not name it."""
    parts = _RELAY.match(relay or "")
    if parts:
        name = parts["name"] if parts["name"] not in ("", "none") else parts["address"]
        return (shell("getent ahosts {}", name),
                shell("nc -vz {} {}", parts["address"], parts["port"]) + "   # from this host")
    getent = shell("getent ahosts {}", relay) if relay else "getent ahosts <relay host>"
    return getent, "nc -vz <relay host> <port>   # from this host"


def _queue_causes(facts: _Facts, explained: bool) -> list[Cause]:
    """Every distinct reason the queue holds mail, each a cause of its own: a stale lock file, a relay that
    refuses, a name that does not resolve, credentials, ... A "Permission denied" reason is SELinux's or the
    file system's: an SELinux cause found above (`explained`) covers it."""
    queue = facts.queue()
    found: dict[str, tuple[str, tuple[str, ...], tuple[Mapping[str, Any], ...], list[model.QueueMessage]]] = {}
    for message in (queue.messages if queue else ()):
        if message.queue_name not in ("deferred", "hold", "active"):
            continue
        for reason in dict.fromkeys(r.delay_reason for r in message.recipients if r.delay_reason):
            cause = _reason_cause(reason, explained)
            if cause is not None:
                key, summary, checks, remedies = cause
                found.setdefault(key, (summary, checks, remedies, []))[3].append(message)
    causes = []
    for summary, checks, remedies, messages in found.values():
        ids = list(dict.fromkeys(m.queue_id for m in messages))
        lines = [line for line in _queue_lines(facts, limit=1000) if line.split()[2].rstrip(":") in ids][:10]
        causes.append(Cause(f"{len(ids)} queued: {summary}", checks + ("Q-001", "Q-002"), remedies, tuple(lines)))
    return causes


def _reason_cause(reason: str, explained: bool
                  ) -> tuple[str, str, tuple[str, ...], tuple[Mapping[str, Any], ...]] | None:
    """(key, summary, checks, remedies) of one delay reason; None when an SELinux cause covers it."""
    lock = STALE_LOCK.search(reason)
    if lock:
        path = lock.group("path")
        return (f"lock:{path}", f"the lock file {path} exists and stops local delivery (left behind by a delivery "
                "that was denied or killed; Postfix removes it only after stale_lock_time)", ("Q-003",),
                ({"kind": "remove_stale_lock", "path": path},))
    for pattern, text, checks in NETWORK_CAUSES:
        match = pattern.search(reason)
        if match:
            relay = match.groupdict().get("relay") or "?"
            look = ("postconf relayhost", *_relay_probes(match.groupdict().get("relay")),
                    "journalctl -u postfix -n 80 --no-pager")
            summary = f"{text.format(relay=relay)}: not an SELinux problem; check the relay, DNS, firewall, credentials"
            return (f"net:{summary}", summary, checks,
                    ({"kind": "manual", "summary": text.format(relay=relay) + ": check the relay, DNS, firewall "
                      "and credentials", "look": list(look)},))
    if "permission denied" in reason.lower():
        if explained:
            return None
        return ("permission", f"a permission failure with no denial or wrong label found ({reason[:200]})",
                ("Q-003",), ({"kind": "manual", "summary": "a permission failure without an AVC record: look for "
                              "dontaudit rules (semodule -DB) or file modes",
                              "look": ["ausearch -m AVC,USER_AVC -ts recent | audit2why"]},))
    short = reason[:200]
    return (f"other:{short}", f"deferred: {short}", (),
            ({"kind": "manual", "summary": f"the queue holds mail deferred with: {short}",
              "look": ["postqueue -p", "journalctl -u postfix -n 80 --no-pager"]},))
