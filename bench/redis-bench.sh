#!/usr/bin/env bash
# Redis copy benchmark (not a test). N keys of mixed types (default
# 1,000,000; 30% with a TTL) on one standalone Redis, copied side by side in
# one run:
#
#   standalone -> standalone (the second server, emptied before each method)
#     seed        the seed's algorithm in Python: SCAN 100 + TTL/DUMP and
#                 RESTORE pipelines (bench/redis_peers.py seed)
#     migrate     MIGRATE ... COPY REPLACE KEYS per SCAN page of 1000
#     ferry       ferry redis copy
#   standalone -> the 3-master cluster (emptied before each method)
#     cli_import  redis-cli --cluster import --cluster-copy --cluster-replace
#     ferry_cl    ferry redis copy into redis+cluster://
#   slot moves on the cluster now holding N keys (a third of all slots,
#   5461, from the first master to the second, then the same back):
#     ferry_move  ferry redis cluster move-slots
#     cli_reshard redis-cli --cluster reshard --cluster-from/--cluster-to
#
# Reported: wall seconds, keys/s, peak RSS (/usr/bin/time), ratios, and a
# check that every target holds N keys.
#
#   bash bench/redis-bench.sh [--keys N] [--ferry PATH] [--python PATH]
#
# Needs Python with the `redis` package (pip install redis; --python points
# at a venv's python). Servers come from scripts/test-servers.sh.
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(dirname -- "$here")"
log() { printf 'redis-bench: %s\n' "$*" >&2; }

keys=1000000
ferry=""
python="python3"
while (($#)); do
  case "$1" in
    --keys) keys="$2"; shift 2 ;;
    --ferry) ferry="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) log "unknown argument $1 (see --help)"; exit 2 ;;
  esac
done
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
ferry="$(bench_find_ferry "$ferry")" || exit 1
"$python" -c 'import redis' 2>/dev/null || { log "$python lacks the redis package: pip install redis"; exit 1; }
command -v /usr/bin/time >/dev/null || { log "missing /usr/bin/time (apt-get install time)"; exit 1; }

servers="$(mktemp -d /tmp/ferry-redis-bench-srv.XXXXXX)"
rmdir "$servers"
work="$(mktemp -d /tmp/ferry-redis-bench.XXXXXX)"
cleanup() {
  "$root/scripts/test-servers.sh" stop "$servers" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$root/scripts/test-servers.sh" start "$servers" >/dev/null
# shellcheck disable=SC1091
source "$servers/env"
src="$FERRY_TEST_REDIS_URL"
dst="$FERRY_TEST_REDIS2_URL"
cluster="$FERRY_TEST_REDIS_CLUSTER_URL"
port_of() { local u="${1##*:}"; printf '%s\n' "${u%%/*}"; }
masters() { printf '%s\n' "${cluster#redis+cluster://}" | tr ',' '\n'; }

flush_targets() {
  redis-cli -p "$(port_of "$dst")" FLUSHALL >/dev/null
  local m
  for m in $(masters); do redis-cli -p "${m##*:}" FLUSHALL >/dev/null; done
}
count_standalone() { redis-cli -p "$(port_of "$dst")" DBSIZE; }
count_cluster() {
  local m n=0
  for m in $(masters); do n=$((n + $(redis-cli -p "${m##*:}" DBSIZE))); done
  printf '%s\n' "$n"
}

log "generating $keys keys on $src"
"$python" "$here/redis_peers.py" gen "$src" "$keys"
[[ "$(redis-cli -p "$(port_of "$src")" DBSIZE)" == "$keys" ]] || { log "generation failed"; exit 1; }

declare -A secs rss
run() {  # NAME COUNTER CMD...
  local name="$1" counter="$2"
  shift 2
  flush_targets
  log "$name: $*"
  /usr/bin/time -f '%e %M' -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" ||
    { log "$name failed:"; tail -5 "$work/$name.err" >&2; exit 1; }
  read -r secs[$name] rss[$name] <"$work/$name.time"
  local got
  got="$($counter)"
  [[ "$got" == "$keys" ]] || { log "$name: target has $got keys, expected $keys"; exit 1; }
}

run seed count_standalone "$python" "$here/redis_peers.py" seed "$src" "$dst"
run migrate count_standalone "$python" "$here/redis_peers.py" migrate "$src" "$dst"
run ferry count_standalone "$ferry" redis copy --from "$src" --to "$dst" -q --state "$work/state.db"
first="$(masters | head -1)"
run cli_import count_cluster redis-cli --cluster import "$first" --cluster-from "127.0.0.1:$(port_of "$src")" \
  --cluster-copy --cluster-replace
run ferry_cl count_cluster "$ferry" redis copy --from "$src" --to "$cluster" -q --state "$work/state.db"

# Slot moves: master 1 -> master 2 with ferry, then back with redis-cli.
m1="$(masters | sed -n 1p)"
m2="$(masters | sed -n 2p)"
id_of() { redis-cli -p "${1##*:}" CLUSTER MYID; }
id1="$(id_of "$m1")"
id2="$(id_of "$m2")"
move_run() {  # NAME CMD...
  local name="$1"
  shift
  log "$name: $*"
  /usr/bin/time -f '%e %M' -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" </dev/null ||
    { log "$name failed:"; tail -5 "$work/$name.err" >&2; exit 1; }
  read -r secs[$name] rss[$name] <"$work/$name.time"
  [[ "$(count_cluster)" == "$keys" ]] || { log "$name: the cluster lost keys"; exit 1; }
}
move_run ferry_move "$ferry" redis cluster move-slots "$cluster" --from "$m1" --to "$m2" \
  --slots 5461 -q --state "$work/state.db"
move_run cli_reshard redis-cli --cluster reshard "$m1" --cluster-from "$id2" --cluster-to "$id1" \
  --cluster-slots 5461 --cluster-yes

printf 'date: %s  commit: %s  keys: %s  host: %s cores\n' "$(date -u +%FT%TZ)" \
  "$(git -C "$root" rev-parse --short HEAD)" "$keys" "$(nproc)"
printf '%-11s %9s %11s %9s\n' method seconds keys/s rss_kb
for m in seed migrate ferry cli_import ferry_cl ferry_move cli_reshard; do
  printf '%-11s %9s %11.0f %9s\n' "$m" "${secs[$m]}" "$(echo "$keys / ${secs[$m]}" | bc -l)" "${rss[$m]}"
done
ratio() { echo "scale=2; $1 / $2" | bc -l; }
printf 'ferry vs seed %sx, vs migrate %sx; into the cluster ferry vs redis-cli --cluster import %sx\n' \
  "$(ratio "${secs[seed]}" "${secs[ferry]}")" "$(ratio "${secs[migrate]}" "${secs[ferry]}")" \
  "$(ratio "${secs[cli_import]}" "${secs[ferry_cl]}")"
printf 'moving 5461 slots: ferry vs redis-cli --cluster reshard %sx\n' \
  "$(ratio "${secs[cli_reshard]}" "${secs[ferry_move]}")"
