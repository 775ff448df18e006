#!/usr/bin/env python3
"""Driver of bench/partition-bench.sh: ferry partition maintain vs pg_partman.

  partition_bench.py writer URL MONTH_FILE RATE OUT
      The concurrent writer: inserts one row at a time into public.events at
      RATE rows/s (autocommit), created_at inside the month named in
      MONTH_FILE (re-read before every row), and on SIGTERM writes one line
      per statement "start_monotonic latency_seconds ok|error" to OUT.

  partition_bench.py run --url URL --ferry PATH --work DIR [knobs]
      The benchmark: one database per tool, both tools interleaved round by
      round, a writer per database; prints JSON with every number.

A benchmark, not a test: it fails only when a run breaks (a tool exits
non-zero, or the tools end with different partitions).
"""
import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import psycopg
from psycopg import sql

PARENT_DDL = ("CREATE TABLE public.events (id bigint GENERATED ALWAYS AS IDENTITY, "
              "created_at timestamptz NOT NULL, payload text) PARTITION BY RANGE (created_at)")
UTC = dt.timezone.utc


def add_months(d, n):
    y, m = divmod(d.month - 1 + n, 12)
    return d.replace(year=d.year + y, month=m + 1)


# --- the writer -------------------------------------------------------------

def writer_main(url, month_file, rate, out):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    samples = []
    conn = psycopg.connect(url, autocommit=True)
    open(out + ".ready", "w").close()  # the driver waits for this
    rnd = random.Random(7)
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        with open(month_file) as f:
            month = dt.datetime.fromisoformat(f.read().strip())
        created = month + dt.timedelta(seconds=rnd.randrange(27 * 86400))
        start = time.monotonic()
        ok = "ok"
        try:
            conn.execute("INSERT INTO public.events (created_at, payload) VALUES (%s, %s)",
                         (created, "writer"))
        except psycopg.Error as e:
            ok = "error:" + str(e).splitlines()[0].replace(" ", "_")[:120]
            if conn.closed:  # the database is gone (the run failed): stop
                stop.set()
        samples.append((start, time.monotonic() - start, ok))
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()  # behind (a long wait): no burst after it
    conn.close()
    with open(out, "w") as f:
        for s, lat, ok in samples:
            f.write(f"{s:.6f} {lat:.6f} {ok}\n")


# --- the tools ----------------------------------------------------------------

class Tool:
    """One tool on its own database: setup, create, one maintenance round."""

    def __init__(self, name, admin_url, db, work):
        self.name, self.db, self.work = name, db, work
        self.url = admin_url.rsplit("/", 1)[0] + "/" + db
        self.month_file = os.path.join(work, f"{name}.month")
        self.samples_file = os.path.join(work, f"{name}.writer")
        self.writer = None
        self.windows = []  # (phase, start, end) of maintenance commands
        self.times = {"create": 0.0, "rounds": [], "blocked": None}

    def timed(self, phase, argv):
        start = time.monotonic()
        res = subprocess.run(argv, capture_output=True, text=True)
        end = time.monotonic()
        if res.returncode != 0:
            sys.exit(f"partition-bench: {self.name} {phase} failed (exit {res.returncode}):\n"
                     f"{res.stdout}{res.stderr}")
        self.windows.append((phase, start, end))
        return end - start

    def set_month(self, month):
        tmp = self.month_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(month.isoformat())
        os.replace(tmp, self.month_file)

    def start_writer(self, rate):
        self.writer = subprocess.Popen([sys.executable, __file__, "writer", self.url,
                                        self.month_file, str(rate), self.samples_file])

    def wait_writer_ready(self):
        deadline = time.monotonic() + 120
        while not os.path.exists(self.samples_file + ".ready"):
            if self.writer.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"partition-bench: the {self.name} writer did not start")
            time.sleep(0.05)

    def stop_writer(self):
        self.writer.send_signal(signal.SIGTERM)
        code = self.writer.wait()
        self.writer = None
        if code != 0:
            sys.exit(f"partition-bench: the {self.name} writer failed")

    def kill_writer(self):
        """After a failed run: no writer outlives the driver."""
        if self.writer is not None and self.writer.poll() is None:
            self.writer.kill()
            self.writer.wait()


