"""The host list: `--hosts` URLs and Ansible inventories, resolved to the suite's host URLs.

- no `--hosts` and no `--ansible-inventory`: this machine (`local`);
- `--hosts=URL,URL`: those (a bare name takes testinfra's `--connection`, else paramiko);
  an empty list (`--hosts=`, `--hosts=,`) is a usage error, never "no host, all green";
- `--ansible-inventory FILE` alone: every host in it; `--hosts=ansible://PATTERN` picks hosts by
  group or name (`all`, `mail*`, `web:db`, `mail:!mail3`, `mail:&rhel9`).

Inventory hosts become the suite's own URLs (`ssh://user@address:port` by default, as Ansible
connects with OpenSSH), so they get the same host key checks and connection reuse as any
other host; ansible_user, ansible_host, ansible_port, ansible_ssh_private_key_file,
ansible_become and ansible_become_user are honoured. Static INI, YAML and JSON inventories
(the `ansible-inventory --list` format) are read without Ansible; an executable inventory
script is run with `--list`. Ansible itself is never needed.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import os
import re
import shlex
import subprocess
import urllib.parse
from typing import Any

import yaml

from postfix_compliance.errors import UsageError

DEFAULT_INVENTORY = "/etc/ansible/hosts"

# ansible_connection -> the suite's URL scheme (None: the default, OpenSSH).
CONNECTIONS = {None: "ssh", "ssh": "ssh", "smart": "ssh", "paramiko": "paramiko", "paramiko_ssh": "paramiko",
               "local": "local", "docker": "docker", "community.docker.docker": "docker",
               "podman": "podman", "containers.podman.podman": "podman", "lxc": "lxc", "lxd": "lxc"}


class Inventory:
    """Groups (name -> hosts, children, vars) and hosts (name -> vars), as Ansible models them."""

    def __init__(self, source: str):
        self.source = source
        self.groups: dict[str, dict[str, Any]] = {}
        self.hostvars: dict[str, dict[str, Any]] = {}
        self.group("all")
        self.group("ungrouped")

    def group(self, name: str) -> dict[str, Any]:
        return self.groups.setdefault(name, {"hosts": [], "children": [], "vars": {}})

    def add_host(self, group: str, host: str, variables: dict[str, Any] | None = None) -> None:
        members = self.group(group)["hosts"]
        if host not in members:
            members.append(host)
        self.hostvars.setdefault(host, {}).update(variables or {})

    # ------------------------------------------------------------------ queries
    def members(self, group: str, seen: set[str] | None = None) -> list[str]:
        seen = seen if seen is not None else set()
        if group in seen or group not in self.groups:
            return []
        seen.add(group)
        hosts = list(self.groups[group]["hosts"])
        for child in self.groups[group]["children"]:
            hosts += [h for h in self.members(child, seen) if h not in hosts]
        if group == "all":
            hosts += [h for h in self.hostvars if h not in hosts]
        return hosts

    def all_hosts(self) -> list[str]:
        return self.members("all")

    def _depth(self, group: str) -> int:
        if group == "all":
            return 0
        parents = [g for g, d in self.groups.items() if group in d["children"]]
        return 1 + max((self._depth(p) for p in parents if p != group), default=0)

    def variables(self, host: str) -> dict[str, Any]:
        """all's vars < parent groups' < child groups' < the host's own, as Ansible merges them."""
        merged: dict[str, Any] = {}
        containing = [g for g in self.groups if host in self.members(g)]
        for group in sorted(containing, key=lambda g: (self._depth(g), g)):
            merged.update(self.groups[group]["vars"])
        merged.update(self.hostvars.get(host, {}))
        return merged

    def select(self, pattern: str) -> list[str]:
        """Ansible host patterns: `a:b` (or `a,b`) union, `:!x` exclusion, `:&x` intersection."""
        selected: list[str] = []
        for part in (p for p in re.split(r"[:,]", pattern) if p):
            if part.startswith("!"):
                drop = set(self._one(part[1:]))
                selected = [h for h in selected if h not in drop]
            elif part.startswith("&"):
                keep = set(self._one(part[1:]))
                selected = [h for h in selected if h in keep]
            else:
                selected += [h for h in self._one(part) if h not in selected]
        return selected

    def _one(self, pattern: str) -> list[str]:
        if pattern in ("all", "*"):
            return self.all_hosts()
        hosts: list[str] = []
        for group in self.groups:
            if fnmatch.fnmatchcase(group, pattern):
                hosts += [h for h in self.members(group) if h not in hosts]
        hosts += [h for h in self.all_hosts() if fnmatch.fnmatchcase(h, pattern) and h not in hosts]
        return hosts


# ---------------------------------------------------------------------- reading
def load_inventory(path: str) -> Inventory:
    """Read an inventory file; any problem is one UsageError line naming the file."""
    where = f"ansible inventory {path}"
    if not os.path.exists(path):
        raise UsageError(f"{where}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{where}: is a directory (give one file, e.g. `ansible-inventory --list > hosts.json`)")
    if os.access(path, os.X_OK) and not path.endswith((".ini", ".yml", ".yaml", ".json", ".cfg")):
        try:
            proc = subprocess.run([path, "--list"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UsageError(f"{where}: inventory script failed: {exc}") from None
        if proc.returncode != 0:
            raise UsageError(f"{where}: inventory script exited {proc.returncode}: "
                             f"{(proc.stderr.strip().splitlines() or [''])[-1]}")
        text = proc.stdout
    else:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{where}: cannot read: {exc}") from None
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            return _from_json(json.loads(text), path)
        if _looks_like_ini(text):
            return _from_ini(text, path)
        data = yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not JSON: {exc.msg} at line {exc.lineno}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return Inventory(path)
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected groups at the top level (e.g. `all: {{hosts: ...}}`)")
    return _from_yaml(data, path)


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
            for host in expand_range(words[0]):
                inv.add_host(section, host, variables)
    _fix_ungrouped(inv)
    return inv


def _fix_ungrouped(inv: Inventory) -> None:
    if "ungrouped" not in inv.groups["all"]["children"]:
        inv.groups["all"]["children"].append("ungrouped")


def _from_yaml(data: dict[str, Any], path: str) -> Inventory:
    inv = Inventory(path)

    def walk(name: str, body: Any, parent: str | None) -> None:
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise UsageError(f"ansible inventory {path}: group {name!r} must be a mapping (hosts, children, vars)")
        inv.group(name)
        if parent is not None and name not in inv.groups[parent]["children"]:
            inv.groups[parent]["children"].append(name)
        hosts = body.get("hosts") or {}
        if isinstance(hosts, list):
            hosts = {h: None for h in hosts}
        if not isinstance(hosts, dict):
            raise UsageError(f"ansible inventory {path}: {name}.hosts must be a mapping of host names")
        for host, variables in hosts.items():
            if variables is not None and not isinstance(variables, dict):
                raise UsageError(f"ansible inventory {path}: {name}.hosts.{host} must be a mapping of variables")
            for expanded in expand_range(str(host)):
                inv.add_host(name, expanded, variables or {})
        variables = body.get("vars") or {}
        if not isinstance(variables, dict):
            raise UsageError(f"ansible inventory {path}: {name}.vars must be a mapping")
        inv.groups[name]["vars"].update(variables)
        children = body.get("children") or {}
        if isinstance(children, list):
            children = {c: None for c in children}
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
    for name, body in data.items():
        if name == "_meta":
            continue
        if isinstance(body, list):  # the old script format: group -> [hosts]
            body = {"hosts": body}
        if not isinstance(body, dict):
            raise UsageError(f"ansible inventory {path}: group {name!r} must be an object")
        inv.group(name)
        if name != "all" and name not in inv.groups["all"]["children"]:
            inv.groups["all"]["children"].append(name)
        for host in body.get("hosts", []) or []:
            inv.add_host(name, str(host))
        inv.groups[name]["vars"].update(body.get("vars", {}) or {})
        for child in body.get("children", []) or []:
            inv.group(str(child))
            if child not in inv.groups[name]["children"]:
                inv.groups[name]["children"].append(str(child))
    for host, variables in hostvars.items():
        inv.hostvars.setdefault(host, {}).update(variables or {})
    _fix_ungrouped(inv)
    return inv


# ---------------------------------------------------------------------- to host URLs
def host_url(inv: Inventory, host: str, connection: str | None = None) -> str:
    """The suite's URL for one inventory host (per-host key file and become in the query)."""
    variables = inv.variables(host)
    for key in ("ansible_host", "ansible_user", "ansible_port", "ansible_connection",
                "ansible_ssh_private_key_file", "ansible_private_key_file"):
        value = variables.get(key)
        if isinstance(value, str) and "{{" in value:
            raise UsageError(f"ansible inventory {inv.source}: {host}: {key} is a template ({value!r}); "
                             "templates need Ansible: give `ansible-inventory --list` output instead")
    kind = variables.get("ansible_connection")
    if kind not in CONNECTIONS:
        raise UsageError(f"ansible inventory {inv.source}: {host}: ansible_connection={kind} is not supported "
                         f"(use one of {', '.join(sorted(k for k in CONNECTIONS if k))})")
    scheme = CONNECTIONS[kind]
    if scheme == "local":
        return "local"
    if connection and scheme in ("ssh", "paramiko"):
        scheme = connection
    address = str(variables.get("ansible_host") or host)
    try:
        if ipaddress.ip_address(address).version == 6:
            address = f"[{address}]"
    except ValueError:
        pass
    user = variables.get("ansible_user") or variables.get("ansible_ssh_user")
    netloc = (urllib.parse.quote(str(user), safe="") + "@" if user else "") + address
    port = variables.get("ansible_port") or variables.get("ansible_ssh_port")
    if port:
        netloc += f":{int(port)}"
    query = {}
    key_file = variables.get("ansible_ssh_private_key_file") or variables.get("ansible_private_key_file")
    if key_file:
        query["ssh_identity_file"] = os.path.expanduser(str(key_file))
    if _truthy(variables.get("ansible_become")):
        query["sudo"] = "true"
        if variables.get("ansible_become_user") and variables["ansible_become_user"] != "root":
            query["sudo_user"] = str(variables["ansible_become_user"])
    url = f"{scheme}://{netloc}"
    return url + ("?" + urllib.parse.urlencode(query) if query else "")


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")


