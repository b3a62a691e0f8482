"""The host list: `--hosts` URLs and Ansible inventories, resolved to the suite's host URLs.

- no `--hosts` and no `--ansible-inventory`: this machine (`local`);
- `--hosts=URL,URL`: those (a bare name takes testinfra's `--connection`, else paramiko);
  an empty list (`--hosts=`, `--hosts=,`) is a usage error, never "no host, all green";
- `--ansible-inventory FILE` alone: every host in it; `--hosts=ansible://PATTERN` picks hosts by
  group or name (`all`, `mail*`, `web:db`, `mail:!mail3`, `mail:&rhel9`).

Inventory hosts become the suite's own URLs (`ssh://user@address:port` by default, as Ansible
connects with OpenSSH), so they get the same host key checks and connection reuse as any
other host; ansible_user, ansible_host, ansible_port, ansible_ssh_private_key_file,
ansible_become and ansible_become_user are honoured.

Two readers (`--inventory-reader`, default `auto`: `ansible` when `ansible-inventory` is installed,
beside this Python or on PATH, else `builtin`):

- `ansible`: `ansible-inventory --inventory=FILE --list`, so group_vars/, host_vars/, vault files
  (with the operator's vault password), inventory scripts and plugins count exactly as for the
  operator's playbooks. It runs without a shell, with a timeout, stdin closed, in the inventory's
  directory (the ansible.cfg it reads is ANSIBLE_CONFIG, the one beside the inventory, ~/.ansible.cfg
  or /etc/ansible/ansible.cfg; never one in the directory the suite was started from), with the
  operator's ANSIBLE_* settings except those that change what it prints (colour, verbosity, debug)
  and with an unparsable inventory made an error instead of an empty inventory. A static file is read
  by the built-in reader first, so its limits (host count, ranges, nesting) hold before Ansible
  expands anything; a JSON file in the `--list` format is read by the built-in reader only (Ansible
  cannot read that format back from a file).
- `builtin`: static INI, YAML and JSON (the `--list` format) inventories are read without Ansible;
  an executable inventory script is run with `--list`. `group_vars/` and `host_vars/` beside the
  inventory are read as Ansible reads them (`<name>`, `<name>.yml|.yaml|.json`, or a `<name>/`
  directory of such files); what it cannot follow (a vault-encrypted file) is refused in one line.

Trust model: the inventory, its group_vars/host_vars and an ansible.cfg beside it are the operator's
files, trusted as `ansible-playbook -i FILE` trusts them (scripts and plugins run). The VALUES they
hold are data: whichever reader produced them, each value the suite uses is checked as what it is
before it becomes part of a host URL (`host_url`); inline `!vault` values and `{{ templates }}` are
never evaluated: a connection setting holding one is refused in one line.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.parse
from typing import Any

import yaml

from postfix_compliance.errors import UsageError

DEFAULT_INVENTORY = "/etc/ansible/hosts"

# ansible_connection -> the suite's URL scheme (None: the default, OpenSSH).
CONNECTIONS = {None: "ssh", "ssh": "ssh", "smart": "ssh", "paramiko": "paramiko", "paramiko_ssh": "paramiko",
               "local": "local", "docker": "docker", "community.docker.docker": "docker",
               "podman": "podman", "containers.podman.podman": "podman", "lxc": "lxc", "lxd": "lxc"}


# An inventory range is expanded in memory: `mail[0:9999999]` would take the scanner's memory
# before any host is contacted. Counted before expanding, per inventory.
MAX_HOSTS = 100_000
MAX_RANGES = 16  # `[a:b]` ranges in one host name
MAX_ALIAS_COPIES = 1_000_000  # entries YAML aliases add to an inventory Ansible reads (it walks each copy)
MAX_VARS_BYTES = 16 << 20  # one group_vars/host_vars file
MAX_VARS_DEPTH = 16  # directories within group_vars/<group>/ (a symlink loop ends here)

READERS = ("auto", "builtin", "ansible")
ANSIBLE_TIMEOUT = 120  # seconds for ansible-inventory (a cloud inventory plugin asks an API)
# Where Jinja starts a template: Ansible evaluates them, the suite never does (host_url refuses them).
_TEMPLATE = re.compile(r"\{\{|\{%|\{#")


class Inventory:
    """Groups (name -> hosts, children, vars) and hosts (name -> vars), as Ansible models them."""

    def __init__(self, source: str):
        self.source = source
        self.groups: dict[str, dict[str, Any]] = {}
        self.hostvars: dict[str, dict[str, Any]] = {}
        self._in_group: dict[str, set[str]] = {}
        self._membership: dict[str, set[str]] | None = None  # group -> all its hosts; built on first query
        self._depths: dict[str, int] | None = None
        self.vars_dirs: VarsDirs | None = None  # group_vars/ and host_vars/ beside the file (built-in reader)
        self.ansible_program: str | None = None  # read by Ansible (--inventory-reader): Ansible selects too
        self.group("all")
        self.group("ungrouped")

    def group(self, name: str) -> dict[str, Any]:
        self._membership = None
        self._in_group.setdefault(name, set())
        return self.groups.setdefault(name, {"hosts": [], "children": [], "vars": {}})

    def add_host(self, group: str, host: str, variables: dict[str, Any] | None = None) -> None:
        members = self.group(group)["hosts"]
        if host not in self._in_group[group]:  # a set: a list lookup made big groups quadratic
            if host not in self.hostvars and len(self.hostvars) >= MAX_HOSTS:
                raise UsageError(f"ansible inventory {self.source}: more than {MAX_HOSTS} hosts")
            self._in_group[group].add(host)
            members.append(host)
        self.hostvars.setdefault(host, {}).update(variables or {})

    def expand(self, name: str) -> list[str]:
        """A host name with its ranges expanded, refused before expanding past the host limit."""
        try:
            count = range_size(name)
        except ValueError as exc:
            raise UsageError(f"ansible inventory {self.source}: host pattern {_shown(name)}: {exc}") from None
        if count > MAX_HOSTS:
            raise UsageError(f"ansible inventory {self.source}: host pattern {_shown(name)} expands to more "
                             f"than {MAX_HOSTS} hosts, the limit per inventory")
        if count + len(self.hostvars) > MAX_HOSTS:
            raise UsageError(f"ansible inventory {self.source}: host pattern {_shown(name)} expands to {count} "
                             f"hosts: with the {len(self.hostvars)} before it, more than {MAX_HOSTS}, "
                             "the limit per inventory")
        return expand_range(name)

    # ------------------------------------------------------------------ queries
    def members(self, group: str, seen: set[str] | None = None) -> list[str]:
        seen = seen if seen is not None else set()
        if group in seen or group not in self.groups:
            return []
        seen.add(group)
        # dict.fromkeys: ordered and de-duplicated in linear time (first occurrence keeps its place).
        hosts = dict.fromkeys(self.groups[group]["hosts"])
        for child in self.groups[group]["children"]:
            hosts.update(dict.fromkeys(self.members(child, seen)))
        if group == "all":
            hosts.update(dict.fromkeys(self.hostvars))
        return list(hosts)

    def all_hosts(self) -> list[str]:
        return self.members("all")

    def group_names(self, host: str) -> tuple[str, ...]:
        """The groups a host is in, directly or through a child group, sorted: Ansible's `group_names`
        (neither all nor ungrouped)."""
        if self._membership is None:
            self._membership = {g: set(self.members(g)) for g in self.groups}
            self._depths = None
        return tuple(sorted(g for g, hosts in self._membership.items()
                            if g not in ("all", "ungrouped") and host in hosts))

    def _depth(self, group: str, seen: frozenset[str] = frozenset()) -> int:
        if group == "all" or group in seen:  # `seen`: groups that are each other's children
            return 0
        if self._depths is None:
            self._depths = {}
            self._parents: dict[str, list[str]] = {}
            for name, data in self.groups.items():
                for child in data["children"]:
                    self._parents.setdefault(child, []).append(name)
        if group not in self._depths:  # remembered: a diamond of groups would otherwise be walked 2^n times
            self._depths[group] = 1 + max((self._depth(p, seen | {group})
                                           for p in self._parents.get(group, []) if p != group), default=0)
        return self._depths[group]

    def variables(self, host: str) -> dict[str, Any]:
        """The host's variables in Ansible's documented order: the inventory file's group vars (all's
        first, then by depth, parents before children, and name) < group_vars/all < group_vars/<group>
        (same order) < the host's own inventory vars < host_vars/<host>."""
        if self._membership is None:
            self._membership = {g: set(self.members(g)) for g in self.groups}
            self._depths = None
        merged: dict[str, Any] = {}
        containing = [g for g in self.groups if host in self._membership[g]]
        ordered = sorted(containing, key=lambda g: (self._depth(g), self._priority(g), g))
        for group in ordered:
            merged.update(self.groups[group]["vars"])
        if self.vars_dirs is not None:
            for group in ordered:
                merged.update(self.vars_dirs.group(group))
        merged.update(self.hostvars.get(host, {}))
        if self.vars_dirs is not None:
            merged.update(self.vars_dirs.host(host))
        return merged

    def _priority(self, group: str) -> int:
        """ansible_group_priority, as Ansible takes it (from the inventory file only; default 1)."""
        value = self.groups[group]["vars"].get("ansible_group_priority", 1)
        try:
            return int(value)
        except (TypeError, ValueError, OverflowError):
            return 1

    def select(self, pattern: str) -> list[str]:
        """The hosts of an Ansible host pattern, as `ansible PATTERN --list-hosts` gives them (Ansible's
        InventoryManager: split_host_pattern, order_patterns, _evaluate_patterns): the patterns' inclusions
        first, then intersections (`&x`), then exclusions (`!x`), whatever their written order; `~regex`,
        wildcards, `group[n]`, `group[n:m]` (inclusive), `group[n:]`. tests/test_inventory_patterns.py
        compares a table of patterns with Ansible's own answers."""
        if self.ansible_program is not None:
            return _ansible_list_hosts(self.ansible_program, self.source, pattern)
        patterns = split_host_pattern(pattern)
        regular = [p for p in patterns if p[0] not in "!&"] or ["all"]
        ordered = regular + [p for p in patterns if p[0] == "&"] + [p for p in patterns if p[0] == "!"]
        hosts: list[str] = []
        for part in ordered:
            if part in self.hostvars:  # a plain host name: no pattern matching
                hosts.append(part)
                continue
            that = self._match_one(part)
            if part[0] == "!":
                drop = set(that)
                hosts = [h for h in hosts if h not in drop]
            elif part[0] == "&":
                keep = set(that)
                hosts = [h for h in hosts if h in keep]
            else:
                existing = set(hosts)
                hosts.extend(h for h in that if h not in existing)
        return list(dict.fromkeys(hosts))

    def _match_one(self, pattern: str) -> list[str]:
        """One pattern's hosts (its & or ! ignored), its subscript applied; duplicates kept, as Ansible keeps
        them until the end (a host in two matching groups counts twice for a subscript)."""
        if pattern[0] in "&!":
            pattern = pattern[1:]
        expression, subscript = pattern, None
        if not pattern.startswith("~"):
            match = _SUBSCRIPT.match(pattern)
            if match:
                expression, index, start, _, end = match.groups()
                subscript = (int(index), None) if index else (int(start), int(end) if end else -1)
        hosts = self._enumerate(expression)
        if subscript is None:
            return hosts
        start, stop = subscript
        if stop:  # Ansible's own test: [n:0] is [n]
            return hosts[start:(len(hosts) - 1 if stop == -1 else stop) + 1]
        try:
            return [hosts[start]]
        except IndexError:
            raise UsageError(f"ansible inventory {self.source}: no hosts matched the subscripted pattern "
                             f"{_shown(pattern)}") from None

    def _enumerate(self, pattern: str) -> list[str]:
        matcher = _pattern_matcher(pattern, self.source)
        groups = [g for g in self.groups if matcher(g)]
        hosts: list[str] = []
        for group in groups:
            hosts.extend(self._group_hosts(group))
        if not groups or pattern[0] == "~" or any(c in pattern for c in ".?*["):
            hosts.extend(h for h in self.hostvars if matcher(h))
        return hosts

    def _group_hosts(self, group: str) -> list[str]:
        """A group's hosts in Ansible's order: its own, then its children's level by level (Group.get_hosts)."""
        order, seen, level = [group], {group}, [group]
        while level:
            following = []
            for name in level:
                for child in self._children(name):
                    if child not in seen:
                        seen.add(child)
                        order.append(child)
                        following.append(child)
            level = following
        hosts = dict.fromkeys(h for name in order for h in self.groups[name]["hosts"])
        if group == "all":
            hosts.update(dict.fromkeys(self.hostvars))
        return list(hosts)

    def _children(self, group: str) -> list[str]:
        """A group's child groups; all's are, as Ansible reconciles an inventory, ungrouped and every group
        with no other parent, in the order they were first named."""
        if group != "all":
            return self.groups[group]["children"]
        parented = {c for name, data in self.groups.items() if name != "all" for c in data["children"]}
        return ["ungrouped", *(g for g in self.groups if g not in ("all", "ungrouped") and g not in parented)]


