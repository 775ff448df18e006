#!/usr/bin/env bash
# Installs what bench/partition-bench.sh needs. Idempotent.
#
#   pg_partman   Debian's postgresql-15-partman (4.7.2 on bookworm); the test
#                server (scripts/test-servers.sh) runs Debian's PostgreSQL 15
#                binaries, so the extension files land where it looks for
#                them. apt-get update only when apt has no candidate; sudo
#                only when not root.
#   psycopg 3    for the driver and the concurrent writer
#                (bench/partition_bench.py), in the virtualenv
#                bench/install-peers-cql.sh uses (bench/.venv-cql, or
#                $FERRY_BENCH_VENV); only psycopg is added when it is missing.
set -euo pipefail
log() { printf 'install-peers-partman: %s\n' "$*" >&2; }
pkg=postgresql-15-partman
control=/usr/share/postgresql/15/extension/pg_partman.control
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
venv="${FERRY_BENCH_VENV:-$here/.venv-cql}"
install_psycopg() {
  if "$venv/bin/python" -c 'import psycopg' 2>/dev/null; then
    log "psycopg already installed in $venv"
    return 0
  fi
  command -v python3 >/dev/null || { log "python3 not found: apt-get install -y python3 python3-venv"; exit 1; }
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  log "pip install psycopg[binary]==3.3.9 into $venv"
  "$venv/bin/pip" install -q "psycopg[binary]==3.3.9"
}
install_psycopg
if [[ -f "$control" ]]; then
  log "pg_partman already installed: $(dpkg-query -W -f='${Package} ${Version}' "$pkg" 2>/dev/null || echo "$control")"
  exit 0
fi
as_root=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null || { log "not root and no sudo: run as root: apt-get install -y $pkg"; exit 1; }
  as_root=(sudo)
fi
candidate="$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')"
if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
  log "apt-get update (no candidate for $pkg)"
  "${as_root[@]}" apt-get update -q
fi
log "apt-get install -y $pkg"
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q "$pkg"
[[ -f "$control" ]] || { log "installed $pkg but $control is missing"; exit 1; }
log "installed: $(dpkg-query -W -f='${Package} ${Version}' "$pkg")"
