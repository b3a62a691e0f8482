"""A check's compliance outcome from pytest's report, and pytest's report made inert for the terminal."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from postfix_compliance.errors import EvidenceError
from postfix_compliance.text import inert


def classify(report: pytest.TestReport, excinfo: Any) -> tuple[str, str]:
    """The compliance outcome of one check and its one-line message."""
    if report.passed:
        return "pass", ""
    if report.skipped:
        if excinfo is not None:
            return "not_applicable", str(getattr(excinfo.value, "msg", excinfo.value))
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return "not_applicable", reason.removeprefix("Skipped: ")
    if excinfo is not None:
        if excinfo.errisinstance(AssertionError):
            return "fail", _first_line(str(excinfo.value)) or "assertion failed"
        if excinfo.errisinstance(EvidenceError):
            return "error", str(excinfo.value)
        return "error", f"{excinfo.type.__name__}: {_first_line(str(excinfo.value))}"
    return "error", "unknown failure"


def _first_line(text: str) -> str:
    # pytest appends its assertion rewrite ("assert ...") after the message; the message is enough.
    return text.split("\nassert ")[0].strip()


def make_inert(report: pytest.TestReport) -> None:
    """What pytest will print of a check (failure text, skip reason, captured output) without a raw
    control character: a traceback of a crashed check can quote what the host printed."""
    if isinstance(report.longrepr, tuple):
        report.longrepr = tuple(inert(part) if isinstance(part, str) else part for part in report.longrepr)
    elif isinstance(report.longrepr, str):
        report.longrepr = inert(report.longrepr)
    elif report.longrepr is not None:
        _inert_repr(report.longrepr)
    report.sections = [(title, inert(content)) for title, content in report.sections]


def _inert_repr(value: Any) -> Any:
    """Every string inside pytest's failure representation (dataclasses of lines), made inert in place."""
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, list):
        value[:] = [_inert_repr(v) for v in value]
    elif isinstance(value, tuple):
        return tuple(_inert_repr(v) for v in value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            object.__setattr__(value, field.name, _inert_repr(getattr(value, field.name)))
    return value


def expected(excinfo: Any) -> bool:
    return excinfo is None or excinfo.errisinstance((AssertionError, EvidenceError))
