#!/usr/bin/env bash
# Image gate: the suite's `static` checks against a built image, without booting it (docs/operations.md).
#
#   scripts/image-gate.sh --chroot DIR      [--report-dir DIR] [--python PY] [--] [SUITE ARGS...]
#   scripts/image-gate.sh --image IMAGE     [...]   a podman image, mounted (`podman image mount`), not run
#   scripts/image-gate.sh --container NAME  [...]   a running podman container (`podman exec`)
#
# Runs `python -m pytest -m static` on the image's root through the suite's image:// backend
# (postfix_compliance/backends/image_sandbox.py): only the probes that read persisted state run
# (postfix_compliance/facts/probes.py, static=True), and each runs the image's own program in a
# sandbox with no privilege on this machine: a user namespace whose root is an unprivileged uid here,
# no network, a read-only id-mapped view of the root, pivot_root'ed into, an empty environment. Root is
# needed to make that view; nothing of the image runs as root. A podman image's mount (overlayfs,
# which cannot be id-mapped) is copied to a private directory first. A --container is checked through
# podman exec, as the running container's own processes run. The checks that need a running system
# are not run at all. Reports go to --report-dir (default
# reports/image-gate): compliance.html, results.json, junit.xml, and LIMITS.txt (below).
# Installed, this is the `postfix-compliance-image-gate` command (scripts/lib/suite.sh): it runs the
# installed suite (`python -m postfix_compliance -m static`), and --report-dir is required (no clone's
# reports/ to default to).
# The profile is detected from the image's /etc/os-release unless SUITE ARGS give --profile.
# Do not pass -m in SUITE ARGS: the gate is `-m static`.
#
# Exit status: the suite's (0 pass, 1 a static check failed, 2 one could not be judged, 4 bad input);
# 4 also for bad input to this script (one ERROR: line). A CI job gates on it
# (contrib/ci/image-gate.gitlab-ci.yml, contrib/ci/image-gate.github-workflow.yml).
set -uo pipefail
umask 077  # reports and logs carry host evidence: the running user's alone (metrics for node_exporter: 0644)

# shellcheck source-path=SCRIPTDIR source=lib/suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/suite.sh"  # REPO, pfc_*: a clone's suite or the installed one
python=$pfc_python
mode=""
target=""
report_dir=""

die() { echo "ERROR: image-gate: $*" >&2; exit 4; }
say() { echo "image-gate: $*" >&2; }
need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --chroot|--image|--container)
      need_value "$@"; [[ -z $mode ]] || die "give one of --chroot, --image, --container"
      mode=${1#--}; target=$2; shift 2 ;;
    --report-dir) need_value "$@"; report_dir=$2; shift 2 ;;
    --python) need_value "$@"; python=$2; shift 2 ;;
    --chroot=*|--image=*|--container=*|--report-dir=*|--python=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    -h|--help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
suite_args=("$@")
for arg in "${suite_args[@]}"; do
  case $arg in -m|-m*|--hosts|--hosts=*) die "$arg: the gate sets -m static and the host itself" ;; esac
done
[[ -n $mode ]] || die "name the image: --chroot DIR, --image IMAGE or --container NAME"
[[ -x $python ]] || die "no Python at ${python:-(none given)}: $pfc_no_python"
if (( PFC_INSTALLED )); then
  [[ -n $report_dir ]] || die "name the report directory: --report-dir DIR"
  checks=("${pfc_suite[@]}")  # the installed suite: its settings and its checks
else
  report_dir=${report_dir:-$REPO/reports/image-gate}
  checks=("${pfc_suite[@]}" -c "$REPO/pytest.ini" --rootdir "$REPO" "$REPO/tests_host")
fi
mkdir -p "$report_dir" 2>/dev/null || die "cannot create the report directory $report_dir"
report_dir=$(cd "$report_dir" && pwd)

# /var/tmp: a podman image is copied here, and /tmp may be memory.
workdir=$(mktemp -d "${TMPDIR:-/var/tmp}/image-gate.XXXXXX") || die "cannot make a temporary directory"
mounted_image=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  if [[ -n $mounted_image ]]; then podman image unmount "$mounted_image" >/dev/null 2>&1; fi
  # Only our own scratch files go (a symlink to a --chroot root is removed, never followed).
  rm -rf --one-file-system -- "$workdir"
}
trap cleanup EXIT

