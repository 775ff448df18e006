#!/usr/bin/env bash
# How close `ferry status` can get to dbmate: ferry status (memo), dbmate
# status, and two C programs built on libpq (connect + one history query; load
# libpq and exit), interleaved, on one throw-away server with N migrations
# applied by each tool. Prints a Markdown table of medians. Not a test.
#
#   bash bench/status-floor.sh [--n 500] [--rounds 60]
#
# Environment: FERRY=path (default build/ferry, else build-*/ferry).
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(cd -- "$here/.." && pwd -P)"
n=500 rounds=60
while (($#)); do
  case "$1" in
    --n) n="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -h | --help) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "status-floor: unknown argument $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
ferry="$(bench_find_ferry "${FERRY:-}")" || exit 1
dbmate="$here/node_modules/@dbmate/linux-x64/bin/dbmate"
[[ -x "$dbmate" ]] || bash "$here/install-peers.sh"
work="$(mktemp -d /tmp/ferry-status-floor.XXXXXX)"
chmod 755 "$work"  # the test servers run as another user
"$root/scripts/test-servers.sh" start "$work/servers" >/dev/null
trap '"$root/scripts/test-servers.sh" stop "$work/servers" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# shellcheck disable=SC1091
source "$work/servers/env"
base="${FERRY_TEST_PG_URL%/*}"
gcc -O2 "$here/status_floor.c" -I"$(pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)" \
  -I/usr/include/postgresql -lpq -o "$work/floor"
python3 "$here/gen-migrations.py" "$n" "$work/f" ferry >/dev/null
python3 "$here/gen-migrations.py" "$n" "$work/d" dbmate >/dev/null
psql -X -q "$FERRY_TEST_PG_URL" -c "CREATE DATABASE floor_ferry" -c "CREATE DATABASE floor_dbmate"
export FERRY_CACHE_DIR="$work/cache"
"$ferry" --database "$base/floor_ferry?sslmode=disable" --dir "$work/f" up >/dev/null 2>&1
"$dbmate" --url "$base/floor_dbmate?sslmode=disable" --migrations-dir "$work/d" --no-dump-schema up >/dev/null
"$ferry" --database "$base/floor_ferry?sslmode=disable" --dir "$work/f" status >/dev/null  # writes the memo
python3 - "$rounds" "$ferry" "$dbmate" "$work" "$base" <<'PY'
import statistics, subprocess, sys, time
rounds, ferry, dbmate, work, base = int(sys.argv[1]), *sys.argv[2:]
cmds = {
    "ferry status (memo)": [ferry, "--database", f"{base}/floor_ferry?sslmode=disable", "--dir", f"{work}/f", "status"],
    "dbmate status": [dbmate, "--url", f"{base}/floor_dbmate?sslmode=disable", "--migrations-dir", f"{work}/d", "status"],
    "C: libpq connect + one history query": [f"{work}/floor", f"{base}/floor_ferry?sslmode=disable"],
    "C: load libpq, exit": [f"{work}/floor"],
    "ferry --version": [ferry, "--version"],
}
res = {k: [] for k in cmds}
for _ in range(rounds):
    for k, argv in cmds.items():
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        res[k].append(time.perf_counter() - t)
dm = statistics.median(res["dbmate status"])
print("| program | median ms | min ms | vs dbmate |\n|---|--:|--:|--:|")
for k, v in res.items():
    print(f"| {k} | {statistics.median(v) * 1000:.1f} | {min(v) * 1000:.1f} | {statistics.median(v) / dm:.2f}x |")
PY
