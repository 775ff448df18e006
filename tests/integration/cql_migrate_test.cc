// ferry's schema-migration commands on CQL, end to end: the built ferry
// binary against the throw-away Cassandra node (FERRY_TEST_CQL_URL). Each
// test works in a keyspace of its own (SimpleStrategy, RF 1), dropped
// afterwards, so parallel runs do not meet.
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "core/url.h"
#include "drivers/cql/cql_connection.h"
#include "test_util.h"

namespace ferry::cql {
namespace {

using ::ferry::testing::RunFerry;
using ::ferry::testing::RunResult;
using ::ferry::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

std::atomic<int> keyspace_counter{0};

class CqlMigrateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string base = ::ferry::testing::CqlUrl();
    if (base.empty()) return;
    auto url = Url::Parse(base);
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    auto admin = CqlConnection::Open(*url, {});
    ASSERT_TRUE(admin.ok()) << admin.status().ToString();
    admin_ = std::move(admin).value();
    keyspace_ = fmt::format("ferry_mig_{}_{}", getpid(), keyspace_counter++);
    ASSERT_OK(admin_
                  ->Exec(fmt::format("CREATE KEYSPACE {} WITH replication = {{'class': "
                                     "'SimpleStrategy', 'replication_factor': 1}}",
                                     keyspace_))
                  .status());
    ASSERT_OK(admin_->WaitForSchemaAgreement(std::chrono::seconds(60)));
    // The same URL with this test's keyspace as its path.
    const std::string from = "/" + admin_->keyspace();
    size_t at = base.rfind(from);
    ASSERT_NE(at, std::string::npos) << "no keyspace in FERRY_TEST_CQL_URL";
    url_ = base.substr(0, at) + "/" + keyspace_ + base.substr(at + from.size());
  }

  void TearDown() override {
    if (admin_ && !keyspace_.empty()) {
      (void)admin_->Exec("DROP KEYSPACE IF EXISTS " + keyspace_);
    }
  }

  // `ferry <command> -d URL --dir DIR [more...]`.
  RunResult Ferry(const std::string& command, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {command, "-d", url_, "--dir", dir_.path()};
    args.insert(args.end(), more.begin(), more.end());
    return RunFerry(args, {"FERRY_CACHE_DIR=off"});
  }

