"""The probes whose facts the stages after the checks read: triage (triage.py) and the remediation plan
(remediation_plan.py).

The results stage keeps these probes' evidence of each host, as the host stood when the checks were done
(HostFacts.stage_evidence), and hands the parsed facts on: a later stage never reads a check's evidence
list to find them. A stage that starts reading another probe adds it here.
"""

from __future__ import annotations

from typing import Iterable

from postfix_compliance.facts.probes import is_boolean_probe

STAGE_PROBES: tuple[str, ...] = (
    # triage.diagnose
    "postconf", "queue_json", "queue_text", "avc_denials", "getenforce", "permissive_domains",
    "queue_dir_relabel", "related_relabel", "getsebool_all", "semanage_boolean", "audit2why", "journal",
    "maillog",
    # remediation_plan.py, besides postconf, semanage_boolean, permissive_domains and the boolean lookups
    "listeners", "port_labels", "sasl_maps", "selinux_config", "fcontext_local", "firewall", "processes",
    "daemon_relabel",
)


def stage_probe_names(collected: Iterable[str]) -> list[str]:
    """STAGE_PROBES, then every collected per-boolean lookup (`getsebool:NAME`, one per profile boolean)."""
    return list(STAGE_PROBES) + [name for name in dict.fromkeys(collected)
                                 if is_boolean_probe(name) and name not in STAGE_PROBES]
