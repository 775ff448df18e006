#!/usr/bin/env bash
# The full test run (README's test command; CI runs it through .ci/run):
#   1. install the Debian dependencies (scripts/install-deps.sh)
#   2. build build/ with warnings as errors; run ctest against throw-away
#      PostgreSQL + Redis + Cassandra servers (scripts/test-servers.sh)
#   3. unless FERRY_SKIP_SANITIZE=1: the same in build-asan/ (ASan + UBSan)
#   4. unless FERRY_SKIP_FUZZ=1: each libFuzzer target (tests/fuzz) briefly on
#      its corpus, FERRY_FUZZ_SECONDS each (default 15; scripts/fuzz.sh)
# The servers start once, before the first stage, and serve both stages
# (Cassandra's JVM takes tens of seconds to start); they stop at the end.
# Extra arguments go to both ctest runs, e.g. `scripts/test.sh -L unit`.
# FERRY_SKIP_DEPS=1 skips step 1; FERRY_CTEST_TIMEOUT sets the per-test
# timeout in seconds (default 300) for tests that don't set their own.
# The ASan stage sets FERRY_TEST_BIG_ROWS (rows of the big-table tests) to
# FERRY_TEST_BIG_ROWS_ASAN (default 200000); the default stage uses the tests' own size.
# Exits non-zero when any build or test fails; prints a summary at the end.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$ROOT"

log() { printf '\n==== test: %s\n' "$*"; }

LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ferry-test-logs.XXXXXX")"
SERVERS_DIR=""
cleanup() {
  if [[ -n "$SERVERS_DIR" ]]; then bash "$ROOT/scripts/test-servers.sh" stop "$SERVERS_DIR" || true; fi
  rm -rf -- "$LOG_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts the throw-away servers once, after the first build,
# and exports their URLs; both stages' ctest runs use them.
start_servers() {
  SERVERS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ferry-test-servers.XXXXXX")"
  log "starting throw-away servers in $SERVERS_DIR"
  if ! bash "$ROOT/scripts/test-servers.sh" start "$SERVERS_DIR" >/dev/null; then
    echo "test: ERROR: starting the test servers failed (see the output above)" >&2
    exit 1
  fi
  # shellcheck source=/dev/null
  source "$SERVERS_DIR/env"
  export FERRY_TEST_REQUIRE_SERVERS=1
}

CTEST_ARGS=(--output-on-failure -j2 --no-tests=error --timeout "${FERRY_CTEST_TIMEOUT:-300}" "$@")
summary=()
failed=0
total_passed=0
total_failed=0
total_skipped=0
ctest_runs=0

# Reads a ctest log: prints its summary lines, adds to the totals.
collect() {  # NAME LOGFILE
  local name="$1" file="$2" line nfail nall nskip
  line="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$file" | tail -n 1 || true)"
  if [[ -z "$line" ]]; then
    summary+=("$name: no ctest summary line (see the output above)")
    return
  fi
  summary+=("$name: $line")
  ctest_runs=$((ctest_runs + 1))
  if [[ "$line" =~ ^([0-9]+)%\ tests\ passed,\ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    nfail="${BASH_REMATCH[2]}" nall="${BASH_REMATCH[3]}"
    # Skipped tests (GTEST_SKIP) count as neither passed nor failed here.
    nskip="$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)' "$file" || true)"
    total_failed=$((total_failed + nfail))
    total_skipped=$((total_skipped + nskip))
    total_passed=$((total_passed + nall - nfail - nskip))
  fi
  local l
  while IFS= read -r l; do summary+=("$name:   ${l#"${l%%[![:space:]]*}"}"); done < <(
    grep -E '^Total Test time|^[[:space:]]+[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Child aborted|Not Run|Exception|OTHER_FAULT|Skipped)\)' "$file" || true)
}

# run_stage NAME BUILD_DIR [build.sh args...]
run_stage() {
  local name="$1" dir="$2" rc
  shift 2
  log "$name: building $dir"
  if ! FERRY_SKIP_DEPS=1 bash "$ROOT/scripts/build.sh" "$@"; then
    summary+=("$name: BUILD FAILED ($dir)")
    failed=1
    return
  fi
  log "$name: ctest in $dir with the throw-away servers"
  [[ -n "$SERVERS_DIR" ]] || start_servers
  rc=0
  ctest --test-dir "$dir" "${CTEST_ARGS[@]}" 2>&1 | tee "$LOG_DIR/$name.log" || rc=$?
  collect "$name" "$LOG_DIR/$name.log"
  if ((rc != 0)); then
    summary+=("$name: FAILED (exit code $rc)")
    failed=1
  fi
}

if [[ "${FERRY_SKIP_DEPS:-0}" != 1 ]]; then
  log "installing dependencies"
  if ! bash "$ROOT/scripts/install-deps.sh"; then
    echo "test: ERROR: installing dependencies failed" >&2
    exit 1
  fi
fi

run_stage default build --werror

if [[ "${FERRY_SKIP_SANITIZE:-0}" != 1 ]]; then
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # The same big-table tests run, on a smaller table: ASan makes each row
  # about ten times dearer, and the full size ran in the stage above.
  export FERRY_TEST_BIG_ROWS="${FERRY_TEST_BIG_ROWS_ASAN:-200000}"
  run_stage asan build-asan --sanitize --werror
else
  summary+=("asan: skipped (FERRY_SKIP_SANITIZE=1)")
fi

if [[ "${FERRY_SKIP_FUZZ:-0}" != 1 ]]; then
  log "fuzz: each target ${FERRY_FUZZ_SECONDS:-15} s on its corpus (build-fuzz/)"
  if bash "$ROOT/scripts/fuzz.sh" --seconds "${FERRY_FUZZ_SECONDS:-15}" 2>&1 | tee "$LOG_DIR/fuzz.log"; then
    summary+=("fuzz: ok")
  else
    summary+=("fuzz: FAILED")
    failed=1
  fi
  while IFS= read -r l; do summary+=("fuzz:   ${l#fuzz: }"); done < <(grep -E '^fuzz: [a-z_]+ +(ok|CRASHED)' "$LOG_DIR/fuzz.log" || true)
else
  summary+=("fuzz: skipped (FERRY_SKIP_FUZZ=1)")
fi

log "summary"
for s in "${summary[@]}"; do printf '%s\n' "$s"; done
if ((failed)); then
  printf 'RESULT: FAILED\n'
else
  printf 'RESULT: OK\n'
fi
if ((ctest_runs > 0)); then
  printf 'total: %d passed, %d failed, %d skipped\n' "$total_passed" "$total_failed" "$total_skipped"
fi
exit "$failed"
