"""No test waits forever: every wait on a child process in the project's tests and benchmarks has a deadline,
a child's unexpected first line fails in seconds naming that line, and pytest-timeout stands behind both.

The rule is read from the source (as tests/test_layers.py reads imports): a call that waits on a child
process (subprocess.run/call/check_call/check_output, Popen.communicate/wait) names a timeout, and nothing
reads a child's pipe (`.stdout.read()`, `.stderr.readline()`, iterating it) except through
tests/children.py, whose reads have deadlines. A wait that must be open-ended (a server's own main loop
waiting for its signal) says so with `# unbounded: <why>` on its line."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
import time

import pytest

from children import ChildFailed, read_line, start, stop

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCANNED = ("tests", "bench", "vm")
RUNNERS = {"run", "call", "check_call", "check_output"}  # subprocess.<these> wait for the child
WAITS = {"communicate", "wait"}  # Popen methods that wait; a bare .wait() on anything is suspect
PIPE_READS = {"read", "readline", "readlines"}


def _sources() -> list[str]:
    found = []
    for top in SCANNED:
        for root, dirs, files in os.walk(os.path.join(REPO, top)):
            dirs[:] = [d for d in dirs if d not in ("reference", "data", "__pycache__")]
            found += [os.path.join(root, f) for f in files if f.endswith(".py")]
    return sorted(found)


def _has_timeout(call: ast.Call, positional_at: int | None) -> bool:
    if any(k.arg == "timeout" for k in call.keywords):
        return True
    return positional_at is not None and len(call.args) > positional_at


def unbounded_waits(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text, path)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name, owner = node.func.attr, node.func.value
        what = None
        if name in RUNNERS and isinstance(owner, ast.Name) and owner.id == "subprocess":
            what = None if _has_timeout(node, None) else f"subprocess.{name} without timeout="
        elif name in WAITS and not (isinstance(owner, ast.Name) and owner.id in ("asyncio", "os")):
            # communicate(input, timeout), wait(timeout): a positional or keyword deadline
            what = None if _has_timeout(node, 1 if name == "communicate" else 0) else f".{name}() without a timeout"
        elif name in PIPE_READS and isinstance(owner, ast.Attribute) and owner.attr in ("stdout", "stderr"):
            what = f"a child's pipe read with .{owner.attr}.{name}() (use children.read_line)"
        if what and "# unbounded:" not in lines[node.lineno - 1]:
            found.append(f"{os.path.relpath(path, REPO)}:{node.lineno}: {what}")
    return found


def test_every_wait_on_a_child_has_a_deadline():
    found = [line for path in _sources() for line in unbounded_waits(path)]
    assert not found, "\n".join(found)


def test_the_rule_sees_each_kind_of_unbounded_wait(tmp_path):
    """The scan itself can fail: each form it exists for is found, each bounded form is not."""
    bad = tmp_path / "bad.py"
    bad.write_text(textwrap.dedent("""\
        import subprocess
        subprocess.run(["true"])
        subprocess.check_output(["true"])
        proc = subprocess.Popen(["cat"], stdout=subprocess.PIPE)
        proc.communicate()
        proc.wait()
        proc.stdout.readline()
        proc.stderr.read()
        subprocess.run(["true"], timeout=5)
        proc.communicate(None, 5)
        proc.communicate(timeout=5)
        proc.wait(5)
        handle = open(__file__); handle.read()
        proc.wait()  # unbounded: a server's own main loop
    """))
    assert [line.split(": ", 1)[1] for line in unbounded_waits(str(bad))] == [
        "subprocess.run without timeout=", "subprocess.check_output without timeout=",
        ".communicate() without a timeout", ".wait() without a timeout",
        "a child's pipe read with .stdout.readline() (use children.read_line)",
        "a child's pipe read with .stderr.read() (use children.read_line)"]


# A child that writes a warning first (on stdout, where a careless one would: the worst case) and never
# becomes ready; and one that warns on stderr, then says it is ready on stdout, as bench/replay_host.py does
# under a cryptography release that deprecates what asyncssh imports.
_WARNS_AND_HANGS = ("import sys, time\n"
                    "print('CryptographyDeprecationWarning: DSA is deprecated', flush=True)\n"
                    "time.sleep(3600)\n")
_WARNS_THEN_READY = ("import sys, time\n"
                     "print('CryptographyDeprecationWarning: DSA is deprecated', file=sys.stderr, flush=True)\n"
                     "print('ready hosts=2', flush=True)\n"
                     "time.sleep(3600)\n")


def test_a_child_that_warns_first_and_never_becomes_ready_fails_in_seconds_naming_the_line(tmp_path):
    child = start([sys.executable, "-c", _WARNS_AND_HANGS], stderr_path=str(tmp_path / "err"))
    started = time.monotonic()
    try:
        with pytest.raises(ChildFailed) as failed:
            read_line(child, expect="ready hosts=2", timeout=5)
    finally:
        stop(child)
    assert time.monotonic() - started < 5, "an unexpected first line fails at once, not at the deadline"
    assert "CryptographyDeprecationWarning: DSA is deprecated" in str(failed.value)
    assert child.poll() is not None


def test_a_child_that_prints_nothing_fails_at_the_deadline(tmp_path):
    child = start([sys.executable, "-c", "import time; time.sleep(3600)"], stderr_path=str(tmp_path / "err"))
    started = time.monotonic()
    try:
        with pytest.raises(ChildFailed, match=r"no line within 1\.0s"):
            read_line(child, expect="ready", timeout=1.0)
    finally:
        stop(child)
    assert time.monotonic() - started < 4


def test_a_child_that_exits_before_its_line_fails_with_its_status_and_stderr(tmp_path):
    child = start([sys.executable, "-c", "import sys; sys.exit('cannot bind 127.0.0.2:22')"],
                  stderr_path=str(tmp_path / "err"))
    with pytest.raises(ChildFailed, match=r"(?s)exited with status 1.*cannot bind 127\.0\.0\.2:22"):
        read_line(child, expect="ready", timeout=10)
    stop(child)


def test_warnings_on_stderr_do_not_break_the_protocol_on_stdout(tmp_path):
    child = start([sys.executable, "-c", _WARNS_THEN_READY], stderr_path=str(tmp_path / "err"))
    try:
        assert read_line(child, expect="ready hosts=", timeout=10) == "ready hosts=2"
    finally:
        stop(child)
    assert "DSA is deprecated" in (tmp_path / "err").read_text()


def test_pytest_timeout_stops_a_test_that_waits_forever(tmp_path):
    """The backstop: the project's pytest.ini gives every test a deadline (tests/vm a longer one)."""
    (tmp_path / "test_hang.py").write_text("import time\ndef test_hangs():\n    time.sleep(3600)\n")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=2",
                           str(tmp_path / "test_hang.py")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Timeout" in proc.stdout, proc.stdout
    assert time.monotonic() - started < 30
    ini = open(os.path.join(REPO, "tests", "pytest.ini"), encoding="utf-8").read()
    assert "\ntimeout = " in ini
