#!/usr/bin/env bash
# Backfill benchmark (not a test): one table of N rows (default 5,000,000),
# seed 001's email-verification backfill done five ways, side by side, each
# on an identical fresh copy of the table (CREATE DATABASE ... TEMPLATE), with
# one concurrent writer doing single-row UPDATEs on random rows throughout:
#
#   seed-loop     seed 001's PL/pgSQL DO block: UPDATE ... WHERE id IN
#                 (SELECT id ... WHERE v2 IS NULL LIMIT 10000) until no rows
#                 are left (its pg_sleep(0.1) removed)
#   keyset-loop   a client-side keyset loop (Python + psycopg2): windows of
#                 10,000 ids, one autocommit UPDATE per window
#   single-update one UPDATE of the whole table
#   ferry w1/w2   ferry backfill --workers 1 / 2 (defaults: adaptive batches
#                 aiming at about 100 ms, 200 ms ceiling; one worker walks
#                 heap page ranges by ctid on PostgreSQL 14+, two workers
#                 primary-key ranges)
#   ferry w1 key  ferry backfill --workers 1 --by key (primary-key ranges)
#
# Reported per method: wall time, rows/s and ratio to the seed loop, the
# longest single statement (for the DO block and the single UPDATE that is
# the whole run: one statement, one transaction), and the writer's p50/p99/
# max latency and statement count during the run (plus an idle baseline).
#
#   bash bench/backfill-bench.sh [--rows N] [--ferry PATH] [--url POSTGRES_URL]
#                                [--only METHOD[,METHOD...]] [--json FILE]
#
# Without --url it starts throw-away servers with scripts/test-servers.sh and
# stops them at the end. Needs python3-psycopg2 (Debian; installed when
# missing) and a built ferry (default: build/ferry, else build-*/ferry).
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(dirname -- "$here")"
log() { printf 'backfill-bench: %s\n' "$*" >&2; }

rows=5000000
ferry=""
url=""
only=""
json_out=""
while (($#)); do
  case "$1" in
    --rows) rows="$2"; shift 2 ;;
    --ferry) ferry="$2"; shift 2 ;;
    --url) url="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --json) json_out="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) log "unknown argument $1 (see --help)"; exit 2 ;;
  esac
done

# shellcheck source=bench/lib.sh
source "$here/lib.sh"
ferry="$(bench_find_ferry "$ferry")" || exit 1

py=/usr/bin/python3
if ! "$py" -c 'import psycopg2' 2>/dev/null; then
  log "installing python3-psycopg2 (Debian)"
  sudo_cmd=(); [[ "$(id -u)" != 0 ]] && sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq python3-psycopg2 >/dev/null ||
    { "${sudo_cmd[@]}" apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq python3-psycopg2 >/dev/null; }
fi

