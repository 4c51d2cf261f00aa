#!/usr/bin/env bash
# mig-bench.sh: one disk under fio 4k random writes (iodepth 16), migrated live between
# two datastores; rate-limited and unlimited writers, 1 GiB and 4 GiB disks.
# Reports, per run: total migration time (and its parts as status reports them: copy,
# converge, the flush before the pause, the cleanup after it) and its ratio to a
# plain vds-copy of the same disk; the switch pause as the guest saw it (largest gap between I/O
# completions in fio's per-I/O log, around the switch) and as the daemon measured
# it; guest IOPS during the migration against before it. Draws a PNG per run
# (IOPS and latency over time, migration start, copy end, converge end, switch and
# done marked). The guest figures come from tools/bench/fiolog.py, which
# qemu-mirror-bench.sh uses too. "ratio to switch" stops the clock when the pause
# ends (the file lives on the destination and the scheduler slot is free); the
# cleanup after it runs outside the slot. The 3 largest guest gaps and the phase each
# falls in go to OUT/mig-SIZE-MODE.gaps; KEEP_LOGS=1 keeps fio's per-I/O log there.
#
# usage: tools/bench/mig-bench.sh [--sizes "1g 4g"] [--modes "limited unlimited"]
#        [--rate 5000] [--dir /var/tmp] [--dst-dir DIR] [--plain vds-copy]
#        [--build build] [--out tools/bench/results] [--rows FILE]
#   --sizes, --modes: lists, space or comma separated.
#   --dst-dir: where the destination datastore (and the plain copy's target) lives,
#   e.g. another filesystem; default beside the source in --dir.
#   --plain: the plain copy to compare with: vds-copy (default), dd (O_DIRECT, 1M), cp.
#   --rows: also append tab-separated rows there (for mirror-compare.sh).
#   --build (or VDSFS_BUILD): the build directory, default build/ of this tree.
# Needs root, fio, gnuplot (tools/deps.sh bench).
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=tools/bench/benchlib.sh
. "$here/benchlib.sh"

sizes="1g 4g"; modes="limited unlimited"; rate=5000; dir=/var/tmp; dst_dir=""
plain=vds-copy; build=${VDSFS_BUILD:-build}; out=tools/bench/results; rows=""
usage() { sed -n '13,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--sizes) sizes=$2; shift 2 ;; --modes) modes=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;; --dir) dir=$2; shift 2 ;;
	--dst-dir) dst_dir=$2; shift 2 ;; --plain) plain=$2; shift 2 ;;
	--build) build=$2; shift 2 ;; --out) out=$2; shift 2 ;;
	--rows) rows=$2; shift 2 ;; *) usage ;;
	esac
done
bench_need_root
bench_need_tools fio python3 gnuplot bc fusermount3
cd "$bench_top"
bench_build_dir "$build"
list() { local -a a; IFS=', ' read -r -a a <<<"$1"; printf '%s\n' "${a[@]}"; }
mkdir -p "$out"; out=$(cd "$out" && pwd)

bench_traps
top=$(mktemp -d "$dir/vdsfs-migbench-XXXXXX")
bench_defer "rm -rf '$top'"
if [ -n "$dst_dir" ]; then
	dst=$(mktemp -d "$dst_dir/vdsfs-migbench-XXXXXX")
	bench_defer "rm -rf '$dst'"
else
	dst=$top
fi
mkdir -p "$top/A" "$dst/B" "$top/mnt" "$top/cpA" "$dst/cpB"
mnt=$top/mnt sock=$top/ctl.sock

