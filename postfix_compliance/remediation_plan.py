"""The remediation plan: per host, the ordered actions that fix what failed, as typed data.

    failed checks + the host's facts + triage's causes + the profile's expected values -> HostPlan

Built once per host in the verdict step (verdict.py), after the waivers (a waived check is not fixed), and
carried in the run result and results.json. Every output that tells a person what to do is a view of it and
of nothing else: the shell script (report/remediation.py), the Ansible playbook (report/playbook.py), the
report's Fix of each check row and its triage card (report/html.py), the terminal's plan. So they cannot
disagree: the same actions, in the same order, with the same values.

An action has its kind (KINDS), the check ids it serves, the values it acts on (from the host's evidence:
paths, boolean and domain names, ports; the expected values from the profile), the condition under which it
applies (in words, and as the shell test the script runs before it: `needed_if`, exit 0 when there is
something to do), the commands that apply it (one line each, every host word quoted: text.shell), its
rollback, and whether it takes effect only with the plan's restart of Postfix, needs a reboot, or needs a
person. A value the evidence cannot give is never guessed: the action is a manual one that says what is
missing, shown and never run.

The order is a dependency order (PHASES), not only the runbook's: the policy store first (an fcontext
equivalence before the relabel that reads it), then booleans, labels, files, enforcement, units; then one
restart of Postfix through the service manager (never a Postfix program: root's login may not run one under
refpolicy), only when something above changed what Postfix runs on or Postfix is down; then a check that it
runs. Manual steps come last.
"""

from __future__ import annotations

import dataclasses
import re
import stat
from typing import Any, Iterable, Mapping

from postfix_compliance.facts import model
from postfix_compliance.facts.probes import boolean_probe_name
from postfix_compliance.run import CheckResult, HostResult
from postfix_compliance.runbook import SECTIONS, SMTP_SERVICES
from postfix_compliance.text import inert, quote, shell

# kind -> phase: the dependency order of the plan (a lower phase runs first).
PHASES: dict[str, int] = {
    "fcontext_equivalence": 10,  # before any relabel: restorecon reads it
    "port_label": 10,
    "boolean": 20,
    "relabel": 30,
    "file_owner_mode": 40,
    "remove_stale_lock": 40,
    "permissive_domain_off": 50,  # after the labels and booleans are right: enforcement then stops nothing
    "selinux_state": 60,
    "unit": 70,
    "firewall_service": 70,
    "restart_postfix": 80,  # once, after everything it depends on
    "verify_postfix_running": 90,  # the started service, verified last
    "manual": 100,
}
KINDS = tuple(PHASES)

# Checks whose failure is a symptom: the actions above clear them; the suite run again verifies.
SYMPTOMS = ("AVC-002", "LOG-001", "Q-001", "Q-002", "Q-003", "SVC-003")
SUITE_COMMAND = ".venv/bin/python -m pytest"  # README command 1, as an operator runs it
_NAME = re.compile(r"[A-Za-z0-9_]+")
STALE_LOCK_AGE_S = 60  # older than this, no delivery holds it (local(8) holds one for the append only)
RESTART_WANTED = "pfc_restart_wanted"  # the script's test: an earlier step with restart=True changed something
MASTER_DOWN = "! pidof master >/dev/null"


@dataclasses.dataclass(frozen=True)
class Action:
    id: str  # unique within the host: kind and what it acts on
    kind: str
    checks: tuple[str, ...]
    summary: str  # one line: what it does, with its values
    condition: str  # when it applies, in words
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    needed_if: str = ""  # the shell test (exit 0: something to do); "" for a manual step
    commands: tuple[str, ...] = ()  # what applies it (manual: what a person would look at or run)
    rollback: tuple[str, ...] = ()  # commands that undo it, or one line saying why none is needed
    restart: bool = False  # takes effect with the plan's restart of Postfix
    reboot: bool = False
    manual: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["params"] = dict(self.params)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Action:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        for key in ("checks", "commands", "rollback"):
            values[key] = tuple(str(v) for v in values.get(key) or ())
        values["params"] = dict(values.get("params") or {})
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class HostPlan:
    target: str  # the host as the run names it (--hosts=...)
    actions: tuple[Action, ...] = ()
    verify: tuple[str, ...] = ()  # symptom checks the actions clear: run the suite again for them

    @property
    def automatic(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if not a.manual)

    @property
    def manual(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.manual)

    def for_check(self, check_id: str) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if check_id in a.checks)

    def verify_base(self, checks: Iterable[str] = ()) -> str:
        """The suite again, on the diagnosed host, for the checks the plan serves (and `checks`)."""
        ids = sorted({c for a in self.actions for c in a.checks} | set(self.verify) | set(checks))
        select = f" -k {quote(' or '.join(ids))}" if ids else ""
        return f"{SUITE_COMMAND} --hosts={quote(self.target)}{select}"

    def verify_command(self, checks: Iterable[str] = ()) -> str:
        """verify_base with the audit window from the fix (the script prints it with the time filled in)."""
        return f"{self.verify_base(checks)} --avc-since='MM/DD/YYYY HH:MM:SS'   # the time the fix was applied"

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "actions": [a.to_dict() for a in self.actions], "verify": list(self.verify)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostPlan:
        return cls(target=str(data.get("target") or ""),
                   actions=tuple(Action.from_dict(a) for a in data.get("actions") or () if isinstance(a, Mapping)),
                   verify=tuple(str(v) for v in data.get("verify") or ()))


