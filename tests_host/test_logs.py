"""Postfix's log: no fatal, panic or permission-denied lines in the window."""

import re

from postfix_compliance.checks import bullet_list, check, require_postfix
from postfix_compliance.facts import model
from postfix_compliance.facts.host import not_applicable

BAD_LINE = re.compile(r"\b(fatal|panic):|permission denied", re.I)


@check(id="LOG-001", title="No fatal, panic or permission-denied Postfix log lines in the window",
       severity="high", section="Verification",
       rationale="After the fix the log must be quiet: a fatal line is a daemon that stopped, a "
                 "permission-denied line a denial that the queue will show next.",
       remediation=["journalctl -u postfix -n 40 --no-pager", "ausearch -m avc -ts recent | audit2why"],
       references=["runbook: Verification & Acceptance Criteria (journalctl -u postfix)"])
def test_no_fatal_log_lines(facts):
    require_postfix(facts)
    logs = [facts.get(p) for p in ("journal", "maillog")]
    usable = [log for log in logs if isinstance(log, model.MailLog)]
    if not usable:
        unparsed = [log for log in logs if isinstance(log, model.Unparsed)]
        if unparsed:
            facts.need(unparsed[0].probe)
        raise not_applicable("no journal and no readable mail log on this host")
    bad, seen = [], set()
    for log in usable:
        for line in log.lines:
            if line.program.startswith("postfix") and BAD_LINE.search(line.message) and line.raw not in seen:
                seen.add(line.raw)
                bad.append(line.raw)
    assert not bad, f"{len(bad)} fatal/permission log lines:\n" + bullet_list(bad)
