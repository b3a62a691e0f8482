"""Inventories as Ansible reads them: group_vars/ and host_vars/ beside the inventory.

The same layout (an INI inventory with a child group, group_vars/all.yml, group_vars/mail.yml holding
ansible_user, host_vars/mail2.yml holding ansible_port, a parent group's and a child group's vars) is
resolved by the built-in reader and through `ansible-inventory --list`: both give the same hosts, users
and ports. What the built-in reader cannot follow (a vault-encrypted file, an inline `!vault` value, a
template) is one ERROR line and exit status 4, and a hostile value in group_vars is refused on both
paths, before anything is contacted. `ansible-inventory` is the venv's (ansible is a dev dependency).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
import time

import pytest

from postfix_compliance import inventory as inventory_module
from postfix_compliance.errors import UsageError
from selftest import assert_one_error_line

INVENTORY = """\
[mail]
mail1 ansible_host=127.0.0.1
mail2 ansible_host=127.0.0.2

[relay]
relay1 ansible_host=127.0.0.3

[edge:children]
relay

[mail:vars]
ansible_user=inifile
"""

VARS = {
    "group_vars/all.yml": "ansible_user: scan\nansible_port: 2200\n",
    "group_vars/mail.yml": "ansible_user: mailadm\n",
    "host_vars/mail2.yml": "ansible_port: 2222\n",
    "group_vars/edge.yml": "ansible_user: edgeadm\nansible_port: 2300\n",  # the parent group
    "group_vars/relay.yml": "ansible_user: relayadm\n",  # the child group: its user wins, the port is edge's
}

# What Ansible makes of it: group_vars/mail.yml over [mail:vars] and all.yml, host_vars over the group,
# the child group's user over its parent's, the parent's port over all's.
EXPECTED = ["ssh://mailadm@127.0.0.1:2200", "ssh://mailadm@127.0.0.2:2222", "ssh://relayadm@127.0.0.3:2300"]

# `ansible-vault encrypt` of "ansible_user: mailadm\n", and `encrypt_string mailadm`, password "pw".
VAULT_FILE = """\
$ANSIBLE_VAULT;1.1;AES256
65313563663066646135306534623864376530663563396466613861653730306235376665363661
3865633336336563336363353233383531343930386365340a313064316534623566363433633939
37333731316138613962633237336337316635386530353837393963336564326631623365353538
3231303031623666610a646461393030333766373062633362613036303764386162616337653631
39643631323766626230303534346663333633643865623364373663356566646162
"""
VAULT_INLINE = """\
ansible_user: !vault |
          $ANSIBLE_VAULT;1.1;AES256
          31376163356162653632643036666430623534373138646633313031393666396334363464336461
          6131363835373865343862333932613630663035343563390a333864643163653864303731626339
          36393333373739343737366132323261383538653161633866663432656136353835656131353539
          6638346235316235360a353239326233633036393930323264663032656630633432653064643137
          3333
"""

READERS = ["builtin", "ansible"]


def _layout(root, inventory: str = INVENTORY, files: dict[str, str] | None = None) -> str:
    for name, text in {**VARS, **(files or {})}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "inventory.ini").write_text(inventory)
    return str(root / "inventory.ini")


def _specs(inventory: str, reader: str, hosts: str | None = None) -> list[str]:
    return sorted(inventory_module.resolve_host_specs(hosts, inventory, reader=reader))


@pytest.fixture(autouse=True)
def _ansible_inventory_installed():
    # Both paths are the point of this file: ansible-core comes with the dev dependencies.
    beside = os.path.join(os.path.dirname(sys.executable), "ansible-inventory")
    assert os.access(beside, os.X_OK) or shutil.which("ansible-inventory"), \
        "ansible-inventory is not installed beside this Python nor on PATH"


@pytest.fixture
def fleet(tmp_path):
    return _layout(tmp_path)


# ---------------------------------------------------------------------- same hosts, users, ports
@pytest.mark.parametrize("reader", READERS + ["auto"])
def test_group_vars_and_host_vars_set_user_and_port(fleet, reader):
    assert _specs(fleet, reader) == EXPECTED


def test_both_readers_agree_on_patterns(fleet):
    for pattern in ("ansible://mail", "ansible://edge", "ansible://mail:!mail1", "ansible://relay1:mail2"):
        assert _specs(fleet, "builtin", pattern) == _specs(fleet, "ansible", pattern), pattern
    assert _specs(fleet, "builtin", "ansible://edge") == ["ssh://relayadm@127.0.0.3:2300"]


def test_both_readers_agree_on_ansible_precedence(tmp_path):
    """The rest of host_group_vars' rules: a group_vars/<group>/ directory (files in name order,
    subdirectories too; hidden files and ~ backups skipped; the directory wins over <group>.yml), files
    without extension and .json, the inventory file's group vars below group_vars/all, a host's own
    inventory vars below host_vars, a child group (depth 2) over its parent and over a sibling."""
    (tmp_path / "hosts.yml").write_text("""\
