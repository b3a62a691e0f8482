"""Benchmark: every probe's parser, and profile detection, on adversarial host output at the output cap.

A host may print anything up to --max-probe-output (4 MiB by default) per probe; a parser that backtracks
turns that into minutes (one AVC line ending in 40,000 characters took 15 s before the audit parser's
patterns were made linear). For each probe this feeds its parser one stream of SIZE bytes per shape:
one long line of one character, the probe's own sample lines padded to SIZE with characters that
patterns like to backtrack on, a prefix repeated (`avc: denied { `, `key=`), and the sample lines
repeated to SIZE. It prints one line per probe with the worst shape and its seconds, then the worst of
all. Nothing is asserted: the figures are for reading (and for docs/, with the machine they came from).

    .venv/bin/python bench/parser_bench.py                 # 4 MiB
    .venv/bin/python bench/parser_bench.py --size 1M       # faster
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from test_parsers_fuzz import BOOLEAN_PROBE, COMMANDS, own_samples  # noqa: E402

from postfix_compliance.facts.collect import parse_size  # noqa: E402
from postfix_compliance.facts.evidence import Evidence  # noqa: E402
from postfix_compliance.facts.parsers import PARSERS, parser_for  # noqa: E402
from postfix_compliance.profiles import detect_profile  # noqa: E402

PADDING = ("a", " ", "=", ":", '"', "'", "{", "x=y ", "avc: denied { ", "\t")


def shapes(probe: str, size: int) -> dict[str, str]:
    lines = [line for text in own_samples(probe) for line in text.splitlines() if line.strip()][:8]
    out = {f"line of {pad!r}": pad * (size // len(pad)) for pad in PADDING}
    for index, line in enumerate(lines):
        for pad in PADDING:
            out[f"sample line {index} + {pad!r}"] = line + pad * ((size - len(line)) // len(pad))
    if lines:
        block = "\n".join(lines) + "\n"
        out["samples repeated"] = block * max(1, size // len(block))
    return out


def worst(parser, probe: str, size: int) -> tuple[float, str]:
    slowest = (0.0, "")
    for name, text in shapes(probe, size).items():
        ev = Evidence(probe=probe, command=COMMANDS.get(probe, "true"), exit_status=0, stdout=text, stderr="")
        started = time.perf_counter()
        parser(ev)
        slowest = max(slowest, (time.perf_counter() - started, name))
    return slowest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4M", help="bytes per stream (K, M suffixes), default 4M")
    size = parse_size(parser.parse_args().size)
    overall = (0.0, "")
    for probe in [*PARSERS, BOOLEAN_PROBE]:
        seconds, shape = worst(PARSERS.get(probe) or parser_for(probe), probe, size)
        print(f"parse_{probe}_s {seconds:.3f}  (worst: {shape})", flush=True)
        overall = max(overall, (seconds, f"{probe}: {shape}"))
    for name, args in {"ID_LIKE of a million names": ("linux", "9", ("x",) * (size // 2)),
                       "VERSION_ID padded": ("rhel", " " * size + "9", ())}.items():
        started = time.perf_counter()
        detect_profile(*args)
        seconds = time.perf_counter() - started
        print(f"detect_profile_s {seconds:.3f}  ({name})", flush=True)
        overall = max(overall, (seconds, f"detect_profile: {name}"))
    print(f"parser_bench size={size} worst {overall[0]:.3f}s ({overall[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
