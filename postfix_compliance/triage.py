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
from typing import Any, Callable

from postfix_compliance.denials import postfix_denials
from postfix_compliance.facts import model
from postfix_compliance.text import shell
from postfix_compliance.facts.probes import MAIL_SYSTEM_DOWN

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
     "the relay's name does not resolve ({relay})", ("REL-001",)),
    (re.compile(r"SASL authentication failed|authentication failed|Authentication required", re.I),
     "the relay rejects the credentials", ("REL-004",)),
)


@dataclasses.dataclass(frozen=True)
class Finding:
    kind: str  # selinux | not-selinux | masked
    summary: str
    fix: tuple[str, ...]
    verification: tuple[str, ...]
    rollback: tuple[str, ...]
    related_checks: tuple[str, ...]
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


VERIFY = ("postqueue -f", "mailq", "pytest -k Q-002   # the drain check")


def diagnose(get: Callable[[str], Any], prefix: str, session_types: tuple[str, ...] = ()) -> Finding | None:
    """The host's finding, from `get(probe) -> fact` (the stage facts of a host: stage_probes.py). `prefix` is
    the profile's Postfix domain prefix, `session_types` its login-session target types (denials.py)."""
    facts = _Facts(get, prefix, session_types)
    denials = facts.postfix_denials()
    # "Masked" rests on the state now (getenforce, permissive domains now): a permissive=1 record from
    # an earlier permissive spell is history, whatever the mode is today.
    masked = facts.masking()
    if masked and denials:
        return _masked(masked, denials)
    # Not masked now: a denial logged with permissive=1 was not enforced, so it stopped nothing; and one
    # whose cause is gone (relabelled since, the boolean on again, the queue empty) is no cause now.
    linked = facts.linked_denials([d for d in denials if not d.permissive])
    current = [(d, reason) for d, reason in linked if facts.still_holds(d, reason)]
    if current:
        return _selinux_cause(facts, current)
    return _label_cause(facts) or _not_selinux(facts) or _history(
        [d for d in denials if d.permissive], [d for d, _ in linked])


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
        was linked), a boolean audit2why names is still off, or the queue it touched is still in trouble."""
        if reason == "label":
            return True
        if reason == "boolean":
            verdict = self.verdicts().get(denial.event_id)
            return any(self.boolean_on(b) is not True for b in (verdict.booleans if verdict else ()))
        return self.queue_in_trouble()

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
        wrong_types = {m.current_type for m in self.mismatches()}
        verdicts = self.verdicts()
        start = self.error_window_start()
        linked = []
        for denial in denials:
            if start is not None and denial.timestamp < start:
                continue  # older than anything in the queue: not its cause
            path = denial.path or ""
            if denial.target_type in wrong_types:
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


def _where(facts: _Facts, denial: model.AvcDenial) -> tuple[str, str | None]:
    """A full path for the denied object and the mismatch that explains it, if the label checks found one."""
    for mismatch in facts.mismatches():
        if mismatch.current_type == denial.target_type and (
                not denial.path or os.path.basename(mismatch.path) == os.path.basename(denial.path)
                or mismatch.path == denial.path):
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


def _selinux_cause(facts: _Facts, linked: list[tuple[model.AvcDenial, str]]) -> Finding:
    verdicts = facts.verdicts()
    fixes: list[str] = []
    for denial, reason in linked:
        verdict = verdicts.get(denial.event_id)
        if verdict and verdict.booleans:
            fixes += [shell("setsebool -P {} on", b) for b in verdict.booleans]
        else:
            path, _ = _where(facts, denial)
            fixes.append(shell("restorecon -Rv {}", _relabel_root(facts, path)))
    fixes = list(dict.fromkeys(fixes))
    first, reason = linked[0]
    path, expected = _where(facts, first)
    queue = facts.queue()
    stuck = queue.deferred_count if queue else 0
    unreadable = queue is None and _queue_error(facts)
    effect = (f"queue unreadable ({unreadable})" if unreadable else
              f"queue stuck ({stuck} deferred)" if stuck else "mail delivery fails")
    labelled = f" labelled {first.target_type}" + (f" (policy says {expected})" if expected else "")
    summary = (f"{effect} because {first.source_type} was denied {' '.join(first.permissions)} on {path}"
               f"{labelled}; fix: {fixes[0]}")
    evidence = [d.raw for d, _ in linked][:10] + _queue_lines(facts) + _log_lines(facts, _PERMISSION)
    return Finding("selinux", summary, tuple(fixes + [_restart(facts)]), VERIFY,
                   ("setenforce 0   # only to confirm the diagnosis, then back to 1",),
                   ("LBL-001", "LBL-002", "BOOL-001", "AVC-002", "Q-002"), tuple(evidence))


# Queue subdirectories that hold the chroot's copies of system files, not mail (Debian refills them).
CHROOT_COPY_DIRS = {"etc", "lib", "lib64", "usr", "dev"}


def _label_cause(facts: _Facts) -> Finding | None:
    """A wrong label on the queue itself, and Postfix failing on it, with no AVC record in the window
    (dontaudit rules and audit gaps hide denials: seen on the real guest, where postsuper logged
    'open directory deferred: Permission denied' and ausearch found nothing)."""
    queue_dir = facts.postconf("queue_directory").rstrip("/")
    if not queue_dir:
        return None
    wrong = [m for m in facts.mismatches() if m.path == queue_dir or (
        m.path.startswith(queue_dir + "/") and m.path[len(queue_dir) + 1:].split("/")[0] not in CHROOT_COPY_DIRS)]
    if not wrong:
        return None
    names = {os.path.basename(m.path) for m in wrong}
    logged = [line for line in _log_lines(facts, _PERMISSION) if any(name in line for name in names)]
    queue = facts.queue()
    unreadable = queue is None and _queue_error(facts)
    if not (logged or unreadable or (queue and queue.deferred_count)):
        return None
    top = min(wrong, key=lambda m: m.path.count("/"))
    effect = (f"queue unreadable ({unreadable})" if unreadable else
              f"queue stuck ({queue.deferred_count} deferred)" if queue and queue.deferred_count else
              "Postfix fails")
    said = f" (Postfix logged: {logged[-1].split(': ', 1)[-1]})" if logged else ""
    relabel = shell("restorecon -Rv {}", top.path)  # a host-supplied path: quoted, safe to paste
    summary = (f"{effect} because {top.path} is labelled {top.current_type} where the policy says "
               f"{top.expected_type}{said}; no AVC record in the window (dontaudit rules or an audit gap "
               f"can hide denials); fix: {relabel}")
    evidence = [f"restorecon -Rn: {m.path} {m.current_type} -> {m.expected_type}" for m in wrong][:10]
    evidence += logged + _queue_lines(facts) + ([unreadable] if unreadable else [])
    return Finding("selinux", summary, tuple(dict.fromkeys([relabel, _restart(facts)])),
                   VERIFY, ("none needed: restorecon restores the policy's own labels",),
                   ("LBL-001", "LBL-002", "Q-001", "Q-002"), tuple(evidence))


def _restart(facts: _Facts) -> str:
    """After the fix: a running Postfix reloads; one that is down (it failed on the fix's cause) starts."""
    queue = facts._get("queue_json")
    if isinstance(queue, model.Unavailable) and queue.reason == MAIL_SYSTEM_DOWN:
        return "systemctl restart postfix   # the mail system is down"
    return "postfix reload"


def _queue_error(facts: _Facts) -> str | None:
    """What postqueue said when the queue could not be read (its fatal line), if it could not."""
    for probe in ("queue_json", "queue_text"):
        fact = facts._get(probe)
        if isinstance(fact, model.Unparsed):
            return fact.reason
        if isinstance(fact, model.Unavailable) and fact.reason == MAIL_SYSTEM_DOWN:
            return "the mail system is down: no running master"
    return None


def _masked(masking: str, denials: list[model.AvcDenial]) -> Finding:
    summary = (f"{masking}: {len(denials)} Postfix denials are logged but not enforced: mail flows now and "
               "will stop when enforcing returns")
    fix = ("ausearch -m AVC,USER_AVC -ts recent | audit2why   # fix each cause (labels, booleans) first",
           "setenforce 1   # or: semanage permissive -d <domain>")
    return Finding("masked", summary, fix, VERIFY, ("setenforce 0",), ("SEL-001", "SEL-005", "AVC-002"),
                   tuple(d.raw for d in denials[:10]))


def _history(permissive: list[model.AvcDenial], resolved: list[model.AvcDenial]) -> Finding | None:
    """Denials in the window that are no cause now: logged with permissive=1 on a host that enforces now, or
    enforced on the queue or spool but pointing at what is in order now."""
    if not permissive and not resolved:
        return None
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
    fix = ("ausearch -m AVC,USER_AVC -ts recent | audit2why   # would the same access be denied now?",)
    return Finding("history", summary, fix, VERIFY, (), ("AVC-002",),
                   tuple(d.raw for d in (resolved + permissive)[:10]))


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


def _not_selinux(facts: _Facts) -> Finding | None:
    queue = facts.queue()
    reasons = [r.delay_reason for m in (queue.in_queue("deferred") if queue else ()) for r in m.recipients
               if r.delay_reason]
    for pattern, text, checks in NETWORK_CAUSES:
        for reason in reasons:
            match = pattern.search(reason)
            if match:
                what = text.format(relay=match.groupdict().get("relay") or "?")
                summary = (f"{what}: not an SELinux problem (no Postfix denial is linked to the queue); "
                           "check the relay, DNS, firewall, credentials")
                return Finding("not-selinux", summary,
                               ("postconf relayhost", *_relay_probes(match.groupdict().get("relay")),
                                "journalctl -u postfix -n 80 --no-pager"),
                               VERIFY, (), checks + ("Q-001", "Q-002"),
                               tuple(_queue_lines(facts) + _log_lines(facts, pattern)))
    return None
