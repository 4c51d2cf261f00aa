#!/usr/bin/env bash
# copy-bench.sh -- vds-copy against its peers, side by side in one run.
#
#   tools/bench/copy-bench.sh [--runs N] [--dir DIR] [--vds-copy PATH]
#                             [--full-gib G] [--sparse-gib G] [--sparse-data-mib M]
#                             [--par-mib M] [--par-rate RATE]
#
# Images: a fully written one (default 2 GiB) and a sparse one (default 8 GiB
# with 1 GiB written in scattered 1 MiB pieces). Each is copied by
#   vds-copy, cp --sparse=auto, dd bs=1M iflag=direct oflag=direct,
#   qemu-img convert -t none -T none -W -m 16
# N times (default 3), tools interleaved round-robin so drift hits all alike.
# Before every run the destination is removed and the page cache of both
# files is dropped (fsync + POSIX_FADV_DONTNEED per file: works without
# /proc/sys/vm/drop_caches, which containers often forbid). Every timed
# command is followed by `sync FILE`, so tools that leave dirty pages in the
# cache (cp) pay for writing them like the others. Wall and CPU (user+sys)
# are from /usr/bin/time; the table reports medians and peer/vds-copy ratios.
#
# Parallel case: four jobs on four distinct datastore pairs (directories),
# every datastore limited to the same rate (--par-rate, default 64M), one
# vds-copy invocation with --parallel 4 against one with --parallel 1.
set -eu
runs=3
dir=${BENCH_DIR:-/var/tmp/vds-copy-bench}
here=$(cd "$(dirname "$0")/../.." && pwd)
V=${VDS_COPY:-}
full_gib=2 sparse_gib=8 sparse_data_mib=1024 par_mib=256 par_rate=64M
while [ $# -gt 0 ]; do
	case $1 in
	--runs) runs=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--vds-copy) V=$2; shift 2 ;;
	--full-gib) full_gib=$2; shift 2 ;;
	--sparse-gib) sparse_gib=$2; shift 2 ;;
	--sparse-data-mib) sparse_data_mib=$2; shift 2 ;;
	--par-mib) par_mib=$2; shift 2 ;;
	--par-rate) par_rate=$2; shift 2 ;;
	-h|--help) sed -n '2,25p' "$0"; exit 0 ;;
	*) echo "copy-bench: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ -z "$V" ]; then
	for c in "$here/build/tools/vds-copy/vds-copy" "$here/build-test/main/tools/vds-copy/vds-copy"; do
		[ -x "$c" ] && V=$c && break
	done
fi
[ -n "$V" ] && [ -x "$V" ] || { echo "copy-bench: build vds-copy first or pass --vds-copy" >&2; exit 2; }
for t in cp dd qemu-img python3 /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "copy-bench: $t missing (tools/deps.sh bench)" >&2; exit 2; }
done

# Space: sources + the largest destination (dd writes the sparse image's
# holes as zeros) + the parallel case's sources and copies.
need_mib=$(( full_gib * 1024 + sparse_data_mib + sparse_gib * 1024 + 8 * par_mib + 1024 ))
mkdir -p "$dir"
have_mib=$(df --output=avail -m "$dir" | tail -1)
[ "$have_mib" -gt "$need_mib" ] ||
	{ echo "copy-bench: need ${need_mib} MiB free in $dir, have ${have_mib}" >&2; exit 2; }
trap 'rm -rf "$dir"' EXIT

# shellcheck source=tools/bench/benchlib.sh
. "$here/tools/bench/benchlib.sh"
drop_cache() { bench_drop_cache "$@"; }

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

make_images() {
	mkdir -p "$dir/src" "$dir/dst"
	echo "creating ${full_gib} GiB full and ${sparse_gib} GiB sparse images in $dir ..." >&2
	head -c $(( full_gib << 30 )) /dev/urandom >"$dir/src/full.img"
	truncate -s $(( sparse_gib << 30 )) "$dir/src/sparse.img"
	# distinct 1 MiB slots, fixed seed so every run of the bench is alike
	python3 - "$dir/src/sparse.img" "$sparse_gib" "$sparse_data_mib" <<'PY'
import os, random, sys
path, gib, pieces = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(4)
fd = os.open(path, os.O_WRONLY)
for slot in sorted(rng.sample(range(gib * 1024), pieces)):
    os.pwrite(fd, os.urandom(1 << 20), slot << 20)
os.fsync(fd)
os.close(fd)
PY
}

# run_one TOOL IMAGE -> "wall cpu" on stdout
run_one() {
	local tool=$1 img=$2 src=$dir/src/$2 dst=$dir/dst/$2 out=$dir/time.out
	rm -f "$dst"
	sync
	drop_cache "$src"
	case $tool in
	vds-copy) set -- "$V" -q S="$dir/src" D="$dir/dst" "S:$img=D" ;;
	cp) set -- cp --sparse=auto "$src" "$dst" ;;
	dd) set -- dd if="$src" of="$dst" bs=1M iflag=direct oflag=direct status=none ;;
	qemu-img) set -- qemu-img convert -t none -T none -W -m 16 -O raw "$src" "$dst" ;;
	esac
	/usr/bin/time -o "$out" -f '%e %U %S' sh -c '"$@" && sync "$0"' "$dst" "$@" ||
		{ echo "copy-bench: $tool failed on $img" >&2; exit 1; }
	awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$out"
}

