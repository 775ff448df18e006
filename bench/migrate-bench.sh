#!/usr/bin/env bash
# ferry vs dbmate, node-pg-migrate, sql-migrate and `psql -1 -f`: applying N
# generated migrations to an empty PostgreSQL database, `status` with N
# applied, and ferry `status` with SMALL vs BIG applied. Writes
# bench/RESULTS.md (and bench/results.json with every run). A benchmark, not a
# test: it never fails on a missed goal, only on a broken run.
#
#   bash bench/migrate-bench.sh [--runs R] [--status-runs S] [--n N]
#                               [--small A] [--big B] [--out FILE.md]
#
#   --runs R         apply rounds per tool, each on a fresh database (default 5)
#   --status-runs S  status rounds per tool after 1 warm-up (default 15)
#   --n N            migrations for the apply / status comparison (default 500)
#   --small A --big B  ferry status scaling test sizes (default 100, 10000)
#   --out FILE.md    report path (default bench/RESULTS.md)
#   --durable        also repeat the apply rounds with fsync = on and
#                    synchronous_commit = on (the test server has both off)
#
# Environment: FERRY=path uses that ferry binary instead of building
# build-bench (Release). BENCH_KEEP=1 keeps the work directory and servers.
#
# Needs the peers: bash bench/install-peers.sh (run automatically when missing).
set -euo pipefail

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(cd -- "$here/.." && pwd -P)"
log() { printf 'migrate-bench: %s\n' "$*" >&2; }
die() { printf 'migrate-bench: ERROR: %s\n' "$*" >&2; exit 1; }

runs=5 status_runs=15 n=500 small=100 big=10000 out="$here/RESULTS.md" durable=()
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --status-runs) status_runs="$2"; shift 2 ;;
    --n) n="$2"; shift 2 ;;
    --small) small="$2"; shift 2 ;;
    --big) big="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --durable) durable=(--durable); shift ;;
    -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
for v in "$runs" "$status_runs" "$n" "$small" "$big"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "counts must be positive integers (got '$v')"
done

# ---- tools -----------------------------------------------------------------
dbmate="$here/node_modules/@dbmate/linux-x64/bin/dbmate"
npm_cli="$here/node_modules/node-pg-migrate/bin/node-pg-migrate.js"
if ! command -v sql-migrate >/dev/null || ! command -v hyperfine >/dev/null ||
    [[ ! -x "$dbmate" || ! -f "$npm_cli" ]]; then
  log "peers missing: running bench/install-peers.sh"
  bash "$here/install-peers.sh"
fi
command -v psql >/dev/null || die "psql not found (scripts/install-deps.sh)"

if [[ -n "${FERRY:-}" ]]; then
  ferry="$FERRY"
else
  build="$root/build-bench"
  if [[ ! -f "$build/build.ninja" ]]; then
    log "configuring $build (Release)"
    cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFERRY_BUILD_TESTS=OFF >/dev/null
  fi
  log "building ferry (Release, -j2)"
  ninja -C "$build" -j2 ferry >/dev/null
  ferry="$build/ferry"
fi
[[ -x "$ferry" ]] || die "no ferry binary at $ferry"

# ---- work dir and server ----------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")"
chmod 755 "$work"
cleanup() {
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
    log "kept $work (stop with: scripts/test-servers.sh stop $work/srv)"
    return
  fi
  if [[ -d "$work/srv" ]]; then bash "$root/scripts/test-servers.sh" stop "$work/srv" >/dev/null 2>&1 || true; fi
  rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$root/scripts/test-servers.sh" start "$work/srv" >/dev/null
# shellcheck source=/dev/null
source "$work/srv/env"

log "generating migrations in $work/m"
for tool in ferry dbmate sql-migrate node-pg-migrate psql; do
  python3 "$here/gen-migrations.py" "$n" "$work/m/$tool" "$tool"
done
python3 "$here/gen-migrations.py" "$small" "$work/m/ferry-$small" ferry
python3 "$here/gen-migrations.py" "$big" "$work/m/ferry-$big" ferry

versions="$(python3 - "$ferry" "$dbmate" "$here" <<'EOF'
import json, subprocess, sys
ferry, dbmate, here = sys.argv[1:]
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"
npm = json.load(open(f"{here}/node_modules/node-pg-migrate/package.json"))["version"]
pg = json.load(open(f"{here}/node_modules/pg/package.json"))["version"]
print(json.dumps({
    "ferry": out(ferry, "version").replace("ferry ", "") + " (Release build)",
    "dbmate": out(dbmate, "--version").replace("dbmate version ", ""),
    "node-pg-migrate": f"{npm} (pg {pg}, node {out('node', '--version')})",
    "sql-migrate": "Debian " + out("dpkg-query", "-W", "-f=${Version}", "sql-migrate"),
    "psql": out("psql", "--version").replace("psql (PostgreSQL) ", ""),
}))
EOF
)"

cmdline="bash bench/migrate-bench.sh"
[[ "$runs" != 5 ]] && cmdline+=" --runs $runs"
[[ "$status_runs" != 15 ]] && cmdline+=" --status-runs $status_runs"
[[ "$n" != 500 ]] && cmdline+=" --n $n"
[[ "$small" != 100 ]] && cmdline+=" --small $small"
[[ "$big" != 10000 ]] && cmdline+=" --big $big"
((${#durable[@]})) && cmdline+=" --durable"

python3 "$here/run_bench.py" --port "$FERRY_TEST_PG_PORT" --work "$work" --pg-pid-file "$work/srv/pg/postmaster.pid" --ferry "$ferry" \
  --dbmate "$dbmate" --node-pg-migrate "$npm_cli" --runs "$runs" --status-runs "$status_runs" \
  --n "$n" --small "$small" --big "$big" "${durable[@]}" --versions "$versions" --command "$cmdline" \
  --json-out "$(dirname "$out")/results.json" --md-out "$out"
log "wrote $out"
