#!/usr/bin/env bash
# no-direct-fs.sh VDS_COPY -- O_DIRECT fallback on a filesystem without it
# (root: mounts ramfs, which refuses O_DIRECT opens). The copy must work in
# both directions, report that it did not use O_DIRECT, and be exact.
. "$(dirname "$0")/lib.sh"
need_root
V=$1
T=$(mktemp -d "${TMPDIR:-/var/tmp}/copier-ramfs.XXXXXX")
cleanup() { umount "$T/ram" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
mkdir "$T/disk" "$T/ram" "$T/back"
mount -t ramfs ramfs "$T/ram"
head -c $((3 * 1048576 + 999)) /dev/urandom >"$T/disk/f.img"

"$V" --json D="$T/disk" R="$T/ram" D:f.img=R >"$T/ev1" || fail "copy to ramfs failed"
ev_assert "$T/ev1" 'ev("finished")["direct"] is False' "ramfs cannot do O_DIRECT"
cmp "$T/disk/f.img" "$T/ram/f.img" || fail "copy to ramfs differs"
"$V" --json R="$T/ram" B="$T/back" R:f.img=B >"$T/ev2" || fail "copy from ramfs failed"
cmp "$T/disk/f.img" "$T/back/f.img" || fail "copy from ramfs differs"
"$V" --json --force D="$T/disk" B="$T/back" D:f.img=B >"$T/ev3" || fail "disk to disk failed"
ev_assert "$T/ev3" 'ev("finished")["direct"] is True' "ext4/xfs should use O_DIRECT"
echo "PASS: O_DIRECT fallback"
