"""The suite as a user installs it, for the tests that run it so: tests/test_distribution.py and the scheduled
unit from a pipx install (tests/test_operations.py).

- `dist`: the wheel and sdist, built from a copy of this checkout with the venv's own setuptools (a build in
  place writes build/ and *.egg-info into the clone, and two builds at once there collide);
- `venv`: a fresh venv outside the clone, the locked dependencies (--require-hashes) and then the wheel;
- `pipx_install`: `pipx install` of the wheel, the project's locked pipx in a PIPX_HOME and PIPX_BIN_DIR of
  its own (never the user's), the suite lock as pip's constraints so that it installs what the tests ran.

Each is made once per test process (a module's or a session's fixture calls these; what they make lives in
the session's temporary directory) and run with `clean_env()`: the installed suite must not find the clone.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from results_golden import normalise
from selftest import REPO, snapshot

HOSTS = [os.path.join(REPO, snapshot(name)) for name in ("healthy-rhel9", "auditd-stopped")]
HOST_ARG = "--hosts=" + ",".join(f"snapshot://{path}" for path in HOSTS)
SUITE_LOCK = os.path.join(REPO, "requirements", "suite.lock.txt")

_MADE: dict[str, object] = {}


def clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH, no virtualenv or pipx settings of ours: the installed suite must not find the clone."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PFC_PYTHON") and not k.startswith("PIPX_")}
    return {**env, **extra}


def run(argv: list[str], cwd, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=str(cwd), env=clean_env() if env is None else env, capture_output=True,
                          text=True, timeout=timeout)


def results(report_dir) -> str:
    """A results.json normalised as the golden outputs are (tests/results_golden.py)."""
    text = open(os.path.join(str(report_dir), "results.json"), encoding="utf-8").read()
    return normalise("results.json", text, str(report_dir))


def locked_versions() -> dict[str, str]:
    """The suite lock's pins, by canonical name."""
    pins = {}
    for line in open(SUITE_LOCK, encoding="utf-8"):
        if line[:1].isalnum() and "==" in line:
            name, _, rest = line.partition("==")
            pins[_canonical(name)] = rest.split()[0]
    return pins


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


# Not copied into the build's source: what a clone has that the distribution must not depend on.
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache",
                                     ".hypothesis", "reports")


def dist(tmp_path_factory) -> tuple[str, str]:
    """(wheel path, sdist path), built from a copy of this checkout."""
    if "dist" not in _MADE:
        out = tmp_path_factory.mktemp("dist")
        source = out / "source"
        shutil.copytree(REPO, source, ignore=_NOT_SOURCE, symlinks=True)
        proc = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(source)], cwd=out)
        assert proc.returncode == 0, proc.stderr[-3000:]
        proc = run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                    "print(b.build_sdist(sys.argv[1]))", str(out)], cwd=source)
        assert proc.returncode == 0, proc.stderr[-3000:]
        [wheel] = [p for p in os.listdir(out) if p.endswith(".whl")]
        [sdist] = [p for p in os.listdir(out) if p.endswith(".tar.gz")]
        _MADE["dist"] = (str(out / wheel), str(out / sdist))
    return _MADE["dist"]  # type: ignore[return-value]


def venv(tmp_path_factory) -> Path:
    """A fresh venv outside the clone: the locked dependencies, then the wheel."""
    if "venv" not in _MADE:
        wheel, _ = dist(tmp_path_factory)
        where = tmp_path_factory.mktemp("installed") / "venv"
        proc = run([sys.executable, "-m", "venv", str(where)], cwd=where.parent)
        assert proc.returncode == 0, proc.stderr
        pip = [str(where / "bin" / "python"), "-m", "pip", "install", "-q"]
        proc = run([*pip, "--require-hashes", "-r", SUITE_LOCK], cwd=where.parent, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        proc = run([*pip, "--no-deps", wheel], cwd=where.parent)
        assert proc.returncode == 0, proc.stderr[-3000:]
        _MADE["venv"] = where
    return _MADE["venv"]  # type: ignore[return-value]


@dataclass(frozen=True)
class PipxApp:
    home: Path  # PIPX_HOME
    bin_dir: Path  # PIPX_BIN_DIR: the commands, as /usr/local/bin holds them on a scanner (docs/install.md)
    venv: Path  # the app's own venv, made by pipx

    def command(self, name: str) -> str:
        return str(self.bin_dir / name)

    def site_packages(self) -> Path:
        [lib] = (self.venv / "lib").iterdir()
        return lib / "site-packages"


def pipx_constraints(path: Path) -> Path:
    """The suite lock as a pip constraints file: its pins without the hashes, which a constraints file
    cannot carry."""
    lines = []
    for line in open(SUITE_LOCK, encoding="utf-8"):
        line = line.rstrip("\n").rstrip("\\").rstrip()
        if line and not line.lstrip().startswith(("--hash=", "#")):
            lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


def pipx_install(tmp_path_factory) -> PipxApp:
    """`pipx install WHEEL` as docs/install.md says, with pipx's own places under a temporary directory."""
    if "pipx" not in _MADE:
        wheel, _ = dist(tmp_path_factory)
        root = tmp_path_factory.mktemp("pipx")
        found = run([sys.executable, "-m", "pipx", "--version"], cwd=root, timeout=60)
        assert found.returncode == 0, ("pipx is missing from this venv: `scripts/bootstrap.sh --dev` installs it "
                                       f"(requirements/dev.lock.txt): {found.stderr[-500:]}")
        app = PipxApp(home=root / "home", bin_dir=root / "bin", venv=root / "home" / "venvs" / "postfix-compliance")
        env = clean_env(PIPX_HOME=str(app.home), PIPX_BIN_DIR=str(app.bin_dir), PIPX_MAN_DIR=str(root / "man"),
                        PIPX_COMPLETION_DIR=str(root / "completion"))
        constraints = pipx_constraints(root / "constraints.txt")
        proc = run([sys.executable, "-m", "pipx", "install", "--backend=pip",
                    "--pip-args=" + shlex.join(["--constraint", str(constraints)]), wheel],
                   cwd=root, timeout=900, env=env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        _MADE["pipx"] = app
    return _MADE["pipx"]  # type: ignore[return-value]


def installed_versions(python: str, site_packages: Path) -> dict[str, str]:
    """The distributions in one site-packages directory (a pipx venv's own, not its shared pip)."""
    proc = run([python, "-c", "import sys, json, importlib.metadata as m; print(json.dumps("
                "{d.metadata['Name']: d.version for d in m.distributions(path=[sys.argv[1]])}))", str(site_packages)],
               cwd=site_packages, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return {_canonical(k): v for k, v in json.loads(proc.stdout).items()}