# The host is image://NAME, NAME a symlink to the root (or the copy of it) in the scratch directory: the
# reports name the image by its directory's or its own name, not by a scratch path.
image_host() {  # image_host ROOT LABEL [copy]: copy = copy ROOT there (a file system that cannot be id-mapped)
  local name
  name=$(printf '%s' "$2" | tr -c 'A-Za-z0-9._-' '_')
  [[ $name == "" || $name == "." || $name == ".." || $name =~ ^_+$ ]] && name=image-root
  host="image://$name"
  if [[ ${3:-} == copy ]]; then
    mkdir "$workdir/$name" && cp -a --one-file-system -- "$1/." "$workdir/$name/" 2>"$workdir/copy.err" \
      || die "cannot copy the image to $workdir: $(head -c 300 "$workdir/copy.err" | tr '\n' ' ')"
  else
    ln -s "$1" "$workdir/$name"
  fi
}
check_root() {  # check_root DIR WHAT
  [[ -x $1/bin/sh || -L $1/bin/sh ]] || die "$2: no /bin/sh in it (not an image root?)"
  [[ -e $1/etc/os-release || -L $1/etc/os-release ]] || die "$2: no /etc/os-release in it (not an image root?)"
}

case $mode in
  chroot)
    [[ -d $target ]] || die "--chroot $target: no such directory"
    check_root "$target" "--chroot $target"
    [[ $(id -u) == 0 ]] || die "--chroot needs root (the sandbox's id-mapped view); run it with sudo"
    root=$(cd "$target" && pwd)
    image_host "$root" "$(basename "$root")"
    ;;
  image)
    command -v podman >/dev/null || die "--image needs podman"
    [[ $(id -u) == 0 ]] || die "--image needs root (podman image mount, the sandbox's id-mapped view)"
    if ! podman image exists "$target" && ! podman pull -q "$target" >/dev/null 2>"$workdir/podman.err"; then
      die "--image $target: not found, and podman could not pull it: $(head -c 300 "$workdir/podman.err" | tr '\n' ' ')"
    fi
    root=$(podman image mount "$target" 2>"$workdir/podman.err") \
      || die "--image $target: podman could not mount it: $(head -c 300 "$workdir/podman.err" | tr '\n' ' ')"
    # shellcheck disable=SC2034  # read by cleanup (the EXIT trap)
    mounted_image=$target
    check_root "$root" "--image $target"
    image_host "$root" "$target" copy
    podman image unmount "$target" >/dev/null 2>&1 && mounted_image=""
    ;;
  container)
    command -v podman >/dev/null || die "--container needs podman"
    [[ $(podman inspect -f '{{.State.Running}}' "$target" 2>/dev/null) == true ]] \
      || die "--container $target: no such running container"
    host="podman://$target"
    ;;
esac

say "static checks on $mode $target ($host); reports in $report_dir"
( cd "$workdir" && PYTHONPATH="$pfc_pythonpath" exec "$python" "${checks[@]}" \
    -m static --hosts="$host" --report-dir="$report_dir" "${suite_args[@]}" )
status=$?

# Through the suite's atomic writer: the report directory may be shared (no following a planted symlink).
pfc_helper -m postfix_compliance.atomicfile "$report_dir/LIMITS.txt" <<'EOF'
What an image gate (-m static, no running kernel) can and cannot judge: docs/operations.md, "Image gates".

Judged on the image: SEL-002 (SELINUX= in /etc/selinux/config), SEL-003 (SELINUXTYPE), SEL-004 (boot
entries and /etc/default/grub; no running kernel's command line), SVC-002 (enablement, where systemctl is
in the image), BOOL-002, MOD-001, SEL-005, LBL-003 (the policy store, read offline), REL-004 (SASL map files).

Not run (need a running system): SEL-001 runtime mode, BOOL-001 runtime booleans, AVC-001/002 audit,
SVC-001/003/004 service, listeners and process domains, Q-001..003 queue, LOG-001 logs, REL-001 DNS,
REL-002/003 listeners and firewall. SVC-005: `postfix check` creates missing queue directories, so a
static run never runs it.

How: each probe ran the image's own program (cat, grep, semanage, semodule, postconf, ls, restorecon,
systemctl, stat) in a sandbox with no privilege on this machine (a --container: through podman exec):
root in the sandbox is uid 1000000 here, no capability outside its namespaces, no network, a read-only
id-mapped view of the image with nothing of this machine's file system in it, an empty environment.
Nothing of the image ran as root. SEL-002/003 read /etc/selinux/config, SEL-004 the boot entries,
SVC-002 the unit links (systemctl), BOOL-002/MOD-001/SEL-005/LBL-003 the policy store through the
image's semanage and semodule, REL-004 the SASL map files' owners and modes.

File labels (LBL-001/002/004): not applicable unless this machine's kernel runs SELinux. An image
root carries the labels its files have as extended attributes (none when built on a
non-SELinux machine or unpacked without --xattrs; container_file_t in a container), and `restorecon -n`
says nothing without a running policy whatever the labels: labels are judged on the booted host.
EOF
say "exit $status; what this gate cannot judge: $report_dir/LIMITS.txt"
exit "$status"
