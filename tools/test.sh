#!/usr/bin/env bash
# tools/test.sh: the whole test suite, as CI runs it. Installs what is missing, builds
# with -Werror, then runs
#   1. every meson test (suites 'unit' and 'integration'; the latter mounts for real),
#      then the integration suite again over the other transport, FUSE over io_uring
#      (VDSFS_EXTRA_OPTS=io_uring=on: the fixture turns the kernel's enable_uring on
#      for each test and restores it; a kernel without it skips),
#   2. the unit suite and every integration test again under AddressSanitizer + UBSan,
#   3. migrations, concurrent I/O and faults under ThreadSanitizer,
#   4. each libFuzzer target for a short while (clang build, -Dfuzz=true).
# The last line is the plain summary "N passed, N failed"; exit status is non-zero on
# any failure. Build trees go under build-test/ so a developer's build/ is left alone.
set -u
cd "$(dirname "$0")/.."
top=$PWD
out=$top/build-test
tools/deps.sh test || { echo "0 passed, 1 failed"; exit 1; }

fail_setup=0
step() { echo "== $*" >&2; }
setup() { # dir, meson args...
  local dir=$1; shift
  [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null ||
    { echo "meson setup $dir failed" >&2; return 1; }
  ninja -C "$dir" >"$dir.ninja.log" 2>&1 ||
    { tail -40 "$dir.ninja.log" >&2; echo "build of $dir failed" >&2; return 1; }
}

step "build (-Werror)"
if setup "$out/main" -Dwerror=true; then
  step "meson test: unit + integration"
  meson test -C "$out/main" --print-errorlogs --num-processes 2 --suite unit --suite integration
  step "meson test: integration over FUSE over io_uring"
  VDSFS_EXTRA_OPTS=io_uring=on meson test -C "$out/main" --print-errorlogs --suite integration \
    --logbase testlog-uring
else fail_setup=$((fail_setup + 1)); fi

step "build with ASan + UBSan; unit tests, then every integration test with sanitized binaries"
if setup "$out/asan" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C "$out/asan" --print-errorlogs --suite unit
  # The daemon runs detached from any terminal: sanitizer reports go to files, and
  # any file there is a failure (the unit log above is kept separately).
  cp "$out/asan/meson-logs/testlog.json" "$out/asan-unit.json"
  san=$out/asan-daemon-logs; rm -rf "$san"; mkdir -p "$san"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$san/asan \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$san/ubsan \
    meson test -C "$out/asan" --print-errorlogs --suite integration
  if [ -n "$(ls -A "$san")" ]; then
    cat "$san"/* >&2; fail_setup=$((fail_setup + 1))
  fi
else fail_setup=$((fail_setup + 1)); fi

step "ThreadSanitizer, deadlock detection on: concurrent I/O, migrations and faults (tools/tsan.supp)"
if setup "$out/tsan" -Db_sanitize=thread -Db_lundef=false; then
  tsan=$out/tsan-logs; rm -rf "$tsan"; mkdir -p "$tsan"
  TSAN_OPTIONS="log_path=$tsan/tsan halt_on_error=0 detect_deadlocks=1 second_deadlock_stack=1 suppressions=$top/tools/tsan.supp" \
    meson test -C "$out/tsan" --print-errorlogs --suite integration it-migrate it-posix it-faults it-oracle
  if [ -n "$(ls -A "$tsan")" ]; then
    cat "$tsan"/* >&2; fail_setup=$((fail_setup + 1))
  fi
else fail_setup=$((fail_setup + 1)); fi

step "libFuzzer targets, short runs"
if CC=clang setup "$out/fuzz" -Dfuzz=true -Dtests=true -Db_lundef=false; then
  meson test -C "$out/fuzz" --print-errorlogs --suite fuzz
else fail_setup=$((fail_setup + 1)); fi

python3 tools/test-summary.py "$fail_setup" "$out/main" "$out/main/meson-logs/testlog-uring.json" \
  "$out/asan" "$out/fuzz" "$out/asan-unit.json" "$out/tsan"
