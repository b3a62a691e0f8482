"""Postfix: postconf, postfix check, the queue (postqueue -j, postqueue -p / mailq), mail logs."""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import json
import re
import time
from typing import Any

from ..evidence import Evidence
from ..model import (LogLine, MailLog, PostfixCheckResult, PostfixConfig, QueueMessage,
                     QueueRecipient, QueueState, Unavailable, Unparsed)
from ._common import failure, lines, parser, unexpected
from ..probes import MAIL_SYSTEM_DOWN, QUEUE_MISLABELLED

_POSTCONF_LINE = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+) =(?: (?P<value>.*))?$")


@parser()
def parse_postconf(ev: Evidence) -> PostfixConfig | Unparsed:
    """`postconf NAME...` and `postconf -n`; stderr warnings (unknown parameter) are ignored."""
    out = lines(ev.stdout)
    if not out and ev.exit_status:
        return failure(ev)
    params = {}
    for line in out:
        m = _POSTCONF_LINE.match(line)
        if not m:
            return unexpected(ev, line)
        params[m["name"]] = m["value"] or ""
    return PostfixConfig(params)


@parser()
def parse_postfix_check(ev: Evidence) -> PostfixCheckResult:
    # Under a pipe `postfix check` may exit 1 and print nothing: the status is the message then.
    messages = tuple(line.strip() for line in lines(ev.stdout + "\n" + ev.stderr))
    return PostfixCheckResult(ev.exit_status or 0, messages)


# postqueue before 3.1 knows no -j: it prints its usage, or getopt's complaint.
_NO_JSON = ("invalid option", "fatal: usage:", "illegal option", "postqueue -j needs Postfix 3.1 or newer",
            MAIL_SYSTEM_DOWN, QUEUE_MISLABELLED)
_FATAL = re.compile(r"^\S+: fatal: .*$", re.MULTILINE)


def _queue_trouble(ev: Evidence) -> Unparsed | None:
    """`postqueue: fatal: Queue report unavailable - mail system is down` and the like."""
    m = _FATAL.search(ev.stderr) or _FATAL.search(ev.stdout)
    return Unparsed(ev.probe, m.group(0).strip()) if m else None


def _json_message(data: Any) -> QueueMessage | None:
    """One `postqueue -j` object; None when a field has the wrong type or is missing."""
    if not isinstance(data, dict):
        return None
    texts = [data.get(key) for key in ("queue_name", "queue_id", "sender")]
    numbers = [data.get(key) for key in ("arrival_time", "message_size")]
    recipients = data.get("recipients", [])
    forced_expire = data.get("forced_expire")  # Postfix >= 3.5 only
    if (not all(isinstance(t, str) for t in texts)
            or not all(n is None or (isinstance(n, int) and not isinstance(n, bool)) for n in numbers)
            or not isinstance(recipients, list)
            or not (forced_expire is None or isinstance(forced_expire, bool))):
        return None
    parsed = []
    for recipient in recipients:
        if not isinstance(recipient, dict) or not isinstance(recipient.get("address"), str):
            return None
        reason = recipient.get("delay_reason")
        if reason is not None and not isinstance(reason, str):
            return None
        parsed.append(QueueRecipient(recipient["address"], reason))
    queue_name, queue_id, sender = texts
    return QueueMessage(queue_name, queue_id, numbers[0], numbers[1], sender, tuple(parsed), forced_expire)


@parser(*_NO_JSON)
def parse_queue_json(ev: Evidence) -> QueueState | Unparsed:
    trouble = _queue_trouble(ev)
    if trouble:
        return trouble
    if ev.exit_status:
        return failure(ev)
    messages = []
    for line in lines(ev.stdout):
        try:
            message = _json_message(json.loads(line))
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            message = None
        if message is None:
            return unexpected(ev, line, "not a postqueue -j message")
        messages.append(message)
    return QueueState(tuple(messages), "json")


_QUEUE_HEADER = re.compile(r"^-Queue ID-\s+--Size--\s+-+Arrival Time-+\s+-Sender/Recipient-+$")
_QUEUE_TRAILER = re.compile(r"^-- \d+ Kbytes in \d+ Requests?\.$")
_QUEUE_ENTRY = re.compile(
    r"^(?P<queue_id>[0-9A-Za-z]+)(?P<flag>[*!]?)\s+(?P<size>\d{1,18})\s+"
    r"(?P<arrival>\w{3} \w{3}\s+\d{1,2} \d\d:\d\d:\d\d)\s+(?P<sender>.*)$")
_QUEUE_REASON = re.compile(r"^\s*\((?P<reason>.*)\)$")
_QUEUE_RECIPIENT = re.compile(r"^\s+(?P<address>\S.*)$")
# mailq marks active messages with `*` and held ones with `!`; it prints deferred, incoming and
# maildrop messages alike, so an unmarked message is reported as deferred (the usual case).
_QUEUE_BY_FLAG = {"*": "active", "!": "hold", "": "deferred"}


