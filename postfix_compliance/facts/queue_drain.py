"""Queue drain: flush once, then poll the queue until it drains, is re-deferred, or time runs out.

This is the one place the suite changes a host (`postqueue -f`, documented, and turned off by
--no-flush). It lives in the fact layer so that the drain check itself never runs a command. When the
queue has settled is the checks' judgement (the profile's threshold): they pass it in as `settled`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

from postfix_compliance.facts import model
from postfix_compliance.facts.evidence import Evidence
from postfix_compliance.facts.parsers import parse
from postfix_compliance.facts.probes import FLUSH_COMMAND, Probe

# Polls after the flush with no message leaving deferred before the flush is judged to have
# changed nothing (qmgr normally acts on a flush within milliseconds).
STALL_POLLS = 3


@dataclasses.dataclass(frozen=True)
class DrainPlan:
    """How this run drains a host's queue (Q-002), decided once from the options and the profile."""

    timeout: float
    poll_interval: float
    flush: bool  # False with --no-flush / --read-only: the queue is only watched


@dataclasses.dataclass
class DrainOutcome:
    drained: bool
    verdict: str  # drained | re-deferred | timeout | flush-failed | unreadable
    elapsed: float
    polls: int
    flushed: bool
    remaining: tuple[model.QueueMessage, ...] = ()
    detail: str = ""
    timeline: list[tuple[float, int, int]] = dataclasses.field(default_factory=list)
    final_queue: model.QueueState | None = None  # the queue at the last poll
    final_evidence: Evidence | None = None  # that poll's evidence (probe queue_json or queue_text)

    @property
    def emptied(self) -> bool:
        """The suite flushed and the queue drained: the queue now is `final_queue`."""
        return self.flushed and self.drained and self.final_queue is not None


def drain_queue(facts: Any, settled: Callable[[model.QueueState], bool], timeout: float, poll_interval: float,
                flush: bool = True, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> DrainOutcome:
    """Flush (unless `flush` is False) and poll until `settled(queue)` holds with nothing flushed still
    in flight, the flushed mail is back in deferred, or `timeout` seconds have passed."""
    runner = facts.runner
    start_queue = facts.queue()
    poll_probe_name = "queue_json" if start_queue.source == "json" else "queue_text"
    poll_probe = Probe(poll_probe_name, facts.evidence[poll_probe_name].command)
    before = {m.queue_id for m in start_queue.in_queue("deferred")}
    started = clock()
    outcome = DrainOutcome(False, "timeout", 0.0, 0, False)

    if settled(start_queue):
        outcome.drained, outcome.verdict = True, "drained"
        outcome.detail = f"{start_queue.deferred_count} deferred before any flush"
        return outcome

    if flush:
        flush_ev = runner.run(Probe("queue_flush", FLUSH_COMMAND))
        facts.record(flush_ev)
        outcome.flushed = True
        if flush_ev.error or flush_ev.exit_status != 0:
            outcome.verdict = "flush-failed"
            outcome.detail = f"`{FLUSH_COMMAND}` failed: {flush_ev.error or flush_ev.stderr.strip() or flush_ev.exit_status}"
            outcome.remaining = start_queue.in_queue("deferred")
            return outcome

    seen_moving = False
    last_ev = None
    while True:
        sleep(poll_interval)
        ev = runner.run(poll_probe)
        last_ev = ev
        outcome.polls += 1
        now = clock() - started
        queue = parse(ev)
        if not isinstance(queue, model.QueueState):
            facts.record(ev)
            outcome.verdict, outcome.elapsed = "unreadable", now
            outcome.detail = getattr(queue, "reason", "queue output not understood")
            return outcome
        deferred = {m.queue_id for m in queue.in_queue("deferred")}
        outcome.timeline.append((round(now, 3), len(deferred), queue.active_count))
        outcome.remaining = queue.in_queue("deferred")
        outcome.final_queue = queue
        outcome.final_evidence = ev
        outcome.elapsed = now
        in_flight = before & {m.queue_id for m in queue.in_queue("active")}
        if settled(queue) and not in_flight:  # flushed mail still active may be deferred again
            outcome.drained, outcome.verdict = True, "drained"
            break
        if queue.active_count or not before <= deferred:
            seen_moving = True
        nothing_delivered = before <= deferred and queue.active_count == 0
        if flush and nothing_delivered and (seen_moving or outcome.polls >= STALL_POLLS):
            outcome.verdict = "re-deferred"
            outcome.detail = ("the flushed messages were tried and are back in deferred, nothing active"
                              if seen_moving else
                              f"no deferred message left the queue in {outcome.polls} polls after the flush")
            break
        if now >= timeout:
            outcome.verdict = "timeout"
            break
    if last_ev is not None:
        facts.record(last_ev)
    return outcome
