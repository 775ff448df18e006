#!/usr/bin/env python3
"""Timing driver of bench/migrate-bench.sh (run that script, not this one).

Runs every command as a direct child (no shell), times it with a monotonic
clock, and takes the child's own peak RSS and CPU time from wait4(2). The
tools are interleaved round by round (the order rotates each round), so a
burst of load from other processes on a shared machine hits every tool
alike instead of one tool's whole series. Every apply run starts on a fresh
database (DROP/CREATE DATABASE, not timed) and is checked afterwards (tables
and history rows present, not timed).

Writes a JSON file with every run and a Markdown report.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

PEERS = ("dbmate", "node-pg-migrate", "sql-migrate")
CLK_TCK = os.sysconf("SC_CLK_TCK")
NOTES_MARKER = "<!-- notes below are kept when the benchmark rewrites this file -->"


def log(msg):
    sys.stderr.write(f"bench: {msg}\n")
    sys.stderr.flush()


class Bench:
    def __init__(self, a):
        self.a = a
        self.port = a.port
        with open(a.pg_pid_file) as f:
            self.pg_pid = int(f.readline())
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("PG") or k == "DATABASE_URL" or k == "FERRY_CACHE_DIR":
                del self.env[k]
        # ferry's caches (scan cache, status memo) in the work directory.
        self.env["FERRY_CACHE_DIR"] = os.path.join(a.work, "ferry-cache")

    # ---- helpers ---------------------------------------------------------
    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, db, *sql, capture=False):
        cmd = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
               "-p", str(self.port), "-U", "postgres", "-d", db]
        for s in sql:
            cmd += ["-c", s]
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"bench: psql failed: {' '.join(sql)}\n{r.stderr}")
        return r.stdout.strip()

    def fresh_db(self, db):
        self.psql("postgres", f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}",
                  "CHECKPOINT")

    # ---- server CPU: the postmaster's own and reaped children's time plus its
    # live children's. A backend's time lands in the postmaster's cutime/cstime
    # when it exits and is reaped, so we wait for the run's backends to go.
    def _children(self):
        try:
            with open(f"/proc/{self.pg_pid}/task/{self.pg_pid}/children") as f:
                return set(f.read().split())
        except OSError:
            return set()

    def _ticks(self, pid, with_reaped):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0
        # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17.
        t = int(fields[11]) + int(fields[12])
        if with_reaped:
            t += int(fields[13]) + int(fields[14])
        return t

    def server_ticks(self):
        kids = self._children()
        return self._ticks(self.pg_pid, True) + sum(self._ticks(k, True) for k in kids), kids

    def server_settle(self, before_kids):
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if self._children() <= before_kids:
                return
            time.sleep(0.005)

    def timed(self, argv, env=None):
        """Runs argv; returns (wall_s, cpu_s, maxrss_kib, server_cpu_s). Output is discarded."""
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        s0, kids0 = self.server_ticks()
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, env=full_env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        p.stderr.close()
        if p.returncode != 0:
            raise SystemExit(f"bench: command failed (exit {p.returncode}): {' '.join(argv[:8])}"
                             f"{' ...' if len(argv) > 8 else ''}\n"
                             f"{err.decode(errors='replace')[-3000:]}")
        self.server_settle(kids0)
        s1, _ = self.server_ticks()
        return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, (s1 - s0) / CLK_TCK

    # ---- the tools ---------------------------------------------------------
    def apply_cmd(self, tool, db, d):
        a = self.a
        if tool == "ferry":
            return [a.ferry, "--database", self.url(db) + "?sslmode=disable", "--dir", d,
                    "up"], None
        if tool == "dbmate":
            return [a.dbmate, "--url", self.url(db) + "?sslmode=disable", "--migrations-dir", d,
                    "--no-dump-schema", "migrate"], None
        if tool == "sql-migrate":
            return ["sql-migrate", "up", f"-config={self.sqlmigrate_config(db, d)}",
                    f"-env={db}"], None
        if tool == "node-pg-migrate":
            return ["node", a.node_pg_migrate, "up", "-m", d], {"DATABASE_URL": self.url(db)}
        if tool == "psql":
            files = sorted(f for f in os.listdir(d) if f.endswith(".sql"))
            argv = ["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                    "-p", str(self.port), "-U", "postgres", "-d", db]
            for f in files:
                argv += ["-f", os.path.join(d, f)]
            return argv, None
        raise ValueError(tool)

    def status_cmd(self, tool, db, d):
        a = self.a
        if tool in ("ferry", "ferry (no cache)"):
            # "no cache": the scan cache and the status memo off, as on the
            # first run after a change (docs/migrations.md).
            env = {"FERRY_CACHE_DIR": "off"} if tool != "ferry" else None
            return [a.ferry, "--database", self.url(db) + "?sslmode=disable", "--dir", d,
                    "status"], env
        if tool == "dbmate":
            return [a.dbmate, "--url", self.url(db) + "?sslmode=disable", "--migrations-dir", d,
                    "status"], None
        if tool == "sql-migrate":
            return ["sql-migrate", "status", f"-config={self.sqlmigrate_config(db, d)}",
                    f"-env={db}"], None
        raise ValueError(tool)

    def sqlmigrate_config(self, db, d):
        path = os.path.join(self.a.work, f"dbconfig-{db}.yml")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(f"{db}:\n  dialect: postgres\n"
                        f"  datasource: host=127.0.0.1 port={self.port} user=postgres "
                        f"dbname={db} sslmode=disable\n"
                        f"  dir: {d}\n  table: gorp_migrations\n")
        return path

    def history_rows(self, tool, db):
        table = {"ferry": "ferry_schema_history", "dbmate": "schema_migrations",
                 "sql-migrate": "gorp_migrations", "node-pg-migrate": "pgmigrations"}.get(tool)
        if table is None:
            return None
        return int(self.psql(db, f"SELECT count(*) FROM {table}"))

    def check_applied(self, tool, db, n):
        tables = int(self.psql(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                                   "AND tablename ~ '^t[0-9]{5}$'"))
        want_tables = (n + 3) // 4
        rows = self.history_rows(tool, db)
        if tables != want_tables or (rows is not None and rows != n):
            raise SystemExit(f"bench: {tool} left {tables} tables (want {want_tables}) and "
                             f"{rows} history rows (want {n}) in {db}")

    # ---- the benchmarks ------------------------------------------------------
    def run_apply(self, tools, runs, n):
        res = {t: [] for t in tools}
        for r in range(runs):
            order = tools[r % len(tools):] + tools[:r % len(tools)]
            for tool in order:
                db = "b_" + tool.replace("-", "_")
                self.fresh_db(db)
                argv, env = self.apply_cmd(tool, db, os.path.join(self.a.work, "m", tool))
                wall, cpu, rss, scpu = self.timed(argv, env)
                self.check_applied(tool, db, n)
                res[tool].append({"wall": wall, "cpu": cpu, "rss_kib": rss, "server_cpu": scpu})
                log(f"apply round {r + 1}/{runs} {tool:16s} {wall * 1000:9.1f} ms")
        return res

    def run_status(self, jobs, runs, warmup=1):
        """jobs: {label: (argv, env)}; interleaved rounds."""
        labels = list(jobs)
        for label in labels:
            for _ in range(warmup):
                self.timed(*jobs[label])
        res = {label: [] for label in labels}
        for r in range(runs):
            order = labels[r % len(labels):] + labels[:r % len(labels)]
            for label in order:
                wall, cpu, rss, scpu = self.timed(*jobs[label])
                res[label].append({"wall": wall, "cpu": cpu, "rss_kib": rss,
                                   "server_cpu": scpu})
        for label in labels:
            log(f"status {label:24s} median {med(res[label], 'wall') * 1000:8.1f} ms")
        return res


def med(runs, key):
    return statistics.median(x[key] for x in runs)


def ms(s):
    return f"{s * 1000:,.1f}"


def spread(runs):
    w = sorted(x["wall"] for x in runs)
    return f"{ms(w[0])}–{ms(w[-1])}"


def machine_facts(b):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "postgres": b.psql("postgres", "SHOW server_version"),
    }


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--pg-pid-file", required=True)
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--dbmate", required=True)
    ap.add_argument("--node-pg-migrate", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--status-runs", type=int, default=15)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--big", type=int, default=10000)
    ap.add_argument("--durable", action="store_true")
    ap.add_argument("--versions", default="{}")
    ap.add_argument("--command", default="bash bench/migrate-bench.sh")
    ap.add_argument("--json-out", required=True)
    ap.add_argument("--md-out", required=True)
    a = ap.parse_args()
    b = Bench(a)
    facts = machine_facts(b)
    facts["versions"] = json.loads(a.versions)
    facts["load_before"] = loadavg()
    log(f"load average before: {facts['load_before']}")

    tools = ["ferry", "dbmate", "node-pg-migrate", "sql-migrate", "psql"]
    t0 = time.time()
    apply = b.run_apply(tools, a.runs, a.n)

    apply_durable = None
    if a.durable:
        log("durable variant: fsync = on, synchronous_commit = on")
        b.psql("postgres", "ALTER SYSTEM SET fsync = on", "ALTER SYSTEM SET synchronous_commit = on",
               "SELECT pg_reload_conf()")
        time.sleep(0.5)
        try:
            apply_durable = b.run_apply(tools, a.runs, a.n)
        finally:
            b.psql("postgres", "ALTER SYSTEM RESET fsync", "ALTER SYSTEM RESET synchronous_commit",
                   "SELECT pg_reload_conf()")
            time.sleep(0.5)

    status_tools = ["ferry", "ferry (no cache)", "dbmate", "sql-migrate"]
    jobs = {}
    for tool in status_tools:
        name = "ferry" if tool.startswith("ferry") else tool
        db = "b_" + name.replace("-", "_")
        jobs[tool] = b.status_cmd(tool, db, os.path.join(a.work, "m", name))
    status = b.run_status(jobs, a.status_runs)

    # ferry status with SMALL vs BIG applied.
    scale = {}
    for n, key in ((a.small, "small"), (a.big, "big")):
        db = f"b_ferry_{n}"
        d = os.path.join(a.work, "m", f"ferry-{n}")
        b.fresh_db(db)
        log(f"ferry up of {n} migrations (once, to set up the status-scaling test)")
        wall, cpu, rss, scpu = b.timed(b.apply_cmd("ferry", db, d)[0])
        b.check_applied("ferry", db, n)
        scale[f"up_{key}"] = {"n": n, "wall": wall, "cpu": cpu, "rss_kib": rss,
                              "server_cpu": scpu}
        log(f"  {n} applied in {wall:.1f} s")
    scale_jobs = {
        f"ferry status ({n} applied)": b.status_cmd("ferry", f"b_ferry_{n}",
                                                    os.path.join(a.work, "m", f"ferry-{n}"))
        for n in (a.small, a.big)
    }
    for n in (a.small, a.big):
        scale_jobs[f"ferry status, no cache ({n} applied)"] = b.status_cmd(
            "ferry (no cache)", f"b_ferry_{n}", os.path.join(a.work, "m", f"ferry-{n}"))
    scale["status"] = b.run_status(scale_jobs, a.status_runs)
    facts["load_after"] = loadavg()
    facts["elapsed_s"] = round(time.time() - t0)
    log(f"load average after: {facts['load_after']}")

    data = {"facts": facts, "params": {"n": a.n, "runs": a.runs, "status_runs": a.status_runs,
                                       "small": a.small, "big": a.big},
            "apply": apply, "apply_durable": apply_durable, "status": status, "scale": scale}
    with open(a.json_out, "w") as f:
        json.dump(data, f, indent=1)
    md = render(data, a.command)
    # Hand-written notes below the marker survive re-runs.
    try:
        with open(a.md_out) as f:
            old = f.read()
        if NOTES_MARKER in old:
            md += old[old.index(NOTES_MARKER):]
    except OSError:
        pass
    with open(a.md_out, "w") as f:
        f.write(md)
    sys.stdout.write(md)


def table(results, peers, what):
    """Markdown rows; ratio vs the fastest peer by median wall time."""
    fastest = min(peers, key=lambda t: med(results[t], "wall"))
    fm = med(results[fastest], "wall")
    rows = [f"| tool | median wall ms | min–max ms | vs fastest peer ({fastest}) "
            f"| client CPU ms | server CPU ms | peak RSS MiB |",
            "|---|--:|--:|--:|--:|--:|--:|"]
    for t in sorted(results, key=lambda t: med(results[t], "wall")):
        r = results[t]
        rows.append(f"| {t} | {ms(med(r, 'wall'))} | {spread(r)} | {med(r, 'wall') / fm:.2f}x "
                    f"| {ms(med(r, 'cpu'))} | {ms(med(r, 'server_cpu'))} "
                    f"| {med(r, 'rss_kib') / 1024:.1f} |")
    return "\n".join(rows), fastest, fm


def verdict(ok):
    return "**met**" if ok else "**NOT met**"


def render(d, command):
    f, p = d["facts"], d["params"]
    v = f["versions"]
    out = []
    out.append("# Migration benchmark: ferry vs dbmate, node-pg-migrate, sql-migrate, psql\n")
    out.append(f"Reproduce: `{command}` (this run: {p['n']} migrations, {p['runs']} apply rounds, "
               f"{p['status_runs']} status rounds; the script's defaults are 5 and 15 rounds; "
               f"see bench/README.md for the knobs).\n")
    out.append("## Machine\n")
    out.append(f"- date: {f['date']}; run took {f['elapsed_s']} s")
    out.append(f"- CPU: {f['cpu']}, nproc {f['nproc']}, {f['mem_gib']} GiB RAM, "
               f"Linux {f['kernel']}")
    out.append(f"- PostgreSQL {f['postgres']} (scripts/test-servers.sh: local TCP 127.0.0.1, "
               f"fsync=off, synchronous_commit=off)")
    out.append("- tools: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    out.append(f"- load average (1/5/15 min) before: {f['load_before']}, after: "
               f"{f['load_after']}. The machine was shared with other engineers' compile jobs "
               f"on its 2 cores: wall times are noisy (see min–max); tools are interleaved "
               f"round by round so the noise hits each alike.\n")

    out.append(f"## 1. Apply {p['n']} migrations to an empty database\n")
    out.append(f"{p['runs']} rounds; each run on a freshly created database (not timed). "
               f"All columns are medians. Client CPU = user+sys of the tool's process tree "
               f"(wait4), peak RSS likewise; server CPU = CPU used by the PostgreSQL "
               f"server's processes during the run (10 ms ticks; includes background "
               f"workers). CPU times do not grow with the machine's load the way wall "
               f"times do.\n")
    t, fastest, fm = table(d["apply"], PEERS, "apply")
    out.append(t + "\n")
    fa = med(d["apply"]["ferry"], "wall")
    ps = med(d["apply"]["psql"], "wall")
    out.append(f"psql -1 (all files, one transaction, no history) is the floor: ferry is "
               f"{fa / ps:.2f}x of it.\n")
    out.append("What each records per migration: ferry one history row with version, "
               "description, script, kind, sha256 checksum, status, start/end time, duration, "
               "rows affected, applied_by, rollback availability, execution mode, attempts "
               "(row inserted as 'running' and committed before the migration's own "
               "transaction, updated to 'success' inside it); dbmate the version; "
               "sql-migrate id and applied_at; node-pg-migrate name and run_on "
               "(all migrations in one transaction by default); psql nothing.\n")
    ok1 = fa / fm <= 1.1
    out.append(f"Goal: ferry applies within 1.1x of the fastest peer: ferry {ms(fa)} ms vs "
               f"{fastest} {ms(fm)} ms = **{fa / fm:.2f}x** → {verdict(ok1)}\n")

    if d.get("apply_durable"):
        out.append(f"### 1b. The same with durable commits (fsync = on, synchronous_commit = on)\n")
        out.append("The test server runs with fsync and synchronous_commit off, which hides "
                   "the cost of each commit's WAL flush; here the apply rounds are repeated "
                   "with both on (`--durable`). Not one of the goals.\n")
        t2, fastest2, fm2 = table(d["apply_durable"], PEERS, "apply")
        out.append(t2 + "\n")
        fa2 = med(d["apply_durable"]["ferry"], "wall")
        out.append(f"ferry vs the fastest peer ({fastest2}) with durable commits: "
                   f"**{fa2 / fm2:.2f}x**.\n")

    out.append(f"## 2. `status` with {p['n']} applied\n")
    out.append(f"1 warm-up run each, then {p['status_runs']} interleaved rounds on the database "
               f"left by the last apply round. node-pg-migrate has no status command "
               f"(and psql none either). Every tool gets the same URL (`sslmode=disable`). "
               f"`ferry` answers from its status memo (one query; the warm-up run wrote it); "
               f"`ferry (no cache)` runs with `FERRY_CACHE_DIR=off`, reading every file and "
               f"the whole history, as the first status after a change does.\n")
    sp = tuple(t for t in PEERS if t in d["status"])
    t, fastest, fm = table(d["status"], sp, "status")
    out.append(t + "\n")
    fs = med(d["status"]["ferry"], "wall")
    ok2 = fs <= 0.5 * fm
    out.append(f"Goal: ferry status at most half the fastest peer's: ferry {ms(fs)} ms vs "
               f"{fastest} {ms(fm)} ms = **{fs / fm:.2f}x** (goal ≤ 0.50x) → {verdict(ok2)}\n")

    out.append(f"## 3. ferry `status` with {p['small']} vs {p['big']:,} applied\n")
    s = d["scale"]
    out.append(f"Set-up (not part of the goal; each `ferry up` run once on an empty database): "
               f"{p['small']} migrations in {s['up_small']['wall']:.2f} s, "
               f"{p['big']:,} in {s['up_big']['wall']:.1f} s "
               f"(client CPU {s['up_big']['cpu']:.1f} s, peak RSS "
               f"{s['up_big']['rss_kib'] / 1024:.1f} MiB).\n")
    rows = ["| command | median wall ms | min–max ms | client CPU ms | server CPU ms "
            "| peak RSS MiB |", "|---|--:|--:|--:|--:|--:|"]
    for label, r in s["status"].items():
        rows.append(f"| {label} | {ms(med(r, 'wall'))} | {spread(r)} | {ms(med(r, 'cpu'))} "
                    f"| {ms(med(r, 'server_cpu'))} | {med(r, 'rss_kib') / 1024:.1f} |")
    out.append("\n".join(rows) + "\n")
    labels = list(s["status"])
    small, big = (med(s["status"][label], "wall") for label in labels[:2])
    cold_small, cold_big = (med(s["status"][label], "wall") for label in labels[2:4])
    out.append(f"Without the caches (the first status after a change): {cold_big / cold_small:.2f}x.\n")
    ok3 = big <= 2 * small
    out.append(f"Goal: status with {p['big']:,} applied at most 2x status with {p['small']}: "
               f"**{big / small:.2f}x** → {verdict(ok3)}\n")

    out.append("## Summary\n")
    out.append("| goal | result | |\n|---|--:|---|")
    out.append(f"| apply {p['n']}: ferry ≤ 1.1x fastest peer | {fa / med(d['apply'][min(PEERS, key=lambda t: med(d['apply'][t], 'wall'))], 'wall'):.2f}x | {verdict(ok1)} |")
    out.append(f"| status {p['n']}: ferry ≤ 0.5x fastest peer | {fs / fm:.2f}x | {verdict(ok2)} |")
    out.append(f"| status {p['big']:,} ≤ 2x status {p['small']} | {big / small:.2f}x | "
               f"{verdict(ok3)} |")
    out.append("")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
