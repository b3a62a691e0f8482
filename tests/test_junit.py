"""JUnit from a run result (report/junit.py `render`): what `fleet merge` and `fleet run` write.

A single run's junit.xml is pytest's own. The renderer must give the same testcases from the run's
results.json, for every outcome: pass, fail, error (evidence missing), not applicable, waived; a host's
control characters and a long message cut as pytest cuts them. (tests/test_shards.py compares a 4-shard
merge with the unsharded run the same way.)
"""

from __future__ import annotations

import os
import re
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_golden import comparable, normalise  # noqa: E402
from selftest import run_suite, snapshot  # noqa: E402

from postfix_compliance import results_file as results  # noqa: E402
from postfix_compliance.report import junit  # noqa: E402
from postfix_compliance.run import CheckResult, HostResult, RunResult  # noqa: E402

SKIP_LOCATION = re.compile(r'(<skipped type="pytest.skip" message="[^"]*">)<repo>/[\w./-]+\.py:<line>: ')
WAIVERS = """\
waivers:
  - check: BOOL-002
    hosts: ["*boolean-runtime-only*"]
    justification: "a waiver the junit test applies"
    expires: "2099-12-31"
"""


def _comparable(text: str, directory: str) -> str:
    return comparable("junit.xml", SKIP_LOCATION.sub(r"\1", normalise("junit.xml", text, directory)))


def test_rendered_from_results_equals_pytests_own(tmp_path):
    waivers = tmp_path / "waivers.yml"
    waivers.write_text(WAIVERS)
    hosts = [snapshot(n) for n in ("boolean-runtime-only", "permissive", "avc-permissive-denials", "disabled",
                                 "vm-targeted-auditd-stopped")]  # the last one did not record `postfix check`
    out = str(tmp_path / "run")
    # and a host that cannot be reached: its checks' errors are raised in set-up, not in the call
    unreachable = "ssh://root@127.0.0.1:9"
    run = run_suite(f"--hosts={','.join('snapshot://' + h for h in hosts)},{unreachable}", f"--waivers={waivers}",
                    "--poll-interval=0.1", "--postfix-check", report_dir=out)
    assert run.exit_status in (1, 2), run.stdout + run.stderr
    outcomes = {r["outcome"] for r in run.results["results"]}
    assert outcomes == {"pass", "fail", "error", "not_applicable", "waived"}, outcomes
    with open(os.path.join(out, "junit.xml"), encoding="utf-8") as handle:
        pytests = _comparable(handle.read(), out)
    rendered = _comparable(junit.render(results.run_from_document(results.load(os.path.join(out, "results.json")))),
                           out)
    assert rendered == pytests
    assert 'type="pytest.skip" message="waived: a waiver the junit test applies"' in rendered
    # a check the suite could not judge is an <error>, in pytest's file as in the renderer's
    assert '<error message="SVC-005 snapshot://' in pytests and "ERROR: probe postfix_check" in pytests
    assert '<error message="SEL-001 ssh://root@127.0.0.1:9: ERROR: ' in pytests and "failed on setup" not in pytests


def _run(message: str, outcome: str = "fail") -> RunResult:
    check = CheckResult(check_id="SEL-001", title="SELinux runs in enforcing mode", severity="high",
                        section="SELinux mode", outcome=outcome, message=message,
                        nodeid="tests_host/test_selinux.py::test_enforcing[SEL-001-h]", duration_s=0.25)
    return RunResult(started=0.0, ended=1.5, profile=None,
                     hosts=(HostResult(id="ssh://mail1", name="mail1", profile="rhel9", checks=(check,)),))


def test_a_hosts_control_characters_and_markup_stay_text():
    text = junit.render(_run("label \x1b[31mred\x07 </failure><x> & \"q\""))
    case = ET.fromstring(text.split("?>", 1)[1]).find("testsuite/testcase")
    failure = case.find("failure")
    assert case.get("classname") == "tests_host.test_selinux"
    assert case.get("name") == "SEL-001 SELinux runs in enforcing mode [ssh://mail1]"
    assert failure.text == "SEL-001 ssh://mail1: FAIL: label #x1B[31mred#x07 </failure><x> & \"q\""
    assert "\x1b" not in text and "<x>" not in text


def test_a_long_message_is_cut_in_the_attribute_and_whole_in_the_text():
    long = "\n".join(f"- denial {i}" for i in range(200))
    case = ET.fromstring(junit.render(_run(long, "error")).split("?>", 1)[1]).find("testsuite/testcase")
    failure = case.find("error")
    assert failure.text.endswith("- denial 199") and failure.text.startswith("SEL-001 ssh://mail1: ERROR: ")
    assert len(failure.get("message")) < 600 and failure.get("message").endswith("full report in element text]")
    suite = ET.fromstring(junit.render(_run(long, "error")).split("?>", 1)[1]).find("testsuite")
    assert (suite.get("tests"), suite.get("errors"), suite.get("failures"), suite.get("skipped")) == ("1", "1", "0", "0")
