#!/usr/bin/env bash
# Seed 000's move of a chat application from PostgreSQL to ScyllaDB/Cassandra:
#   PG=postgres://... CQL=cql://user:PASSWORD@host:9042/ops bash run.sh [MESSAGES]
# 1. the PostgreSQL schema (ferry migrations) and generated data,
# 2. the ScyllaDB model (ferry CQL migrations; the history lives in the URL's
#    keyspace, the tables in chat_keyspace),
# 3. a dry run of the copy, then the copy itself with map.toml (resumable:
#    run it again after a crash and it continues from the finished chunks).
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ferry="${FERRY:-ferry}"
messages="${1:-10000}"
: "${PG:?set PG to the PostgreSQL URL}" "${CQL:?set CQL to the CQL URL}"
"$ferry" --database "$PG" --dir "$here/postgres/migrations" up
psql "$PG" -v ON_ERROR_STOP=1 -q -v rooms=$((messages / 100 + 1)) -v messages="$messages" \
  -f "$here/postgres/generate.sql"
"$ferry" --database "$CQL" --dir "$here/cql/migrations" up
tables=(--table room --table room_member --table room_message --table room_message_meta)
"$ferry" copy --from "$PG" --to "$CQL" --map "$here/map.toml" "${tables[@]}" --dry-run
"$ferry" copy --from "$PG" --to "$CQL" --map "$here/map.toml" "${tables[@]}" --workers 4
