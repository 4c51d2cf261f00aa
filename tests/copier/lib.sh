# lib.sh -- helpers for the copier's shell tests (sourced, not run).
#
# Tests judge vds-copy by its --json event stream: ev_assert runs a Python
# expression over `evs` (the list of event objects) and `ev(kind, job)`
# (first matching event or None), and fails with the message if it is false.
set -eu

fail() { echo "FAIL: $*" >&2; exit 1; }

need_root() {
	if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root" >&2; exit 77; fi
}

# ev_assert FILE 'python expression' 'message'
ev_assert() {
	python3 - "$1" "$2" <<'PY' || fail "$3 (events in $1: $(tr '\n' ' ' <"$1" | cut -c1-1500))"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def ev(kind, job=None):
    for e in evs:
        if e["event"] == kind and (job is None or e["job"] == job):
            return e
    return None
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# wait_for CMD...: poll a condition (bounded) instead of sleeping blindly.
wait_for() {
	local i
	for i in $(seq 1 600); do
		if "$@"; then return 0; fi
		sleep 0.1
	done
	return 1
}