class Partman(Tool):
    def setup(self, conn):
        conn.execute("CREATE SCHEMA partman")
        conn.execute("CREATE EXTENSION pg_partman SCHEMA partman")
        conn.execute(PARENT_DDL)

    def psql(self, *stmts):
        argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url]
        for s in stmts:
            argv += ["-c", s]
        return argv

    def create(self, start, args):
        return self.timed("create", self.psql(
            "SELECT partman.create_parent('public.events', 'created_at', 'native', 'monthly', "
            f"p_premake := {args.premake}, p_start_partition := '{start:%Y-%m-%d}')",
            f"UPDATE partman.part_config SET retention = '{args.retention_months} months', "
            "retention_keep_table = false WHERE parent_table = 'public.events'"))

    def maintain(self, phase, now):
        # run_maintenance drops by retention relative to the real clock;
        # drop_partition_time takes the simulated date (ferry's --now).
        return self.timed(phase, self.psql(
            "SELECT partman.run_maintenance('public.events')",
            "SELECT partman.drop_partition_time('public.events', "
            f"p_reference_timestamp := '{now.isoformat()}')"))


class Ferry(Tool):
    def setup(self, conn):
        conn.execute(PARENT_DDL)

    def write_config(self, args):
        self.config = os.path.join(self.work, "ferry.toml")
        with open(self.config, "w") as f:
            f.write(f'database = "{self.url}"\n'
                    f'lock_timeout = "{args.lock_timeout}"\n'
                    f'lock_retries = {args.lock_retries}\n\n'
                    '[[partitions]]\ntable = "public.events"\ncolumn = "created_at"\n'
                    f'interval = "month"\npremake = {args.premake}\n'
                    f'retention = "{args.retention_months} months"\narchive = "none"\n')

    def argv(self, now):
        return [self.ferry, "--config", self.config, "-q", "partition", "maintain",
                "--now", now.strftime("%Y-%m-%dT%H:%M:%SZ")]

    def create(self, start, args):
        return self.timed("create", self.argv(args.today))

    def maintain(self, phase, now):
        return self.timed(phase, self.argv(now))


class Control(Tool):
    """No partitions, no maintenance: a plain events table whose writer shows
    the machine's own stalls (CPU, I/O) over the same time windows."""

    def setup(self, conn):
        conn.execute(PARENT_DDL.replace(" PARTITION BY RANGE (created_at)", ""))


# --- the run ----------------------------------------------------------------

def hold_reader(url, month, hold, started):
    """A report on this month: counts its rows, then keeps its transaction
    (and its ACCESS SHARE locks on the parent and the month's partition, the
    only one the plan keeps) open for `hold` seconds."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT count(*) FROM public.events WHERE created_at >= %s "
                     "AND created_at < %s", (month, add_months(month, 1))).fetchone()
        started.set()
        time.sleep(hold)
        conn.rollback()


def bulk_month(url, month, rows):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.events (created_at, payload) "
                     "SELECT %s::timestamptz + (i * interval '1 second' * (27 * 86400 / %s)), "
                     "repeat('x', 100) FROM generate_series(0, %s - 1) AS i",
                     (month, rows, rows))


def partitions(url):
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'public.events'::regclass "
            "AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT' ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def writer_stats(tool, phases, windows=None):
    """Longest and p99 writer latency over the statements that started in one
    of the maintenance windows (the tool's own unless given) of the phases."""
    wins = [(s, e) for p, s, e in (windows or tool.windows) if p in phases]
    lats, errors = [], []
    with open(tool.samples_file) as f:
        for line in f:
            start, lat, ok = line.split()
            start, lat = float(start), float(lat)
            if any(s <= start <= e for s, e in wins):
                lats.append(lat)
                if ok != "ok":
                    errors.append(ok)
    lats.sort()
    p99 = lats[min(len(lats) - 1, int(0.99 * len(lats)))] if lats else None
    return {"statements": len(lats), "max_s": lats[-1] if lats else None, "p99_s": p99,
            "errors": len(errors), "error_samples": sorted(set(errors))[:3]}


def run(args):
    pid = os.getpid()
    tools = [Partman("pg_partman", args.url, f"partbench_partman_{pid}", args.work),
             Ferry("ferry", args.url, f"partbench_ferry_{pid}", args.work)]
    tools[1].ferry = args.ferry
    control = Control("control", args.url, f"partbench_control_{pid}", args.work)
    with psycopg.connect(args.url, autocommit=True) as admin:
        for t in tools + [control]:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(t.db)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(t.db)))
    try:
        return run_on(args, tools, control)
    finally:
        for t in tools + [control]:
            t.kill_writer()
        if not os.environ.get("BENCH_KEEP"):
            with psycopg.connect(args.url, autocommit=True) as admin:
                for t in tools + [control]:
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                                  .format(sql.Identifier(t.db)))