  json Json(const std::string& command) {
    RunResult r = Ferry(command, {"--json"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  // The state of each migration in `ferry status --json`, by version.
  std::map<std::string, std::string> States() {
    std::map<std::string, std::string> out;
    json j = Json("status");
    for (const json& m : j["migrations"]) {
      out[m["version"].get<std::string>()] = m["state"].get<std::string>();
    }
    return out;
  }

  // The newest history row of each version (undo rows apart).
  std::map<std::string, json> LatestRows() {
    std::map<std::string, json> out;
    const json history = Json("history");  // outlives the loop
    for (const json& row : history["history"]) {
      if (row["kind"] != "undo") out[row["version"].get<std::string>()] = row;
    }
    return out;
  }

  int64_t Count(const std::string& table) {
    auto r = admin_->Query(fmt::format("SELECT count(*) FROM {}.{}", keyspace_, table));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && !r->empty() ? std::stoll(r->Text(0, 0)) : -1;
  }

  bool TableExists(const std::string& table) {
    auto r = admin_->Query(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?",
        {keyspace_, table});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && !r->empty();
  }

  std::unique_ptr<CqlConnection> admin_;
  std::string keyspace_;
  std::string url_;
  TempDir dir_;
};

// (a) Three migrations, semantic versions ordered numerically (1.10.0 after
// 1.2.0), one of them several statements: applied in order, status and
// history show them.
TEST_F(CqlMigrateTest, UpAppliesSemanticVersionsInOrderAndRecordsThem) {
  if (!admin_) return;
  dir_.Write("V1.0.0__create_users.cql",
             "CREATE TABLE users (id int PRIMARY KEY, name text);\n");
  dir_.Write("V1.10.0__users_email.cql",
             "-- needs the orders table of 1.2.0 to exist already\n"
             "ALTER TABLE users ADD email text;\n"
             "INSERT INTO orders (id, user_id) VALUES (2, 1);\n");
  dir_.Write("V1.2.0__orders.cql",
             "CREATE TABLE orders (id int PRIMARY KEY, user_id int);\n"
             "CREATE INDEX orders_by_user ON orders (user_id);\n"
             "INSERT INTO users (id, name) VALUES (1, 'ada');\n"
             "INSERT INTO orders (id, user_id) VALUES (1, 1);\n");

  RunResult up = Ferry("up");
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_EQ(Count("orders"), 2);
  EXPECT_THAT(up.out + up.err, Not(HasSubstr("ferry_cql_secret")));

  std::map<std::string, std::string> states = States();
  EXPECT_EQ(states["1.0.0"], "applied");
  EXPECT_EQ(states["1.2.0"], "applied");
  EXPECT_EQ(states["1.10.0"], "applied");
  json status = Json("status");
  EXPECT_EQ(status["current_version"], "1.10.0");
  EXPECT_EQ(status["pending"], 0);
  EXPECT_TRUE(status["lock"].is_null()) << status["lock"].dump();

  json history = Json("history")["history"];
  ASSERT_EQ(history.size(), 3u) << history.dump(2);
  const char* order[] = {"1.0.0", "1.2.0", "1.10.0"};
  const int statements[] = {1, 4, 2};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(history[i]["version"], order[i]);
    EXPECT_EQ(history[i]["status"], "success");
    EXPECT_EQ(history[i]["execution"], "no-transaction");
    EXPECT_EQ(history[i]["statements_done"], statements[i]);
    EXPECT_EQ(history[i]["id"], static_cast<int>(i) + 1);
    EXPECT_FALSE(history[i]["checksum"].get<std::string>().empty());
    EXPECT_THAT(history[i]["completed_at"].get<std::string>(), HasSubstr("T"));
  }

  RunResult text = Ferry("status");
  EXPECT_EQ(text.exit_code, 0) << text.out << text.err;
  EXPECT_THAT(text.out, HasSubstr("1.10.0"));
  RunResult again = Ferry("up");
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(Json("history")["history"].size(), 3u) << "nothing runs twice";
}

// (b) The 2nd of 3 statements is wrong: the failure names file:line and the
// server's message, the history keeps statements_done 1; after the fix the
// next up resumes at statement 2 (the CREATE TABLE of statement 1, which
// would fail if run again, is not re-run).
TEST_F(CqlMigrateTest, FailedStatementIsRecordedAndTheNextUpResumesThere) {
  if (!admin_) return;
  dir_.Write("1_base.cql", "-- ferry:up\nCREATE TABLE base (id int PRIMARY KEY);\n");
  const std::string file = "2_accounts.cql";
  const std::string head =
      "-- ferry:up\n"
      "CREATE TABLE accounts (id int PRIMARY KEY, owner text);\n";
  dir_.Write(file, head +
                       "INSERT INTO accounts (id, owner, no_such_column) VALUES (1, 'a', 2);\n"
                       "INSERT INTO accounts (id, owner) VALUES (2, 'b');\n"
                       "-- ferry:down\nDROP TABLE accounts;\n");

  RunResult failed = Ferry("up");
  EXPECT_NE(failed.exit_code, 0) << failed.out << failed.err;
  EXPECT_THAT(failed.err, HasSubstr(file + ":3: statement 2 of 3 failed"));
  EXPECT_THAT(failed.err, HasSubstr("no_such_column"));  // the server's message
  EXPECT_THAT(failed.out + failed.err, Not(HasSubstr("ferry_cql_secret")));

  std::map<std::string, json> rows = LatestRows();
  ASSERT_TRUE(rows.count("2")) << Json("history").dump(2);
  EXPECT_EQ(rows["1"]["status"], "success");
  EXPECT_EQ(rows["2"]["status"], "failed");
  EXPECT_EQ(rows["2"]["statements_done"], 1);
  EXPECT_EQ(rows["2"]["execution"], "no-transaction");
  EXPECT_THAT(rows["2"]["error_message"].get<std::string>(), HasSubstr(file + ":3"));
  EXPECT_THAT(rows["2"]["error_message"].get<std::string>(), HasSubstr("no_such_column"));
  EXPECT_TRUE(TableExists("accounts"));
  EXPECT_EQ(States()["2"], "failed");

  // The fix: statement 2 corrected, statement 1 untouched (it would fail
  // with "already exists" if it ran again).
  dir_.Write(file, head +
                       "INSERT INTO accounts (id, owner) VALUES (1, 'a');\n"
                       "INSERT INTO accounts (id, owner) VALUES (2, 'b');\n"
                       "-- ferry:down\nDROP TABLE accounts;\n");
  RunResult resumed = Ferry("up");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  EXPECT_THAT(resumed.out + resumed.err, HasSubstr("resuming at statement 2"));
  EXPECT_EQ(Count("accounts"), 2);
  rows = LatestRows();
  EXPECT_EQ(rows["2"]["status"], "success");
  EXPECT_EQ(rows["2"]["statements_done"], 3);
  EXPECT_EQ(rows["2"]["attempts"], 2);
  EXPECT_EQ(rows["2"]["error_message"], "");
  EXPECT_EQ(States()["2"], "applied");
}

// (c) down runs the newest migration's down section, statement by
// statement; status shows it pending again, and up applies it again.
TEST_F(CqlMigrateTest, DownRollsBackTheNewestMigration) {
  if (!admin_) return;
  dir_.Write("1_events.cql",
             "-- ferry:up\nCREATE TABLE events (id int PRIMARY KEY);\n"
             "-- ferry:down\nDROP TABLE events;\n");
  dir_.Write("2_tags.cql",
             "-- ferry:up\n"
             "CREATE TABLE tags (id int PRIMARY KEY, name text);\n"
             "CREATE TYPE address (street text, city text);\n"
             "-- ferry:down\n"
             "DROP TYPE address;\n"
             "DROP TABLE tags;\n");
  RunResult up = Ferry("up");
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  ASSERT_TRUE(TableExists("tags"));

  RunResult down = Ferry("down");
  ASSERT_EQ(down.exit_code, 0) << down.out << down.err;
  EXPECT_FALSE(TableExists("tags"));
  EXPECT_TRUE(TableExists("events"));
  std::map<std::string, std::string> states = States();
  EXPECT_EQ(states["1"], "applied");
  EXPECT_EQ(states["2"], "pending");
  json status = Json("status");
  EXPECT_EQ(status["current_version"], "1");

  bool undo_recorded = false;
  const json history = Json("history");
  for (const json& row : history["history"]) {
    if (row["kind"] == "undo" && row["version"] == "2") {
      undo_recorded = true;
      EXPECT_EQ(row["status"], "success");
      EXPECT_EQ(row["statements_done"], 2);
    }
  }
  EXPECT_TRUE(undo_recorded);
  EXPECT_EQ(LatestRows()["2"]["status"], "rolled_back");

  RunResult again = Ferry("up");
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_TRUE(TableExists("tags"));
  EXPECT_EQ(States()["2"], "applied");
}

// (d) Two runs at once: the lease lets one apply; the other waits and finds
// nothing left to do (or reports who holds the lease). Each migration runs
// exactly once: a CREATE TABLE without IF NOT EXISTS would fail the second
// time, and the INSERT's counter would count two.
TEST_F(CqlMigrateTest, ConcurrentUpsApplyEachMigrationOnce) {
  if (!admin_) return;
  dir_.Write("1_counter.cql",
             "CREATE TABLE runs (id int PRIMARY KEY, n counter);\n");
  dir_.Write("2_bump.cql", "UPDATE runs SET n = n + 1 WHERE id = 1;\n");
  dir_.Write("3_more.cql",
             "CREATE TABLE more (id int PRIMARY KEY);\n"
             "UPDATE runs SET n = n + 1 WHERE id = 2;\n");
  TempDir logs;
  std::vector<std::string> args = {"up", "-d", url_, "--dir", dir_.path(), "--lock-wait", "120s"};
  int a = ::ferry::testing::StartFerry(args, logs.File("a"), {"FERRY_CACHE_DIR=off"});
  int b = ::ferry::testing::StartFerry(args, logs.File("b"), {"FERRY_CACHE_DIR=off"});
  int code_a = ::ferry::testing::WaitFerry(a);
  int code_b = ::ferry::testing::WaitFerry(b);
  const std::string out_a = ::ferry::testing::ReadFile(logs.File("a")) +
                            ::ferry::testing::ReadFile(logs.File("a") + ".err");
  const std::string out_b = ::ferry::testing::ReadFile(logs.File("b")) +
                            ::ferry::testing::ReadFile(logs.File("b") + ".err");
  EXPECT_EQ(code_a, 0) << out_a;
  EXPECT_EQ(code_b, 0) << out_b;

  json history = Json("history")["history"];
  ASSERT_EQ(history.size(), 3u) << history.dump(2);
  for (const json& row : history) {
    EXPECT_EQ(row["status"], "success");
    EXPECT_EQ(row["attempts"], 1);
  }
  auto r = admin_->Query(fmt::format("SELECT id, n FROM {}.runs", keyspace_));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->rows.size(), 2u);
  for (size_t i = 0; i < r->rows.size(); ++i) EXPECT_EQ(r->Text(i, 1), "1");
  json status = Json("status");
  EXPECT_TRUE(status["lock"].is_null()) << "the lease is given up: " << status["lock"].dump();
}

// The lease holder is visible while held: status names it, and an up that
// may not wait says who holds it.
TEST_F(CqlMigrateTest, StatusAndUpNameTheLeaseHolder) {
  if (!admin_) return;
  dir_.Write("1_a.cql", "CREATE TABLE a (id int PRIMARY KEY);\n");
  ASSERT_EQ(Ferry("up").exit_code, 0);
  // Another runner's lease, as ferry writes it (30 s TTL).
  ASSERT_OK(admin_
                ->Query(fmt::format("INSERT INTO {}.ferry_schema_history_lock (name, owner, "
                                    "acquired_at, renewed_at) VALUES ('migrations', "
                                    "'someone@elsewhere pid 7', toTimestamp(now()), "
                                    "toTimestamp(now())) USING TTL 30",
                                    keyspace_))
                .status());
  json status = Json("status");
  ASSERT_FALSE(status["lock"].is_null());
  EXPECT_THAT(status["lock"]["who"].get<std::string>(), HasSubstr("someone@elsewhere pid 7"));
  dir_.Write("2_b.cql", "CREATE TABLE b (id int PRIMARY KEY);\n");
  RunResult up = Ferry("up", {"--lock-wait", "1s"});
  EXPECT_NE(up.exit_code, 0);
  EXPECT_THAT(up.err, HasSubstr("someone@elsewhere pid 7"));
  EXPECT_FALSE(TableExists("b"));
  ASSERT_OK(admin_
                ->Exec(fmt::format("DELETE FROM {}.ferry_schema_history_lock WHERE name = "
                                   "'migrations'",
                                   keyspace_))
                .status());
  EXPECT_EQ(Ferry("up").exit_code, 0);
  EXPECT_TRUE(TableExists("b"));
}

// (e) validate compares the checksums of applied files.
TEST_F(CqlMigrateTest, ValidateCatchesAChangedAppliedFile) {
  if (!admin_) return;
  dir_.Write("1_items.cql", "-- ferry:up\nCREATE TABLE items (id int PRIMARY KEY);\n");
  ASSERT_EQ(Ferry("up").exit_code, 0);
  RunResult clean = Ferry("validate");
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;

  dir_.Write("1_items.cql",
             "-- ferry:up\nCREATE TABLE items (id int PRIMARY KEY, extra text);\n");
  RunResult changed = Ferry("validate");
  EXPECT_NE(changed.exit_code, 0) << changed.out << changed.err;
  EXPECT_THAT(changed.out, HasSubstr("1_items.cql: checksum"));
  json j = json::parse(Ferry("validate", {"--json"}).out, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["problems"].size(), 1u) << j.dump(2);
  EXPECT_EQ(j["problems"][0]["kind"], "checksum");
  EXPECT_EQ(States()["1"], "changed");
  RunResult up = Ferry("up");
  EXPECT_NE(up.exit_code, 0);
  EXPECT_THAT(up.err, HasSubstr("checksum differs"));
}

// Malformed CQL is refused before anything runs (the splitter), or named
// with file:line and the server's message when the server refuses it.
TEST_F(CqlMigrateTest, MalformedCqlNamesFileLineAndServerMessage) {
  if (!admin_) return;
  dir_.Write("1_bad.cql", "-- ferry:up\nCREATE TABLE ok1 (id int PRIMARY KEY);\n"
                          "CREATE TABLEE broken (id int PRIMARY KEY);\n");
  RunResult up = Ferry("up");
  EXPECT_NE(up.exit_code, 0);
  EXPECT_THAT(up.err, HasSubstr("1_bad.cql:3: statement 2 of 2 failed"));
  EXPECT_THAT(up.err, HasSubstr("SyntaxError"));
  EXPECT_EQ(LatestRows()["1"]["status"], "failed");

  dir_.Write("2_unterminated.cql", "-- ferry:up\nINSERT INTO ok1 (id) VALUES ('oops);\n");
  RunResult unterminated = Ferry("up");
  EXPECT_NE(unterminated.exit_code, 0);
  EXPECT_THAT(unterminated.err, HasSubstr("2_unterminated.cql"));
  EXPECT_EQ(LatestRows().count("2"), 0u) << "nothing recorded for a file that does not parse";
}

// baseline marks an existing keyspace; files up to it count as applied.
TEST_F(CqlMigrateTest, BaselineMarksFilesAsApplied) {
  if (!admin_) return;
  dir_.Write("1_old.cql", "CREATE TABLE old_one (id int PRIMARY KEY);\n");
  dir_.Write("2_new.cql", "CREATE TABLE new_one (id int PRIMARY KEY);\n");
  RunResult baseline = Ferry("baseline", {"1"});
  ASSERT_EQ(baseline.exit_code, 0) << baseline.out << baseline.err;
  std::map<std::string, std::string> states = States();
  EXPECT_EQ(states["2"], "pending");
  ASSERT_EQ(Ferry("up").exit_code, 0);
  EXPECT_FALSE(TableExists("old_one"));
  EXPECT_TRUE(TableExists("new_one"));
}

// examples/ipfs-cluster (seed 003's schema) on the real server: lint-clean,
// applies, reports 1.1.0, rolls 1.1.0 back with goto, applies it again.
TEST_F(CqlMigrateTest, IpfsClusterExampleAppliesRollsBackAndReapplies) {
  if (!admin_) GTEST_FAIL() << "FERRY_TEST_CQL_URL is not set";
  const std::string example = std::string(FERRY_SOURCE_DIR) + "/examples/ipfs-cluster/migrations";
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> all = {"-d", url_, "--dir", example};
    all.insert(all.end(), args.begin(), args.end());
    return RunFerry(all, {"FERRY_CACHE_DIR=off"});
  };
  auto tables = [&]() {
    std::set<std::string> out;
    auto r = admin_->Query("SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
                           {std::string("ipfs_pins")});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    for (size_t i = 0; r.ok() && i < r->rows.size(); ++i) out.insert(r->Text(i, 0));
    return out;
  };
  auto has_column = [&](const std::string& table, const std::string& column) {
    auto r = admin_->Query(
        "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND "
        "table_name = ? AND column_name = ?",
        {std::string("ipfs_pins"), table, column});
    return r.ok() && !r->empty();
  };
  (void)admin_->Exec("DROP KEYSPACE IF EXISTS ipfs_pins");
  RunResult lint = RunFerry({"lint", example});
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
  EXPECT_THAT(lint.out, HasSubstr("0 errors, 0 warnings"));

