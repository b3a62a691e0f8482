"""--record-snapshot DIR: each host's evidence as a snapshot file (replay with snapshot://)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time

from postfix_compliance import __version__, atomicfile
from postfix_compliance.backends.snapshot import snapshot_document
from postfix_compliance.facts.host import HostFacts


def write_snapshots(all_facts: list[HostFacts], target_ids: list[str], directory: str) -> None:
    """--record-snapshot: each host's raw evidence (every probe, the drain's polls too), replayable with
    snapshot://. Written where the host was collected (each xdist worker its own hosts): a snapshot is
    what the host printed, not a result, so it comes from the facts, not from the run result."""
    os.makedirs(directory, mode=atomicfile.PRIVATE_DIR_MODE, exist_ok=True)
    recorded = [f for f in all_facts if not f.error]
    names = snapshot_stems([(f.name, f.host_id) for f in recorded], target_ids)
    for facts, stem in zip(recorded, names):
        evidence = list(facts.evidence.values())
        evidence += facts.all_extra_evidence
        doc = snapshot_document(facts.name, evidence, {
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "suite_version": __version__, "source": facts.host_id})
        atomicfile.write_atomic(os.path.join(directory, stem + ".json"), json.dumps(doc, indent=1) + "\n")


SNAPSHOT_STEM_MAX = 100  # far below NAME_MAX (255 bytes), with room for ".json" and a hash


def snapshot_stems(hosts: list[tuple[str, str]], all_urls: list[str] | None = None) -> list[str]:
    """File names (without .json) for (host name, host URL) pairs: one per URL, readable, bounded.

    The name the host reports is not unique (two sshd ports on one address, two snapshots of one
    host), so the URL is part of the name unless it already holds the host name (`local` is one per
    machine). Too long, or equal to another URL's after sanitising: cut, plus a hash of the URL.
    `all_urls`: every host of the run, so that xdist workers, each recording its own hosts, agree."""
    def stem(name: str, url: str) -> str:
        safe_name, safe_url = _safe_name(name), _safe_name(url)
        if url == "local":
            return safe_name
        return safe_url if safe_name in safe_url else f"{safe_name}--{safe_url}"

    def hashed(text: str, url: str) -> str:
        keep = SNAPSHOT_STEM_MAX - 17
        if len(text) > keep:  # the head names the host, the tail (a port, a file name) tells URLs apart
            text = f"{text[:keep // 2]}_{text[-(keep - keep // 2 - 1):]}"
        return f"{text}-{hashlib.sha256(url.encode()).hexdigest()[:16]}"

    safe_urls = [_safe_name(url).lower() for url in (all_urls or [url for _, url in hosts])]
    clash = {u for u in safe_urls if safe_urls.count(u) > 1}  # lower: case-insensitive filesystems too
    stems = [stem(name, url) for name, url in hosts]
    stems = [s if len(s) <= SNAPSHOT_STEM_MAX and _safe_name(url).lower() not in clash else hashed(s, url)
             for s, (_, url) in zip(stems, hosts)]
    taken = [s.lower() for s in stems]
    return [hashed(s, url) if taken.count(s.lower()) > 1 else s for s, (_, url) in zip(stems, hosts)]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "host"
