"""--remediation-playbook FILE: an Ansible playbook of the fixes for the checks that failed. Never run by the suite.

The Ansible counterpart of the shell script (report/remediation.py), documented in docs/ansible.md:

  - one play per host, `hosts:` the name Ansible knows the host by: its inventory name when it came
    from --ansible-inventory (or an ansible:// host), else the host name the suite reports (the
    "Host" column of the report; `127.0.0.1` for an SSH URL naming an address). A name that is not a
    plain host name (an Ansible pattern character such as `*`, `:`, `!`, `,` or `[`, or a group name
    such as `all`) gets no play: a comment says so;
  - every play first asserts that it runs on the one host it was written for (inventory_hostname
    equals the name, and the host is in the inventory: never Ansible's implicit localhost), so a
    host name that happens to be a group name changes nothing;
  - tasks in runbook order (checks.SECTIONS, as the script), each tagged with its check id(s) and
    named with the check's title; `--tags BOOL-001` runs one check's fix;
  - the modules made for each fix: ansible.posix.selinux (mode, config, policy type),
    ansible.posix.seboolean (persistent: true, and again persistent: false for the running value:
    ansible.posix#429), community.general.sefcontext (the queue directory's
    equivalence, `substitute`), community.general.selinux_permissive, community.general.seport,
    ansible.posix.firewalld, ansible.builtin.systemd, ansible.builtin.file; restorecon runs as
    ansible.builtin.command with argv (no shell) and `changed_when: stdout != ''` (restorecon -v
    prints a line only for what it relabels);
  - check mode: restorecon runs as `restorecon -Rnv` (changes nothing, lists what it would relabel,
    reported as changed) and for real as `restorecon -Rv`; every module supports check mode, so
    `ansible-playbook --check --diff` previews the run;
  - restarts are handlers (Restart postfix, after a relabel of the queue); Postfix's start (SVC-001)
    runs last, after the handlers, and only when no master process runs: started before its queue is
    relabelled it would fail again;
  - rollbacks, where the catalogue has one that a module can do, are tasks tagged `never` and
    `rollback` (never run unless `--tags rollback`); they carry no check-id tag, so `--tags BOOL-001`
    never runs a rollback;
  - checks with no safe automatic fix (a local policy module to review, boot arguments, processes
    started by hand, DNS, stale SASL maps, `postfix check` findings, booleans the host does not know)
    end the play with one `ansible.builtin.fail` task, tagged `review` and with their ids, after the
    automatic fixes and handlers ran: the run says the host still needs a person, it does not pass
    silently;
  - symptoms the fixes above clear (AVC-002, LOG-001, Q-001..003, SVC-003) get one debug task
    tagged with their ids, saying to run the suite again (with --avc-since at the fix);
  - waived failures and checks that could not be judged get no task (comments and the debug task
    name them).

Safety: every value a host supplied (host names, paths, boolean, domain and module names, messages)
is emitted as YAML data tagged `!unsafe`, Ansible's documented marking for text never templated:
a path holding `{{ lookup('pipe', ...) }}` stays that text. The YAML is produced by PyYAML (a
SafeDumper with a representer for the tag), never by pasting host values into text; comments hold
only the suite's own words and check ids. Host paths must be absolute (no value can become a
restorecon option).

The fix parameters (paths, booleans, domains, ports) are read from each host's typed facts
(`HostResult.facts`, parsed by the results stage: postconf, listeners, port_labels, sasl_maps,
semanage_boolean, permissive_domains, the per-boolean lookups), the expected values from the profile.
`render(run, profiles=..., inventory_names=...)` is a pure function of the decided run; `write` writes
it. The --remediation-playbook option and its hook are the plugin's (`profiles_for` and
`inventory_names_for` give it the two keyword arguments).
"""

from __future__ import annotations

import dataclasses
import re
import stat
import time
from typing import Any, Callable, Mapping

import yaml

from postfix_compliance import __version__
from postfix_compliance.atomicfile import write_atomic
from postfix_compliance.facts import model
from postfix_compliance.facts.probes import boolean_probe_name
from postfix_compliance.run import CheckResult, HostResult, RunResult
from postfix_compliance.runbook import SECTIONS

