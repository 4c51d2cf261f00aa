#!/usr/bin/env bash
# scale-bench.sh: what a migration costs as the disk's *virtual* size grows while the
# data written stays the same (issue 12). Thin disks of 64 GiB, 2 TiB and 16 TiB with
# 1 GiB written in 1 MiB pieces at random places are migrated live, each under a
# 500 IOPS fio 4k random writer, from a datastore on one XFS to a datastore on
# another; then four 2 TiB disks at once, on four distinct datastore pairs (the
# scheduler runs at most one migration per datastore, a datastore being one NAME=PATH
# entry, so eight directories on the two filesystems do). Both XFS live on sparse
# loop files made here: they cost only what is written, and a 16 TiB disk does not
# fit on an ext4 host (its largest file is 16 TiB - 4 KiB).
#
# Each row gets a daemon of its own, so its VmHWM (/proc/PID/status) is that row's
# peak; the idle row is a daemon serving the mount with nothing moving. A migration
# that fails is reported in its row ("failed: <reason>") and the next row runs.
#
# usage: tools/bench/scale-bench.sh [--sizes 64G,2T,16T] [--written 1G] [--rate 500]
#        [--parallel-size 2T] [--parallel 4] [--fs-size 20T] [--timeout 3600]
#        [--dir /var/tmp] [--build DIR]
#   --parallel 0 skips the row of disks migrating at once; --build (or VDSFS_BUILD):
#   the build directory with vdsfs and vdsctl, default build/ of this tree.
# Needs root, fio, xfsprogs (tools/deps.sh bench). Prints a markdown table.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=tools/bench/benchlib.sh
. "$here/benchlib.sh"

sizes=64G,2T,16T written=1G rate=500 psize=2T pdisks=4 fs_size=20T tmo=3600
dir=/var/tmp build=${VDSFS_BUILD:-build}
usage() { sed -n '16,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--sizes) sizes=$2; shift 2 ;; --written) written=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;; --parallel-size) psize=$2; shift 2 ;;
	--parallel) pdisks=$2; shift 2 ;; --fs-size) fs_size=$2; shift 2 ;;
	--timeout) tmo=$2; shift 2 ;; --dir) dir=$2; shift 2 ;;
	--build) build=$2; shift 2 ;; *) usage ;;
	esac
done
bench_need_root
bench_need_tools fio mkfs.xfs losetup fusermount3 python3 numfmt bc
bench_build_dir "$build"
[ "$pdisks" -le 4 ] || bench_die "--parallel takes 0 to 4"
bytes() { numfmt --from=iec "$1"; }
mib() { echo $(( $1 >> 20 )); }

bench_traps
echo "free in $dir before: $(bench_free "$dir")" >&2
top=$(mktemp -d "$dir/vdsfs-scale-XXXXXX")
bench_defer "rm -rf '$top'"

# The sparse loop files: ask for --fs-size; a host filesystem whose files cannot be that
# large (ext4: 16 TiB - 4 KiB) gets the largest whole GiB below its limit instead.
fit_size() {
	local want=$1 f=$top/probe
	if truncate -s "$want" "$f" 2>/dev/null; then rm -f "$f"; echo "$want"; return; fi
	rm -f "$f"
	echo "note: $dir cannot hold a $want file; the loop filesystems get 16383G" >&2
	echo 16383G
}
fs_size=$(fit_size "$fs_size")
bench_loopfs "$top/src.img" "$fs_size" xfs "$top/src"
bench_loopfs "$top/dst.img" "$fs_size" xfs "$top/dst"
mkdir -p "$top"/src/s{1,2,3,4} "$top"/dst/d{1,2,3,4} "$top/mnt"
mnt=$top/mnt sock=$top/ctl.sock

# make_disk PATH SIZE: a thin disk of SIZE with --written bytes in 1 MiB pieces at
# distinct random 1 MiB slots (fixed seed: every run writes the same layout).
make_disk() {
	truncate -s "$2" "$1"
	python3 - "$1" "$(bytes "$2")" "$(bytes "$written")" <<'PY'
import os, random, sys
path, size, written = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
slots, pieces = size >> 20, written >> 20
if pieces > slots:
    sys.exit(f"scale-bench: cannot write {written} bytes into {size}")
rng = random.Random(12)
buf = bytearray(os.urandom(1 << 20))
fd = os.open(path, os.O_WRONLY)
for slot in sorted(rng.sample(range(slots), pieces)):
    buf[:8] = slot.to_bytes(8, "little")   # no two pieces alike
    os.pwrite(fd, buf, slot << 20)
os.fsync(fd)
os.close(fd)
PY
}

hwm_mib() { # pid: peak RSS in MiB (one decimal)
	awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}
