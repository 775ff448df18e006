#!/usr/bin/env bash
# CQL schema migrations benchmark (not a test; issue 15 item 10). N generated
# migrations (default 100: CREATE TABLE IF NOT EXISTS, every fifth an ALTER
# TABLE ... ADD instead, with down files) in golang-migrate's layout, which
# ferry reads too, applied to a fresh keyspace on the same Cassandra by
#
#   golang_migrate  migrate -path DIR -database cassandra://... up
#                   (golang-migrate v4.18.3 with its cassandra driver, built
#                   from the Go module proxy into bench/.peers/bin; gocql
#                   waits for schema agreement after each DDL; it records
#                   only the newest version and a dirty flag)
#   ferry           ferry up (lint first, a lightweight-transaction lease,
#                   a history row per migration and per statement, a wait
#                   for schema agreement after each DDL)
#
# then the status with N applied, R runs each (median): `migrate version`
# (golang-migrate's only status) against `ferry status` (every file's state,
# checksums compared). Reported: seconds, ratios ferry / golang-migrate.
#
#   bash bench/cql-migrate-bench.sh [--n N] [--runs R] [--ferry PATH] [--env FILE]
#
# Starts throw-away servers with scripts/test-servers.sh unless --env FILE
# names running ones (their FERRY_TEST_CQL_URL is used).
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(dirname -- "$here")"
log() { printf 'cql-migrate-bench: %s\n' "$*" >&2; }

n=100
runs=7
ferry=""
envfile=""
while (($#)); do
  case "$1" in
    --n) n="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --ferry) ferry="$2"; shift 2 ;;
    --env) envfile="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) log "unknown argument $1 (see --help)"; exit 2 ;;
  esac
done
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
ferry="$(bench_find_ferry "$ferry")" || exit 1
command -v go >/dev/null || { log "missing go (the Go toolchain builds golang-migrate)"; exit 1; }
gm="$here/.peers/bin/migrate"
if [[ ! -x "$gm" ]]; then
  log "building golang-migrate v4.18.3 (cassandra) into $here/.peers/bin"
  GOBIN="$here/.peers/bin" go install -tags cassandra \
    github.com/golang-migrate/migrate/v4/cmd/migrate@v4.18.3
fi
bash "$here/install-peers-cql.sh"
venv="${FERRY_BENCH_VENV:-$here/.venv-cql}"

