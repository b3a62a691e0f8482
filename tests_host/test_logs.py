"""Postfix's log: no fatal, panic or permission-denied lines in the window."""

import re

from postfix_compliance.checks import bullet_list, check, require_postfix
from postfix_compliance.facts import model
from postfix_compliance.facts.host import not_applicable
from postfix_compliance.facts.probes import window_start

BAD_LINE = re.compile(r"\b(fatal|panic):|permission denied", re.I)


def _window_lines(facts):
    """The journal (already read for the window), else the mail log file cut to the window."""
    journal = facts.get("journal")
    if isinstance(journal, model.MailLog):
        return journal.lines, "journal"
    maillog = facts.get("maillog")
    if isinstance(maillog, model.MailLog):
        if maillog.host_now is None:
            return maillog.lines, "mail log (no host clock: whole tail)"
        start = window_start(facts.since, maillog.host_now, maillog.utc_offset or 0)
        return tuple(line for line in maillog.lines if start is None or line.epoch is None
                     or line.epoch >= start), "mail log"
    for fact in (journal, maillog):
        if isinstance(fact, model.Unparsed):
            facts.need(fact.probe)
    raise not_applicable("no journal and no readable mail log on this host")


@check(id="LOG-001", title="No fatal, panic or permission-denied Postfix log lines in the window",
       severity="high", section="Verification",
       rationale="After the fix the log must be quiet: a fatal line is a daemon that stopped, a "
                 "permission-denied line a denial that the queue will show next.",
       remediation=["journalctl -u postfix -n 40 --no-pager", "ausearch -m avc -ts recent | audit2why"],
       references=["runbook: Verification & Acceptance Criteria (journalctl -u postfix)"])
def test_no_fatal_log_lines(facts):
    require_postfix(facts)
    lines, source = _window_lines(facts)
    bad = list(dict.fromkeys(line.raw for line in lines
                             if line.program.startswith("postfix") and BAD_LINE.search(line.message)))
    assert not bad, f"{len(bad)} fatal/permission lines in the {source} (window {facts.since}):\n" + \
        bullet_list(bad)