# ---------------------------------------------------------------------------------------------- one action each
def _manual(checks: Iterable[str], summary: str, *, look: Iterable[str] = (), key: str = "") -> Action:
    return Action(id=f"manual:{key or summary}", kind="manual", checks=tuple(checks), summary=summary,
                  condition="needs a person: no safe automatic change is known", commands=tuple(look), manual=True)


def boolean(name: str, value: bool, checks: Iterable[str]) -> Action:
    word = "on" if value else "off"
    return Action(
        id=f"boolean:{name}", kind="boolean", checks=tuple(checks), params={"name": name, "value": value},
        summary=f"set the boolean {name} {word}, at runtime and persistently",
        condition=f"getsebool says it is not {word}, or semanage's stored value is not {word}",
        needed_if=(shell("[ \"$(getsebool {} | awk '{{print $3}}')\" != ", name) + word + " ] || "
                   + shell("[ \"$(semanage boolean -l | sed -n 's/^{} *([a-z]* *, *\\([a-z]*\\)).*/\\1/p')\" != ",
                           name) + word + " ]"),
        commands=(shell("setsebool -P {} ", name) + word,),
        rollback=(shell("setsebool -P {} ", name) + ("off" if value else "on"),))


def fcontext_equivalence(path: str, equal_to: str, checks: Iterable[str]) -> Action:
    return Action(
        id=f"fcontext_equivalence:{path}", kind="fcontext_equivalence", checks=tuple(checks),
        params={"path": path, "equal_to": equal_to},
        summary=f"label {path} as {equal_to} is labelled (a local fcontext equivalence)",
        condition=f"semanage fcontext -l -C has no equivalence {path} = {equal_to}",
        needed_if=shell("! semanage fcontext -l -C | grep -qxF -- {}", f"{path} = {equal_to}"),
        commands=(shell("semanage fcontext -a -e {} {}", equal_to, path),),
        rollback=(shell("semanage fcontext -d {}", path),))


def relabel(paths: Iterable[str], excludes: Iterable[str], checks: Iterable[str], *, restart: bool,
            why: str = "") -> Action:
    paths, excludes = tuple(paths), tuple(excludes)
    # restorecon -e of a directory that does not exist only warns ("Can't stat exclude path ... ignoring")
    words = "".join(shell(" -e {}", e) for e in excludes) + " -- " + " ".join(quote(p) for p in paths)
    return Action(
        id="relabel:" + "\0".join(paths), kind="relabel", checks=tuple(checks),
        params={"paths": list(paths), "excludes": list(excludes)},
        summary=f"relabel {', '.join(paths)} as the policy says" + (f" ({why})" if why else "")
                + (f", leaving out {', '.join(excludes)}" if excludes else ""),
        condition="restorecon -Rn lists a file whose label differs from the policy's",
        needed_if=f"[ -n \"$(restorecon -Rnv{words} 2>/dev/null)\" ]",
        commands=(f"restorecon -Rv{words}",),
        rollback=("none needed: restorecon restores the policy's own labels",), restart=restart)


def file_owner_mode(path: str, owner: str, mode: int, was: tuple[str, int | None], checks: Iterable[str]) -> Action:
    old_owner, old_mode = was
    return Action(
        id=f"file_owner_mode:{path}", kind="file_owner_mode", checks=tuple(checks),
        params={"path": path, "owner": owner, "mode": f"{mode:04o}"},
        summary=f"{path}: owner {owner}, mode {mode:04o}",
        condition=f"stat says another owner or mode than {owner} {mode:o}",
        needed_if=shell("[ \"$(stat -c '%U %a' -- {})\" != ", path) + quote(f"{owner} {mode:o}") + " ]",
        commands=(shell("chown {} -- {}", owner, path), shell("chmod {} -- {}", f"{mode:04o}", path)),
        rollback=(shell("chown {} -- {}", old_owner, path),
                  *([shell("chmod {} -- {}", f"{old_mode:04o}", path)] if old_mode is not None else [])))


