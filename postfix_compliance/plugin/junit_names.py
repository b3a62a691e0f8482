"""JUnit testcase names (report/junit.py's `junit_name`) set through pytest's junitxml.

pytest keeps attributes set on a testcase's reporter over its own (that is how the
`record_xml_attribute` fixture works, which is experimental and refused under xunit2); this sets
"name", a standard attribute in every JUnit family (xunit2 included), on the controller, as each
check's decisive report arrives. classname (the module), file and line stay.
"""

from __future__ import annotations

import pytest

from postfix_compliance.plugin.results_stage import check_of
from postfix_compliance.report.junit import junit_name


class JunitNames:
    def __init__(self, config: pytest.Config):
        self.config = config

    @pytest.hookimpl(tryfirst=True)  # before junitxml opens (or reuses) this report's testcase
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        decisive = report.when == "call" or (report.when == "setup" and not report.passed)
        if not decisive:
            return
        found = check_of(self.config, report)
        if found is None:
            return
        from _pytest.junitxml import xml_key  # the key the record_xml_attribute fixture uses too
        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            xml.node_reporter(report).add_attribute("name", junit_name(*found))


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # junitxml writes on the controller only
        config.pluginmanager.register(JunitNames(config), "postfix-compliance-junit-names")
