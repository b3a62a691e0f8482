#!/usr/bin/env bash
# Build (once) the SELinux-enforcing Debian 12 guest image used by the VM tier (tests/vm).
#
#   vm/build.sh            build unless the cached image for the current inputs exists; print its directory
#   FORCE=1 vm/build.sh    rebuild even if cached
#   VM_FLAVOUR=targeted vm/build.sh   RHEL 9's targeted policy instead of Debian's refpolicy (vm/targeted-policy.sh)
#
# From Debian's packages only: debootstrap (minbase) + vm/packages.txt into a rootfs, an ext4 image, then a
# first boot with enforcing=0 where Debian's own /.autorelabel mechanism labels the filesystem and reboots
# (qemu -no-reboot exits). The labelled image becomes $VM_CACHE/<key>/golden.qcow2, where <key> hashes this
# script, vm/packages.txt and the kernel command line (vm/common.sh), so later runs only boot it.
#
# The Debian mirror is read at run time from this machine's apt configuration; it is written neither into
# the repository nor into the image (sources.list is blanked, apt lists deleted, files naming it dropped) nor
# into the kept build logs. The guest's SSH host key (made by openssh-server's postinst in the chroot) is
# copied out as host_ed25519.pub so boot.sh can pin it; the client key is made here (id_ed25519).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/common.sh"

