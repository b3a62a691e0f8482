#!/usr/bin/env bash
# Boot the cached guest on a throwaway qcow2 overlay and wait until it is a running system.
#
#   vm/boot.sh                      # run directory $VM_CACHE/run (for use by hand with vm/ssh.sh, vm/stop.sh)
#   RUNDIR=/some/dir vm/boot.sh     # the VM tier passes its own run directory
#   ACCEL=tcg|kvm|auto  MEM=2048  SMP=2  BOOT_TIMEOUT=900  ENFORCING=1 (kernel enforcing=; empty: config)
#
# The overlay's backing file is the golden image (never written). Networking is qemu user mode with
# restrict=on and one hostfwd from 127.0.0.1:<free port picked now> to guest :22. The guest's host key,
# recorded at build time, is pinned in $RUNDIR/known_hosts for [127.0.0.1]:<port>. On success the last
# stdout lines are shell assignments (also in $RUNDIR/env): VM_RUNDIR, VM_PORT, VM_SSH_KEY, VM_KNOWN_HOSTS.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/common.sh"

RUNDIR=${RUNDIR:-$VM_CACHE/run}
ENFORCING=${ENFORCING-1}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
run_paths
log() { printf '[vm-boot %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { echo "vm/boot.sh: $*" >&2; exit 1; }

[[ -f $IMGDIR/complete ]] || fail "no guest image for key $VM_KEY in $IMGDIR: run vm/build.sh first"
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 is not installed (vm/build.sh installs it)"
mkdir -p "$RUNDIR"
if [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  fail "a guest is already running from $RUNDIR (pid $(cat "$PIDFILE")); vm/stop.sh first"
fi
rm -f "$PIDFILE" "$QMP_SOCK" "$OVERLAY" "$RUNDIR/env"
qemu-img create -q -f qcow2 -F qcow2 -b "$GOLDEN" "$OVERLAY"

APPEND="$KAPPEND_BASE"
[[ -n $ENFORCING ]] && APPEND+=" enforcing=$ENFORCING"
ACCEL_ARGS=$(qemu_accel_args)
T0=$(now)
started=0
for attempt in 1 2 3; do   # the port is free when picked; another process may take it before qemu binds
  PORT=$(free_port)
  : > "$CONSOLE_LOG"
  # shellcheck disable=SC2086,SC2046
  if qemu-system-x86_64 $ACCEL_ARGS -m "$MEM" -smp "$SMP" -name postfix-compliance-vm \
      -display none -daemonize -pidfile "$PIDFILE" \
      -serial "file:$CONSOLE_LOG" -monitor none -qmp "unix:$QMP_SOCK,server=on,wait=off" \
      -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" \
      -drive file="$OVERLAY",format=qcow2,if=virtio,cache=unsafe,discard=unmap \
      $(qemu_net_args) 2>"$RUNDIR/qemu.err"; then
    started=1; break
  fi
  grep -qi 'hostfwd\|forward' "$RUNDIR/qemu.err" || break
  log "port $PORT was taken before qemu bound it; retrying"
done
[[ $started == 1 ]] || fail "qemu did not start: $(cat "$RUNDIR/qemu.err")"
echo "$PORT" > "$PORTFILE"
printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$HOST_PUBKEY")" > "$KNOWN_HOSTS"
log "qemu pid $(cat "$PIDFILE") ($ACCEL_ARGS); ssh 127.0.0.1:$PORT; console $CONSOLE_LOG"

while ! vm_ssh true 2>/dev/null; do
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    fail "qemu exited before SSH answered; console log $CONSOLE_LOG ends with:
$(tail -n 25 "$CONSOLE_LOG")"
  fi
  if (( $(date +%s) - ${T0%.*} > BOOT_TIMEOUT )); then
    fail "SSH did not answer within ${BOOT_TIMEOUT}s; console log $CONSOLE_LOG ends with:
$(tail -n 25 "$CONSOLE_LOG")"
  fi
  sleep 2
done
T1=$(now)
STATE=$(vm_ssh 'timeout 300 systemctl is-system-running --wait' 2>/dev/null || true)
T2=$(now)
[[ $(vm_ssh getenforce 2>/dev/null) == Enforcing || $ENFORCING != 1 ]] \
  || fail "the guest booted but SELinux is not enforcing: $(vm_ssh 'getenforce; cat /proc/cmdline' 2>&1)"
printf 'boot %s accel="%s" ssh_ready_s=%s system_%s_s=%s\n' "$(date -Is)" "$ACCEL_ARGS" \
  "$(elapsed "$T0" "$T1")" "${STATE:-unknown}" "$(elapsed "$T0" "$T2")" | tee -a "$RUNDIR/times" >&2
cat > "$RUNDIR/env" <<ENV
VM_RUNDIR=$RUNDIR
VM_PORT=$PORT
VM_SSH_KEY=$SSH_KEY
VM_KNOWN_HOSTS=$KNOWN_HOSTS
VM_QMP=$QMP_SOCK
VM_PIDFILE=$PIDFILE
VM_CONSOLE=$CONSOLE_LOG
VM_SYSTEM_STATE=${STATE:-unknown}
ENV
cat "$RUNDIR/env"