def run_on(args, tools, control):
    today = dt.datetime.now(UTC)
    args.today = today
    start = today.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for t in tools + [control]:
        with psycopg.connect(t.url, autocommit=True) as conn:
            t.setup(conn)
    tools[1].write_config(args)
    for t in tools:
        t.times["create"] = t.create(start, args)
        t.set_month(start)
        t.start_writer(args.writer_rate)
    control.set_month(start)
    control.start_writer(args.writer_rate)
    for t in tools + [control]:
        t.wait_writer_ready()
    for m in range(args.months):
        month = add_months(start, m)
        now = month + dt.timedelta(days=14, hours=12)
        order = tools if m % 2 == 0 else tools[::-1]  # alternate who goes first
        blocked = m == args.months - 1 and args.reader_hold > 0
        for t in order:
            bulk_month(t.url, month, args.rows_per_month)
            t.set_month(month)
            if blocked:
                started = threading.Event()
                reader = threading.Thread(target=hold_reader, args=(t.url, month, args.reader_hold, started))
                reader.start()
                started.wait()
                t.times["blocked"] = t.maintain("blocked", now)
                reader.join()
            else:
                t.times["rounds"].append(t.maintain("round", now))
    for t in tools + [control]:
        t.stop_writer()
    parts = {t.name: partitions(t.url) for t in tools}
    same = parts["pg_partman"] == parts["ferry"]
    result = {"start": start.isoformat(), "months": args.months,
              "rows_per_month": args.rows_per_month, "writer_rate": args.writer_rate,
              "lock_timeout": args.lock_timeout, "reader_hold_s": args.reader_hold,
              "same_partitions": same, "partitions": parts["ferry"], "tools": {}}
    for t in tools:
        result["tools"][t.name] = {
            "create_s": t.times["create"], "rounds_s": sum(t.times["rounds"]),
            "round_count": len(t.times["rounds"]), "blocked_s": t.times["blocked"],
            "writer_rounds": writer_stats(t, {"round"}),
            "writer_blocked": writer_stats(t, {"blocked"}),
            "control_rounds": writer_stats(control, {"round"}, t.windows),
            "control_blocked": writer_stats(control, {"blocked"}, t.windows),
            "partition_count": len(parts[t.name])}
    print(json.dumps(result, indent=1))
    if not same:
        sys.exit("partition-bench: the tools end with different partitions:\n"
                 f"pg_partman: {parts['pg_partman']}\nferry: {parts['ferry']}")
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "writer":
        _, _, url, month_file, rate, out = sys.argv
        return writer_main(url, month_file, float(rate), out)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("cmd", choices=["run"])
    p.add_argument("--url", required=True, help="an admin URL (superuser) of the server")
    p.add_argument("--ferry", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--rows-per-month", type=int, default=20000)
    p.add_argument("--writer-rate", type=float, default=50)
    p.add_argument("--lock-timeout", default="1s")
    p.add_argument("--lock-retries", type=int, default=5)
    p.add_argument("--reader-hold", type=float, default=5)
    p.add_argument("--premake", type=int, default=12)
    p.add_argument("--retention-months", type=int, default=12)
    args = p.parse_args()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
