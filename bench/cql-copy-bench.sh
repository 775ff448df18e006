#!/usr/bin/env bash
# PostgreSQL -> Cassandra copy benchmark (not a test): seed 000's chat
# messages (examples/chat-app) moved into its CQL model
# (chat_keyspace.messages_by_room, partitioned by room and UTC day) three
# ways, side by side in one run on the same servers:
#
#   seed_migrator  seed 000's migrator as its guide writes it (a reader pages
#                  through PostgreSQL, 4 worker threads each send one
#                  prepared INSERT and wait for it; Python cassandra-driver,
#                  bench/cql_copy_peers.py)
#   cqlsh_copy     psql exports a CSV with the day bucket computed, then
#                  cqlsh COPY FROM loads it (NUMPROCESSES=2); the time
#                  includes the export
#   ferry_w2, ferry_w4   ferry copy --map examples/chat-app/map.toml
#                  --workers 2 / 4 (bucket, renames and write timestamp from
#                  the mapping)
#   ferry_1to1     ferry copy of room_message one to one (no mapping,
#                  --create-tables) into the URL's keyspace, then
#   ferry_verify   ferry verify of those rows, PostgreSQL against CQL
#
# Before each method the CQL table is truncated; after it the table must hold
# exactly the source's row count. Reported: wall seconds, rows/s, peak RSS
# (/usr/bin/time -v; for the Python migrator its process), ratio to the seed
# migrator and to cqlsh COPY.
#
#   bash bench/cql-copy-bench.sh [--messages N (2000000)] [--ferry PATH] [--methods a,b]
#
# Starts throw-away PostgreSQL and Cassandra with scripts/test-servers.sh
# (or uses the servers of an env file given with --env FILE) and installs
# the Python peers with bench/install-peers-cql.sh.
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(dirname -- "$here")"
log() { printf 'cql-copy-bench: %s\n' "$*" >&2; }

messages=2000000
methods=""
ferry=""
envfile=""
while (($#)); do
  case "$1" in
    --messages) messages="$2"; shift 2 ;;
    --ferry) ferry="$2"; shift 2 ;;
    --methods) methods=",$2,"; shift 2 ;;
    --env) envfile="$2"; shift 2 ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) log "unknown argument $1 (see --help)"; exit 2 ;;
  esac
done
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
ferry="$(bench_find_ferry "$ferry")" || exit 1
for tool in psql /usr/bin/time bc; do
  command -v "$tool" >/dev/null || { log "missing $tool (apt-get install postgresql-client time bc)"; exit 1; }
done
bash "$here/install-peers-cql.sh"
venv="${FERRY_BENCH_VENV:-$here/.venv-cql}"

