#!/usr/bin/env bash
# qemu-mirror-bench.sh: QEMU's own live mirror, measured the way mig-bench.sh measures
# vdsfs (issue 13), so the two tables can stand side by side.
#
# A raw disk on the source filesystem (fully written, like mig-bench's), served by
# qemu-storage-daemon (file driver with cache.direct=on, as qemu cache=none) as an NBD
# export on a Unix socket; fio's nbd engine runs mig-bench's guest job on it (4k random
# writes, iodepth 16, rate-limited or unlimited, every completion logged). After 5 s
# the disk is mirrored over QMP (`blockdev-mirror`, sync full, to a raw file on the
# destination filesystem) in each copy mode, background and write-blocking; at
# BLOCK_JOB_READY `job-complete`, and the migration ends at BLOCK_JOB_COMPLETED, when
# the export serves the target. Reported per run: migration time (to READY, and the
# complete) and its ratio to a plain copy of the same disk between the same two
# filesystems measured in the same run; the guest's largest gap between completions
# over the migration window; guest IOPS during vs before (tools/bench/fiolog.py, the
# same code mig-bench uses). A PNG per run. Everything talks over Unix sockets.
#
# usage: tools/bench/qemu-mirror-bench.sh [--sizes 4G] [--writers limited,unlimited]
#        [--rate 5000] [--copy-modes background,write-blocking] [--plain dd]
#        [--dir /var/tmp] [--dst-dir DIR] [--timeout 900] [--aio native]
#        [--out tools/bench/results] [--rows FILE] [--build DIR]
#   --dst-dir: the destination filesystem; default a fresh ext4 on a sparse loop file
#   made under --dir, so source and destination do not share a journal.
#   --plain: dd (O_DIRECT, 1M), cp or vds-copy (from --build, or VDSFS_BUILD).
#   --rows: also append tab-separated rows there (for mirror-compare.sh).
# Needs root, qemu-storage-daemon (qemu-system-common), fio with its nbd engine,
# gnuplot (tools/deps.sh bench). Prints a markdown table.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=tools/bench/benchlib.sh
. "$here/benchlib.sh"

sizes=4G writers=limited,unlimited rate=5000 cmodes=background,write-blocking plain=dd
dir=/var/tmp dst_dir="" tmo=900 aio=native out=$bench_top/tools/bench/results rows=""
build=${VDSFS_BUILD:-build}
usage() { sed -n '19,27p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--sizes) sizes=$2; shift 2 ;; --writers) writers=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;; --copy-modes) cmodes=$2; shift 2 ;;
	--plain) plain=$2; shift 2 ;; --dir) dir=$2; shift 2 ;;
	--dst-dir) dst_dir=$2; shift 2 ;; --timeout) tmo=$2; shift 2 ;;
	--aio) aio=$2; shift 2 ;; --out) out=$2; shift 2 ;;
	--rows) rows=$2; shift 2 ;; --build) build=$2; shift 2 ;;
	*) usage ;;
	esac
done
bench_need_root
bench_need_tools qemu-storage-daemon fio python3 gnuplot bc numfmt
fio --enghelp 2>/dev/null | grep -qw nbd || bench_die "this fio has no nbd engine"
[ "$plain" = vds-copy ] && bench_build_dir "$build"
mkdir -p "$out"; out=$(cd "$out" && pwd)
list() { local -a a; IFS=', ' read -r -a a <<<"$1"; printf '%s\n' "${a[@]}"; }

bench_traps
top=$(mktemp -d "$dir/qemu-mirror-XXXXXX")
bench_defer "rm -rf '$top'"
# room: the disk, its mirror, and the plain copy (removed before the mirrors run)
max=0
for s in $(list "$sizes"); do b=$(numfmt --from=iec "${s^^}"); [ "$b" -gt "$max" ] && max=$b; done
if [ -z "$dst_dir" ]; then
	bench_loopfs "$top/dst.img" $(( (max >> 30) + 2 ))G ext4 "$top/dst"
	dst_dir=$top/dst
fi
mkdir -p "$top/src" "$dst_dir"
[ "$(bench_free_mib "$top")" -gt $(( (max >> 20) + 1024 )) ] || bench_die "not enough room in $dir"
[ "$(bench_free_mib "$dst_dir")" -gt $(( (max >> 20) + 256 )) ] || bench_die "not enough room in $dst_dir"
tgt=$dst_dir/qemu-mirror-target.raw
bench_defer "rm -f '$tgt'"

qsd_start() { # disk
	rm -f "$top/nbd.sock" "$top/qmp.sock"
	qemu-storage-daemon \
		--blockdev "driver=file,node-name=src-file,filename=$1,cache.direct=on,aio=$aio" \
		--blockdev driver=raw,node-name=src,file=src-file \
		--nbd-server "addr.type=unix,addr.path=$top/nbd.sock" \
		--export type=nbd,id=exp0,node-name=src,name=disk,writable=on \
		--chardev "socket,id=qmp,path=$top/qmp.sock,server=on,wait=off" \
		--monitor chardev=qmp >>"$top/qsd.log" 2>&1 &
	QSD_PID=$!
	bench_defer "bench_kill $QSD_PID"
	local i
	for i in $(seq 100); do
		[ -S "$top/qmp.sock" ] && [ -S "$top/nbd.sock" ] && return 0
		kill -0 "$QSD_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$top/qsd.log" >&2
	bench_die "qemu-storage-daemon did not start"
}

