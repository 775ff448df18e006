// The examples run as a user would run them: the quickstart migrations with
// the ferry binary, and the EnsureReady program that links libferry.
#include <algorithm>
#include <filesystem>
#include <thread>
#include <nlohmann/json.hpp>

#include "drivers/registry.h"
#include "ferry/backfill.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;

std::string QuickstartDir() { return std::string(FERRY_SOURCE_DIR) + "/examples/quickstart/migrations"; }

// Quickstart on both engines: SQLite (the default) and PostgreSQL.
class QuickstartTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      pg_ = std::make_unique<FreshPgDatabase>();
      if (!pg_->ok()) GTEST_SKIP() << "no PostgreSQL";
      url_ = pg_->url();
    } else {
      url_ = "sqlite:" + dir_.File("ferry.db");
    }
  }
  TempDir dir_;
  std::unique_ptr<FreshPgDatabase> pg_;
  std::string url_;
};

TEST_P(QuickstartTest, AppliesTheFiveStepChangeAndRollsBack) {
  RunResult up = RunFerry({"up", "--database", url_, "--dir", QuickstartDir()});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_THAT(up.out, HasSubstr("applied 4 migrations"));

  auto conn = OpenConnection(url_);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto mismatches = (*conn)->Query(
      "SELECT count(*) FROM users WHERE email_verified_v2 IS NULL OR "
      "email_verified_v2 <> email_verified");
  ASSERT_TRUE(mismatches.ok()) << mismatches.status().ToString();
  EXPECT_EQ(mismatches->Text(0, 0), "0");

  RunResult status = RunFerry({"status", "--json", "--exit-code", "--database", url_, "--dir",
                               QuickstartDir()});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  auto j = nlohmann::json::parse(status.out);
  EXPECT_EQ(j["applied"], 4);
  EXPECT_EQ(j["pending"], 0);
  EXPECT_EQ(j["current_version"], "20251231120200");

  RunResult down = RunFerry({"down", "--steps", "3", "--database", url_, "--dir", QuickstartDir()});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  auto cols = (*conn)->Query("SELECT email_verified_v2 FROM users");
  EXPECT_FALSE(cols.ok()) << "the v2 columns are dropped by the down sections";

  RunResult redo = RunFerry({"up", "--database", url_, "--dir", QuickstartDir()});
  ASSERT_EQ(redo.exit_code, 0) << redo.err;
  RunResult history = RunFerry({"history", "--json", "--database", url_, "--dir", QuickstartDir()});
  ASSERT_EQ(history.exit_code, 0);
  auto h = nlohmann::json::parse(history.out)["history"];
  int undo = 0;
  for (const auto& row : h) undo += row["kind"] == "undo" ? 1 : 0;
  EXPECT_EQ(undo, 3);
}

INSTANTIATE_TEST_SUITE_P(Engines, QuickstartTest, ::testing::Values("sqlite", "postgres"));

TEST(EnsureReadyExampleTest, MigratesAtStartUpThenFindsNothingToDo) {
  TempDir dir;
  std::string url = "sqlite:" + dir.File("app.db");
  RunResult check = RunBinary(FERRY_ENSURE_READY_EXAMPLE, {url, QuickstartDir(), "--check-only"});
  EXPECT_EQ(check.exit_code, 1) << check.err << check.out;
  EXPECT_THAT(check.out, HasSubstr("NOT READY"));
  EXPECT_THAT(check.out, HasSubstr("4 migration(s) pending"));

  RunResult first = RunBinary(FERRY_ENSURE_READY_EXAMPLE, {url, QuickstartDir()});
  ASSERT_EQ(first.exit_code, 0) << first.err << first.out;
  EXPECT_THAT(first.out, HasSubstr("schema (none) -> 20251231120200, applied 4, pending 0, ready"));
  RunResult second = RunBinary(FERRY_ENSURE_READY_EXAMPLE, {url, QuickstartDir()});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.out, HasSubstr("applied 0"));

  RunResult too_new = RunBinary(FERRY_ENSURE_READY_EXAMPLE,
                                {url, QuickstartDir(), "--current", "20251231120000"});
  EXPECT_EQ(too_new.exit_code, 1) << too_new.out;
  EXPECT_THAT(too_new.out, HasSubstr("newer than this application's 20251231120000"));
  RunResult old = RunBinary(FERRY_ENSURE_READY_EXAMPLE,
                            {url, QuickstartDir(), "--min", "20260101000000"});
  EXPECT_EQ(old.exit_code, 1);
  EXPECT_THAT(old.out, HasSubstr("older than the minimum supported"));
}

