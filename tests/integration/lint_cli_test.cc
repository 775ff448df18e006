// `ferry lint` and lint enforcement in `ferry up`, end to end: the built
// binary run in a temporary directory holding migrations/, offline and
// against a fresh PostgreSQL database.
#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "drivers/registry.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Describe(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout:\n" + r.out + "--- stderr:\n" + r.err;
}

json LastJson(const std::string& out) {
  std::string text = out;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t nl = text.rfind('\n');
  json j = json::parse(nl == std::string::npos ? text : text.substr(nl + 1), nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << out;
  return j;
}

class LintCliTest : public ::testing::Test {
 protected:
  RunResult Ferry(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"--dir", "migrations"};
    all.insert(all.end(), args.begin(), args.end());
    return RunFerry(all, {}, dir_.path());
  }
  void Write(const std::string& name, const std::string& content) {
    dir_.Write("migrations/" + name, content);
  }
  TempDir dir_;
};

TEST_F(LintCliTest, TextOutputAndExitCodes) {
  Write("1_create.sql", "-- ferry:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n"
                        "-- ferry:down\nDROP TABLE users;\n");
  Write("2_index.sql", "-- ferry:up\n-- ferry:lock_timeout 5s\n"
                       "CREATE INDEX users_email_idx ON users (email);\n");
  RunResult r = Ferry({"lint"});
  EXPECT_EQ(r.exit_code, 11) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("migrations/2_index.sql:3:1: error [create-index-non-concurrently]"));
  EXPECT_THAT(r.out, HasSubstr("  lock:    SHARE on users\n"));
  EXPECT_THAT(r.out, HasSubstr("  instead: CREATE INDEX CONCURRENTLY users_email_idx ON users "
                               "(email);\n"));
  EXPECT_THAT(r.out, HasSubstr("2 files, 2 statements: 1 error, 0 warnings, 0 notes"));

  // Fixed: exit 0.
  Write("2_index.sql", "-- ferry:up\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n");
  RunResult ok = Ferry({"lint"});
  EXPECT_EQ(ok.exit_code, 0) << Describe(ok);
  EXPECT_THAT(ok.out, HasSubstr("0 errors"));
}

TEST_F(LintCliTest, JsonAndSarif) {
  Write("1_drop.sql", "ALTER TABLE users DROP COLUMN legacy;\nVACUUM FULL users;\n");
  RunResult j = Ferry({"lint", "--format", "json"});
  EXPECT_EQ(j.exit_code, 11) << Describe(j);
  json doc = json::parse(j.out);
  EXPECT_EQ(doc["ok"], false);
  EXPECT_EQ(doc["summary"]["files"], 1);
  EXPECT_EQ(doc["summary"]["errors"], 1);
  bool saw_vacuum = false;
  for (const json& f : doc["findings"]) {
    if (f["rule"] == "vacuum-full-cluster") {
      saw_vacuum = true;
      EXPECT_EQ(f["file"], "migrations/1_drop.sql");
      EXPECT_EQ(f["line"], 2);
      EXPECT_EQ(f["column"], 1);
      EXPECT_EQ(f["severity"], "error");
    }
  }
  EXPECT_TRUE(saw_vacuum) << j.out;
  // --json is the same as --format json.
  EXPECT_EQ(json::parse(Ferry({"lint", "--json"}).out), doc);

  RunResult s = Ferry({"lint", "--format", "sarif"});
  EXPECT_EQ(s.exit_code, 11) << Describe(s);
  json sarif = json::parse(s.out);
  EXPECT_EQ(sarif["version"], "2.1.0");
  EXPECT_EQ(sarif["runs"][0]["tool"]["driver"]["name"], "ferry lint");
  EXPECT_GE(sarif["runs"][0]["results"].size(), 2u);
  EXPECT_EQ(sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
                 ["uri"],
            "migrations/1_drop.sql");

  RunResult bad = Ferry({"lint", "--format", "xml"});
  EXPECT_EQ(bad.exit_code, 8) << Describe(bad);
}

TEST_F(LintCliTest, ParseErrorIsNamedAndOtherFilesAreStillLinted) {
  Write("1_bad.sql", "CREATE TABLE a (id int);\nALTER TABLE a ADD COLUMN;\n");
  Write("2_good.sql", "TRUNCATE users CASCADE;\n");
  RunResult r = Ferry({"lint"});
  EXPECT_EQ(r.exit_code, 11) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("migrations/1_bad.sql:2:25: error [parse-error] SQL syntax error"));
  EXPECT_THAT(r.out, HasSubstr("migrations/2_good.sql:1:1: error [truncate-cascade]"));
}

