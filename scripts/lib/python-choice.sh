# Sourced by scripts/bootstrap.sh (which defines as_root): the interpreter that builds .venv.
#
# choose_python prints the command of the newest Python 3.11 or newer on PATH that can build a venv with
# pip (venv and ensurepip importable), preferring python3 on a tie. Where there is none and dnf is there
# (RHEL 8/9, whose python3 is 3.6/3.9), it installs the newest python3.1x the distribution offers
# (AppStream: python3.12, python3.11; their -libs bring the pip wheel ensurepip uses) and prints that.
# Otherwise it says why in one line on stderr and returns 1. Progress lines go to stderr.

PYTHON_CANDIDATES=(python3 python3.13 python3.12 python3.11)
DNF_PYTHONS=(python3.13 python3.12 python3.11)   # newest first

# The X.Y of $1 when it is 3.11 or newer and can build a venv with pip; nothing and status 1 otherwise.
python_usable_version() {
  "$1" -c 'import sys, venv, ensurepip
if sys.version_info >= (3, 11): print("%d.%d" % sys.version_info[:2])' 2>/dev/null | grep -E '^3\.[0-9]+$'
}

newest_python_on_path() {
  local best="" best_minor=0 c v
  for c in "${PYTHON_CANDIDATES[@]}"; do
    command -v "$c" >/dev/null || continue
    v=$(python_usable_version "$c") || continue
    if (( ${v#3.} > best_minor )); then best=$c; best_minor=${v#3.}; fi
  done
  [[ -n $best ]] || return 1
  echo "$best"
}

choose_python() {
  local py have out pkg="" p err
  if py=$(newest_python_on_path); then echo "$py"; return 0; fi
  have=$(python3 -c 'import sys; print(sys.version.split()[0])' 2>/dev/null) || have="missing"
  if ! command -v dnf >/dev/null; then
    echo "bootstrap: no Python 3.11 or newer with venv on PATH (python3 is $have) and no dnf to install one: install python3.11 or newer with its venv support and run again" >&2
    return 1
  fi
  out=$(as_root dnf -q list --available "${DNF_PYTHONS[@]}" 2>&1) || true
  for p in "${DNF_PYTHONS[@]}"; do
    if [[ $'\n'$out == *$'\n'"$p".* ]]; then pkg=$p; break; fi
  done
  if [[ -z $pkg ]]; then
    echo "bootstrap: python3 is $have and dnf offers none of ${DNF_PYTHONS[*]} (enable the AppStream repository; dnf said: ${out##*$'\n'})" >&2
    return 1
  fi
  echo "bootstrap: python3 is $have; installing $pkg with dnf" >&2
  if ! err=$(as_root dnf install -y -q "$pkg" 2>&1 >/dev/null); then
    echo "bootstrap: dnf install $pkg failed: ${err##*$'\n'}" >&2
    return 1
  fi
  if ! python_usable_version "$pkg" >/dev/null; then
    echo "bootstrap: $pkg was installed but cannot build a venv with pip (venv or ensurepip missing)" >&2
    return 1
  fi
  echo "$pkg"
}
