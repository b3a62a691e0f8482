#!/usr/bin/env bash
# Stop the guest of RUNDIR (default $VM_CACHE/run): QMP quit (the overlay is throwaway, so no clean
# shutdown is needed), then SIGTERM/SIGKILL to that qemu pid only; then remove the overlay.
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/common.sh"
RUNDIR=${RUNDIR:-$VM_CACHE/run}
run_paths

[[ -f $PIDFILE ]] || { echo "not running (no $PIDFILE)"; rm -f "$OVERLAY"; exit 0; }
PID=$(cat "$PIDFILE")
if ! kill -0 "$PID" 2>/dev/null; then echo "not running (stale pid $PID)"; rm -f "$PIDFILE" "$OVERLAY"; exit 0; fi
[[ $(cat "/proc/$PID/comm" 2>/dev/null) == qemu-system-x86* ]] || { echo "pid $PID is not qemu; refusing" >&2; exit 1; }
wait_gone() { local i; for ((i = 0; i < $1 * 5; i++)); do kill -0 "$PID" 2>/dev/null || return 0; sleep 0.2; done; return 1; }

timeout 10 python3 "$VM_HERE/qmp.py" "$QMP_SOCK" quit >/dev/null 2>&1
if ! wait_gone 10; then
  echo "qemu $PID did not quit; SIGTERM" >&2; kill -TERM "$PID"
  wait_gone 10 || { echo "SIGKILL $PID" >&2; kill -KILL "$PID"; }
fi
rm -f "$PIDFILE" "$QMP_SOCK" "$OVERLAY" "$PORTFILE" "$RUNDIR/env"
echo "stopped (pid $PID)"
