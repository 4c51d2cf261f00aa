#!/usr/bin/env bash
# tools/demo.sh: the README's first quick-start command. Installs what is missing,
# builds, then on temporary datastores it makes itself: mounts four datastores as one
# namespace, creates a VM folder with a few disk images, runs fio with crc32c verify
# through the mount, shows which datastore holds each file, unmounts and cleans up.
set -eu
cd "$(dirname "$0")/.."
tools/deps.sh test
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
VDSFS=$PWD/build/fs/vdsfs

top=$(mktemp -d /tmp/vdsfs-demo-XXXXXX)
mnt=$top/mnt
cleanup() {
  set +e
  mountpoint -q "$mnt" && fusermount3 -u "$mnt"
  for d in "$top"/ds*; do mountpoint -q "$d" && umount -l "$d"; done
  rm -rf "$top"
}
trap cleanup EXIT INT TERM

echo "== four datastores (tmpfs, 512 MiB each), one mount"
mkdir -p "$mnt"
spec=""
for i in 1 2 3 4; do
  mkdir "$top/ds$i"
  mount -t tmpfs -o size=512m tmpfs "$top/ds$i"
  spec="$spec${spec:+:}DS$i=$top/ds$i"
done
"$VDSFS" "$spec" "$mnt"
df -h "$mnt" | sed 's/^/   /'

echo "== a VM folder with three disks (placement: most free space)"
mkdir "$mnt/vm1"
for d in disk1 disk2 disk3; do
  qemu-img create -q -f raw "$mnt/vm1/$d.raw" 96M
  fallocate -l 8M "$top/ds1/filler-$d" 2>/dev/null || true  # tilt free space
done
ls -l "$mnt/vm1" | sed 's/^/   /'

echo "== fio: 4k random writes with crc32c verify, direct I/O through the mount"
for d in disk1 disk2 disk3; do
  fio --name="$d" --filename="$mnt/vm1/$d.raw" --size=64m --direct=1 --ioengine=io_uring \
      --rw=randwrite --bs=4k --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 \
      --output-format=terse --terse-version=3 >/dev/null
  echo "   $d: written and verified"
done

echo "== which datastore holds each file"
for f in "$mnt"/vm1/*; do
  rel=${f#"$mnt"/}
  for i in 1 2 3 4; do
    [ -e "$top/ds$i/$rel" ] && printf '   %-16s DS%s\n' "$rel" "$i"
  done
done
echo "== done: unmounting and cleaning up"