TEST_F(LintCliTest, SingleFilesAndLooseFiles) {
  Write("1_a.sql", "-- ferry:up\nDROP TABLE a;\n-- ferry:down\nCREATE TABLE a (id int);\n");
  Write("2_b.sql", "DROP TABLE b;\n");
  RunResult one = Ferry({"lint", "migrations/1_a.sql"});
  EXPECT_EQ(one.exit_code, 0) << Describe(one);  // warnings only
  EXPECT_THAT(one.out, HasSubstr("migrations/1_a.sql:2:1: warning [drop-table]"));
  EXPECT_THAT(one.out, Not(HasSubstr("2_b.sql")));
  EXPECT_THAT(one.out, HasSubstr("1 file, 1 statement"));  // the down section is not linted
  dir_.Write("seed.sql", "BEGIN;\nCREATE INDEX CONCURRENTLY i ON users (x);\nCOMMIT;\n");
  RunResult loose = Ferry({"lint", "seed.sql"});
  EXPECT_EQ(loose.exit_code, 11) << Describe(loose);
  EXPECT_THAT(loose.out, HasSubstr("seed.sql:2:1: error [concurrently-in-transaction]"));
  RunResult missing = Ferry({"lint", "nope.sql"});
  EXPECT_EQ(missing.exit_code, 7) << Describe(missing);
}

TEST_F(LintCliTest, IgnoresAndConfig) {
  Write("1_a.sql",
        "-- ferry:lint-ignore-file missing-lock-timeout runs in the maintenance window\n"
        "-- ferry:lint-ignore vacuum-full-cluster table is tiny\n"
        "VACUUM FULL users;\n"
        "-- ferry:lint-ignore vacuum-full-cluster\n"
        "VACUUM FULL users;\n");
  RunResult r = Ferry({"lint"});
  EXPECT_EQ(r.exit_code, 11) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("migrations/1_a.sql:4:1: error [lint-ignore-without-reason]"));
  EXPECT_THAT(r.out, HasSubstr("1 error, 0 warnings"));
  // The scanner accepts the comments: up/plan do not reject the file.
  dir_.Write("ferry.toml", "[lint]\ndisable = [\"lint-ignore-without-reason\"]\n");
  RunResult disabled = Ferry({"lint"});
  EXPECT_EQ(disabled.exit_code, 0) << Describe(disabled);
  dir_.Write("ferry.toml", "[lint]\ndisable = [\"no-such-rule\"]\n");
  RunResult unknown = Ferry({"lint"});
  EXPECT_EQ(unknown.exit_code, 8) << Describe(unknown);
  EXPECT_THAT(unknown.err, HasSubstr("ferry.toml:2: lint.disable names 'no-such-rule'"));
}

// ---- with PostgreSQL -------------------------------------------------------------------

class LintPgTest : public LintCliTest {
 protected:
  void SetUp() override {
    db_ = std::make_unique<FreshPgDatabase>();
    if (IsSkipped()) return;
    ASSERT_TRUE(db_->ok());
  }
  RunResult FerryDb(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"--database", db_->url()};
    all.insert(all.end(), args.begin(), args.end());
    return Ferry(all);
  }
  void Exec(const std::string& sql) {
    auto conn = OpenConnection(db_->url());
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    auto r = (*conn)->Exec(sql);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::unique_ptr<FreshPgDatabase> db_;
};

TEST_F(LintPgTest, TableSizesGradeSeverity) {
  if (!db_ || !db_->ok()) return;
  Exec("CREATE TABLE small_t (id bigint PRIMARY KEY, n int); "
       "INSERT INTO small_t SELECT g, g FROM generate_series(1, 10) g; "
       "CREATE TABLE big_t (id bigint PRIMARY KEY, n int); "
       "INSERT INTO big_t SELECT g, g FROM generate_series(1, 30000) g; ANALYZE small_t; "
       "ANALYZE big_t;");
  dir_.Write("ferry.toml", "lock_timeout = \"5s\"\n[lint]\nlarge_table_rows = 20000\n");
  Write("1_types.sql", "ALTER TABLE small_t ALTER COLUMN n TYPE bigint;\n"
                       "ALTER TABLE big_t ALTER COLUMN n TYPE bigint;\n");
  RunResult r = FerryDb({"lint", "--format", "json"});
  EXPECT_EQ(r.exit_code, 11) << Describe(r);
  json doc = json::parse(r.out);
  ASSERT_EQ(doc["findings"].size(), 2u) << r.out;
  EXPECT_EQ(doc["findings"][0]["table"], "small_t");
  EXPECT_EQ(doc["findings"][0]["severity"], "note");
  // Rows are the largest of reltuples, n_live_tup and a bytes-based estimate
  // (one 8 kB page reads as ~200 rows), so never below the true count.
  EXPECT_GE(doc["findings"][0]["table_rows"].get<long>(), 10);
  EXPECT_LT(doc["findings"][0]["table_rows"].get<long>(), 20000);
  EXPECT_EQ(doc["findings"][1]["table"], "big_t");
  EXPECT_EQ(doc["findings"][1]["severity"], "error");
  EXPECT_GE(doc["findings"][1]["table_rows"].get<long>(), 30000);
  EXPECT_TRUE(doc["server_version_num"].is_number());
  EXPECT_EQ(doc["table_sizes_known"], true);
  // Offline, the same file is an error twice.
  RunResult offline = Ferry({"lint", "--format", "json"});
  EXPECT_EQ(json::parse(offline.out)["summary"]["errors"], 2);
}