servers=""
work="$(mktemp -d /tmp/ferry-cql-copy-bench.XXXXXX)"
cleanup() {
  if [[ -n "$servers" ]]; then "$root/scripts/test-servers.sh" stop "$servers" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
if [[ -z "$envfile" ]]; then
  servers="$(mktemp -d /tmp/ferry-cql-bench-srv.XXXXXX)"
  rmdir "$servers"
  "$root/scripts/test-servers.sh" start "$servers" >/dev/null
  envfile="$servers/env"
fi
# shellcheck disable=SC1090
source "$envfile"
: "${FERRY_TEST_CQL_URL:?the servers have no Cassandra (FERRY_TEST_NO_CQL was set?)}"

# cql://USER:PASSWORD@HOST:PORT/KS -> the parts the Python peers want.
[[ "$FERRY_TEST_CQL_URL" =~ ^cql://([^:]+):([^@]+)@([^:/]+):([0-9]+)/([A-Za-z0-9_]+) ]] ||
  { log "cannot read user, host, port and keyspace from FERRY_TEST_CQL_URL"; exit 1; }
cql_user="${BASH_REMATCH[1]}" cql_pw="${BASH_REMATCH[2]}"
cql_host="${BASH_REMATCH[3]}" cql_port="${BASH_REMATCH[4]}" cql_keyspace="${BASH_REMATCH[5]}"
cqlsh_q() {
  "$venv/bin/cqlsh" "$cql_host" "$cql_port" -u "$cql_user" -p "$cql_pw" \
    --request-timeout=600 "$@"
}
count_cql() {  # [KS.TABLE]
  "$venv/bin/python" "$here/cql_copy_peers.py" count "$cql_host" "$cql_port" "$cql_user" "$cql_pw" \
    ${1:+--table "$1"}
}

pg="${FERRY_TEST_PG_URL%/*}/cqlbench_src"
chat="$root/examples/chat-app"
have="$(psql -X -At "$pg" -c 'SELECT count(*) FROM room_message' 2>/dev/null || echo 0)"
if [[ "$have" != "$messages" ]]; then
  log "building the source: $messages messages"
  psql -X -q -v ON_ERROR_STOP=1 "$FERRY_TEST_PG_URL" \
    -c "DROP DATABASE IF EXISTS cqlbench_src" -c "CREATE DATABASE cqlbench_src"
  "$ferry" --database "$pg" --dir "$chat/postgres/migrations" up -q
  psql -X -q -v ON_ERROR_STOP=1 -v rooms=$((messages / 100 + 1)) -v messages="$messages" \
    "$pg" -f "$chat/postgres/generate.sql"
  psql -X -q "$pg" -c "VACUUM ANALYZE"
fi
"$ferry" --database "$FERRY_TEST_CQL_URL" --dir "$chat/cql/migrations" up -q

results="$work/results.tsv"
: >"$results"
run() {  # name, command... (CHECK_TABLE: the CQL table that must hold every message)
  local name="$1"; shift
  if [[ -n "$methods" && "$methods" != *",$name,"* ]]; then return 0; fi
  local check="${CHECK_TABLE:-chat_keyspace.messages_by_room}"
  [[ -n "${KEEP_TARGET:-}" ]] || cqlsh_q -e "TRUNCATE $check" >/dev/null
  log "running $name"
  local start end
  start="$(date +%s.%N)"
  /usr/bin/time -v -o "$work/$name.time" bash -c "$*" >"$work/$name.out" 2>&1 ||
    { log "$name failed:"; cat "$work/$name.out" >&2; return 1; }
  end="$(date +%s.%N)"
  local got; got="$(count_cql "$check")"
  [[ "$got" == "$messages" ]] || { log "$name: target has $got rows, expected $messages"; return 1; }
  local rss; rss="$(awk -F: '/Maximum resident/ {gsub(/ /, "", $2); print $2}' "$work/$name.time")"
  printf '%s\t%s\t%s\n' "$name" "$(echo "$end - $start" | bc)" "$rss" >>"$results"
}

# The methods, as functions run under /usr/bin/time by run().
method_seed_migrator() {
  "$VENV/bin/python" "$HERE/cql_copy_peers.py" seed "$PG" "$CQL_HOST" "$CQL_PORT" "$CQL_USER" \
    "$CQL_PW" --workers 4 --batch 1000
}
method_cqlsh_copy() {
  local ts="'YYYY-MM-DD HH24:MI:SS.MS\"+0000\"'"
  psql -X -q -v ON_ERROR_STOP=1 "$PG" -c "COPY (SELECT room_id,
      (created_at AT TIME ZONE 'UTC')::date, to_char(created_at AT TIME ZONE 'UTC', $ts), id,
      sender_id, content, message_type, to_char(updated_at AT TIME ZONE 'UTC', $ts),
      to_char(deleted_at AT TIME ZONE 'UTC', $ts) FROM room_message) TO STDOUT
      WITH (FORMAT csv)" >"$WORK/messages.csv"
  "$VENV/bin/cqlsh" "$CQL_HOST" "$CQL_PORT" -u "$CQL_USER" -p "$CQL_PW" --request-timeout=600 \
    -e "COPY chat_keyspace.messages_by_room (room_id, bucket, created_at, message_id, sender_id,
        content, type, updated_at, deleted_at) FROM '$WORK/messages.csv' WITH NUMPROCESSES=2" ||
    true  # cqlsh exits non-zero after retried write timeouts; run() counts the rows
}
method_ferry() {  # workers
  "$FERRY" copy --from "$PG" --to "$CQL" --map "$CHAT/map.toml" --table room_message \
    --workers "$1" --control "sqlite:$WORK/control-$1.db" -q
}
export -f method_seed_migrator method_cqlsh_copy method_ferry
export PG="$pg" CQL="$FERRY_TEST_CQL_URL" FERRY="$ferry" WORK="$work" VENV="$venv" HERE="$here"
export CHAT="$chat" CQL_HOST="$cql_host" CQL_PORT="$cql_port" CQL_USER="$cql_user" CQL_PW="$cql_pw"
method_ferry_1to1() {  # room_message copied one to one (names kept), then verified
  "$FERRY" copy --from "$PG" --to "$CQL" --table room_message --create-tables --workers 4 \
    --control "sqlite:$WORK/control-1to1.db" -q
}
method_ferry_verify() {
  "$FERRY" verify --from "$PG" --to "$CQL" --table room_message -q
}
export -f method_ferry_1to1 method_ferry_verify
run seed_migrator method_seed_migrator
run cqlsh_copy method_cqlsh_copy
run ferry_w2 method_ferry 2
run ferry_w4 method_ferry 4
# Verify needs the same table and column names on both sides: a 1:1 copy of
# room_message into the URL's keyspace, then ferry verify of all its rows.
cqlsh_q -e "DROP TABLE IF EXISTS $cql_keyspace.room_message" >/dev/null
CHECK_TABLE="$cql_keyspace.room_message" KEEP_TARGET=1 run ferry_1to1 method_ferry_1to1
CHECK_TABLE="$cql_keyspace.room_message" KEEP_TARGET=1 run ferry_verify method_ferry_verify

python3 - "$results" "$messages" <<'PY'
import sys
rows = int(sys.argv[2])
res = {}
for line in open(sys.argv[1]):
    name, secs, rss = line.split("\t")
    res[name] = (float(secs), int(rss))
def rate_of(name):
    return rows / res[name][0] if name in res else None
seed, cqlsh = rate_of("seed_migrator"), rate_of("cqlsh_copy")
print(f"cql-copy-bench: {rows:,} chat messages, PostgreSQL -> Cassandra (messages_by_room)")
print(f"{'method':<14} {'seconds':>8} {'rows/s':>9} {'peak RSS':>10} {'vs seed':>8} {'vs cqlsh':>9}")
for name, (secs, rss) in res.items():
    rate = rows / secs
    vs_seed = f"{rate / seed:.2f}x" if seed else "-"
    vs_cqlsh = f"{rate / cqlsh:.2f}x" if cqlsh else "-"
    print(f"{name:<14} {secs:>8.2f} {rate:>9,.0f} {rss/1024:>8.1f}MB {vs_seed:>8} {vs_cqlsh:>9}")
if "ferry_1to1" in res and "ferry_verify" in res:
    print(f"verify / copy time (same table, 1:1): {res['ferry_verify'][0] / res['ferry_1to1'][0]:.2f}")
PY
