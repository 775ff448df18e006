// ferry checkpoint and `ferry up --checkpoint --auto-rollback` on a real
// PostgreSQL server (a fresh database per test) and on SQLite files: the
// built binary is run, the database and the history are checked.
#include <sys/stat.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/url.h"
#include "drivers/registry.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

json LastJson(const std::string& out) {
  std::string text = out;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t nl = text.rfind('\n');
  json j = json::parse(nl == std::string::npos ? text : text.substr(nl + 1), nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << out;
  return j;
}

std::string Describe(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout:\n" + r.out + "--- stderr:\n" +
         r.err;
}

class CheckpointTest : public ::testing::Test {
 protected:
  // A fresh PostgreSQL database; `owner` (a role) owns it when given.
  void UsePostgres() {
    // A missing server is a failure here, not a skip.
    ASSERT_NE(std::getenv("FERRY_TEST_PG_URL"), nullptr) << "set FERRY_TEST_PG_URL";
    db_ = std::make_unique<FreshPgDatabase>();
    ASSERT_TRUE(db_->ok());
    url_ = db_->url();
    Connect();
  }
  void UseSqlite() {
    url_ = "sqlite:" + dir_.File("app.db");
    Connect();
  }
  void Connect() {
    if (ReadFile(dir_.File("ferry.toml")).empty()) dir_.Write("ferry.toml", "# checkpoint test\n");
    auto c = OpenConnection(url_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    conn_ = std::move(c).value();
  }
  void Sql(const std::string& sql) {
    auto r = conn_->Exec(sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  }
  std::string One(const std::string& sql) {
    auto r = conn_->Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    if (!r.ok() || r->empty()) return "";
    return r->Text(0, 0);
  }
  bool HasTable(const std::string& name) {
    auto r = conn_->traits().TableExists(*conn_, name);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && *r;
  }
  RunResult Ferry(std::vector<std::string> rest, const std::vector<std::string>& env = {}) {
    std::vector<std::string> a = {"--database", url_, "--dir", dir_.File("migrations"),
                                  "--config",   dir_.File("ferry.toml")};
    a.insert(a.end(), rest.begin(), rest.end());
    std::vector<std::string> e = env;
    e.push_back("FERRY_CHECKPOINT_DIR=" + dir_.File("checkpoints"));
    if (const char* bin = std::getenv("FERRY_TEST_PG_BIN")) {
      e.push_back(std::string("FERRY_CHECKPOINT_PG_BIN=") + bin);
    }
    return RunFerry(a, e);
  }
  // expected_exit kFailed: any non-zero exit.
  static constexpr int kFailed = -1;
  json FerryJson(std::vector<std::string> rest, int expected_exit = 0) {
    rest.push_back("--json");
    RunResult r = Ferry(rest);
    if (expected_exit == kFailed) {
      EXPECT_NE(r.exit_code, 0) << Describe(r);
    } else {
      EXPECT_EQ(r.exit_code, expected_exit) << Describe(r);
    }
    return LastJson(r.out);
  }
  // Rows of t as "id=v" joined by ','.
  std::string Rows(const std::string& table) {
    return One("SELECT coalesce(group_concat(id || '=' || v, ','), '') FROM (SELECT id, v FROM " +
               table + " ORDER BY id) x");
  }
  std::string PgRows(const std::string& table) {
    return One("SELECT coalesce(string_agg(id || '=' || v, ',' ORDER BY id), '') FROM " + table);
  }

  TempDir dir_;
  std::unique_ptr<FreshPgDatabase> db_;
  std::string url_;
  std::unique_ptr<Connection> conn_;
};

TEST_F(CheckpointTest, PostgresRoundTripRestoresChangedDeletedRowsAndDroppedTables) {
  UsePostgres();
  if (HasFatalFailure()) return;
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1,'a'),(2,'b'),(3,'c')");
  Sql("CREATE SCHEMA billing; CREATE TABLE billing.u (id int PRIMARY KEY REFERENCES public.t, "
      "v text); INSERT INTO billing.u VALUES (1,'x')");
  json created = FerryJson({"checkpoint", "create", "before"});
  EXPECT_EQ(created["checkpoint"]["engine"], "postgres");
  EXPECT_EQ(created["checkpoint"]["scope"], "database");
  EXPECT_GT(created["checkpoint"]["size_bytes"].get<int64_t>(), 0);

  Sql("UPDATE t SET v = 'changed' WHERE id = 1; DELETE FROM t WHERE id = 3");
  Sql("DROP TABLE billing.u; CREATE TABLE made_later (id int)");
  json listed = FerryJson({"checkpoint", "list"});
  ASSERT_EQ(listed["checkpoints"].size(), 1u);
  EXPECT_EQ(listed["checkpoints"][0]["name"], "before");
  EXPECT_GE(listed["checkpoints"][0]["duration_ms"].get<int64_t>(), 0);

  json restored = FerryJson({"checkpoint", "restore", "before"});
  EXPECT_EQ(restored["dry_run"], false);
  EXPECT_EQ(PgRows("t"), "1=a,2=b,3=c");
  EXPECT_EQ(PgRows("billing.u"), "1=x");
  EXPECT_FALSE(HasTable("made_later"));
  // The foreign key came back with the tables.
  EXPECT_EQ(One("SELECT count(*) FROM pg_constraint WHERE contype = 'f'"), "1");
}

TEST_F(CheckpointTest, PostgresDryRunListsWhatWouldChangeAndChangesNothing) {
  UsePostgres();
  if (HasFatalFailure()) return;
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1,'a')");
  FerryJson({"checkpoint", "create", "c1"});
  Sql("UPDATE t SET v = 'changed'; CREATE TABLE made_later (id int)");

  RunResult text = Ferry({"checkpoint", "restore", "c1", "--dry-run"});
  ASSERT_EQ(text.exit_code, 0) << Describe(text);
  EXPECT_THAT(text.out, HasSubstr("would drop"));
  EXPECT_THAT(text.out, HasSubstr("table public.made_later"));
  EXPECT_THAT(text.out, HasSubstr("TABLE public t"));
  EXPECT_THAT(text.out, HasSubstr("nothing was changed"));
  json dry = FerryJson({"checkpoint", "restore", "c1", "--dry-run"});
  EXPECT_EQ(dry["dry_run"], true);
  EXPECT_FALSE(dry["restores"].empty());

  EXPECT_EQ(PgRows("t"), "1=changed");
  EXPECT_TRUE(HasTable("made_later"));
}

TEST_F(CheckpointTest, PostgresFailedRestoreLeavesTheDatabaseUnchanged) {
  UsePostgres();
  if (HasFatalFailure()) return;
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1,'a'),(2,'b')");
  FerryJson({"checkpoint", "create", "only-t", "--table", "public.t"});
  // Since then a table outside the checkpoint depends on t: the restore
  // cannot drop t, and must change nothing at all.
  Sql("UPDATE t SET v = 'changed' WHERE id = 1; DELETE FROM t WHERE id = 2");
  Sql("CREATE TABLE child (id int REFERENCES t)");
  RunResult r = Ferry({"checkpoint", "restore", "only-t"});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("not restored; the database is unchanged"));
  EXPECT_EQ(PgRows("t"), "1=changed");
  EXPECT_TRUE(HasTable("child"));
  EXPECT_EQ(One("SELECT count(*) FROM pg_constraint WHERE conrelid = 't'::regclass"), "1");
}

