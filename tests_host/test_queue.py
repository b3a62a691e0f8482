"""The mail queue: deferred count, drain after a flush, and permission failures in delay reasons."""

from postfix_compliance.checks import bullet_list, check, require_postfix


def _settled(profile):
    """When the drain (Q-002's flush and polls, shared with Q-001) may stop: no more deferred messages
    than the profile allows. Both checks pass this one, whichever of them runs the drain first."""
    threshold = profile.deferred_threshold
    return lambda queue: queue.deferred_count <= threshold


def _message_lines(messages):
    lines = []
    for m in messages:
        reasons = "; ".join(sorted({r.delay_reason or "no reason given" for r in m.recipients})) or "no recipients"
        lines.append(f"{m.queue_id} from {m.sender or '<>'} to "
                     f"{', '.join(r.address for r in m.recipients) or '?'}: {reasons}")
    return lines


@check(id="Q-001", title="Deferred messages within the profile's threshold", severity="high", section="Symptom",
       rationale="A growing deferred queue is the runbook's symptom: mail accepted but not delivered.",
       remediation=["postqueue -p | head -n 30", "journalctl -u postfix -n 80 --no-pager",
                    "ausearch -m avc -ts recent | tail -n 40"],
       references=["runbook: Symptom & Impact"])
def test_deferred_threshold(facts, profile):
    require_postfix(facts)
    queue = facts.queue()
    deferred = queue.in_queue("deferred")
    drain = facts.drained(_settled(profile)) if len(deferred) > profile.deferred_threshold else None
    if drain is not None and drain.emptied:
        # The suite's own flush drained what was deferred: the queue now is what counts.
        after = drain.final_queue.in_queue("deferred")
        facts.say(f"{len(deferred)} deferred when collected, {len(after)} after the suite's flush "
                  f"(drained in {drain.elapsed:.2f}s, see Q-002)")
        assert len(after) <= profile.deferred_threshold, \
            f"{len(after)} deferred messages after the flush ({len(deferred)} before; threshold " \
            f"{profile.deferred_threshold}):\n" + bullet_list(_message_lines(after))
        return
    assert len(deferred) <= profile.deferred_threshold, \
        f"{len(deferred)} deferred messages (threshold {profile.deferred_threshold}):\n" + \
        bullet_list(_message_lines(deferred))


@check(id="Q-002", title="The deferred queue drains after a flush", severity="high", section="Verification",
       intrusive=True,
       rationale="The runbook's acceptance criterion: after the fix, `postqueue -f` delivers what was stuck.",
       remediation=["postqueue -f", "mailq", "journalctl -u postfix -n 40 --no-pager"],
       references=["runbook: Verification & Acceptance Criteria"])
def test_queue_drains(facts, profile):
    require_postfix(facts)
    facts.queue()  # not applicable where the queue cannot be read
    outcome = facts.drain(_settled(profile))
    timeout = facts.drain_plan.timeout
    how = f"after {outcome.elapsed:.2f}s, {outcome.polls} polls" + ("" if outcome.flushed else ", no flush")
    facts.note(f"drain decision: {outcome.verdict} {how}; deferred/active per poll: {outcome.timeline}")
    assert outcome.drained, {
        "re-deferred": f"queue does not drain ({how}): {outcome.detail}",
        "timeout": f"queue did not drain within {timeout:g}s ({how})",
    }.get(outcome.verdict, f"queue drain could not be judged ({how}): {outcome.detail}") + \
        ":\n" + bullet_list(_message_lines(outcome.remaining))


@check(id="Q-003", title="No queued message was deferred by a permission failure", severity="high",
       section="Root cause",
       rationale="'Permission denied' in a delay reason is the filesystem or SELinux refusing Postfix, not "
                 "the remote side: a relabel or boolean fixes it, a retry does not.",
       remediation=["ausearch -m avc -ts recent | audit2why",
                    "restorecon -Rv \"$(postconf -h queue_directory)\"",
                    "setsebool -P postfix_local_write_mail_spool on"],
       references=["runbook: Root Cause Analysis"])
def test_no_permission_failures(facts):
    require_postfix(facts)
    queue = facts.queue()
    denied = [m for m in queue.messages
              if any("permission denied" in (r.delay_reason or "").lower() for r in m.recipients)]
    assert not denied, f"{len(denied)} messages deferred by permission failures:\n" + \
        bullet_list(_message_lines(denied))