all:
  vars:
    ansible_port: 2001
  children:
    mail:
      vars:
        ansible_user: inifile
      hosts:
        mail1:
        mail2:
          ansible_user: hostinv
          ansible_port: 2002
      children:
        mailchild:
          hosts:
            mail3:
    relay:
      hosts:
        relay1: {ansible_host: 10.0.0.5}
        mail3:
""")
    files = {
        "group_vars/all.yml": "ansible_user: allfile\n",
        "group_vars/mail/a.yml": "ansible_port: 2100\n",
        "group_vars/mail/sub/b": "ansible_port: 2101\n",
        "group_vars/mail/.hidden.yml": "ansible_port: 9999\n",
        "group_vars/mail/c.yml~": "ansible_port: 9998\n",
        "group_vars/mail.yml": "ansible_port: 9997\n",
        "group_vars/mailchild.json": '{"ansible_user": "childjson"}\n',
        "group_vars/relay": "ansible_user: relayuser\nansible_port: 2200\n",
        "host_vars/mail2.yaml": "ansible_port: 2003\n",
        "host_vars/mail3": "ansible_become: true\nansible_become_user: postfix\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    inventory = str(tmp_path / "hosts.yml")
    expected = ["ssh://allfile@mail1:2101", "ssh://childjson@mail3:2200?sudo=true&sudo_user=postfix",
                "ssh://hostinv@mail2:2003", "ssh://relayuser@10.0.0.5:2200"]
    assert _specs(inventory, "builtin") == expected
    assert _specs(inventory, "ansible") == expected


def test_the_suite_contacts_the_same_hosts_with_either_reader(suite, fleet):
    """End to end: the node ids of a run carry each host's URL, user and port included."""
    seen = {}
    for reader in READERS:
        run = suite(f"--ansible-inventory={fleet}", f"--inventory-reader={reader}", "--collect-only")
        assert run.exit_status == 0, run.stdout + run.stderr
        seen[reader] = sorted(set(re.findall(r"\[[A-Z]+-[0-9]+-(ssh://[^\]]+)\]", run.stdout)))
    assert seen["builtin"] == seen["ansible"] == EXPECTED


# ---------------------------------------------------------------------- what cannot be followed
@pytest.mark.parametrize("reader", READERS)
def test_a_vault_encrypted_vars_file_is_one_line(suite, tmp_path, reader):
    inventory = _layout(tmp_path, files={"group_vars/mail.yml": VAULT_FILE})
    run = suite(f"--ansible-inventory={inventory}", f"--inventory-reader={reader}", "--collect-only")
    error = assert_one_error_line(run, inventory)
    assert "vault" in error.lower() or "decrypt" in error.lower(), error


@pytest.mark.parametrize("reader", READERS)
def test_an_inline_vault_value_is_one_line(suite, tmp_path, reader):
    inventory = _layout(tmp_path, files={"group_vars/mail.yml": VAULT_INLINE})
    run = suite(f"--ansible-inventory={inventory}", f"--inventory-reader={reader}", "--collect-only")
    assert_one_error_line(run, inventory, "ansible_user is vault-encrypted")


