"""Host patterns (`--hosts=ansible://PATTERN`) select exactly what Ansible selects.

One inventory, a table of patterns: each is asked of Ansible itself (`ansible PATTERN --list-hosts`, the
venv's ansible-core) and of the suite, with both inventory readers (builtin, and ansible-inventory's JSON).
Written left to right, `mail:!mail3:web` would keep mail3 (it is in web); Ansible applies inclusions, then
intersections, then exclusions, and so must the suite: a scan must not cover a host the operator excluded.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import sys

import pytest

from postfix_compliance.errors import UsageError
from postfix_compliance.inventory import inventory_urls, load_inventory

INVENTORY = """\
[mail]
mail1
mail2
mail3

[web]
web1
mail3

[db]
db[1:3]

[eu:children]
mail
db

[eu]
edge1
"""

PATTERNS = [
    "all", "*", "mail", "mail:web", "web:mail", "mail:!mail3:web", "!mail3:mail:web", "mail:&web", "web:&mail",
    "~mail[12]", "~(web|db)", "mail[0]", "mail[-1]", "mail[1:]", "mail[0:1]", "db[1:2]", "eu", "eu[3]",
    "mail*", "*1", "eu:!web", "!mail", "m*:&eu", "mail2", "mail2:db1", "&web", "nomatch", "mail:nomatch",
    "eu:&mail:!mail1", "*[0]",
]


def _ansible() -> str:
    program = os.path.join(os.path.dirname(sys.executable), "ansible")
    if not os.path.exists(program):
        pytest.skip("ansible is not installed in this venv (scripts/bootstrap.sh --dev installs it)")
    return program


def _ansible_hosts(program: str, inventory: str, pattern: str) -> list[str]:
    proc = subprocess.run([program, pattern, f"--inventory={inventory}", "--list-hosts"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "ANSIBLE_HOST_PATTERN_MISMATCH": "ignore",
                                                      "ANSIBLE_LOCALHOST_WARNING": "False"})
    assert proc.returncode == 0, (pattern, proc.stderr)
    match = re.search(r"hosts \((\d+)\):\n((?:\s+\S+\n?)*)", proc.stdout)
    assert match, (pattern, proc.stdout)
    hosts = match.group(2).split()
    assert len(hosts) == int(match.group(1))
    return hosts


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    program = _ansible()
    path = str(tmp_path_factory.mktemp("patterns") / "hosts.ini")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(INVENTORY)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = dict(zip(PATTERNS, pool.map(lambda p: _ansible_hosts(program, path, p), PATTERNS)))
    return path, answers


@pytest.mark.parametrize("reader", ["builtin", "ansible"])
def test_every_pattern_selects_what_ansible_selects(table, reader):
    path, answers = table
    inventory = load_inventory(path, reader)
    mine = {pattern: inventory.select(pattern) for pattern in PATTERNS}
    assert mine == answers
    assert answers["mail:!mail3:web"] == ["mail1", "mail2", "web1"]  # the example in the issue
    assert answers["~mail[12]"] == ["mail1", "mail2"] and answers["mail[0]"] == ["mail1"]


def test_a_pattern_that_selects_nothing_is_one_error(table):
    path, _ = table
    with pytest.raises(UsageError, match="no host matches 'nomatch'"):
        inventory_urls(path, "nomatch")
    with pytest.raises(UsageError, match=r"no hosts matched the subscripted pattern '?mail\[5\]"):
        inventory_urls(path, "mail[5]")
    with pytest.raises(UsageError, match=r"host pattern '?~mail\("):
        inventory_urls(path, "~mail(")
