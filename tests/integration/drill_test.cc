// Failure drills on real servers: kill -9 in the middle of a migration,
// eight runners at once, a held lock. Each runs the built ferry binary.
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "drivers/registry.h"
#include "migrate/lock.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Connection> Connect(const std::string& url) {
  auto c = OpenConnection(url);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

std::string One(Connection* c, const std::string& sql) {
  auto r = c->Query(sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  return r.ok() && !r->empty() ? r->Text(0, 0) : "";
}

TEST(DrillTest, KillDashNineMidMigrationThenResume) {
  FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  TempDir dir;
  dir.Write("m/1_base.sql", "CREATE TABLE t (id int PRIMARY KEY);\nINSERT INTO t VALUES (1);\n");
  dir.Write("m/2_slow.sql",
            "-- ferry:up\n"
            "CREATE TABLE slow_done (x int);\n"
            "SELECT pg_sleep(4);\n"
            "INSERT INTO t VALUES (2);\n"
            "-- ferry:down\n"
            "DROP TABLE slow_done;\n");
  dir.Write("m/3_after.sql", "INSERT INTO t VALUES (3);\n");
  std::vector<std::string> args = {"up", "--database", db.url(), "--dir", dir.File("m")};

  int pid = StartFerry(args, dir.File("first.out"));
  auto conn = Connect(db.url());
  ASSERT_NE(conn, nullptr);
  // Wait until migration 2 is running, then kill ferry without warning.
  bool running = false;
  for (int i = 0; i < 200 && !running; ++i) {
    auto r = conn->Query(
        "SELECT count(*) FROM ferry_schema_history WHERE version = '2' AND status = 'running'");
    running = r.ok() && r->Text(0, 0) == "1";
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(running) << ReadFile(dir.File("first.out.err"));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(WaitFerry(pid), 128 + SIGKILL);

  // The next run is not blocked by a stale lock, says what happened and
  // completes without applying anything twice.
  auto start = std::chrono::steady_clock::now();
  RunResult second = RunFerry({"up", "--json", "--lock-wait", "2s", "--database", db.url(), "--dir",
                               dir.File("m")});
  ASSERT_EQ(second.exit_code, 0) << second.err << second.out;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_THAT(second.out, HasSubstr("\"event\":\"migration_interrupted\""));
  EXPECT_THAT(second.out, HasSubstr("nothing of it was committed"));
  EXPECT_EQ(One(conn.get(), "SELECT string_agg(id::text, ',' ORDER BY id) FROM t"), "1,2,3");
  EXPECT_EQ(One(conn.get(), "SELECT count(*) FROM ferry_schema_history WHERE status = 'success'"),
            "3");
  EXPECT_EQ(One(conn.get(), "SELECT attempts FROM ferry_schema_history WHERE version = '2'"), "2");
  RunResult status = RunFerry({"status", "--exit-code", "--database", db.url(), "--dir",
                               dir.File("m")});
  EXPECT_EQ(status.exit_code, 0) << status.out;
}

// Output to a file or pipe is batched (cli/output.h, OutputBatcher): the
// line naming the running migration must still reach the log while that
// migration runs, not when ferry exits; on stderr as text and on stdout as a
// JSON event. Everything arrives, in order, by the end.
TEST(DrillTest, ProgressReachesALogFileWhileAMigrationRuns) {
  for (bool json : {false, true}) {
    SCOPED_TRACE(json ? "--json" : "text");
    FreshPgDatabase db;
    ASSERT_TRUE(db.ok());
    TempDir dir;
    dir.Write("m/1_quick.sql", "CREATE TABLE quick (id int);\n");
    dir.Write("m/2_slow.sql", "SELECT pg_sleep(3);\n");
    dir.Write("m/3_last.sql", "CREATE TABLE last (id int);\n");
    std::vector<std::string> args = {"up", "--database", db.url(), "--dir", dir.File("m")};
    if (json) args.push_back("--json");
    const std::string log = dir.File("up.out");
    const std::string progress_file = json ? log : log + ".err";
    auto started_line = [&](const std::string& text) {
      if (!json) return text.find("-> 2 slow\n") != std::string::npos;
      for (size_t at = 0, end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) {
        auto e = nlohmann::json::parse(text.substr(at, end - at), nullptr, false);
        if (e.is_object() && e.value("event", "") == "migration_started" &&
            e.value("version", "") == "2") {
          return true;
        }
      }
      return false;
    };
    int pid = StartFerry(args, log);
    auto conn = Connect(db.url());
    ASSERT_NE(conn, nullptr);
    bool seen = false;
    for (int i = 0; i < 200 && !seen; ++i) {
      seen = started_line(ReadFile(progress_file));
      if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ASSERT_TRUE(seen) << ReadFile(progress_file);
    // Still sleeping: the line came from the periodic flush, not the exit.
    EXPECT_EQ(One(conn.get(), "SELECT status FROM ferry_schema_history WHERE version = '2'"),
              "running");
    ASSERT_EQ(WaitFerry(pid), 0) << ReadFile(log + ".err");
    const std::string text = ReadFile(progress_file);
    if (json) {
      std::vector<std::string> events;
      for (size_t at = 0, end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) {
        auto e = nlohmann::json::parse(text.substr(at, end - at), nullptr, false);
        ASSERT_TRUE(e.is_object()) << text;
        if (e.contains("event")) events.push_back(e.value("event", "") + " " + e.value("version", ""));
      }
      EXPECT_EQ(events, (std::vector<std::string>{
                            "migration_started 1", "migration_done 1", "migration_started 2",
                            "migration_done 2", "migration_started 3", "migration_done 3"}))
          << text;
    } else {
      size_t a = text.find("-> 1 quick"), b = text.find("-> 2 slow"), c = text.find("-> 3 last");
      ASSERT_NE(c, std::string::npos) << text;
      EXPECT_LT(a, b);
      EXPECT_LT(b, c);
      EXPECT_NE(text.find("done in", c), std::string::npos) << text;
    }
  }
}

TEST(DrillTest, EightConcurrentRunnersApplyEachMigrationOnce) {
  FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  TempDir dir;
  dir.Write("m/001_log.sql", "CREATE TABLE applied_log (version text NOT NULL);\n");
  for (int v = 2; v <= 6; ++v) {
    dir.Write(fmt::format("m/{:03d}_step.sql", v),
              fmt::format("INSERT INTO applied_log VALUES ('{}');\nSELECT pg_sleep(0.05);\n", v));
  }
  std::vector<int> pids;
  for (int i = 0; i < 8; ++i) {
    pids.push_back(StartFerry({"up", "--lock-wait", "60s", "--database", db.url(), "--dir",
                               dir.File("m")},
                              dir.File("run" + std::to_string(i) + ".out")));
  }
  for (size_t i = 0; i < pids.size(); ++i) {
    EXPECT_EQ(WaitFerry(pids[i]), 0) << ReadFile(dir.File("run" + std::to_string(i) + ".out.err"));
  }
  auto conn = Connect(db.url());
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(One(conn.get(), "SELECT count(*) FROM applied_log"), "5");
  EXPECT_EQ(One(conn.get(), "SELECT count(DISTINCT version) FROM applied_log"), "5");
  EXPECT_EQ(One(conn.get(), "SELECT count(*) FROM ferry_schema_history"), "6");
  EXPECT_EQ(One(conn.get(), "SELECT max(attempts) FROM ferry_schema_history"), "1");
}

TEST(DrillTest, ConcurrentRunnersOnSqlite) {
  TempDir dir;
  std::string url = "sqlite:" + dir.File("app.db");
  dir.Write("m/001_log.sql", "CREATE TABLE applied_log (version text NOT NULL);\n");
  for (int v = 2; v <= 5; ++v) {
    dir.Write(fmt::format("m/{:03d}_step.sql", v),
              fmt::format("INSERT INTO applied_log VALUES ('{}');\n", v));
  }
  std::vector<int> pids;
  for (int i = 0; i < 4; ++i) {
    pids.push_back(StartFerry({"up", "--database", url, "--dir", dir.File("m")},
                              dir.File("run" + std::to_string(i) + ".out")));
  }
  for (size_t i = 0; i < pids.size(); ++i) {
    EXPECT_EQ(WaitFerry(pids[i]), 0) << ReadFile(dir.File("run" + std::to_string(i) + ".out.err"));
  }
  auto conn = Connect(url);
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(One(conn.get(), "SELECT count(*) FROM applied_log"), "4");
  EXPECT_EQ(One(conn.get(), "SELECT count(*) FROM ferry_schema_history"), "5");
}

TEST(DrillTest, HeldLockTimesOutNamingTheHolder) {
  FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  TempDir dir;
  dir.Write("m/1_a.sql", "CREATE TABLE a (id int);\n");
  auto url = Url::Parse(db.url());
  ASSERT_TRUE(url.ok());
  auto lock = MigrationLock::Acquire(*url, "ferry_schema_history", std::chrono::seconds(5), {});
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();

  RunResult status = RunFerry({"status", "--json", "--database", db.url(), "--dir", dir.File("m")});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  auto j = nlohmann::json::parse(status.out);
  ASSERT_FALSE(j["lock"].is_null());
  EXPECT_THAT(j["lock"]["who"].get<std::string>(), HasSubstr("pid " + std::to_string(getpid())));

  RunResult up = RunFerry({"up", "--lock-wait", "1s", "--database", db.url(), "--dir",
                           dir.File("m")});
  EXPECT_EQ(up.exit_code, 4) << up.err;
  EXPECT_THAT(up.err, HasSubstr("migration lock"));
  EXPECT_THAT(up.err, HasSubstr("held by ferry pid " + std::to_string(getpid())));
  lock->reset();
  RunResult again = RunFerry({"up", "--lock-wait", "1s", "--database", db.url(), "--dir",
                              dir.File("m")});
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

TEST(DrillTest, SqliteLockIsReleasedWhenHolderDies) {
  TempDir dir;
  std::string db = dir.File("app.db");
  dir.Write("m/1_slow.sql",
            "CREATE TABLE a (id int);\n"
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000000) "
            "SELECT count(*) FROM c;\n");
  int pid = StartFerry({"up", "--database", "sqlite:" + db, "--dir", dir.File("m")},
                       dir.File("first.out"));
  // Wait for the holder file, then kill.
  for (int i = 0; i < 200 && !std::filesystem::exists(db + ".ferry-lock.holder"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(std::filesystem::exists(db + ".ferry-lock.holder"));
  kill(pid, SIGKILL);
  WaitFerry(pid);
  dir.Write("m/1_slow.sql", "CREATE TABLE a (id int);\n");
  RunResult up = RunFerry({"up", "--lock-wait", "2s", "--database", "sqlite:" + db, "--dir",
                           dir.File("m"), "--json"});
  EXPECT_EQ(up.exit_code, 0) << up.err << up.out;
}

}  // namespace
}  // namespace ferry::testing

namespace ferry::testing {
namespace {

// Every migration runs with a lock_timeout (default 5s) unless turned off,
// so DDL never queues behind a long transaction.
TEST(DrillTest, DefaultLockTimeoutIsSetForEachMigration) {
  FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  TempDir dir;
  dir.Write("m/1_a.sql", "CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS v;\n");
  dir.Write("m/2_b.sql",
            "-- ferry:lock_timeout 750ms\n"
            "INSERT INTO seen SELECT current_setting('lock_timeout');\n");
  RunResult up = RunFerry({"up", "--database", db.url(), "--dir", dir.File("m")});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  auto conn = Connect(db.url());
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(One(conn.get(), "SELECT string_agg(v, ',' ORDER BY v) FROM seen"), "5s,750ms");

  FreshPgDatabase off;
  ASSERT_TRUE(off.ok());
  RunResult up_off = RunFerry({"up", "--database", off.url(), "--dir", dir.File("m")},
                              {"FERRY_LOCK_TIMEOUT=0"});
  ASSERT_EQ(up_off.exit_code, 0) << up_off.err;
  auto conn_off = Connect(off.url());
  ASSERT_NE(conn_off, nullptr);
  EXPECT_EQ(One(conn_off.get(), "SELECT string_agg(v, ',' ORDER BY v) FROM seen"), "0,750ms");
}

}  // namespace
}  // namespace ferry::testing