log() { printf '[vm-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
[[ $(id -u) == 0 ]] || { echo "vm/build.sh: must run as root (debootstrap, chroot, mount)" >&2; exit 1; }

mkdir -p "$VM_CACHE"
exec 9>"$VM_CACHE/.lock-$VM_KEY"
if ! flock -n 9; then log "another build of $VM_KEY is running; waiting for it"; flock 9; fi

if [[ -f $IMGDIR/complete && ${FORCE:-0} != 1 ]]; then
  log "cached image $IMGDIR"; echo "$IMGDIR"; exit 0
fi

if [[ $VM_FLAVOUR == targeted ]]; then
  . "$VM_HERE/targeted-policy.sh"
  targeted_check_sources
fi

WORK=$VM_CACHE/$VM_KEY.build
ROOTFS=$WORK/rootfs
DISK=$WORK/disk.raw
TIMES=$WORK/build-times.txt
record() { printf '%s=%s\n' "$1" "$2" | tee -a "$TIMES" >&2; }

cleanup_mounts() {
  local m
  for m in dev/pts dev proc sys; do
    if mountpoint -q "$ROOTFS/$m" 2>/dev/null; then umount -l "$ROOTFS/$m" || true; fi
  done
}
MIRROR_HOST=""
scrub_logs() {  # kept build logs must not name the mirror either
  local f
  [[ -n $MIRROR_HOST ]] || return 0
  for f in "$WORK"/*.log; do [[ -f $f ]] && sed -i "s#$MIRROR_HOST#<apt-mirror>#g" "$f"; done
  return 0
}
trap 'cleanup_mounts; scrub_logs' EXIT

cleanup_mounts
if grep -qF " $ROOTFS/" /proc/self/mounts; then echo "vm/build.sh: still mounted under $ROOTFS" >&2; exit 1; fi
rm -rf --one-file-system "$WORK"; mkdir -p "$WORK"; : > "$TIMES"
T0=$(now)

# ---------------------------------------------------------------- host tools (Debian's packages)
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v ssh >/dev/null || need+=(openssh-client)
command -v flock >/dev/null || need+=(util-linux)
[[ -e /usr/share/ca-certificates ]] || need+=(ca-certificates)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if ((${#need[@]})); then
  log "installing host tools: ${need[*]}"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
record host_tools_s "$(elapsed "$T0" "$(now)")"

# Mirror URIs exactly as apt uses them (read at run time, never stored).
MIRROR=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | awk -v s="$SUITE" '$2==s{print $1; exit}')
SEC_MIRROR=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | awk -v s="$SUITE-security" '$2==s{print $1; exit}')
UPD_OK=$(apt-get indextargets --format '$(RELEASE)' | grep -cx "$SUITE-updates" || true)
[[ -n $MIRROR ]] || { echo "vm/build.sh: no $SUITE mirror in this machine's apt configuration" >&2; exit 1; }
MIRROR_HOST=$(printf '%s' "$MIRROR" | sed -E 's#^[a-z]+://([^/:]+).*#\1#')

# ---------------------------------------------------------------- rootfs
log "debootstrap $SUITE (minbase)"
T1=$(now)
debootstrap --variant=minbase --arch=amd64 "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { scrub_logs; tail -30 "$WORK/debootstrap.log" >&2; exit 1; }
record debootstrap_s "$(elapsed "$T1" "$(now)")"

{
  echo "deb $MIRROR $SUITE main"
  [[ $UPD_OK -gt 0 ]] && echo "deb $MIRROR $SUITE-updates main"
  [[ -n $SEC_MIRROR ]] && echo "deb $SEC_MIRROR $SUITE-security main"
} > "$ROOTFS/etc/apt/sources.list"

mount --bind /dev "$ROOTFS/dev"; mount --bind /dev/pts "$ROOTFS/dev/pts"
mount -t proc proc "$ROOTFS/proc"; mount -t sysfs sys "$ROOTFS/sys"
printf '#!/bin/sh\nexit 101\n' > "$ROOTFS/usr/sbin/policy-rc.d"; chmod +x "$ROOTFS/usr/sbin/policy-rc.d"
echo "$VM_HOSTNAME" > "$ROOTFS/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s.%s %s\n' "$VM_HOSTNAME" "$VM_DOMAIN" "$VM_HOSTNAME" > "$ROOTFS/etc/hosts"
echo "$VM_HOSTNAME.$VM_DOMAIN" > "$ROOTFS/etc/mailname"
chroot "$ROOTFS" debconf-set-selections <<DEBCONF
postfix postfix/main_mailer_type select Internet Site
postfix postfix/mailname string $VM_HOSTNAME.$VM_DOMAIN
postfix postfix/destinations string \$myhostname, $VM_HOSTNAME, localhost.$VM_DOMAIN, localhost
postfix postfix/protocols select ipv4
DEBCONF

mapfile -t PKGS < <(grep -Ev '^\s*(#|$)' "$VM_HERE/packages.txt")
log "apt-get install in the chroot: ${PKGS[*]}"
T2=$(now)
chroot "$ROOTFS" apt-get update -qq
chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${PKGS[@]}" \
  >"$WORK/apt-install.log" 2>&1 || { scrub_logs; tail -40 "$WORK/apt-install.log" >&2; exit 1; }
record apt_install_s "$(elapsed "$T2" "$(now)")"
if [[ $VM_FLAVOUR == targeted ]]; then
  log "building RHEL 9's targeted policy in the chroot (its build tools from the mirror, before the resolver is emptied)"
  T5=$(now)
  targeted_install "$ROOTFS" "$WORK"
  record targeted_policy_s "$(elapsed "$T5" "$(now)")"
fi

# ---------------------------------------------------------------- guest configuration
log "configuring the guest"
printf '/dev/vda\t/\text4\trw,relatime\t0\t0\n' > "$ROOTFS/etc/fstab"
cat > "$ROOTFS/etc/systemd/network/10-eth0.network" <<'NET'
[Match]
Name=eth0
[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
LinkLocalAddressing=no
IPv6AcceptRA=no
NET
chroot "$ROOTFS" systemctl enable systemd-networkd.service >/dev/null 2>&1
chroot "$ROOTFS" systemctl mask systemd-networkd-wait-online.service apt-daily.timer \
  apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer >/dev/null 2>&1 || true
# No resolver: the guest reaches nothing, and lookups should fail at once rather than time out.
printf '# emptied by vm/build.sh: the guest has no network beyond loopback\n' > "$ROOTFS/etc/resolv.conf"
mkdir -p "$ROOTFS/etc/ssh/sshd_config.d"
cat > "$ROOTFS/etc/ssh/sshd_config.d/10-postfix-compliance-vm.conf" <<'SSHD'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
SSHD
ssh-keygen -q -t ed25519 -N '' -C postfix-compliance-vm -f "$WORK/id_ed25519"
install -d -m 700 "$ROOTFS/root/.ssh"
install -m 600 "$WORK/id_ed25519.pub" "$ROOTFS/root/.ssh/authorized_keys"
[[ -s $ROOTFS/etc/ssh/ssh_host_ed25519_key.pub ]] || chroot "$ROOTFS" ssh-keygen -A
cp "$ROOTFS/etc/ssh/ssh_host_ed25519_key.pub" "$WORK/host_ed25519.pub"
# Postfix: loopback only, no relay (the tier points it at a sink inside the guest at run time).
chroot "$ROOTFS" postconf -e "myhostname = $VM_HOSTNAME.$VM_DOMAIN" \
  "inet_interfaces = loopback-only" "inet_protocols = ipv4" "relayhost =" >/dev/null
# SELinux: enforcing by config; the first boot overrides with enforcing=0 and relabels.
sed -i -E "s/^SELINUX=.*/SELINUX=enforcing/; s/^SELINUXTYPE=.*/SELINUXTYPE=$SELINUXTYPE/" "$ROOTFS/etc/selinux/config"
touch "$ROOTFS/.autorelabel"
mkdir -p "$ROOTFS/var/log/journal"   # journal on disk: journalctl works across boots

# ---------------------------------------------------------------- scrub (no mirror name in the image)
rm -f "$ROOTFS/usr/sbin/policy-rc.d"
echo "# emptied by vm/build.sh; the guest has no network access" > "$ROOTFS/etc/apt/sources.list"
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
       "$ROOTFS/var/log/bootstrap.log" "$ROOTFS"/var/log/apt/eipp.log.xz
cleanup_mounts
grep -rlF "$MIRROR_HOST" "$ROOTFS" 2>/dev/null | while read -r f; do log "scrub: removing $f"; rm -f "$f"; done || true
record rootfs_s "$(elapsed "$T1" "$(now)")"
record rootfs_du "$(du -sh "$ROOTFS" | cut -f1)"

# ---------------------------------------------------------------- kernel + disk image
cp -L "$ROOTFS/vmlinuz" "$WORK/vmlinuz"; cp -L "$ROOTFS/initrd.img" "$WORK/initrd.img"
T3=$(now)
truncate -s "${DISK_SIZE:-6G}" "$DISK"
mkfs.ext4 -q -F -L vmroot -d "$ROOTFS" "$DISK"
record mkfs_s "$(elapsed "$T3" "$(now)")"
if grep -qF " $ROOTFS/" /proc/self/mounts; then echo "vm/build.sh: still mounted under $ROOTFS" >&2; exit 1; fi
rm -rf --one-file-system "$ROOTFS"

# ---------------------------------------------------------------- first boot: relabel
ACCEL_ARGS=$(qemu_accel_args)
record relabel_accel "\"$ACCEL_ARGS\""
log "relabel boot ($ACCEL_ARGS, enforcing=0, /.autorelabel); qemu exits when the guest reboots"
T4=$(now)
# shellcheck disable=SC2046,SC2086
timeout "${RELABEL_TIMEOUT:-2400}" qemu-system-x86_64 $ACCEL_ARGS -m "$MEM" -smp "$SMP" \
  -nographic -no-reboot -serial "file:$WORK/console-relabel.log" -monitor none \
  -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" -append "$KAPPEND_BASE enforcing=0" \
  -drive file="$DISK",format=raw,if=virtio,cache=unsafe \
  $(qemu_net_args nofwd) </dev/null >/dev/null \
  || { echo "vm/build.sh: relabel boot failed or timed out; see $WORK/console-relabel.log" >&2; exit 1; }
record relabel_boot_s "$(elapsed "$T4" "$(now)")"
if debugfs -R 'stat /.autorelabel' "$DISK" 2>/dev/null | grep -q Inode; then
  echo "vm/build.sh: the relabel did not happen (/.autorelabel still there); see $WORK/console-relabel.log" >&2
  exit 1
fi
qemu-img convert -O qcow2 "$DISK" "$WORK/golden.qcow2"
rm -f "$DISK"
record golden_qcow2 "$(du -h "$WORK/golden.qcow2" | cut -f1)"
record build_total_s "$(elapsed "$T0" "$(now)")"
chmod 444 "$WORK/golden.qcow2"
touch "$WORK/complete"
rm -rf "$IMGDIR"; mv "$WORK" "$IMGDIR"
log "built $IMGDIR"
echo "$IMGDIR"
