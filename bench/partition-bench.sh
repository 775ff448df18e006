#!/usr/bin/env bash
# Partition maintenance benchmark (not a test): ferry partition maintain vs
# pg_partman 4.7 (Debian's postgresql-15-partman), side by side in one run on
# the same server, one fresh database per tool (issue 20 item 6):
#
#   create   a monthly parent public.events (id identity, created_at
#            timestamptz, payload) with 12 premade partitions:
#            partman.create_parent(..., 'native', 'monthly', p_premake := 12,
#            p_start_partition := this month) + retention in part_config, vs
#            the first `ferry partition maintain` (premake 12)
#   rounds   MONTHS rounds: insert ROWS rows into month m, then
#            partman.run_maintenance('public.events') +
#            partman.drop_partition_time(..., p_reference_timestamp := the
#            15th of month m) vs `ferry partition maintain --now` that date;
#            retention 12 months, pruned partitions dropped. The tools take
#            turns round by round (the order alternates).
#   blocked  the last round runs while a report on month m (a count of its
#            rows) keeps its transaction open for --reader-hold seconds
#            (ACCESS SHARE on the parent and month m's partition)
#   writer   during every round, a separate process per database inserts one
#            row at a time (created_at in month m) at --writer-rate rows/s
#            and times each INSERT; reported: its longest wait and p99 over
#            the statements that started during the tool's maintenance
#   control  a third writer on a third database (a plain table, no
#            maintenance at all), measured over the same windows: the
#            machine's own stalls, to tell lock waits from a busy CPU
#
# Both tools run as a cron job would (a process per call: psql -c, ferry);
# the times include starting it and connecting. At the end both databases
# must hold the same partitions (bounds, DEFAULT aside) or the run fails.
#
#   bash bench/partition-bench.sh [--months 24] [--rows-per-month 20000]
#        [--writer-rate 50] [--lock-timeout 1s] [--reader-hold 5]
#        [--ferry PATH] [--env FILE] [--json FILE]
#
# Starts a throw-away PostgreSQL 15 with scripts/test-servers.sh (or uses the
# server of an env file given with --env FILE, e.g. /tmp/srv/env), installs
# pg_partman and psycopg with bench/install-peers-partman.sh. BENCH_KEEP=1
# keeps the databases and the work directory.
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(dirname -- "$here")"
log() { printf 'partition-bench: %s\n' "$*" >&2; }

months=24 rows=20000 rate=50 lock_timeout=1s hold=5 ferry="" envfile="" json_out=""
while (($#)); do
  case "$1" in
    --months) months="$2"; shift 2 ;;
    --rows-per-month) rows="$2"; shift 2 ;;
    --writer-rate) rate="$2"; shift 2 ;;
    --lock-timeout) lock_timeout="$2"; shift 2 ;;
    --reader-hold) hold="$2"; shift 2 ;;
    --ferry) ferry="$2"; shift 2 ;;
    --env) envfile="$2"; shift 2 ;;
    --json) json_out="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) log "unknown argument $1 (see --help)"; exit 2 ;;
  esac
done
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
ferry="$(bench_find_ferry "$ferry")" || exit 1
command -v psql >/dev/null || { log "missing psql (apt-get install postgresql-client)"; exit 1; }
bash "$here/install-peers-partman.sh"
venv="${FERRY_BENCH_VENV:-$here/.venv-cql}"

servers=""
work="$(mktemp -d /tmp/ferry-partition-bench.XXXXXX)"
cleanup() {
  if [[ -n "$servers" ]]; then "$root/scripts/test-servers.sh" stop "$servers" >/dev/null 2>&1 || true; fi
  if [[ -z "${BENCH_KEEP:-}" ]]; then rm -rf "$work"; else log "kept $work"; fi
}
trap cleanup EXIT
if [[ -z "$envfile" ]]; then
  servers="$(mktemp -d /tmp/ferry-partition-bench-srv.XXXXXX)"
  rmdir "$servers"
  FERRY_TEST_NO_CQL=1 FERRY_TEST_NO_REDIS_EXTRAS=1 "$root/scripts/test-servers.sh" start "$servers" >/dev/null
  envfile="$servers/env"
fi
# shellcheck disable=SC1090
source "$envfile"
: "${FERRY_TEST_PG_URL:?the env file sets no FERRY_TEST_PG_URL}"
export PGTZ=UTC  # month bounds in UTC for psql, pg_partman's date_trunc and the checks

