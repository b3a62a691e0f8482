"""Every output file a run or a merge writes from the run result, in one table.

Each entry is an option (`--remediation-script FILE`), what it writes (a file, or a directory of files),
the file mode, and `render(run, context)`: a pure function of the decided run and of what the writer
knows besides it (RenderContext). The suite's plugin (plugin/outputs.py) and `fleet merge` both write
through `write_outputs`, so a merge of shards writes what the single run writes. results.json and the
HTML pages have their writers of their own (results_file.py: the file format; report/html.py).

JUnit (`--junitxml`, pytest's own option) is in the table for the merge: in a pytest run, pytest's
junitxml writes that file (it holds a user's other tests of the run too, which a run result does not),
so the plugin leaves the entries marked `pytest_writes` to it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping

from postfix_compliance.atomicfile import PRIVATE_EXECUTABLE_MODE, PRIVATE_MODE, READABLE_MODE, write_atomic
from postfix_compliance.filenames import host_file_stems
from postfix_compliance.report import junit, metrics, playbook, remediation, xccdf
from postfix_compliance.run import RunResult


@dataclasses.dataclass(frozen=True)
class RenderContext:
    """What a renderer may know besides the run: the checks' catalogue (every check gets an XCCDF Rule, one
    that did not run too) and who ran it (XCCDF's identity)."""
    catalog: Mapping[str, Mapping[str, Any]] | None = None
    local_user: str | None = None
    sudo: bool = False


@dataclasses.dataclass(frozen=True)
class FileOutput:
    dest: str  # the option's dest, also fleet merge's
    flag: str
    kind: str  # "file", or "dir": render returns (file name, text) pairs
    mode: int
    help: str
    render: Callable[[RunResult, RenderContext], Any]
    pytest_writes: bool = False  # in a pytest run, pytest's own plugin writes this file


def _xccdf_options(context: RenderContext) -> dict[str, Any]:
    return {"catalog": context.catalog, "local_user": context.local_user, "sudo": context.sudo}


def _xccdf_per_host(run: RunResult, context: RenderContext) -> list[tuple[str, str]]:
    """One file per host: SCAP consumers render one TestResult of a file."""
    stems = host_file_stems([(h.name, h.id) for h in run.hosts])
    return [(f"{stem}.xccdf.xml", xccdf.render(dataclasses.replace(run, hosts=(host,)), **_xccdf_options(context)))
            for host, stem in zip(run.hosts, stems)]


OUTPUTS: tuple[FileOutput, ...] = (
    FileOutput("metrics", "--metrics", "file", READABLE_MODE,  # node_exporter reads it as another user
               "Prometheus textfile-collector metrics (one gauge per host x check) to FILE, atomically",
               lambda run, context: metrics.render(run)),
    FileOutput("remediation_script", "--remediation-script", "file", PRIVATE_EXECUTABLE_MODE,
               "a shell script (for review, never run by the suite) of each host's remediation plan, one block per "
               "host, in runbook order",
               lambda run, context: remediation.render(run)),
    FileOutput("remediation_playbook", "--remediation-playbook", "file", PRIVATE_MODE,
               "an Ansible playbook (for review, never run by the suite) of the same plans, one play per host, in "
               "runbook order (docs/ansible.md)",
               lambda run, context: playbook.render(run)),
    FileOutput("xccdf", "--xccdf", "file", PRIVATE_MODE, "the results as an XCCDF 1.2 Benchmark with one TestResult per host (for OpenSCAP and other SCAP "
               "tools; see docs/scap.md), atomically",
               lambda run, context: xccdf.render(run, **_xccdf_options(context))),
    FileOutput("xccdf_dir", "--xccdf-dir", "dir", PRIVATE_MODE, "one XCCDF 1.2 file per host in DIR (HOST.xccdf.xml): `oscap xccdf generate report` renders one "
               "TestResult of a file, so a fleet needs a file each",
               _xccdf_per_host),
    FileOutput("xmlpath", "--junitxml", "file", PRIVATE_MODE, "JUnit XML, a testcase per host and check (a merge writes OUT_DIR/junit.xml too)",
               lambda run, context: junit.render(run), pytest_writes=True),
)


def write_outputs(run: RunResult, paths: Mapping[str, str | None], context: RenderContext,
                  in_pytest: bool = False) -> None:
    """Each output whose path is given, written atomically (postfix_compliance/atomicfile.py); in a pytest
    run (`in_pytest`), not those pytest writes itself."""
    for output in OUTPUTS:
        path = paths.get(output.dest)
        if not path or in_pytest and output.pytest_writes:
            continue
        rendered = output.render(run, context)
        if output.kind == "dir":
            for name, text in rendered:
                write_atomic(os.path.join(path, name), text, mode=output.mode)
        else:
            write_atomic(path, rendered, mode=output.mode)
