#!/usr/bin/env bash
# mirror-compare.sh: vdsfs's live migration (mig-bench.sh) next to QEMU's mirror in both
# copy modes (qemu-mirror-bench.sh) and a plain copy, in one sitting, one table (the
# comparison of issue 13). Both benches run the same guest job (fio 4k random writes,
# iodepth 16, rate-limited and unlimited), from a disk on --dir's filesystem to one
# destination filesystem made here (ext4 on a sparse loop file, so the two do not share
# a journal), each against a plain copy between the same two filesystems timed in its
# own run; sizes one after the other, so each size's rows come from minutes apart.
#
# usage: tools/bench/mirror-compare.sh [--sizes 4G,16G] [--writers limited,unlimited]
#        [--rate 5000] [--plain vds-copy] [--dir /var/tmp] [--timeout 900] [--build DIR]
#        [--out tools/bench/results]
#   --plain: vds-copy (default: mig-bench's baseline, io_uring with requests in
#   parallel, as the mirror copies), dd (O_DIRECT 1M, one request at a time: slower
#   than QEMU's own mirror) or cp; --timeout bounds each QEMU mirror (a background-mode
#   mirror under an unlimited writer may never converge).
# Needs root and what both benches need (tools/deps.sh bench).
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=tools/bench/benchlib.sh
. "$here/benchlib.sh"

sizes=4G,16G writers=limited,unlimited rate=5000 plain=vds-copy dir=/var/tmp tmo=900
build=${VDSFS_BUILD:-build} out=$bench_top/tools/bench/results
usage() { sed -n '10,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--sizes) sizes=$2; shift 2 ;; --writers) writers=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;; --plain) plain=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;; --timeout) tmo=$2; shift 2 ;;
	--build) build=$2; shift 2 ;; --out) out=$2; shift 2 ;;
	*) usage ;;
	esac
done
bench_need_root
bench_need_tools numfmt losetup mkfs.ext4
bench_build_dir "$build"
list() { local -a a; IFS=', ' read -r -a a <<<"$1"; printf '%s\n' "${a[@]}"; }
max=0
for s in $(list "$sizes"); do b=$(numfmt --from=iec "${s^^}"); [ "$b" -gt "$max" ] && max=$b; done
gib=$(( (max + (1 << 30) - 1) >> 30 ))
# source side: the disk, vdsfs's differencing file (up to the disk), the plain copy's
# source; destination: the copy plus vdsfs's room check (an eighth more), both sparse
need=$(( (3 * gib + gib / 4 + 4) * 1024 ))
[ "$(bench_free_mib "$dir")" -gt "$need" ] ||
	bench_die "need about $need MiB free in $dir for $gib GiB disks, have $(bench_free_mib "$dir")"

bench_traps
top=$(mktemp -d "$dir/mirror-compare-XXXXXX")
bench_defer "rm -rf '$top'"
bench_loopfs "$top/dst.img" $(( gib + gib / 4 + 2 ))G ext4 "$top/dst"
rows=$top/rows.tsv
: >"$rows"
echo "# mirror-compare: $(uname -r), $(nproc) cpus; $(bench_load)" >&2
for size in $(list "$sizes"); do
	echo "== $size: vdsfs (mig-bench.sh) ==" >&2
	"$here/mig-bench.sh" --sizes "$size" --modes "$writers" --rate "$rate" --dir "$dir" \
		--dst-dir "$top/dst" --plain "$plain" --build "$build" --out "$out" --rows "$rows" >&2
	echo "== $size: QEMU mirror (qemu-mirror-bench.sh) ==" >&2
	"$here/qemu-mirror-bench.sh" --sizes "$size" --writers "$writers" --rate "$rate" --dir "$dir" \
		--dst-dir "$top/dst" --plain "$plain" --build "$build" --out "$out" --rows "$rows" \
		--timeout "$tmo" >&2
done

echo
echo "# vdsfs vs QEMU $(qemu-storage-daemon --version | head -1 | awk '{print $3}') mirror: fio 4k randwrite qd16, source on $(findmnt -no FSTYPE -T "$dir"), destination ext4 on a loop file; $(bench_load)"
echo
echo "| disk | writer | system | migration s (x plain copy) | parts | guest's largest gap ms | guest IOPS before | during | during/before |"
echo "|---|---|---|---|---|---|---|---|---|"
awk -F'\t' '
	!seen[$1 FS $6]++ { printf "| %s | | plain copy (%s) | %.2f | | | | | |\n", $1, $7, $6 }
	{ t = sprintf("%.2f (%.2fx)", $4, $4 / $6)
	  if ($5 ~ /^no READY/) t = sprintf("> %.0f (> %.1fx)", $4, $4 / $6)
	  printf "| %s | %s | %s | %s | %s | %s | %s | %s | %.2fx |\n",
		$1, $2, $3, t, $5, $8, $9, $10, ($9 > 0 ? $10 / $9 : 0) }' "$rows"
echo
echo "Each system's ratio is to the plain copy timed in its own run (the plain copy rows above it)."
