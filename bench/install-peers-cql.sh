#!/usr/bin/env bash
# Installs the peers bench/cql-copy-bench.sh compares ferry with, from PyPI
# into a virtualenv (bench/.venv-cql, pinned versions). Idempotent.
#
#   cassandra-driver  the Python driver for Cassandra (seed 000's migrator,
#                     bench/cql_copy_peers.py)
#   cqlsh             cqlsh COPY FROM
#   psycopg[binary]   PostgreSQL for the Python migrator
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
venv="${FERRY_BENCH_VENV:-$here/.venv-cql}"
log() { printf 'install-peers-cql: %s\n' "$*" >&2; }
pins=(cassandra-driver==3.30.1 cqlsh==6.2.2 "psycopg[binary]==3.3.9")
if [[ -x "$venv/bin/cqlsh" ]] && "$venv/bin/python" -c 'import cassandra, psycopg' 2>/dev/null; then
  log "already installed in $venv"
else
  command -v python3 >/dev/null || { log "python3 not found: apt-get install -y python3 python3-venv"; exit 1; }
  python3 -m venv "$venv"
  log "pip install ${pins[*]}"
  "$venv/bin/pip" install -q "${pins[@]}"
fi
"$venv/bin/python" -c 'import cassandra, psycopg; print("cassandra-driver", cassandra.__version__, "psycopg", psycopg.__version__)' >&2
"$venv/bin/cqlsh" --version >&2