# A pattern ending in a subscript: [n] (n may be negative), [n:m], [n:] (and the old [n-m]).
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
# A pattern that is one name or address (a range or a port may hold ':'): not split at ':'.
_ONE_NAME = re.compile(r"^(?:[A-Za-z0-9_.-]|\[[A-Za-z0-9]+:[A-Za-z0-9]+(?::[0-9]+)?\])+(?::[0-9]+)?$")
_IPV6 = re.compile(r"^\[?[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\]?(?::[0-9]+)?$")


def split_host_pattern(pattern: str) -> list[str]:
    """Ansible's split_host_pattern: at commas if there are any; else one pattern if it is one host name or
    address (ranges and IPv6 hold colons), else at colons outside brackets."""
    if "," in pattern:
        parts = pattern.split(",")
    elif _ONE_NAME.match(pattern) or _IPV6.match(pattern):
        parts = [pattern]
    else:
        parts = re.findall(r"(?:[^\s:\[\]]|\[[^\]]*\])+", pattern)
    return [p.strip() for p in parts if p.strip()]


def _pattern_matcher(pattern: str, source: str) -> Any:
    """Ansible's _match_list: `~regex` matched at the start of a name, else a shell wildcard (fnmatch)."""
    try:
        compiled = re.compile(pattern[1:] if pattern.startswith("~") else fnmatch.translate(pattern))
    except re.error as exc:
        raise UsageError(f"ansible inventory {source}: host pattern {_shown(pattern)}: {exc}") from None
    return lambda name: compiled.match(name) is not None


