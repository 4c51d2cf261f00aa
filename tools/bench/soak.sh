#!/usr/bin/env bash
# soak.sh: fio with crc32c verify on several disks for a given time while the disks
# are migrated back and forth among datastores without pause, and cancelled now and
# then. Reports migrations done / cancelled / failed (failed must be 0), bytes
# written and verified, fio errors (must be 0), the longest switch pause, and the
# daemon's peak RSS. Disk 1 is written O_DSYNC. Exit status 0 only if nothing failed.
#
# usage: tools/bench/soak.sh [--minutes 20] [--disks 4] [--size 256m] [--dir /var/tmp]
#        [--build build]
set -eu
minutes=20; disks=4; size=256m; dir=/var/tmp; build=build
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) minutes=$2; shift 2 ;; --disks) disks=$2; shift 2 ;;
    --size) size=$2; shift 2 ;; --dir) dir=$2; shift 2 ;; --build) build=$2; shift 2 ;;
    *) echo "usage: $0 [--minutes M] [--disks N] [--size S] [--dir D] [--build B]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/../.."
case $build in /*) ;; *) build=$PWD/$build ;; esac
VDSFS=$build/fs/vdsfs; VDSCTL=$build/tools/vdsctl/vdsctl
top=$(mktemp -d "$dir/vdsfs-soak-XXXXXX")
mnt=$top/mnt; sock=$top/ctl.sock
trap 'pkill -f "fio --name=soak" 2>/dev/null; mountpoint -q "$mnt" && fusermount3 -u "$mnt"; rm -rf "$top"' EXIT
mkdir -p "$top/D1" "$top/D2" "$top/D3" "$mnt"
"$VDSFS" "D1=$top/D1:D2=$top/D2:D3=$top/D3" "$mnt" -o "control=$sock,create=D1"
pid=$(pgrep -f "vdsfs D1=$top/D1" | head -1)
ctl() { "$VDSCTL" -s "$sock" -m "$mnt" "$@"; }
secs=$((minutes * 60))
fio_job() { # disk, args...
  fio --name=soak --filename="$mnt/vm/disk$1" --size="$size" --direct=1 --ioengine=io_uring \
      --rw=randwrite --bs=4k --iodepth=8 --verify=crc32c --verify_fatal=1 \
      --verify_state_save=0 "${@:2}"
}
mkdir -p "$mnt/vm"
for d in $(seq 1 "$disks"); do fio_job "$d" --rw=write --bs=1M --output-format=terse >/dev/null; done
fpids=""
for d in $(seq 1 "$disks"); do
  # disk 1 writes through O_DSYNC, whose writes must be durable while migrating too
  sync=""; [ "$d" = 1 ] && sync="--sync=dsync"
  fio_job "$d" --time_based --runtime="$secs" --rate_iops=1500 --verify_backlog=1024 $sync \
      --output-format=json >"$top/fio$d.json" 2>"$top/fio$d.err" & fpids="$fpids $!"
done
end=$(( $(date +%s) + secs ))
n=0; cancels=0
while [ "$(date +%s)" -lt "$end" ]; do
  d=$(( RANDOM % disks + 1 ))
  cur=$(ctl where "$mnt/vm/disk$d" | cut -f2)
  to=D$(( RANDOM % 3 + 1 )); [ "$to" = "$cur" ] && continue
  n=$((n + 1))
  if [ $((n % 5)) = 0 ]; then
    id=$(ctl migrate "$mnt/vm/disk$d" --to "$to" 2>/dev/null) || continue
    sleep "0.$(( RANDOM % 9 ))"
    ctl cancel "$id" 2>/dev/null && cancels=$((cancels + 1))
    while ctl status "$id" | grep -qE "queued|copying|converging|switching|cancelling"; do sleep 0.2; done
  else
    ctl migrate --wait "$mnt/vm/disk$d" --to "$to" >/dev/null 2>&1 || true
  fi
done
ferr=0
for p in $fpids; do wait "$p" || ferr=$((ferr + 1)); done
rss=$(awk '/VmHWM/ {print $2, $3}' "/proc/$pid/status")
ctl status --json >"$top/status.json"
verify_fail=0
for d in $(seq 1 "$disks"); do
  fio_job "$d" --verify_only --output-format=terse >/dev/null 2>&1 || verify_fail=$((verify_fail + 1))
done
set +e
python3 - "$top" "$disks" "$ferr" "$rss" "$verify_fail" "$minutes" <<'PY'
import json, sys
top, disks, ferr, rss, vfail, minutes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
st = json.load(open(f"{top}/status.json"))
phases = {}
for m in st:
    phases[m["phase"]] = phases.get(m["phase"], 0) + 1
pauses = [m["pause_ms"] for m in st if m["phase"] == "done"]
written = verified = errors = 0
for d in range(1, disks + 1):
    try:
        j = json.load(open(f"{top}/fio{d}.json"))["jobs"][0]
        written += j["write"]["io_bytes"]; verified += j["read"]["io_bytes"]; errors += j["error"]
    except Exception as e:
        errors += 1
print(f"soak: {minutes} min, {disks} disks")
print(f"| migrations done | cancelled | failed | bytes written | bytes verified inline | fio errors | final verify failures | longest pause ms | median pause ms | daemon peak RSS |")
print(f"|---|---|---|---|---|---|---|---|---|---|")
pm = sorted(pauses)[len(pauses) // 2] if pauses else 0
print(f"| {phases.get('done', 0)} | {phases.get('cancelled', 0)} | {phases.get('failed', 0)} | {written >> 20} MiB | {verified >> 20} MiB | {errors + ferr} | {vfail} | {max(pauses, default=0):.2f} | {pm:.2f} | {rss} |")
ok = phases.get("failed", 0) == 0 and errors + ferr == 0 and vfail == 0
sys.exit(0 if ok else 1)
PY
rc=$?
trap - EXIT
pkill -f "fio --name=soak" 2>/dev/null
mountpoint -q "$mnt" && fusermount3 -u "$mnt"
rm -rf "$top"
exit $rc
