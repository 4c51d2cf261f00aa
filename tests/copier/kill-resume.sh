#!/usr/bin/env bash
# kill-resume.sh VDS_COPY -- a copy killed with SIGKILL, or cancelled with
# SIGINT, resumes from its checkpoint.
#
# The kill happens once the event stream reports a durable checkpoint (an
# ordering fact, not a delay). The slow rate limit only keeps the copy from
# finishing before the kill lands; the second run is unlimited and must report
# resumed_from > 0, and the result must equal the source byte for byte.
. "$(dirname "$0")/lib.sh"
V=$1
T=$(mktemp -d "${TMPDIR:-/var/tmp}/copier-kill.XXXXXX")
pid=
cleanup() { if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi; rm -rf "$T"; }
trap cleanup EXIT
mkdir "$T/a" "$T/b"
# 256 MiB logical, 64 MiB of data in 1 MiB pieces, an odd tail
truncate -s $((256 * 1048576 + 12345)) "$T/a/disk.img"
for i in $(seq 0 63); do
	dd if=/dev/urandom of="$T/a/disk.img" bs=1M count=1 seek=$((i * 4)) conv=notrunc status=none
done

"$V" --json --bwlimit 4M --checkpoint-every 2M A="$T/a" B="$T/b" A:disk.img=B >"$T/ev1" &
pid=$!
wait_for grep -q '"checkpointed":[1-9]' "$T/ev1" || fail "no checkpoint reported"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
ev_assert "$T/ev1" 'ev("finished") is None' "copy finished before the kill; cannot test resume"
[ ! -e "$T/b/disk.img" ] || fail "a killed copy left a file under the final name"
[ -e "$T/b/disk.img.vds-copy-part" ] || fail "partial copy missing"
[ -e "$T/b/disk.img.vds-copy-part.ckpt" ] || fail "checkpoint missing"
[ "$(stat -c %a "$T/b/disk.img.vds-copy-part")" = 600 ] || fail "partial copy must stay 0600"

"$V" --json --verify A="$T/a" B="$T/b" A:disk.img=B >"$T/ev2" || fail "resumed copy failed"
ev_assert "$T/ev2" 'ev("finished")["resumed_from"] > 0' "second run did not resume"
ev_assert "$T/ev2" 'ev("finished")["done"] == 64 * 1048576' "data byte count wrong"
cmp "$T/a/disk.img" "$T/b/disk.img" || fail "resumed copy differs from source"
[ ! -e "$T/b/disk.img.vds-copy-part" ] && [ ! -e "$T/b/disk.img.vds-copy-part.ckpt" ] ||
	fail "leftovers after a successful resume"
[ "$(du -k "$T/b/disk.img" | cut -f1)" -lt $((80 * 1024)) ] || fail "holes not preserved"

# SIGINT: the tool cancels, reports it, keeps the partial copy to resume
mkdir "$T/c"
"$V" --json --bwlimit 4M --checkpoint-every 2M A="$T/a" C="$T/c" A:disk.img=C >"$T/ev3" &
pid=$!
wait_for grep -q '"checkpointed":[1-9]' "$T/ev3" || fail "no checkpoint reported (SIGINT run)"
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 1 ] || fail "cancelled run should exit 1, got $rc"
ev_assert "$T/ev3" 'ev("cancelled")["errno"] == 125 and ev("finished") is None' "no cancelled event"
[ -e "$T/c/disk.img.vds-copy-part.ckpt" ] && [ ! -e "$T/c/disk.img" ] || fail "cancel should keep a resumable partial only"
"$V" --json A="$T/a" C="$T/c" A:disk.img=C >"$T/ev4" || fail "resume after SIGINT failed"
ev_assert "$T/ev4" 'ev("finished")["resumed_from"] > 0' "run after SIGINT did not resume"
cmp "$T/a/disk.img" "$T/c/disk.img" || fail "copy resumed after SIGINT differs"
echo "PASS: killed and interrupted copies resumed"