def test_an_inline_vault_value_the_suite_does_not_use_is_no_problem(tmp_path):
    inventory = _layout(tmp_path, files={"group_vars/mail.yml": "ansible_user: mailadm\n" +
                                         VAULT_INLINE.replace("ansible_user", "ansible_become_password")})
    assert _specs(inventory, "builtin") == _specs(inventory, "ansible") == EXPECTED
    # The same in a YAML inventory itself: `!vault` is read, and refused only where the suite needs it.
    vaulted = "\n".join("          " + line for line in VAULT_INLINE.splitlines()[1:])
    (tmp_path / "hosts.yml").write_text("mail:\n  hosts:\n    mail1:\n      ansible_host: 127.0.0.9\n"
                                        f"      ansible_become_password: !vault |\n{vaulted}\n"
                                        f"    mail2:\n      ansible_host: !vault |\n{vaulted}\n")
    for reader in READERS:
        assert _specs(str(tmp_path / "hosts.yml"), reader, "ansible://mail1") == ["ssh://mailadm@127.0.0.9:2200"]
        with pytest.raises(UsageError, match="host mail2: ansible_host is vault-encrypted"):
            _specs(str(tmp_path / "hosts.yml"), reader, "ansible://mail2")


def test_ansible_reads_a_vault_file_with_the_operators_password_beside_the_inventory(tmp_path, monkeypatch):
    """Trust model: an ansible.cfg beside the inventory is the operator's (it is read, as when the
    playbooks run from there); one in the directory the suite was started from is not."""
    inventory = _layout(tmp_path / "site", files={"group_vars/mail.yml": VAULT_FILE})
    (tmp_path / "site" / "vault-password").write_text("pw\n")
    (tmp_path / "site" / "ansible.cfg").write_text("[defaults]\nvault_password_file = vault-password\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "ansible.cfg").write_text("[inventory]\nenable_plugins = host_list\n")  # would fail the INI
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    assert _specs(inventory, "ansible") == EXPECTED
    with pytest.raises(UsageError, match="vault-encrypted: the built-in inventory reader cannot decrypt it"):
        _specs(inventory, "builtin")


def test_a_template_in_group_vars_is_refused_by_the_builtin_reader(suite, tmp_path):
    inventory = _layout(tmp_path, files={"group_vars/mail.yml": "ansible_user: \"{{ lookup('env', 'USER') }}\"\n"})
    run = suite(f"--ansible-inventory={inventory}", "--inventory-reader=builtin", "--collect-only")
    assert_one_error_line(run, inventory, "mail1", "ansible_user is a template")
    with pytest.raises(UsageError, match="ansible_user is a template"):  # ansible-inventory leaves it as it is
        _specs(inventory, "ansible")


def test_the_builtin_limits_hold_before_ansible_expands_anything(tmp_path):
    """ansible-inventory would expand ten million names, or walk 2^40 copies of YAML aliases (the
    built-in reader reads an alias's body once): refused at once, as by the built-in reader."""
    ranges = tmp_path / "hosts.ini"
    ranges.write_text("[mail]\nmail[0:9999999].example.com ansible_host=127.0.0.1\n")
    anchors = ["defs:", "  vars:", "    x:", "     - &a0 {hosts: {mail1: }}"]
    anchors += [f"     - &a{i} {{children: {{l{i}a: *a{i - 1}, l{i}b: *a{i - 1}}}}}" for i in range(1, 40)]
    aliases = tmp_path / "hosts.yml"
    aliases.write_text("\n".join(anchors) + "\nall:\n  children:\n    top: *a39\n")
    for path, expected in ((ranges, "expands to more than 100000 hosts"), (aliases, "YAML aliases repeat more")):
        started = time.monotonic()
        with pytest.raises(UsageError, match=expected):
            inventory_module.inventory_urls(str(path), reader="ansible")
        assert time.monotonic() - started < 5
    assert inventory_module.inventory_urls(str(aliases), reader="builtin") == ["ssh://mail1"]


def test_an_inventory_plugin_configuration_needs_ansible(tmp_path):
    inventory = tmp_path / "aws_ec2.yml"
    inventory.write_text("plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n")
    with pytest.raises(UsageError, match="configuration of the inventory plugin amazon.aws.aws_ec2: only Ansible"):
        inventory_module.inventory_urls(str(inventory), reader="builtin")


# ---------------------------------------------------------------------- hostile values in group_vars
@pytest.fixture
def evil_ssh_config(tmp_path):
    """An ssh config whose ProxyCommand leaves a marker on this machine if anything ever loads it."""
    marker = tmp_path / "proxycommand-ran"
    config = tmp_path / "evil_ssh_config"
    config.write_text(f"Host *\n  ProxyCommand sh -c 'touch {marker}; exit 1'\n  ConnectTimeout 2\n")
    return str(config), marker


HOSTILE = [
    ("group_vars/mail.yml", 'ansible_host: "127.0.0.1:22?ssh_config={evil}"\n', "ansible_host"),
    ("group_vars/all.yml", 'ansible_port: "22?ssh_config={evil}"\n', "ansible_port"),
    ("host_vars/mail1.yml", 'ansible_user: "-oProxyCommand=sh {evil}"\n', "ansible_user"),
    # group_vars/mail/ (a directory) is read instead of group_vars/mail.yml, as Ansible does
    ("group_vars/mail/x.yml", 'ansible_ssh_private_key_file: "{evil}\\nProxyCommand x"\n',
     "ansible_ssh_private_key_file"),
]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("name, text, key", HOSTILE, ids=["host", "port", "user", "key_file"])
def test_a_hostile_value_in_vars_files_is_refused(suite, tmp_path, evil_ssh_config, reader, name, text, key):
    config, marker = evil_ssh_config
    # Without the vars files, mail1 is a plain name: what refuses the run is the value from them.
    inventory = _layout(tmp_path, inventory="[mail]\nmail1\n", files={name: text.format(evil=config)})
    run = suite(f"--ansible-inventory={inventory}", f"--inventory-reader={reader}",
                f"--known-hosts={tmp_path / 'known_hosts'}", "--connect-timeout=3", "--no-flush", "--drain-timeout=1")
    assert not marker.exists(), "the injected ssh config's ProxyCommand ran on the scanning machine"
    assert_one_error_line(run, inventory, "mail1", key)


# ---------------------------------------------------------------------- how ansible-inventory is run
def test_ansible_inventory_is_run_as_data_in_the_inventorys_directory(tmp_path, monkeypatch):
    """A path starting with `-` is no option; no shell; cwd is the inventory's directory; the
    operator's ANSIBLE_INVENTORY does not replace the file; its output is checked like any inventory."""
    record = tmp_path / "argv"
    stub = tmp_path / "bin" / "ansible-inventory"
    stub.parent.mkdir()
    stub.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    f"open({str(record)!r}, 'w').write(json.dumps([sys.argv[1:], os.getcwd(), "
                    "os.environ.get('ANSIBLE_INVENTORY'), os.environ.get('ANSIBLE_INVENTORY_UNPARSED_FAILED')]))\n"
                    "print(json.dumps({'mail': {'hosts': ['mail1']}, '_meta': {'hostvars': {'mail1': "
                    "{'ansible_host': '10.0.0.1', 'ansible_user': 'scan;touch x'}}}}))\n")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    site = tmp_path / "site"
    site.mkdir()
    (site / "-i").write_text("[mail]\nmail1\n")
    monkeypatch.chdir(site)
    monkeypatch.setattr("postfix_compliance.inventory.ansible_inventory_program", lambda: str(stub))
    monkeypatch.setenv("ANSIBLE_INVENTORY", "/etc/elsewhere")
    with pytest.raises(UsageError, match=r"ansible_user=scan;touch x: not a user name"):
        inventory_module.resolve_host_specs(None, "-i", reader="ansible")
    argv, cwd, inventory_env, unparsed_failed = json.loads(record.read_text())
    assert argv == [f"--inventory={site / '-i'}", "--list"]
    assert cwd == str(site) and inventory_env is None and unparsed_failed == "True"
