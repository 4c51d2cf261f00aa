#!/usr/bin/env bash
# full-dst.sh VDS_COPY -- a destination that is too small (root: mounts tmpfs).
#
# 1. the free-space pre-check refuses the job before it starts, clearly;
# 2. without the pre-check the copy hits ENOSPC: the job fails with that
#    error and leaves nothing behind (no final file, no partial, space freed).
. "$(dirname "$0")/lib.sh"
need_root
V=$1
T=$(mktemp -d "${TMPDIR:-/var/tmp}/copier-full.XXXXXX")
cleanup() { umount "$T/full" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
mkdir "$T/src" "$T/full"
mount -t tmpfs -o size=16m tmpfs "$T/full"
head -c $((40 * 1048576 + 7)) /dev/urandom >"$T/src/big.img"

if "$V" --json S="$T/src" F="$T/full" S:big.img=F >"$T/ev1"; then fail "copy into a full datastore succeeded"; fi
ev_assert "$T/ev1" 'ev("started") is None' "refused job must not start"
ev_assert "$T/ev1" '"not enough free space on destination" in ev("failed")["error"]' "no clear refusal"
[ -z "$(ls -A "$T/full")" ] || fail "refused job left files: $(ls -A "$T/full")"

if "$V" --json --no-space-check S="$T/src" F="$T/full" S:big.img=F >"$T/ev2"; then fail "ENOSPC not reported"; fi
ev_assert "$T/ev2" 'ev("started") is not None and ev("failed")["errno"] == 28' "expected ENOSPC failure"
ev_assert "$T/ev2" '"write to destination" in ev("failed")["error"]' "error should say where it failed"
[ -z "$(ls -A "$T/full")" ] || fail "failed copy left files: $(ls -A "$T/full")"
[ "$(df --output=used -k "$T/full" | tail -1)" -lt 1024 ] || fail "space not given back"
echo "PASS: full destination"
