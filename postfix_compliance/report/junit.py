"""JUnit XML (pytest's own junitxml): each testcase is named by its check id, title and host.

pytest names a testcase after the last part of its node id (`test_enforcing[SEL-001-local]`). A CI
server's test list should read like the report: `SEL-001 SELinux runs in enforcing mode [local]`.
pytest keeps attributes set on a testcase's reporter over its own (that is how the
`record_xml_attribute` fixture works, which is experimental and refused under xunit2); this sets
"name", a standard attribute in every JUnit family (xunit2 included), from the check's record, on
the controller, as each check's decisive report arrives. classname (the module), file and line stay.
"""

from __future__ import annotations

import json
from typing import Any

import pytest


def junit_name(record: dict[str, Any]) -> str:
    return f"{record['check_id']} {record['title']} [{record['host']}]"


class JunitNames:
    def __init__(self, config: pytest.Config):
        self.config = config

    @pytest.hookimpl(tryfirst=True)  # before junitxml opens (or reuses) this report's testcase
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        decisive = report.when == "call" or (report.when == "setup" and not report.passed)
        if not decisive:
            return
        record = next((json.loads(v) for k, v in report.user_properties if k == "compliance"), None)
        if record is None:
            return
        from _pytest.junitxml import xml_key  # the key the record_xml_attribute fixture uses too
        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            xml.node_reporter(report).add_attribute("name", junit_name(record))


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # junitxml writes on the controller only
        config.pluginmanager.register(JunitNames(config), "postfix-compliance-junit-names")
