"""--remediation-playbook FILE: each host's remediation plan as an Ansible playbook. Never run by the suite.

A view of the plan (remediation_plan.py), as the shell script is (report/remediation.py): the same actions,
in the same order, each a step whose task names read "Step N/T: <the action>" (tests/test_playbook.py holds
the script and the playbook to the same steps for every scenario snapshot and VM recording). docs/ansible.md
documents it:

  - one play per host, `hosts:` the name Ansible knows the host by: its inventory name when it came
    from --ansible-inventory (or an ansible:// host), else the host name the suite reports (the
    "Host" column of the report; `127.0.0.1` for an SSH URL naming an address). A name that is not a
    plain host name (an Ansible pattern character such as `*`, `:`, `!`, `,` or `[`, or a group name
    such as `all`) gets no play: a comment says so;
  - every play first asserts that it runs on the one host it was written for (inventory_hostname
    equals the name, and the host is in the inventory: never Ansible's implicit localhost), so a
    host name that happens to be a group name changes nothing;
  - each step's tasks are tagged with the check ids the action serves and with its kind: `--tags BOOL-001`
    runs one check's steps, `--tags relabel` every relabel;
  - the modules made for each action: ansible.posix.selinux (mode, config, policy type),
    ansible.posix.seboolean (persistent: true, and again persistent: false for the running value:
    ansible.posix#429), community.general.sefcontext (the queue directory's equivalence, `substitute`),
    community.general.selinux_permissive, community.general.seport, ansible.posix.firewalld,
    ansible.builtin.systemd, ansible.builtin.file (modes; a stale lock file, after ansible.builtin.stat
    says its age); restorecon runs as ansible.builtin.command with argv (no shell) and
    `changed_when: stdout != ''` (restorecon -v prints a line only for what it relabels);
  - check mode: restorecon runs as `restorecon -Rnv` (changes nothing, lists what it would relabel,
    reported as changed) and for real as `restorecon -Rv`; every module supports check mode, so
    `ansible-playbook --check --diff` previews the run;
  - Postfix is restarted once, by its step after the ones it depends on, and only when a relabel that
    needs it changed something or no master process runs; the last step waits for master to run;
  - rollbacks, where a module can do the plan's, are tasks tagged `never` and `rollback` (never run
    unless `--tags rollback`); they carry no check-id tag, so `--tags BOOL-001` never runs a rollback;
  - the plan's steps for a person (a local policy module to review, boot arguments, processes started
    by hand, DNS, stale SASL maps, `postfix check` findings, booleans the host does not know) end the
    play with one `ansible.builtin.fail` task, tagged `review` and with their ids, after the automatic
    steps ran: the run says the host still needs a person, it does not pass silently;
  - symptoms the steps clear (AVC-002, LOG-001, Q-001..003, SVC-003) get one debug task tagged with
    their ids, naming the suite's command to run again;
  - waived failures and checks that could not be judged get no task (the debug task names them).

Safety: every value a host supplied (host names, paths, boolean, domain and module names, messages, the
step names that hold them) is emitted as YAML data tagged `!unsafe`, Ansible's documented marking for text
never templated: a path holding `{{ lookup('pipe', ...) }}` stays that text. The YAML is produced by PyYAML
(a SafeDumper with a representer for the tag), never by pasting host values into text; comments hold only
the suite's own words and check ids. Host paths are absolute (the plan takes no other), and restorecon gets
`--` before them.

`render(run)` is a pure function of the decided run; `write` writes it. A host the run took from an
Ansible inventory is named as the inventory names it (the run's "inventory" section), so that
`ansible-playbook -i INVENTORY` finds it; a merge of shards keeps those names.
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any, Mapping

import yaml

from postfix_compliance import __version__
from postfix_compliance.atomicfile import write_atomic
from postfix_compliance.remediation_plan import Action, HostPlan
from postfix_compliance.run import HostResult, RunResult

UNSAFE_TAG = "!unsafe"
# A host name usable as a play's `hosts:` (no Ansible pattern syntax), and names Ansible reserves.
_HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}[A-Za-z0-9_])?")
_RESERVED = {"all", "ungrouped"}


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


# ---------------------------------------------------------------------------------------------- the plan's steps
@dataclasses.dataclass
class _Registers:
    counter: int = 0
    restart_on: list[str] = dataclasses.field(default_factory=list)  # relabels whose change wants the restart

    def new(self, what: str) -> str:
        self.counter += 1
        return f"pfc_{what}_{self.counter}"


def _name(n: int, total: int, action: Action, suffix: str = "") -> Unsafe:
    # A step's name holds host words (paths, names): !unsafe, never templated. "Step N/T: summary" is
    # the script's "step N/T: summary": tests/test_playbook.py holds the two to the same plan.
    return Unsafe(f"Step {n}/{total}: {action.summary}{suffix}")


def _u(values: Any) -> Any:
    return [Unsafe(str(v)) for v in values] if isinstance(values, (list, tuple)) else Unsafe(str(values))


def _step_tasks(n: int, total: int, action: Action, regs: _Registers) -> list[dict[str, Any]]:
    p = action.params
    name = _name(n, total, action)
    kind = action.kind
    if kind == "boolean":
        # Two tasks: with persistent: true the module compares and sets only the stored value, so a boolean
        # that is off at runtime but on in the store (setsebool without -P) stays off (ansible.posix#429,
        # seen on the VM guest); persistent: false sets the running value. Both are idempotent.
        return [{"name": _name(n, total, action, " (stored value)"),
                 "ansible.posix.seboolean": {"name": Unsafe(p["name"]), "state": bool(p["value"]), "persistent": True}},
                {"name": _name(n, total, action, " (running value)"),
                 "ansible.posix.seboolean": {"name": Unsafe(p["name"]), "state": bool(p["value"]), "persistent": False}}]
    if kind == "fcontext_equivalence":
        return [{"name": name, "community.general.sefcontext": {
            "target": Unsafe(p["path"]), "substitute": Unsafe(p["equal_to"]), "state": "present"}}]
    if kind == "relabel":
        var = regs.new("relabel")
        if action.restart:
            regs.restart_on.append(var)
        excludes = [arg for path in p.get("excludes") or () for arg in ("-e", Unsafe(path))]
        return [{"name": name, "ansible.builtin.command": {
            # check mode: -n lists what would be relabelled and changes nothing (so it may run there)
            "argv": ["restorecon", "{{ '-Rnv' if ansible_check_mode else '-Rv' }}", *excludes, "--",
                     *_u(p["paths"])]},
            "register": var, "check_mode": False,
            # restorecon -v prints a line for each file it relabels (-nv: would relabel), nothing otherwise
            "changed_when": f"{var}.stdout != ''"}]
    if kind == "file_owner_mode":
        return [{"name": name, "ansible.builtin.file": {"path": Unsafe(p["path"]), "owner": Unsafe(p["owner"]),
                                                        "mode": Unsafe(p["mode"])}}]
    if kind == "remove_stale_lock":
        var, again, limit = regs.new("lock"), regs.new("lock"), int(p["older_than_s"])
        age = f"(now().timestamp() - {var}.stat.mtime)"
        return [{"name": _name(n, total, action, " (its age)"), "ansible.builtin.stat": {"path": Unsafe(p["path"])},
                 "register": var},
                # younger: a delivery may hold it; wait until no delivery can (at most the limit), then look again
                {"name": _name(n, total, action, f" (wait until it is {limit} s old)"),
                 "ansible.builtin.wait_for": {"timeout": f"{{{{ ({limit} - {age}) | int + 1 }}}}"},
                 "when": f"not ansible_check_mode and {var}.stat.exists and {age} < {limit}"},
                {"name": _name(n, total, action, " (its age again)"), "ansible.builtin.stat": {"path": Unsafe(p["path"])},
                 "register": again},
                {"name": name, "ansible.builtin.file": {"path": Unsafe(p["path"]), "state": "absent"},
                 "when": f"{again}.stat.exists and (now().timestamp() - {again}.stat.mtime) >= {limit}"}]
    if kind == "permissive_domain_off":
        return [{"name": name, "community.general.selinux_permissive": {"name": Unsafe(p["domain"]),
                                                                         "permissive": False}}]
    if kind == "selinux_state":
        var = regs.new("selinux")
        return [
            {"name": name, "ansible.posix.selinux": {"policy": Unsafe(p["policy"]), "state": Unsafe(p["mode"])},
             "register": var},
            # From disabled, or to another policy type: every file needs its label at the next boot.
            {"name": _name(n, total, action, ": relabel the whole file system at the next boot"),
             "ansible.builtin.copy": {"dest": "/.autorelabel", "content": "", "force": False, "owner": "root",
                                      "group": "root", "mode": "0644"},
             "when": f"{var}.reboot_required | default(false)"},
            {"name": _name(n, total, action, ": a reboot is needed (never done by this playbook)"),
             "ansible.builtin.debug": {"msg": "SELinux changes wait for a reboot: reboot this host by hand "
                                              "when the play is done (a full relabel runs at that boot)"},
             "when": f"{var}.reboot_required | default(false)"}]
    if kind == "unit":
        state = {"enabled": True} if p.get("enable") else {}
        if p.get("start"):
            state["state"] = "started"
        return [{"name": name, "ansible.builtin.systemd": {"name": Unsafe(p["unit"]), **state}}]
    if kind == "firewall_service":
        key = "port" if "port" in p else "service"
        return [{"name": name, "ansible.posix.firewalld": {key: Unsafe(p[key]), "permanent": True,
                                                            "immediate": True, "state": "enabled"}}]
    if kind == "port_label":
        return [{"name": name, "community.general.seport": {"ports": str(p["port"]), "proto": Unsafe(p["proto"]),
                                                             "setype": Unsafe(p["setype"]), "state": "present"}}]
    if kind == "restart_postfix":
        var = regs.new("master")
        wanted = [f"({v} is changed)" for v in regs.restart_on] + [f"{var}.rc != 0"]
        return [{"name": _name(n, total, action, ": is a master process running?"),
                 "ansible.builtin.command": {"argv": ["pidof", "master"]},
                 "register": var, "check_mode": False, "changed_when": False, "failed_when": False},
                # Debian's postfix.service stays "active" while postfix@- failed: a restart starts the instance.
                {"name": name, "ansible.builtin.systemd": {"name": "postfix", "state": "restarted"},
                 "when": " or ".join(wanted)}]
    if kind == "verify_postfix_running":
        var = regs.new("running")
        return [{"name": name, "ansible.builtin.command": {"argv": ["pidof", "master"]}, "register": var,
                 "retries": 15, "delay": 2, "until": f"{var}.rc == 0", "changed_when": False,
                 "check_mode": False, "failed_when": f"{var}.rc != 0 and not ansible_check_mode"}]
    raise ValueError(f"no playbook form for a {kind} action")


def _rollback(action: Action) -> dict[str, Any] | None:
    """The action undone by its module, where one can: a task tagged never and rollback."""
    p = action.params
    title = f"Rollback of {', '.join(action.checks)}: "
    if action.kind == "boolean":
        return {"name": Unsafe(title + f"the boolean {p['name']} back to {'off' if p['value'] else 'on'}"),
                "ansible.posix.seboolean": {"name": Unsafe(p["name"]), "state": not p["value"], "persistent": True}}
    if action.kind == "fcontext_equivalence":
        return {"name": Unsafe(title + f"remove the fcontext equivalence of {p['path']}"),
                "community.general.sefcontext": {"target": Unsafe(p["path"]), "substitute": Unsafe(p["equal_to"]),
                                                 "state": "absent"}}
    if action.kind == "permissive_domain_off":
        return {"name": Unsafe(title + f"{p['domain']} permissive again"),
                "community.general.selinux_permissive": {"name": Unsafe(p["domain"]), "permissive": True}}
    if action.kind == "port_label":
        return {"name": Unsafe(title + f"remove the label of {p['proto']} {p['port']}"),
                "community.general.seport": {"ports": str(p["port"]), "proto": Unsafe(p["proto"]),
                                             "setype": Unsafe(p["setype"]), "state": "absent"}}
    if action.kind == "firewall_service":
        key = "port" if "port" in p else "service"
        return {"name": Unsafe(title + f"firewalld no longer admits {p[key]}"),
                "ansible.posix.firewalld": {key: Unsafe(p[key]), "permanent": True, "immediate": True,
                                            "state": "disabled"}}
    return None


def play_for(name: str, target: str, host: HostResult) -> dict[str, Any]:
    plan: HostPlan = host.plan if host.plan is not None else HostPlan(target=host.id)
    tasks: list[dict[str, Any]] = [{
        "name": "Guard: change only the host this play was generated for",
        "ansible.builtin.assert": {
            "that": ["inventory_hostname == postfix_compliance_host",
                     "inventory_hostname in groups['all']"],  # never Ansible's implicit localhost
            "fail_msg": "this play is for another host (or a host missing from the inventory): nothing changed",
            "quiet": True},
        "tags": ["always"],
    }]
    steps = plan.automatic
    regs = _Registers()
    for n, action in enumerate(steps, 1):
        for task in _step_tasks(n, len(steps), action, regs):
            task["tags"] = sorted(action.checks) + [action.kind]  # --tags LBL-002, or --tags relabel
            tasks.append(task)
    errors = sorted(c.check_id for c in host.checks if c.outcome == "error")
    waived = sorted(c.check_id for c in host.checks if c.outcome == "waived")
    if plan.verify or errors:
        lines = []
        if plan.verify:
            lines.append("Symptoms the steps above clear: " + ", ".join(plan.verify) + ". Run the compliance suite "
                         "again, with --avc-since at the time of this run:")
            lines.append(plan.verify_base())
        if errors:
            lines.append("Not judged (no step in this playbook; see the report): " + ", ".join(errors))
        tasks.append({"name": "Verify with the compliance suite", "ansible.builtin.debug": {"msg": _u(lines)},
                      "tags": sorted(set(plan.verify)) + ["verify"]})
    if plan.manual:
        ids = sorted({c for a in plan.manual for c in a.checks})
        text = "\n".join(f"{', '.join(a.checks)}: {a.summary}"
                          + (f" | look: {' ; '.join(a.commands)}" if a.commands else "") for a in plan.manual)
        tasks.append({"name": "Steps without a safe automatic fix: for a person",
                      "ansible.builtin.fail": {"msg": Unsafe(text)}, "tags": ids + ["review"]})
    for action in steps:
        rollback = _rollback(action)
        if rollback is not None:
            rollback["tags"] = ["never", "rollback"]
            tasks.append(rollback)
    if not any(c.outcome == "fail" for c in host.checks):
        tasks.append({"name": "Nothing to fix on this host", "ansible.builtin.debug": {
            "msg": "every check passed, was waived, not applicable or not judged"
                   + (f" (waived: {', '.join(waived)})" if waived else "")}})
    return {
        "name": Unsafe(f"Postfix compliance fixes for {name}" + (f" ({target})" if target != name else "")),
        "hosts": Unsafe(name),
        "gather_facts": False,
        "vars": {"postfix_compliance_host": Unsafe(name), "postfix_compliance_target": Unsafe(target)},
        "tasks": tasks,
    }


def play_host_name(target: str, name: str, inventory_names: Mapping[str, str] | None) -> str | None:
    """The `hosts:` of a target's play, or None when the name cannot be used as one safely."""
    chosen = (inventory_names or {}).get(target) or name
    if not _HOST_NAME.fullmatch(chosen) or chosen in _RESERVED:
        return None
    return chosen