def remove_stale_lock(path: str, checks: Iterable[str]) -> Action:
    age = shell("$(( $(date +%s) - $(stat -c %Y -- {}) ))", path)
    return Action(
        id=f"remove_stale_lock:{path}", kind="remove_stale_lock", checks=tuple(checks),
        params={"path": path, "older_than_s": STALE_LOCK_AGE_S},
        summary=f"remove the stale lock file {path} once no delivery can hold it (older than {STALE_LOCK_AGE_S} s; "
                "a denied delivery left it, and local(8) cannot lock the mailbox while it exists)",
        condition=f"it exists; it is removed when older than {STALE_LOCK_AGE_S} seconds (waited for, at most that "
                  "long): a younger one is a delivery's own",
        needed_if=shell("[ -f {} ]", path),
        commands=(f"a={age}; [ \"$a\" -ge {STALE_LOCK_AGE_S} ] || sleep $(( {STALE_LOCK_AGE_S} - a ))",
                  shell("[ ! -f {} ] || [ ", path) + age + f" -lt {STALE_LOCK_AGE_S} ] || " + shell("rm -f -- {}", path)),
        rollback=("none needed: a lock file no process holds",))


def permissive_domain_off(domain: str, checks: Iterable[str]) -> Action:
    return Action(
        id=f"permissive_domain_off:{domain}", kind="permissive_domain_off", checks=tuple(checks),
        params={"domain": domain}, summary=f"make {domain} enforcing again (remove its permissive rule)",
        condition=f"semanage permissive -l lists {domain}",
        needed_if=shell("semanage permissive -l | grep -qxF -- {}", domain),
        commands=(shell("semanage permissive -d {}", domain),),
        rollback=(shell("semanage permissive -a {}", domain),))


def selinux_state(mode: str, policy: str, checks: Iterable[str], *, reboot: bool) -> Action:
    config = "/etc/selinux/config"
    return Action(
        id="selinux_state", kind="selinux_state", checks=tuple(checks), params={"mode": mode, "policy": policy},
        summary=f"SELinux {mode} with the {policy} policy, now and in {config}"
                + (" (a reboot, with a full relabel, completes it)" if reboot else ""),
        condition=f"getenforce says Permissive, or {config} says another SELINUX= or SELINUXTYPE=",
        needed_if=(f"[ \"$(getenforce)\" = Permissive ] || ! grep -qx {quote('SELINUX=' + mode)} {config} || "
                   f"! grep -qx {quote('SELINUXTYPE=' + policy)} {config}"),
        commands=(
            f"sed -i {quote('s/^SELINUX=.*/SELINUX=' + mode + '/')} {config}",
            f"sed -i {quote('s/^SELINUXTYPE=.*/SELINUXTYPE=' + policy + '/')} {config}",
            f"restorecon {config}",
            "[ \"$(getenforce)\" != Permissive ] || setenforce 1",
            *(["touch /.autorelabel   # the relabel at the next boot"] if reboot else []),
        ),
        rollback=(f"sed -i 's/^SELINUX=.*/SELINUX=permissive/' {config}; setenforce 0   # only while the "
                  "cause is found: the runbook says to avoid it",),
        reboot=reboot)


def unit(name: str, checks: Iterable[str], *, start: bool, enable: bool) -> Action:
    words = [w for w, on in (("enabled at boot", enable), ("running", start)) if on]
    tests = ([f"! systemctl is-active --quiet {name}"] if start else []) + \
            ([f"! systemctl is-enabled --quiet {name}"] if enable else [])
    commands = ([f"systemctl enable {name}"] if enable else []) + ([f"systemctl start {name}"] if start else [])
    return Action(
        id=f"unit:{name}", kind="unit", checks=tuple(checks), params={"unit": name, "start": start, "enable": enable},
        summary=f"{name} {' and '.join(words)}", condition=f"systemctl says {name} is not {' or not '.join(words)}",
        needed_if=" || ".join(tests), commands=tuple(commands),
        rollback=tuple(([f"systemctl disable {name}"] if enable else [])))


def firewall_service(what: str, checks: Iterable[str]) -> Action:
    """firewalld admits a service ("smtp") or a port ("2525/tcp")."""
    key = "port" if "/" in what else "service"
    return Action(
        id=f"firewall_service:{what}", kind="firewall_service", checks=tuple(checks), params={key: what},
        summary=f"firewalld admits {what}, now and permanently",
        condition=f"firewall-cmd --query-{key}={what} says no",
        needed_if=f"! firewall-cmd --query-{key}={what} >/dev/null",
        commands=(f"firewall-cmd --permanent --add-{key}={what}", f"firewall-cmd --add-{key}={what}"),
        rollback=(f"firewall-cmd --permanent --remove-{key}={what}", f"firewall-cmd --remove-{key}={what}"))


def port_label(port: int, proto: str, setype: str, checks: Iterable[str]) -> Action:
    # in the listing, a type's line holds its ports and ranges: "smtp_port_t  tcp  25, 465, 587, 2000-2010"
    listed = (f"semanage port -l | awk -v t={setype} -v p={proto} -v n={port} "
              "'$1==t && $2==p { for (i = 3; i <= NF; i++) { v = $i; sub(\",\", \"\", v); split(v, r, \"-\"); "
              "if (n >= r[1] && n <= (r[2] == \"\" ? r[1] : r[2])) f = 1 } } END { exit !f }'")
    return Action(
        id=f"port_label:{proto}/{port}", kind="port_label", checks=tuple(checks),
        params={"port": port, "proto": proto, "setype": setype},
        summary=f"label {proto} port {port} {setype} (Postfix's master listens there)",
        condition=f"semanage port -l does not give {proto} {port} the type {setype}",
        needed_if=f"! {listed}",
        commands=(f"semanage port -a -t {setype} -p {proto} {port} || semanage port -m -t {setype} -p {proto} {port}",),
        rollback=(f"semanage port -d -t {setype} -p {proto} {port}",))


