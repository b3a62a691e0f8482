# Install RHEL 9's targeted policy (MCS) into the guest's rootfs, built there from source with Debian 12's
# own SELinux tools (sourced by vm/build.sh for VM_FLAVOUR=targeted; part of that flavour's cache key).
# shellcheck shell=bash
#
# The build mirrors RHEL 9's selinux-policy.spec (%makeCmds, %makeModulesConf, %installCmds for targeted/mcs)
# as ../shared/rhel-policy/build-reference.sh does. Then the file-context equivalences that put Debian's
# Postfix and OpenSSH binaries into their RHEL domains: Debian installs the daemons under
# /usr/lib/postfix/sbin and /usr/lib/openssh (RHEL: /usr/libexec/...), and postfix@-.service starts
# /usr/sbin/postmulti; without these they would be lib_t/bin_t and run unconfined.

TARGETED_BUILD_PACKAGES=(m4 gawk make checkpolicy policycoreutils-dev python3)
TARGETED_EQUIVALENCES='fcontext -a -e /usr/libexec/postfix /usr/lib/postfix/sbin
fcontext -a -t postfix_master_exec_t /usr/sbin/postmulti
fcontext -a -e /usr/libexec/openssh /usr/lib/openssh'

# Check the sources against the pinned checksums; fail with the reason before anything is built.
targeted_check_sources() {
  [[ -d $RHEL_POLICY_DIR ]] || { echo "vm/build.sh: RHEL_POLICY_DIR=$RHEL_POLICY_DIR is not a directory (RHEL 9's policy sources: see vm/README.md)" >&2; return 1; }
  (cd "$RHEL_POLICY_DIR" && grep -v '^#' "$VM_HERE/targeted-policy.sha256" | sha256sum --quiet -c -) >&2 \
    || { echo "vm/build.sh: the sources in $RHEL_POLICY_DIR do not match vm/targeted-policy.sha256" >&2; return 1; }
}

# targeted_install ROOTFS WORK: build the policy in the chroot, install it, add the equivalences.
targeted_install() {
  local rootfs=$1 work=$2 build=/root/rhel-policy-build
  chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${TARGETED_BUILD_PACKAGES[@]}" >"$work/targeted-apt.log" 2>&1 \
    || { scrub_logs; tail -30 "$work/targeted-apt.log" >&2; return 1; }
  rm -rf "$rootfs$build"; mkdir -p "$rootfs$build"
  tar -xzf "$RHEL_POLICY_DIR/selinux-policy-38.1.45.tar.gz" -C "$rootfs$build"
  cp -r "$RHEL_POLICY_DIR/el9-sources" "$rootfs$build/cfg"
  tar -xzf "$RHEL_POLICY_DIR/el9-sources/container-selinux.tgz" \
    -C "$rootfs$build/selinux-policy-38.1.45/policy/modules/contrib"
  # The build itself, in the chroot (ROOT: a staging tree, copied into place once complete).
  chroot "$rootfs" /bin/bash -euo pipefail -c '
    cd /root/rhel-policy-build/selinux-policy-38.1.45
    CFG=/root/rhel-policy-build/cfg ROOT=/root/rhel-policy-build/root
    P="DISTRO=redhat UBAC=n DIRECT_INITRC=n MONOLITHIC=n MLS_CATS=1024 MCS_CATS=1024 UNK_PERMS=allow NAME=targeted TYPE=mcs"
    make $P bare >/dev/null; make $P conf >/dev/null
    cp -f $CFG/booleans-targeted.conf policy/booleans.conf
    cp -f $CFG/users-targeted policy/users
    cp -f $CFG/modules-targeted-base.conf policy/modules-base.conf
    cp -f $CFG/modules-targeted-base.conf policy/modules.conf
    cp -f $CFG/modules-targeted-contrib.conf policy/modules-contrib.conf
    cat $CFG/modules-targeted-contrib.conf >> policy/modules.conf
    # RHEL 9.3 module lists vs the v38.1.45 source: glusterd was removed upstream; modules without source: off
    for m in $(awk "\$2==\"=\" && (\$3==\"module\"||\$3==\"base\"){print \$1}" policy/modules.conf); do
      ls policy/modules/*/$m.te >/dev/null 2>&1 && continue
      echo "no source for module $m: off"
      sed -i -E "s/^$m[[:space:]]*=[[:space:]]*module/$m = off/" policy/modules.conf policy/modules-contrib.conf policy/modules-base.conf
    done
    make -j2 $P base.pp >/dev/null
    make -j2 $P validate modules >/dev/null
    mkdir -p $ROOT/etc/selinux $ROOT/var/lib/selinux/targeted $ROOT/usr/share/selinux/targeted
    make $P DESTDIR=$ROOT install >/dev/null
    make $P DESTDIR=$ROOT install-appconfig >/dev/null
    make $P DESTDIR=$ROOT SEMODULE="/usr/sbin/semodule -p $ROOT -X 100 " load >/dev/null
    mkdir -p $ROOT/etc/selinux/targeted/logins
    touch $ROOT/etc/selinux/targeted/contexts/files/file_contexts.subs
    install -m0644 $CFG/securetty_types-targeted $ROOT/etc/selinux/targeted/contexts/securetty_types
    install -m0644 $CFG/file_contexts.subs_dist $ROOT/etc/selinux/targeted/contexts/files
    install -m0644 $CFG/setrans-targeted.conf $ROOT/etc/selinux/targeted/setrans.conf
    install -m0644 $CFG/customizable_types $ROOT/etc/selinux/targeted/contexts/customizable_types
    install -m0644 $CFG/booleans.subs_dist $ROOT/etc/selinux/targeted
    /usr/sbin/semodule -p $ROOT -X 100 -s targeted -i $CFG/permissivedomains.cil
    cp -a $ROOT/etc/selinux/targeted /etc/selinux/
    mkdir -p /var/lib/selinux /usr/share/selinux
    cp -a $ROOT/var/lib/selinux/targeted /var/lib/selinux/
    cp -a $ROOT/usr/share/selinux/targeted /usr/share/selinux/
  ' >"$work/targeted-build.log" 2>&1 || { scrub_logs; tail -40 "$work/targeted-build.log" >&2; return 1; }
  printf '%s\n' "$TARGETED_EQUIVALENCES" > "$rootfs$build/equivalences"
  chroot "$rootfs" semanage import -S targeted -f "$build/equivalences" >>"$work/targeted-build.log" 2>&1 \
    || { tail -20 "$work/targeted-build.log" >&2; return 1; }
  rm -rf "$rootfs$build"
}
