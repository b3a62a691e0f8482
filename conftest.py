# The compliance suite's pytest plugin: options, hosts, facts, the results stage and its outputs.
pytest_plugins = [
    "postfix_compliance.plugin",
    "postfix_compliance.plugin.html_report",
    "postfix_compliance.plugin.junit_names",
]