servers=""
cleanup() { if [[ -n "$servers" ]]; then "$root/scripts/test-servers.sh" stop "$servers" >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT
if [[ -z "$url" ]]; then
  servers="$(mktemp -d /tmp/ferry-backfill-bench.XXXXXX)"
  rmdir "$servers"
  "$root/scripts/test-servers.sh" start "$servers" >/dev/null
  # shellcheck disable=SC1091
  source "$servers/env"
  url="$FERRY_TEST_PG_URL"
fi

export BENCH_URL="$url" BENCH_ROWS="$rows" BENCH_FERRY="$ferry" BENCH_ONLY="$only" BENCH_JSON="$json_out"
exec "$py" - <<'PY'
import json, os, random, subprocess, threading, time
import psycopg2

URL = os.environ["BENCH_URL"]
ROWS = int(os.environ["BENCH_ROWS"])
FERRY = os.environ["BENCH_FERRY"]
ONLY = [m for m in os.environ.get("BENCH_ONLY", "").split(",") if m]
JSON_OUT = os.environ.get("BENCH_JSON", "")

def db_url(name):
    base, _, rest = URL.rpartition("/")
    query = rest.partition("?")[2]
    return base + "/" + name + ("?" + query if query else "")

def log(msg):
    print("backfill-bench: " + msg, flush=True, file=os.sys.stderr)

def admin():
    c = psycopg2.connect(URL)
    c.autocommit = True
    return c

SET = ("email_verified_v2 = email_verified, verification_token_v2 = verification_token, "
       "verified_at_v2 = CASE WHEN email_verified THEN created_at ELSE NULL END")
NOT_DONE = "email_verified_v2 IS NULL"

def build_template():
    a = admin()
    cur = a.cursor()
    cur.execute("SELECT 1 FROM pg_database WHERE datname = 'bf_template'")
    if cur.fetchone():
        t = psycopg2.connect(db_url("bf_template"))
        n = t.cursor()
        n.execute("SELECT count(*) FROM users")
        have = n.fetchone()[0]
        t.close()
        if have == ROWS:
            log(f"template bf_template with {ROWS:,} rows exists")
            return
        cur.execute("DROP DATABASE bf_template")
    log(f"building template bf_template with {ROWS:,} rows")
    cur.execute("CREATE DATABASE bf_template")
    t = psycopg2.connect(db_url("bf_template"))
    t.autocommit = True
    c = t.cursor()
    c.execute("""CREATE TABLE users (
        id bigint PRIMARY KEY, email text NOT NULL, email_verified boolean NOT NULL,
        verification_token text, created_at timestamptz NOT NULL, touched int NOT NULL DEFAULT 0,
        email_verified_v2 boolean, verification_token_v2 text, verified_at_v2 timestamptz)""")
    c.execute("""INSERT INTO users (id, email, email_verified, verification_token, created_at)
        SELECT g, 'user' || g || '@example.com', g %% 3 = 0, md5(g::text),
               timestamptz '2024-01-01' + g * interval '1 second'
        FROM generate_series(1, %s) g""", (ROWS,))
    c.execute("VACUUM (ANALYZE, FREEZE) users")
    c.execute("CHECKPOINT")
    t.close()

def fresh_copy():
    a = admin()
    cur = a.cursor()
    cur.execute("DROP DATABASE IF EXISTS bf_run")
    cur.execute("CREATE DATABASE bf_run TEMPLATE bf_template")
    cur.execute("CHECKPOINT")
    a.close()
    return db_url("bf_run")

class Writer(threading.Thread):
    """One application connection: single-row UPDATEs on random rows, back to back."""
    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stop, self.lat = url, threading.Event(), []
    def run(self):
        c = psycopg2.connect(self.url)
        c.autocommit = True
        cur = c.cursor()
        rnd = random.Random(7)
        while not self.stop.is_set():
            t0 = time.perf_counter()
            cur.execute("UPDATE users SET touched = touched + 1 WHERE id = %s", (rnd.randint(1, ROWS),))
            self.lat.append((time.perf_counter() - t0) * 1000)
        c.close()
    def summary(self):
        lat = sorted(self.lat)
        if not lat:
            return {"count": 0}
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
        return {"count": len(lat), "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": lat[-1]}

def seed_loop(url):
    c = psycopg2.connect(url); c.autocommit = True
    t0 = time.perf_counter()
    c.cursor().execute(f"""
DO $$
DECLARE
    batch_size INTEGER := 10000;
    processed INTEGER := 0;
    total_rows INTEGER;
BEGIN
    SELECT COUNT(*) INTO total_rows FROM users WHERE email_verified_v2 IS NULL;
    WHILE EXISTS (SELECT 1 FROM users WHERE email_verified_v2 IS NULL LIMIT 1) LOOP
        UPDATE users SET {SET}
        WHERE id IN (SELECT id FROM users WHERE email_verified_v2 IS NULL LIMIT batch_size);
        processed := processed + batch_size;
    END LOOP;
END $$""")
    ms = (time.perf_counter() - t0) * 1000
    c.close()
    return {"longest_statement_ms": ms, "statements": 1}

def keyset_loop(url):
    c = psycopg2.connect(url); c.autocommit = True
    cur = c.cursor()
    last, longest, n = 0, 0.0, 0
    while True:
        t0 = time.perf_counter()
        cur.execute("SELECT max(id) FROM (SELECT id FROM users WHERE id > %s ORDER BY id LIMIT 10000) w", (last,))
        upper = cur.fetchone()[0]
        if upper is None:
            break
        cur.execute(f"UPDATE users SET {SET} WHERE id > %s AND id <= %s AND {NOT_DONE}", (last, upper))
        longest = max(longest, (time.perf_counter() - t0) * 1000)
        last, n = upper, n + 1
    c.close()
    return {"longest_statement_ms": longest, "statements": n}

def single_update(url):
    c = psycopg2.connect(url); c.autocommit = True
    t0 = time.perf_counter()
    c.cursor().execute(f"UPDATE users SET {SET} WHERE {NOT_DONE}")
    ms = (time.perf_counter() - t0) * 1000
    c.close()
    return {"longest_statement_ms": ms, "statements": 1}

def ferry(workers, by="auto"):
    def run(url):
        p = subprocess.run([FERRY, "backfill", "--database", url, "--table", "users", "--set", SET,
                            "--where", NOT_DONE, "--workers", str(workers), "--by", by, "--json"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"ferry exited {p.returncode}: {p.stderr[-2000:]}")
        lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        rep = lines[-1]["report"]
        batches = [l["batch_ms"] for l in lines if l.get("event") == "batch"]
        over = sum(1 for b in batches if b > 200)
        return {"longest_statement_ms": rep["longest_batch_ms"], "statements": rep["batches"],
                "batches_over_200ms": over, "retries": rep["retries"],
                "final_batch_rows": rep["final_batch_rows"], "scan": rep.get("scan", "key")}
    return run

METHODS = [("seed-loop", seed_loop), ("keyset-loop", keyset_loop), ("single-update", single_update),
           ("ferry w1", ferry(1)), ("ferry w1 key", ferry(1, "key")), ("ferry w2", ferry(2))]

def remaining(url):
    c = psycopg2.connect(url)
    cur = c.cursor()
    cur.execute(f"SELECT count(*) FROM users WHERE {NOT_DONE}")
    n = cur.fetchone()[0]
    c.close()
    return n

def main():
    build_template()
    results = {}
    # Idle baseline: the writer alone for 5 s.
    url = fresh_copy()
    w = Writer(url); w.start(); time.sleep(5); w.stop.set(); w.join()
    results["writer alone"] = {"writer": w.summary()}
    for name, fn in METHODS:
        if ONLY and name.replace(" ", "") not in [o.replace(" ", "") for o in ONLY]:
            continue
        url = fresh_copy()
        log(f"{name}: running on a fresh copy of {ROWS:,} rows")
        w = Writer(url); w.start(); time.sleep(1)
        t0 = time.perf_counter()
        r = fn(url)
        wall = time.perf_counter() - t0
        time.sleep(0.5)
        w.stop.set(); w.join()
        left = remaining(url)
        r.update({"wall_s": wall, "rows_per_s": ROWS / wall, "remaining": left, "writer": w.summary()})
        results[name] = r
        log(f"{name}: {wall:.1f} s, {ROWS / wall:,.0f} rows/s, longest statement "
            f"{r['longest_statement_ms']:,.0f} ms, writer p99 {r['writer'].get('p99_ms', 0):.1f} ms, "
            f"remaining {left}")
    admin().cursor().execute("DROP DATABASE IF EXISTS bf_run")

    base = results.get("seed-loop", {}).get("rows_per_s")
    print(f"| method | wall s | rows/s | vs seed loop | longest statement ms | statements | "
          f"writer p50 ms | writer p99 ms | writer max ms | writer stmts |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for name, r in results.items():
        wr = r["writer"]
        if "wall_s" not in r:
            print(f"| {name} (5 s, no backfill) | | | | | | {wr.get('p50_ms', 0):.2f} | "
                  f"{wr.get('p99_ms', 0):.2f} | {wr.get('max_ms', 0):.1f} | {wr['count']:,} |")
            continue
        ratio = f"{r['rows_per_s'] / base:.2f}x" if base else ""
        print(f"| {name} | {r['wall_s']:.1f} | {r['rows_per_s']:,.0f} | {ratio} | "
              f"{r['longest_statement_ms']:,.0f} | {r['statements']:,} | {wr.get('p50_ms', 0):.2f} | "
              f"{wr.get('p99_ms', 0):.2f} | {wr.get('max_ms', 0):,.1f} | {wr['count']:,} |")
    for name, r in results.items():
        if "batches_over_200ms" in r:
            print(f"\n{name} (by {r['scan']}): {r['batches_over_200ms']} batch(es) over 200 ms of {r['statements']:,}, "
                  f"{r['retries']} retries, final batch size {r['final_batch_rows']:,} rows")
    if JSON_OUT:
        with open(JSON_OUT, "w") as f:
            json.dump({"rows": ROWS, "results": results}, f, indent=1)

main()
PY