@parser(MAIL_SYSTEM_DOWN, QUEUE_MISLABELLED)
def parse_queue_text(ev: Evidence) -> QueueState | Unparsed:
    trouble = _queue_trouble(ev)
    if trouble:
        return trouble
    if ev.exit_status:
        return failure(ev)
    messages: list[QueueMessage] = []
    reason: str | None = None
    for line in lines(ev.stdout):
        if line.strip() == "Mail queue is empty" or _QUEUE_HEADER.match(line) or _QUEUE_TRAILER.match(line):
            continue
        entry, why, recipient = _QUEUE_ENTRY.match(line), _QUEUE_REASON.match(line), _QUEUE_RECIPIENT.match(line)
        if entry:
            reason = None
            messages.append(QueueMessage(_QUEUE_BY_FLAG[entry["flag"]], entry["queue_id"], None,
                                         int(entry["size"]), entry["sender"].strip(), ()))
        elif messages and why:
            reason = why["reason"]  # applies to the recipients that follow
        elif messages and recipient:
            last = messages[-1]
            recipients = last.recipients + (QueueRecipient(recipient["address"].strip(), reason),)
            messages[-1] = dataclasses.replace(last, recipients=recipients)
        else:
            return unexpected(ev, line)
    return QueueState(tuple(messages), "text")


# `Nov 28 13:14:57 host postfix/smtp[1055]: msg` (syslog, journalctl -o short, Postfix's
# maillog_file, optionally with fractional seconds) or an RFC 3339 stamp (rsyslog's file format).
_LOG_LINE = re.compile(
    r"^(?P<timestamp>\w{3} +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)?"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r" (?P<host>\S+) (?P<program>[^\s\[:]+)(?:\[(?P<pid>\d{1,10})\])?: ?(?P<message>.*)$")
# journalctl markers (`-- No entries --`, `-- Boot ... --`) and syslogd's repeat notices.
_LOG_NOISE = re.compile(r"^-- .* --$|^\S.* last message repeated \d+ times?$")


def _mail_log(ev: Evidence) -> MailLog | Unparsed:
    log: list[LogLine] = []
    for line in lines(ev.stdout):
        if _LOG_NOISE.match(line.strip()):
            continue
        m = _LOG_LINE.match(line)
        if m:
            pid = int(m["pid"]) if m["pid"] else None
            log.append(LogLine(m["timestamp"], m["host"], m["program"], pid, m["message"], line))
        elif log and line[:1].isspace():
            # journalctl indents the continuation lines of a multi-line message.
            last = log[-1]
            log[-1] = dataclasses.replace(last, message=f"{last.message}\n{line.strip()}", raw=f"{last.raw}\n{line}")
        else:
            return unexpected(ev, line)
    return MailLog(tuple(log))


@parser("No journal files were found", "System has not been booted with systemd")
def parse_journal(ev: Evidence) -> MailLog | Unparsed:
    if ev.exit_status and not ev.stdout.strip():
        return failure(ev)
    return _mail_log(ev)


@parser()
def parse_maillog(ev: Evidence) -> MailLog | Unparsed | Unavailable:
    if ev.exit_status == 1 and not ev.stdout.strip():
        # The probe exits 1 itself when neither maillog_file nor a syslog mail log is readable.
        return Unavailable(ev.probe, "no readable mail log (maillog_file, /var/log/maillog, /var/log/mail.log)")
    if ev.exit_status:
        return failure(ev)
    text = ev.stdout
    first, _, rest = text.partition("\n")
    clock = _HOST_CLOCK.match(first.strip())
    if not clock:
        return _mail_log(ev)
    log = _mail_log(dataclasses.replace(ev, stdout=rest))
    if not isinstance(log, MailLog):
        return log
    now = int(clock["now"])
    offset = (1 if clock["sign"] == "+" else -1) * (int(clock["hh"]) * 3600 + int(clock["mm"]) * 60)
    timed = tuple(dataclasses.replace(line, epoch=_line_epoch(line.timestamp, now, offset)) for line in log.lines)
    return MailLog(timed, now, offset)


_HOST_CLOCK = re.compile(r"^now=(?P<now>\d{1,12}) (?P<sign>[+-])(?P<hh>\d\d)(?P<mm>\d\d)$")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), start=1)}


def _line_epoch(timestamp: str, host_now: int, offset: int) -> float | None:
    """A syslog time (`Nov 28 13:14:57`, host local, no year) or an ISO one, in seconds since the epoch."""
    try:
        if timestamp[:1].isdigit():
            return datetime.datetime.fromisoformat(timestamp).timestamp()
        month, day, clock = timestamp.split()
        hh, mm, ss = (int(float(x)) for x in clock.split(":"))
        year = time.gmtime(host_now + offset).tm_year
        epoch = calendar.timegm((year, _MONTHS[month], int(day), hh, mm, ss, 0, 0, 0)) - offset
        if epoch > host_now + 86400:  # a December line read in January
            epoch = calendar.timegm((year - 1, _MONTHS[month], int(day), hh, mm, ss, 0, 0, 0)) - offset
        return float(epoch)
    except (ValueError, KeyError, OverflowError):
        return None