def render(run: RunResult, *, generated: float | None = None,
           inventory_names: Mapping[str, str] | None = None) -> str:
    """The playbook (YAML text) of the plans of `run`.

    generated: when it says it was written (the run's end unless given); inventory_names: target id -> the
    name the Ansible inventory gives the host (default: the run's own, `RunResult.inventory`)."""
    generated = run.ended if generated is None else generated
    if inventory_names is None:
        inventory_names = {host_id: name for host_id, (name, _) in run.inventory().items()}
    hosts: dict[str, HostResult] = {h.id: h for h in run.hosts if h.checks}
    names: dict[str, str] = {h.id: str(h.name or h.id) for h in hosts.values()}
    order = sorted(hosts, key=lambda h: (names[h], h))
    failing_total = sum(1 for _, c in run.checks() if c.outcome == "fail")
    head = [
        "---",
        "# REVIEW BEFORE RUNNING. This playbook changes hosts; the compliance suite never runs it.",
        f"# Generated by postfix-compliance {__version__} on "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(generated))}:",
        f"# the remediation plan for {failing_total} failed check(s), one play per host, its steps in dependency",
        "# order (policy store, booleans, labels, files, enforcement, units, one restart, a check).",
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
        play = play_for(name, target, host)
        plays.append(play)
        body.append(f"# failed: {', '.join(ids) or 'none'}")
        body.append(dump([play]).rstrip("\n"))
    if not plays:
        body.append(dump([{"name": "Nothing to fix", "hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "Nothing to fix", "ansible.builtin.debug": {"msg": "no host of this run has a play"}}]}]).rstrip())
    return "\n".join(head + body) + "\n"


def write(run: RunResult, path: str, **options: Any) -> None:
    """`render(run, **options)` written atomically, mode 0644."""
    write_atomic(path, render(run, **options))


def load(text: str) -> Any:
    """A generated playbook read back, `!unsafe` values as Unsafe."""
    return yaml.load(text, Loader=UnsafeLoader)  # noqa: S506 - a SafeLoader subclass
