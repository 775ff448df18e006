#!/usr/bin/env bash
# Copy benchmark (not a test): one mixed-type table of N rows (default
# 5,000,000) copied PostgreSQL -> PostgreSQL five ways, side by side in one
# run, each into a fresh database holding the same empty table (primary key
# included):
#
#   pipe        psql -c "COPY t TO STDOUT (FORMAT binary)" |
#               psql -c "COPY t FROM STDIN (FORMAT binary)"   (single-stream bound)
#   ferry_w1    ferry copy --workers 1
#   ferry_w2    ferry copy --workers 2
#   ferry_w1_pages, ferry_w2_pages   the same with --split pages (ctid ranges)
#   pgcopydb    pgcopydb copy table-data --table-jobs 2 (Debian package)
#   dump        pg_dump -Fc --data-only -t t | pg_restore --data-only
#
# and three ways that also make the target table (an empty database):
#
#   pipe_pk          the pipe into a table without its key, then
#                    ALTER TABLE t ADD PRIMARY KEY (the single-stream bound)
#   ferry_create_w2  ferry copy --create-tables --workers 2 (key built after
#                    the data)
#   pgcopydb_clone   pgcopydb clone --table-jobs 2 --index-jobs 2
#
# --methods a,b,c runs only those (default: all), e.g.
#   --methods pipe_pk,ferry_create_w2,pgcopydb_clone
#
# Reported per method: wall seconds, rows/s, peak RSS of the largest process
# (/usr/bin/time -v), and ratios to the pipe and to pgcopydb. Every target
# is checked to hold N rows.
#
#   bash bench/copy-bench.sh [--rows N] [--ferry PATH] [--url POSTGRES_URL]
#
# Without --url it starts throw-away servers with scripts/test-servers.sh and
# stops them at the end. Source and targets share that one server (as the
# issue's figures do), so the machine's 2 cores serve both sides.
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(dirname -- "$here")"
log() { printf 'copy-bench: %s\n' "$*" >&2; }

rows=5000000
methods=""
ferry=""
url=""
while (($#)); do
  case "$1" in
    --rows) rows="$2"; shift 2 ;;
    --ferry) ferry="$2"; shift 2 ;;
    --url) url="$2"; shift 2 ;;
    --methods) methods=",$2,"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) log "unknown argument $1 (see --help)"; exit 2 ;;
  esac
done
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
ferry="$(bench_find_ferry "$ferry")" || exit 1
for tool in psql pg_dump pg_restore pgcopydb /usr/bin/time; do
  command -v "$tool" >/dev/null || { log "missing $tool (apt-get install postgresql-client pgcopydb time)"; exit 1; }
done

servers=""
work="$(mktemp -d /tmp/ferry-copy-bench.XXXXXX)"
cleanup() {
  if [[ -n "$servers" ]]; then "$root/scripts/test-servers.sh" stop "$servers" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
if [[ -z "$url" ]]; then
  servers="$(mktemp -d /tmp/ferry-copy-bench-srv.XXXXXX)"
  rmdir "$servers"
  "$root/scripts/test-servers.sh" start "$servers" >/dev/null
  # shellcheck disable=SC1091
  source "$servers/env"
  url="$FERRY_TEST_PG_URL"
fi
db_url() { local base="${url%/*}"; printf '%s/%s' "$base" "$1"; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

schema="CREATE TABLE t (id bigint PRIMARY KEY, account integer NOT NULL, amount numeric(14,2),
  ratio double precision, label text, created_at timestamptz, active boolean, ref uuid, meta jsonb)"
src="$(db_url copybench_src)"
have="$(psql -X -At "$src" -c 'SELECT count(*) FROM t' 2>/dev/null || echo 0)"
if [[ "$have" != "$rows" ]]; then
  log "building the source table: $rows rows"
  psql_q "$url" -c "DROP DATABASE IF EXISTS copybench_src" -c "CREATE DATABASE copybench_src"
  psql_q "$src" -c "$schema" -c "INSERT INTO t SELECT g, g % 100000, (g % 1000000) / 100.0,
    g / 7.0, 'label ' || md5(g::text), '2024-01-01'::timestamptz + g * interval '1 second',
    g % 3 = 0, md5(g::text)::uuid, jsonb_build_object('g', g, 'k', 'v')
    FROM generate_series(1, $rows) g" -c "VACUUM ANALYZE t"
fi
bytes="$(psql -X -At "$src" -c "SELECT pg_relation_size('t')")"
log "source: $rows rows, $((bytes / 1000000)) MB heap"

results="$work/results.tsv"
: >"$results"
run() {  # name, command...
  local name="$1"; shift
  if [[ -n "$methods" && "$methods" != *",$name,"* ]]; then return 0; fi
  local dst; dst="$(db_url "copybench_$name")"
  psql_q "$url" -c "DROP DATABASE IF EXISTS copybench_$name" -c "CREATE DATABASE copybench_$name"
  case "$name" in
    ferry_create_*|pgcopydb_clone) ;;  # they make the table themselves
    pipe_pk) psql_q "$dst" -c "${schema/ PRIMARY KEY/}" ;;
    *) psql_q "$dst" -c "$schema" ;;
  esac
  psql_q "$url" -c "CHECKPOINT"
  log "running $name"
  local start end
  start="$(date +%s.%N)"
  DST="$dst" /usr/bin/time -v -o "$work/$name.time" bash -c "$*" >"$work/$name.out" 2>&1 ||
    { log "$name failed:"; cat "$work/$name.out" >&2; return 1; }
  end="$(date +%s.%N)"
  local got; got="$(psql -X -At "$dst" -c 'SELECT count(*) FROM t')"
  [[ "$got" == "$rows" ]] || { log "$name: target has $got rows, expected $rows"; return 1; }
  local rss; rss="$(awk -F: '/Maximum resident/ {gsub(/ /, "", $2); print $2}' "$work/$name.time")"
  printf '%s\t%s\t%s\n' "$name" "$(echo "$end - $start" | bc)" "$rss" >>"$results"
  psql_q "$url" -c "DROP DATABASE copybench_$name"
}

