"""JUnit XML of a run: each testcase named by its check id, title and host.

pytest names a testcase after the last part of its node id (`test_enforcing[SEL-001-local]`). A CI
server's test list should read like the report: `SEL-001 SELinux runs in enforcing mode [local]`.
`junit_name` is that name, a pure function of the host and the check.

Two writers, one file format:
- a single run's junit.xml is pytest's own (junitxml: it holds a user's other tests of the same run too);
  the plugin's adapter (postfix_compliance/plugin/junit_names.py) sets each check's testcase name;
- `render(run)` writes the same testcases from a run result, for what has no pytest session behind it:
  `fleet merge` and `fleet run`. Its testcases are pytest's, element for element (xunit2, as the suite's
  pytest.ini sets): a failed check a <failure>, one the suite could not judge an <error> (the adapter
  makes pytest's say so too), each with the check's report as message and text ("SEL-001 HOST: FAIL:
  ..."), a not applicable or waived one a <skipped type="pytest.skip">.
  What it cannot know is left out: the source line pytest puts before a skip's reason, and a crashed
  check's traceback (its message stands instead).
"""

from __future__ import annotations

import platform
import re
import time
import xml.etree.ElementTree as ET

from postfix_compliance.run import CheckResult, HostResult, RunResult

SUITE_NAME = "postfix-compliance"  # pytest.ini's junit_suite_name
MESSAGE_ATTR_BUDGET = 500  # pytest's: the message attribute is cut, the element text holds it all


def junit_name(host: HostResult, check: CheckResult) -> str:
    return f"{check.check_id} {check.title} [{host.id}]"


def classname(check: CheckResult) -> str:
    """pytest's classname of a check's testcase: its module, dotted (`tests_host.test_audit`)."""
    path = check.nodeid.split("::", 1)[0]
    return path.removesuffix(".py").replace("/", ".") if path else "tests_host"


_ILLEGAL_XML = re.compile("[^\u0009\u000a\u000d\u0020-\u007e\u0080-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """A character XML cannot carry shown as #xNN, as pytest's junitxml shows it (bin_xml_escape)."""
    return _ILLEGAL_XML.sub(lambda m: f"#x{ord(m.group()):02X}" if ord(m.group()) <= 0xFF
                            else f"#x{ord(m.group()):04X}", text)


def shorten_message(message: str, budget: int = MESSAGE_ATTR_BUDGET) -> str:
    """pytest's cut of a message attribute: whole lines while they fit, a longer first line cut, then a
    line pointing to the element text."""
    lines = message.splitlines() or [""]
    kept: list[str] = []
    size = 0
    for line in lines:
        if kept and size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    shortened = "\n".join(kept)
    first_line_cut = len(shortened) > budget
    if first_line_cut:
        shortened = shortened[:budget] + "..."
    remaining = len(lines) - len(kept)
    if remaining:
        note = f"+{remaining} more line{'s' if remaining > 1 else ''}"
    elif first_line_cut:
        note = "truncated"
    else:
        return message
    return f"{shortened}\n[{note}; full report in element text]"


def _testcase(host: HostResult, check: CheckResult) -> ET.Element:
    case = ET.Element("testcase", {"classname": classname(check), "name": xml_text(junit_name(host, check))},
                      time=f"{check.duration_s:.3f}")
    if check.outcome in ("fail", "error"):
        text = f"{check.check_id} {host.id}: {check.outcome.upper()}: {check.message}"
        failure = ET.SubElement(case, "failure" if check.outcome == "fail" else "error",
                                message=xml_text(shorten_message(text)))
        failure.text = xml_text(text)
    elif check.outcome == "waived":
        reason = f"waived: {(check.waiver or {}).get('justification', '')}"
        skipped = ET.SubElement(case, "skipped", type="pytest.skip", message=xml_text(reason))
        skipped.text = xml_text(reason)
    elif check.outcome == "not_applicable":
        skipped = ET.SubElement(case, "skipped", type="pytest.skip", message=xml_text(check.message))
        skipped.text = xml_text(check.message)
    return case


def render(run: RunResult) -> str:
    """The run's checks as one JUnit testsuite, host by host, in the run's order."""
    counts = {"fail": 0, "error": 0, "skipped": 0, "tests": 0}
    cases = []
    for host, check in run.checks():
        cases.append(_testcase(host, check))
        counts["tests"] += 1
        if check.outcome in ("fail", "error"):
            counts[check.outcome] += 1
        elif check.outcome in ("waived", "not_applicable"):
            counts["skipped"] += 1
    suite = ET.Element("testsuite", name=SUITE_NAME, errors=str(counts["error"]), failures=str(counts["fail"]),
                       skipped=str(counts["skipped"]), tests=str(counts["tests"]),
                       time=f"{max(0.0, run.ended - run.started):.3f}",
                       timestamp=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(run.started)),
                       hostname=platform.node())
    suite.extend(cases)
    suites = ET.Element("testsuites", name="pytest tests")
    suites.append(suite)
    return '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(suites, encoding="unicode")