TEST_F(LintPgTest, UpRefusesErrorsAndAllowUnsafeIsRecorded) {
  if (!db_ || !db_->ok()) return;
  Exec("CREATE TABLE accounts (id bigint PRIMARY KEY, email text); "
       "INSERT INTO accounts SELECT g, 'u' || g FROM generate_series(1, 30000) g; "
       "ANALYZE accounts;");
  dir_.Write("ferry.toml", "[lint]\nlarge_table_rows = 20000\n");
  Write("1_rename.sql", "-- ferry:up\nALTER TABLE accounts RENAME COLUMN email TO mail;\n");
  RunResult refused = FerryDb({"up"});
  EXPECT_EQ(refused.exit_code, 11) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("lint found 1 error-level finding(s)"));
  EXPECT_THAT(refused.err, HasSubstr("migrations/1_rename.sql:2:1: [rename-column]"));
  EXPECT_THAT(refused.err, HasSubstr("--allow-unsafe"));
  RunResult status = FerryDb({"status", "--json"});
  EXPECT_EQ(LastJson(status.out)["pending"], 1) << Describe(status);

  RunResult up = FerryDb({"up", "--allow-unsafe"});
  ASSERT_EQ(up.exit_code, 0) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("--allow-unsafe: applying migrations/1_rename.sql despite lint "
                                "errors: rename-column at line 2"));
  json hist = LastJson(FerryDb({"history", "--json"}).out)["history"];
  ASSERT_EQ(hist.size(), 1u);
  EXPECT_EQ(hist[0]["status"], "success");
  EXPECT_THAT(hist[0]["note"].get<std::string>(),
              HasSubstr("applied with --allow-unsafe by "));
  EXPECT_THAT(hist[0]["note"].get<std::string>(), HasSubstr("despite lint: rename-column at line 2"));
}

TEST_F(LintPgTest, UpAllowsSmallTablesAndNewTables) {
  if (!db_ || !db_->ok()) return;
  Exec("CREATE TABLE tiny (id bigint PRIMARY KEY, n int); INSERT INTO tiny VALUES (1, 1);");
  Write("1_tiny.sql", "-- ferry:up\nCREATE INDEX tiny_n_idx ON tiny (n);\n");
  Write("2_new.sql", "-- ferry:up\nCREATE TABLE fresh (id bigint PRIMARY KEY, n int);\n");
  Write("3_new_index.sql", "-- ferry:up\nCREATE INDEX fresh_n_idx ON fresh (n);\n"
                           "ALTER TABLE fresh ALTER COLUMN n SET NOT NULL;\n");
  RunResult up = FerryDb({"up"});
  EXPECT_EQ(up.exit_code, 0) << Describe(up);
  // Findings that do not block are counted in one line, not enforced.
  EXPECT_THAT(up.err, HasSubstr("lint: 1 other finding (warnings, notes) do not block; "
                                "'ferry lint' lists them"));
  // With --database, lint reads only pending files: nothing is left.
  RunResult lint = FerryDb({"lint"});
  EXPECT_EQ(lint.exit_code, 0) << Describe(lint);
  EXPECT_THAT(lint.out, HasSubstr("0 files, 0 statements"));
}


// ---- run-time safety: lock_timeout retries, invalid index clean-up --------------------

using LockRetryPgTest = LintPgTest;

