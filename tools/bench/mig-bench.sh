#!/usr/bin/env bash
# mig-bench.sh: one disk under fio 4k random writes (iodepth 16), migrated live between
# two datastores; rate-limited and unlimited writers, 1 GiB and 4 GiB disks.
# Reports, per run: total migration time (and its parts as status reports them: copy,
# converge, the flush before the pause, the cleanup after it) and its ratio to a
# plain vds-copy of the same disk; the switch pause as the guest saw it (largest gap between I/O
# completions in fio's per-I/O log, around the switch) and as the daemon measured
# it; guest IOPS during the migration against before it. Draws a PNG per run
# (IOPS and latency over time, migration start and switch marked).
#
# usage: tools/bench/mig-bench.sh [--sizes "1g 4g"] [--modes "limited unlimited"]
#        [--rate 5000] [--dir /var/tmp] [--build build] [--out tools/bench/results]
# Needs root, fio, gnuplot (tools/deps.sh bench).
set -eu
sizes="1g 4g"; modes="limited unlimited"; rate=5000; dir=/var/tmp
build=build; out=tools/bench/results
while [ $# -gt 0 ]; do
  case $1 in
    --sizes) sizes=$2; shift 2 ;; --modes) modes=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;; --dir) dir=$2; shift 2 ;;
    --build) build=$2; shift 2 ;; --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--sizes S] [--modes M] [--rate IOPS] [--dir D] [--build B] [--out O]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/../.."
case $build in /*) ;; *) build=$PWD/$build ;; esac
VDSFS=$build/fs/vdsfs; VDSCTL=$build/tools/vdsctl/vdsctl
VDSCOPY=$build/tools/vds-copy/vds-copy
mkdir -p "$out"; out=$(cd "$out" && pwd)
top=$(mktemp -d "$dir/vdsfs-migbench-XXXXXX")
trap 'mountpoint -q "$top/mnt" && fusermount3 -u "$top/mnt"; rm -rf "$top"' EXIT
mkdir -p "$top/A" "$top/B" "$top/mnt" "$top/cpA" "$top/cpB"

printf '| disk | writer | migration s (copy, converge, flush, cleanup) | plain copy s | ratio | pause guest ms | pause daemon ms | IOPS before | IOPS during | during/before |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for size in $sizes; do
  # the plain-copy baseline: the same bytes, vds-copy between two directories
  fio --name=l --filename="$top/cpA/d" --size="$size" --rw=write --bs=1M --direct=1 \
      --output-format=terse >/dev/null
  rm -f "$top/cpB/d"; sync
  t0=$(date +%s.%N)
  "$VDSCOPY" -q "A=$top/cpA" "B=$top/cpB" "A:d=B" >/dev/null
  plain=$(echo "$(date +%s.%N) - $t0" | bc)
  rm -f "$top/cpA/d" "$top/cpB/d"
  for mode in $modes; do
    rm -f "$top"/A/d "$top"/B/d
    "$VDSFS" "A=$top/A:B=$top/B" "$top/mnt" -o "create=A,control=$top/ctl.sock"
    fio --name=l --filename="$top/mnt/d" --size="$size" --rw=write --bs=1M --direct=1 \
        --output-format=terse >/dev/null
    extra=""; [ "$mode" = limited ] && extra="--rate_iops=$rate"
    log=$top/fio-$size-$mode
    fio --name=g --filename="$top/mnt/d" --size="$size" --rw=randwrite --bs=4k --iodepth=16 \
        --ioengine=io_uring --direct=1 --time_based --runtime=3600 --norandommap $extra \
        --write_lat_log="$log" --log_avg_msec=0 --write_iops_log="$log" \
        --output-format=terse >/dev/null 2>&1 &
    fpid=$!
    fstart=$(date +%s.%N)
    sleep 5
    mstart=$(date +%s.%N)
    "$VDSCTL" -s "$top/ctl.sock" -m "$top/mnt" migrate --wait "$top/mnt/d" --to B >/dev/null
    mend=$(date +%s.%N)
    sleep 3
    kill -INT $fpid; wait $fpid || true
    pause=$("$VDSCTL" -s "$top/ctl.sock" -m "$top/mnt" status --json | python3 -c \
            'import json,sys; m=json.load(sys.stdin)[-1]; print("%.2f|%.2f|%.2f|%.2f|%.2f" % (m["pause_ms"], m["copy_ms"]/1e3, m["converge_ms"]/1e3, m["flush_ms"]/1e3, m["cleanup_ms"]/1e3))')
    fusermount3 -u "$top/mnt"
    python3 - "$log" "$fstart" "$mstart" "$mend" "$size" "$mode" "$plain" "$pause" "$out" <<'PY'
import sys, subprocess
log, fstart, mstart, mend = sys.argv[1], *map(float, sys.argv[2:5])
size, mode, plain, out = sys.argv[5], sys.argv[6], float(sys.argv[7]), sys.argv[9]
pause, copy_s, conv_s, flush_s, clean_s = sys.argv[8].split("|")
ms, me = (mstart - fstart) * 1000, (mend - fstart) * 1000
t, lat = [], []
for line in open(log + "_lat.1.log"):
    f = line.split(",")
    t.append(int(f[0])); lat.append(int(f[1]) / 1e6)  # ms, ns -> ms
# largest gap between consecutive completions inside the migration window
gap = max((b - a for a, b in zip(t, t[1:]) if ms <= b <= me + 1000), default=0)
secs = {}
for x in t:
    secs[x // 1000] = secs.get(x // 1000, 0) + 1
before = [n for s, n in secs.items() if 1 <= s < ms / 1000 - 0.5]
during = [n for s, n in secs.items() if ms / 1000 <= s < me / 1000]
ib = sum(before) / max(len(before), 1); idur = sum(during) / max(len(during), 1) if during else float("nan")
mig = (me - ms) / 1000
print(f"| {size} | {mode} | {mig:.2f} ({copy_s}, {conv_s}, {flush_s}, {clean_s}) | {plain:.2f} | {mig / plain:.2f}x | {gap:.0f} | {pause} | "
      f"{ib:.0f} | {idur:.0f} | {idur / ib:.2f}x |")
png = f"{out}/mig-{size}-{mode}.png"
dat = f"{log}.dat"
with open(dat, "w") as f:
    for s in sorted(secs):
        f.write(f"{s} {secs[s]}\n")
lat_dat = f"{log}.lat"
with open(lat_dat, "w") as f:
    step = max(1, len(t) // 20000)
    for i in range(0, len(t), step):
        f.write(f"{t[i] / 1000:.3f} {lat[i]:.3f}\n")
gp = f"""set terminal pngcairo size 1000,500
set output '{png}'
set title 'vdsfs live migration, {size} disk, {mode} 4k randwrite qd16'
set xlabel 'seconds'; set ylabel 'IOPS'; set y2label 'latency ms'; set y2tics; set ytics nomirror
set arrow from {ms/1000:.2f}, graph 0 to {ms/1000:.2f}, graph 1 nohead lc rgb 'blue'
set arrow from {me/1000:.2f}, graph 0 to {me/1000:.2f}, graph 1 nohead lc rgb 'red'
set label 'migrate' at {ms/1000:.2f}, graph 0.95 tc rgb 'blue'
set label 'switch' at {me/1000:.2f}, graph 0.9 tc rgb 'red'
plot '{dat}' using 1:2 with steps title 'IOPS', '{lat_dat}' using 1:2 axes x1y2 with dots title 'latency'
"""
subprocess.run(["gnuplot"], input=gp, text=True, check=False)
PY
  done
done
echo
echo "plots: $out/mig-*.png"