// Seed 003's AllowDowngrade: a release rolled back to one that lacks the
// newest migration file. Refused (not ready, "upgrade the application
// first") by default; with --allow-downgrade it starts, naming the newer
// version in a note, and nothing is rolled back.
TEST(EnsureReadyExampleTest, AllowDowngradeStartsAnOlderReleaseOnANewerSchema) {
  TempDir dir;
  std::string url = "sqlite:" + dir.File("app.db");
  RunResult first = RunBinary(FERRY_ENSURE_READY_EXAMPLE, {url, QuickstartDir()});
  ASSERT_EQ(first.exit_code, 0) << first.err << first.out;
  // The older release: every quickstart file but the newest.
  std::string older = dir.File("older");
  std::filesystem::create_directories(older);
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(QuickstartDir())) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 2u);
  for (size_t i = 0; i + 1 < files.size(); ++i) {
    std::filesystem::copy(files[i], older / files[i].filename(),
                          std::filesystem::copy_options::recursive);
  }
  const std::string current = "20251231120100";
  RunResult refused = RunBinary(FERRY_ENSURE_READY_EXAMPLE, {url, older, "--current", current});
  EXPECT_NE(refused.exit_code, 0) << refused.out << refused.err;
  EXPECT_THAT(refused.out + refused.err, HasSubstr("applied but no file has it"));

  RunResult allowed = RunBinary(FERRY_ENSURE_READY_EXAMPLE,
                                {url, older, "--current", current, "--allow-downgrade"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.out << allowed.err;
  EXPECT_THAT(allowed.out, HasSubstr("ready"));
  EXPECT_THAT(allowed.out, HasSubstr("note: schema version 20251231120200 is newer than this "
                                     "application's " + current + ": running anyway"));
  EXPECT_THAT(allowed.out, HasSubstr("a newer release applied it"));
  // The same through seed 003's environment name; the schema is untouched.
  RunResult env = RunBinary(FERRY_ENSURE_READY_EXAMPLE, {url, older, "--current", current},
                            {"SCYLLADB_ALLOW_DOWNGRADE=true"});
  EXPECT_EQ(env.exit_code, 0) << env.out << env.err;
  EXPECT_THAT(env.out, HasSubstr("schema 20251231120200 -> 20251231120200, applied 0"));
}

// Seed 003's BackupBeforeMigration on an engine without a schema describer:
// refused before anything is applied, naming what to use instead.
TEST(EnsureReadyExampleTest, BackupBeforeMigrationOnSqliteIsRefusedBeforeApplying) {
  TempDir dir;
  std::string url = "sqlite:" + dir.File("app.db");
  RunResult r = RunBinary(FERRY_ENSURE_READY_EXAMPLE,
                          {url, QuickstartDir(), "--backup", dir.File("backups")});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("--backup is not available on sqlite"));
  RunResult check = RunBinary(FERRY_ENSURE_READY_EXAMPLE, {url, QuickstartDir(), "--check-only"});
  EXPECT_THAT(check.out, HasSubstr("4 migration(s) pending")) << check.out << check.err;
}

