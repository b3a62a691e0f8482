#!/usr/bin/env bash
# Run a command in the running guest as root (an interactive shell with no arguments), with its host key
# pinned. RUNDIR as given to vm/boot.sh (default $VM_CACHE/run).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/common.sh"
RUNDIR=${RUNDIR:-$VM_CACHE/run}
run_paths
[[ -f $PORTFILE ]] || { echo "vm/ssh.sh: no guest running from $RUNDIR" >&2; exit 1; }
PORT=$(cat "$PORTFILE")
vm_ssh_opts
exec ssh "${SSH_OPTS[@]}" root@127.0.0.1 "$@"
