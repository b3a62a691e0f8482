"""Check metadata: every check carries its id, title, severity, runbook section, rationale,
remediation, rollback and references, declared right on the test function."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import pytest

# The runbook's words (severities, sections in its order) live where the renderers may read them too.
from postfix_compliance.runbook import SECTIONS, SEVERITIES


@dataclasses.dataclass(frozen=True)
class CheckMeta:
    id: str
    title: str
    severity: str
    section: str
    rationale: str
    remediation: tuple[str, ...]
    rollback: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    static: bool = False
    intrusive: bool = False
    function: str = ""
    module: str = ""

    @property
    def markers(self) -> tuple[str, ...]:
        marks = ("static",) if self.static else ("runtime",)
        return marks + (("intrusive",) if self.intrusive else ())


CATALOG: dict[str, CheckMeta] = {}


def check(id: str, title: str, severity: str, section: str, rationale: str,
          remediation: tuple[str, ...] | list[str] = (), rollback: tuple[str, ...] | list[str] = (),
          references: tuple[str, ...] | list[str] = (), static: bool = False,
          intrusive: bool = False) -> Callable:
    """Declare a check: `@check(id="SEL-001", ...)` on a test that takes `facts`."""
    if severity not in SEVERITIES:
        raise ValueError(f"{id}: severity {severity!r} not in {SEVERITIES}")
    if not isinstance(section, str) or not section.strip() or len(section) > 80 or not section.isprintable():
        # The runbook's sections come first, in its order; a site's own sections follow (report/ ranks them).
        raise ValueError(f"{id}: section {section!r}: one line of text, e.g. one of {SECTIONS} or your own")

    def decorate(function: Callable) -> Callable:
        meta = CheckMeta(id=id, title=title, severity=severity, section=section, rationale=rationale,
                         remediation=tuple(remediation), rollback=tuple(rollback),
                         references=tuple(references), static=static, intrusive=intrusive,
                         function=function.__name__, module=function.__module__)
        existing = CATALOG.get(id)
        if existing and existing.function != meta.function:  # the same file imported twice is fine
            raise ValueError(f"check id {id} declared twice ({existing.module}.{existing.function})")
        CATALOG[id] = meta
        function.check_meta = meta  # type: ignore[attr-defined]
        for marker in meta.markers:
            function = getattr(pytest.mark, marker)(function)
        return function

    return decorate


def meta_of(item: pytest.Item) -> CheckMeta | None:
    # Asked several times a check: a Function's test object itself (a bound method reads its function's
    # attributes), not item.function, whose getimfunc raises and catches an AttributeError each time.
    if type(item) is pytest.Function:
        return getattr(item.obj, "check_meta", None)
    function = getattr(item, "function", None)
    return getattr(function, "check_meta", None)


# ---------------------------------------------------------------------- shared preconditions
def selinux_enabled(facts: Any) -> bool:
    """False when the host's SELinux is disabled (or absent): SEL-001 reports that as the failure.

    An image gate has no running kernel to ask (getenforce is not collected there): the image's
    configuration says whether it will run SELinux, and its policy store answers offline."""
    from postfix_compliance.facts import model
    if facts.collected("getenforce"):
        mode = facts.get("getenforce")
        return isinstance(mode, model.SelinuxMode) and mode.mode != "disabled"
    config = facts.get("selinux_config")
    return isinstance(config, model.SelinuxConfig) and config.selinux in ("enforcing", "permissive")


def require_selinux(facts: Any) -> None:
    """Checks of policy state cannot be judged without SELinux: not applicable, SEL-001 fails."""
    from postfix_compliance.facts.host import not_applicable
    if not selinux_enabled(facts):
        raise not_applicable("SELinux is disabled or absent on this host (see SEL-001)")


def require_labels(facts: Any) -> None:
    """File labels can only be read from a kernel running SELinux: an image gate on a machine without
    it sees `?` for every file, and `restorecon -n` then reports nothing, whatever the labels are."""
    from postfix_compliance.facts import model
    from postfix_compliance.facts.host import not_applicable
    require_selinux(facts)
    labels = facts.get("queue_dir_label")
    if isinstance(labels, model.FileLabels) and labels.labels and labels.labels[0].context is None:
        raise not_applicable("this kernel reports no file labels (ls -Z shows '?'); labels are judged on the "
                             "running host")


def require_postfix(facts: Any) -> None:
    from postfix_compliance.facts.host import not_applicable
    if not facts.postfix_installed():
        raise not_applicable("Postfix is not installed (postconf not found)")


def bullet_list(lines: Any, limit: int = 25) -> str:
    """Failure messages list every item; a very long list is cut with a count."""
    lines = list(lines)
    shown = lines[:limit]
    more = f"\n  … and {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n".join(f"  - {line}" for line in shown) + more