echo "# qemu-mirror-bench: $(qemu-storage-daemon --version | head -1), $(fio --version), $(uname -r), $(nproc) cpus"
echo "# source $top/src ($(findmnt -no FSTYPE -T "$top/src")), destination $dst_dir ($(findmnt -no FSTYPE -T "$dst_dir")), aio=$aio, plain copy: $plain"
echo
echo '| disk | writer | copy mode | migration s (to ready, complete) | plain copy s | ratio | largest gap ms | IOPS before | IOPS during | during/before |'
echo '|---|---|---|---|---|---|---|---|---|---|'
for size in $(list "$sizes"); do
	disk=$top/src/disk.raw
	fio --name=l --filename="$disk" --size="$size" --rw=write --bs=1M --direct=1 \
		--output-format=terse >/dev/null
	plain_s=$(bench_plain_copy "$plain" "$disk" "$dst_dir")
	for writer in $(list "$writers"); do
		for cmode in $(list "$cmodes"); do
			mark=${#bench_undo[@]}
			rm -f "$tgt"
			truncate -s "$size" "$tgt"
			qsd_start "$disk"
			log=$top/fio-$size-$writer-$cmode
			bench_guest_job "$writer" "$rate" "$log"
			wlabel=$WRITER_LABEL
			fio --name=g --ioengine=nbd --uri="nbd+unix:///disk?socket=$top/nbd.sock" \
				--size="$size" "${GUEST_JOB[@]}" --output-format=terse >"$log.out" 2>&1 &
			fpid=$!
			bench_defer "bench_kill $fpid"
			fstart=$(date +%s.%N)
			sleep 5
			echo "  $size $writer $cmode: mirroring ($(bench_load))" >&2
			res=$(python3 "$here/qmp-mirror.py" "$top/qmp.sock" src "$tgt" "$cmode" "$tmo" "$aio") ||
				res="error:QMP_client_failed $(date +%s.%N) $(date +%s.%N) $(date +%s.%N)"
			read -r st mstart ready mend <<<"$res"
			sleep 3
			bench_kill "$fpid"
			bench_kill "$QSD_PID"
			bench_undo=("${bench_undo[@]:0:mark}")
			[ -s "${log}_lat.1.log" ] || { cat "$log.out" >&2; bench_die "fio wrote no log"; }
			marks=(--mark "ready=$ready")
			[ "$st" = ok ] || marks=(--end-label "$st")
			guest=$(python3 "$here/fiolog.py" "$log" "$fstart" "$mstart" "$mend" \
				--png "$out/qemu-mirror-$size-$writer-$cmode.png" "${marks[@]}" \
				--title "QEMU $(qemu-storage-daemon --version | head -1 | awk '{print $3}') mirror ($cmode), $size disk, $wlabel 4k randwrite qd16")
			read -r gap ib idur <<<"$guest"
			row=$(awk -v s="$size" -v w="$wlabel" -v c="$cmode" -v st="$st" -v a="$mstart" \
				-v r="$ready" -v e="$mend" -v p="$plain_s" -v g="$gap" -v ib="$ib" -v id="$idur" 'BEGIN {
				m = e - a
				res = sprintf("%.2f (%.2f, %.2f)", m, r - a, e - r)
				if (st == "timeout") res = sprintf("> %.0f: no READY by then, cancelled", m)
				else if (st != "ok") res = res " " st
				ratio = sprintf("%s%.2fx", st ~ /^timeout/ ? "> " : "", m / p)
				printf "| %s | %s | %s | %s | %.2f | %s | %s | %s | %s | %.2fx |\n",
					s, w, c, res, p, ratio, g, ib, id, (ib > 0 ? id / ib : 0) }')
			echo "$row"
			if [ -n "$rows" ]; then
				awk -v s="$size" -v w="$wlabel" -v c="$cmode" -v st="$st" -v a="$mstart" -v r="$ready" \
					-v e="$mend" -v p="$plain_s" -v g="$gap" -v ib="$ib" -v id="$idur" -v pl="$plain" 'BEGIN {
					OFS = "\t"; m = e - a
					print s, w, "QEMU mirror, " c, sprintf("%.2f", m),
						st == "timeout" ? sprintf("no READY in %.0f s: cancelled", m) : \
						sprintf("to ready %.2f, complete %.2f%s", r - a, e - r, st == "ok" ? "" : ", " st),
						sprintf("%.2f", p), pl, g, ib, id }' >>"$rows"
			fi
			rm -f "$tgt" "$log"_*.log "$log".*.dat
		done
	done
	rm -f "$disk"
done
echo
echo "plots: $out/qemu-mirror-*.png; $(bench_load)"
