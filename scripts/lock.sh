#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml's ranges: the newest versions PyPI has today, for every Python
# the suite supports (3.11 and newer, any platform: one universal resolution), every package of the tree
# pinned with the hashes of all its files.
#   requirements/suite.lock.txt  what `scripts/bootstrap.sh` installs (the suite, pip and setuptools)
#   requirements/dev.lock.txt    what `scripts/bootstrap.sh --dev` installs (the suite and its own tests)
# The dev lock is resolved within the suite lock's versions, so both install the same suite.
# Run it, then README command 2, then commit the lock files with what changed in the message.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.10
tool=$(mktemp -d)
trap 'rm -rf "$tool"' EXIT
python3 -m venv "$tool/venv"
"$tool/venv/bin/python" -m pip install -q "uv==$UV_VERSION"
compile() {
  # Relative paths only: the files' "via" lines must name no directory of this machine.
  "$tool/venv/bin/uv" pip compile -q --universal --python-version 3.11 --generate-hashes --no-cache \
    --custom-compile-command scripts/lock.sh "$@"
}
compile pyproject.toml requirements/build.in -o requirements/suite.lock.txt
compile pyproject.toml requirements/build.in --extra dev -c requirements/suite.lock.txt \
  -o requirements/dev.lock.txt
echo "lock: requirements/suite.lock.txt $(grep -c '^[a-z0-9]' requirements/suite.lock.txt) packages," \
  "requirements/dev.lock.txt $(grep -c '^[a-z0-9]' requirements/dev.lock.txt) packages" >&2
