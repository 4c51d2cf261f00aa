#!/usr/bin/env bash
# tools/deps.sh: install the Debian 12 packages vdsfs needs to build, test, demo and
# benchmark, but only those that are missing (so a second run is instant and offline).
# Usage: tools/deps.sh [build|test|bench]   (each level includes the ones before it)
# The test level also unpacks a guest kernel for the VM tests (see guest_kernel below).
set -eu
level=${1:-test}
# scdoc builds the man pages (doc/man); man-db and groff-base render them in tests,
# bash-completion is the framework the installed vdsctl completion is tested in.
pkgs="gcc meson ninja-build pkg-config libfuse3-dev fuse3 liburing-dev libjson-c-dev
      libcriterion-dev python3 scdoc"
case $level in
  test|bench) pkgs="$pkgs fio qemu-utils clang libclang-rt-14-dev attr e2fsprogs util-linux systemd
                    man-db groff-base bash-completion"
    # a real guest (it-guest, it-libvirt): qemu, a busybox initramfs built by the
    # test (cpio, gzip), a static guest program (libc6-dev); libvirt on the mount
    pkgs="$pkgs libc6-dev qemu-system-x86 busybox-static cpio gzip libvirt-daemon-system libvirt-clients"
    # network filesystems as datastores (it-netfs): GlusterFS on loopback, sshfs
    # over a loopback sshd the test starts itself
    pkgs="$pkgs glusterfs-server glusterfs-client openssh-server openssh-client sshfs" ;;
esac
# qemu-system-common ships qemu-storage-daemon (qemu-mirror-bench.sh), xfsprogs the
# large sparse filesystems of scale-bench.sh
[ "$level" = bench ] && pkgs="$pkgs mergerfs gnuplot-nox bc qemu-system-common xfsprogs"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing="$missing $p"
done

# The guest kernel of the VM tests: Debian's linux-image-amd64, unpacked from its
# .deb into GUEST_KERNEL_DIR rather than installed, so that the host's /boot, its
# module tree and its boot loader's configuration stay untouched. Only what a guest
# needs is kept: vmlinuz, its config, and the virtio and block drivers.
GUEST_KERNEL_DIR=${VDSFS_GUEST_KERNEL_DIR:-/var/cache/vdsfs/guest-kernel}
guest_kernel() {
  local pkg tmp
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || { echo "deps.sh: linux-image-amd64 names no kernel package" >&2; return 1; }
  echo "deps.sh: unpacking $pkg into $GUEST_KERNEL_DIR" >&2
  tmp=$(mktemp -d)
  # apt's download runs as _apt where it may: let it write there
  chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null) &&
    dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/x" || { rm -rf "$tmp"; return 1; }
  rm -rf "$GUEST_KERNEL_DIR"; mkdir -p "$GUEST_KERNEL_DIR"
  # vmlinuz last: its presence says the rest is there
  (cd "$tmp/x" && cp -r --parents lib/modules/*/kernel/drivers/virtio \
    lib/modules/*/kernel/drivers/block "$GUEST_KERNEL_DIR"/) &&
    cp "$tmp"/x/boot/config-* "$GUEST_KERNEL_DIR"/ &&
    cp "$tmp"/x/boot/vmlinuz-* "$GUEST_KERNEL_DIR"/
  local rc=$?
  rm -rf "$tmp"
  return $rc
}
kernel_missing=false
case $level in
  test|bench) ls "$GUEST_KERNEL_DIR"/vmlinuz-* >/dev/null 2>&1 || kernel_missing=true ;;
esac

[ -z "$missing" ] && ! $kernel_missing && exit 0
if [ "$(id -u)" != 0 ]; then
  [ -n "$missing" ] && echo "deps.sh: missing packages:$missing (run as root to install them)" >&2
  $kernel_missing && echo "deps.sh: no guest kernel in $GUEST_KERNEL_DIR (run as root)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
if [ -n "$missing" ]; then
  echo "deps.sh: installing$missing" >&2
  # Installing sshd, glusterd or libvirtd would start them, listening on every
  # interface; the tests start their own on loopback and need none of them. A
  # policy-rc.d saying "no" (Debian's own switch) holds them back, for this install
  # only, unless the machine already has one of its own.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy
    trap 'rm -f $policy' EXIT
  fi
  # shellcheck disable=SC2086
  apt-get install -o DPkg::Lock::Timeout=300 -y -qq --no-install-recommends $missing >/dev/null
fi
if $kernel_missing; then guest_kernel; fi
