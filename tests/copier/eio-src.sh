#!/usr/bin/env bash
# eio-src.sh VDS_COPY EIO_FS -- a source that fails to read (root, /dev/fuse).
#
# EIO_FS mounts a FUSE filesystem whose bad.img fails with EIO from 4 MiB on.
# The copy must fail with errno 5 and a message naming the read, and leave
# neither a final file nor a partial one behind.
. "$(dirname "$0")/lib.sh"
need_root
[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse" >&2; exit 77; }
V=$1
FS=$2
T=$(mktemp -d "${TMPDIR:-/var/tmp}/copier-eio.XXXXXX")
fspid=
cleanup() {
	fusermount3 -u "$T/mnt" 2>/dev/null || umount -l "$T/mnt" 2>/dev/null || true
	if [ -n "$fspid" ]; then kill "$fspid" 2>/dev/null || true; wait "$fspid" 2>/dev/null || true; fi
	rm -rf "$T"
}
trap cleanup EXIT
mkdir "$T/mnt" "$T/dst"
"$FS" -f "$T/mnt" &
fspid=$!
wait_for mountpoint -q "$T/mnt" || fail "FUSE error source did not mount"
head -c 4096 "$T/mnt/bad.img" >/dev/null || fail "the good part of bad.img should read"

if "$V" --json S="$T/mnt" D="$T/dst" S:bad.img=D >"$T/ev"; then fail "copy of a failing source succeeded"; fi
ev_assert "$T/ev" 'ev("failed")["errno"] == 5' "expected EIO"
ev_assert "$T/ev" '"read from source" in ev("failed")["error"]' "error should name the failing read"
[ -z "$(ls -A "$T/dst")" ] || fail "failed copy left files: $(ls -A "$T/dst")"
echo "PASS: failing source"