def restart_postfix(checks: Iterable[str]) -> Action:
    return Action(
        id="restart_postfix", kind="restart_postfix", checks=tuple(checks), params={"unit": "postfix"},
        summary="restart Postfix through systemd, once, after the changes above",
        condition="a step above changed what Postfix runs on (labels of its queue or programs), or no master "
                  "process runs",
        needed_if=f"{RESTART_WANTED} || {MASTER_DOWN}",
        commands=("systemctl restart postfix",),
        rollback=("none: a restart changes no state",))


def verify_postfix_running(checks: Iterable[str]) -> Action:
    return Action(
        id="verify_postfix_running", kind="verify_postfix_running", checks=tuple(checks),
        summary="check that Postfix's master runs (waiting up to 30 seconds)",
        condition="always, after the restart: it changes nothing",
        needed_if="true",
        commands=("for i in $(seq 30); do pidof master >/dev/null && break; sleep 1; done; pidof master >/dev/null",),
        rollback=("none: it changes nothing",))


# ---------------------------------------------------------------------------------------------- the host's values
class _Host:
    """What the planners read: the host's facts (as the results stage parsed them) and the profile's values."""

    def __init__(self, host: HostResult):
        self.host = host
        self.expected = host.expected or {}

    def fact(self, probe: str, kind: type) -> Any:
        value = self.host.facts.get(probe)
        return value if isinstance(value, kind) else None

    def postconf(self, name: str) -> str | None:
        config = self.fact("postconf", model.PostfixConfig)
        value = config.params.get(name) if config else None
        return value if isinstance(value, str) else None

    def path(self, name: str) -> str | None:
        """A postconf directory, when it is an absolute path without a NUL (anything else is no action's)."""
        value = self.postconf(name)
        if not value or not value.startswith("/") or "\x00" in value or "\n" in value:
            return None
        return value.rstrip("/") or "/"

    def queue(self) -> str | None:
        return self.path("queue_directory")

    def default_queue(self) -> str | None:
        value = self.expected.get("default_queue_directory")
        return str(value).rstrip("/") if value else None

    def chroot_copies(self, queue: str) -> list[str]:
        """The queue's subdirectories the distribution refills at every start (Debian copies /etc files into
        Postfix's chroot): LBL-002 tolerates them, and a relabel that included them would be undone at the
        next start, so it leaves them out."""
        return [f"{queue}/{sub}" for sub in self.expected.get("chroot_copies") or ()]

    def needs_equivalence(self, queue: str) -> bool:
        default = self.default_queue()
        if default is None or queue == default:
            return False
        local = self.fact("fcontext_local", model.LocalFcontexts)
        return local is None or local.equivalences.get(queue) != default


@dataclasses.dataclass
class _Draft:
    """The actions proposed so far: equal ids merge (their checks join), in the order first proposed."""

    actions: dict[str, Action] = dataclasses.field(default_factory=dict)
    verified: set[str] = dataclasses.field(default_factory=set)  # checks the suite run again judges (history)

    def add(self, action: Action) -> None:
        held = self.actions.get(action.id)
        if held is None:
            self.actions[action.id] = action
            return
        checks = tuple(dict.fromkeys(held.checks + action.checks))
        self.actions[action.id] = dataclasses.replace(held, checks=checks, restart=held.restart or action.restart)

    def manual(self, check: CheckResult | Iterable[str], why: str, *, look: Iterable[str] = ()) -> None:
        ids = (check.check_id,) if isinstance(check, CheckResult) else tuple(check)
        self.add(_manual(ids, why, look=look, key=f"{'+'.join(ids)}:{why}"))


# ---------------------------------------------------------------------------------------------- per check
def _queue_relabel(draft: _Draft, host: _Host, checks: tuple[str, ...], path: str | None = None) -> None:
    """Relabel the queue (or `path` under it): the equivalence first where a custom queue has none."""
    queue = host.queue()
    if queue is None:
        return draft.manual(checks, "the queue directory is not known as an absolute path: relabel it by hand "
                                    "(restorecon -Rv on postconf -h queue_directory)")
    target = path or queue
    if host.needs_equivalence(queue):
        draft.add(fcontext_equivalence(queue, host.default_queue(), checks))
    excludes = [e for e in host.chroot_copies(queue) if e != target and e.startswith(target + "/")]
    draft.add(relabel([target], excludes, checks, restart=True, why="Postfix's queue"))


