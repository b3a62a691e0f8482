#!/usr/bin/env bash
# Remove cached guest images other than the current one ($VM_CACHE/<key> for the current build inputs),
# unless a running qemu still uses them (as a backing file of some overlay), and run directories whose
# qemu is gone (and that are older than two hours). Called by the VM tier after a build; safe to run by hand.
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/common.sh"
[[ -d $VM_CACHE ]] || exit 0
in_use() {  # is any file under $1 open by a qemu process?
  local pid
  for pid in $(pgrep -x qemu-system-x86_64 2>/dev/null); do
    ls -l "/proc/$pid/fd" 2>/dev/null | grep -qF -- "$1/" && return 0
  done
  return 1
}
for dir in "$VM_CACHE"/*; do
  [[ -d $dir ]] || continue
  name=$(basename "$dir")
  current=$(vm_image_name refpolicy)
  [[ $name == targeted-* ]] && current=$(vm_image_name targeted)
  if [[ $name =~ ^(targeted-)?[0-9a-f]{16}$ && $name != "$current" ]]; then
    in_use "$dir" && continue
    flock -n "$VM_CACHE/.lock-$name" true || continue   # being built right now
    echo "vm/prune.sh: removing old image $dir" >&2
    rm -rf --one-file-system "$dir" "$VM_CACHE/.lock-$name"
  elif [[ $name == run-* ]]; then
    [[ -n $(find "$dir" -maxdepth 0 -mmin +120) ]] || continue   # may be booting right now
    if [[ -f $dir/qemu.pid ]] && kill -0 "$(cat "$dir/qemu.pid")" 2>/dev/null; then continue; fi
    echo "vm/prune.sh: removing stale run directory $dir" >&2
    rm -rf --one-file-system "$dir"
  fi
done
exit 0