export SRC="$src" FERRY="$ferry" WORK="$work"
run pipe 'psql -X -q "$SRC" -c "COPY t TO STDOUT (FORMAT binary)" | psql -X -q "$DST" -c "COPY t FROM STDIN (FORMAT binary)"'
run ferry_w1 '"$FERRY" copy --from "$SRC" --to "$DST" --table t --workers 1 -q'
run ferry_w2 '"$FERRY" copy --from "$SRC" --to "$DST" --table t --workers 2 -q'
run ferry_w1_pages '"$FERRY" copy --from "$SRC" --to "$DST" --table t --workers 1 --split pages -q'
run ferry_w2_pages '"$FERRY" copy --from "$SRC" --to "$DST" --table t --workers 2 --split pages -q'
run pgcopydb 'rm -rf "$WORK/pgcopydb"; pgcopydb copy table-data --source "$SRC" --target "$DST" --table-jobs 2 --dir "$WORK/pgcopydb"'
run dump 'pg_dump -Fc --data-only -t t "$SRC" | pg_restore --data-only -d "$DST"'
run pipe_pk 'psql -X -q "$SRC" -c "COPY t TO STDOUT (FORMAT binary)" | psql -X -q "$DST" -c "COPY t FROM STDIN (FORMAT binary)" && psql -X -q "$DST" -c "ALTER TABLE t ADD PRIMARY KEY (id)"'
run ferry_create_w2 '"$FERRY" copy --from "$SRC" --to "$DST" --table t --workers 2 --create-tables -q'
run pgcopydb_clone 'rm -rf "$WORK/pgcopydb_clone"; pgcopydb clone --source "$SRC" --target "$DST" --table-jobs 2 --index-jobs 2 --dir "$WORK/pgcopydb_clone"'

python3 - "$results" "$rows" <<'PY'
import sys
rows = int(sys.argv[2])
res = {}
for line in open(sys.argv[1]):
    name, secs, rss = line.split("\t")
    res[name] = (float(secs), int(rss))
first = next(iter(res.values()))[0]
pipe = rows / res.get("pipe", res.get("pipe_pk", (first, 0)))[0]
pgc = rows / res.get("pgcopydb", res.get("pgcopydb_clone", (first, 0)))[0]
print(f"copy-bench: {rows:,} rows, PostgreSQL -> PostgreSQL")
print(f"{'method':<16} {'seconds':>8} {'rows/s':>10} {'peak RSS':>10} {'vs pipe':>8} {'vs pgcopydb':>12}")
for name, (secs, rss) in res.items():
    rate = rows / secs
    print(f"{name:<16} {secs:>8.2f} {rate:>10,.0f} {rss/1024:>8.1f}MB {rate/pipe:>7.2f}x {rate/pgc:>11.2f}x")
if "ferry_create_w2" in res and "pgcopydb_clone" in res:
    ratio = res["pgcopydb_clone"][0] / res["ferry_create_w2"][0]
    print(f"ferry copy --create-tables --workers 2 vs pgcopydb clone: {ratio:.2f}x")
PY