def _plan_selinux_mode(draft: _Draft, host: _Host, check: CheckResult | tuple[str, ...]) -> None:
    checks = (check.check_id,) if isinstance(check, CheckResult) else check
    mode, policy = host.expected.get("selinux_mode"), host.expected.get("selinux_policy")
    if not mode or not policy or not _NAME.fullmatch(str(policy)):
        return draft.manual(checks, "the host's profile is unknown, so the expected SELinux mode and policy are too")
    config = host.fact("selinux_config", model.SelinuxConfig)
    enforce = host.fact("getenforce", model.SelinuxMode)
    reboot = (config is not None and config.selinuxtype not in (None, policy)) or \
             (enforce is not None and enforce.mode == "disabled")
    draft.add(selinux_state(str(mode), str(policy), checks, reboot=reboot))


def _plan_booleans(draft: _Draft, host: _Host, check: CheckResult) -> None:
    settings = host.fact("semanage_boolean", model.BooleanSettings)
    stored = settings.settings if settings else {}
    for name, expected in host.expected.get("booleans") or ():
        lookup = host.fact(boolean_probe_name(name), model.BooleanLookup)
        resolved = lookup.name if lookup and lookup.name else (name if name in stored else None)
        if resolved is None or not _NAME.fullmatch(resolved):
            draft.manual(check, f"the boolean {name} is not defined by this host's policy (or its value was not "
                                "read): nothing to set")
            continue
        setting = stored.get(resolved)
        runtime = lookup.value if lookup else None
        if (runtime is not None and runtime != expected) or setting is None or \
                setting.current != expected or setting.default != expected:
            draft.add(boolean(resolved, bool(expected), (check.check_id,)))


def _plan_queue_labels(draft: _Draft, host: _Host, check: CheckResult) -> None:
    _queue_relabel(draft, host, (check.check_id,))


def _plan_equivalence(draft: _Draft, host: _Host, check: CheckResult) -> None:
    queue, default = host.queue(), host.default_queue()
    if queue is None or default is None:
        return draft.manual(check, "the queue directory or the profile's default queue directory is unknown")
    draft.add(fcontext_equivalence(queue, default, (check.check_id,)))
    draft.add(relabel([queue], host.chroot_copies(queue), (check.check_id,), restart=True, why="Postfix's queue"))


def _plan_related_labels(draft: _Draft, host: _Host, check: CheckResult) -> None:
    paths = [p for p in (host.path(n) for n in ("config_directory", "data_directory", "mail_spool_directory")) if p]
    if not paths:
        return draft.manual(check, "Postfix's directories are not known as absolute paths")
    draft.add(relabel(paths, (), (check.check_id,), restart=False, why="Postfix's configuration, data and the "
                                                                          "mail spool"))


def _plan_daemon_labels(draft: _Draft, host: _Host, check: CheckResult | tuple[str, ...]) -> None:
    checks = (check.check_id,) if isinstance(check, CheckResult) else check
    daemons = host.path("daemon_directory")
    if daemons is None:
        return draft.manual(checks, "Postfix's daemon directory is not known as an absolute path: relabel its "
                                    "programs by hand (restorecon -Rv on postconf -h daemon_directory)")
    draft.add(relabel([daemons], (), checks, restart=True, why="Postfix's programs: each daemon runs in its own "
                                                                 "domain after the restart"))


def _plan_daemon_domains(draft: _Draft, host: _Host, check: CheckResult) -> None:
    """SVC-004: started by hand (a Postfix process outside the Postfix domains) is for a person; a daemon in
    master's domain instead of its own is its program's label (LBL-005's relabel) or a start before the
    relabel: the plan's restart."""
    if _hand_started(host) or host.fact("processes", model.Processes) is None:
        return draft.manual(check, "Postfix was started outside systemd: stop it (postfix stop) and start the service "
                                   "(systemctl start postfix) in a maintenance window; an automatic restart of a "
                                   "running mail system is not safe", look=("ps -eZ | grep postfix",))
    mislabelled = host.fact("daemon_relabel", model.LabelMismatches)
    if mislabelled is not None and mislabelled.items:
        _plan_daemon_labels(draft, host, (check.check_id,))
    else:
        draft.add(restart_postfix((check.check_id,)))


def _plan_permissive(draft: _Draft, host: _Host, check: CheckResult) -> None:
    fact = host.fact("permissive_domains", model.PermissiveDomains)
    prefix = str(host.expected.get("postfix_domain_prefix") or "postfix_")
    if fact is None:
        return draft.manual(check, "the permissive domains could not be read from the evidence")
    for domain in [d for d in fact.customized if d.startswith(prefix)]:
        if _NAME.fullmatch(domain):
            draft.add(permissive_domain_off(domain, (check.check_id,)))
        else:
            draft.manual(check, "a permissive domain whose name is not a plain type name: remove it by hand")
    for domain in [d for d in fact.builtin if d.startswith(prefix)]:
        draft.manual(check, f"{domain} is permissive in the policy itself (a builtin permissive type): a policy "
                            "module makes it so; review the modules (semodule -lfull)")


