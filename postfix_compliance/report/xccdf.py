"""--xccdf FILE: the run's results as XCCDF 1.2, for SCAP tooling (OpenSCAP, SCAP Workbench).

    pytest --hosts=... --xccdf reports/results.xccdf.xml
    oscap xccdf validate reports/results.xccdf.xml
    oscap xccdf generate report reports/results.xccdf.xml > report.html

The document is one <Benchmark> (what `oscap xccdf generate report` and other consumers can render):
one <Rule> per check of the catalogue (title, description, rationale, severity, idents, references,
fixtext), grouped by runbook section, one <Profile> per suite profile the run used, and one
<TestResult> per host with a <rule-result> per check that ran there. docs/scap.md says what a SCAP
consumer sees and what it does not; in short:

  ids        rule   xccdf_org.postfix-compliance_rule_<check id>      (SEL-001 -> ..._rule_SEL-001)
             result xccdf_org.postfix-compliance_testresult_<n>_<host name>
  outcomes   pass -> pass, fail -> fail, error -> error, not_applicable -> notapplicable,
             waived -> pass (the risk was accepted, as the suite's exit status says), with a message
             "waived (the failure is accepted): JUSTIFICATION; owner ...; expires ..." and the waiver
             as <metadata><pfc:waiver old-result="fail" new-result="pass" authority=OWNER ...>.
             Not an <override>, XCCDF's own element for a reviewer's change of result: the XCCDF 1.2.1
             schematron OpenSCAP validates with (`benchmark_rule_result_override`) demands that, in a
             TestResult where one rule-result has an <override>, EVERY rule-result's result equal an
             override's new-result, so one waived check would make the whole document invalid.
             An expired waiver waives nothing: fail, with a warning message saying so.
  idents     "CCE-80868-0" -> <ident system="https://ncp.nist.gov/cce">;
             "ComplianceAsCode: selinux_state" -> <ident system="https://github.com/ComplianceAsCode/content">
             xccdf_org.ssgproject.content_rule_selinux_state (the rule id in the SCAP Security Guide's
             own results, so the two can be matched); every other reference is a <reference>.

`render(run, ...)` is a pure function of the decided run and the catalogue (`write` writes it); the
--xccdf option and its hook are the plugin's. Everything a host printed goes in as text through ElementTree (which
escapes <, &, >); characters XML 1.0 cannot carry at all (C0 controls, lone surrogates, U+FFFE/FFFF)
are shown visibly as `\\x1b`, `\\ufffe` (text.inert), never dropped silently.
"""

from __future__ import annotations

import re
import time
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any, Iterable, Mapping

from postfix_compliance import __version__
from postfix_compliance.atomicfile import write_atomic
from postfix_compliance.run import RunResult
from postfix_compliance.runbook import SECTIONS
from postfix_compliance.text import inert

NS = "http://checklists.nist.gov/xccdf/1.2"
ID_PREFIX = "xccdf_org.postfix-compliance"
BENCHMARK_ID = f"{ID_PREFIX}_benchmark_postfix-selinux"
CCE_SYSTEM = "https://ncp.nist.gov/cce"
CAC_SYSTEM = "https://github.com/ComplianceAsCode/content"
CAC_RULE_PREFIX = "xccdf_org.ssgproject.content_rule_"
DC = "http://purl.org/dc/elements/1.1/"
WAIVER_NS = "urn:postfix-compliance:waiver:1"
CHECK_SYSTEM = "urn:postfix-compliance:check:pytest"
FACT_PREFIX = "urn:xccdf:fact:postfix-compliance:"

RESULTS = {"pass": "pass", "fail": "fail", "error": "error", "not_applicable": "notapplicable",
           "waived": "pass"}
SEVERITIES = {"high": "high", "medium": "medium", "low": "low"}
_CCE = re.compile(r"^CCE-\d{4,5}-\d$")
_CAC = re.compile(r"^ComplianceAsCode:\s*([A-Za-z0-9_]+)$")
_NOT_NCNAME = re.compile(r"[^A-Za-z0-9.-]+")
_XML_ILLEGAL = re.compile("[\ufffe\uffff]")  # what inert leaves that XML 1.0 cannot hold


def text(value: Any) -> str:
    """Host text as XML 1.0 can hold it: control characters shown as `\\x1b` (text.inert), never raw."""
    if value is None:
        return ""
    return _XML_ILLEGAL.sub(lambda m: f"\\u{ord(m.group()):04x}", inert(value))


def id_part(value: Any, limit: int = 80) -> str:
    """A piece of an XCCDF id (an NCName): letters, digits, '.', '-'; anything else becomes '-'."""
    part = _NOT_NCNAME.sub("-", str(value)).strip("-.")[:limit]
    return part or "x"


