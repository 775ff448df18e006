#!/usr/bin/env bash
# ferry verify vs dump-and-diff: two PostgreSQL tables of ROWS mixed-type
# rows (in two databases of one throw-away server) that differ in exactly 200
# planted rows (80 changed, including the first and the last row and NULL vs
# empty string; 60 missing on the target; 60 extra on the target). Measures
# the time to the complete list of differing keys, checks that each tool
# finds exactly the planted 200, and the bytes that crossed the link.
#
#   bash bench/verify-bench.sh [--rows N] [--keep]
#
#   --rows N   rows per table (default 5000000)
#   --keep     keep the servers and work directory (printed at the end)
#
# Environment: FERRY=path to the ferry binary (default: build-bench/ferry,
# else build-verify/ferry, else build/ferry).
# A benchmark, not a test: it reports figures; it fails only on a broken run.
set -euo pipefail

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(cd -- "$here/.." && pwd -P)"
log() { printf 'verify-bench: %s\n' "$*" >&2; }
die() { printf 'verify-bench: ERROR: %s\n' "$*" >&2; exit 1; }

rows=5000000 keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) rows="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) die "unknown argument $1" ;;
  esac
done

ferry="${FERRY:-}"
if [[ -z "$ferry" ]]; then
  for cand in "$root/build-bench/ferry" "$root/build-verify/ferry" "$root/build/ferry"; do
    if [[ -x "$cand" ]]; then ferry="$cand"; break; fi
  done
fi
[[ -x "$ferry" ]] || die "no ferry binary; build one (scripts/build.sh) or set FERRY=path"

work="$(mktemp -d /tmp/ferry-verify-bench.XXXXXX)"
chmod 755 "$work"  # the server user must reach the data directory
servers="$work/servers"
cleanup() {
  if [[ $keep == 1 ]]; then
    log "kept $work (stop servers: scripts/test-servers.sh stop $servers)"
  else
    "$root/scripts/test-servers.sh" stop "$servers" >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
}
trap cleanup EXIT
"$root/scripts/test-servers.sh" start "$servers" >/dev/null
# shellcheck disable=SC1091
source "$servers/env"
psql=("$FERRY_TEST_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$FERRY_TEST_PG_PORT" -U postgres)
src_url="postgres://postgres@127.0.0.1:$FERRY_TEST_PG_PORT/vb_src"
dst_url="postgres://postgres@127.0.0.1:$FERRY_TEST_PG_PORT/vb_dst"
"${psql[@]}" -d ferry_test -c "CREATE DATABASE vb_src" -c "CREATE DATABASE vb_dst"

table_sql="CREATE TABLE bench_items (
  id bigint PRIMARY KEY, name text NOT NULL, note text, price numeric(12,2),
  weight double precision, ok boolean, created timestamptz, payload bytea,
  tags text[], qty integer);
INSERT INTO bench_items
SELECT g, 'item-' || g, CASE WHEN g % 5 = 0 THEN NULL ELSE md5(g::text) END,
       (g % 100000) * 0.01, g / 7.0, g % 3 = 0,
       timestamptz '2020-01-01 00:00:00+00' + g * interval '1 second',
       decode(lpad(to_hex(g), 16, '0'), 'hex'), ARRAY['t' || (g % 10), 'u'], g % 1000
  FROM generate_series(1, $rows) g;"
log "loading $rows rows into each database"
t0=$(date +%s.%N)
"${psql[@]}" -d vb_src -c "$table_sql" &
"${psql[@]}" -d vb_dst -c "$table_sql" &
wait
log "loaded in $(echo "$(date +%s.%N) - $t0" | bc) s"