def _plan_unit(unit_name: str, *, start: bool, enable: bool):
    def plan(draft: _Draft, host: _Host, check: CheckResult) -> None:
        draft.add(unit(unit_name, (check.check_id,), start=start, enable=enable))
    return plan


def _failed(host: _Host, check_id: str) -> bool:
    return any(c.check_id == check_id and c.outcome == "fail" for c in host.host.checks)


def _hand_started(host: _Host) -> bool:
    """Postfix started outside systemd: its master in no Postfix domain, or running while SVC-001 fails."""
    processes = host.fact("processes", model.Processes)
    masters = [p for p in (processes.processes if processes else ()) if p.comm == "master"]
    prefix = str(host.expected.get("postfix_domain_prefix") or "postfix_")
    if any(p.label is not None and not (p.domain or "").startswith(prefix) for p in masters):
        return True
    return bool(masters) and _failed(host, "SVC-001")


def _plan_postfix_running(draft: _Draft, host: _Host, check: CheckResult) -> None:
    if _hand_started(host):
        return draft.manual(check, "Postfix runs outside systemd (see SVC-004): stop it (postfix stop) and start "
                                   "the service (systemctl start postfix) in a maintenance window")
    draft.add(restart_postfix((check.check_id,)))


def _plan_listening(draft: _Draft, host: _Host, check: CheckResult) -> None:
    """Nothing on port 25: with Postfix down (SVC-001) its start is the fix; otherwise a person reads why."""
    if _failed(host, "SVC-001") and not _hand_started(host):
        draft.add(restart_postfix((check.check_id,)))


def _plan_ports(draft: _Draft, host: _Host, check: CheckResult) -> None:
    listeners, labels = host.fact("listeners", model.Listeners), host.fact("port_labels", model.PortLabels)
    port_type = str(host.expected.get("smtp_port_type") or "smtp_port_t")
    if listeners is None or labels is None:
        return draft.manual(check, "the listener ports could not be read from the evidence")
    ports = sorted({listener.port for listener in listeners.listeners if listener.held_by("master")
                    and port_type not in labels.types_for(listener.port, "tcp")})
    for port in ports:
        draft.add(port_label(port, "tcp", port_type, (check.check_id,)))
    if not ports:
        draft.manual(check, "no unlabelled listener port found in the evidence")


def _plan_firewall(draft: _Draft, host: _Host, check: CheckResult) -> None:
    listeners, firewall = host.fact("listeners", model.Listeners), host.fact("firewall", model.FirewallState)
    if listeners is None or firewall is None:
        return draft.manual(check, "the listeners or firewalld's state could not be read from the evidence")
    public = sorted({listener.port for listener in listeners.listeners if listener.held_by("master")
                     and not (listener.address.startswith("127.") or listener.address.strip("[]") == "::1")})
    for port in public:
        service = SMTP_SERVICES.get(port)
        if service not in firewall.services and f"{port}/tcp" not in firewall.ports:
            draft.add(firewall_service(service or f"{port}/tcp", (check.check_id,)))


def _plan_sasl(draft: _Draft, host: _Host, check: CheckResult) -> None:
    fact = host.fact("sasl_maps", model.FileStats)
    files = [f for f in (fact.files if fact else ()) if f.exists]
    loose = [f for f in files if f.owner != "root" or (f.mode is not None and f.mode & (stat.S_IRWXG | stat.S_IRWXO))]
    for f in loose:
        if str(f.path).startswith("/") and "\n" not in f.path:
            draft.add(file_owner_mode(f.path, "root", 0o600, (f.owner or "root", f.mode), (check.check_id,)))
    by_path = {f.path: f for f in files}
    stale = [f.path for f in files for suffix in (".db", ".lmdb") if by_path.get(f.path + suffix) is not None
             and f.mtime is not None and by_path[f.path + suffix].mtime is not None
             and by_path[f.path + suffix].mtime < f.mtime]
    for path in stale:
        draft.manual(check, f"the map {path} is newer than its compiled form: read the source, then rebuild it",
                     look=(shell("postmap {}", path),))
    if not loose and not stale:
        draft.manual(check, "the maps are missing or could not be read")


def _manual_check(why: str, look: tuple[str, ...] = ()):
    def plan(draft: _Draft, host: _Host, check: CheckResult) -> None:
        draft.manual(check, why, look=look)
    return plan


def _symptom(draft: _Draft, host: _Host, check: CheckResult) -> None:
    """Cleared by the causes' actions (triage's remedies, below); nothing of its own."""


