"""The results stage renders what it rendered before: every output of every scenario snapshot and VM
recording equals tests/data/golden/ (recorded before the stage was rebuilt; see tests/results_golden.py)."""

from __future__ import annotations

import difflib
import os

import pytest

from results_golden import GOLDEN, all_batches, comparable, run_all


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, dict[str, str]]:
    return run_all(str(tmp_path_factory.mktemp("golden")))


def test_every_run_has_a_recording():
    assert sorted(os.listdir(GOLDEN)) == sorted(name for name, _, _ in all_batches())


@pytest.mark.parametrize("name", [name for name, _, _ in all_batches()])
def test_outputs_equal_the_recording(outputs, name):
    diffs = []
    for output, text in sorted(outputs[name].items()):
        with open(os.path.join(GOLDEN, name, output), encoding="utf-8") as handle:
            recorded = comparable(output, handle.read())
        text = comparable(output, text)
        if text != recorded:
            diff = difflib.unified_diff(recorded.splitlines(), text.splitlines(), f"golden/{name}/{output}",
                                        f"now/{name}/{output}", lineterm="", n=2)
            diffs.append("\n".join(list(diff)[:40]))
    if diffs:
        pytest.fail("\n".join(diffs), pytrace=False)