TEST(EnsureReadyExampleTest, ManyInstancesStartingAtOnceOnPostgres) {
  FreshPgDatabase db;
  if (!db.ok()) return;
  // Four "replicas" start together; each must end up ready, migrations once.
  std::vector<std::thread> threads;
  std::vector<RunResult> results(4);
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = RunBinary(FERRY_ENSURE_READY_EXAMPLE, {db.url(), QuickstartDir()});
    });
  }
  for (auto& t : threads) t.join();
  size_t applied_total = 0;
  for (const auto& r : results) {
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("ready"));
    if (r.out.find("applied 4") != std::string::npos) ++applied_total;
  }
  EXPECT_EQ(applied_total, 1u) << "exactly one instance applies the migrations";
  auto conn = OpenConnection(db.url());
  ASSERT_TRUE(conn.ok());
  auto n = (*conn)->Query("SELECT count(*) FROM ferry_schema_history");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->Text(0, 0), "4");
}

// The public data API (include/ferry/copy.h, verify.h) from a program that
// includes nothing else: PostgreSQL -> SQLite, identical; a changed row
// found by key; a second call finds the job done.
TEST(MoveDataExampleTest, CopiesAndVerifiesThroughThePublicHeaders) {
  FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  auto conn = OpenConnection(db.url());
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Exec("CREATE TABLE notes (id bigint PRIMARY KEY, body text, n int);"
                            "INSERT INTO notes SELECT g, 'note ' || g, g % 7 FROM "
                            "generate_series(1, 5000) g")
                  .ok());
  TempDir dir;
  const std::string target = "sqlite:" + dir.File("out.db");
  RunResult first = RunBinary(FERRY_MOVE_DATA_EXAMPLE, {db.url(), target, "notes"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_THAT(first.out, HasSubstr("copied 5000 rows"));
  EXPECT_THAT(first.out, HasSubstr("notes: 5000 rows, 0 missing, 0 extra, 0 changed"));
  EXPECT_THAT(first.out, HasSubstr("identical"));

  ASSERT_TRUE((*conn)->Exec("UPDATE notes SET body = 'edited' WHERE id = 42").ok());
  RunResult second = RunBinary(FERRY_MOVE_DATA_EXAMPLE, {db.url(), target, "notes"});
  EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
  EXPECT_THAT(second.out, HasSubstr("already done"));
  EXPECT_THAT(second.out, HasSubstr("1 changed"));
  EXPECT_THAT(second.out, HasSubstr("changed (42): body"));

  RunResult bad = RunBinary(FERRY_MOVE_DATA_EXAMPLE, {db.url(), target, "no_such_table"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("no_such_table"));
}

// include/ferry/backfill.h: the batches run, the integrity check holds, a
// second call with the same request finds nothing left; a check that fails
// is an error naming it.
TEST(PublicApiTest, BackfillTableUpdatesInBatchesAndChecks) {
  FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  auto conn = OpenConnection(db.url());
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Exec("CREATE TABLE items (id bigint PRIMARY KEY, a int, b int);"
                            "INSERT INTO items SELECT g, g, NULL FROM generate_series(1, 3000) g")
                  .ok());
  ::ferry::BackfillRequest req;
  req.url = db.url();
  req.table = "items";
  req.set = "b = a * 2";
  req.where = "b IS NULL";
  req.batch_rows = 500;
  auto done = ::ferry::BackfillTable(req);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->rows_updated, 3000);
  EXPECT_GE(done->batches, 2);
  auto left = (*conn)->Query("SELECT count(*) FROM items WHERE b IS DISTINCT FROM a * 2");
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->Text(0, 0), "0");
  req.check_query = "SELECT id FROM items WHERE id = 1";  // returns a row: must fail
  req.job_id = "api-check";
  auto failed = ::ferry::BackfillTable(req);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kFailedPrecondition);
}

TEST(EnsureReadyExampleTest, UnreachableDatabaseIsAnError) {
  RunResult r = RunBinary(FERRY_ENSURE_READY_EXAMPLE,
                          {"postgres://app:pw123@127.0.0.1:1/app", QuickstartDir()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("pw123")));
}

}  // namespace
}  // namespace ferry::testing
