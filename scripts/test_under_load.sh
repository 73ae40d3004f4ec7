#!/usr/bin/env bash
# The whole test suite three times in a row beside two busy processes (issue #19: no test may
# be flaky under load). Prints each run's pytest summary line and duration; exits non-zero if any
# run fails; stops everything it started on the way out (Ctrl-C included).
#
#   scripts/test_under_load.sh                      # `make test` then `make test-slow` (CI's), x3
#   scripts/test_under_load.sh tests/test_noise.py  # pytest arguments, for a quick smoke run
#   RUNS=1 TARGETS=test scripts/test_under_load.sh  # another number of runs, other make targets
#
# Each run's full output: out/test-under-load/run<N>-<target>.log.
set -uo pipefail
set -m   # each background job in its own process group: a run can be stopped whole
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
TARGETS=${TARGETS:-test test-slow}
LOGS=out/test-under-load
busy=()
run=""

stop() {
    # A run gets SIGINT (pytest's Ctrl-C: fixtures tear down, Ray clusters shut down), and
    # SIGTERM if it still runs a minute later.
    if [[ -n $run ]] && kill -0 "$run" 2>/dev/null; then
        kill -INT -- "-$run" 2>/dev/null
        for _ in $(seq 60); do kill -0 -- "-$run" 2>/dev/null && sleep 1; done
        kill -TERM -- "-$run" 2>/dev/null
        wait "$run" 2>/dev/null
    fi
    for pid in "${busy[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    busy=()
}
trap stop EXIT
trap 'exit 130' INT TERM

mkdir -p "$LOGS"
for _ in 1 2; do
    python3 -c 'while True: pass' &
    busy+=("$!")
done
echo "busy processes: ${busy[*]}; $(nproc) CPUs; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# SIGINT back to its default for a run: a script started in the background ignores it, and so
# would pytest, which could then not be stopped cleanly.
with_sigint() {
    python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

failed=0
for ((k = 1; k <= RUNS; k++)); do
    for target in $TARGETS; do
        log="$LOGS/run$k-$target.log"
        start=$SECONDS
        with_sigint make --no-print-directory "$target" PYTEST_ARGS="$*" > "$log" 2>&1 &
        run=$!
        wait "$run"
        status=$?
        run=""
        seconds=$((SECONDS - start))
        summary=$(grep -E '^=*.*\b(passed|failed|error|errors|no tests ran)\b' "$log" | tail -n 1)
        printf 'run %d/%d, make %s: exit %d in %dm%02ds: %s\n' "$k" "$RUNS" "$target" "$status" \
            $((seconds / 60)) $((seconds % 60)) "${summary:-no summary line (see $log)}"
        grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/    /'
        ((status == 0)) || failed=1
    done
done
exit "$failed"
