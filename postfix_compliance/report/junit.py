"""JUnit XML (pytest's own junitxml): each testcase is named by its check id, title and host.

pytest names a testcase after the last part of its node id (`test_enforcing[SEL-001-local]`). A CI
server's test list should read like the report: `SEL-001 SELinux runs in enforcing mode [local]`.
`junit_name` is that name, a pure function of the host and the check; the plugin's adapter
(postfix_compliance/plugin/junit_names.py) sets it as each testcase's "name" attribute.
"""

from __future__ import annotations

from postfix_compliance.run import CheckResult, HostResult


def junit_name(host: HostResult, check: CheckResult) -> str:
    return f"{check.check_id} {check.title} [{host.id}]"
