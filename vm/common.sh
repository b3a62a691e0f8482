# Shared settings for the SELinux-enforcing Debian 12 guest (sourced by the vm/*.sh scripts).
# shellcheck shell=bash
#
# Layout: the labelled golden image is cached OUTSIDE the repository, keyed by a hash of the build inputs:
#   $VM_CACHE/<key>/golden.qcow2  vmlinuz  initrd.img  id_ed25519(.pub)  host_ed25519.pub  build-times.txt
# A running guest lives in a run directory ($RUNDIR, default a fresh mktemp dir) holding its throwaway
# qcow2 overlay (backing file = golden), qemu pid, QMP socket, console log, port and known_hosts.
VM_HERE=${VM_HERE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
VM_CACHE=${VM_CACHE:-/var/tmp/postfix-compliance-vm}
SUITE=bookworm
MEM=${MEM:-2048}
SMP=${SMP:-2}
VM_HOSTNAME=${VM_HOSTNAME:-selinux-vm}
VM_DOMAIN=${VM_DOMAIN:-localdomain}

# Base kernel command line. Debian 12 kernels have CONFIG_SECURITY_SELINUX_BOOTPARAM unset, so "selinux=1"
# is not a kernel option there: "security=selinux" selects SELinux (as Debian's selinux-activate writes it).
KAPPEND_BASE="root=/dev/vda rw console=ttyS0 security=selinux audit=1 net.ifnames=0"

# Guest flavour: the policy the guest runs.
#   refpolicy  Debian's selinux-policy-default (refpolicy, MLS); the default, run by .ci/run
#   targeted   RHEL 9's targeted policy (MCS), built in the chroot from RHEL_POLICY_DIR (vm/targeted-policy.sh)
VM_FLAVOUR=${VM_FLAVOUR:-refpolicy}
case $VM_FLAVOUR in
  refpolicy) SELINUXTYPE=default ;;
  targeted) SELINUXTYPE=targeted ;;
  *) echo "VM_FLAVOUR=$VM_FLAVOUR: expected refpolicy or targeted" >&2; exit 2 ;;
esac
# Where RHEL 9's policy sources are (the selinux-policy tarball and el9-sources/): outside the repository,
# checked against vm/targeted-policy.sha256 before use. Only the targeted flavour reads them.
RHEL_POLICY_DIR=${RHEL_POLICY_DIR:-$VM_HERE/../../shared/rhel-policy}

# Cache key: the build script, the package list and the kernel command line (what decides the image); for
# the targeted flavour also its build script and the pinned checksums of its policy sources. A targeted
# image lives under targeted-<key>, so each flavour keeps one current image.
vm_key() {
  local flavour=${1:-$VM_FLAVOUR}
  {
    cat "$VM_HERE/build.sh" "$VM_HERE/packages.txt"; echo "$KAPPEND_BASE $SUITE"
    if [[ $flavour == targeted ]]; then cat "$VM_HERE/targeted-policy.sh" "$VM_HERE/targeted-policy.sha256"; fi
  } | sha256sum | cut -c1-16
}
vm_image_name() {  # the cache directory's name for flavour $1
  local flavour=${1:-$VM_FLAVOUR}
  if [[ $flavour == refpolicy ]]; then vm_key refpolicy; else echo "$flavour-$(vm_key "$flavour")"; fi
}
VM_KEY=${VM_KEY:-$(vm_image_name)}
IMGDIR=${IMGDIR:-$VM_CACHE/$VM_KEY}
GOLDEN=$IMGDIR/golden.qcow2
KERNEL=$IMGDIR/vmlinuz
INITRD=$IMGDIR/initrd.img
SSH_KEY=$IMGDIR/id_ed25519
HOST_PUBKEY=$IMGDIR/host_ed25519.pub

# Run directory files (set RUNDIR before using them).
run_paths() {
  OVERLAY=$RUNDIR/overlay.qcow2
  PIDFILE=$RUNDIR/qemu.pid
  QMP_SOCK=$RUNDIR/qmp.sock
  CONSOLE_LOG=$RUNDIR/console.log
  PORTFILE=$RUNDIR/port
  KNOWN_HOSTS=$RUNDIR/known_hosts
}

# qemu user networking (slirp) with restrict=on: the guest reaches nothing outside; the only way in is one
# hostfwd from 127.0.0.1:$PORT to guest :22. "nofwd": same NIC without the forward (relabel boot).
qemu_net_args() {
  local fwd=",hostfwd=tcp:127.0.0.1:${PORT:-0}-:22"
  [[ ${1:-} == nofwd ]] && fwd=""
  echo "-netdev user,id=n0,restrict=on${fwd} -device virtio-net-pci,netdev=n0"
}

# Accelerator: ACCEL=kvm|tcg|auto (default auto). auto uses KVM only where it really works: /dev/kvm backed
# by kvm_pvm (a nested paravirtual hypervisor) does not boot a stock Debian kernel (qemu aborts setting
# MSR 0x10a, or the guest hangs), so TCG is used there.
qemu_accel_args() {
  local a=${ACCEL:-auto}
  if [[ $a == auto ]]; then
    if [[ -r /dev/kvm && -w /dev/kvm && ! -d /sys/module/kvm_pvm ]] && grep -qE 'vmx|svm' /proc/cpuinfo; then
      a=kvm
    else
      a=tcg
    fi
  fi
  case $a in
    kvm) echo "-enable-kvm -cpu host" ;;
    tcg) echo "-accel tcg,thread=multi,tb-size=512 -cpu max" ;;
    *) echo "bad ACCEL=$a" >&2; return 1 ;;
  esac
}

# A free TCP port on 127.0.0.1, picked at run time (other sshd may be listening on fixed ones).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# SSH into the guest with the pinned host key (never with host-key checking disabled).
vm_ssh_opts() {
  SSH_OPTS=(-i "$SSH_KEY" -p "$PORT" -o BatchMode=yes -o IdentitiesOnly=yes
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null
    -o HostKeyAlgorithms=ssh-ed25519 -o LogLevel=ERROR -o ConnectTimeout=5
    -o ServerAliveInterval=10 -o ServerAliveCountMax=6)
}
vm_ssh() { vm_ssh_opts; ssh "${SSH_OPTS[@]}" root@127.0.0.1 "$@"; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b-a}'; }
