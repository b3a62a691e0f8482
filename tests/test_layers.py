"""The layers import one way (docs/architecture.md): every module of postfix_compliance/ and tests_host/ is
read with `ast`, its imports collected (at module level and inside functions, relative ones resolved), and
each rule below lists every import that crosses it.

    host -> evidence -> facts -> checks -> results -> verdict -> renderers
"""

from __future__ import annotations

import ast
import dataclasses
import os
from typing import Iterable

import pytest

from selftest import REPO

SCANNED = ("postfix_compliance", "tests_host")


@dataclasses.dataclass(frozen=True)
class Rule:
    """Modules named by `sources` (a module or package and everything under it) import nothing named by
    `forbidden` (likewise, a module and its submodules)."""

    sources: tuple[str, ...]
    forbidden: tuple[str, ...]
    why: str


RENDERERS_ARE_PURE = Rule(
    ("postfix_compliance.report", "postfix_compliance.fleet", "postfix_compliance.fleet_run",
     "postfix_compliance.history", "postfix_compliance.filenames"),
    ("pytest", "_pytest", "pytest_html", "postfix_compliance.plugin", "postfix_compliance.facts.parsers"),
    "a renderer is a function of the decided run: no pytest, no plugin state, no parsing evidence again")
FACTS_LOOK_NO_FURTHER = Rule(
    ("postfix_compliance.facts",),
    ("postfix_compliance.triage", "postfix_compliance.verdict", "postfix_compliance.run",
     "postfix_compliance.report", "postfix_compliance.plugin", "postfix_compliance.backends.hostkeys"),
    "facts are what the host said: they know nothing of the stages after the checks, nor of a transport's "
    "internals (its errors are in postfix_compliance.errors)")
CHECKS_RUN_NO_COMMANDS = Rule(
    ("tests_host",),
    ("subprocess", "postfix_compliance.backends", "paramiko"),
    "a check judges facts; it never runs a command itself (the drain's flush is facts/queue_drain.py)")
THE_PLAN_READS_FACTS_ONLY = Rule(
    ("postfix_compliance.remediation_plan", "postfix_compliance.triage"),
    ("pytest", "_pytest", "postfix_compliance.plugin", "postfix_compliance.facts.parsers",
     "postfix_compliance.backends", "postfix_compliance.report", "subprocess"),
    "triage and the remediation plan read the typed facts of the run: no parsing, no transport, no renderer "
    "(the renderers are views of the plan, never its source)")

THE_RESULTS_FILE_IS_DATA = Rule(
    ("postfix_compliance.results_file", "postfix_compliance.run"),
    ("pytest", "_pytest", "postfix_compliance.plugin", "postfix_compliance.report", "postfix_compliance.fleet",
     "postfix_compliance.verdict", "postfix_compliance.baseline", "postfix_compliance.facts.parsers"),
    "the run result and its file sit below everything that reads them: renderers, the merge, the verdict, "
    "the baseline")

RULES = (RENDERERS_ARE_PURE, FACTS_LOOK_NO_FURTHER, CHECKS_RUN_NO_COMMANDS, THE_PLAN_READS_FACTS_ONLY,
         THE_RESULTS_FILE_IS_DATA)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def modules(root: str, tops: Iterable[str] = SCANNED) -> dict[str, str]:
    """Dotted module name -> file, for every .py file under `root`/<top>."""
    found = {}
    for top in tops:
        for directory, _, files in os.walk(os.path.join(root, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    parts = os.path.relpath(path, root)[:-3].split(os.sep)
                    if parts[-1] == "__init__":
                        parts.pop()
                    found[".".join(parts)] = path
    return found


def imports(module: str, path: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, imported module, names taken from it) of every import in the file, wherever it stands
    (`import x`: no names; `from x import y`: y, which may be a submodule, x.y); a literal
    `importlib.import_module("x")` counts too."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target, tuple(alias.name for alias in node.names if alias.name != "*")))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and (
                    (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                    or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))):
            found.append((node.lineno, node.args[0].value, ()))
    return found


def forbidden_arrows(rule: Rule, root: str = REPO) -> list[str]:
    """Every import under `root` that `rule` forbids, one line each: file:line: module -> imported."""
    def forbidden(name: str) -> bool:
        return any(_within(name, bad) for bad in rule.forbidden)

    arrows = []
    for module, path in sorted(modules(root).items()):
        if not any(_within(module, source) for source in rule.sources):
            continue
        for line, target, names in sorted(imports(module, path)):
            # the module itself, else each name taken from it that is a forbidden (sub)module
            for imported in [target] if forbidden(target) else [f"{target}.{n}" for n in names]:
                if forbidden(imported):
                    arrows.append(f"{os.path.relpath(path, root)}:{line}: {module} -> {imported}")
    return arrows