def rule_id(check_id: str) -> str:
    return f"{ID_PREFIX}_rule_{id_part(check_id)}"


def profile_id(profile: str) -> str:
    return f"{ID_PREFIX}_profile_{id_part(profile)}"


def _profile_ids(names: Iterable[str]) -> dict[str, str]:
    """profile name -> its Profile id, unique even where two names sanitise alike ("a b", "a-b")."""
    ids: dict[str, str] = {}
    for name in names:
        candidate, n = profile_id(name), 1
        while candidate in ids.values():
            n += 1
            candidate = f"{profile_id(name)}-{n}"
        ids[name] = candidate
    return ids


def group_id(section: str) -> str:
    return f"{ID_PREFIX}_group_{id_part(section.lower())}"


def testresult_id(index: int, host_name: str) -> str:
    return f"{ID_PREFIX}_testresult_{index + 1}_{id_part(host_name)}"


def timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def idents_and_references(references: Iterable[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(idents as (system, value), other references) from a check's references."""
    idents: list[tuple[str, str]] = []
    others: list[str] = []
    for reference in references or ():
        reference = str(reference).strip()
        cac = _CAC.match(reference)
        if _CCE.match(reference):
            idents.append((CCE_SYSTEM, reference))
        elif cac:
            idents.append((CAC_SYSTEM, CAC_RULE_PREFIX + cac.group(1)))
        elif reference:
            others.append(reference)
    return idents, others


def _sub(parent: ET.Element, tag: str, content: Any = None, **attrs: Any) -> ET.Element:
    element = ET.SubElement(parent, tag, {k.replace("_", "-"): text(v) for k, v in attrs.items()
                                                     if v is not None})
    if content is not None:
        element.text = text(content)
    return element


def _section_rank(section: str | None) -> int:
    return SECTIONS.index(section) if section in SECTIONS else len(SECTIONS)


def _check_order(check_id: str) -> tuple[str, int, str]:
    family, _, number = check_id.partition("-")
    return (family, int(number) if number.isdigit() else 0, check_id)


def _target_address(url: str) -> str | None:
    """The network address in a host URL (ssh://root@mail1:2222 -> mail1), None for local, snapshots, images."""
    if "://" not in url:
        return None
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("snapshot", "image", "local"):
        return None
    try:
        return parsed.hostname or None
    except ValueError:
        return None


def _identity(url: str, local_user: str | None, sudo: bool) -> tuple[str, bool, bool] | None:
    """(name, authenticated, privileged) of the account the suite used on the host; None for a replay."""
    if url.startswith("snapshot://"):
        return None
    if "://" not in url:  # local
        if not local_user:
            return None
        return local_user, False, local_user == "root" or sudo
    parsed = urllib.parse.urlsplit(url)
    if not parsed.username:
        return None
    user = urllib.parse.unquote(parsed.username)
    return user, parsed.scheme in ("ssh", "paramiko"), user == "root" or sudo or "sudo=true" in parsed.query


def _catalogue(records: list[dict[str, Any]],
               catalog: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """check id -> its metadata: the catalogue's, completed from the records for checks it lacks."""
    checks: dict[str, dict[str, Any]] = {cid: dict(meta) for cid, meta in (catalog or {}).items()}
    for record in records:
        meta = checks.setdefault(record["check_id"], {})
        for key in ("title", "severity", "section", "remediation", "rollback", "references"):
            if not meta.get(key) and record.get(key):
                meta[key] = record[key]
        if not meta.get("nodeid") and record.get("nodeid"):  # the test, without its host parameter
            meta["nodeid"] = re.sub(r"\[.*\]$", "", str(record["nodeid"]))
    for meta in checks.values():  # a check that did not run: its test as the catalogue names it
        if not meta.get("nodeid") and meta.get("function") and meta.get("module"):
            module = str(meta["module"]).rsplit(".", 1)[-1].replace("tests_host_catalog_", "", 1)
            meta["nodeid"] = f"tests_host/{module}.py::{meta['function']}"
    return checks


def render(run: RunResult, *, catalog: Mapping[str, Mapping[str, Any]] | None = None,
           suite_version: str = __version__, local_user: str | None = None, sudo: bool = False) -> str:
    """The XCCDF 1.2 Benchmark (an XML document, declared UTF-8) holding one TestResult per host of
    `run`, its times the run's start and end.

    `catalog`: check id -> {"title", "severity", "section", "rationale", "remediation", "rollback",
    "references"} (the checks' metadata: every check gets a Rule, also one that did not run);
    `local_user`, `sudo`: the account used on `local` and whether privileged probes went through sudo."""
    return _render(run.records(), started=run.started, ended=run.ended, profile=run.profile, catalog=catalog,
                   suite_version=suite_version, local_user=local_user, sudo=sudo).decode("utf-8")


def write(run: RunResult, path: str, **options: Any) -> None:
    """`render(run, **options)` written atomically (UTF-8)."""
    write_atomic(path, render(run, **options).encode("utf-8"))


def _render(records: list[dict[str, Any]], *, started: float, ended: float, profile: str | None,
            catalog: Mapping[str, Mapping[str, Any]] | None, suite_version: str,
            local_user: str | None, sudo: bool) -> bytes:
    checks = _catalogue(records, catalog)
    # Tags unqualified, the namespace declared on the root: ElementTree then writes no ns0: prefixes
    # (its default_namespace option refuses unqualified attribute names).
    benchmark = ET.Element("Benchmark", {"xmlns": NS, "id": BENCHMARK_ID, "resolved": "1",
                                                   "{http://www.w3.org/XML/1998/namespace}lang": "en"})
    _sub(benchmark, "status", "draft", date=time.strftime("%Y-%m-%d", time.gmtime(ended)))
    _sub(benchmark, "title", "Postfix under SELinux: postfix-compliance results")
    _sub(benchmark, "description",
         "Results of the postfix-compliance suite (pytest checks of Postfix under SELinux). The checks are "
         "the suite's own tests, not OVAL definitions: this benchmark records their results for SCAP "
         "tooling and cannot be evaluated by an SCAP scanner.")
    _sub(benchmark, "reference", f"postfix-compliance {suite_version}")
    _sub(benchmark, "version", suite_version)
    metadata = _sub(benchmark, "metadata", **{"xmlns:dc": DC})
    _sub(metadata, "dc:creator", "postfix-compliance")
    _sub(metadata, "dc:publisher", "postfix-compliance")
    _sub(benchmark, "model", system="urn:xccdf:scoring:default")
    _sub(benchmark, "model", system="urn:xccdf:scoring:flat")

    hosts: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        hosts.setdefault(record["host"], []).append(record)
    profiles = sorted({r.get("profile") or profile for r in records} - {None} | ({profile} if profile else set()))
    profile_ids = _profile_ids(profiles)
    for name in profiles:
        element = _sub(benchmark, "Profile", id=profile_ids[name])
        _sub(element, "title", f"postfix-compliance profile {name}")
        _sub(element, "description", f"The expected state of profile {name} (fixtures/profiles/ or the "
                                     f"YAML file given with --profile); every check is selected.")
        for check_id in sorted(checks, key=_check_order):
            _sub(element, "select", idref=rule_id(check_id), selected="true")

    by_section: dict[str, list[str]] = {}
    for check_id, meta in checks.items():
        by_section.setdefault(meta.get("section") or "Related", []).append(check_id)
    for section in sorted(by_section, key=lambda s: (_section_rank(s), s)):
        group = _sub(benchmark, "Group", id=group_id(section))
        _sub(group, "title", f"Runbook: {section}")
        for check_id in sorted(by_section[section], key=_check_order):
            _rule(group, check_id, checks[check_id])

    order = sorted(hosts, key=lambda h: (hosts[h][0].get("host_name") or h, h))
    for index, host in enumerate(order):
        _test_result(benchmark, index, host, hosts[host], checks, started=started, ended=ended,
                     profile=profile, suite_version=suite_version, local_user=local_user, sudo=sudo,
                     profile_ids=profile_ids)
    ET.indent(benchmark, space=" ")
    return ET.tostring(benchmark, encoding="utf-8", xml_declaration=True) + b"\n"


def _rule(parent: ET.Element, check_id: str, meta: Mapping[str, Any]) -> None:
    severity = SEVERITIES.get(str(meta.get("severity")), "unknown")
    rule = _sub(parent, "Rule", id=rule_id(check_id), selected="true", severity=severity)
    _sub(rule, "title", f"{check_id} {meta.get('title') or ''}".strip())
    _sub(rule, "description", f"Check {check_id} of postfix-compliance (runbook section: "
                              f"{meta.get('section') or 'unknown'}). {meta.get('title') or ''}".strip())
    idents, others = idents_and_references(meta.get("references") or ())
    for reference in others:
        _sub(rule, "reference", reference)
    if meta.get("rationale"):
        _sub(rule, "rationale", meta["rationale"])
    for system, value in idents:
        _sub(rule, "ident", value, system=system)
    lines = ["Remediation (shown by the suite, never run by it; <...> are placeholders to fill in):"]
    lines += [f"  {command}" for command in meta.get("remediation") or ()] or ["  (none)"]
    if meta.get("rollback"):
        lines += ["Rollback:"] + [f"  {command}" for command in meta["rollback"]]
    _sub(rule, "fixtext", "\n".join(lines))
    _check(rule, meta.get("nodeid") or "")


def _check(parent: ET.Element, nodeid: str) -> None:
    """Which pytest test judged the rule (the suite's own checking system: no SCAP scanner runs it)."""
    path, _, name = nodeid.partition("::")
    check = _sub(parent, "check", system=CHECK_SYSTEM)
    _sub(check, "check-content-ref", href=path or "tests_host/", name=name or None)


def _test_result(parent: ET.Element, index: int, host: str, records: list[dict[str, Any]],
                 checks: Mapping[str, Mapping[str, Any]], *, started: float, ended: float, profile: str | None,
                 suite_version: str, local_user: str | None, sudo: bool, profile_ids: Mapping[str, str]) -> None:
    host_name = records[0].get("host_name") or host
    host_profile = records[0].get("profile") or profile
    result = _sub(parent, "TestResult", id=testresult_id(index, host_name), start_time=timestamp(started),
                  end_time=timestamp(ended), test_system=f"cpe:/a:postfix-compliance:postfix-compliance:"
                                                         f"{id_part(suite_version)}",
                  version=suite_version)
    _sub(result, "benchmark", href=f"#{BENCHMARK_ID}", id=BENCHMARK_ID)
    _sub(result, "title", f"postfix-compliance results for {host_name}")
    identity = _identity(host, local_user, sudo)
    if identity:
        _sub(result, "identity", identity[0], authenticated=str(identity[1]).lower(),
             privileged=str(identity[2]).lower())
    if host_profile:
        _sub(result, "profile", idref=profile_ids[host_profile])
    _sub(result, "target", host_name)
    address = _target_address(host)
    if address:
        _sub(result, "target-address", address)
    facts = _sub(result, "target-facts")
    for name, value in (("urn:xccdf:fact:asset:identifier:host_name", host_name),
                        (FACT_PREFIX + "target", host),
                        (FACT_PREFIX + "profile", host_profile or "")):
        _sub(facts, "fact", value, name=name, type="string")
    if host.startswith("snapshot://"):
        _sub(facts, "fact", "true", name=FACT_PREFIX + "replayed-snapshot", type="boolean")

    counted = passed = 0
    for record in sorted(records, key=lambda r: _check_order(r["check_id"])):
        meta = checks.get(record["check_id"], {})
        outcome = record.get("outcome")
        value = RESULTS.get(outcome, "unknown")
        severity = SEVERITIES.get(str(record.get("severity") or meta.get("severity")), "unknown")
        rule_result = _sub(result, "rule-result", idref=rule_id(record["check_id"]), severity=severity,
                           time=timestamp(ended), weight="1.0")
        _sub(rule_result, "result", value)
        waiver = record.get("waiver") or {}
        idents, _ = idents_and_references(record.get("references") or meta.get("references") or ())
        for system, ident in idents:
            _sub(rule_result, "ident", ident, system=system)
        if outcome == "waived":
            # Not an <override>: see the module docstring (OpenSCAP's schematron would reject the document).
            metadata = _sub(rule_result, "metadata", **{"xmlns:pfc": WAIVER_NS})
            _sub(metadata, "pfc:waiver", waiver.get("justification") or "", **{
                "old-result": RESULTS.get(waiver.get("outcome") or "fail", "fail"), "new-result": value,
                "authority": waiver.get("owner") or "", "expires": waiver.get("expires") or "",
                "time": timestamp(ended), "file": waiver.get("file"),
                "index": None if waiver.get("index") is None else str(waiver["index"])})
            _sub(rule_result, "message", "waived (the failure is accepted): " + _waiver_text(waiver),
                 severity="info")
        elif waiver.get("expired"):
            _sub(rule_result, "message", "a waiver matched but has expired, so the failure stands: "
                 + _waiver_text(waiver), severity="warning")
        if record.get("message"):
            _sub(rule_result, "message", record["message"], severity="error" if outcome == "error" else "info")
        for note in record.get("notes") or ():
            _sub(rule_result, "message", note, severity="info")
        _check(rule_result, record.get("nodeid") or "")
        if value in ("pass", "fail", "error", "unknown"):
            counted += 1
            passed += value == "pass"
    default = 100.0 * passed / counted if counted else 0.0
    _sub(result, "score", f"{default:.6f}", system="urn:xccdf:scoring:default", maximum="100.000000")
    _sub(result, "score", f"{passed:.6f}", system="urn:xccdf:scoring:flat", maximum=f"{counted:.6f}")


def _waiver_text(waiver: Mapping[str, Any]) -> str:
    parts = [str(waiver.get("justification") or "no justification given")]
    if waiver.get("owner"):
        parts.append(f"owner {waiver['owner']}")
    parts.append(f"expires {waiver['expires']}" if waiver.get("expires") else "no expiry")
    if waiver.get("file") is not None:
        parts.append(f"waiver {waiver.get('file')} entry {waiver.get('index')}")
    return "; ".join(parts)
