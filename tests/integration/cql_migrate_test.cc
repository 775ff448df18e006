// ferry's schema-migration commands on CQL, end to end: the built ferry
// binary against the throw-away Cassandra node (FERRY_TEST_CQL_URL). Each
// test works in a keyspace of its own (SimpleStrategy, RF 1), dropped
// afterwards, so parallel runs do not meet.
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "core/url.h"
#include "drivers/cql/cql_connection.h"
#include "drivers/cql/cql_split.h"
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

// `up` lints pending CQL migrations first: a destructive statement (here
// DROP of a column, data gone for good) is refused before anything runs,
// naming file, line and rule; --allow-unsafe applies it and says so in the
// history note.
TEST_F(CqlMigrateTest, UpRefusesErrorLevelLintUnlessAllowUnsafe) {
  if (!admin_) return;
  dir_.Write("1_users.cql", "CREATE TABLE users (id int PRIMARY KEY, name text, legacy text);\n");
  RunResult first = Ferry("up");
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  dir_.Write("2_drop_legacy.cql", "ALTER TABLE users ADD email text;\nALTER TABLE users DROP legacy;\n");

  RunResult refused = Ferry("up");
  EXPECT_EQ(refused.exit_code, 11) << refused.out << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("lint found 1 error-level finding(s)"));
  EXPECT_THAT(refused.err, HasSubstr("2_drop_legacy.cql:2:1: [cql-destructive]"));
  EXPECT_EQ(States()["2"], "pending");
  auto email = admin_->Query(
      "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND "
      "table_name = 'users' AND column_name = 'email'",
      {keyspace_});
  ASSERT_TRUE(email.ok()) << email.status().ToString();
  EXPECT_TRUE(email->empty()) << "nothing of the refused migration ran";

  RunResult up = Ferry("up", {"--allow-unsafe"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_EQ(States()["2"], "applied");
  EXPECT_THAT(LatestRows()["2"]["note"].get<std::string>(),
              HasSubstr("despite lint: cql-destructive at line 2"));
}

// (d) Four runs at once: the lease lets one apply; the others wait and find
// nothing left to do (or report who holds the lease). Each migration runs
// exactly once: a CREATE TABLE without IF NOT EXISTS would fail the second
// time, and the INSERT's counter would count two.
TEST_F(CqlMigrateTest, FourConcurrentUpsApplyEachMigrationOnce) {
  if (!admin_) return;
  dir_.Write("1_counter.cql",
             "CREATE TABLE runs (id int PRIMARY KEY, n counter);\n");
  dir_.Write("2_bump.cql", "UPDATE runs SET n = n + 1 WHERE id = 1;\n");
  dir_.Write("3_more.cql",
             "CREATE TABLE more (id int PRIMARY KEY);\n"
             "UPDATE runs SET n = n + 1 WHERE id = 2;\n");
  TempDir logs;
  std::vector<std::string> args = {"up", "-d", url_, "--dir", dir_.path(), "--lock-wait", "120s"};
  std::vector<int> pids;
  for (int i = 0; i < 4; ++i) {  // issue 15 item 9: four at once
    pids.push_back(::ferry::testing::StartFerry(args, logs.File(std::to_string(i)),
                                                {"FERRY_CACHE_DIR=off"}));
  }
  for (size_t i = 0; i < pids.size(); ++i) {
    const int code = ::ferry::testing::WaitFerry(pids[i]);
    const std::string log = logs.File(std::to_string(i));
    EXPECT_EQ(code, 0) << ::ferry::testing::ReadFile(log) << ::ferry::testing::ReadFile(log + ".err");
  }

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

// Drift beyond missing objects (issue 15 item 7): column types, the primary
// key (partition and clustering columns, clustering order) and the table
// options the migrations set, against system_schema. Clean after up (types
// written as varchar, keys and options as the server reports them); then
// changed by hand, each change is named.
TEST_F(CqlMigrateTest, ValidateReportsChangedTypesKeysAndTableOptions) {
  if (!admin_) return;
  dir_.Write("1_events.cql",
             "CREATE TABLE events (tenant text, day int, at timestamp, id uuid, body varchar, "
             "PRIMARY KEY ((tenant, day), at, id)) WITH CLUSTERING ORDER BY (at DESC, id ASC) "
             "AND default_time_to_live = 86400 AND gc_grace_seconds = 3600 "
             "AND compaction = {'class': 'LeveledCompactionStrategy'};\n");
  dir_.Write("2_more.cql",
             "ALTER TABLE events ADD (tags frozen<set<text>>, score map<text, int>);\n"
             "CREATE TABLE plain (id int PRIMARY KEY, v text);\n"
             "ALTER TABLE plain WITH gc_grace_seconds = 600;\n");
  RunResult up = Ferry("up");
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  RunResult clean = Ferry("validate");
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;

  for (const std::string& cql :
       {fmt::format("ALTER TABLE {}.events WITH gc_grace_seconds = 7200 AND compaction = "
                    "{{'class': 'SizeTieredCompactionStrategy'}} AND default_time_to_live = 60",
                    keyspace_),
        fmt::format("DROP TABLE {}.plain", keyspace_),
        fmt::format("CREATE TABLE {}.plain (id bigint, w int, v text, PRIMARY KEY (id, w)) "
                    "WITH CLUSTERING ORDER BY (w DESC)",
                    keyspace_)}) {
    ASSERT_OK(admin_->Exec(cql).status());
  }
  ASSERT_OK(admin_->WaitForSchemaAgreement(std::chrono::seconds(60)));
  RunResult drift = Ferry("validate");
  EXPECT_NE(drift.exit_code, 0) << drift.out << drift.err;
  const std::string all = drift.out + drift.err;
  const std::string ks = keyspace_;
  EXPECT_THAT(all, HasSubstr("table " + ks + ".events has gc_grace_seconds = 7200, not 3600 as 1 set it"));
  EXPECT_THAT(all, HasSubstr("table " + ks + ".events has compaction = SizeTieredCompactionStrategy, "
                             "not LeveledCompactionStrategy as 1 set it"));
  EXPECT_THAT(all, HasSubstr("table " + ks + ".events has default_time_to_live = 60, not 86400"));
  EXPECT_THAT(all, HasSubstr("column " + ks + ".plain.id is bigint, not int as 2 made it"));
  EXPECT_THAT(all, HasSubstr("primary key of " + ks + ".plain is ((id), w desc), not ((id)) as 2 made it"));
  EXPECT_THAT(all, HasSubstr("table " + ks + ".plain has gc_grace_seconds = 864000, not 600 as 2 set it"));
  EXPECT_THAT(all, Not(HasSubstr(ks + ".events.tags")));  // unchanged: not drift
  EXPECT_THAT(all, Not(HasSubstr("primary key of " + ks + ".events")));
  RunResult health = Ferry("health");
  EXPECT_NE(health.exit_code, 0) << health.out << health.err;
  EXPECT_THAT(health.out + health.err, HasSubstr("schema validation failed"));
}

// `up --backup DIR` (issue 15 item 7) writes the keyspace's schema before
// migrating: a new file in DIR, its path printed in --json. Run in a fresh
// keyspace (the name replaced), the file re-creates the same types, tables
// (columns, keys, clustering order, static, options), index and view as
// system_schema reports them.
TEST_F(CqlMigrateTest, UpBackupWritesTheSchemaThatRecreatesTheKeyspace) {
  if (!admin_) return;
  dir_.Write("1_base.cql",
             "CREATE TYPE address (street text, city text);\n"
             "CREATE TYPE person (name text, home frozen<address>);\n"
             "CREATE TABLE events (tenant text, day int, at timestamp, id uuid, who frozen<person>, "
             "tags set<text>, body text, PRIMARY KEY ((tenant, day), at, id)) "
             "WITH CLUSTERING ORDER BY (at DESC, id ASC) AND gc_grace_seconds = 3600 "
             "AND default_time_to_live = 600 AND compaction = {'class': 'LeveledCompactionStrategy'} "
             "AND comment = 'it''s the events';\n"
             "CREATE INDEX events_tags ON events (values(tags));\n"
             "CREATE TABLE groups (k text, c int, s text STATIC, v int, PRIMARY KEY (k, c));\n"
             "CREATE MATERIALIZED VIEW events_by_id AS SELECT tenant, day, at, id, body FROM events "
             "WHERE tenant IS NOT NULL AND day IS NOT NULL AND at IS NOT NULL AND id IS NOT NULL "
             "PRIMARY KEY (id, tenant, day, at);\n");
  RunResult first = Ferry("up");
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  dir_.Write("2_later.cql", "CREATE TABLE later (id int PRIMARY KEY);\n");
  TempDir backups;
  RunResult up = Ferry("up", {"--backup", backups.path(), "--json"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  const std::string last = up.out.substr(up.out.rfind('\n', up.out.size() - 2) + 1);  // the result
  json j = json::parse(last, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << up.out;
  const std::string path = j["backup"].get<std::string>();
  EXPECT_THAT(path, ::testing::StartsWith(backups.path() + "/" + keyspace_ + "-"));
  std::string text = ::ferry::testing::ReadFile(path);
  ASSERT_THAT(text, HasSubstr("CREATE TABLE \"" + keyspace_ + "\".\"events\""));
  EXPECT_THAT(text, Not(HasSubstr("\"later\""))) << "written before migration 2";

  const std::string copy = keyspace_ + "_copy";
  for (size_t at; (at = text.find("\"" + keyspace_ + "\"")) != std::string::npos;) {
    text.replace(at, keyspace_.size() + 2, "\"" + copy + "\"");
  }
  auto statements = SplitCql(text);
  ASSERT_TRUE(statements.ok()) << statements.status().ToString();
  for (const CqlStatement& st : *statements) {
    ASSERT_OK(admin_->Exec(st.text).status());
    ASSERT_OK(admin_->WaitForSchemaAgreement(std::chrono::seconds(60)));
  }
  auto rows = [&](const std::string& cql, const std::string& ks) {
    std::set<std::string> out;
    auto r = admin_->Query(cql, {ks});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return out;
    for (size_t i = 0; i < r->rows.size(); ++i) {
      std::string line;
      for (size_t c = 0; c < r->rows[i].size(); ++c) line += r->Text(i, c) + " | ";
      if (line.starts_with("later |")) continue;  // made by migration 2, after the backup
      out.insert(line);
    }
    return out;
  };
  for (const std::string& cql :
       {std::string("SELECT table_name, column_name, type, kind, position, clustering_order FROM "
                    "system_schema.columns WHERE keyspace_name = ?"),
        std::string("SELECT table_name, default_time_to_live, gc_grace_seconds, compaction, comment "
                    "FROM system_schema.tables WHERE keyspace_name = ?"),
        std::string("SELECT type_name, field_names, field_types FROM system_schema.types WHERE "
                    "keyspace_name = ?"),
        std::string("SELECT table_name, index_name, kind, options FROM system_schema.indexes WHERE "
                    "keyspace_name = ?"),
        std::string("SELECT view_name, base_table_name, where_clause, include_all_columns FROM "
                    "system_schema.views WHERE keyspace_name = ?")}) {
    std::set<std::string> original = rows(cql, keyspace_);
    EXPECT_FALSE(original.empty()) << cql;
    EXPECT_EQ(rows(cql, copy), original) << cql;
  }
  (void)admin_->Exec("DROP KEYSPACE IF EXISTS " + copy);
}

// Drill (issue 15 item 9): `ferry up` killed with SIGKILL in the middle of
// a migration of many statements. The history row stays "running" with the
// statements confirmed so far, and the dead runner's lease stays visible in
// status until its TTL runs out. The next `up` waits for the lease (at most
// its 30 s TTL; no time is asserted), resumes at the next statement and
// finishes: every CREATE TABLE (none with IF NOT EXISTS, so none could run
// twice without failing) exists once, and the row counts them all.
TEST_F(CqlMigrateTest, KilledUpResumesAtTheNextStatementOnceTheDeadLeaseExpires) {
  if (!admin_) return;
  constexpr int kTables = 40;
  std::string up = "-- ferry:up\n";
  for (int i = 0; i < kTables; ++i) up += fmt::format("CREATE TABLE t{} (id int PRIMARY KEY);\n", i);
  dir_.Write("1_many.cql", up);
  TempDir logs;
  const int pid = ::ferry::testing::StartFerry({"up", "-d", url_, "--dir", dir_.path()},
                                               logs.File("killed"), {"FERRY_CACHE_DIR=off"});
  int confirmed = 0;
  for (int i = 0; i < 2400 && confirmed < 3; ++i) {  // bounded: 2 min at most
    auto r = admin_->Query(fmt::format(
        "SELECT statements_done FROM {}.ferry_schema_history WHERE part = 'history'", keyspace_));
    if (r.ok() && !r->empty()) confirmed = std::atoi(r->Text(0, 0).c_str());
    if (confirmed < 3) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_EQ(::ferry::testing::WaitFerry(pid), 128 + SIGKILL);
  ASSERT_GE(confirmed, 3) << ::ferry::testing::ReadFile(logs.File("killed") + ".err");

  std::map<std::string, json> rows = LatestRows();
  ASSERT_TRUE(rows.count("1"));
  EXPECT_EQ(rows["1"]["status"], "running");
  const int done = rows["1"]["statements_done"].get<int>();
  ASSERT_GE(done, 3);
  ASSERT_LT(done, kTables) << "the migration finished before the kill; the drill proves nothing";
  json status = Json("status");
  ASSERT_FALSE(status["lock"].is_null()) << "the killed runner's lease outlives it";
  EXPECT_THAT(status["lock"]["who"].get<std::string>(), HasSubstr(fmt::format("pid {}", pid)));

  RunResult resumed = Ferry("up", {"--lock-wait", "120s"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  EXPECT_THAT(resumed.err, HasSubstr(fmt::format("resuming at statement {}", done + 1)));
  for (int i = 0; i < kTables; ++i) EXPECT_TRUE(TableExists(fmt::format("t{}", i))) << i;
  rows = LatestRows();
  EXPECT_EQ(rows["1"]["status"], "success");
  EXPECT_EQ(rows["1"]["statements_done"], kTables);
  EXPECT_EQ(rows["1"]["attempts"], 2);
  EXPECT_TRUE(Json("status")["lock"].is_null());
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
  // 1.0.0 first, so that the backup before 1.1.0 has a keyspace to write.
  RunResult base = ::ferry::testing::RunFerry(
      {"up", "--to", "1.0.0", "--database", url_, "--dir", example});
  ASSERT_EQ(base.exit_code, 0) << base.out << base.err;
  ::ferry::testing::TempDir backups;
  RunResult go = ::ferry::testing::RunBinary(
      FERRY_ENSURE_READY_EXAMPLE, {url_, example},
      {"SCYLLADB_AUTO_MIGRATE=false", "FERRY_AUTO_MIGRATE=true", "SCYLLADB_VALIDATE_SCHEMA=yes",
       "SCYLLADB_MIGRATION_TIMEOUT=2m", "SCYLLADB_BACKUP_BEFORE_MIGRATION=" + backups.path()});
  EXPECT_EQ(go.exit_code, 0) << go.out << go.err;
  EXPECT_THAT(go.out, HasSubstr("1.0.0 -> 1.1.0, applied 1"));
  // Seed 003's BackupBeforeMigration: the URL's keyspace (here the one with
  // ferry's history; the example's tables live in ipfs_pins) as CQL text.
  const size_t at = go.out.find("schema backup: ");
  ASSERT_NE(at, std::string::npos) << go.out;
  const std::string path = go.out.substr(at + 15, go.out.find('\n', at) - at - 15);
  EXPECT_THAT(path, ::testing::StartsWith(backups.path() + "/" + keyspace_ + "-"));
  const std::string text = ::ferry::testing::ReadFile(path);
  EXPECT_THAT(text, HasSubstr("CREATE KEYSPACE"));
  EXPECT_THAT(text, HasSubstr("CREATE TABLE \"" + keyspace_ + "\".\"ferry_schema_history\""));
  // Nothing pending: no new backup at the next start.
  RunResult again = ::ferry::testing::RunBinary(
      FERRY_ENSURE_READY_EXAMPLE, {url_, example},
      {"SCYLLADB_BACKUP_BEFORE_MIGRATION=" + backups.path()});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_THAT(again.out, Not(HasSubstr("schema backup:")));
  (void)admin_->Exec("DROP KEYSPACE IF EXISTS ipfs_pins");
}

// Drill (issue 15 item 9) on two nodes: a second Cassandra node on
// 127.0.0.2 joins the test node (scripts/test-servers.sh start-cql-node2),
// then dies (kill-cql-node2). A DDL migration then ends with a schema-
// agreement error naming the dead node, its history counting only the
// statement that ran; once the node is back, `up` resumes and finishes.
// The node is decommissioned at the end (remove-cql-node2), so the test
// node is alone again. ctest runs every Cql* test under one RESOURCE_LOCK:
// while the second node is down, every DDL on the cluster waits for it.
class CqlTwoNodeDrill : public CqlMigrateTest {
 public:
  RunResult Servers(const std::string& command) {
    const char* dir = std::getenv("FERRY_TEST_SERVERS_DIR");
    if (dir == nullptr) return {};
    return ::ferry::testing::RunBinary(
        "/bin/bash", {std::string(FERRY_SOURCE_DIR) + "/scripts/test-servers.sh", command, dir});
  }
};

TEST_F(CqlTwoNodeDrill, StoppedNodeFailsTheDdlOnAgreementAndUpResumesWhenItIsBack) {
  if (!admin_) return;
  ASSERT_NE(std::getenv("FERRY_TEST_SERVERS_DIR"), nullptr)
      << "needs the servers of scripts/test-servers.sh (FERRY_TEST_SERVERS_DIR)";
  struct Remove {  // however the test ends, the second node leaves the cluster
    CqlTwoNodeDrill* t;
    bool done = false;
    ~Remove() {
      if (!done) (void)t->Servers("remove-cql-node2");
    }
  } remove{this};
  RunResult started = Servers("start-cql-node2");
  ASSERT_EQ(started.exit_code, 0) << started.out << started.err;
  // The test node lists its new peer once gossip has told it (bounded wait).
  auto nodes = admin_->Nodes();
  for (int i = 0; i < 1200 && nodes.ok() && nodes->size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    nodes = admin_->Nodes();
  }
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  ASSERT_EQ(nodes->size(), 2u);
  ASSERT_OK(admin_->WaitForSchemaAgreement(std::chrono::seconds(120)));
  EXPECT_EQ((*nodes)[1].address, "127.0.0.2");

  dir_.Write("1_a.cql", "CREATE TABLE a (id int PRIMARY KEY);\n");
  RunResult first = Ferry("up");
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;

  RunResult killed = Servers("kill-cql-node2");
  ASSERT_EQ(killed.exit_code, 0) << killed.err;
  dir_.Write("2_bc.cql",
             "-- ferry:up\n"
             "CREATE TABLE b (id int PRIMARY KEY);\n"
             "CREATE TABLE c (id int PRIMARY KEY);\n"
             "-- ferry:down\nDROP TABLE c;\nDROP TABLE b;\n");
  RunResult refused = Ferry("up", {"--schema-agreement-timeout", "3s"});
  EXPECT_NE(refused.exit_code, 0) << refused.out << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("2_bc.cql:2: statement 1 of 2 ran, but the nodes did not agree"));
  EXPECT_THAT(refused.err, HasSubstr("127.0.0.2"));
  EXPECT_THAT(refused.out + refused.err, Not(HasSubstr("ferry_cql_secret")));
  std::map<std::string, json> rows = LatestRows();
  EXPECT_EQ(rows["1"]["status"], "success");
  EXPECT_EQ(rows["2"]["status"], "failed");
  EXPECT_EQ(rows["2"]["statements_done"], 1);
  EXPECT_TRUE(TableExists("b"));
  EXPECT_FALSE(TableExists("c"));
  EXPECT_EQ(States()["2"], "failed");

  RunResult back = Servers("start-cql-node2");
  ASSERT_EQ(back.exit_code, 0) << back.out << back.err;
  RunResult resumed = Ferry("up");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  EXPECT_THAT(resumed.err, HasSubstr("resuming at statement 2"));
  EXPECT_TRUE(TableExists("c"));
  rows = LatestRows();
  EXPECT_EQ(rows["2"]["status"], "success");
  EXPECT_EQ(rows["2"]["statements_done"], 2);
  EXPECT_EQ(States()["2"], "applied");

  RunResult removed = Servers("remove-cql-node2");
  remove.done = true;
  ASSERT_EQ(removed.exit_code, 0) << removed.out << removed.err;
  nodes = admin_->Nodes();
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  EXPECT_EQ(nodes->size(), 1u) << "the decommissioned node left system.peers";
}

}  // namespace
}  // namespace ferry::cql
