"""--record-snapshot DIR: each host's evidence as a snapshot file (replay with snapshot://)."""

from __future__ import annotations

import json
import os
import time

from postfix_compliance import __version__, atomicfile
from postfix_compliance.backends.snapshot import snapshot_document
from postfix_compliance.facts.host import HostFacts
from postfix_compliance.filenames import host_file_stems


def write_snapshots(all_facts: list[HostFacts], target_ids: list[str], directory: str) -> None:
    """--record-snapshot: each host's raw evidence (every probe, the drain's polls too), replayable with
    snapshot://. Written where the host was collected (each xdist worker its own hosts): a snapshot is
    what the host printed, not a result, so it comes from the facts, not from the run result."""
    os.makedirs(directory, mode=atomicfile.PRIVATE_DIR_MODE, exist_ok=True)
    recorded = [f for f in all_facts if not f.error]
    names = host_file_stems([(f.name, f.host_id) for f in recorded], target_ids)
    for facts, stem in zip(recorded, names):
        evidence = list(facts.evidence.values())
        evidence += facts.all_extra_evidence
        doc = snapshot_document(facts.name, evidence, {
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "suite_version": __version__, "source": facts.host_id})
        atomicfile.write_atomic(os.path.join(directory, stem + ".json"), json.dumps(doc, indent=1) + "\n")
