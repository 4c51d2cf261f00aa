#!/usr/bin/env bash
# tools/bench/layout-bench.sh - layouts for a differencing file under 4 KiB random
# writes, on plain files, side by side in one run (tools/bench/layout-bench.c says
# what each layout is): format 1's fixed offsets, format 2's log, and allocation
# units of 64 KiB and 1 MiB with and without filling a unit on its first write.
# RUNS rounds, the layouts in a rotated order each round; prints the median of
# each measure per layout and its ratio to the fixed layout.
#
#   tools/bench/layout-bench.sh
#   env: DIR (/var/tmp, ext4 here), SIZE_MB (4096), RUNS (1),
#        LAYOUTS ("fixed log cluster:65536 fill:65536 cluster:1048576 fill:1048576")
set -eu
cd "$(dirname "$0")/../.."
dir=${DIR:-/var/tmp}; runs=${RUNS:-1}; mb=${SIZE_MB:-4096}
layouts=(${LAYOUTS:-fixed log cluster:65536 fill:65536 cluster:1048576 fill:1048576})
work=$(mktemp -d "$dir/layout-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread tools/bench/layout-bench.c \
  -o "$work/layout-bench"
echo "layout-bench: $mb MiB, $(uname -r), $(nproc) CPUs, $(df -T "$dir" | awk 'NR==2 {print $2}'), load: $(uptime | sed 's/.*load average: //')"
res=$work/results
: >"$res"
n=${#layouts[@]}
for r in $(seq 0 $((runs - 1))); do
  for i in $(seq 0 $((n - 1))); do
    l=${layouts[$(((i + r) % n))]}
    sync
    echo "$l $("$work/layout-bench" --dir "$work" --layout "$l" --size-mb "$mb")" >>"$res"
    tail -1 "$res" >&2
  done
done
echo "load after: $(uptime | sed 's/.*load average: //')"
python3 - "$res" "${layouts[@]}" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
order = sys.argv[2:]
data = {}
for r in rows:
    data.setdefault(r[0], []).append(dict(f.split('=') for f in r[1:]))
keys = [('iops', 'write IOPS'), ('sync_s', 'fdatasync s'), ('extents', 'extents'),
        ('file_mib', 'file MiB'), ('read_s', 'read in file order s'), ('unlink_s', 'unlink s')]
print('| layout | ' + ' | '.join(k[1] for k in keys) + ' |')
print('|---|' + '---:|' * len(keys))
base = {k: statistics.median(float(d[k]) for d in data['fixed']) for k, _ in keys} if 'fixed' in data else {}
for l in order:
    if l not in data:
        continue
    cells = []
    for k, _ in keys:
        m = statistics.median(float(d[k]) for d in data[l])
        ratio = f' ({m / base[k]:.2f}x)' if base.get(k) and l != 'fixed' else ''
        cells.append((f'{m:.0f}' if m >= 100 else f'{m:.2f}') + ratio)
    print(f'| {l} | ' + ' | '.join(cells) + ' |')
PY