UNSAFE_TAG = "!unsafe"
HANDLER_RESTART = "Restart postfix"
# Checks whose failure is a symptom: the fixes of the others clear them; the suite verifies.
VERIFY = ("AVC-002", "LOG-001", "Q-001", "Q-002", "Q-003", "SVC-003")
# A host name usable as a play's `hosts:` (no Ansible pattern syntax), and names Ansible reserves.
_HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}[A-Za-z0-9_])?")
_RESERVED = {"all", "ungrouped"}
_BOOLEAN_NAME = re.compile(r"[A-Za-z0-9_]+")
_DOMAIN_NAME = re.compile(r"[A-Za-z0-9_]+")
_MESSAGE_CHARS = 600


class Unsafe(str):
    """Text a host supplied: emitted as `!unsafe "..."`, never evaluated by Ansible's templating."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # lists indented under their key, as yamllint (ansible-lint's yaml rule) expects
        return super().increase_indent(flow, False)


def _represent_unsafe(dumper: yaml.SafeDumper, data: Unsafe) -> yaml.ScalarNode:
    # Double-quoted: control characters and line breaks are escapes, nothing the host printed is raw.
    return dumper.represent_scalar(UNSAFE_TAG, str(data), style='"')


_Dumper.add_representer(Unsafe, _represent_unsafe)


class UnsafeLoader(yaml.SafeLoader):
    """Reads a generated playbook back with `!unsafe` values as Unsafe (tests, tools)."""


UnsafeLoader.add_constructor(UNSAFE_TAG, lambda loader, node: Unsafe(loader.construct_scalar(node)))


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=100, explicit_start=False)


# ---------------------------------------------------------------------------------------------- host data
def _fact(host: HostResult, probe: str) -> Any:
    return host.facts.get(probe)


def _postconf(host: HostResult, param: str) -> str | None:
    params = getattr(_fact(host, "postconf"), "params", None)
    value = params.get(param) if isinstance(params, Mapping) else None
    return value if isinstance(value, str) else None


def _path(host: HostResult, param: str) -> str | None:
    """A postconf directory, when it is an absolute path (anything else gets no task)."""
    value = _postconf(host, param)
    if not value or not value.startswith("/") or "\x00" in value:
        return None
    return value.rstrip("/") or "/"


@dataclasses.dataclass
class Step:
    """One or more tasks for the check ids in `ids`, at the runbook position of the first."""
    ids: list[str]
    tasks: list[dict[str, Any]]
    key: str = ""  # equal keys: the same fix, done once (the later check's id joins the tags)
    handler: bool = False


@dataclasses.dataclass
class Plan:
    steps: list[Step] = dataclasses.field(default_factory=list)
    last: list[Step] = dataclasses.field(default_factory=list)  # after the handlers (SVC-001's start)
    rollbacks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    review: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (check id, text)
    verify: list[str] = dataclasses.field(default_factory=list)
    counter: int = 0

    def register(self, what: str) -> str:
        self.counter += 1
        return f"pfc_{what}_{self.counter}"


def _title(check: CheckResult) -> str:
    return f"{check.check_id} {check.title}".strip()


def _message(check: CheckResult) -> str:
    text = check.message
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + " …"


def _review(plan: Plan, check: CheckResult, why: str) -> None:
    remediation = [str(c) for c in check.remediation]
    text = f"{_title(check)}: {why}. Found: {_message(check)}"
    if remediation:
        text += " | the catalogue's fix, to adapt by hand: " + " ; ".join(remediation)
    plan.review.append((check.check_id, text))


def _restorecon(plan: Plan, ids: list[str], name: str, paths: list[str], restart: bool, key: str,
                excludes: list[str] = ()) -> Step:
    var = plan.register("relabel")
    exclude_args: list[Any] = [arg for path in excludes for arg in ("-e", Unsafe(path))]
    task: dict[str, Any] = {
        "name": name,
        "ansible.builtin.command": {
            # check mode: -n lists what would be relabelled and changes nothing (so it may run there)
            "argv": ["restorecon", "{{ '-Rnv' if ansible_check_mode else '-Rv' }}", *exclude_args,
                     *[Unsafe(p) for p in paths]]},
        "register": var,
        "check_mode": False,
        # restorecon -v prints a line for each file it relabels (-nv: would relabel), nothing otherwise
        "changed_when": f"{var}.stdout != ''",
    }
    if restart:
        task["notify"] = HANDLER_RESTART
    return Step(list(ids), [task], key=key, handler=restart)


# ---------------------------------------------------------------------------------------------- per check
def _selinux_mode(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
    if profile is None:
        return _review(plan, check, "the host's profile is unknown, so the expected mode and policy are too")
    var = plan.register("selinux")
    tasks = [
        {"name": _title(check),
         "ansible.posix.selinux": {"policy": profile.selinux_policy, "state": profile.selinux_mode},
         "register": var},
        # From disabled, or to another policy type: every file needs its label at the next boot.
        {"name": f"{check.check_id} Relabel the whole file system at the next boot",
         "ansible.builtin.copy": {"dest": "/.autorelabel", "content": "", "force": False, "owner": "root",
                                  "group": "root", "mode": "0644"},
         "when": f"{var}.reboot_required | default(false)"},
        {"name": f"{check.check_id} A reboot is needed (never done by this playbook)",
         "ansible.builtin.debug": {"msg": "SELinux changes wait for a reboot: reboot this host by hand "
                                          "when the play is done (a full relabel runs at that boot)"},
         "when": f"{var}.reboot_required | default(false)"},
    ]
    plan.steps.append(Step([check.check_id], tasks, key="selinux-mode"))


def _booleans(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
    if profile is None:
        return _review(plan, check, "the host's profile is unknown, so the expected booleans are too")
    settings = _fact(host, "semanage_boolean")
    settings = settings.settings if isinstance(settings, model.BooleanSettings) else {}
    wanted = []
    for name, expected in profile.booleans:
        lookup = _fact(host, boolean_probe_name(name))
        resolved = lookup.name if isinstance(lookup, model.BooleanLookup) and lookup.name else None
        if resolved is None and name in settings:
            resolved = name
        if resolved is None or not _BOOLEAN_NAME.fullmatch(resolved):
            _review(plan, check, f"the boolean {name} is not defined by this host's policy (or its value "
                                  "was not read): nothing to set")
            continue
        setting = settings.get(resolved)
        runtime = lookup.value if isinstance(lookup, model.BooleanLookup) else None
        wrong = (runtime is not None and runtime != expected) or setting is None or \
            setting.current != expected or setting.default != expected
        if wrong:
            wanted.append((resolved, expected))
    for resolved, expected in wanted:
        # Two tasks: with persistent: true the module compares and sets only the stored value, so a boolean
        # that is off at runtime but on in the store (setsebool without -P) stays off (ansible.posix#429,
        # seen on the VM guest); persistent: false sets the running value. Both are idempotent.
        tasks = [{"name": f"{_title(check)} (stored value)",
                  "ansible.posix.seboolean": {"name": Unsafe(resolved), "state": expected, "persistent": True}},
                 {"name": f"{_title(check)} (running value)",
                  "ansible.posix.seboolean": {"name": Unsafe(resolved), "state": expected, "persistent": False}}]
        plan.steps.append(Step([check.check_id], tasks, key=f"boolean:{resolved}"))
        plan.rollbacks.append({
            "name": f"Rollback {check.check_id}: the boolean back to {'off' if expected else 'on'} "
                    "(the runbook's rollback)",
            "ansible.posix.seboolean": {"name": Unsafe(resolved), "state": not expected, "persistent": True},
            "_key": f"boolean:{resolved}"})


def _chroot_copies(profile: Any, queue: str) -> list[str]:
    """The queue's subdirectories the distribution refills at every start (Debian copies /etc files into
    Postfix's chroot, new files labelled etc_runtime_t): LBL-002 tolerates them, and a relabel that
    included them would change them again after every restart, so restorecon leaves them out (-e; a
    missing one is only a warning)."""
    subs = profile.chroot_copies if profile is not None else ()
    return [f"{queue.rstrip('/')}/{sub}" for sub in subs]


def _queue_labels(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
    queue = _path(host, "queue_directory")
    if queue is None:
        return _review(plan, check, "the queue directory is not known as an absolute path")
    plan.steps.append(_restorecon(plan, [check.check_id], _title(check), [queue], True, f"relabel:{queue}",
                                  _chroot_copies(profile, queue)))


def _equivalence(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
    queue = _path(host, "queue_directory")
    if queue is None or profile is None:
        return _review(plan, check, "the queue directory or the profile's default queue directory is unknown")
    default = profile.default_queue_directory.rstrip("/")
    task = {"name": _title(check),
            "community.general.sefcontext": {"target": Unsafe(queue), "substitute": default, "state": "present"}}
    plan.steps.append(Step([check.check_id], [task], key=f"equivalence:{queue}"))
    plan.steps.append(_restorecon(plan, [check.check_id], f"{check.check_id} Relabel the queue directory "
                                  "by the equivalence", [queue], True, f"relabel:{queue}",
                                  _chroot_copies(profile, queue)))
    plan.rollbacks.append({
        "name": f"Rollback {check.check_id}: remove the queue directory's fcontext equivalence",
        "community.general.sefcontext": {"target": Unsafe(queue), "substitute": default, "state": "absent"},
        "_key": f"equivalence:{queue}"})


def _related_labels(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
    paths = [p for p in (_path(host, n) for n in ("config_directory", "data_directory", "mail_spool_directory")) if p]
    if not paths:
        return _review(plan, check, "Postfix's directories are not known as absolute paths")
    plan.steps.append(_restorecon(plan, [check.check_id], _title(check), paths, False,
                                  "relabel:" + "\0".join(paths)))


def _permissive(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
    fact = _fact(host, "permissive_domains")
    prefix = profile.postfix_domain_prefix if profile is not None else "postfix_"
    domains = [d for d in fact.all if d.startswith(prefix)] if isinstance(fact, model.PermissiveDomains) else []
    if not domains or not all(_DOMAIN_NAME.fullmatch(d) for d in domains):
        return _review(plan, check, "the permissive domains could not be read from the evidence")
    for domain in domains:
        plan.steps.append(Step([check.check_id], [{
            "name": _title(check),
            "community.general.selinux_permissive": {"name": Unsafe(domain), "permissive": False}}],
            key=f"permissive:{domain}"))


def _service(unit: str, **state: Any) -> Callable[[Plan, CheckResult, HostResult, Any], None]:
    def plan_it(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
        plan.steps.append(Step([check.check_id], [{
            "name": _title(check), "ansible.builtin.systemd": {"name": unit, **state}}], key=f"unit:{unit}:{state}"))
    return plan_it


def _postfix_running(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
    var = plan.register("master")
    plan.last.append(Step([check.check_id], [
        {"name": f"{check.check_id} Look for a running Postfix master process",
         "ansible.builtin.command": {"argv": ["pidof", "master"]},
         "register": var, "check_mode": False, "changed_when": False, "failed_when": False},
        # Debian's postfix.service stays "active" while postfix@- failed: a restart starts the instance.
        {"name": _title(check),
         "ansible.builtin.systemd": {"name": "postfix", "state": "restarted"},
         "when": f"{var}.rc != 0"},
    ], key="postfix-running"))


def _ports(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
    listeners, labels = _fact(host, "listeners"), _fact(host, "port_labels")
    port_type = profile.smtp_port_type if profile is not None else "smtp_port_t"
    if not isinstance(listeners, model.Listeners) or not isinstance(labels, model.PortLabels):
        return _review(plan, check, "the listener ports could not be read from the evidence")
    ports = sorted({l.port for l in listeners.listeners if l.held_by("master")
                    and port_type not in labels.types_for(l.port, "tcp")})
    for port in ports:
        args = {"ports": str(port), "proto": "tcp", "setype": port_type}
        plan.steps.append(Step([check.check_id], [{
            "name": f"{_title(check)}: tcp port {port}", "community.general.seport": {**args, "state": "present"}}],
            key=f"port:{port}"))
        plan.rollbacks.append({"name": f"Rollback {check.check_id}: remove the label of tcp {port}",
                               "community.general.seport": {**args, "state": "absent"}, "_key": f"port:{port}"})
    if not ports:
        _review(plan, check, "no unlabelled listener port found in the evidence")


def _firewall(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
    args = {"service": "smtp", "permanent": True, "immediate": True}
    plan.steps.append(Step([check.check_id], [{
        "name": _title(check), "ansible.posix.firewalld": {**args, "state": "enabled"}}], key="firewall"))
    plan.rollbacks.append({"name": f"Rollback {check.check_id}: firewalld no longer admits smtp",
                           "ansible.posix.firewalld": {**args, "state": "disabled"}, "_key": "firewall"})


def _sasl(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
    fact = _fact(host, "sasl_maps")
    files = [f for f in getattr(fact, "files", ()) if getattr(f, "exists", False)] if fact is not None else []
    loose = [f for f in files if f.owner != "root" or (f.mode is not None and f.mode & (stat.S_IRWXG | stat.S_IRWXO))]
    for f in loose:
        if not str(f.path).startswith("/"):
            continue
        plan.steps.append(Step([check.check_id], [{
            "name": _title(check),
            "ansible.builtin.file": {"path": Unsafe(f.path), "owner": "root", "mode": "0600"}}],
            key=f"sasl:{f.path}"))
    by_path = {f.path: f for f in files}
    stale = [f for f in files for suffix in (".db", ".lmdb") if by_path.get(f.path + suffix) is not None
             and f.mtime is not None and by_path[f.path + suffix].mtime is not None
             and by_path[f.path + suffix].mtime < f.mtime]
    if stale or not loose:
        _review(plan, check, "a map's .db is older than its source (run postmap after checking the source), "
                              "or the maps are missing or could not be read")


def _verify(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
    plan.verify.append(check.check_id)


def _manual(why: str) -> Callable[[Plan, CheckResult, HostResult, Any], None]:
    def plan_it(plan: Plan, check: CheckResult, host: HostResult, profile: Any) -> None:
        _review(plan, check, why)
    return plan_it


PLANNERS: dict[str, Callable[[Plan, CheckResult, HostResult, Any], None]] = {
    "SEL-001": _selinux_mode,
    "SEL-002": _selinux_mode,
    "SEL-003": _selinux_mode,
    "SEL-004": _manual("boot arguments are changed with the boot loader's tool (grubby on RHEL, GRUB_CMDLINE_LINUX "
                       "on Debian) and need a reboot: by hand"),
    "SEL-005": _permissive,
    "BOOL-001": _booleans,
    "BOOL-002": _booleans,
    "LBL-001": _queue_labels,
    "LBL-002": _queue_labels,
    "LBL-003": _equivalence,
    "LBL-004": _related_labels,
    "AVC-001": _service("auditd", state="started", enabled=True),
    "SVC-001": _postfix_running,
    "SVC-002": _service("postfix", enabled=True),
    "SVC-004": _manual("Postfix was started outside systemd: stop it (postfix stop) and start the service in a "
                       "maintenance window; an automatic restart of a running mail system is not safe"),
    "SVC-005": _manual("postfix check's findings need reading first (postfix set-permissions fixes ownership)"),
    "MOD-001": _manual("a local policy module is a decision someone made: review it, then remove it "
                       "(semodule -r NAME) once its denials are fixed by labels or booleans"),
    "REL-001": _manual("DNS is not an SELinux fix: check the resolver and relayhost"),
    "REL-002": _ports,
    "REL-003": _firewall,
    "REL-004": _sasl,
    **{check_id: _verify for check_id in VERIFY},
}


def _section_rank(check: CheckResult) -> tuple[int, str]:
    section = check.section
    return (SECTIONS.index(section) if section in SECTIONS else len(SECTIONS), check.check_id)


def plan_host(host: HostResult, profile: Any) -> Plan:
    """The fixes for the failed checks of one host (its facts give the parameters, `profile` the
    expected values; None: every fix that needs it becomes a review item)."""
    plan = Plan()
    failing = sorted((c for c in host.checks if c.outcome == "fail"), key=_section_rank)
    hand_started = any(c.check_id == "SVC-004" for c in failing)
    for check in failing:
        planner = PLANNERS.get(check.check_id) or _manual("no automatic fix is known for this check")
        if check.check_id == "SVC-001" and hand_started:  # a restart is SVC-004's review, not automatic
            planner = _manual("Postfix runs outside systemd (see SVC-004): start the service after stopping it")
        planner(plan, check, host, profile)
        covered = {i for step in plan.steps + plan.last for i in step.ids} | set(plan.verify) | \
            {i for i, _ in plan.review}
        if check.check_id not in covered:  # every failed check is in the playbook, one way or another
            _review(plan, check, "nothing to change was found in the evidence")
    return plan


# ---------------------------------------------------------------------------------------------- rendering
def _merge(steps: list[Step]) -> list[dict[str, Any]]:
    """Steps with the same key are one fix: done once, at the first one's place, tagged with every id."""
    tasks: list[dict[str, Any]] = []
    first: dict[str, Step] = {}
    for step in steps:
        if step.key and step.key in first:
            for task in first[step.key].tasks:
                for check_id in step.ids:
                    if check_id not in task["tags"]:
                        task["tags"].append(check_id)
            continue
        for task in step.tasks:
            task["tags"] = list(step.ids)
            tasks.append(task)
        if step.key:
            first[step.key] = step
    return tasks


