#!/usr/bin/env bash
# Builds ferry's libFuzzer targets (tests/fuzz) in build-fuzz/ with clang and
# runs each on its corpus for a set time.
#
#   scripts/fuzz.sh [--seconds N] [--build-only] [TARGET...]
#
#   --seconds N    run time per target (default 60)
#   --build-only   build, run nothing
#   TARGET         url, config, source, sql_split, lint (default: all)
#
# Each target starts from tests/fuzz/corpus/<target>/ (read only: new inputs
# go to build-fuzz/corpus/<target>/, merge the interesting ones by hand).
# A crash leaves its input in build-fuzz/crashes/<target>/ and fails the run:
# fix it and copy the input into tests/fuzz/corpus/<target>/ as a
# regression case. Prints one line per target; exits non-zero on a crash.
set -euo pipefail

log() { printf 'fuzz: %s\n' "$*"; }
die() { printf 'fuzz: ERROR: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$ROOT"

ALL=(url config source sql_split lint)
seconds=60
build_only=0
targets=()
while (($# > 0)); do
  case "$1" in
    --seconds) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--seconds takes a number"; seconds="$2"; shift ;;
    --build-only) build_only=1 ;;
    -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    url | config | source | sql_split | lint) targets+=("$1") ;;
    *) die "unknown argument '$1' (see scripts/fuzz.sh --help)" ;;
  esac
  shift
done
((${#targets[@]} > 0)) || targets=("${ALL[@]}")

command -v clang++ >/dev/null 2>&1 || die "clang++ not found: run scripts/install-deps.sh (packages clang, libclang-rt-14-dev)"

build_dir="$ROOT/build-fuzz"
log "configuring $build_dir (clang, ASan + UBSan + libFuzzer)"
mkdir -p "$build_dir"
CC=clang CXX=clang++ cmake -G Ninja -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFERRY_BUILD_FUZZ=ON -DFERRY_BUILD_TESTS=OFF -DFERRY_WITH_POSTGRES=OFF \
  -DFERRY_STATIC_DEPS=OFF -DFERRY_WERROR=OFF >"$build_dir/configure.log" 2>&1 ||
  { cat "$build_dir/configure.log" >&2; die "cmake configure failed"; }
log "building ${targets[*]}"
cmake --build "$build_dir" -j"$(nproc 2>/dev/null || echo 2)" --target "${targets[@]/#/fuzz_}" ||
  die "build failed in $build_dir"
((build_only)) && exit 0

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
failed=0
for t in "${targets[@]}"; do
  seeds="$ROOT/tests/fuzz/corpus/$t"
  work="$build_dir/corpus/$t"
  crashes="$build_dir/crashes/$t"
  mkdir -p "$work" "$crashes"
  out="$build_dir/fuzz-$t.log"
  rc=0
  "$build_dir/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=4096 -artifact_prefix="$crashes/" -print_final_stats=1 "$work" "$seeds" \
    >"$out" 2>&1 || rc=$?
  runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$out" | grep -Eo '[0-9]+$' || echo '?')"
  if ((rc == 0)); then
    printf 'fuzz: %-10s ok       %s s, %s runs\n' "$t" "$seconds" "$runs"
  else
    printf 'fuzz: %-10s CRASHED  (exit %d) input in %s; log %s\n' "$t" "$rc" "$crashes" "$out"
    grep -E 'ERROR|invariant|SUMMARY' "$out" | head -n 5 | sed 's/^/fuzz:   /'
    failed=1
  fi
done
exit "$failed"
