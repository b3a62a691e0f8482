"""pytest's JUnit (junitxml) in the suite's words: each check's testcase named by report/junit.py's
`junit_name`, and a check the suite could not judge an <error>, as report/junit.py's `render` writes it.

pytest keeps attributes set on a testcase's reporter over its own (that is how the
`record_xml_attribute` fixture works, which is experimental and refused under xunit2); this sets
"name", a standard attribute in every JUnit family (xunit2 included), on the controller, as each
check's decisive report arrives. classname (the module), file and line stay.

pytest writes an exception in a test's call phase as a <failure> and one in its set-up as an <error>
"failed on setup with ...". The suite's ERROR (evidence missing, host unreachable) may come from
either; after junitxml has written the element, it becomes one <error> whose message is the check's
report ("SEL-001 HOST: ERROR: ..."), and the suite's counts follow (errors, failures).
"""

from __future__ import annotations

from typing import Any

import pytest

from postfix_compliance.plugin.results_stage import check_of
from postfix_compliance.report.junit import junit_name, shorten_message, xml_text


def _log_xml(config: pytest.Config) -> Any:
    from _pytest.junitxml import xml_key  # the key the record_xml_attribute fixture uses too
    return config.stash.get(xml_key, None)


class JunitNames:
    def __init__(self, config: pytest.Config):
        self.config = config

    @staticmethod
    def _decisive(report: pytest.TestReport) -> bool:
        return report.when == "call" or (report.when == "setup" and not report.passed)

    @pytest.hookimpl(tryfirst=True)  # before junitxml opens (or reuses) this report's testcase
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self._decisive(report):
            return
        found = check_of(self.config, report)
        xml = _log_xml(self.config)
        if found is not None and xml is not None:
            xml.node_reporter(report).add_attribute("name", junit_name(*found))


class JunitErrors:
    """After junitxml: a check's ERROR as one <error> element (a separate plugin: JunitNames runs first)."""

    def __init__(self, config: pytest.Config):
        self.config = config

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Any:
        yield
        if not JunitNames._decisive(report) or not report.failed:
            return
        found = check_of(self.config, report)
        xml = _log_xml(self.config)
        if found is None or found[1].outcome != "error" or xml is None:
            return
        for node in reversed(xml.node_reporter(report).nodes):
            if node.tag not in ("failure", "error"):
                continue
            if node.tag == "failure":
                node.tag = "error"
                xml.stats["failure"] -= 1
                xml.stats["error"] += 1
            if isinstance(report.longrepr, str):  # the check's own report, not a crash's traceback
                node.set("message", xml_text(shorten_message(report.longrepr)))
            break


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # junitxml writes on the controller only
        config.pluginmanager.register(JunitNames(config), "postfix-compliance-junit-names")
        config.pluginmanager.register(JunitErrors(config), "postfix-compliance-junit-errors")
