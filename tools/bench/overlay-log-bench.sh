#!/usr/bin/env bash
# tools/bench/overlay-log-bench.sh - differencing-file format 1 (data at fixed
# offsets, whole 2-bit map in memory) against format 2 (log-structured data, sparse
# map), side by side in one run.
#
# Builds tools/bench/overlay-log-bench.c twice with the same flags: against the
# overlay library of commit V1 (the last format-1 library, pinned below) and
# against the tree's.  Then, RUNS times, alternating which goes first:
#   - a heavy writer (issue 13): 16 threads of aligned 4 KiB random writes over a
#     SIZES disk (as many writes as the disk has blocks), a flush every second;
#     write IOPS, median and worst flush, the final flush, the extent count
#     (FIEMAP: the lines of filefrag -v), reading everything changed (the merge's
#     reads, page cache dropped first: format 2 in log order, then in guest order
#     as the daemon reads today, which then partly hits the host's cache; format 1
#     once, its file order being its guest order), and the unlink;
#   - peak RSS (issue 12) of a process whose overlay of VIRT virtual size gets 1 GiB
#     written, clustered (1 MiB writes) or scattered (4 KiB writes), over all of it.
# Prints medians per format and the ratio v2/v1 (below 1 is better everywhere but
# IOPS).  Files go on the filesystem of DIR (ext4 here: /var/tmp).
#
#   tools/bench/overlay-log-bench.sh
#   env: DIR (/var/tmp), SIZES_MB ("4096"), RUNS (3), RSS_RUNS (1), VIRT_GB ("2048 16384"),
#        RESULTS (keep the raw rows in this file; rows already in it are reused,
#        so RUNS=0 after an earlier run redoes only the RSS part)
set -eu
cd "$(dirname "$0")/../.."
V1=28d9aba	# main before format 2: overlay/ at format version 1
dir=${DIR:-/var/tmp}; runs=${RUNS:-3}; rss_runs=${RSS_RUNS:-1}
sizes=${SIZES_MB:-4096}; virts=${VIRT_GB:-2048 16384}
work=$(mktemp -d "$dir/overlay-log-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/v1src" "$work/scratch"
git archive "$V1" overlay | tar -x -C "$work/v1src"
cflags="-O2 -g -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread"
# shellcheck disable=SC2086
cc $cflags -I"$work/v1src/overlay" "$work/v1src/overlay"/*.c tools/bench/overlay-log-bench.c \
  -o "$work/bench-v1"
# shellcheck disable=SC2086
cc $cflags -DHAVE_LOG_ITER -Ioverlay overlay/*.c tools/bench/overlay-log-bench.c \
  -o "$work/bench-v2"
echo "overlay-log-bench: $(date -u +%F), $(uname -r), $(nproc) CPUs, load: $(uptime | sed 's/.*load/load/')"
echo "filesystem of $dir: $(df -T "$dir" | awk 'NR==2 {print $2}')"

res=${RESULTS:-$work/results}
touch "$res"
for r in $(seq 1 "$runs"); do
  for mb in $sizes; do
    order="v1 v2"; [ $((r % 2)) -eq 0 ] && order="v2 v1"
    for v in $order; do
      sync
      echo "rw $mb $v $("$work/bench-$v" --mode rw --dir "$work/scratch" --size-mb "$mb")" >>"$res"
      tail -1 "$res" >&2
    done
  done
done
for r in $(seq 1 "$rss_runs"); do
  for g in $virts; do
    for p in clustered scattered; do
      for v in v1 v2; do
        echo "rss $g $p $v $("$work/bench-$v" --mode rss --dir "$work/scratch" --virt-gb "$g" --pattern $p)" >>"$res"
        tail -1 "$res" >&2
      done
    done
  done
done
echo "load after: $(uptime | sed 's/.*load/load/')"

python3 - "$res" <<'EOF'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(vals):
    vals = [float(x) for x in vals if x not in ('-',)]
    return statistics.median(vals) if vals else None
def fmt(x, nd=2):
    return '-' if x is None else (f'{x:.{nd}f}' if abs(x) < 1000 else f'{x:.0f}')
rw = {}
for r in rows:
    if r[0] != 'rw':
        continue
    kv = dict(f.split('=') for f in r[3:])
    rw.setdefault((r[1], r[2]), []).append(kv)
metrics = [('iops', 'write IOPS (4 KiB random, 16 threads)', 0),
           ('flush_med_ms', 'flush latency, median ms', 1),
           ('flush_max_ms', 'flush latency, worst ms', 1),
           ('final_flush_s', 'final flush (all dirty data), s', 2),
           ('extents', 'differencing file extents (filefrag -v)', 0),
           ('read_log_s', 'merge read, v2 in log order (first read), s', 2),
           ('read_guest_s', 'merge read, v2 in guest order (second read), s', 2),
           ('unlink_s', 'unlink, s', 3)]
for mb in sorted({k[0] for k in rw}, key=int):
    n = len(rw.get((mb, 'v1'), []))
    print(f'\n4 KiB random writes over a {int(mb) // 1024} GiB disk, median of {n} runs')
    print('| measure | format 1 | format 2 | v2 / v1 |')
    print('|---|---:|---:|---:|')
    for key, name, nd in metrics:
        a = med([kv[key] for kv in rw.get((mb, 'v1'), [])])
        b = med([kv[key] for kv in rw.get((mb, 'v2'), [])])
        ratio = fmt(b / a) if a and b is not None else '-'
        print(f'| {name} | {fmt(a, nd)} | {fmt(b, nd)} | {ratio} |')
rss = {}
for r in rows:
    if r[0] != 'rss':
        continue
    kv = dict(f.split('=', 1) for f in r[4:])
    rss.setdefault((r[1], r[2], r[3]), []).append(kv)
if rss:
    print('\nPeak RSS added by one overlay with 1 GiB written (VmHWM after - before), MiB')
    print('| virtual size | writes | format 1 | format 2 | format 2 mem_bytes |')
    print('|---|---|---:|---:|---:|')
    for g, p in sorted({(k[0], k[1]) for k in rss}, key=lambda x: (int(x[0]), x[1])):
        out = []
        for v in ('v1', 'v2'):
            vals = [kv['rss_kib'] for kv in rss.get((g, p, v), [])]
            if vals and vals[0].startswith('refused'):
                out.append(vals[0])
            else:
                m = med(vals)
                out.append(fmt(m / 1024, 1) if m is not None else '-')
        mem = med([kv['mem_kib'] for kv in rss.get((g, p, 'v2'), [])])
        what = '1 MiB at random 1 MiB offsets' if p == 'clustered' else '4 KiB at random offsets'
        print(f'| {int(g) // 1024} TiB | {what} | {out[0]} | {out[1]} | {fmt(mem / 1024, 1) if mem is not None else "-"} |')
EOF
