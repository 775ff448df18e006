#!/usr/bin/env bash
# Builds ferry with CMake + Ninja.
#
#   scripts/build.sh [--sanitize] [--werror] [-DVAR=VALUE...]
#
#   (default)    build/       RelWithDebInfo           -> build/ferry
#   --sanitize   build-asan/  Debug, ASan + UBSan       -> build-asan/ferry
#   --werror     warnings are errors (FERRY_WERROR=ON; OFF when not given)
#   -D...        passed on to the cmake configure step
#
# Installs the Debian build dependencies first unless FERRY_SKIP_DEPS=1.
set -euo pipefail

log() { printf 'build: %s\n' "$*"; }
die() { printf 'build: ERROR: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$ROOT"

sanitize=0
werror=OFF
extra=()
while (($# > 0)); do
  case "$1" in
    --sanitize) sanitize=1 ;;
    --werror) werror=ON ;;
    -D*) extra+=("$1") ;;
    -h | --help)
      sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument '$1' (see scripts/build.sh --help)" ;;
  esac
  shift
done

if [[ "${FERRY_SKIP_DEPS:-0}" != 1 ]]; then
  bash "$ROOT/scripts/install-deps.sh" || die "installing dependencies failed"
fi

if ((sanitize)); then
  build_dir=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON)
else
  build_dir=build
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_SANITIZE=OFF)
fi
cmake_args+=("-DFERRY_WERROR=$werror")

# A build dir configured with another generator cannot be reused by Ninja.
if [[ -f "$build_dir/CMakeCache.txt" ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$build_dir/CMakeCache.txt"; then
  die "$ROOT/$build_dir was configured with another CMake generator; remove it (rm -rf $build_dir) and re-run"
fi

jobs="$(nproc 2>/dev/null || echo 2)"
log "configuring $build_dir (${cmake_args[*]} ${extra[*]})"
cmake -G Ninja -S . -B "$build_dir" "${cmake_args[@]}" "${extra[@]}" || die "cmake configure failed for $build_dir"
log "building $build_dir with -j$jobs"
cmake --build "$build_dir" -j"$jobs" || die "build failed in $build_dir"
if [[ -x "$build_dir/ferry" ]]; then
  log "done: $ROOT/$build_dir/ferry"
else
  log "done (no $build_dir/ferry binary was produced)"
fi