# ---------------------------------------------------------------------- reading
def ansible_inventory_program() -> str | None:
    """`ansible-inventory` beside this Python (the venv's own) or on PATH, else None."""
    beside = os.path.join(os.path.dirname(sys.executable), "ansible-inventory")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    return shutil.which("ansible-inventory")


def load_inventory(path: str, reader: str = "builtin") -> Inventory:
    """Read an inventory with `reader` (see the module doc); any problem is one UsageError line naming
    the file."""
    where = f"ansible inventory {path}"
    if reader not in READERS:
        raise UsageError(f"--inventory-reader={reader!r}: use one of {', '.join(READERS)}")
    if not os.path.exists(path):
        raise UsageError(f"{where}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{where}: is a directory (give one file, e.g. `ansible-inventory --list > hosts.json`)")
    program = None
    if reader != "builtin":
        program = ansible_inventory_program()
        if program is None and reader == "ansible":
            raise UsageError(f"{where}: --inventory-reader=ansible, but ansible-inventory is not installed "
                             "(install ansible-core, or use --inventory-reader=builtin)")
    if _is_script(path):
        if program is not None:  # Ansible's script plugin runs it, with group_vars/host_vars beside it
            return _from_ansible(program, path)
        text = _run_script(path)
    else:
        text = _read_text(path)
    if program is not None and not text.lstrip().startswith("{"):
        try:
            _parse(text, path, for_ansible=True)  # the built-in reader's checks and limits first
        except _PluginConfig:
            pass  # an inventory plugin's configuration (a cloud inventory): Ansible's alone
        return _from_ansible(program, path)
    inv = _parse(text, path)
    inv.vars_dirs = VarsDirs(path)
    return inv


def _is_script(path: str) -> bool:
    return os.access(path, os.X_OK) and not path.endswith((".ini", ".yml", ".yaml", ".json", ".cfg"))


def _run_script(path: str) -> str:
    where = f"ansible inventory {path}"
    try:
        # An absolute path: a bare name would be looked up on PATH, and `-x` is no option to exec.
        proc = subprocess.run([os.path.abspath(path), "--list"], capture_output=True, text=True,
                              errors="replace", timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"{where}: inventory script failed: {exc}") from None
    if proc.returncode != 0:
        raise UsageError(f"{where}: inventory script exited {proc.returncode}: "
                         f"{(proc.stderr.strip().splitlines() or [''])[-1]}")
    return proc.stdout


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"ansible inventory {path}: cannot read: {exc}") from None


class _PluginConfig(UsageError):
    """A YAML file naming an inventory plugin (`plugin: amazon.aws.aws_ec2`): only Ansible reads it."""


