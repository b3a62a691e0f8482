"""The lock files (requirements/*.lock.txt, made by scripts/lock.sh) pin the whole tree that bootstrap
installs: every package at one version with hashes, inside pyproject.toml's ranges, the same version in
both files. A pyproject change that was not locked again fails here, not on a fresh machine."""

from __future__ import annotations

import os
import re
import tomllib

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCKS = {"suite": "requirements/suite.lock.txt", "dev": "requirements/dev.lock.txt"}
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)(?: ; ([^\\]+?))? \\$")


def read_lock(name: str) -> dict[str, tuple[str, str | None, list[str]]]:
    """package -> (version, marker or None, hashes)."""
    pins: dict[str, tuple[str, str | None, list[str]]] = {}
    current = None
    with open(os.path.join(REPO, LOCKS[name]), encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            match = ENTRY.match(line)
            if match:
                current = canonicalize_name(match.group(1))
                assert current not in pins, f"{LOCKS[name]}: {current} pinned twice"
                pins[current] = (match.group(2), match.group(3), [])
            elif line.strip().startswith("--hash=sha256:"):
                assert current, line
                pins[current][2].append(line.strip().split(":", 1)[1].rstrip(" \\"))
            elif line and not line.lstrip().startswith("#"):
                raise AssertionError(f"{LOCKS[name]}: a line the lock format does not have: {line!r}")
    return pins


def pyproject() -> dict:
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)["project"]


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_every_locked_package_has_hashes(name):
    pins = read_lock(name)
    assert pins
    for package, (version, _, hashes) in pins.items():
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), (package, version)


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_the_lock_satisfies_pyproject_and_pins_the_build(name):
    project = pyproject()
    wanted = [Requirement(r) for r in project["dependencies"]]
    if name == "dev":
        wanted += [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    wanted += [Requirement("pip"), Requirement("setuptools>=77")]  # requirements/build.in
    pins = read_lock(name)
    for requirement in wanted:
        package = canonicalize_name(requirement.name)
        assert package in pins, f"{LOCKS[name]} lacks {requirement}: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[package][0], prereleases=True), \
            f"{LOCKS[name]} pins {package}=={pins[package][0]}, outside {requirement}: run scripts/lock.sh"


def test_both_locks_install_the_same_suite():
    suite, dev = read_lock("suite"), read_lock("dev")
    assert set(suite) <= set(dev)
    assert {p: suite[p][0] for p in suite} == {p: dev[p][0] for p in suite}


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_markers_parse_and_the_lock_names_no_local_path(name):
    text = open(os.path.join(REPO, LOCKS[name]), encoding="utf-8").read()
    for _, marker, _ in read_lock(name).values():
        if marker:
            Marker(marker)
    assert not re.search(r"(/tmp/|/home/|/root/|/work/|file://)", text)
