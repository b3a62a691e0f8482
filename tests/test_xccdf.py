"""--xccdf FILE: XCCDF 1.2 results that OpenSCAP's own validator accepts, for every scenario snapshot.

Every snapshot in fixtures/hosts/ runs through the suite (many to one invocation, as the scenario
matrix runs them: the matrix's profile, else the profile detected per host) with --xccdf; each file
must pass `oscap xccdf validate`, and each host's rule-results must say what results.json says of
it. oscap missing is a failure, not a skip: `scripts/bootstrap.sh --dev` installs openscap-utils.
Also: a hostile host (control characters, `<`, `&`, `]]>`) still gives a valid document, a waived
check is `pass` with an <override> recording the waiver, and a broken document does fail oscap.
"""

from __future__ import annotations

import concurrent.futures
import glob
import html
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import yaml

from selftest import HOSTS_DIR, REPO, SuiteRun, run_suite

sys.path.insert(0, os.path.join(REPO, "tests", "scenarios"))
import build_snapshots as builder  # noqa: E402

from postfix_compliance.report import xccdf  # noqa: E402

NS = {"x": "http://checklists.nist.gov/xccdf/1.2"}
HOSTS_PER_RUN = 18
MAPPING = {"pass": "pass", "fail": "fail", "error": "error", "not_applicable": "notapplicable", "waived": "pass"}

with open(os.path.join(REPO, "tests", "scenarios", "matrix.yaml"), encoding="utf-8") as _handle:
    _MATRIX = yaml.safe_load(_handle)
PROFILES = {entry["name"]: entry["profile"] for entry in _MATRIX["scenarios"]}
EXTRA_ARGS = [str(a) for a in _MATRIX.get("args", [])]
SNAPSHOTS = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(HOSTS_DIR, "*.json")))


def oscap() -> str:
    path = shutil.which("oscap")
    assert path, "oscap is missing: `scripts/bootstrap.sh --dev` installs it (Debian package openscap-utils)"
    return path


def validate(path: str) -> subprocess.CompletedProcess:
    return subprocess.run([oscap(), "xccdf", "validate", path], capture_output=True, text=True, timeout=120)


def assert_valid(path: str) -> None:
    proc = validate(path)
    assert proc.returncode == 0, f"oscap xccdf validate {path}: exit {proc.returncode}\n{proc.stdout[-3000:]}" \
                                 f"\n{proc.stderr[-3000:]}"


def host_id(name: str) -> str:
    return f"snapshot://fixtures/hosts/{name}.json"


def results_by_target(path: str) -> dict[str, ET.Element]:
    """target URL (the postfix-compliance:target fact) -> its TestResult."""
    root = ET.parse(path).getroot()
    found = {}
    for result in root.findall("x:TestResult", NS):
        fact = result.find(f"x:target-facts/x:fact[@name='{xccdf.FACT_PREFIX}target']", NS)
        found[fact.text] = result
    return found




def rule_results(result: ET.Element) -> dict[str, ET.Element]:
    return {rr.get("idref"): rr for rr in result.findall("x:rule-result", NS)}


