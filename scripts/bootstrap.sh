#!/usr/bin/env bash
# Set up everything the suite needs, from a fresh clone on a fresh Debian/RHEL machine.
#   scripts/bootstrap.sh        the Python environment in .venv (the compliance run needs nothing else)
#   scripts/bootstrap.sh --dev  also what the project's own tests use: Postfix, OpenSSH, SELinux userland,
#                               auditd, Chromium (Debian packages), and the test-only Python packages
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
[[ ${1:-} == --dev ]] && DEV=1

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
    debootstrap prometheus podman >/dev/null
fi

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null; then as_root apt-get install -y -qq python3-venv >/dev/null
  elif command -v dnf >/dev/null; then as_root dnf install -y -q python3 >/dev/null; fi
fi
python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"python3 is {sys.version.split()[0]}; the suite needs 3.11 or newer (RHEL 9: dnf install python3.11)")
PY
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [[ $DEV == 1 ]]; then .venv/bin/python -m pip install -q -e '.[dev]'; else .venv/bin/python -m pip install -q -e .; fi
echo "bootstrap: ready (.venv)" >&2
