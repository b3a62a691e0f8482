"""Parsers: Evidence -> a fact of `..model`, `Unparsed` or `Unavailable`.

One parser per probe of `..probes.build_probes`. Parsers report what the host said and never
judge it; they never raise on odd output either (the fuzz tests hold them to that). `parse` adds
a last safety net for the day one does.
"""

from __future__ import annotations

from typing import Callable

from ..evidence import Evidence
from ..model import Unparsed
from ..probes import is_boolean_probe
from .audit import parse_audit2why, parse_avc_denials
from .booleans import parse_getsebool_all, parse_getsebool_one, parse_semanage_boolean
from .labels import parse_fcontext_local, parse_ls_z, parse_restorecon
from .policy import parse_permissive_domains, parse_policy_modules, parse_port_labels
from .postfix import (parse_journal, parse_maillog, parse_postconf, parse_postfix_check,
                      parse_queue_json, parse_queue_text)
from .selinux import (parse_boot_entries, parse_getenforce, parse_proc_cmdline, parse_selinux_config,
                      parse_sestatus)
from .system import (parse_firewall, parse_host_clock, parse_listeners, parse_os_release, parse_processes,
                     parse_relay_resolution, parse_sasl_maps, parse_units)

Parser = Callable[[Evidence], object]

PARSERS: dict[str, Parser] = {
    "os_release": parse_os_release,
    "host_clock": parse_host_clock,
    "getenforce": parse_getenforce,
    "sestatus": parse_sestatus,
    "selinux_config": parse_selinux_config,
    "proc_cmdline": parse_proc_cmdline,
    "boot_entries": parse_boot_entries,
    "getsebool_all": parse_getsebool_all,
    "semanage_boolean": parse_semanage_boolean,
    "postconf": parse_postconf,
    "queue_dir_label": parse_ls_z,
    "queue_dir_relabel": parse_restorecon,
    "daemon_labels": parse_ls_z,
    "daemon_relabel": parse_restorecon,
    "related_relabel": parse_restorecon,
    "fcontext_local": parse_fcontext_local,
    "permissive_domains": parse_permissive_domains,
    "policy_modules": parse_policy_modules,
    "port_labels": parse_port_labels,
    "avc_denials": parse_avc_denials,
    "audit2why": parse_audit2why,
    "processes": parse_processes,
    "units_active": parse_units,
    "units_enabled": parse_units,
    "listeners": parse_listeners,
    "postfix_check": parse_postfix_check,
    "queue_json": parse_queue_json,
    "queue_text": parse_queue_text,
    "journal": parse_journal,
    "maillog": parse_maillog,
    "firewall": parse_firewall,
    "relay_resolution": parse_relay_resolution,
    "sasl_maps": parse_sasl_maps,
}

# Parsers of the probes users add (hookspecs.pytest_compliance_probes), by probe name.
EXTRA_PARSERS: dict[str, Parser] = {}


def register_parser(probe_name: str, parser: Parser) -> None:
    """A user's probe's parser; a name of the suite's own (or another user probe's) is refused."""
    if probe_name in PARSERS or is_boolean_probe(probe_name):
        raise ValueError(f"probe {probe_name!r} is one of the suite's own: give yours another name")
    known = EXTRA_PARSERS.get(probe_name)
    if known is not None and known is not parser:
        raise ValueError(f"probe {probe_name!r} registered twice, with two parsers")
    EXTRA_PARSERS[probe_name] = parser


def parser_for(probe_name: str) -> Parser:
    """The parser of a probe; `getsebool:NAME` probes (one per profile boolean) share one.
    Raises KeyError for a probe nobody wrote a parser for."""
    if is_boolean_probe(probe_name):
        return parse_getsebool_one
    if probe_name in EXTRA_PARSERS:
        return EXTRA_PARSERS[probe_name]
    return PARSERS[probe_name]


def truncated_reason(cap: int) -> str:
    return f"output truncated at {cap} bytes (--max-probe-output)"


def parse(ev: Evidence) -> object:
    """Dispatch by `ev.probe`. Any exception becomes `Unparsed`: a parser bug must surface as an
    error on its check, not abort the whole host.

    Output cut at the cap is never parsed: what was cut may be exactly what a check needs (the one
    process in the wrong domain, the one AVC record), so every check that reads it is an error
    naming the cap, never a pass on partial data. (An evidence error, e.g. a timeout, still says
    what it is: the parser reports that.)"""
    if ev.truncated is not None and ev.error is None:
        return Unparsed(ev.probe, truncated_reason(ev.truncated))
    try:
        run = parser_for(ev.probe)
    except KeyError:
        return Unparsed(ev.probe, "no parser for this probe")
    if ev.error is not None and ev.probe in EXTRA_PARSERS:  # a user's parser sees output, never a transport error
        return Unparsed(ev.probe, ev.error)
    try:
        return run(ev)
    except Exception as exc:  # noqa: BLE001 - the safety net is the point
        return Unparsed(ev.probe, f"parser error: {type(exc).__name__}: {exc}")