# ----------------------------------------------------------------------------- every snapshot


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[SuiteRun, str]]:
    """snapshot name -> (the suite run that judged it, its --xccdf file)."""
    groups: dict[str, list[str]] = {}
    for name in SNAPSHOTS:
        profile = PROFILES.get(name)
        groups.setdefault("detect" if profile is None or "/" not in profile else profile, []).append(name)
    batches = []
    for key, names in groups.items():
        chunks = max(1, -(-len(names) // HOSTS_PER_RUN))
        batches += [(key, names[i::chunks]) for i in range(chunks)]
    base = tmp_path_factory.mktemp("xccdf")

    def run(index: int, key: str, names: list[str]) -> tuple[list[str], SuiteRun, str]:
        out = str(base / f"run{index}.xccdf.xml")
        profile = [] if key == "detect" else [f"--profile={key}"]
        suite_run = run_suite(f"--hosts={','.join(host_id(n) for n in names)}", *profile, *EXTRA_ARGS,
                              f"--xccdf={out}", report_dir=str(base / f"run{index}"), timeout=300)
        return names, suite_run, out

    found: dict[str, tuple[SuiteRun, str]] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for names, suite_run, out in pool.map(lambda b: run(*b), [(i, k, n) for i, (k, n) in enumerate(batches)]):
            for name in names:
                found[name] = (suite_run, out)
    return found


@pytest.fixture(scope="module")
def validated(runs) -> dict[str, subprocess.CompletedProcess]:
    """--xccdf file -> oscap's verdict on it (each file validated once)."""
    files = sorted({out for _, out in runs.values()})
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(files, pool.map(validate, files)))


def test_every_fixture_snapshot_is_covered():
    assert len(SNAPSHOTS) >= 40 and "healthy-rhel9" in SNAPSHOTS and "permissive" in SNAPSHOTS


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_snapshot_xccdf_validates_and_matches_the_outcomes(runs, validated, name):
    suite_run, out = runs[name]
    assert os.path.exists(out), suite_run.stdout[-3000:] + suite_run.stderr[-3000:]
    proc = validated[out]
    assert proc.returncode == 0, f"oscap xccdf validate: exit {proc.returncode}\n{proc.stdout[-3000:]}" \
                                 f"{proc.stderr[-3000:]}"
    records = [r for r in suite_run.results["results"] if r["host"] == host_id(name)]
    assert records, f"{name}: no records"
    result = results_by_target(out)[host_id(name)]
    by_rule = rule_results(result)
    assert len(by_rule) == len(records)
    for record in records:
        rr = by_rule[xccdf.rule_id(record["check_id"])]
        assert rr.find("x:result", NS).text == MAPPING[record["outcome"]], (name, record["check_id"])
        assert rr.get("severity") == record["severity"]
        if record["outcome"] in ("fail", "error", "not_applicable"):
            messages = [m.text for m in rr.findall("x:message", NS)]
            assert record["message"] in messages, (name, record["check_id"], messages)
    assert result.find("x:target", NS).text == records[0]["host_name"]
    profile = result.find("x:profile", NS).get("idref")
    assert profile == xccdf.profile_id(records[0]["profile"])
    root = ET.parse(out).getroot()
    assert root.find(f"x:Profile[@id='{profile}']", NS) is not None


def test_rules_carry_the_catalogue_and_complianceascode_idents(runs):
    from postfix_compliance.catalog_doc import load_checks
    _, out = runs["healthy-rhel9"]
    root = ET.parse(out).getroot()
    rules = {rule.get("id"): rule for rule in root.iter(f"{{{NS['x']}}}Rule")}
    catalog = load_checks()
    assert set(rules) == {xccdf.rule_id(cid) for cid in catalog}
    sel001 = rules["xccdf_org.postfix-compliance_rule_SEL-001"]
    assert sel001.get("severity") == "high"
    assert sel001.find("x:title", NS).text == f"SEL-001 {catalog['SEL-001'].title}"
    assert sel001.find("x:rationale", NS).text == catalog["SEL-001"].rationale
    idents = {(i.get("system"), i.text) for i in sel001.findall("x:ident", NS)}
    assert idents == {("https://ncp.nist.gov/cce", "CCE-80868-0"),
                      ("https://github.com/ComplianceAsCode/content",
                       "xccdf_org.ssgproject.content_rule_selinux_state")}
    assert "setenforce 1" in sel001.find("x:fixtext", NS).text
    assert sel001.find("x:check/x:check-content-ref", NS).get("href") == "tests_host/test_selinux.py"
    # the rule-result repeats the idents (what a consumer reading only the TestResult sees)
    result = results_by_target(out)[host_id("healthy-rhel9")]
    rr = rule_results(result)["xccdf_org.postfix-compliance_rule_SEL-001"]
    assert {(i.get("system"), i.text) for i in rr.findall("x:ident", NS)} == idents
    assert result.get("start-time") and result.get("end-time")
    assert result.find("x:benchmark", NS).get("id") == xccdf.BENCHMARK_ID


def test_oscap_renders_an_html_report(runs, tmp_path):
    _, out = runs["spool-mislabelled"]
    page = tmp_path / "report.html"
    proc = subprocess.run([oscap(), "xccdf", "generate", "report", "--output", str(page), out],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = page.read_text(encoding="utf-8")
    last = ET.parse(out).getroot().findall("x:TestResult", NS)[-1]  # oscap 1.3.7 renders the last one
    assert f"{last.get('id')} | OpenSCAP Evaluation Report" in text
    assert "LBL-001 The queue directory has the profile" in text and "xccdf_org.postfix-compliance_rule_LBL-001" in text
    shown = [m.text for m in last.findall("x:rule-result/x:message", NS)]
    assert shown and all(html.escape(m, quote=False) in text for m in shown)  # messages are in the report


def test_xccdf_dir_writes_a_file_per_host_that_oscap_renders_whole(tmp_path):
    """`oscap xccdf generate report` renders one TestResult of a file (the last): with --xccdf-dir each host
    has a file of its own, valid, and its report is that host's."""
    names = ["healthy-rhel9", "spool-mislabelled", "auditd-stopped"]
    hosts = [f"snapshot://{os.path.join(HOSTS_DIR, n + '.json')}" for n in names]
    out = tmp_path / "xccdf"
    run = run_suite(f"--hosts={','.join(hosts)}", *EXTRA_ARGS, f"--xccdf-dir={out}", f"--xccdf={tmp_path / 'all.xml'}",
                    report_dir=str(tmp_path / "reports"), timeout=300)
    assert run.exit_status == 1, run.stdout[-3000:] + run.stderr[-3000:]
    files = sorted(os.listdir(out))
    assert len(files) == 3 and all(f.endswith(".xccdf.xml") for f in files), files
    whole = {r.get("id"): r for r in ET.parse(tmp_path / "all.xml").getroot().findall("x:TestResult", NS)}
    for name in files:
        path = str(out / name)
        proc = validate(path)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        [result] = ET.parse(path).getroot().findall("x:TestResult", NS)
        page = tmp_path / f"{name}.html"
        proc = subprocess.run([oscap(), "xccdf", "generate", "report", "--output", str(page), path],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"{result.get('id')} | OpenSCAP Evaluation Report" in page.read_text(encoding="utf-8")
        # The same rule-results as the host's TestResult in the one file for the fleet.
        def outcomes(test_result):
            return {rule: element.find("x:result", NS).text for rule, element in rule_results(test_result).items()}
        assert outcomes(result) in [outcomes(r) for r in whole.values()]
    assert len(files) == len(whole) == 3


# ----------------------------------------------------------------------------- hostile input

HOSTILE_NAME = "mail<1>&amp;]]>\x1b]0;pwned\x07.example.com"
HOSTILE_QDIR = "/srv/postfix<x>&y]]>\x1b[2J\x7f\u202e"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    base = tmp_path_factory.mktemp("xccdf-hostile")
    h = builder.rhel9()
    h.fqdn = HOSTILE_NAME
    h.postconf["queue_directory"] = HOSTILE_QDIR
    h.queue_dir_context = builder.ctx("var_spool_t")
    h.queue_relabels = [(HOSTILE_QDIR, builder.ctx("var_spool_t"), builder.ctx("postfix_spool_t"))]
    path = base / "hostile.json"
    path.write_text(builder.dump(builder.snapshot("hostile", h, "rhel9", "hostile host")), encoding="utf-8")
    out = str(base / "hostile.xccdf.xml")
    run = run_suite(f"--hosts=snapshot://{path}", "--profile=rhel9", *EXTRA_ARGS, f"--xccdf={out}",
                    report_dir=str(base / "reports"), timeout=300)
    return run, out, f"snapshot://{path}"


def test_hostile_host_still_gives_valid_xccdf(hostile):
    run, out, target = hostile
    assert os.path.exists(out), run.stdout[-3000:] + run.stderr[-3000:]
    raw = open(out, "rb").read()
    assert not any(b < 0x20 and b not in b"\t\n\r" for b in raw), "a raw control byte in the XML"
    assert b"]]>" not in raw and b"<1>" not in raw
    assert_valid(out)
    result = results_by_target(out)[target]
    # the text reads as the host printed it, controls shown visibly (text.inert), markup as text
    assert result.find("x:target", NS).text == "mail<1>&amp;]]>\\x1b]0;pwned\\x07.example.com"
    assert re.fullmatch(r"xccdf_org\.postfix-compliance_testresult_1_[A-Za-z0-9.-]+", result.get("id"))
    lbl001 = rule_results(result)[xccdf.rule_id("LBL-001")]
    assert lbl001.find("x:result", NS).text == "fail"
    message = " ".join(m.text for m in lbl001.findall("x:message", NS))
    assert "/srv/postfix<x>&y]]>\\x1b[2J\\x7f\\u202e" in message


def run_of(records, started: float = 0.0, ended: float = 0.0, profile=None):
    """Records (results.json's) as the RunResult a renderer takes."""
    from postfix_compliance.run import RunResult, hosts_from_records
    return RunResult(started=started, ended=ended, profile=profile, hosts=hosts_from_records(records))


def _record(**overrides: Any) -> dict[str, Any]:
    record = {"host": "ssh://root@192.0.2.7:2222", "host_name": "mail1", "profile": "rhel9", "check_id": "SEL-001",
              "title": "SELinux runs in enforcing mode", "severity": "high", "section": "Prevention",
              "outcome": "fail", "message": "runtime mode is Permissive", "remediation": ["setenforce 1"],
              "rollback": [], "references": ["CCE-80868-0", "ComplianceAsCode: selinux_state", "runbook: x"],
              "nodeid": "tests_host/test_selinux.py::test_enforcing[SEL-001-ssh://root@192.0.2.7:2222]",
              "waiver": None, "notes": []}
    record.update(overrides)
    return record


def test_render_escapes_every_character_xml_cannot_hold(tmp_path):
    nasty = "".join(map(chr, range(0x20))) + "\x7f\x9b<&>]]>\"'\ud800\ufffe\uffff\u2028 end"
    records = [_record(host_name=nasty, message=nasty, notes=[nasty], title=nasty, check_id="SEL-001"),
               _record(check_id="Q-001<&>", host=nasty, host_name=nasty + "2", outcome="error", message=nasty,
                       references=[nasty], remediation=[nasty])]
    data = xccdf.render(run_of(records, started=1.7e9, ended=1.7e9 + 5, profile=nasty)).encode()
    path = tmp_path / "nasty.xml"
    path.write_bytes(data)
    assert_valid(str(path))
    root = ET.fromstring(data)
    messages = [m.text for m in root.iter(f"{{{NS['x']}}}message")]
    assert xccdf.text(nasty) in messages
    assert "\\x1b" in xccdf.text(nasty) and "\\ufffe" in xccdf.text(nasty) and "<&>]]>" in xccdf.text(nasty)
    ids = [e.get("id") for e in root.iter() if e.get("id") and e.tag != f"{{{NS['x']}}}benchmark"]
    assert len(ids) == len(set(ids))


def test_identity_and_address_come_from_the_host_url(tmp_path):
    data = xccdf.render(run_of([_record()], started=1.7e9, ended=1.7e9 + 5)).encode()
    result = ET.fromstring(data).find("x:TestResult", NS)
    identity = result.find("x:identity", NS)
    assert (identity.text, identity.get("authenticated"), identity.get("privileged")) == ("root", "true", "true")
    assert result.find("x:target-address", NS).text == "192.0.2.7"
    assert result.get("start-time") == "2023-11-14T22:13:20Z" and result.get("end-time") == "2023-11-14T22:13:25Z"
    (tmp_path / "one.xml").write_bytes(data)
    assert_valid(str(tmp_path / "one.xml"))


def test_render_imports_no_pytest():
    code = ("import sys; from postfix_compliance.report import xccdf; "
            "from postfix_compliance.run import RunResult; "
            "xccdf.render(RunResult(started=0, ended=0, profile=None)); "
            "assert 'pytest' not in sys.modules, 'pytest imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_oscap_rejects_a_broken_document(tmp_path):
    """The validation above means something: the same document, broken, fails oscap."""
    good = xccdf.render(run_of([_record()], started=1.7e9, ended=1.7e9 + 5, profile="rhel9"))
    for name, broken in (("waived-result", good.replace("<result>fail</result>", "<result>waived</result>")),
                         ("no-end-time", good.replace(' end-time="2023-11-14T22:13:25Z"', "")),
                         ("unknown-rule", good.replace('idref="xccdf_org.postfix-compliance_rule_SEL-001" sev',
                                                       'idref="xccdf_org.postfix-compliance_rule_NOPE" sev'))):
        assert broken != good, name
        path = tmp_path / f"{name}.xml"
        path.write_text(broken, encoding="utf-8")
        assert validate(str(path)).returncode != 0, f"oscap accepted the broken document ({name})"


# ----------------------------------------------------------------------------- waivers


def test_waived_check_is_pass_with_the_waiver_recorded(tmp_path):
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers:\n"
                       "  - check: SEL-001\n"
                       "    justification: \"permissive during the CHG-42 relabel window <&>\"\n"
                       "    owner: mail-team\n"
                       "    expires: 2999-12-31\n"
                       "  - check: LBL-001\n"
                       "    justification: expired exception\n"
                       "    owner: storage-team\n"
                       "    expires: 2020-01-31\n", encoding="utf-8")
    out = str(tmp_path / "waived.xccdf.xml")
    run = run_suite(f"--hosts={host_id('permissive')},{host_id('spool-mislabelled')}", "--profile=rhel9",
                    *EXTRA_ARGS, f"--waivers={waivers}", f"--xccdf={out}", report_dir=str(tmp_path / "r"),
                    timeout=300)
    assert os.path.exists(out), run.stdout[-3000:] + run.stderr[-3000:]
    assert run.record("SEL-001", host_id("permissive"))["outcome"] == "waived"
    assert_valid(out)
    results = results_by_target(out)
    rr = rule_results(results[host_id("permissive")])[xccdf.rule_id("SEL-001")]
    assert rr.find("x:result", NS).text == "pass"
    assert rr.find("x:override", NS) is None  # see xccdf.py: OpenSCAP's schematron would reject the file
    waiver = rr.find(f"x:metadata/{{{xccdf.WAIVER_NS}}}waiver", NS)
    assert waiver.text == "permissive during the CHG-42 relabel window <&>"
    assert (waiver.get("old-result"), waiver.get("new-result")) == ("fail", "pass")
    assert waiver.get("authority") == "mail-team" and waiver.get("expires") == "2999-12-31" and waiver.get("time")
    message = rr.find("x:message", NS).text
    assert message.startswith("waived (the failure is accepted): permissive during the CHG-42 relabel window <&>")
    assert "owner mail-team" in message and "expires 2999-12-31" in message
    # an expired waiver waives nothing: the failure stands, with a warning that says so, and no override
    expired = rule_results(results[host_id("spool-mislabelled")])[xccdf.rule_id("LBL-001")]
    assert expired.find("x:result", NS).text == "fail" and expired.find("x:override", NS) is None
    assert any(m.get("severity") == "warning" and "expired" in m.text for m in expired.findall("x:message", NS))
    # the scores count the waived check as passed, as the suite's exit status does
    default = results[host_id("permissive")].find("x:score[@system='urn:xccdf:scoring:default']", NS)
    assert float(default.text) == 100.0


# ----------------------------------------------------------------------------- the option


def test_bad_xccdf_path_is_one_usage_error(tmp_path):
    (tmp_path / "dir").mkdir()
    run = run_suite(f"--hosts={host_id('healthy-rhel9')}", f"--xccdf={tmp_path / 'dir'}",
                    report_dir=str(tmp_path / "r"), timeout=120)
    assert run.exit_status == 4, run.stdout[-2000:] + run.stderr[-2000:]
    assert "--xccdf" in run.stderr and "is a directory" in run.stderr
    assert "Traceback" not in run.stderr


def test_why_a_waiver_is_no_override(tmp_path):
    """OpenSCAP's XCCDF 1.2.1 schematron rejects a TestResult in which one rule-result carries an
    <override> and another does not: the reason a waiver is recorded as metadata (xccdf.py)."""
    records = [_record(), _record(check_id="SEL-002", outcome="pass", message="")]
    good = xccdf.render(run_of(records, started=1.7e9, ended=1.7e9 + 5, profile="rhel9"))
    path = tmp_path / "good.xml"
    path.write_text(good, encoding="utf-8")
    assert_valid(str(path))
    override = ('<result>pass</result>\n   <override time="2023-11-14T22:13:25Z" authority="mail-team">'
                '<old-result>fail</old-result><new-result>pass</new-result><remark>waived</remark></override>')
    with_override = good.replace("<result>fail</result>", override, 1)
    assert with_override != good
    path = tmp_path / "override.xml"
    path.write_text(with_override, encoding="utf-8")
    proc = validate(str(path))
    assert proc.returncode != 0 and "must match the value of the 'new-result'" in proc.stdout
