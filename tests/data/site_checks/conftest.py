"""A site's own checks, as a user's repository would hold them (tests/test_extensions.py runs them): one probe
of its own with its parser, one more Postfix parameter, through the suite's hooks (hookspecs.py)."""

from postfix_compliance.facts.model import Unparsed
from postfix_compliance.facts.probes import Probe


def parse_mailname(ev):
    """/etc/mailname's one line (Debian's name for the mail system), or Unparsed."""
    lines = [line.strip() for line in ev.stdout.splitlines() if line.strip()]
    if ev.exit_status != 0 or len(lines) != 1:
        return Unparsed(ev.probe, f"expected one line from {ev.command!r} (exit {ev.exit_status})")
    return lines[0]


def pytest_compliance_probes(config):
    return [(Probe("site_mailname", "cat /etc/mailname", static=True), parse_mailname)]


def pytest_compliance_postconf_params(config):
    return ["myhostname"]