printf '| disk | writer | migration s (copy, converge, flush, cleanup) | plain copy s | ratio | ratio to switch | largest guest gap ms (in phase) | pause daemon ms | IOPS before | IOPS during | during/before |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
for size in $(list "$sizes"); do
	# the plain-copy baseline: the same bytes between the same two filesystems
	fio --name=l --filename="$top/cpA/d" --size="$size" --rw=write --bs=1M --direct=1 \
		--output-format=terse >/dev/null
	plain_s=$(bench_plain_copy "$plain" "$top/cpA/d" "$dst/cpB")
	rm -f "$top/cpA/d"
	for mode in $(list "$modes"); do
		mark=${#bench_undo[@]}
		rm -f "$top/A/d" "$dst/B/d"
		bench_vdsfs_start "$mnt" "$sock" "A=$top/A:B=$dst/B" create=A
		fio --name=l --filename="$mnt/d" --size="$size" --rw=write --bs=1M --direct=1 \
			--output-format=terse >/dev/null
		log=$top/fio-$size-$mode
		bench_guest_job "$mode" "$rate" "$log"
		fio --name=g --filename="$mnt/d" --size="$size" --ioengine=io_uring --direct=1 \
			"${GUEST_JOB[@]}" --output-format=terse >/dev/null 2>&1 &
		fpid=$!
		bench_defer "bench_kill $fpid"
		fstart=$(date +%s.%N)
		sleep 5
		mstart=$(date +%s.%N)
		"$VDSCTL" -s "$sock" -m "$mnt" migrate --wait "$mnt/d" --to B >/dev/null
		mend=$(date +%s.%N)
		sleep 3
		bench_kill "$fpid"
		# pause|copy s|converge s|flush s|cleanup s, then the phase ends as epoch seconds
		st=$("$VDSCTL" -s "$sock" -m "$mnt" status --json | python3 -c '
import json, sys
m = json.load(sys.stdin)[-1]
t0 = m["started_ns"] / 1e9
copied = t0 + m["copy_ms"] / 1e3
converged = copied + m["converge_ms"] / 1e3
switch = converged + m["flush_ms"] / 1e3
switched = switch + m["pause_ms"] / 1e3
print("%.2f|%.2f|%.2f|%.2f|%.2f %.6f %.6f %.6f %.6f" % (m["pause_ms"], m["copy_ms"] / 1e3,
      m["converge_ms"] / 1e3, m["flush_ms"] / 1e3, m["cleanup_ms"] / 1e3, copied, converged, switch,
      switched))')
		read -r parts t_copied t_converged t_switch t_switched <<<"$st"
		IFS='|' read -r pause copy_s conv_s flush_s clean_s <<<"$parts"
		bench_unmount_fuse "$mnt" "$VDSFS_PID"
		bench_undo=("${bench_undo[@]:0:mark}")
		guest=$(python3 "$here/fiolog.py" "$log" "$fstart" "$mstart" "$mend" \
			--png "$out/mig-$size-$mode.png" --end-label "done" --mark "copied=$t_copied" \
			--mark "converged=$t_converged" --mark "switch=$t_switch" \
			--mark "cleanup=$t_switched" --gaps "$out/mig-$size-$mode.gaps" \
			--title "vdsfs live migration, $size disk, $mode 4k randwrite qd16")
		read -r gap ib idur <<<"$guest"
		gap_in=$(head -1 "$out/mig-$size-$mode.gaps" | sed 's/.*, in //')
		awk -v s="$size" -v w="$mode" -v a="$mstart" -v e="$mend" -v p="$plain_s" -v g="$gap" \
			-v ib="$ib" -v id="$idur" -v ph="$copy_s, $conv_s, $flush_s, $clean_s" -v pz="$pause" \
			-v sw="$t_switched" -v gi="$gap_in" 'BEGIN {
			m = e - a
			printf "| %s | %s | %.2f (%s) | %.2f | %.2fx | %.2fx | %s (%s) | %s | %s | %s | %.2fx |\n",
				s, w, m, ph, p, m / p, (sw - a) / p, g, gi, pz, ib, id, (ib > 0 ? id / ib : 0) }'
		if [ -n "$rows" ]; then
			awk -v s="$size" -v w="$WRITER_LABEL" -v a="$mstart" -v e="$mend" -v p="$plain_s" -v g="$gap" \
				-v ib="$ib" -v id="$idur" -v pl="$plain" -v pz="$pause" \
				-v ph="copy $copy_s, converge $conv_s, flush $flush_s, cleanup $clean_s" 'BEGIN {
				OFS = "\t"
				print s, w, "vdsfs", sprintf("%.2f", e - a), ph "; pause " pz " ms (daemon)",
					sprintf("%.2f", p), pl, g, ib, id }' >>"$rows"
		fi
		[ -n "${KEEP_LOGS:-}" ] && cp "$log"_lat.1.log "$out/mig-$size-$mode.lat.log"
		rm -f "$log"_*.log "$log".*.dat
	done
done
echo
echo "plots: $out/mig-*.png"
