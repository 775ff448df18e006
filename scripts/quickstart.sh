#!/usr/bin/env bash
# README command (a): install dependencies, build, and try ferry on a local
# SQLite database. Placeholder: will apply examples/quickstart once the
# migration engine lands.
set -euo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$ROOT"
bash scripts/install-deps.sh
FERRY_SKIP_DEPS=1 bash scripts/build.sh
exec build/ferry doctor sqlite:ferry.db
