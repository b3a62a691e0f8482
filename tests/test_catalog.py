"""The check catalogue: metadata complete, ids in node ids, docs/checks.md up to date."""

import os
import re
import subprocess
import sys

from selftest import REPO
from postfix_compliance.catalog_doc import load_checks, render
from postfix_compliance.checks import SECTIONS, SEVERITIES

DESIGN_IDS = {"SEL-001", "SEL-002", "SEL-003", "SEL-004", "SEL-005", "BOOL-001", "BOOL-002", "LBL-001", "LBL-002",
              "LBL-003", "LBL-004", "AVC-001", "AVC-002", "SVC-001", "SVC-002", "SVC-003", "SVC-004", "SVC-005",
              "Q-001", "Q-002", "Q-003", "LOG-001", "MOD-001", "REL-001", "REL-002", "REL-003", "REL-004"}


def test_every_design_check_exists_with_metadata():
    catalog = load_checks()
    assert DESIGN_IDS <= set(catalog)
    for meta in catalog.values():
        assert re.fullmatch(r"[A-Z]+-\d{3}", meta.id)
        assert meta.title and meta.rationale and meta.remediation, meta.id
        assert meta.severity in SEVERITIES and meta.section in SECTIONS, meta.id


def test_docs_checks_md_is_generated_from_metadata():
    with open(os.path.join(REPO, "docs", "checks.md"), encoding="utf-8") as handle:
        committed = handle.read()
    assert committed == render(load_checks()), \
        "docs/checks.md is out of date: python -m postfix_compliance.catalog_doc > docs/checks.md"


def test_node_ids_carry_check_ids():
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--no-reports"], cwd=REPO,
                         capture_output=True, text=True, timeout=120).stdout
    for check_id in DESIGN_IDS:
        assert f"[{check_id}-local]" in out, check_id
