# shellcheck shell=bash
# benchlib.sh: helpers shared by the shell benchmarks in tools/bench/ (sourced, not run).
#
# Cleanup is a stack: every resource a benchmark makes (temp directory, loop device,
# mount, daemon, fio) pushes the command that undoes it with bench_defer right after it
# exists, and one EXIT trap pops them in reverse order, whatever ends the script (an
# error under set -e, Ctrl-C, SIGTERM). An undo that fails is reported and the others
# still run, so one stuck mount does not leak the loop device under it.
# Processes are only ever ended by the PID this script started them with.

bench_undo=()

bench_defer() { # command string, run by bench_cleanup
	bench_undo+=("$1")
}

bench_cleanup() {
	local i
	for ((i = ${#bench_undo[@]} - 1; i >= 0; i--)); do
		eval "${bench_undo[i]}" || echo "cleanup: '${bench_undo[i]}' failed" >&2
	done
	bench_undo=()
}

bench_traps() {
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

bench_die() {
	echo "${0##*/}: $*" >&2
	exit 2
}

bench_need_root() {
	[ "$(id -u)" = 0 ] || bench_die "needs root"
}

bench_need_tools() { # tool... (all from tools/deps.sh bench)
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || bench_die "$t missing (tools/deps.sh bench)"
	done
}

# bench_build_dir DIR: absolute path of the build directory with the vdsfs binaries;
# DIR relative to the tree's top. Sets VDSFS, VDSCTL, VDSCOPY.
bench_build_dir() {
	local b=$1
	case $b in /*) ;; *) b=$bench_top/$b ;; esac
	VDSFS=$b/fs/vdsfs
	VDSCTL=$b/tools/vdsctl/vdsctl
	VDSCOPY=$b/tools/vds-copy/vds-copy
	{ [ -x "$VDSFS" ] && [ -x "$VDSCTL" ]; } ||
		bench_die "no vdsfs binaries in $b (meson setup $b && ninja -C $b, or --build DIR)"
}

# bench_kill PID: stop a process this script started, SIGINT first (fio writes its
# logs then), SIGKILL if it is still there after 10 s; reap it.
bench_kill() {
	local pid=$1 i
	kill -INT "$pid" 2>/dev/null || return 0
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

bench_wait_mounted() { # mountpoint pid
	local i
	for i in $(seq 200); do
		mountpoint -q "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# bench_unmount_fuse MNT PID: unmount a vdsfs mount and wait for its daemon to exit.
bench_unmount_fuse() {
	local mnt=$1 pid=$2 i
	if mountpoint -q "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
	fi
	for i in $(seq 600); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	bench_kill "$pid"
}

# bench_vdsfs_start MNT SOCK DATASTORES [OPTS]: a vdsfs daemon in the foreground of a
# background job, so its PID is known (for /proc/PID/status) and ours to stop.
# Sets VDSFS_PID; its undo is pushed.
bench_vdsfs_start() {
	local mnt=$1 sock=$2 ds=$3 opts=${4:-}
	"$VDSFS" -f "$ds" "$mnt" -o "control=$sock${opts:+,$opts}" >>"$mnt.log" 2>&1 &
	VDSFS_PID=$!
	bench_defer "bench_unmount_fuse '$mnt' $VDSFS_PID"
	bench_wait_mounted "$mnt" "$VDSFS_PID" || { cat "$mnt.log" >&2; bench_die "vdsfs did not mount $mnt"; }
}

# bench_loopfs FILE SIZE FSTYPE MNT: a filesystem on a sparse loop file, mounted at MNT
# (made here); undo pushed. SIZE as truncate(1) takes it. Prints nothing.
bench_loopfs() {
	local file=$1 size=$2 type=$3 mnt=$4 dev
	truncate -s "$size" "$file"
	bench_defer "rm -f '$file'"
	dev=$(losetup -f --show "$file")
	bench_defer "losetup -d $dev"
	case $type in
	xfs) mkfs.xfs -q -K "$dev" ;;
	ext4) mkfs.ext4 -q -E nodiscard,lazy_itable_init=1,lazy_journal_init=1 "$dev" ;;
	*) bench_die "unknown filesystem type $type" ;;
	esac
	mkdir -p "$mnt"
	mount "$dev" "$mnt"
	bench_defer "umount '$mnt' || umount -l '$mnt'"
}

# bench_drop_cache FILE...: write back and drop the page cache of these files only
# (fsync + FADV_DONTNEED; no global drop_caches, which would hit everyone's runs).
bench_drop_cache() {
	python3 - "$@" <<'PY'
import os, sys
for p in sys.argv[1:]:
    try:
        fd = os.open(p, os.O_RDONLY)
    except FileNotFoundError:
        continue
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
}

# bench_plain_copy TOOL SRC DSTDIR: time (s) of a plain copy of SRC into DSTDIR by TOOL
# (dd: bs=1M, O_DIRECT both sides; cp; vds-copy between the two directories), caches
# dropped before and the copy synced before the clock stops. The copy is removed.
bench_plain_copy() {
	local tool=$1 src=$2 dstdir=$3 name t0 t1
	name=${src##*/}
	rm -f "$dstdir/$name"
	sync
	bench_drop_cache "$src"
	t0=$(date +%s.%N)
	case $tool in
	dd) dd if="$src" of="$dstdir/$name" bs=1M iflag=direct oflag=direct status=none ;;
	cp) cp --sparse=auto "$src" "$dstdir/$name" ;;
	vds-copy) "$VDSCOPY" -q "A=${src%/*}" "B=$dstdir" "A:$name=B" >/dev/null ;;
	*) bench_die "unknown plain copy tool $tool (dd, cp, vds-copy)" ;;
	esac
	sync "$dstdir/$name"
	t1=$(date +%s.%N)
	rm -f "$dstdir/$name"
	echo "$t1 - $t0" | bc
}

# bench_guest_job MODE RATE LOG: the guest's fio job that mig-bench.sh and
# qemu-mirror-bench.sh both run (each adds only its engine and target), in GUEST_JOB;
# 4k random writes at iodepth 16, rate-limited (MODE limited) or not (unlimited), every
# completion logged with wall-clock times for fiolog.py. WRITER_LABEL names the writer.
# shellcheck disable=SC2034 # both are for the caller
bench_guest_job() {
	GUEST_JOB=(--rw=randwrite --bs=4k --iodepth=16 --time_based --runtime=36000 --norandommap
		--write_lat_log="$3" --log_avg_msec=0 --log_unix_epoch=1 --write_iops_log="$3")
	case $1 in
	limited) GUEST_JOB+=(--rate_iops="$2"); WRITER_LABEL="$2 IOPS" ;;
	unlimited) WRITER_LABEL=unlimited ;;
	*) bench_die "the writer is limited or unlimited, not $1" ;;
	esac
}

bench_free() { # dir: free space, human
	df -h --output=avail "$1" | tail -1 | tr -d ' '
}

bench_free_mib() {
	df -m --output=avail "$1" | tail -1 | tr -d ' '
}

bench_load() {
	uptime | sed 's/.*load average/load average/'
}

bench_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
