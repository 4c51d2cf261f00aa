#!/usr/bin/env bash
# tools/deps.sh: install the Debian 12 packages vdsfs needs to build, test, demo and
# benchmark, but only those that are missing (so a second run is instant and offline).
# Usage: tools/deps.sh [build|test|bench]   (each level includes the ones before it)
set -eu
level=${1:-test}
# scdoc builds the man pages (doc/man); man-db and groff-base render them in tests,
# bash-completion is the framework the installed vdsctl completion is tested in.
pkgs="gcc meson ninja-build pkg-config libfuse3-dev fuse3 liburing-dev libjson-c-dev
      libcriterion-dev python3 scdoc"
case $level in
  test|bench) pkgs="$pkgs fio qemu-utils clang libclang-rt-14-dev attr e2fsprogs util-linux systemd
                    man-db groff-base bash-completion" ;;
esac
# qemu-system-common ships qemu-storage-daemon (qemu-mirror-bench.sh), xfsprogs the
# large sparse filesystems of scale-bench.sh
[ "$level" = bench ] && pkgs="$pkgs mergerfs gnuplot-nox bc qemu-system-common xfsprogs"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing packages:$missing (run as root to install them)" >&2
  exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
