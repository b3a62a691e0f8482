"""Write docs/checks.md from the checks' own metadata: `python -m postfix_compliance.catalog_doc`.

The self-tests fail when the committed file differs from what this prints, so the catalogue
cannot drift from the checks.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys

from postfix_compliance import layout
from postfix_compliance.checks import CATALOG, SECTIONS, CheckMeta


def load_checks(directory: str = layout.CHECKS_DIR) -> dict[str, CheckMeta]:
    for path in sorted(glob.glob(os.path.join(directory, "test_*.py"))):
        name = "tests_host_catalog_" + os.path.splitext(os.path.basename(path))[0]
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return dict(CATALOG)


def _order(meta: CheckMeta) -> tuple[int, str, int]:
    family, _, number = meta.id.partition("-")
    return (["SEL", "BOOL", "LBL", "AVC", "SVC", "Q", "LOG", "MOD", "REL"].index(family)
            if family in ("SEL", "BOOL", "LBL", "AVC", "SVC", "Q", "LOG", "MOD", "REL") else 99, family, int(number))


def render(catalog: dict[str, CheckMeta]) -> str:
    checks = sorted(catalog.values(), key=_order)
    lines = ["# Check catalogue", "",
             "Generated from the checks' metadata by `python -m postfix_compliance.catalog_doc > docs/checks.md`;",
             "do not edit by hand (a self-test fails when this file is out of date).", "",
             "| id | title | severity | runbook section | markers |", "|---|---|---|---|---|"]
    for meta in checks:
        lines.append(f"| {meta.id} | {meta.title} | {meta.severity} | {meta.section} | {', '.join(meta.markers)} |")
    for meta in checks:
        lines += ["", f"## {meta.id} — {meta.title}", "",
                  f"Severity **{meta.severity}**, runbook section *{meta.section}*, markers `{' '.join(meta.markers)}`,"
                  f" test `{meta.function}` in `tests_host/{meta.module.split('_catalog_')[-1]}.py`.", "",
                  meta.rationale, "", "Remediation:", "", "```sh", *meta.remediation, "```"]
        if meta.rollback:
            lines += ["", "Rollback:", "", "```sh", *meta.rollback, "```"]
        if meta.references:
            lines += ["", "References: " + "; ".join(meta.references)]
    assert all(m.section in SECTIONS for m in checks)
    return "\n".join(lines) + "\n"


def main() -> None:
    sys.stdout.write(render(load_checks()))


if __name__ == "__main__":
    main()