servers=""
work="$(mktemp -d /tmp/ferry-cql-migrate-bench.XXXXXX)"
cleanup() {
  if [[ -n "$servers" ]]; then "$root/scripts/test-servers.sh" stop "$servers" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
if [[ -z "$envfile" ]]; then
  servers="$(mktemp -d /tmp/ferry-cql-mbench-srv.XXXXXX)"
  rmdir "$servers"
  "$root/scripts/test-servers.sh" start "$servers" >/dev/null
  envfile="$servers/env"
fi
# shellcheck disable=SC1090
source "$envfile"
: "${FERRY_TEST_CQL_URL:?the servers have no Cassandra}"
[[ "$FERRY_TEST_CQL_URL" =~ ^cql://([^:]+):([^@]+)@([^:/]+):([0-9]+)/ ]] ||
  { log "cannot read user, host and port from FERRY_TEST_CQL_URL"; exit 1; }
user="${BASH_REMATCH[1]}" pw="${BASH_REMATCH[2]}" host="${BASH_REMATCH[3]}" port="${BASH_REMATCH[4]}"
cqlsh_q() { "$venv/bin/cqlsh" "$host" "$port" -u "$user" -p "$pw" --request-timeout=120 "$@" 2>/dev/null; }

# The migrations: golang-migrate's layout, .cql contents.
dir="$work/migrations"
mkdir -p "$dir"
for ((i = 1; i <= n; i++)); do
  if ((i % 5 == 0)); then
    printf 'ALTER TABLE t%d ADD c%d text;\n' $((i - 1)) "$i" >"$dir/${i}_alter_t$((i - 1)).up.cql"
    printf 'ALTER TABLE t%d DROP c%d;\n' $((i - 1)) "$i" >"$dir/${i}_alter_t$((i - 1)).down.cql"
  else
    printf 'CREATE TABLE IF NOT EXISTS t%d (id int PRIMARY KEY, v text, n bigint);\n' "$i" \
      >"$dir/${i}_create_t$i.up.cql"
    printf 'DROP TABLE IF EXISTS t%d;\n' "$i" >"$dir/${i}_create_t$i.down.cql"
  fi
done

fresh_keyspace() {
  cqlsh_q -e "DROP KEYSPACE IF EXISTS $1" >/dev/null
  cqlsh_q -e "CREATE KEYSPACE $1 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" >/dev/null
}
now() { date +%s.%N; }
results="$work/results.tsv"
: >"$results"

gm_url="cassandra://$host:$port/bench_gm?username=$user&password=$pw&x-multi-statement=true"
ferry_url="cql://$user:$pw@$host:$port/bench_ferry"

log "golang-migrate: up $n"
fresh_keyspace bench_gm
start="$(now)"
"$gm" -path "$dir" -database "$gm_url" up >"$work/gm-up.out" 2>&1 ||
  { log "golang-migrate up failed:"; cat "$work/gm-up.out" >&2; exit 1; }
printf 'apply\tgolang_migrate\t%s\n' "$(echo "$(now) - $start" | bc)" >>"$results"
"$gm" -path "$dir" -database "$gm_url" version 2>&1 | grep -qx "$n" ||
  { log "golang-migrate is not at version $n"; exit 1; }

log "ferry: up $n"
fresh_keyspace bench_ferry
start="$(now)"
"$ferry" --database "$ferry_url" --dir "$dir" up -q >"$work/ferry-up.out" 2>&1 ||
  { log "ferry up failed:"; cat "$work/ferry-up.out" >&2; exit 1; }
printf 'apply\tferry\t%s\n' "$(echo "$(now) - $start" | bc)" >>"$results"
"$ferry" --database "$ferry_url" --dir "$dir" status --json | python3 -c "
import json, sys
s = json.load(sys.stdin)
assert s['applied'] == $n and s['pending'] == 0, (s['applied'], s['pending'])" ||
  { log "ferry status does not show $n applied"; exit 1; }

for ((r = 1; r <= runs; r++)); do
  start="$(now)"
  "$gm" -path "$dir" -database "$gm_url" version >/dev/null 2>&1
  printf 'status\tgolang_migrate\t%s\n' "$(echo "$(now) - $start" | bc)" >>"$results"
  start="$(now)"
  "$ferry" --database "$ferry_url" --dir "$dir" status >/dev/null
  printf 'status\tferry\t%s\n' "$(echo "$(now) - $start" | bc)" >>"$results"
done
cqlsh_q -e "DROP KEYSPACE IF EXISTS bench_gm" >/dev/null
cqlsh_q -e "DROP KEYSPACE IF EXISTS bench_ferry" >/dev/null

python3 - "$results" "$n" "$runs" <<'PY'
import statistics, sys
res = {}
for line in open(sys.argv[1]):
    what, tool, secs = line.rstrip("\n").split("\t")
    res.setdefault((what, tool), []).append(float(secs))
n, runs = sys.argv[2], sys.argv[3]
apply_gm, apply_f = res[("apply", "golang_migrate")][0], res[("apply", "ferry")][0]
st_gm = statistics.median(res[("status", "golang_migrate")])
st_f = statistics.median(res[("status", "ferry")])
print(f"cql-migrate-bench: {n} CQL migrations on Cassandra, status median of {runs}")
print(f"{'':<22} {'golang-migrate':>15} {'ferry':>10} {'ferry / gm':>11}")
print(f"{'apply ' + n + ' (s)':<22} {apply_gm:>15.2f} {apply_f:>10.2f} {apply_f / apply_gm:>10.2f}x")
print(f"{'status (ms)':<22} {st_gm * 1000:>15.0f} {st_f * 1000:>10.0f} {st_f / st_gm:>10.2f}x")
print("goals: apply <= 1.0x, status <= 0.5x")
PY