def assert_none(rule: Rule) -> None:
    arrows = forbidden_arrows(rule)
    assert not arrows, f"{len(arrows)} forbidden imports ({rule.why}):\n" + "\n".join(arrows)


def test_renderers_import_no_pytest_plugin_or_parsers():
    assert_none(RENDERERS_ARE_PURE)


def test_facts_import_no_later_stage_and_no_transport_internals():
    assert_none(FACTS_LOOK_NO_FURTHER)


def test_checks_import_nothing_that_runs_commands():
    assert_none(CHECKS_RUN_NO_COMMANDS)


def test_triage_and_the_plan_read_facts_only():
    assert_none(THE_PLAN_READS_FACTS_ONLY)


def test_the_results_file_and_the_run_import_nothing_that_reads_them():
    assert_none(THE_RESULTS_FILE_IS_DATA)


def import_graph(root: str = REPO) -> dict[str, set[str]]:
    """Module -> the modules of postfix_compliance/ it imports (anywhere in it: a function's import counts)."""
    found = modules(root, ("postfix_compliance",))
    graph: dict[str, set[str]] = {}
    for module, path in found.items():
        edges = set()
        for _, target, names in imports(module, path):
            # `from a import b`: the submodule a.b if there is one, else a
            named = [f"{target}.{n}" for n in names if f"{target}.{n}" in found]
            edges.update(named or ([target] if target in found else []))
        edges.discard(module)
        graph[module] = edges
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules that import each other, directly or around a circle (strongly connected components of
    more than one module), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]  # Tarjan's, without recursion
        index[start] = low[start] = len(index)
        stack.append(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        circles.append(sorted(component))
    return circles


def test_no_import_circle():
    """Data walks one way: no two modules of the package import each other, however far around."""
    circles = import_circles(import_graph())
    assert not circles, "modules that import each other:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_circle_finder_finds_circles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set(), "g": {"g2"}, "g2": set()}
    assert sorted(import_circles(graph)) == [["a", "b", "c"], ["d", "e"]]


def test_the_checker_finds_forbidden_arrows(tmp_path):
    files = {
        "postfix_compliance/__init__.py": "",
        "postfix_compliance/facts/__init__.py": "",
        "postfix_compliance/facts/bad.py": "from ..triage import diagnose\nfrom . import model\n\n"
                                           "def later():\n    from postfix_compliance.backends import hostkeys\n",
        "postfix_compliance/facts/good.py": "from .parsers import parse\nfrom postfix_compliance import errors\n",
        "postfix_compliance/report/__init__.py": "",
        "postfix_compliance/report/html.py": "import pytest_html\nfrom .. import plugin\n"
                                             "from postfix_compliance.facts import parsers, model\n",
        "postfix_compliance/report/clean.py": "from postfix_compliance.facts import model\nimport pytest_htmlish\n",
        "postfix_compliance/fleet.py": "import importlib\nimportlib.import_module('_pytest.config')\n",
        "tests_host/test_x.py": "def test_x():\n    import subprocess.run\n",
        "postfix_compliance/remediation_plan.py": "from postfix_compliance.facts import model\n"
                                                  "from postfix_compliance.report import remediation\n",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert forbidden_arrows(FACTS_LOOK_NO_FURTHER, str(tmp_path)) == [
        "postfix_compliance/facts/bad.py:1: postfix_compliance.facts.bad -> postfix_compliance.triage",
        "postfix_compliance/facts/bad.py:5: postfix_compliance.facts.bad -> postfix_compliance.backends.hostkeys",
    ]
    assert forbidden_arrows(RENDERERS_ARE_PURE, str(tmp_path)) == [
        "postfix_compliance/fleet.py:2: postfix_compliance.fleet -> _pytest.config",
        "postfix_compliance/report/html.py:1: postfix_compliance.report.html -> pytest_html",
        "postfix_compliance/report/html.py:2: postfix_compliance.report.html -> postfix_compliance.plugin",
        "postfix_compliance/report/html.py:3: postfix_compliance.report.html -> postfix_compliance.facts.parsers",
    ]
    assert forbidden_arrows(CHECKS_RUN_NO_COMMANDS, str(tmp_path)) == [
        "tests_host/test_x.py:2: tests_host.test_x -> subprocess.run",
    ]
    assert forbidden_arrows(THE_PLAN_READS_FACTS_ONLY, str(tmp_path)) == [
        "postfix_compliance/remediation_plan.py:2: postfix_compliance.remediation_plan -> postfix_compliance.report",
    ]
