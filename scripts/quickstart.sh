#!/usr/bin/env bash
# README command (a): install dependencies, build, and run ferry's main job on
# the embedded SQLite default: apply examples/quickstart/migrations (seed
# 001's email-verification change in safe steps) to
# examples/quickstart/ferry.db, then print `ferry status`.
# Run it again: nothing is applied twice ("nothing to do").
set -euo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$ROOT"
bash scripts/install-deps.sh
FERRY_SKIP_DEPS=1 bash scripts/build.sh
cd examples/quickstart
echo
echo "\$ ferry up        (database: sqlite:ferry.db in examples/quickstart)"
../../build/ferry up
echo
echo "\$ ferry status"
exec ../../build/ferry status