TEST_F(CheckpointTest, PostgresSchemaScopeAndClearErrors) {
  UsePostgres();
  if (HasFatalFailure()) return;
  Sql("CREATE SCHEMA billing; CREATE TABLE billing.inv (id int, v text); "
      "INSERT INTO billing.inv VALUES (1,'a'); CREATE TABLE outside (id int, v text)");
  json c = FerryJson({"checkpoint", "create", "b1", "--schema", "billing"});
  EXPECT_EQ(c["checkpoint"]["scope"], "schemas");
  Sql("DELETE FROM billing.inv; CREATE TABLE billing.later (id int); INSERT INTO outside "
      "VALUES (9,'kept')");
  FerryJson({"checkpoint", "restore", "b1"});
  EXPECT_EQ(PgRows("billing.inv"), "1=a");
  EXPECT_FALSE(HasTable("billing.later"));
  EXPECT_EQ(PgRows("outside"), "9=kept");  // outside the scope: untouched

  RunResult missing = Ferry({"checkpoint", "create", "b2", "--schema", "nope"});
  EXPECT_EQ(missing.exit_code, 7) << Describe(missing);
  EXPECT_THAT(missing.err, HasSubstr("schema 'nope' does not exist"));
  RunResult bad = Ferry({"checkpoint", "create", "../x"});
  EXPECT_EQ(bad.exit_code, 8) << Describe(bad);
  EXPECT_THAT(bad.err, HasSubstr("is not usable"));
  RunResult twice = Ferry({"checkpoint", "create", "b1"});
  EXPECT_NE(twice.exit_code, 0);
  EXPECT_THAT(twice.err, HasSubstr("exists already"));
  RunResult unknown = Ferry({"checkpoint", "restore", "nope"});
  EXPECT_EQ(unknown.exit_code, 7) << Describe(unknown);
}

