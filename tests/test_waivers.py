"""--waivers: a waived failure, an expired waiver, a pattern that matches no host, malformed files."""

from __future__ import annotations

import datetime
import textwrap

import pytest

import report_snapshots as snaps
from postfix_compliance import waivers
from postfix_compliance.run import CheckResult, HostResult


@pytest.fixture(scope="module")
def permissive_host(tmp_path_factory):
    """A host whose only failing check is SEL-001 (runtime permissive)."""
    return snaps.make(tmp_path_factory.mktemp("waiver-hosts"), "permissive", snaps.permissive,
                      host="mail1.example.test")


def _waivers(tmp_path, text: str) -> str:
    path = tmp_path / "waivers.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_waived_check_shows_as_waived_with_justification(suite, tmp_path, permissive_host):
    path = _waivers(tmp_path, """\
        waivers:
          - check: SEL-001
            hosts: "mail1.*"
            justification: "permissive during the CHG-42 relabel window"
            owner: mail-team
            expires: 2999-12-31
        """)
    run = suite(f"--hosts=snapshot://{permissive_host}", "--profile=debian12", f"--waivers={path}")
    assert run.exit_status == 0, run.stdout[-2000:]
    record = run.record("SEL-001")
    assert record["outcome"] == "waived"
    assert record["waiver"]["justification"] == "permissive during the CHG-42 relabel window"
    assert record["waiver"]["owner"] == "mail-team" and record["waiver"]["expires"] == "2999-12-31"
    assert record["waiver"]["outcome"] == "fail" and record["waiver"]["expired"] is False
    assert "waived: permissive during the CHG-42 relabel window" in run.stdout  # pytest's skip reason
    assert run.results["waivers"]["applied"][0]["check_id"] == "SEL-001"


def test_expired_waiver_does_not_waive_and_fails_the_run(suite, tmp_path, permissive_host):
    path = _waivers(tmp_path, """\
        - check: SEL-001
          justification: "permissive during the CHG-42 relabel window"
          owner: mail-team
          expires: 2020-01-31
        """)
    run = suite(f"--hosts=snapshot://{permissive_host}", "--profile=debian12", f"--waivers={path}")
    assert run.exit_status == 1
    record = run.record("SEL-001")
    assert record["outcome"] == "fail"
    assert record["waiver"]["expired"] is True and record["waiver"]["expires"] == "2020-01-31"
    assert "EXPIRED WAIVER: SEL-001 on mail1.example.test expired 2020-01-31" in run.stdout
    assert run.results["waivers"]["expired"][0]["check"] == "SEL-001"


def test_host_pattern_that_matches_nothing_waives_nothing(suite, tmp_path, permissive_host):
    path = _waivers(tmp_path, """\
        - check: SEL-001
          hosts: ["db*", "ssh://db*"]
          justification: "database hosts only"
        """)
    run = suite(f"--hosts=snapshot://{permissive_host}", "--profile=debian12", f"--waivers={path}")
    assert run.exit_status == 1
    assert run.record("SEL-001")["outcome"] == "fail" and run.record("SEL-001")["waiver"] is None
    assert "unused waiver: SEL-001 hosts db*, ssh://db*: no host of this run matches" in run.stdout


def _check(check_id: str, outcome: str) -> CheckResult:
    return CheckResult(check_id, "title", "high", "Triage", outcome, "message")


def test_waiver_matches_host_url_too(tmp_path):
    wf = waivers.load(_waivers(tmp_path, """\
        - {check: MOD-001, hosts: "ssh://root@mail*", justification: "archive module, CHG-7"}
        """))
    check = wf.cover(HostResult("ssh://root@mail3", "mx3", None), _check("MOD-001", "fail"))
    assert check.outcome == "waived"


def test_waiver_never_covers_an_error(tmp_path):
    wf = waivers.load(_waivers(tmp_path, "- {check: SEL-001, justification: accepted}\n"))
    check = wf.cover(HostResult("local", "h", None), _check("SEL-001", "error"))
    assert check.outcome == "error" and check.waiver is None


def test_waiver_is_valid_through_its_expiry_day(tmp_path):
    path = _waivers(tmp_path, "- {check: SEL-001, justification: ok, expires: 2030-06-30}\n")
    on_the_day = waivers.load(path, today=datetime.date(2030, 6, 30))
    after = waivers.load(path, today=datetime.date(2030, 7, 1))
    for wf, outcome in ((on_the_day, "waived"), (after, "fail")):
        assert wf.cover(HostResult("local", "h", None), _check("SEL-001", "fail")).outcome == outcome


@pytest.mark.parametrize("text, message", [
    ("- check: SEL-001\n  owner: me\n", "waivers.yaml: [0] (check SEL-001): 'justification' is a required property"),
    ("- {check: SEL-001, justification: '   '}\n",
     "[0].justification (check SEL-001): must not be empty: say why the exception is accepted"),
    ("waivers:\n  - {check: SEL-001, justification: ok, expires: 31/12/2026}\n",
     "waivers[0].expires (check SEL-001): '31/12/2026' is not a date (YYYY-MM-DD)"),
    ("- {check: SEL-001, justification: ok, expires: 2026-02-30}\n",
     "[0].expires (check SEL-001): '2026-02-30' is not a date (YYYY-MM-DD)"),
    ("- {check: SEL-001, justification: ok, justificaton: typo}\n",
     "[0] (check SEL-001): Additional properties are not allowed ('justificaton' was unexpected)"),
    ("- {check: sel1, justification: ok}\n", "[0].check (check sel1): 'sel1' is not a check id (like SEL-001)"),
    ("- {check: SEL-001, justification: ok, hosts: 5}\n", "[0].hosts (check SEL-001):"),
    ("check: SEL-001\n", "unknown top-level key 'check'"),
    ("- check: SEL-001\n justification: [unclosed\n", "not valid YAML at line"),
    ("just text\n", "expected a list of waivers"),
])
def test_malformed_waiver_file_is_one_clear_error(tmp_path, text, message):
    path = _waivers(tmp_path, text)
    with pytest.raises(ValueError) as info:
        waivers.load(path)
    assert str(info.value).startswith(path + ": ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_malformed_waiver_file_stops_the_run_with_one_line(suite, tmp_path, permissive_host):
    path = _waivers(tmp_path, "- check: SEL-001\n  owner: me\n")
    run = suite(f"--hosts=snapshot://{permissive_host}", "--profile=debian12", f"--waivers={path}")
    assert run.exit_status == 4  # pytest's usage error
    output = run.stdout + run.stderr
    assert f"ERROR: --waivers {path}: [0] (check SEL-001): 'justification' is a required property" in output
    assert "Traceback" not in output


def test_missing_waiver_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        waivers.load(str(tmp_path / "nope.yaml"))
