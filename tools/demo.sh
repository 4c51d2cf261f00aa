#!/usr/bin/env bash
# tools/demo.sh: the README's first quick-start command. Installs what is missing,
# builds, then on temporary datastores it makes itself shows the mission:
#   four datastores as one mount, a VM folder with five disks under fio load
#   (crc32c verify), `vdsctl migrate --wait` moving all five live with the
#   distinct-datastore rule visible, a per-disk summary (from, to, copy time,
#   switch pause), a verify pass, and at the end one datastore of the four
#   evacuated (`vdsctl evacuate --wait`, fio writing again) and removed from the
#   mount. Unmounts and cleans up on any exit.
set -eu
cd "$(dirname "$0")/.."
tools/deps.sh test
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
VDSFS=$PWD/build/fs/vdsfs
VDSCTL=$PWD/build/tools/vdsctl/vdsctl

top=$(mktemp -d /tmp/vdsfs-demo-XXXXXX)
mnt=$top/mnt
sock=$top/ctl.sock
cleanup() {
  set +e
  pkill -f "fio --name=demo" 2>/dev/null
  mountpoint -q "$mnt" && fusermount3 -u "$mnt"
  for d in "$top"/DS*; do mountpoint -q "$d" && umount -l "$d"; done
  rm -rf "$top"
}
trap cleanup EXIT INT TERM
ctl() { "$VDSCTL" -s "$sock" -m "$mnt" "$@"; }

echo "== four datastores (tmpfs, 1 GiB each) and a VM folder with five 64 MiB disks"
mkdir -p "$mnt"
spec=""
for i in 1 2 3 4; do
  mkdir "$top/DS$i"
  mount -t tmpfs -o size=1g tmpfs "$top/DS$i"
  spec="$spec${spec:+:}DS$i=$top/DS$i"
done
# disks 1,2,5 on DS1 and 3,4 on DS2, as a VM that grew over time would have them
for d in 1 2 5; do mkdir -p "$top/DS1/vm1"; head -c 64M /dev/urandom >"$top/DS1/vm1/disk$d.raw"; done
for d in 3 4; do mkdir -p "$top/DS2/vm1"; head -c 64M /dev/urandom >"$top/DS2/vm1/disk$d.raw"; done
"$VDSFS" "$spec" "$mnt" -o "control=$sock"
ctl datastores | sed 's/^/   /'

echo "== fio on every disk: random 4k writes, crc32c verified as they go"
fio_job() { # disk, extra args
  fio --name=demo --filename="$mnt/vm1/$1.raw" --size=64m --direct=1 --ioengine=io_uring \
      --rw=randwrite --bs=4k --iodepth=8 --verify=crc32c --verify_fatal=1 \
      --verify_state_save=0 --output-format=terse "${@:2}"
}
pids=""
for d in disk1 disk2 disk3 disk4 disk5; do
  fio_job "$d" --rate_iops=2000 --verify_backlog=512 >"$top/$d.fio" 2>&1 & pids="$pids $!"
done
sleep 1

echo "== migrate the folder live: disk1,2 DS1->DS4; disk3,4 DS2->DS3; disk5 DS1->DS3"
echo "   (a copy starts only while its source and destination are both free)"
ctl migrate --wait --bwlimit 48M "$mnt/vm1/disk1.raw=DS4" "$mnt/vm1/disk2.raw=DS4" \
    "$mnt/vm1/disk3.raw=DS3" "$mnt/vm1/disk4.raw=DS3" "$mnt/vm1/disk5.raw=DS3" | sed 's/^/   /'

echo "== fio writers during the migration"
ok=1
for p in $pids; do wait "$p" || ok=0; done
for d in disk1 disk2 disk3 disk4 disk5; do
  grep -q "verify" "$top/$d.fio" && ok=0
done
[ $ok = 1 ] && echo "   all five finished with every block verified" || { echo "   FAILED"; cat "$top"/*.fio; }

echo "== summary"
ctl status --json | python3 -c '
import json, sys
ms = json.load(sys.stdin)
order = sorted((m["started_seq"], "start", m["path"]) for m in ms)
order += sorted((m["ended_seq"], "end  ", m["path"]) for m in ms)
print("   %-14s %-5s %-5s %10s %10s %s" % ("disk", "from", "to", "copy ms", "pause ms", "phase"))
for m in ms:
    print("   %-14s %-5s %-5s %10.0f %10.2f %s" % (m["path"], m["from"], m["to"], m["copy_ms"], m["pause_ms"], m["phase"]))
print("   scheduler order: " + ", ".join("%s %s" % (k, p.split("/")[-1].split(".")[0]) for _, k, p in sorted(order)))
'
echo "== where each disk lives now"
ctl where "$mnt"/vm1/*.raw | sed 's/^/   /'

echo "== verify pass over every disk after the switch"
for d in disk1 disk2 disk3 disk4 disk5; do
  fio_job "$d" --verify_only >/dev/null 2>&1 && echo "   $d: every block verified" || { echo "   $d: VERIFY FAILED"; ok=0; }
done

echo "== evacuate DS3 while fio writes again, then remove it from the mount"
pids=""
for d in disk3 disk4 disk5; do
  fio_job "$d" --rate_iops=2000 --verify_backlog=512 >"$top/$d.fio" 2>&1 & pids="$pids $!"
done
sleep 1
ctl evacuate DS3 --wait | sed 's/^/   /' || ok=0
for p in $pids; do wait "$p" || ok=0; done
for d in disk1 disk2 disk3 disk4 disk5; do
  fio_job "$d" --verify_only >/dev/null 2>&1 || { echo "   $d: VERIFY FAILED"; ok=0; }
done
[ $ok = 1 ] && echo "   every block of every disk verified after the evacuation"
ctl datastore remove DS3 && ctl datastores | sed 's/^/   /'
ctl where "$mnt"/vm1/*.raw | sed 's/^/   /'
echo "   the fstab line for what is mounted now: $(ctl datastores --spec)"
leftover=$(find "$top"/DS*/.vdsfs -type f ! -name lock | wc -l)
echo "   files left in .vdsfs/: $leftover"
echo "== done: unmounting and cleaning up"
[ $ok = 1 ] && [ "$leftover" = 0 ]
