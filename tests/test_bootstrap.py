"""scripts/bootstrap.sh on the users' own platforms: which Python builds .venv, and what it installs for it.

The script runs as README command 1 runs it, from a clone-like copy (scripts/bootstrap.sh and scripts/lib),
with PATH holding only stubs and the few tools the script uses: `python3`, `python3.1x` and the venv's
`python` are stub interpreters (real Python code runs with a stubbed version; `-m venv` and `-m pip` are
recorded, the venv remembers which interpreter made it), `dnf` lists what the test says AppStream offers
and "installs" a python3.1x by putting its stub interpreter on PATH, `apt-get`, `id` and `sudo` are stubs.
Every stub appends its command line to one log, in call order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_BASH = shutil.which("bash")
TOOLS = ("bash", "env", "dirname", "grep")   # what bootstrap.sh and scripts/lib use besides the stubs

# A stub interpreter: `<name> VERSION`. Code (-c, or - for stdin) runs in this real Python with
# sys.version_info and sys.version saying VERSION, and without ensurepip when "<stub>.no-ensurepip"
# exists (Debian's python3 before python3-venv is installed).
FAKE_PYTHON = r'''
import os, shutil, sys
version, argv0, args = sys.argv[1], sys.argv[2], sys.argv[3:]
name = os.path.basename(argv0)
major, minor = (int(x) for x in version.split("."))
no_ensurepip = os.path.exists(argv0 + ".no-ensurepip")

def record(*words):
    with open(os.environ["STUB_LOG"], "a") as log:
        log.write(" ".join([name, *words]) + "\n")

class VersionInfo(tuple):
    major = property(lambda self: self[0])
    minor = property(lambda self: self[1])
    micro = property(lambda self: self[2])

if args[:1] in (["-c"], ["-"]):
    code = args[1] if args[0] == "-c" else sys.stdin.read()
    if no_ensurepip:
        class NoEnsurepip:
            def find_spec(self, fullname, path=None, target=None):
                if fullname == "ensurepip":
                    raise ModuleNotFoundError("No module named 'ensurepip'")
        sys.meta_path.insert(0, NoEnsurepip())
    sys.version_info = VersionInfo((major, minor, 0, "final", 0))
    sys.version = f"{major}.{minor}.0 (stub)"
    sys.argv = [args[0]]
    exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
    sys.exit(0)
if args[:2] == ["-m", "venv"]:
    rest = args[2:]
    if "--help" in rest:
        print("usage: venv [-h] ENV_DIR")
        sys.exit(0)
    record("-m", "venv", *rest)
    if no_ensurepip:
        sys.exit("Error: ensurepip is not available")
    target = rest[-1]
    if "--clear" in rest and os.path.isdir(target):
        shutil.rmtree(target)
    os.makedirs(os.path.join(target, "bin"), exist_ok=True)
    with open(os.path.join(target, "pyvenv.cfg"), "w") as cfg:
        cfg.write(f"version = {major}.{minor}.0\nmade-by = {name}\n")
    python = os.path.join(target, "bin", "python")
    with open(python, "w") as stub:
        stub.write(f"#!/bin/sh\nexec {sys.executable} {os.path.abspath(__file__)} {version} \"$0\" \"$@\"\n")
    os.chmod(python, 0o755)
    sys.exit(0)
if args[:2] == ["-m", "pip"]:
    record(*args)
    sys.exit(0)
record("UNEXPECTED", *args)
sys.exit(2)
'''

# dnf: STUB_DNF_OFFERS is what AppStream offers ("python3.12 python3.11"); STUB_DNF_INSTALL_FAILS makes
# install fail as dnf does. Logged as "dnf[root]" or "dnf[user]" after the effective user (id/sudo stubs).
FAKE_DNF = r'''
import os, sys
args = sys.argv[1:]
root = os.environ.get("STUB_UID") == "0" or os.environ.get("STUB_SUDO") == "1"
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(" ".join(["dnf[root]" if root else "dnf[user]", *args]) + "\n")
offers = os.environ.get("STUB_DNF_OFFERS", "").split()
words = [a for a in args if not a.startswith("-")]
if words[:1] == ["list"]:
    found = [p for p in words[1:] if p in offers]
    if not found:
        sys.exit("Error: No matching Packages to list")
    print("Available Packages")
    for p in found:
        print(f"{p}.x86_64{' ' * 20}{p[6:]}.1-1.el9_4{' ' * 10}rhel-9-for-x86_64-appstream-rpms")
    sys.exit(0)
if words[:1] == ["install"]:
    if not root:
        sys.exit("Error: This command has to be run with superuser privileges (under the root user on most systems).")
    if os.environ.get("STUB_DNF_INSTALL_FAILS"):
        sys.exit("Error: Failed to download metadata for repo 'rhel-9-for-x86_64-appstream-rpms'")
    for p in words[1:]:
        if p not in offers:
            sys.exit(f"Error: Unable to find a match: {p}")
        stub = os.path.join(os.environ["STUB_BIN"], p)   # what the package puts on PATH: /usr/bin/python3.1x
        with open(stub, "w") as f:
            f.write(os.environ["STUB_PYTHON_TEMPLATE"].replace("VERSION", p[len("python"):]))
        os.chmod(stub, 0o755)
    sys.exit(0)
sys.exit(f"Error: stub dnf does not know {args}")
'''


class Host:
    """A clone-like directory and a PATH of stubs: the machine bootstrap.sh runs on."""

    def __init__(self, tmp_path: Path, script_root: Path = REPO) -> None:
        self.root = tmp_path
        self.clone = tmp_path / "clone"
        self.bin = tmp_path / "bin"
        self.log = tmp_path / "calls.log"
        (self.clone / "scripts").mkdir(parents=True)
        shutil.copy2(script_root / "scripts" / "bootstrap.sh", self.clone / "scripts" / "bootstrap.sh")
        if (script_root / "scripts" / "lib").is_dir():
            shutil.copytree(script_root / "scripts" / "lib", self.clone / "scripts" / "lib")
        self.bin.mkdir()
        for tool in TOOLS:
            (self.bin / tool).symlink_to(shutil.which(tool))
        (tmp_path / "fake_python.py").write_text(FAKE_PYTHON)
        (tmp_path / "fake_dnf.py").write_text(FAKE_DNF)
        self.log.write_text("")
        self.python_template = f'#!/bin/sh\nexec {sys.executable} {tmp_path / "fake_python.py"} VERSION "$0" "$@"\n'
        self._script(self.bin / "id", '[ "$1" = -u ] && echo "$STUB_UID"\n')
        self._script(self.bin / "sudo", f'echo "sudo $*" >> {self.log}\nSTUB_SUDO=1 exec "$@"\n')
        self.env = {"PATH": str(self.bin), "HOME": str(tmp_path), "STUB_LOG": str(self.log), "STUB_UID": "0",
                    "STUB_BIN": str(self.bin), "STUB_PYTHON_TEMPLATE": self.python_template, "LANG": "C.UTF-8"}

    @staticmethod
    def _script(path: Path, body: str) -> None:
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)

    def python(self, name: str, version: str, *, ensurepip: bool = True) -> None:
        """A stub interpreter NAME on PATH that says it is VERSION."""
        self._script(self.bin / name, self.python_template.replace("VERSION", version).removeprefix("#!/bin/sh\n"))
        if not ensurepip:
            (self.bin / f"{name}.no-ensurepip").write_text("")

    def dnf(self, offers: str, *, install_fails: bool = False) -> None:
        self._script(self.bin / "dnf", f'exec {sys.executable} {self.root / "fake_dnf.py"} "$@"\n')
        self.env["STUB_DNF_OFFERS"] = offers
        if install_fails:
            self.env["STUB_DNF_INSTALL_FAILS"] = "1"

    def apt(self) -> None:
        """apt-get: installing python3-venv gives python3 its ensurepip, as on Debian."""
        self._script(self.bin / "apt-get", f'echo "apt-get $*" >> {self.log}\n'
                                           f'case " $* " in *" python3-venv "*) {shutil.which("rm")} -f {self.bin}/python3.no-ensurepip;; esac\n')

    def bootstrap(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([REAL_BASH, str(self.clone / "scripts" / "bootstrap.sh"), *args], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=60)

    def calls(self, prefix: str = "") -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.startswith(prefix)]

    def venv_made_by(self) -> str | None:
        cfg = self.clone / ".venv" / "pyvenv.cfg"
        if not cfg.exists():
            return None
        return dict(line.split(" = ", 1) for line in cfg.read_text().splitlines())["made-by"]


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


QUERY = "-q list --available python3.13 python3.12 python3.11"


def assert_ready(host: Host, proc: subprocess.CompletedProcess, interpreter: str) -> None:
    assert proc.returncode == 0, proc.stderr
    assert host.venv_made_by() == interpreter, host.log.read_text()
    assert host.calls(f"{interpreter} -m venv") == [f"{interpreter} -m venv .venv"]
    assert host.calls("python -m pip") == LOCKED_INSTALL
    assert proc.stderr.splitlines()[-1] == "bootstrap: ready (.venv)"


# From the lock, in hash-checking mode, then the project itself built with the locked setuptools.
LOCKED_INSTALL = ["python -m pip install -q --require-hashes -r requirements/suite.lock.txt",
                  "python -m pip install -q --no-deps --no-build-isolation -e ."]


@pytest.mark.parametrize("offers,installed", [("python3.11 python3.12", "python3.12"),
                                              ("python3.11", "python3.11")],
                         ids=["rhel9-appstream-3.12-and-3.11", "rhel9-appstream-3.11-only"])
def test_rhel_installs_the_newest_python_appstream_offers(host, offers, installed):
    host.python("python3", "3.9")
    host.dnf(offers)
    proc = host.bootstrap()
    assert host.calls("dnf") == [f"dnf[root] {QUERY}", f"dnf[root] install -y -q {installed}"]
    assert_ready(host, proc, installed)
    assert f"bootstrap: python3 is 3.9.0; installing {installed} with dnf" in proc.stderr.splitlines()
    assert not host.calls("python3 -m venv")


def test_rhel_as_a_user_installs_through_sudo(host):
    host.python("python3", "3.9")
    host.dnf("python3.11 python3.12")
    host.env["STUB_UID"] = "1000"
    proc = host.bootstrap()
    assert host.calls("sudo") == [f"sudo dnf {QUERY}", "sudo dnf install -y -q python3.12"]
    assert host.calls("dnf") == [f"dnf[root] {QUERY}", "dnf[root] install -y -q python3.12"]
    assert_ready(host, proc, "python3.12")


def test_rhel8_without_python3_installs_from_appstream(host):
    """RHEL 8 minimal: no python3 at all (dnf runs on platform-python)."""
    host.dnf("python3.12 python3.11")
    proc = host.bootstrap()
    assert host.calls("dnf") == [f"dnf[root] {QUERY}", "dnf[root] install -y -q python3.12"]
    assert "bootstrap: python3 is missing; installing python3.12 with dnf" in proc.stderr.splitlines()
    assert_ready(host, proc, "python3.12")


def test_an_interpreter_already_on_path_is_used_without_dnf(host):
    host.python("python3", "3.9")
    host.python("python3.11", "3.11")
    host.python("python3.12", "3.12")
    host.dnf("python3.13 python3.12 python3.11")
    proc = host.bootstrap()
    assert host.calls("dnf") == []
    assert_ready(host, proc, "python3.12")


def test_the_newest_by_version_wins_and_one_without_ensurepip_is_passed_over(host):
    host.python("python3", "3.9")
    host.python("python3.11", "3.11")
    host.python("python3.13", "3.13", ensurepip=False)   # e.g. a python3.13 without its -venv package
    host.python("python3.12", "3.12")
    proc = host.bootstrap()
    assert_ready(host, proc, "python3.12")
    assert host.calls("python3.13") == []


def test_no_dnf_and_an_old_python_is_one_line_and_fails(host):
    host.python("python3", "3.9")
    proc = host.bootstrap()
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "bootstrap: no Python 3.11 or newer with venv on PATH (python3 is 3.9.0) and no dnf to install one: "
        "install python3.11 or newer with its venv support and run again"]
    assert not (host.clone / ".venv").exists()


def test_dnf_offering_no_new_python_is_one_line_and_fails(host):
    host.python("python3", "3.9")
    host.dnf("")
    proc = host.bootstrap()
    assert proc.returncode == 1
    assert host.calls("dnf") == [f"dnf[root] {QUERY}"]
    assert proc.stderr.splitlines() == [
        "bootstrap: python3 is 3.9.0 and dnf offers none of python3.13 python3.12 python3.11 (enable the "
        "AppStream repository; dnf said: Error: No matching Packages to list)"]
    assert not (host.clone / ".venv").exists()


def test_a_failed_dnf_install_is_one_line_and_fails(host):
    host.python("python3", "3.9")
    host.dnf("python3.12", install_fails=True)
    proc = host.bootstrap()
    assert proc.returncode == 1
    assert host.calls("dnf") == [f"dnf[root] {QUERY}", "dnf[root] install -y -q python3.12"]
    assert proc.stderr.splitlines()[-1] == (
        "bootstrap: dnf install python3.12 failed: "
        "Error: Failed to download metadata for repo 'rhel-9-for-x86_64-appstream-rpms'")
    assert len(proc.stderr.splitlines()) == 2   # the "installing" progress line, then the failure
    assert not (host.clone / ".venv").exists()


def test_a_venv_made_by_an_old_python_is_rebuilt(host):
    host.python("python3", "3.12")
    old = host.clone / ".venv"
    host.python("old-python3", "3.9")
    subprocess.run([str(host.bin / "old-python3"), "-m", "venv", str(old)], env=host.env, check=True, timeout=120)
    (old / "leftover").write_text("")
    host.log.write_text("")
    proc = host.bootstrap()
    assert proc.returncode == 0, proc.stderr
    assert host.calls("python3 -m venv") == ["python3 -m venv --clear .venv"]
    assert host.venv_made_by() == "python3"
    assert not (old / "leftover").exists()
    assert ("bootstrap: .venv has Python 3.9.0, the suite needs 3.11 or newer: rebuilding it with python3"
            in proc.stderr.splitlines())


def test_a_venv_whose_interpreter_is_gone_is_rebuilt(host):
    """.venv/bin/python a dangling link (its python3.1x package removed): venv alone would keep the link."""
    host.python("python3", "3.12")
    (host.clone / ".venv" / "bin").mkdir(parents=True)
    (host.clone / ".venv" / "bin" / "python").symlink_to("/nonexistent/python3.9")
    proc = host.bootstrap()
    assert host.calls("python3 -m venv") == ["python3 -m venv --clear .venv"]
    assert ("bootstrap: .venv has Python none that runs, the suite needs 3.11 or newer: rebuilding it with python3"
            in proc.stderr.splitlines())
    assert proc.returncode == 0, proc.stderr
    assert host.venv_made_by() == "python3"


def test_debian_path_is_unchanged(host):
    """Debian 12: python3 is 3.11 without ensurepip until apt-get installs python3-venv; dnf never runs.
    (A guard: this is what the script did before RHEL was set up, so it passes on the old script too.)"""
    host.python("python3", "3.11", ensurepip=False)
    host.python("python3.11", "3.11")
    host.apt()
    proc = host.bootstrap()
    assert host.calls("apt-get") == ["apt-get install -y -qq python3-venv"]
    assert_ready(host, proc, "python3")


def test_debian_with_a_usable_python3_installs_nothing(host):
    """A guard like the one above: apt-get is not called when python3 can already build a venv."""
    host.python("python3", "3.11")
    host.apt()
    proc = host.bootstrap()
    assert host.calls("apt-get") == []
    assert_ready(host, proc, "python3")


def test_dev_installs_the_dev_lock(host):
    host.python("python3", "3.11")  # no apt-get here: the system packages' branch is passed over
    proc = host.bootstrap("--dev")
    assert proc.returncode == 0, proc.stderr
    assert host.calls("python -m pip") == [
        "python -m pip install -q --require-hashes -r requirements/dev.lock.txt",
        "python -m pip install -q --no-deps --no-build-isolation -e ."]


def test_newest_takes_what_the_ranges_allow_today_not_the_lock(host):
    host.python("python3", "3.11")
    proc = host.bootstrap("--newest")
    assert proc.returncode == 0, proc.stderr
    assert host.calls("python -m pip") == [
        "python -m pip install -q --upgrade pip setuptools",
        "python -m pip install -q --upgrade --upgrade-strategy eager -e ."]


def test_an_unknown_option_is_one_line(host):
    host.python("python3", "3.11")
    proc = host.bootstrap("--devv")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["bootstrap: unknown option --devv (--dev, --newest)"]
    assert not (host.clone / ".venv").exists()