TEST_F(LockRetryPgTest, LockTimeoutIsRetriedAndReadersAreNeverBlockedLonger) {
  if (!db_ || !db_->ok()) return;
  Exec("CREATE TABLE busy (id int); INSERT INTO busy SELECT generate_series(1, 100);");
  Write("1_add.sql", "-- ferry:up\n-- ferry:lock_timeout 200ms\n"
                     "ALTER TABLE busy ADD COLUMN note text;\n");
  // A long transaction holds ACCESS SHARE on busy (a report query, say).
  auto holder = OpenConnection(db_->url());
  ASSERT_TRUE(holder.ok()) << holder.status().ToString();
  ASSERT_OK((*holder)->Begin());
  ASSERT_TRUE((*holder)->Query("SELECT count(*) FROM busy").ok());

  // Readers keep querying and time every query.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> worst_ms{0};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    auto conn = OpenConnection(db_->url());
    if (!conn.ok()) return;
    while (!stop) {
      auto start = std::chrono::steady_clock::now();
      if (!(*conn)->Query("SELECT count(*) FROM busy").ok()) break;
      int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
      if (ms > worst_ms) worst_ms = ms;
      ++reads;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  std::string out = dir_.File("up.out");
  int pid = StartFerry({"--database", db_->url(), "--dir", dir_.File("migrations"), "up"}, out,
                       {"FERRY_LOCK_RETRIES=10", "FERRY_LOCK_RETRY_DELAY=200ms"});
  // Held for 3 s: a reader queued behind a waiting ACCESS EXCLUSIVE request
  // without lock_timeout would wait about that long.
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  ASSERT_OK((*holder)->Commit());  // the long transaction ends; a retry gets the lock
  int code = WaitFerry(pid);
  stop = true;
  reader.join();
  std::string err = ReadFile(out + ".err");
  EXPECT_EQ(code, 0) << err;
  EXPECT_THAT(err, HasSubstr("lock_timeout hit (another transaction holds a conflicting lock); "
                             "retry 1 of 10"));
  EXPECT_GT(reads.load(), 5);
  // A waiting ACCESS EXCLUSIVE request blocks readers at most for lock_timeout
  // (200 ms), far below the 3 s the holder kept its lock; the slack is for a
  // loaded machine (sanitizer builds, parallel tests).
  EXPECT_LT(worst_ms.load(), 1200) << "a reader waited " << worst_ms.load() << " ms";
  json hist = LastJson(FerryDb({"history", "--json"}).out)["history"];
  ASSERT_EQ(hist.size(), 1u);
  EXPECT_EQ(hist[0]["status"], "success");
  EXPECT_GT(hist[0]["attempts"].get<int>(), 1);
}

TEST_F(LockRetryPgTest, GivesUpAfterTheRetriesWithExitCode4) {
  if (!db_ || !db_->ok()) return;
  Exec("CREATE TABLE held (id int);");
  dir_.Write("ferry.toml", "lock_timeout = \"100ms\"\nlock_retries = 2\nlock_retry_delay = \"50ms\"\n");
  Write("1_add.sql", "-- ferry:up\nALTER TABLE held ADD COLUMN note text;\n");
  auto holder = OpenConnection(db_->url());
  ASSERT_TRUE(holder.ok());
  ASSERT_OK((*holder)->Begin());
  ASSERT_TRUE((*holder)->Query("SELECT count(*) FROM held").ok());
  RunResult up = FerryDb({"up"});
  EXPECT_EQ(up.exit_code, 4) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("retry 2 of 2"));
  EXPECT_THAT(up.err, HasSubstr("sqlstate: 55P03"));
  EXPECT_THAT(up.err, HasSubstr("lock_attempts: 3"));
  ASSERT_OK((*holder)->Rollback());
}

TEST_F(LockRetryPgTest, InvalidIndexFromAFailedConcurrentBuildIsDroppedBeforeRetrying) {
  if (!db_ || !db_->ok()) return;
  Exec("CREATE TABLE dup (v int); INSERT INTO dup VALUES (1), (1), (2);");
  Write("1_idx.sql", "-- ferry:up\nCREATE UNIQUE INDEX CONCURRENTLY dup_v_key ON dup (v);\n");
  RunResult first = FerryDb({"up"});
  EXPECT_NE(first.exit_code, 0) << Describe(first);
  auto conn = OpenConnection(db_->url());
  ASSERT_TRUE(conn.ok());
  auto invalid = (*conn)->Query(
      "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
      "WHERE c.relname = 'dup_v_key' AND NOT i.indisvalid");
  ASSERT_TRUE(invalid.ok());
  EXPECT_EQ(*invalid->rows[0][0], "1");  // what PostgreSQL leaves behind
  Exec("DELETE FROM dup WHERE ctid IN (SELECT max(ctid) FROM dup GROUP BY v HAVING count(*) > 1)");
  RunResult second = FerryDb({"up"});
  ASSERT_EQ(second.exit_code, 0) << Describe(second);
  EXPECT_THAT(second.err, HasSubstr("dropped the INVALID index public.dup_v_key"));
  auto valid = (*conn)->Query(
      "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
      "WHERE c.relname = 'dup_v_key' AND i.indisvalid");
  ASSERT_TRUE(valid.ok());
  EXPECT_EQ(*valid->rows[0][0], "1");
}

}  // namespace
}  // namespace ferry::testing