tools="vds-copy cp dd qemu-img"
declare -A wall cpu
bench_image() {
	local img=$1 r t res
	for r in $(seq 1 "$runs"); do
		for t in $tools; do
			res=$(run_one "$t" "$img")
			wall[$t,$img]="${wall[$t,$img]:-} ${res% *}"
			cpu[$t,$img]="${cpu[$t,$img]:-} ${res#* }"
			echo "  run $r $img $t: wall ${res% *} s, cpu ${res#* } s" >&2
		done
	done
	rm -f "$dir/dst/$img"
	# correctness of the contender, once, outside the timing
	"$V" -q S="$dir/src" D="$dir/dst" "S:$img=D"
	cmp "$dir/src/$img" "$dir/dst/$img" || { echo "copy-bench: vds-copy copy of $img differs!" >&2; exit 1; }
	echo "  $img: vds-copy copy verified with cmp; allocated $(du -h "$dir/dst/$img" | cut -f1)" >&2
	rm -f "$dir/dst/$img"
}

report_image() {
	local img=$1 t w c w0 c0
	w0=$(tr ' ' '\n' <<<"${wall[vds-copy,$img]}" | grep . | median)
	c0=$(tr ' ' '\n' <<<"${cpu[vds-copy,$img]}" | grep . | median)
	for t in $tools; do
		w=$(tr ' ' '\n' <<<"${wall[$t,$img]}" | grep . | median)
		c=$(tr ' ' '\n' <<<"${cpu[$t,$img]}" | grep . | median)
		awk -v img="$img" -v t="$t" -v w="$w" -v c="$c" -v w0="$w0" -v c0="$c0" 'BEGIN {
			cr = c0 > 0 ? sprintf("%9.2fx", c / c0) : "      n/a"
			printf "| %-10s | %-24s | %8.2f | %8.2f | %9.2fx | %s |\n", img, t, w, c, w / w0, cr }'
	done
}

bench_parallel() {
	local i p r jobs=() ds=() res
	for i in 1 2 3 4; do
		mkdir -p "$dir/ps$i" "$dir/pd$i"
		head -c $(( par_mib << 20 )) /dev/urandom >"$dir/ps$i/disk.img"
		ds+=("S$i=$dir/ps$i" "D$i=$dir/pd$i")
		jobs+=("S$i:disk.img=D$i")
	done
	for r in $(seq 1 "$runs"); do
		for p in 4 1; do
			rm -f "$dir"/pd*/disk.img
			sync
			drop_cache "$dir"/ps*/disk.img
			/usr/bin/time -o "$dir/time.out" -f '%e %U %S' \
				"$V" -q --parallel $p --bwlimit "$par_rate" "${ds[@]}" "${jobs[@]}"
			res=$(awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$dir/time.out")
			wall[par$p]="${wall[par$p]:-} ${res% *}"
			cpu[par$p]="${cpu[par$p]:-} ${res#* }"
			echo "  run $r parallel $p: wall ${res% *} s, cpu ${res#* } s" >&2
		done
	done
}

report_parallel() {
	local w1 w4 c1 c4
	w1=$(tr ' ' '\n' <<<"${wall[par1]}" | grep . | median)
	w4=$(tr ' ' '\n' <<<"${wall[par4]}" | grep . | median)
	c1=$(tr ' ' '\n' <<<"${cpu[par1]}" | grep . | median)
	c4=$(tr ' ' '\n' <<<"${cpu[par4]}" | grep . | median)
	echo
	echo "Parallel: 4 jobs x ${par_mib} MiB on 4 distinct datastore pairs, every datastore limited to ${par_rate}/s"
	echo "| vds-copy     | wall s (median) | cpu s (median) |"
	echo "|--------------|-----------------|----------------|"
	printf "| --parallel 1 | %15.2f | %14.2f |\n" "$w1" "$c1"
	printf "| --parallel 4 | %15.2f | %14.2f |\n" "$w4" "$c4"
	awk -v a="$w1" -v b="$w4" 'BEGIN { printf "speedup --parallel 4 vs 1: %.2fx (goal >= 3.6x)\n", a / b }'
}

make_images
bench_image full.img
bench_image sparse.img
bench_parallel
echo
echo "copy-bench: $runs runs each, medians; ratio = tool / vds-copy (above 1: vds-copy is faster or cheaper)"
echo "Images: full.img ${full_gib} GiB written; sparse.img ${sparse_gib} GiB with ${sparse_data_mib} x 1 MiB written"
echo "| image      | tool                     |   wall s |    cpu s | wall ratio | cpu ratio |"
echo "|------------|--------------------------|----------|----------|------------|-----------|"
report_image full.img
report_image sparse.img
report_parallel
