"""File names for per-host files (snapshots, XCCDF results, a fleet's host pages): one per host, readable,
bounded, safe."""

from __future__ import annotations

import hashlib
import re
from typing import Any

STEM_MAX = 100  # far below NAME_MAX (255 bytes), with room for ".json" and a hash


def host_file_stems(hosts: list[tuple[str, str]], all_urls: list[str] | None = None) -> list[str]:
    """File names (without an extension) for (host name, host URL) pairs: one per URL, readable, bounded.

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
        keep = STEM_MAX - 17
        if len(text) > keep:  # the head names the host, the tail (a port, a file name) tells URLs apart
            text = f"{text[:keep // 2]}_{text[-(keep - keep // 2 - 1):]}"
        return f"{text}-{hashlib.sha256(url.encode()).hexdigest()[:16]}"

    safe_urls = [_safe_name(url).lower() for url in (all_urls or [url for _, url in hosts])]
    clash = {u for u in safe_urls if safe_urls.count(u) > 1}  # lower: case-insensitive filesystems too
    stems = [stem(name, url) for name, url in hosts]
    stems = [s if len(s) <= STEM_MAX and _safe_name(url).lower() not in clash else hashed(s, url)
             for s, (_, url) in zip(stems, hosts)]
    taken = [s.lower() for s in stems]
    return [hashed(s, url) if taken.count(s.lower()) > 1 else s for s, (_, url) in zip(stems, hosts)]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "host"


def host_page(host: Any) -> str:
    """The file name (under hosts/ beside the page) of a fleet host's own page: readable, bounded, unique
    (a HostResult's name and a hash of its target id)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", host.name).strip("._")[:60] or "host"
    return f"hosts/{safe}-{hashlib.sha256(host.id.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}.html"