def _sorted_tags(task: dict[str, Any]) -> dict[str, Any]:
    if "tags" in task:
        task["tags"] = sorted(task["tags"])
    return task


def play_for(name: str, target: str, host: HostResult, profile: Any) -> tuple[dict[str, Any], Plan]:
    plan = plan_host(host, profile)
    tasks: list[dict[str, Any]] = [{
        "name": "Guard: change only the host this play was generated for",
        "ansible.builtin.assert": {
            "that": ["inventory_hostname == postfix_compliance_host",
                     "inventory_hostname in groups['all']"],  # never Ansible's implicit localhost
            "fail_msg": "this play is for another host (or a host missing from the inventory): nothing changed",
            "quiet": True},
        "tags": ["always"],
    }]
    tasks += [_sorted_tags(t) for t in _merge(plan.steps)]
    handlers = []
    if any(t.get("notify") == HANDLER_RESTART for t in tasks):
        handlers.append({"name": HANDLER_RESTART, "ansible.builtin.systemd": {"name": "postfix", "state": "restarted"}})
    if plan.last:
        tasks.append({"name": "Run the restarts the fixes above need, now", "ansible.builtin.meta": "flush_handlers",
                      "tags": ["always"]})
        tasks += [_sorted_tags(t) for t in _merge(plan.last)]
    errors = sorted(c.check_id for c in host.checks if c.outcome == "error")
    waived = sorted(c.check_id for c in host.checks if c.outcome == "waived")
    if plan.verify or errors:
        lines = []
        if plan.verify:
            lines.append("Symptoms the fixes above clear: " + ", ".join(sorted(set(plan.verify)))
                         + ". Run the compliance suite again, with --avc-since at the time of this run.")
        if errors:
            lines.append("Not judged (no fix in this playbook; see the report): " + ", ".join(errors))
        tasks.append({"name": "Verify with the compliance suite", "ansible.builtin.debug": {"msg": lines},
                      "tags": sorted(set(plan.verify)) + ["verify"]})
    if plan.review:
        ids = sorted({check_id for check_id, _ in plan.review})
        if not plan.last:
            tasks.append({"name": "Run the restarts the fixes above need, now",
                          "ansible.builtin.meta": "flush_handlers", "tags": ["always"]})
        tasks.append({"name": "Checks without a safe automatic fix: review by hand",
                      "ansible.builtin.fail": {"msg": Unsafe("\n".join(text for _, text in plan.review))},
                      "tags": ids + ["review"]})
    seen = set()
    for rollback in plan.rollbacks:
        key = rollback.pop("_key")
        if key in seen:
            continue
        seen.add(key)
        rollback["tags"] = ["never", "rollback"]
        tasks.append(rollback)
    failing = sorted({c.check_id for c in host.checks if c.outcome == "fail"})
    if not failing:
        tasks.append({"name": "Nothing to fix on this host", "ansible.builtin.debug": {
            "msg": "every check passed, was waived, not applicable or not judged"
                   + (f" (waived: {', '.join(waived)})" if waived else "")}})
    play: dict[str, Any] = {
        "name": Unsafe(f"Postfix compliance fixes for {name}" + (f" ({target})" if target != name else "")),
        "hosts": Unsafe(name),
        "gather_facts": False,
        "vars": {"postfix_compliance_host": Unsafe(name), "postfix_compliance_target": Unsafe(target)},
        "tasks": tasks,
    }
    if handlers:
        play["handlers"] = handlers
    return play, plan


