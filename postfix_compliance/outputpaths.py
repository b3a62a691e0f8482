"""Where the suite will write, checked before any host is contacted.

`--metrics FILE`, `--remediation-script FILE`, `--remediation-playbook FILE`, `--record-snapshot DIR` and `--report-dir DIR` are
written at the end of a run, after every host was checked: a path that cannot be written would
then cost the whole run and end in a traceback. Each is checked up front instead, and a problem is
one UsageError line naming the option and the path.

Writable is asked of the file system itself (a probe file created and removed in the directory the
output will go to), not of os.access(): as root, access() says yes to /proc and read-only mounts.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from postfix_compliance.errors import UsageError
from postfix_compliance.private_dirs import check_private_dir
from postfix_compliance.report import outputs as report_outputs

# option dest -> (command-line spelling, "file" or "dir"): the renderers' table, and the suite's directories
OUTPUTS = (
    *((o.dest, o.flag, o.kind) for o in report_outputs.OUTPUTS),
    ("record_snapshot", "--record-snapshot", "dir"),
    ("report_dir", "--report-dir", "dir"),
)

REPORT_FILES = ("results.json", "compliance.html", "junit.xml")


def check_output_paths(config: Any) -> None:
    """Raise UsageError for the first output option whose path cannot be written as it should."""
    for dest, flag, kind in OUTPUTS:
        if dest == "report_dir" and config.getoption("no_reports", False):
            continue
        path = config.getoption(dest, None)
        if path is None:
            continue
        check_output_path(flag, str(path), kind)
        if dest == "report_dir":
            for name in REPORT_FILES:  # written inside it at the end
                inner = os.path.join(str(path), name)
                if os.path.isdir(inner):
                    raise UsageError(f"{flag} {path}: {inner} is a directory, where the report file goes")


def check_renderer_paths(paths: Any) -> None:
    """The renderers' outputs a merge writes (report/outputs.py: dest -> path), checked as the suite checks them."""
    for output in report_outputs.OUTPUTS:
        if paths.get(output.dest):
            check_output_path(output.flag, paths[output.dest], output.kind)


def check_output_path(flag: str, path: str, kind: str) -> None:
    where = f"{flag} {path}"
    if not path.strip():
        raise UsageError(f"{flag}: needs a path")
    if os.path.lexists(path):
        if kind == "file" and os.path.islink(path):
            # The writers replace a link at the path (they never write through it): only the
            # directory it stands in matters.
            _probe_writable(where, os.path.dirname(os.path.abspath(path)))
        elif kind == "file":
            if os.path.isdir(path):
                raise UsageError(f"{where}: is a directory, expected a file")
            if not os.path.isfile(path):  # a device or FIFO would be replaced by the atomic rename
                raise UsageError(f"{where}: exists and is not a regular file")
            _probe_writable(where, os.path.dirname(os.path.abspath(path)))
        else:
            # Reports and snapshots carry host evidence, and --baseline may read them back: a directory
            # another user can write is refused (private_dirs); one the suite makes is 0700.
            check_private_dir(path, flag)
            _probe_writable(where, path)
        return
    # Not there yet: the writers create missing parents, so the nearest existing one must be a
    # directory in which something can be created.
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError(f"{where}: cannot be created: {parent} is not a directory")
    _probe_writable(where, parent)


def _probe_writable(where: str, directory: str) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".postfix-compliance-probe-", dir=directory)
    except OSError as exc:
        raise UsageError(f"{where}: cannot create a file in {directory}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass
