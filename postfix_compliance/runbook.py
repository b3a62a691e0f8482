"""The runbook's vocabulary, without pytest: severities and sections, in the runbook's order.

checks.py (which imports pytest for its markers) declares checks with these words and re-exports them;
the renderers (report/, fleet.py) sort and rank by them and must not import pytest, so the words live here.
"""

from __future__ import annotations

SEVERITIES = ("high", "medium", "low")
# firewalld's service for each of Postfix's usual ports (REL-003 and its remediation)
SMTP_SERVICES = {25: "smtp", 465: "smtps", 587: "submission"}
# The runbook's sections, in its order (remediation scripts and reports follow it).
SECTIONS = ("Symptom", "Environment", "Root cause", "Triage", "Diagnosis", "Primary fix", "Alternative",
            "Verification", "Rollback", "Prevention", "Related")