PLANNERS = {
    "SEL-001": _plan_selinux_mode,
    "SEL-002": _plan_selinux_mode,
    "SEL-003": _plan_selinux_mode,
    "SEL-004": _manual_check("boot arguments are changed with the boot loader's tool (grubby on RHEL, "
                             "GRUB_CMDLINE_LINUX in /etc/default/grub and update-grub on Debian) and need a reboot",
                             ("cat /proc/cmdline",)),
    "SEL-005": _plan_permissive,
    "BOOL-001": _plan_booleans,
    "BOOL-002": _plan_booleans,
    "LBL-001": _plan_queue_labels,
    "LBL-002": _plan_queue_labels,
    "LBL-003": _plan_equivalence,
    "LBL-004": _plan_related_labels,
    "AVC-001": _plan_unit("auditd", start=True, enable=True),
    "SVC-001": _plan_postfix_running,
    "SVC-002": _plan_unit("postfix", start=False, enable=True),
    "SVC-004": _plan_daemon_domains,
    "LBL-005": _plan_daemon_labels,
    "SVC-005": _manual_check("postfix check's findings need reading first (postfix set-permissions fixes "
                             "ownership)", ("postfix check",)),
    "MOD-001": _manual_check("a local policy module is a decision someone made: review it, then remove it "
                             "(semodule -r NAME) once its denials are fixed by labels or booleans",
                             ("semodule -lfull | grep -v '^100 '",)),
    "REL-001": _manual_check("DNS is not an SELinux fix: check the resolver and relayhost",
                             ("postconf relayhost",)),
    "REL-002": _plan_ports,
    "REL-003": _plan_firewall,
    "REL-004": _plan_sasl,
    **{check_id: _symptom for check_id in SYMPTOMS},
    "SVC-003": _plan_listening,
}


# ---------------------------------------------------------------------------------------------- triage's causes
def _remedies(draft: _Draft, host: _Host, diagnosis: Mapping[str, Any] | None, failing: set[str]) -> None:
    """What triage found behind the symptoms: each cause's remedies, serving the checks it explains."""
    for cause in (diagnosis or {}).get("causes") or ():
        if not isinstance(cause, Mapping):
            continue
        checks = tuple(c for c in cause.get("checks") or () if c in failing) or tuple(cause.get("checks") or ())
        for remedy in cause.get("remedies") or ():
            if isinstance(remedy, Mapping):
                _remedy(draft, host, checks, remedy)


def _remedy(draft: _Draft, host: _Host, checks: tuple[str, ...], remedy: Mapping[str, Any]) -> None:
    kind = remedy.get("kind")
    if kind == "boolean" and _NAME.fullmatch(str(remedy.get("name") or "")):
        draft.add(boolean(str(remedy["name"]), bool(remedy.get("value", True)), checks))
    elif kind == "relabel" and str(remedy.get("path") or "").startswith("/"):
        path = str(remedy["path"]).rstrip("/") or "/"
        queue = host.queue()
        if queue and (path == queue or path.startswith(queue + "/")):
            _queue_relabel(draft, host, checks, path)
        else:
            draft.add(relabel([path], (), checks, restart=False))
    elif kind == "remove_stale_lock" and str(remedy.get("path") or "").startswith("/"):
        draft.add(remove_stale_lock(str(remedy["path"]), checks))
    elif kind == "restart_postfix":
        draft.add(restart_postfix(checks))
    elif kind == "verify":  # history: no change; the suite run again after the fix judges it
        draft.verified.update(checks)
    elif kind == "permissive_domain_off" and _NAME.fullmatch(str(remedy.get("domain") or "")):
        draft.add(permissive_domain_off(str(remedy["domain"]), checks))
    elif kind == "selinux_state" and host.expected.get("selinux_mode"):
        _plan_selinux_mode(draft, host, checks)
    elif kind == "manual":
        draft.manual(checks, str(remedy.get("summary") or "find the cause by hand"),
                     look=tuple(str(c) for c in remedy.get("look") or ()))
    else:  # a value that cannot stand in a command (a boolean name that is no name, a relative path...)
        values = ", ".join(f"{k} {v!r}" for k, v in remedy.items() if k != "kind")
        draft.manual(checks, f"triage points to a {kind} step, but its value is not one a command can take "
                             f"({values}): look at it by hand", look=("ausearch -m AVC,USER_AVC -ts recent | audit2why",))


# ---------------------------------------------------------------------------------------------- the plan
def _section_rank(check: CheckResult) -> tuple[int, str]:
    return (SECTIONS.index(check.section) if check.section in SECTIONS else len(SECTIONS), check.check_id)