rss_mib() {
	awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# start_writer FILE SIZE: the light guest writer on a disk through the mount.
writer_pids=()
start_writer() {
	fio --name=w --filename="$1" --size="$2" --rw=randwrite --bs=4k --iodepth=16 \
		--ioengine=io_uring --direct=1 --norandommap --randrepeat=0 --rate_iops="$rate" \
		--time_based --runtime=36000 >/dev/null 2>&1 &
	writer_pids+=($!)
	bench_defer "bench_kill $!"
}
stop_writers() {
	local p
	for p in "${writer_pids[@]}"; do bench_kill "$p"; done
	writer_pids=()
}

# summary of the status JSON: the run's phases, errors and how many migrations ran
# at once (from their start and end times)
status_summary() { # json-file -> "ok|<copy s>|<converge s>|<cleanup s>|<at once>" or "failed|<reason>"
	python3 - "$1" <<'PY'
import json, sys
ms = json.load(open(sys.argv[1]))
if not ms:
    print("failed|no migration in status")
    sys.exit()
bad = [m for m in ms if m["phase"] != "done"]
if bad:
    m = bad[0]
    why = m.get("error") or m.get("note") or "no reason given"
    print("failed|" + (why if m["phase"] == "failed" else "%s: %s" % (m["phase"], why)))
    sys.exit()
edges = sorted([(m["started_ns"], 1) for m in ms] + [(m["ended_ns"], -1) for m in ms])
run = most = 0
for _, d in edges:
    run += d
    most = max(most, run)
mx = lambda k: max(m[k] for m in ms) / 1e3
print("ok|%.2f|%.2f|%.2f|%d" % (mx("copy_ms"), mx("converge_ms"), mx("cleanup_ms"), most))
PY
}

rows=()
# run_row LABEL N SIZE: N disks of SIZE, disk i on Si, migrated to Di at once.
run_row() {
	local label=$1 n=$2 size=$3 i ds="" args=() alloc=0 t0 t1 secs rc hwm st res reason
	local undo_mark=${#bench_undo[@]}
	for i in $(seq 1 "$n"); do
		make_disk "$top/src/s$i/disk$i" "$size" || {
			rows+=("| $label | $size | $written | | | | | failed: could not create the disk |")
			rm -f "$top/src/s$i/disk$i"; return 0; }
		alloc=$(( alloc + $(stat -c %b "$top/src/s$i/disk$i") * 512 ))
		ds="$ds${ds:+:}S$i=$top/src/s$i:D$i=$top/dst/d$i"
	done
	bench_vdsfs_start "$mnt" "$sock" "$ds"
	for i in $(seq 1 "$n"); do
		start_writer "$mnt/disk$i" "$size"
		args+=("$mnt/disk$i=D$i")
	done
	sleep 3
	echo "  $label: migrating $n x $size ($(bench_load))" >&2
	t0=$(date +%s.%N)
	rc=0
	timeout "$tmo" "$VDSCTL" -s "$sock" -m "$mnt" migrate --wait "${args[@]}" >"$top/migrate.out" 2>&1 || rc=$?
	t1=$(date +%s.%N)
	secs=$(echo "$t1 - $t0" | bc)
	hwm=$(hwm_mib "$VDSFS_PID")
	stop_writers
	"$VDSCTL" -s "$sock" status --json >"$top/status.json" 2>/dev/null || echo '[]' >"$top/status.json"
	st=$(status_summary "$top/status.json")
	if [ "$rc" = 124 ]; then
		reason="timeout after ${tmo}s"
	elif [ "${st%%|*}" = failed ] && [ "$st" != "failed|no migration in status" ]; then
		reason=${st#failed|}
	elif [ "$rc" != 0 ] || [ "${st%%|*}" = failed ]; then
		reason=$(grep -v '^\s*$' "$top/migrate.out" | tail -1 | tr '|' '/')
		reason=${reason:-vdsctl exit $rc}
	else
		reason=""
	fi
	if [ -n "$reason" ]; then
		res="failed: $reason"
		rows+=("| $label | $size | $(mib "$alloc") | $(printf %.2f "$secs") | | | $hwm | $res |")
	else
		IFS='|' read -r _ c v k once <<<"$st"
		rows+=("| $label | $size | $(mib "$alloc") | $(printf %.2f "$secs") | $c / $v / $k | $once | $hwm | done |")
	fi
	echo "  $label: ${reason:-done} in ${secs}s, peak RSS $hwm MiB" >&2
	# this row's daemon and writers end here; their undo entries go with them
	bench_unmount_fuse "$mnt" "$VDSFS_PID"
	bench_undo=("${bench_undo[@]:0:undo_mark}")
	for i in $(seq 1 "$n"); do
		rm -f "$top/src/s$i/disk$i" "$top/dst/d$i/disk$i"
	done
}

echo "# scale-bench: $(uname -r), $(nproc) cpus; $(bench_load); loop XFS of $fs_size each"
echo "# vdsfs: $VDSFS"

# the idle daemon: all eight datastores, one thin disk present, a few lookups
make_disk "$top/src/s1/disk1" "$(echo "$sizes" | cut -d, -f1)"
all="S1=$top/src/s1:S2=$top/src/s2:S3=$top/src/s3:S4=$top/src/s4"
all="$all:D1=$top/dst/d1:D2=$top/dst/d2:D3=$top/dst/d3:D4=$top/dst/d4"
mark=${#bench_undo[@]}
bench_vdsfs_start "$mnt" "$sock" "$all"
ls -l "$mnt" >/dev/null; stat "$mnt/disk1" >/dev/null; sleep 2
idle="VmRSS $(rss_mib "$VDSFS_PID") MiB, VmHWM $(hwm_mib "$VDSFS_PID") MiB"
bench_unmount_fuse "$mnt" "$VDSFS_PID"
bench_undo=("${bench_undo[@]:0:mark}")
rm -f "$top/src/s1/disk1"

IFS=, read -r -a size_list <<<"$sizes"
for s in "${size_list[@]}"; do run_row "1 disk" 1 "$s"; done
[ "$pdisks" -gt 0 ] && run_row "$pdisks disks at once" "$pdisks" "$psize"

echo
echo "idle daemon (8 datastores, one disk, after lookups): $idle"
echo
echo "| disks | virtual size (each) | written MiB (allocated, all disks) | migration s | copy / converge / cleanup s (slowest) | ran at once | daemon peak RSS MiB (VmHWM) | result |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "writer: fio 4k randwrite, iodepth 16, ${rate} IOPS per disk through the mount; $(bench_load)"
echo "free in $dir after the runs: $(bench_free "$dir")" >&2