def inventory_urls(path: str, pattern: str = "all", connection: str | None = None) -> list[str]:
    inv = load_inventory(path)
    if not inv.all_hosts():
        raise UsageError(f"ansible inventory {path}: has no hosts")
    hosts = inv.select(pattern)
    if not hosts:
        raise UsageError(f"ansible inventory {path}: no host matches {pattern!r}")
    return [host_url(inv, host, connection) for host in hosts]


def resolve_host_specs(hosts: str | None, ansible_inventory: str | None, connection: str | None = None) -> list[str]:
    """The host URLs a run checks, in order, from --hosts / --ansible-inventory (see the module doc)."""
    default_scheme = connection or "paramiko"
    if hosts is None:
        if ansible_inventory:
            return inventory_urls(ansible_inventory, "all", connection)
        return ["local"]
    specs = [s.strip() for s in hosts.split(",") if s.strip()]
    if not specs:
        raise UsageError(f"--hosts={hosts!r} names no host: give host URLs (e.g. --hosts=ssh://root@mail1), "
                         "or leave --hosts out to check this machine")
    out: list[str] = []
    for spec in specs:
        if spec.startswith("ansible://"):
            pattern = spec[len("ansible://"):] or "all"
            path = ansible_inventory or os.environ.get("ANSIBLE_INVENTORY") or DEFAULT_INVENTORY
            out += inventory_urls(path, pattern, connection)
        elif spec in ("local", "local://") or "://" in spec:
            out.append(spec)
        else:
            out.append(f"{default_scheme}://{spec}")
    return out