def _parse(text: str, path: str, for_ansible: bool = False) -> Inventory:
    where = f"ansible inventory {path}"
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            return _from_json(json.loads(text), path)
        # `plugin: NAME` reads like an INI host line; Ansible's auto plugin takes it as YAML.
        if _looks_like_ini(text) and not re.search(r"(?m)^plugin:\s*\S", text):
            return _from_ini(text, path)
        data = yaml.load(text, Loader=_VarsLoader)  # safe_load, plus `!vault` and `!unsafe` as Ansible has them
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not JSON: {exc.msg} at line {exc.lineno}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # nesting deeper than the parsers' stack
        raise UsageError(f"{where}: nested too deeply") from None
    except UsageError:  # already one line (it is a ValueError too)
        raise
    except ValueError as exc:  # e.g. a number too long for int(), in JSON or YAML
        raise UsageError(f"{where}: cannot read: {exc}") from None
    if data is None:
        return Inventory(path)
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected groups at the top level (e.g. `all: {{hosts: ...}}`)")
    if isinstance(data.get("plugin"), str):
        raise _PluginConfig(f"{where}: is the configuration of the inventory plugin {_shown(data['plugin'])}: "
                            "only Ansible reads it (install ansible-core: the suite then reads inventories "
                            "through ansible-inventory)")
    try:
        # The built-in reader reads a YAML alias's body once; Ansible walks every copy (40 levels of
        # groups holding the one below twice: 2^40 walks). Counted before Ansible sees the file.
        if for_ansible and _alias_copies(data, MAX_ALIAS_COPIES) > MAX_ALIAS_COPIES:
            raise UsageError(f"{where}: YAML aliases repeat more than {MAX_ALIAS_COPIES} entries (Ansible walks "
                             "every copy)")
        return _from_yaml(data, path)
    except RecursionError:
        raise UsageError(f"{where}: groups nested too deeply") from None


def _alias_copies(data: Any, limit: int) -> int:
    """How many entries YAML aliases add when every copy is walked (each distinct node is read once,
    so this is linear in the file); stops counting past `limit`."""
    sizes: dict[int, int] = {}
    extra = 0

    def size(node: Any) -> int:
        nonlocal extra
        if not isinstance(node, (dict, list)):
            return 1
        if id(node) in sizes:  # an alias: one more copy of the whole body
            extra += sizes[id(node)]
            return sizes[id(node)]
        sizes[id(node)] = 0  # a node that holds itself (`&a [*a]`) adds nothing more here
        total = 1
        for child in (node.values() if isinstance(node, dict) else node):
            total += size(child)
            if extra > limit:
                break
        sizes[id(node)] = total
        return total

    size(data)
    return extra


# ---------------------------------------------------------------------- through ansible-inventory
# The operator's ANSIBLE_* settings stay (ANSIBLE_CONFIG, vault password files, collections, enabled
# plugins: what their playbooks use); these are set over them, so that ansible-inventory prints only
# the JSON, never asks for anything, and an inventory it cannot parse is an error, not an empty one.
_ANSIBLE_ENV = {
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
    "ANSIBLE_ASK_VAULT_PASS": "False",
    "ANSIBLE_NOCOLOR": "True",
    "ANSIBLE_FORCE_COLOR": "False",
    "ANSIBLE_VERBOSITY": "0",
    "ANSIBLE_DEBUG": "False",
    "ANSIBLE_DEPRECATION_WARNINGS": "False",
}
_ANSIBLE_ENV_DROPPED = ("ANSIBLE_INVENTORY",)  # the inventory is the one on the command line


def ansible_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ANSIBLE_ENV_DROPPED}
    env.update(_ANSIBLE_ENV)
    return env


def _from_ansible(program: str, path: str) -> Inventory:
    """`ansible-inventory --list` of the file, read as data by the built-in JSON reader."""
    where = f"ansible inventory {path}"
    returncode, stdout, stderr = _run_ansible([program, "--list"], path, ansible_environment())
    if returncode != 0:
        message = _ansible_error(stderr)
        if "vault" in message.lower() or "decrypt" in message.lower():
            message += (" (a vault-encrypted file: give ansible-inventory the vault password as your playbooks "
                        "get it, e.g. ANSIBLE_VAULT_PASSWORD_FILE or vault_password_file in ansible.cfg)")
        raise UsageError(f"{where}: ansible-inventory exited {returncode}: {message}")
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: ansible-inventory printed no JSON inventory: {exc.msg} at line "
                         f"{exc.lineno}") from None
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{where}: ansible-inventory's output cannot be read: {exc or 'nested too deeply'}") from None
    inv = _from_json(data, path)
    inv.ansible_program = os.path.join(os.path.dirname(program), "ansible")
    if not os.access(inv.ansible_program, os.X_OK):
        inv.ansible_program = shutil.which("ansible")
    return inv


def _ansible_list_hosts(program: str, path: str, pattern: str) -> list[str]:
    """`ansible PATTERN --list-hosts`: the hosts Ansible itself selects, in its order (its JSON inventory
    lists child groups sorted, so their order, and a subscript's answer, is only Ansible's own)."""
    where = f"ansible inventory {path}"
    env = {**ansible_environment(), "ANSIBLE_HOST_PATTERN_MISMATCH": "ignore", "ANSIBLE_LOCALHOST_WARNING": "False"}
    # `--` first: the pattern is data (`-x` would be an option)
    returncode, stdout, stderr = _run_ansible([program, "--list-hosts", "--", pattern], path, env)
    if returncode != 0:
        raise UsageError(f"{where}: host pattern {_shown(pattern)}: {_ansible_error(stderr)}")
    match = re.search(r"^\s*hosts \(([0-9]+)\):\n((?:[ \t]+\S+\n?)*)", stdout, re.M)
    if match is None:
        raise UsageError(f"{where}: host pattern {_shown(pattern)}: ansible printed no host list")
    return match.group(2).split()