log "$months rounds, $rows rows a month, writer $rate rows/s, lock_timeout $lock_timeout, reader hold ${hold}s"
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$venv/bin/python" "$here/partition_bench.py" run --url "$FERRY_TEST_PG_URL" --ferry "$ferry" \
  --work "$work" --months "$months" --rows-per-month "$rows" --writer-rate "$rate" \
  --lock-timeout "$lock_timeout" --reader-hold "$hold" >"$work/result.json"
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -z "$json_out" ]] || cp "$work/result.json" "$json_out"

python3 - "$work/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p, f = r["tools"]["pg_partman"], r["tools"]["ferry"]
def ms(v): return "-" if v is None else f"{v * 1000:,.0f}"
def ratio(a, b): return "-" if not a or not b else f"{a / b:.2f}x"
n = p["round_count"]
print(f"partition-bench: {r['months']} months from {r['start'][:7]}, {r['rows_per_month']:,} rows a month, "
      f"writer {r['writer_rate']:g} rows/s, lock_timeout {r['lock_timeout']}, "
      f"reader hold {r['reader_hold_s']:g} s in the last round")
print(f"both end with the same {f['partition_count']} partitions: "
      f"{r['partitions'][0].split(chr(39))[1][:7]} .. {r['partitions'][-1].split(chr(39))[1][:7]}")
print()
print("| | pg_partman | ferry | ferry / pg_partman |")
print("|---|--:|--:|--:|")
print(f"| create (12 premade), s | {p['create_s']:.2f} | {f['create_s']:.2f} | {ratio(f['create_s'], p['create_s'])} |")
print(f"| maintenance, {n} rounds, s | {p['rounds_s']:.2f} | {f['rounds_s']:.2f} | {ratio(f['rounds_s'], p['rounds_s'])} |")
print(f"| maintenance, last round with the reader, s | {p['blocked_s']:.2f} | {f['blocked_s']:.2f} | {ratio(f['blocked_s'], p['blocked_s'])} |"
      if p["blocked_s"] is not None else "| maintenance, last round with the reader | - | - | - |")
for key, label in (("writer_rounds", f"{n} rounds"), ("writer_blocked", "last round with the reader")):
    a, b = p[key], f[key]
    print(f"| writer longest wait, {label}, ms | {ms(a['max_s'])} | {ms(b['max_s'])} | {ratio(b['max_s'], a['max_s'])} |")
    print(f"| writer p99, {label}, ms | {ms(a['p99_s'])} | {ms(b['p99_s'])} | {ratio(b['p99_s'], a['p99_s'])} |")
    print(f"| writer statements (errors), {label} | {a['statements']} ({a['errors']}) | {b['statements']} ({b['errors']}) | |")
    ca, cb = p[key.replace("writer", "control")], f[key.replace("writer", "control")]
    print(f"| control writer longest wait (no maintenance), same windows, ms | {ms(ca['max_s'])} | {ms(cb['max_s'])} | |")
print()
lt = r["lock_timeout"]
secs = float(lt[:-2]) / 1000 if lt.endswith("ms") else float(lt.rstrip("s"))
total_p = p["create_s"] + p["rounds_s"] + (p["blocked_s"] or 0)
total_f = f["create_s"] + f["rounds_s"] + (f["blocked_s"] or 0)
worst_f = max([v for v in (f["writer_rounds"]["max_s"], f["writer_blocked"]["max_s"]) if v is not None] or [0])
worst_p = max([v for v in (p["writer_rounds"]["max_s"], p["writer_blocked"]["max_s"]) if v is not None] or [0])
print(f"goal: time <= 1.0x pg_partman (create + all rounds): {ratio(total_f, total_p)} -> "
      f"{'met' if total_f <= total_p else 'missed'}")
print(f"goal: ferry's writer longest wait < lock_timeout {lt}: {worst_f * 1000:,.0f} ms -> "
      f"{'met' if worst_f < secs else 'missed'} (pg_partman's: {worst_p * 1000:,.0f} ms, "
      f"{'over' if worst_p >= secs else 'under'} it)")
for t in ("pg_partman", "ferry"):
    for key in ("writer_rounds", "writer_blocked"):
        if r["tools"][t][key]["errors"]:
            print(f"{t} writer errors ({key}): {r['tools'][t][key]['error_samples']}")
PY