# 80 changed (first row, last row, 20 NULL -> '' notes, names, prices),
# 60 missing on the target, 60 extra on the target (30 deleted from the
# source in the middle, 30 appended to the target after the end).
python3 - "$rows" "$work" <<'EOF'
import sys
rows, work = int(sys.argv[1]), sys.argv[2]
used, expected = set(), []
def pick(i, n, offset):
    k = (i + 1) * (rows // (n + 1)) + offset
    while k in used or k < 2 or k >= rows:
        k += 1
    used.add(k)
    return k
dst, src = [], []
for k in (1, rows):
    used.add(k)
    dst.append(f"UPDATE bench_items SET qty = qty + 1 WHERE id = {k};")
    expected.append(("changed", k))
for i in range(20):  # NULL on the source, '' on the target
    k = pick(i, 20, 0)
    k += (5 - k % 5) % 5
    while k in used: k += 5
    used.add(k)
    dst.append(f"UPDATE bench_items SET note = '' WHERE id = {k};")
    expected.append(("changed", k))
for i in range(29):
    k = pick(i, 29, 7)
    dst.append(f"UPDATE bench_items SET name = name || '!' WHERE id = {k};")
    expected.append(("changed", k))
for i in range(29):
    k = pick(i, 29, 11)
    dst.append(f"UPDATE bench_items SET price = price + 0.01 WHERE id = {k};")
    expected.append(("changed", k))
for i in range(60):
    k = pick(i, 60, 13)
    dst.append(f"DELETE FROM bench_items WHERE id = {k};")
    expected.append(("missing", k))
for i in range(30):
    k = pick(i, 30, 17)
    src.append(f"DELETE FROM bench_items WHERE id = {k};")
    expected.append(("extra", k))
for i in range(30):
    k = rows + 1 + i * 13
    dst.append(f"INSERT INTO bench_items (id, name) VALUES ({k}, 'late-{k}');")
    expected.append(("extra", k))
assert len(expected) == 200 and len({k for _, k in expected}) == 200
open(f"{work}/plant_dst.sql", "w").write("\n".join(dst) + "\n")
open(f"{work}/plant_src.sql", "w").write("\n".join(src) + "\n")
open(f"{work}/expected.txt", "w").write("\n".join(f"{kind} {k}" for kind, k in sorted(expected, key=lambda e: e[1])) + "\n")
EOF
"${psql[@]}" -d vb_dst -f "$work/plant_dst.sql"
"${psql[@]}" -d vb_src -f "$work/plant_src.sql"
"${psql[@]}" -d vb_src -c "VACUUM ANALYZE bench_items" &
"${psql[@]}" -d vb_dst -c "VACUUM ANALYZE bench_items" &
wait
table_bytes=$("${psql[@]}" -At -d vb_src -c "SELECT pg_total_relation_size('bench_items')")
log "table: $table_bytes bytes on disk per side"

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

# Checks a "kind key" list against the planted one; prints "exact" or what differs.
check() {
  if diff -q <(sort "$1") <(sort "$work/expected.txt") >/dev/null; then
    echo "exact (200 of 200)"
  else
    echo "NOT exact: $(comm -3 <(sort "$1") <(sort "$work/expected.txt") | wc -l) lines differ"
  fi
}

run_ferry() {  # label, extra flags...
  local label="$1"; shift
  local t0 t1
  t0=$(now)
  set +e
  "$ferry" verify --from "$src_url" --to "$dst_url" --table bench_items --max-report 1000 --json "$@" \
    > "$work/ferry-$label.json"
  local rc=$?
  set -e
  t1=$(now)
  [[ $rc == 10 ]] || die "ferry verify ($label) exited $rc, expected 10"
  python3 - "$work/ferry-$label.json" > "$work/ferry-$label.txt" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
for d in j["tables"][0]["differences"]:
    print(d["kind"], d["key"]["id"])
EOF
  local bytes
  bytes=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['summary']['bytes_transferred'])" "$work/ferry-$label.json")
  printf '%s\t%s\t%s\t%s\n' "$label" "$(elapsed "$t0" "$t1")" "$bytes" "$(check "$work/ferry-$label.txt")"
}

run_dump_diff() {
  local t0 t1
  t0=$(now)
  "${psql[@]}" -d vb_src -c "COPY (SELECT * FROM bench_items ORDER BY id) TO STDOUT" > "$work/src.tsv" &
  "${psql[@]}" -d vb_dst -c "COPY (SELECT * FROM bench_items ORDER BY id) TO STDOUT" > "$work/dst.tsv" &
  wait
  set +e
  diff "$work/src.tsv" "$work/dst.tsv" > "$work/diff.txt"
  set -e
  # The list: keys only on the left are missing, only on the right extra, both changed.
  python3 - "$work/diff.txt" > "$work/dump.txt" <<'EOF'
import sys
left, right = set(), set()
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    if line.startswith("< "): left.add(int(line[2:].split("\t", 1)[0]))
    elif line.startswith("> "): right.add(int(line[2:].split("\t", 1)[0]))
for k in sorted(left | right):
    print("changed" if k in left and k in right else "missing" if k in left else "extra", k)
EOF
  t1=$(now)
  local bytes=$(( $(stat -c %s "$work/src.tsv") + $(stat -c %s "$work/dst.tsv") ))
  printf '%s\t%s\t%s\t%s\n' "dump-and-diff" "$(elapsed "$t0" "$t1")" "$bytes" "$(check "$work/dump.txt")"
  rm -f "$work/src.tsv" "$work/dst.tsv"
}

log "running (each tool twice; the second run is reported, the first warms the cache)"
results="$work/results.tsv"
: > "$results"
run_dump_diff >/dev/null
run_dump_diff >> "$results"
run_ferry workers2 --workers 2 >/dev/null
run_ferry workers2 --workers 2 >> "$results"
run_ferry workers1 --workers 1 >> "$results"

dump_s=$(awk -F'\t' '$1=="dump-and-diff"{print $2}' "$results")
echo
echo "verify of $rows rows x 2 tables, 200 planted differences; table $table_bytes bytes on disk per side"
printf '%-16s %10s %10s %14s %10s  %s\n' tool seconds "vs dump" "link bytes" "of table" exactness
while IFS=$'\t' read -r label secs bytes exact; do
  printf '%-16s %10.2f %9.2fx %14s %9.3f%%  %s\n' "$label" "$secs" "$(echo "$dump_s / $secs" | bc -l)" \
    "$bytes" "$(echo "100 * $bytes / (2 * $table_bytes)" | bc -l)" "$exact"
done < "$results"
echo "(vs dump: dump-and-diff seconds / tool seconds, higher is faster; link bytes: payload"
echo " that crossed both links; of table: link bytes / both tables' size on disk)"