def _run_ansible(argv: list[str], path: str, env: dict[str, str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of an Ansible program on the inventory `path` (given as `--inventory=`,
    absolute, after the program's name), in the file's directory, in a session of its own; past
    ANSIBLE_TIMEOUT the whole session is killed (an inventory script it started too) and it is a UsageError."""
    where = f"ansible inventory {path}"
    source = os.path.abspath(path)  # absolute: it never starts with `-`
    try:
        proc = subprocess.Popen([argv[0], f"--inventory={source}", *argv[1:]], cwd=os.path.dirname(source), env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as exc:
        raise UsageError(f"{where}: cannot run {argv[0]}: {exc}") from None
    try:
        out, err = proc.communicate(timeout=ANSIBLE_TIMEOUT)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()
        raise UsageError(f"{where}: {os.path.basename(argv[0])} gave no answer within {ANSIBLE_TIMEOUT} s") from None
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _ansible_error(stderr: str) -> str:
    """The line that says what went wrong: Ansible's first `[ERROR]:` line, else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("[ERROR]:")]
    text = (errors[0].removeprefix("[ERROR]:").strip() if errors else (lines[-1] if lines else "(nothing on stderr)"))
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= 300 else text[:297] + "..."


# ---------------------------------------------------------------------- group_vars/, host_vars/
class Vaulted:
    """An inline `!vault` value (or ansible-inventory's `{"__ansible_vault": ...}`): never decrypted here."""

    def __init__(self, where: str = ""):
        self.where = where

    def __repr__(self) -> str:
        return "<vault-encrypted>"


def _is_vaulted(value: Any) -> bool:
    return isinstance(value, Vaulted) or (isinstance(value, dict) and set(value) == {"__ansible_vault"})


class _VarsLoader(yaml.SafeLoader):
    """YAML as Ansible's vars files use it: `!vault` values are kept as Vaulted, `!unsafe` as the value."""


def _construct_unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


_VarsLoader.add_constructor("!vault", lambda loader, node: Vaulted())
_VarsLoader.add_constructor("!unsafe", _construct_unsafe)

_VARS_EXTENSIONS = (".yml", ".yaml", ".json")


class VarsDirs:
    """group_vars/ and host_vars/ beside an inventory file, found as Ansible's host_group_vars plugin
    finds them: `<name>` (a file, or a directory whose files count in name order, subdirectories
    included), else the first of `<name>.yml`, `<name>.yaml`, `<name>.json`; in a directory, files with
    one of those extensions or none, hidden and `~` backups skipped. Read on first use, per group or host."""

    def __init__(self, inventory_path: str):
        self.source = inventory_path
        self.basedir = os.path.realpath(os.path.dirname(os.path.abspath(inventory_path)))
        self._listing: dict[str, set[str] | None] = {}
        self._cache: dict[tuple[str, str], dict[str, Any]] = {}

    def group(self, name: str) -> dict[str, Any]:
        return self._vars("group_vars", name)

    def host(self, name: str) -> dict[str, Any]:
        return self._vars("host_vars", name)

    def _vars(self, subdir: str, name: str) -> dict[str, Any]:
        key = (subdir, name)
        if key not in self._cache:
            merged: dict[str, Any] = {}
            for found in self._files(subdir, name):
                merged.update(self._load(found))
            self._cache[key] = merged
        return self._cache[key]

    def _entries(self, subdir: str) -> set[str] | None:
        if subdir not in self._listing:
            path = os.path.join(self.basedir, subdir)
            try:
                self._listing[subdir] = set(os.listdir(path)) if os.path.isdir(path) else None
            except OSError as exc:
                raise UsageError(f"ansible inventory {self.source}: {path}: cannot read: {exc.strerror}") from None
        return self._listing[subdir]

    def _files(self, subdir: str, name: str) -> list[str]:
        entries = self._entries(subdir)
        # Ansible skips names starting with `/`; a name with `/` or `..` would leave the directory.
        if not entries or not name or "/" in name or "\0" in name or name in (".", ".."):
            return []
        for extension in ("",) + _VARS_EXTENSIONS:
            if name + extension in entries:
                full = os.path.join(self.basedir, subdir, name + extension)
                if os.path.isdir(full):
                    return self._dir_files(full, 0)
                return [full] if os.path.isfile(full) else []
        return []

    def _dir_files(self, path: str, depth: int) -> list[str]:
        if depth > MAX_VARS_DEPTH:
            raise UsageError(f"ansible inventory {self.source}: {path}: directories nested too deeply")
        try:
            names = sorted(os.listdir(path))
        except OSError as exc:
            raise UsageError(f"ansible inventory {self.source}: {path}: cannot read: {exc.strerror}") from None
        found = []
        for name in names:
            if name.startswith(".") or name.endswith("~"):
                continue
            extension = os.path.splitext(name)[1]
            full = os.path.join(path, name)
            if os.path.isdir(full) and not extension:
                found += self._dir_files(full, depth + 1)
            elif os.path.isfile(full) and (not extension or extension in _VARS_EXTENSIONS):
                found.append(full)
        return found

    def _load(self, path: str) -> dict[str, Any]:
        where = f"ansible inventory {self.source}: {path}"
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(MAX_VARS_BYTES + 1)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{where}: cannot read: {exc}") from None
        if len(text) > MAX_VARS_BYTES:
            raise UsageError(f"{where}: larger than {MAX_VARS_BYTES} bytes")
        if text.lstrip().startswith("$ANSIBLE_VAULT;"):
            raise UsageError(f"{where}: is vault-encrypted: the built-in inventory reader cannot decrypt it "
                             "(install ansible-core: the suite then reads inventories through ansible-inventory, "
                             "with your vault password)")
        try:
            data = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, Loader=_VarsLoader)
        except (json.JSONDecodeError, yaml.YAMLError):
            try:  # JSON that is no JSON may still be YAML, as Ansible reads it
                data = yaml.load(text, Loader=_VarsLoader)
            except yaml.YAMLError as exc:
                raise UsageError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
            except RecursionError:
                raise UsageError(f"{where}: nested too deeply") from None
            except ValueError as exc:
                raise UsageError(f"{where}: cannot read: {exc}") from None
        except RecursionError:
            raise UsageError(f"{where}: nested too deeply") from None
        except ValueError as exc:  # a number too long for int()
            raise UsageError(f"{where}: cannot read: {exc}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise UsageError(f"{where}: expected variables (a mapping), got {type(data).__name__}")
        return {str(k): (Vaulted(path) if isinstance(v, Vaulted) else v) for k, v in data.items()}


def _looks_like_ini(text: str) -> bool:
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") or line == "---":
            return line.startswith("[")
        # YAML's first meaningful line is `key:`; an INI host line is a name with optional k=v.
        return not re.match(r"^[^\s=]+:\s*(#.*)?$", line) and not line.startswith(("-", "{"))
    return False


_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::([0-9]+))?\]")


def _range_items(match: re.Match[str]) -> tuple[int, str]:
    """How many items one `[start:end:step]` gives, and whether Ansible expands it at all."""
    start, end, step = match.group(1), match.group(2), int(match.group(3) or 1)
    if step < 1:
        raise ValueError(f"range step {step} must be at least 1")
    if start.isdigit() and end.isdigit():
        first, last = int(start), int(end)
    elif len(start) == 1 and len(end) == 1:
        first, last = ord(start), ord(end)
    else:
        return 1, "none"  # not a range Ansible expands: the name is taken as it is
    # Arithmetic, not len(range(...)): a range past sys.maxsize is still counted.
    return max(0, (last - first) // step + 1), "range"


def range_size(name: str) -> int:
    """How many names `expand_range(name)` gives, computed without expanding (ValueError: unsupported)."""
    total = 1
    for _ in range(MAX_RANGES + 1):
        match = _RANGE.search(name)
        if not match:
            return total
        count, kind = _range_items(match)
        if kind == "none":
            return total
        head, tail = name[:match.start()], name[match.end():]
        # Only the item changes from one expansion to the next; if it could become part of another
        # range (`[[1:2]:3]`), the names differ in shape and a product would miscount: refused.
        for placeholder in ("0", "a"):
            probe = head + placeholder + tail
            if any(m.start() <= len(head) < m.end() for m in _RANGE.finditer(probe)):
                raise ValueError("nested ranges are not supported")
        total *= count
        if total == 0 or total > MAX_HOSTS:  # over the limit: no need to read the rest of the name
            return total
        name = head + "0" + tail
    # Expansion recurses once per range, and each search rescans the name.
    raise ValueError(f"more than {MAX_RANGES} ranges in one name")


def expand_range(name: str) -> list[str]:
    """`mail[01:03].example` -> mail01.example, mail02.example, mail03.example (also [a:c], [1:9:2])."""
    match = _RANGE.search(name)
    if not match:
        return [name]
    start, end, step = match.group(1), match.group(2), int(match.group(3) or 1)
    head, tail = name[:match.start()], name[match.end():]
    if start.isdigit() and end.isdigit():
        width = len(start) if start.startswith("0") else 0
        items = [str(i).zfill(width) for i in range(int(start), int(end) + 1, step)]
    elif len(start) == 1 and len(end) == 1:
        items = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    else:
        return [name]
    return [expanded for item in items for expanded in expand_range(head + item + tail)]


def _ini_value(value: str) -> Any:
    try:
        return yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        return value


def _from_ini(text: str, path: str) -> Inventory:
    inv = Inventory(path)
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            header = line.strip("[]").strip()
            section, _, kind = header.partition(":")
            kind = kind or "hosts"
            if kind not in ("hosts", "vars", "children"):
                raise UsageError(f"ansible inventory {path}:{number}: unknown section kind [{header}]")
            inv.group(section)
            if section != "all" and section not in inv.groups["all"]["children"]:
                inv.groups["all"]["children"].append(section)
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise UsageError(f"ansible inventory {path}:{number}: {exc}") from None
        if not words:
            continue
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise UsageError(f"ansible inventory {path}:{number}: expected key=value in [{section}:vars]")
            inv.groups[section]["vars"][key.strip()] = _ini_value(value.strip())
        elif kind == "children":
            child = words[0]
            inv.group(child)
            if child not in inv.groups[section]["children"]:
                inv.groups[section]["children"].append(child)
        else:
            variables = {}
            for word in words[1:]:
                key, sep, value = word.partition("=")
                if not sep:
                    raise UsageError(f"ansible inventory {path}:{number}: expected key=value after the host name, "
                                     f"got {word!r}")
                variables[key] = _ini_value(value)
            for host in inv.expand(words[0]):
                inv.add_host(section, host, variables)
    _fix_ungrouped(inv)
    return inv


def _fix_ungrouped(inv: Inventory) -> None:
    if "ungrouped" not in inv.groups["all"]["children"]:
        inv.groups["all"]["children"].append("ungrouped")


def _from_yaml(data: dict[str, Any], path: str) -> Inventory:
    inv = Inventory(path)
    walked: set[tuple[str, int]] = set()

    def walk(name: str, body: Any, parent: str | None) -> None:
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise UsageError(f"ansible inventory {path}: group {name!r} must be a mapping (hosts, children, vars)")
        inv.group(name)
        if parent is not None and name not in inv.groups[parent]["children"]:
            inv.groups[parent]["children"].append(name)
        # A YAML alias can put one group body under many parents: read it once, or nested aliases
        # make the walk exponential.
        if (name, id(body)) in walked:
            return
        walked.add((name, id(body)))
        hosts = body.get("hosts") or {}
        if isinstance(hosts, list):
            if not all(isinstance(h, (str, int)) and not isinstance(h, bool) for h in hosts):
                raise UsageError(f"ansible inventory {path}: {name}.hosts must list host names")
            hosts = {h: None for h in hosts}
        if not isinstance(hosts, dict):
            raise UsageError(f"ansible inventory {path}: {name}.hosts must be a mapping of host names")
        for host, variables in hosts.items():
            if variables is not None and not isinstance(variables, dict):
                raise UsageError(f"ansible inventory {path}: {name}.hosts.{host} must be a mapping of variables")
            for expanded in inv.expand(str(host)):
                inv.add_host(name, expanded, variables or {})
        variables = body.get("vars") or {}
        if not isinstance(variables, dict):
            raise UsageError(f"ansible inventory {path}: {name}.vars must be a mapping")
        inv.groups[name]["vars"].update(variables)
        children = body.get("children") or {}
        if isinstance(children, list):
            if not all(isinstance(c, str) for c in children):
                raise UsageError(f"ansible inventory {path}: {name}.children must list group names")
            children = {c: None for c in children}
        if not isinstance(children, dict):
            raise UsageError(f"ansible inventory {path}: {name}.children must be a mapping of groups")
        for child, child_body in children.items():
            walk(str(child), child_body, name)

    for name, body in data.items():
        walk(str(name), body, None if name == "all" else "all")
    _fix_ungrouped(inv)
    return inv


def _from_json(data: Any, path: str) -> Inventory:
    if not isinstance(data, dict):
        raise UsageError(f"ansible inventory {path}: expected a JSON object (ansible-inventory --list)")
    inv = Inventory(path)
    hostvars = data.get("_meta", {}).get("hostvars", {}) if isinstance(data.get("_meta"), dict) else {}
    if not isinstance(hostvars, dict) or not all(isinstance(v, dict) or v is None for v in hostvars.values()):
        raise UsageError(f"ansible inventory {path}: _meta.hostvars must map host names to objects")
    for name, body in data.items():
        if name == "_meta":
            continue
        if isinstance(body, list):  # the old script format: group -> [hosts]
            body = {"hosts": body}
        if not isinstance(body, dict):
            raise UsageError(f"ansible inventory {path}: group {name!r} must be an object")
        hosts, variables, children = body.get("hosts") or [], body.get("vars") or {}, body.get("children") or []
        if not isinstance(hosts, list) or not all(isinstance(h, (str, int)) and not isinstance(h, bool)
                                                  for h in hosts):
            raise UsageError(f"ansible inventory {path}: {name}.hosts must be a list of host names")
        if not isinstance(variables, dict):
            raise UsageError(f"ansible inventory {path}: {name}.vars must be an object")
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            raise UsageError(f"ansible inventory {path}: {name}.children must be a list of group names")
        inv.group(name)
        if name != "all" and name not in inv.groups["all"]["children"]:
            inv.groups["all"]["children"].append(name)
        for host in hosts:
            inv.add_host(name, str(host))
        inv.groups[name]["vars"].update(variables)
        for child in children:
            inv.group(str(child))
            if child not in inv.groups[name]["children"]:
                inv.groups[name]["children"].append(str(child))
    for host, variables in hostvars.items():
        inv.hostvars.setdefault(host, {}).update(variables or {})
    if len(inv.hostvars) > MAX_HOSTS:
        raise UsageError(f"ansible inventory {path}: more than {MAX_HOSTS} hosts")
    _fix_ungrouped(inv)
    return inv


# ---------------------------------------------------------------------- to host URLs
def host_url(inv: Inventory, host: str, connection: str | None = None) -> str:
    """The suite's URL for one inventory host (per-host key file and become in the query).

    Every value is checked as what it is (an address, a port, a user name, a path) before it goes
    into the URL: an inventory comes from other people's tools, and a value such as
    `ansible_host: "h:22?ssh_config=/x"` must not add options (a ProxyCommand runs here)."""
    variables = inv.variables(host)

    def bad(key: str, value: Any, what: str) -> UsageError:
        return UsageError(f"ansible inventory {inv.source}: host {_shown(host)}: {key}={_shown(value)}: {what}")

    def readable(*keys: str) -> None:
        """Values the suite uses are never decrypted nor templated: such a value is refused, whichever
        reader gave it (ansible-inventory --list prints inline-vaulted values encrypted and templates as
        they are, too)."""
        for key in keys:
            value = variables.get(key)
            if _is_vaulted(value):
                found = f" (in {value.where})" if isinstance(value, Vaulted) and value.where else ""
                raise UsageError(f"ansible inventory {inv.source}: host {_shown(host)}: {key} is vault-encrypted"
                                 f"{found}: the suite never decrypts a value; set it in plain text (a host "
                                 "name, port or user name is no secret)")
            if isinstance(value, str) and _TEMPLATE.search(value):
                raise UsageError(f"ansible inventory {inv.source}: host {_shown(host)}: {key} is a template "
                                 f"({_shown(value)}): the suite never evaluates templates (ansible-inventory "
                                 "--list leaves them as they are); set the value itself")

    def used(key: str, fallback: str) -> str:
        return key if variables.get(key) is not None else fallback

    readable("ansible_connection")
    kind = variables.get("ansible_connection")
    if kind is not None and (not isinstance(kind, str) or kind not in CONNECTIONS):
        raise bad("ansible_connection", kind, f"not supported (use one of "
                                              f"{', '.join(sorted(k for k in CONNECTIONS if k))})")
    scheme = CONNECTIONS[kind]
    if scheme == "local":
        return "local"
    if connection and scheme in ("ssh", "paramiko"):
        scheme = connection
    readable("ansible_host", used("ansible_port", "ansible_ssh_port"), used("ansible_user", "ansible_ssh_user"),
             used("ansible_ssh_private_key_file", "ansible_private_key_file"), "ansible_become")

    port_key = "ansible_port" if variables.get("ansible_port") is not None else "ansible_ssh_port"
    port = _port(variables.get(port_key))
    if port is False:
        raise bad(port_key, variables.get(port_key), "not a port number (1-65535)")
    if variables.get("ansible_host") is not None:
        address = _address(variables["ansible_host"])
        if address is None:
            raise bad("ansible_host", variables["ansible_host"], "not a host name or IP address")
    else:
        # The inventory name is the address; Ansible also takes `name:port` there.
        address, name_port = _address(host), None
        if address is None:
            split = re.fullmatch(r"(.+):([0-9]{1,5})", host)
            if split:
                address, name_port = _address(split.group(1).removeprefix("[").removesuffix("]")), \
                    _port(split.group(2))
            if address is None or name_port is False:
                raise UsageError(f"ansible inventory {inv.source}: host {_shown(host)}: not a host name or IP "
                                 "address (name:port at most); set ansible_host")
            port = port or name_port

    user_key = "ansible_user" if variables.get("ansible_user") is not None else "ansible_ssh_user"
    user = variables.get(user_key)
    if user is not None and _user(user) is None:
        raise bad(user_key, user, "not a user name (letters, digits, `_.-`, not starting with `-`)")
    netloc = (_user(user) + "@" if user is not None else "") + address + (f":{port}" if port else "")

    query = {}
    key_key = ("ansible_ssh_private_key_file" if variables.get("ansible_ssh_private_key_file") is not None
               else "ansible_private_key_file")
    key_file = variables.get(key_key)
    if key_file is not None:
        if not _path(key_file):
            raise bad(key_key, key_file, "not a file path")
        query["ssh_identity_file"] = os.path.expanduser(key_file)
    become = _flag(variables.get("ansible_become", False))
    if become is None:
        raise bad("ansible_become", variables["ansible_become"], "not true or false")
    if become:
        query["sudo"] = "true"
        readable("ansible_become_user")
        become_user = variables.get("ansible_become_user")
        if become_user is not None and _user(become_user) is None:
            raise bad("ansible_become_user", become_user, "not a user name")
        if become_user is not None and _user(become_user) != "root":
            query["sudo_user"] = _user(become_user)
    # urlencode quotes every value: nothing in it can start another query key.
    return f"{scheme}://{netloc}" + ("?" + urllib.parse.urlencode(query) if query else "")


# ---------------------------------------------------------------------- value checks
# Host names as DNS has them (and `_`, common in internal names); no label starts with `-`.
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
# User names as useradd takes them, and machine accounts' trailing `$`.
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\$?")


def _shown(value: Any) -> str:
    """A value for an error line: quoted, control characters escaped, cut short."""
    text = repr(value) if not isinstance(value, str) or not value.isprintable() or not value else value
    return text if len(text) <= 80 else text[:77] + "..."


def _address(value: Any) -> str | None:
    """The URL host part for a host name or IP address (IPv6 in brackets), else None."""
    if not isinstance(value, str):
        return None
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        ip = None
    if ip is not None:
        return None if "%" in value else (f"[{value}]" if ip.version == 6 else value)
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return None
    return value


def _port(value: Any) -> int | None | bool:
    """None when not given, the port 1-65535, or False when it is no port."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]{1,5}", value.strip()):
            return False
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= 65535:
        return False
    return value


def _user(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):  # INI values are read as YAML: 1000 is an int
        value = str(value)
    return value if isinstance(value, str) and _USER.fullmatch(value) else None


def _path(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) < 4096 and value.isprintable() and not value.startswith("-")


def _flag(value: Any) -> bool | None:
    """Ansible's booleans (true/yes/on/1 and their opposites); None for anything else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in ("1", "true", "yes", "on", "y", "t"):
        return True
    if text in ("0", "false", "no", "off", "n", "f", ""):
        return False
    return None


@dataclasses.dataclass(frozen=True)
class ResolvedHost:
    """A host a run checks: its URL, and where it came from an inventory, its name and groups there (the
    playbook's `hosts:` and the roll-up's groups read them)."""
    url: str
    inventory_name: str | None = None
    groups: tuple[str, ...] = ()


def inventory_hosts(path: str, pattern: str = "all", connection: str | None = None,
                    reader: str = "builtin") -> list[ResolvedHost]:
    inv = load_inventory(path, reader)
    if not inv.all_hosts():
        raise UsageError(f"ansible inventory {path}: has no hosts")
    hosts = inv.select(pattern)
    if not hosts:
        raise UsageError(f"ansible inventory {path}: no host matches {pattern!r}")
    return [ResolvedHost(host_url(inv, host, connection), host, inv.group_names(host)) for host in hosts]


def inventory_urls(path: str, pattern: str = "all", connection: str | None = None,
                   reader: str = "builtin") -> list[str]:
    return [h.url for h in inventory_hosts(path, pattern, connection, reader)]


def resolve_host_specs(hosts: str | None, ansible_inventory: str | None, connection: str | None = None,
                       reader: str = "auto") -> list[str]:
    """The host URLs a run checks, in order (`resolve_hosts`)."""
    return [h.url for h in resolve_hosts(hosts, ansible_inventory, connection, reader)]


def resolve_hosts(hosts: str | None, ansible_inventory: str | None, connection: str | None = None,
                  reader: str = "auto") -> list[ResolvedHost]:
    """The hosts a run checks, in order, from --hosts / --ansible-inventory, the inventory read by
    `reader` (--inventory-reader: auto, builtin, ansible; see the module doc)."""
    default_scheme = connection or "paramiko"
    if hosts is None:
        if ansible_inventory:
            return inventory_hosts(ansible_inventory, "all", connection, reader)
        return [ResolvedHost("local")]
    from postfix_compliance.backends import with_scheme  # imports testinfra: only where --hosts is given
    specs = [s.strip() for s in hosts.split(",") if s.strip()]
    if not specs:
        raise UsageError(f"--hosts={hosts!r} names no host: give host URLs (e.g. --hosts=ssh://root@mail1), "
                         "or leave --hosts out to check this machine")
    out: list[ResolvedHost] = []
    for spec in specs:
        if spec.startswith("ansible://"):
            pattern = spec[len("ansible://"):] or "all"
            path = ansible_inventory or os.environ.get("ANSIBLE_INVENTORY") or DEFAULT_INVENTORY
            out += inventory_hosts(path, pattern, connection, reader)
        else:
            out.append(ResolvedHost(with_scheme(spec, default_scheme)))
    return out
