"""Snapshots for the report tests: a healthy Debian 12 host and the broken states derived from it.

tests/data/healthy-debian12.json is a full snapshot (every probe of a run) whose outputs come from
tests/reference/debian12-selinux-enforcing (real outputs of an enforcing guest); every check passes or
does not apply on it. The functions below copy it and change a few outputs, the way a host breaks.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any, Callable

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
HEALTHY = os.path.join(DATA, "healthy-debian12.json")

# What a host prints when it tries to attack the reader of its report.
HOSTILE = ("<img src=x onerror=\"document.title='pwned'\">\n"
           "<script>document.title='pwned'</script>\n"
           "</pre></div><b id=injected>bold</b>\n"
           "</script><svg onload=\"document.title='pwned'\">")

# A queue directory relabelled tmp_t: qmgr is denied the deferred directory (pid/serial/time vary).
DEFERRED_DENIAL = ("type=AVC msg=audit({stamp}:{serial}): avc:  denied  {{ search }} for  pid={pid} comm=\"qmgr\" "
                   "name=\"deferred\" dev=\"vda\" ino=5411 scontext=system_u:system_r:postfix_qmgr_t:s0 "
                   "tcontext=system_u:object_r:tmp_t:s0 tclass=dir permissive=0")
# Real: postdrop run over ssh writes to sshd's pipe (tests/reference/.../avc_records_raw.txt).
PIPE_DENIAL = ("type=AVC msg=audit({stamp}:{serial}): avc:  denied  {{ write }} for  pid={pid} comm=\"postdrop\" "
               "path=\"pipe:[22878]\" dev=\"pipefs\" ino=22878 "
               "scontext=unconfined_u:unconfined_r:postfix_postdrop_t:s0-s0:c0.c1023 "
               "tcontext=system_u:system_r:sshd_t:s0 tclass=fifo_file permissive=0")
# Local delivery denied the mail spool (the boolean off): a denial of mail flow.
SPOOL_DENIAL = ("type=AVC msg=audit({stamp}:{serial}): avc:  denied  {{ append }} for  pid={pid} comm=\"local\" "
                "name=\"root\" dev=\"vda\" ino=4242 scontext=system_u:system_r:postfix_local_t:s0 "
                "tcontext=system_u:object_r:mail_spool_t:s0 tclass=file permissive=0")
UNRELATED_DENIAL = ("type=AVC msg=audit({stamp}:{serial}): avc:  denied  {{ search }} for  pid={pid} "
                    "comm=\"systemd-udevd\" name=\"fs\" dev=\"proc\" ino=11168 scontext=system_u:system_r:udev_t:s0 "
                    "tcontext=system_u:object_r:sysctl_fs_t:s0 tclass=dir permissive=0")


def load_healthy() -> dict[str, Any]:
    with open(HEALTHY, encoding="utf-8") as handle:
        return json.load(handle)


def evidence(doc: dict[str, Any], probe: str) -> dict[str, Any]:
    for ev in doc["evidence"]:
        if ev["probe"] == probe:
            return ev
    raise KeyError(probe)


def set_output(doc: dict[str, Any], probe: str, stdout: str, stderr: str = "", exit_status: int | None = 0) -> None:
    ev = evidence(doc, probe)
    ev.update(stdout=stdout, stderr=stderr, exit_status=exit_status, error=None)


def denials(*lines: str) -> str:
    return "".join(f"----\ntime->Sat Nov 28 13:15:00 2026\n{line}\n" for line in lines)


def permissive(doc: dict[str, Any]) -> None:
    """`setenforce 0`: runtime permissive, config still enforcing."""
    set_output(doc, "getenforce", "Permissive\n")
    sestatus = evidence(doc, "sestatus")["stdout"].replace("Current mode:                   enforcing",
                                                          "Current mode:                   permissive")
    set_output(doc, "sestatus", sestatus)


def spool_mislabelled(doc: dict[str, Any], pid: int = 1020, serial: int = 600, stamp: str = "1795871700.100",
                      extra_denials: tuple[str, ...] = ()) -> None:
    """`chcon -R -t tmp_t /var/spool/postfix/deferred`, and qmgr denied it."""
    set_output(doc, "queue_dir_relabel",
               "Would relabel /var/spool/postfix/deferred from system_u:object_r:tmp_t:s0 to "
               "system_u:object_r:postfix_spool_maildrop_t:s0\n")
    lines = [DEFERRED_DENIAL.format(stamp=stamp, serial=serial, pid=pid), *extra_denials]
    set_output(doc, "avc_denials", denials(*lines))


def hostile(doc: dict[str, Any]) -> None:
    """A host that prints markup into its outputs (getenforce cannot be parsed: SEL-001 errors)."""
    set_output(doc, "getenforce", HOSTILE + "\n")
    set_output(doc, "postfix_check", "", HOSTILE + "\n", 1)


def make(tmp_dir: str, name: str, *changes: Callable[[dict[str, Any]], None], host: str | None = None,
         base: dict[str, Any] | None = None) -> str:
    """Write a snapshot: the healthy one (or `base`) with `changes` applied; returns its path."""
    doc = copy.deepcopy(base or load_healthy())
    if host:
        doc["host"] = host
    for change in changes:
        change(doc)
    os.makedirs(tmp_dir, exist_ok=True)
    path = os.path.join(str(tmp_dir), f"{name}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1)
    return path
