# The compliance suite's pytest plugin: options, hosts, facts, outcomes and reports.
pytest_plugins = [
    "postfix_compliance.plugin",
    "postfix_compliance.report.html",
    "postfix_compliance.report.junit",
    "postfix_compliance.report.waivers",
    "postfix_compliance.report.baseline",
    "postfix_compliance.report.metrics",
    "postfix_compliance.report.remediation",
    "postfix_compliance.report.playbook",
    "postfix_compliance.report.xccdf",
]
