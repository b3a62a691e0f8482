# The compliance suite's pytest plugin: options, hosts, facts, outcomes and reports.
pytest_plugins = ["postfix_compliance.plugin", "postfix_compliance.report.html"]