TEST_F(CheckpointTest, SqliteRoundTripAndRetentionPrunesTheOldest) {
  UseSqlite();
  if (HasFatalFailure()) return;
  Sql("CREATE TABLE t (id integer PRIMARY KEY, v text); INSERT INTO t VALUES (1,'a'),(2,'b')");
  json c1 = FerryJson({"checkpoint", "create", "c1"});
  EXPECT_EQ(c1["checkpoint"]["engine"], "sqlite");
  Sql("UPDATE t SET v = 'changed' WHERE id = 1; DELETE FROM t WHERE id = 2; "
      "CREATE TABLE made_later (id int)");
  FerryJson({"checkpoint", "create", "c2"});
  FerryJson({"checkpoint", "create", "c3"});

  json dry = FerryJson({"checkpoint", "restore", "c1", "--dry-run"});
  EXPECT_EQ(Rows("t"), "1=changed");
  FerryJson({"checkpoint", "restore", "c1"});
  conn_.reset();
  Connect();
  EXPECT_EQ(Rows("t"), "1=a,2=b");
  EXPECT_FALSE(HasTable("made_later"));

  RunResult scoped = Ferry({"checkpoint", "create", "c4", "--table", "t"});
  EXPECT_EQ(scoped.exit_code, 8) << Describe(scoped);
  EXPECT_THAT(scoped.err, HasSubstr("whole database"));

  dir_.Write("ferry.toml", "[checkpoint]\nkeep = 2\n");
  json pruned = FerryJson({"checkpoint", "prune"});
  EXPECT_EQ(pruned["deleted"], json::array({"c1"}));
  json listed = FerryJson({"checkpoint", "list"});
  ASSERT_EQ(listed["checkpoints"].size(), 2u);
  EXPECT_EQ(listed["checkpoints"][0]["name"], "c2");
  EXPECT_EQ(listed["checkpoints"][1]["name"], "c3");
  FerryJson({"checkpoint", "delete", "c2"});
  EXPECT_EQ(FerryJson({"checkpoint", "list"})["checkpoints"].size(), 1u);
}

// The history rows of the given kind.
std::vector<json> RowsOfKind(const json& history, const std::string& kind) {
  std::vector<json> out;
  for (const json& r : history["history"]) {
    if (r["kind"] == kind) out.push_back(r);
  }
  return out;
}

TEST_F(CheckpointTest, PostgresUpAutoRollbackRestoresThePreUpState) {
  UsePostgres();
  if (HasFatalFailure()) return;
  Sql("CREATE TABLE keep (id int PRIMARY KEY, v text); INSERT INTO keep VALUES (1,'a')");
  dir_.Write("migrations/1_first.sql",
             "-- ferry:up\nCREATE TABLE first (id int);\nUPDATE keep SET v = 'migrated' WHERE id = 1;\n"
             "-- ferry:down\nDROP TABLE first;\n");
  dir_.Write("migrations/2_second.sql",
             "-- ferry:up\nCREATE TABLE second (id int);\nSELECT no_such_function();\n"
             "-- ferry:down\nDROP TABLE second;\n");
  json r = FerryJson({"up", "--checkpoint", "--auto-rollback"}, kFailed);
  EXPECT_EQ(r["ok"], false);
  ASSERT_TRUE(r["checkpoint"].is_object()) << r.dump();
  const std::string name = r["checkpoint"]["name"];
  EXPECT_THAT(name, HasSubstr("pre-up-none-"));
  EXPECT_EQ(r["auto_rollback"]["method"], "checkpoint");
  EXPECT_EQ(r["auto_rollback"]["ok"], true);
  EXPECT_THAT(r["auto_rollback"]["reason"].get<std::string>(), HasSubstr("no_such_function"));

  EXPECT_FALSE(HasTable("first"));
  EXPECT_FALSE(HasTable("second"));
  EXPECT_EQ(PgRows("keep"), "1=a");
  json history = FerryJson({"history"});
  std::vector<json> checkpoints = RowsOfKind(history, "checkpoint");
  std::vector<json> rollbacks = RowsOfKind(history, "auto-rollback");
  ASSERT_EQ(checkpoints.size(), 1u) << history.dump();
  ASSERT_EQ(rollbacks.size(), 1u) << history.dump();
  EXPECT_THAT(checkpoints[0]["note"].get<std::string>(), HasSubstr(name));
  EXPECT_THAT(rollbacks[0]["note"].get<std::string>(), HasSubstr(name));
  EXPECT_THAT(rollbacks[0]["error_message"].get<std::string>(), HasSubstr("no_such_function"));
  EXPECT_EQ(rollbacks[0]["status"], "success");
  EXPECT_TRUE(RowsOfKind(history, "versioned").empty()) << history.dump();

  // The database is as before: fixing the file and running up again works.
  dir_.Write("migrations/2_second.sql",
             "-- ferry:up\nCREATE TABLE second (id int);\n-- ferry:down\nDROP TABLE second;\n");
  json again = FerryJson({"up", "--checkpoint", "--auto-rollback"});
  EXPECT_EQ(again["applied"].size(), 2u);
  EXPECT_TRUE(HasTable("second"));
  EXPECT_EQ(FerryJson({"checkpoint", "list"})["checkpoints"].size(), 2u);
}