def play_host_name(target: str, name: str, inventory_names: Mapping[str, str] | None) -> str | None:
    """The `hosts:` of a target's play, or None when the name cannot be used as one safely."""
    chosen = (inventory_names or {}).get(target) or name
    if not _HOST_NAME.fullmatch(chosen) or chosen in _RESERVED:
        return None
    return chosen


def render(run: RunResult, *, generated: float | None = None, profiles: Mapping[str, Any] | None = None,
           inventory_names: Mapping[str, str] | None = None) -> str:
    """The playbook (YAML text) for the failed checks of `run`.

    generated: when it says it was written (the run's end unless given); profiles: profile name ->
    Profile (the expected values; `profiles_for`); inventory_names: target id -> the name the Ansible
    inventory gives the host (hosts from --ansible-inventory; `inventory_names_for`)."""
    generated = run.ended if generated is None else generated
    hosts: dict[str, HostResult] = {h.id: h for h in run.hosts if h.checks}
    names: dict[str, str] = {h.id: str(h.name or h.id) for h in hosts.values()}
    order = sorted(hosts, key=lambda h: (names[h], h))
    failing_total = sum(1 for _, c in run.checks() if c.outcome == "fail")
    head = [
        "---",
        "# REVIEW BEFORE RUNNING. This playbook changes hosts; the compliance suite never runs it.",
        f"# Generated by postfix-compliance {__version__} on "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(generated))}:",
        f"# the fixes for {failing_total} failed check(s), one play per host, tasks in runbook order",
        "# (" + " > ".join(SECTIONS) + ").",
        "# Preview:  ansible-playbook -i INVENTORY THIS_FILE --check --diff   (as root, or with --become)",
        "# One check: --tags BOOL-001.  Rollbacks run only with --tags rollback.  docs/ansible.md",
        "# Every value a host supplied is tagged !unsafe: Ansible never evaluates it as a template.",
    ]
    plays = []
    body: list[str] = []
    for target in order:
        host = hosts[target]
        name = play_host_name(target, names[target], inventory_names)
        ids = sorted({c.check_id for c in host.checks if c.outcome == "fail"})
        if name is None:
            body.append("# A host whose name is not a plain host name (Ansible would read it as a pattern) "
                        f"gets no play; its failed checks: {', '.join(ids) or 'none'}")
            continue
        profile = (profiles or {}).get(host.profile) if host.profile else None
        play, _ = play_for(name, target, host, profile)
        plays.append(play)
        body.append(f"# failed: {', '.join(ids) or 'none'}")
        body.append(dump([play]).rstrip("\n"))
    if not plays:
        body.append(dump([{"name": "Nothing to fix", "hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "Nothing to fix", "ansible.builtin.debug": {"msg": "no host of this run has a play"}}]}]).rstrip())
    return "\n".join(head + body) + "\n"


def write(run: RunResult, path: str, **options: Any) -> None:
    """`render(run, **options)` written atomically, mode 0644."""
    write_atomic(path, render(run, **options), mode=0o644)


def load(text: str) -> Any:
    """A generated playbook read back, `!unsafe` values as Unsafe."""
    return yaml.load(text, Loader=UnsafeLoader)  # noqa: S506 - a SafeLoader subclass
