#!/usr/bin/env bash
# Set up everything the suite needs, from a fresh clone on a fresh Debian/RHEL machine.
#   scripts/bootstrap.sh        the Python environment in .venv (the compliance run needs nothing else)
#   scripts/bootstrap.sh --dev  also what the project's own tests use: Postfix, OpenSSH, SELinux userland,
#                               auditd, Chromium (Debian packages), and the test-only Python packages
# Python packages come from the lock (requirements/*.lock.txt: every package of the tree, exact versions and
# hashes), so a fresh clone installs what was tested; scripts/lock.sh refreshes it.
#   --newest                    instead the newest versions pyproject.toml's ranges allow today (to try
#                               tomorrow's releases before they reach the lock)
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0 NEWEST=0
for arg in "$@"; do
  case $arg in
    --dev) DEV=1 ;;
    --newest) NEWEST=1 ;;
    *) echo "bootstrap: unknown option $arg (--dev, --newest)" >&2; exit 2 ;;
  esac
done

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

if [[ $DEV == 1 ]] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  # Postfix asks its mail type at install time; "Local only" keeps it off the network.
  echo "postfix postfix/main_mailer_type select Local only" | as_root debconf-set-selections
  echo "postfix postfix/mailname string selftest.example.test" | as_root debconf-set-selections
  as_root apt-get install -y -qq --no-install-recommends \
    python3 python3-venv postfix openssh-server openssh-client selinux-utils policycoreutils \
    policycoreutils-python-utils auditd setools sudo iproute2 procps chromium fonts-dejavu-core \
    debootstrap prometheus podman openscap-utils gcc libc6-dev >/dev/null
fi

if command -v apt-get >/dev/null \
    && { ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; }; then
  as_root apt-get install -y -qq python3-venv >/dev/null
fi
# The newest Python >= 3.11 on PATH; on RHEL 8/9 (python3 is 3.6/3.9) the newest python3.1x from AppStream.
source scripts/lib/python-choice.sh
PY=$(choose_python) || exit 1
if [[ ! -e .venv && ! -L .venv ]]; then
  "$PY" -m venv .venv
elif ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
  # Made with an older python3 (by hand, before this script set up RHEL), or its interpreter is gone: rebuild.
  old=$(.venv/bin/python -c 'import sys; print(sys.version.split()[0])' 2>/dev/null) || old="none that runs"
  echo "bootstrap: .venv has Python $old, the suite needs 3.11 or newer: rebuilding it with $PY" >&2
  "$PY" -m venv --clear .venv
fi
lock=requirements/suite.lock.txt extra=.
if [[ $DEV == 1 ]]; then lock=requirements/dev.lock.txt extra='.[dev]'; fi
if [[ $NEWEST == 1 ]]; then
  .venv/bin/python -m pip install -q --upgrade pip setuptools >/dev/null
  .venv/bin/python -m pip install -q --upgrade --upgrade-strategy eager -e "$extra"
else
  # Hash-checking mode: every package (pip and setuptools too) at its locked version, from a file whose hash
  # the lock names; the project itself is built with that setuptools, nothing fetched unpinned.
  .venv/bin/python -m pip install -q --require-hashes -r "$lock"
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
fi
echo "bootstrap: ready (.venv)" >&2