TEST_F(CheckpointTest, SqliteUpAutoRollbackWithoutCheckpointRunsTheDowns) {
  UseSqlite();
  if (HasFatalFailure()) return;
  dir_.Write("migrations/1_first.sql",
             "-- ferry:up\nCREATE TABLE first (id int);\n-- ferry:down\nDROP TABLE first;\n");
  dir_.Write("migrations/2_second.sql",
             "-- ferry:up\nCREATE TABLE second (id int);\nINSERT INTO nowhere VALUES (1);\n"
             "-- ferry:down\nDROP TABLE second;\n");
  json r = FerryJson({"up", "--auto-rollback"}, kFailed);
  EXPECT_EQ(r["auto_rollback"]["method"], "downs");
  EXPECT_EQ(r["auto_rollback"]["ok"], true) << r.dump();
  EXPECT_EQ(r["auto_rollback"]["rolled_back"], json::array({"1"}));
  conn_.reset();
  Connect();
  EXPECT_FALSE(HasTable("first"));
  EXPECT_FALSE(HasTable("second"));
  json history = FerryJson({"history"});
  std::vector<json> rollbacks = RowsOfKind(history, "auto-rollback");
  ASSERT_EQ(rollbacks.size(), 1u) << history.dump();
  EXPECT_THAT(rollbacks[0]["note"].get<std::string>(), HasSubstr("downs"));
  EXPECT_THAT(rollbacks[0]["error_message"].get<std::string>(), HasSubstr("nowhere"));
}

// pg_dump, pg_restore and psql wrapped by scripts that log their arguments
// and whether PGPASSWORD reached them, then run the real tool.
std::string WrapTools(const TempDir& dir, const std::string& real_bin) {
  const std::string bin = dir.File("wrapped-bin");
  for (const char* tool : {"pg_dump", "pg_restore", "psql"}) {
    dir.Write(std::string("wrapped-bin/") + tool,
              "#!/bin/sh\necho \"$0 $*\" >> " + dir.File("args.log") +
                  "\n[ -n \"$PGPASSWORD\" ] && echo env-has-password >> " + dir.File("args.log") +
                  "\nexec " + real_bin + "/" + tool + " \"$@\"\n");
    chmod((bin + "/" + tool).c_str(), 0755);
  }
  return bin;
}

TEST_F(CheckpointTest, PasswordNeverInManifestOutputOrToolArguments) {
  UsePostgres();
  if (HasFatalFailure()) return;
  const char* pw_url = std::getenv("FERRY_TEST_PG_PW_URL");
  const char* real_bin = std::getenv("FERRY_TEST_PG_BIN");
  ASSERT_NE(pw_url, nullptr) << "set FERRY_TEST_PG_PW_URL";
  ASSERT_NE(real_bin, nullptr) << "set FERRY_TEST_PG_BIN";
  auto parsed = Url::Parse(pw_url);
  ASSERT_TRUE(parsed.ok());
  const std::string password = parsed->password().Reveal();
  ASSERT_FALSE(password.empty());
  Sql("ALTER DATABASE " + QuoteIdent(db_->name()) + " OWNER TO " + QuoteIdent(parsed->user()));
  url_ = WithDatabase(pw_url, db_->name());
  Connect();
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1,'a')");
  const std::string bin = WrapTools(dir_, real_bin);

  std::vector<RunResult> runs;
  runs.push_back(Ferry({"checkpoint", "create", "secret-test", "--pg-bin", bin, "--json"}));
  Sql("UPDATE t SET v = 'changed'");
  runs.push_back(Ferry({"checkpoint", "list"}));
  runs.push_back(Ferry({"checkpoint", "list", "--json"}));
  runs.push_back(Ferry({"checkpoint", "restore", "secret-test", "--pg-bin", bin}));
  for (const RunResult& r : runs) {
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr(password)));
    EXPECT_THAT(r.err, Not(HasSubstr(password)));
  }
  EXPECT_EQ(PgRows("t"), "1=a");
  const std::string manifest = ReadFile(dir_.File("checkpoints/secret-test/manifest.json"));
  EXPECT_THAT(manifest, HasSubstr("\"database\""));
  EXPECT_THAT(manifest, Not(HasSubstr(password)));
  const std::string args = ReadFile(dir_.File("args.log"));
  EXPECT_THAT(args, HasSubstr("pg_dump"));
  EXPECT_THAT(args, HasSubstr("psql"));
  EXPECT_THAT(args, HasSubstr("env-has-password"));
  EXPECT_THAT(args, Not(HasSubstr(password)));
}

}  // namespace
}  // namespace ferry::testing