def build(host: HostResult) -> HostPlan:
    """The host's plan: its failed checks (runbook order) and triage's causes, as ordered actions."""
    view = _Host(host)
    failed = sorted((c for c in host.checks if c.outcome == "fail"), key=_section_rank)
    failing = {c.check_id for c in failed}
    draft = _Draft()
    for check in failed:
        PLANNERS.get(check.check_id, _manual_check("no automatic fix is known for this check"))(draft, view, check)
    _remedies(draft, view, host.diagnosis, failing)
    actions = _fold_relabels(list(draft.actions.values()))
    if any(a.restart or a.kind == "restart_postfix" for a in actions):
        # The one restart, serving what it completes; then the check that Postfix runs.
        served = tuple(dict.fromkeys(c for a in actions if a.restart or a.kind == "restart_postfix" for c in a.checks))
        actions = [a for a in actions if a.kind != "restart_postfix"]
        actions += [restart_postfix(served), verify_postfix_running(served)]
    order = {a.id: i for i, a in enumerate(actions)}
    actions.sort(key=lambda a: (PHASES[a.kind], order[a.id]))
    covered = {c for a in actions for c in a.checks} | draft.verified
    verify = tuple(c.check_id for c in failed if c.check_id in SYMPTOMS)
    for check in failed:  # every failed check is in the plan, one way or another: a symptom no cause explains
        if check.check_id not in covered and check.check_id not in VERIFY_ONLY:  # needs a person to find it
            why, look = UNEXPLAINED.get(check.check_id, ("nothing to change was found in the evidence: read the "
                                                         "check's message", ()))
            actions.append(_manual((check.check_id,), why, look=look, key=check.check_id))
    # What is shown (summaries, conditions) names host values as inert text; commands quote them.
    shown = tuple(dataclasses.replace(a, summary=inert(a.summary), condition=inert(a.condition)) for a in actions)
    return HostPlan(target=host.id, actions=shown, verify=verify)


# Log lines in the window are history once their cause is gone (an operator's own `systemctl stop` logs a
# fatal line too): the suite run again after the fix, its window from then, is their verdict.
VERIFY_ONLY = ("LOG-001",)
# A failed symptom no cause explains: what a person looks at to find one.
UNEXPLAINED: dict[str, tuple[str, tuple[str, ...]]] = {
    "AVC-002": ("Postfix denials with no cause the suite could tie them to: read what audit2why says of each",
                ("ausearch -m AVC,USER_AVC -ts recent | audit2why",)),
    "Q-001": ("deferred mail with no cause found: read its delay reasons", ("postqueue -p",)),
    "Q-002": ("the queue does not drain and no cause was found: read the delay reasons and the log",
              ("postqueue -p", "journalctl -u postfix -u 'postfix@*' -n 80 --no-pager")),
    "Q-003": ("a permission failure in a delay reason with no cause found", ("postqueue -p",)),
    "SVC-003": ("master runs but nothing listens on port 25: read master.cf's smtp service and inet_interfaces",
                ("postconf -M smtp/inet", "postconf inet_interfaces", "ss -lntp")),
}


def _fold_relabels(actions: list[Action]) -> list[Action]:
    """A relabel of a path that a relabel of a directory above it covers (and does not leave out) is that one:
    one restorecon, serving both actions' checks."""
    relabels = [a for a in actions if a.kind == "relabel"]

    def covers(outer: Action, inner: Action) -> bool:
        tops = outer.params.get("paths") or ()
        left_out = outer.params.get("excludes") or ()
        return outer is not inner and all(
            any(p == t or p.startswith(t.rstrip("/") + "/") for t in tops)
            and not any(p == e or p.startswith(e + "/") for e in left_out)
            for p in inner.params.get("paths") or ())

    folded: dict[str, Action] = {}
    for inner in relabels:
        outer = next((o for o in relabels if covers(o, inner) and o.id not in folded), None)
        if outer is not None:
            folded[inner.id] = outer
    if not folded:
        return actions
    merged: dict[str, Action] = {}
    for inner_id, outer in folded.items():
        inner = next(a for a in relabels if a.id == inner_id)
        held = merged.get(outer.id, outer)
        merged[outer.id] = dataclasses.replace(held, checks=tuple(dict.fromkeys(held.checks + inner.checks)),
                                               restart=held.restart or inner.restart)
    return [merged.get(a.id, a) for a in actions if a.id not in folded]


def card(plan: HostPlan, diagnosis: Mapping[str, Any]) -> dict[str, Any]:
    """The triage finding as the report's card shows it: Fix, Verify and Rollback from the plan's actions that
    serve the finding's checks (or all of them), never words of triage's own."""
    related = set(diagnosis.get("related_checks") or ())
    for cause in diagnosis.get("causes") or ():
        related |= set(cause.get("checks") or ()) if isinstance(cause, Mapping) else set()
    chosen = [a for a in plan.actions if related & set(a.checks)]
    if any(a.restart for a in chosen) or any(a.kind == "restart_postfix" for a in chosen):
        chosen += [a for a in plan.actions if a.kind in ("restart_postfix", "verify_postfix_running")
                   and a not in chosen]
        chosen.sort(key=lambda a: plan.actions.index(a))
    fix = [line for a in chosen for line in shown_commands(a)]
    rollback = list(dict.fromkeys(line for a in chosen for line in a.rollback))
    return {**diagnosis, "fix": fix, "verification": [plan.verify_command(related)], "rollback": rollback,
            "actions": [a.id for a in chosen]}


def shown_commands(action: Action) -> list[str]:
    """An action as a person reads it (the Fix of a check row, the triage card): its commands; a manual
    step as what to do, its look-commands marked as such."""
    if action.manual:
        return [f"# by hand: {action.summary}", *(f"{c}   # look" for c in action.commands)]
    if action.kind == "verify_postfix_running":
        return ["pidof master   # Postfix runs"]
    return list(action.commands)