  RunResult up = run({"up"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  json status = json::parse(run({"status", "--json"}).out);
  EXPECT_EQ(status["current_version"], "1.1.0") << status.dump();
  EXPECT_EQ(status["applied"], 2);
  EXPECT_EQ(tables().size(), 10u);
  EXPECT_TRUE(has_column("pins_by_cid", "priority"));
  json history = json::parse(run({"history", "--json"}).out)["history"];
  ASSERT_EQ(history.size(), 2u);
  for (const auto& row : history) EXPECT_EQ(row["status"], "success") << row.dump();
  EXPECT_EQ(run({"validate"}).exit_code, 0);
  RunResult report = run({"report", "json"});
  EXPECT_EQ(report.exit_code, 0) << report.err;
  EXPECT_THAT(report.out, HasSubstr("1.1.0"));

  RunResult back = run({"goto", "1.0.0"});
  ASSERT_EQ(back.exit_code, 0) << back.out << back.err;
  EXPECT_EQ(tables().size(), 7u);
  EXPECT_FALSE(tables().count("partition_stats"));
  EXPECT_FALSE(has_column("pins_by_cid", "priority"));
  EXPECT_EQ(json::parse(run({"status", "--json"}).out)["current_version"], "1.0.0");

  RunResult again = run({"up"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(tables().size(), 10u);
  EXPECT_TRUE(has_column("pins_by_peer", "error_message"));
  EXPECT_EQ(run({"validate"}).exit_code, 0) << "no drift after the round trip";

  // A table and a column dropped by hand are drift (seed 003's message).
  ASSERT_TRUE(admin_->Exec("DROP TABLE ipfs_pins.partition_stats").ok());
  ASSERT_TRUE(admin_->Exec("ALTER TABLE ipfs_pins.pins_by_cid DROP priority").ok());
  ASSERT_TRUE(admin_->WaitForSchemaAgreement(std::chrono::seconds(60)).ok());
  RunResult drift = run({"validate"});
  EXPECT_NE(drift.exit_code, 0) << drift.out << drift.err;
  const std::string all = drift.out + drift.err;
  EXPECT_THAT(all, HasSubstr("missing table ipfs_pins.partition_stats (made by 1.1.0)"));
  EXPECT_THAT(all, HasSubstr("missing column ipfs_pins.pins_by_cid.priority (added by 1.1.0)"));
  RunResult health = run({"health"});
  EXPECT_NE(health.exit_code, 0) << health.out << health.err;
  EXPECT_THAT(health.out + health.err,
              HasSubstr("schema validation failed: missing table ipfs_pins.partition_stats"));
  (void)admin_->Exec("DROP KEYSPACE IF EXISTS ipfs_pins");
}

// ferry::EnsureReady on cql:// with seed 003's environment names: check
// only (not ready, 2 pending), then auto-migrate, then a bad value named.
TEST_F(CqlMigrateTest, IpfsClusterEnsureReadyReadsSeed003EnvironmentNames) {
  if (!admin_) GTEST_FAIL() << "FERRY_TEST_CQL_URL is not set";
  const std::string example = std::string(FERRY_SOURCE_DIR) + "/examples/ipfs-cluster/migrations";
  (void)admin_->Exec("DROP KEYSPACE IF EXISTS ipfs_pins");
  RunResult check = ::ferry::testing::RunBinary(FERRY_ENSURE_READY_EXAMPLE, {url_, example},
                                                {"SCYLLADB_AUTO_MIGRATE=false"});
  EXPECT_EQ(check.exit_code, 1) << check.out << check.err;
  EXPECT_THAT(check.out, HasSubstr("pending 2, NOT READY"));
  RunResult bad = ::ferry::testing::RunBinary(FERRY_ENSURE_READY_EXAMPLE, {url_, example},
                                              {"SCYLLADB_MIGRATION_TIMEOUT=soon"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("SCYLLADB_MIGRATION_TIMEOUT"));
  // ferry's own name wins over the seed's.
  RunResult go = ::ferry::testing::RunBinary(
      FERRY_ENSURE_READY_EXAMPLE, {url_, example},
      {"SCYLLADB_AUTO_MIGRATE=false", "FERRY_AUTO_MIGRATE=true", "SCYLLADB_VALIDATE_SCHEMA=yes",
       "SCYLLADB_MIGRATION_TIMEOUT=2m"});
  EXPECT_EQ(go.exit_code, 0) << go.out << go.err;
  EXPECT_THAT(go.out, HasSubstr("-> 1.1.0, applied 2"));
  (void)admin_->Exec("DROP KEYSPACE IF EXISTS ipfs_pins");
}

}  // namespace
}  // namespace ferry::cql
