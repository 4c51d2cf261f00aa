#!/usr/bin/env bash
# tools/bench/overlay-bench.sh - overlay vs the plain file, side by side in one run.
#
# Builds tools/vds-diff/overlay-bench (only that target) and runs it twice: through
# the page cache (measures the overlay's own CPU path) and with O_DIRECT (what qemu
# cache=none does; measures the I/O the overlay adds).  Each prints a table of
# median MB/s over RUNS runs and the ratio overlay/plain.
#
#   tools/bench/overlay-bench.sh [extra overlay-bench args, e.g. --block-size 65536]
#   env: BUILD (build dir, default build-bench), DIR (scratch dir on the filesystem
#        to measure, default a new dir under /var/tmp), SIZE_MB (256), RUNS (5)
set -eu
cd "$(dirname "$0")/../.."
build=${BUILD:-build-bench}
[ -f "$build/build.ninja" ] || meson setup -q "$build" -Dtests=false >/dev/null
ninja -C "$build" tools/vds-diff/overlay-bench >/dev/null
dir=${DIR:-$(mktemp -d /var/tmp/overlay-bench.XXXXXX)}
mkdir -p "$dir"
trap 'rm -rf "$dir"/ovb-*' EXIT
bench="$build/tools/vds-diff/overlay-bench"
"$bench" --dir "$dir" --size-mb "${SIZE_MB:-256}" --runs "${RUNS:-5}" --ops 100000 "$@"
echo
"$bench" --dir "$dir" --size-mb "${SIZE_MB:-256}" --runs "${RUNS:-5}" --ops 10000 --direct "$@"
