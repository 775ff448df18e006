// Issue 13, "first contact": what a new user meets first when applying a
// real project's history with the built `ferry` binary, on a fresh
// PostgreSQL database and a fresh SQLite file (each test in its own
// temporary directory holding migrations/).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

class FirstContactTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    if (pg()) {
      pg_db_ = std::make_unique<FreshPgDatabase>();
      if (IsSkipped()) return;
      ASSERT_TRUE(pg_db_->ok()) << "could not create a fresh PostgreSQL database";
      url_ = pg_db_->url();
    } else {
      url_ = "sqlite:" + dir_.File("app.db");
    }
  }

  bool pg() const { return GetParam() == "postgres"; }

  RunResult Ferry(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    std::vector<std::string> all = {"--database", url_, "--dir", "migrations"};
    all.insert(all.end(), args.begin(), args.end());
    return RunFerry(all, env, dir_.path());
  }
  // Without --database: what a user gets from ferry.toml alone.
  RunResult FerryNoDb(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"--dir", "migrations"};
    all.insert(all.end(), args.begin(), args.end());
    return RunFerry(all, {"DATABASE_URL="}, dir_.path());
  }
  void Write(const std::string& name, const std::string& content) {
    dir_.Write("migrations/" + name, content);
  }
  std::vector<std::vector<std::string>> Rows(const std::string& sql) {
    std::vector<std::vector<std::string>> out;
    auto conn = OpenConnection(url_);
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) return out;
    auto r = (*conn)->Query(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString() << " in: " << sql;
    if (!r.ok()) return out;
    for (const auto& row : r->rows) {
      std::vector<std::string> cells;
      for (const auto& v : row) cells.push_back(v ? *v : "NULL");
      out.push_back(std::move(cells));
    }
    return out;
  }
  std::string Scalar(const std::string& sql) {
    auto rows = Rows(sql);
    return rows.empty() || rows[0].empty() ? "<no rows>" : rows[0][0];
  }
  void Exec(const std::string& sql) {
    auto conn = OpenConnection(url_);
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    auto r = (*conn)->Exec(sql);
    ASSERT_TRUE(r.ok()) << r.status().ToString() << " in: " << sql;
  }
  void WriteCreate(const std::string& name, const std::string& table) {
    Write(name, "-- ferry:up\nCREATE TABLE " + table + " (id int);\n-- ferry:down\nDROP TABLE " +
                    table + ";\n");
  }

  TempDir dir_;
  std::unique_ptr<FreshPgDatabase> pg_db_;
  std::string url_;
};

class FirstContactPgTest : public FirstContactTest {};

// ---- 3: goto to a lower version says what it rolled back ---------------------

TEST_P(FirstContactTest, GotoDownSaysWhatItRolledBack) {
  WriteCreate("1_a.sql", "a");
  WriteCreate("2_b.sql", "b");
  WriteCreate("3_c.sql", "c");
  RunResult up = Ferry({"up"});
  ASSERT_EQ(up.exit_code, 0) << Describe(up);
  RunResult dry = Ferry({"goto", "1", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << Describe(dry);
  EXPECT_THAT(dry.out, HasSubstr("dry run: would roll back 2 migrations: 3, 2")) << Describe(dry);
  RunResult down = Ferry({"goto", "1"});
  ASSERT_EQ(down.exit_code, 0) << Describe(down);
  EXPECT_THAT(down.out, Not(HasSubstr("nothing to do"))) << Describe(down);
  EXPECT_THAT(down.out, HasSubstr("rolled back 2 migrations (3, 2)")) << Describe(down);
  EXPECT_THAT(down.out, HasSubstr("database is at 1")) << Describe(down);
  RunResult again = Ferry({"goto", "3"});
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_THAT(again.out, HasSubstr("applied 2 migrations")) << Describe(again);
}

// ---- 5: seed 003's `report json` / `report summary` ---------------------------

TEST_P(FirstContactTest, ReportTakesTheFormatAsAWord) {
  WriteCreate("1_a.sql", "a");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  RunResult j = Ferry({"report", "json"});
  ASSERT_EQ(j.exit_code, 0) << Describe(j);
  json doc = LastJson(j.out);
  EXPECT_EQ(doc["status"]["current_version"], "1") << j.out;
  RunResult s = Ferry({"report", "summary"});
  ASSERT_EQ(s.exit_code, 0) << Describe(s);
  EXPECT_THAT(s.out, HasSubstr("ferry migration report")) << Describe(s);
  RunResult bad = Ferry({"report", "xml"});
  EXPECT_NE(bad.exit_code, 0) << Describe(bad);
  EXPECT_THAT(bad.err, HasSubstr("unknown report format 'xml'")) << Describe(bad);
  RunResult both = Ferry({"report", "json", "--format", "summary"});
  EXPECT_NE(both.exit_code, 0) << Describe(both);
  EXPECT_THAT(both.err, HasSubstr("give the format once")) << Describe(both);
}

// ---- 10: the down hint names the layout's own way -----------------------------

TEST_P(FirstContactTest, DownHintNamesTheLayoutsOwnWay) {
  Write("1_users.up.sql", "CREATE TABLE users (id int);\n");
  Write("V2__orders.sql", "CREATE TABLE orders (id int);\n");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  RunResult flyway = Ferry({"down"});
  EXPECT_NE(flyway.exit_code, 0) << Describe(flyway);
  EXPECT_THAT(flyway.err, HasSubstr("write its undo file U2__orders.sql")) << Describe(flyway);
  EXPECT_THAT(flyway.err, Not(HasSubstr("ferry:down"))) << Describe(flyway);
  Write("U2__orders.sql", "DROP TABLE orders;\n");
  ASSERT_EQ(Ferry({"down"}).exit_code, 0);
  RunResult golang = Ferry({"down"});
  EXPECT_NE(golang.exit_code, 0) << Describe(golang);
  EXPECT_THAT(golang.err, HasSubstr("write 1_users.down.sql beside it")) << Describe(golang);
  EXPECT_THAT(golang.err, Not(HasSubstr("ferry:down"))) << Describe(golang);
}

// ---- 11: dbmate markers only at the start of a line ---------------------------

TEST_P(FirstContactTest, IndentedDbmateMarkerIsAPlainComment) {
  Write("1_notes.sql",
        "-- migrate:up\n"
        "CREATE TABLE notes (\n"
        "    id int,\n"
        "    -- migrate:down (a note about the old layout)\n"
        "    body text\n"
        ");\n"
        "-- migrate:down\n"
        "DROP TABLE notes;\n");
  RunResult up = Ferry({"up"});
  ASSERT_EQ(up.exit_code, 0) << Describe(up);
  EXPECT_EQ(Scalar(pg() ? "SELECT count(*) FROM information_schema.columns WHERE table_name = "
                          "'notes'"
                        : "SELECT count(*) FROM pragma_table_info('notes')"),
            "2");
  RunResult down = Ferry({"down"});
  ASSERT_EQ(down.exit_code, 0) << Describe(down);
}

// ---- 7: RAISE NOTICE is progress; -q hides it -----------------------------------

TEST_P(FirstContactPgTest, RaiseNoticeIsShownAsProgressAndQuietHidesIt) {
  Write("1_backfill.sql",
        "-- ferry:up\n"
        "CREATE TABLE items (id int);\n"
        "DO $$ BEGIN RAISE NOTICE 'backfilled % of % rows', 50, 100; END $$;\n"
        "-- ferry:down\n"
        "DO $$ BEGIN RAISE NOTICE 'dropping items'; END $$;\n"
        "DROP TABLE items;\n");
  RunResult up = Ferry({"up"});
  ASSERT_EQ(up.exit_code, 0) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("NOTICE: backfilled 50 of 100 rows")) << Describe(up);
  // ferry's own statements (history table creation) raise nothing shown.
  EXPECT_THAT(up.err, Not(HasSubstr("already exists"))) << Describe(up);
  RunResult down = Ferry({"down", "-q"});
  ASSERT_EQ(down.exit_code, 0) << Describe(down);
  EXPECT_THAT(down.err, Not(HasSubstr("dropping items"))) << Describe(down);
  RunResult again = Ferry({"up", "--json"});
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_THAT(again.out, HasSubstr("\"event\":\"notice\"")) << Describe(again);
  EXPECT_THAT(again.out, HasSubstr("NOTICE: backfilled 50 of 100 rows")) << Describe(again);
}

// ---- 13: other .sql files in the directory: ignored or refused -----------------

TEST_P(FirstContactTest, UnknownSqlFilesAreRefusedOrListedAsIgnored) {
  WriteCreate("1_a.sql", "a");
  Write("seed_data.sql", "INSERT INTO a VALUES (1);\n");
  Write("afterMigrate.sql", "SELECT 1;\n");
  RunResult refused = Ferry({"up"});
  EXPECT_NE(refused.exit_code, 0) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("seed_data.sql: fits no migration layout")) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("unknown_files = \"ignore\"")) << Describe(refused);

  dir_.Write("ferry.toml", "[migrations]\nunknown_files = \"ignore\"\n");
  RunResult up = Ferry({"up"});
  ASSERT_EQ(up.exit_code, 0) << Describe(up);
  EXPECT_EQ(Scalar("SELECT count(*) FROM a"), "0");  // the seed did not run
  RunResult status = Ferry({"status"});
  ASSERT_EQ(status.exit_code, 0) << Describe(status);
  EXPECT_THAT(status.out, HasSubstr("ignored   2 .sql files fitting no migration layout"))
      << Describe(status);
  EXPECT_THAT(status.out, HasSubstr("afterMigrate.sql, seed_data.sql")) << Describe(status);
  RunResult j = Ferry({"status", "--json"});
  ASSERT_EQ(j.exit_code, 0) << Describe(j);
  EXPECT_EQ(LastJson(j.out)["ignored_files"], json({"afterMigrate.sql", "seed_data.sql"}));

  dir_.Write("ferry.toml", "[migrations]\nunknown_files = \"error\"\n");
  RunResult again = Ferry({"status"});
  EXPECT_NE(again.exit_code, 0) << Describe(again);
  EXPECT_THAT(again.err, HasSubstr("seed_data.sql: fits no migration layout")) << Describe(again);

  dir_.Write("ferry.toml", "[migrations]\nunknown_files = \"skip\"\n");
  RunResult bad = Ferry({"status"});
  EXPECT_NE(bad.exit_code, 0) << Describe(bad);
  EXPECT_THAT(bad.err, HasSubstr("unknown_files must be \"ignore\" or \"error\"")) << Describe(bad);
}

// ---- 9: a file with its own BEGIN/COMMIT runs as written with no-transaction ---

TEST_P(FirstContactTest, OwnTransactionsRunAsWrittenAndResumeAtTheFailedBlock) {
  const std::string body =
      "BEGIN;\n"
      "CREATE TABLE t1 (id int);\n"
      "INSERT INTO t1 VALUES (1);\n"
      "COMMIT;\n"
      "BEGIN;\n"
      "CREATE TABLE t2 (id int);\n"
      "INSERT INTO TARGET VALUES (2);\n"
      "COMMIT;\n";
  auto with = [&](const std::string& target) {
    std::string text = body;
    text.replace(text.find("TARGET"), 6, target);
    return text;
  };
  Write("V1__flyway_style.sql", with("t2"));
  RunResult refused = Ferry({"up", "--allow-unsafe"});
  EXPECT_NE(refused.exit_code, 0) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("add '-- ferry:no-transaction' at its top to run it as written"))
      << Describe(refused);

  Write("V1__flyway_style.sql", "-- ferry:no-transaction\n" + with("no_such_table"));
  RunResult failed = Ferry({"up"});
  EXPECT_NE(failed.exit_code, 0) << Describe(failed);
  EXPECT_THAT(failed.err, HasSubstr("V1__flyway_style.sql:8")) << Describe(failed);
  // The first block committed; the second was rolled back as a whole.
  EXPECT_EQ(Scalar("SELECT count(*) FROM t1"), "1");
  EXPECT_EQ(Scalar(pg() ? "SELECT count(*) FROM pg_tables WHERE tablename = 't2'"
                        : "SELECT count(*) FROM sqlite_master WHERE name = 't2'"),
            "0");
  EXPECT_EQ(Scalar("SELECT statements_done || ':' || status || ':' || execution FROM "
                   "ferry_schema_history"),
            "4:failed:own-transactions");

  // Fixed: the next run resumes at the second BEGIN (t1 is not created again).
  Write("V1__flyway_style.sql", "-- ferry:no-transaction\n" + with("t2"));
  RunResult fixed = Ferry({"up"});
  ASSERT_EQ(fixed.exit_code, 0) << Describe(fixed);
  EXPECT_EQ(Scalar("SELECT count(*) FROM t1"), "1");
  EXPECT_EQ(Scalar("SELECT count(*) FROM t2"), "1");
  EXPECT_EQ(Scalar("SELECT statements_done || ':' || status || ':' || execution FROM "
                   "ferry_schema_history"),
            "8:success:own-transactions");
  RunResult lint = Ferry({"lint"});
  EXPECT_THAT(lint.out, Not(HasSubstr("transaction-control"))) << Describe(lint);
}

// ---- 12: validate without a database ---------------------------------------------

// No database is opened, so no engine parameter.
TEST(FirstContactOfflineTest, ValidateWithoutADatabaseCreatesNothingAndUsesTheNamedEngine) {
  TempDir dir_;
  auto Write = [&](const std::string& name, const std::string& text) {
    dir_.Write("migrations/" + name, text);
  };
  auto FerryNoDb = [&](const std::vector<std::string>& args) {
    std::vector<std::string> all = {"--dir", "migrations"};
    all.insert(all.end(), args.begin(), args.end());
    return RunFerry(all, {"DATABASE_URL="}, dir_.path());
  };
  Write("1_audit.sql",
        "-- ferry:up\n"
        "CREATE TABLE audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz);\n"
        "CREATE FUNCTION audit_now() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "  NEW.at := now();\n"
        "  RETURN NEW;\n"
        "END;\n"
        "$$;\n");
  Write("2_typo.sql", "CREATE TABLEE broken (id int);\n");
  dir_.Write("ferry.toml", "engine = \"postgres\"\n");
  RunResult pg_rules = FerryNoDb({"validate"});
  EXPECT_EQ(pg_rules.exit_code, 3) << Describe(pg_rules);
  EXPECT_THAT(pg_rules.out, HasSubstr("engine    postgres (from ferry.toml:1)")) << Describe(pg_rules);
  EXPECT_THAT(pg_rules.out, HasSubstr("database  none")) << Describe(pg_rules);
  EXPECT_THAT(pg_rules.out, HasSubstr("2_typo.sql")) << Describe(pg_rules);
  EXPECT_THAT(pg_rules.out, HasSubstr("syntax error")) << Describe(pg_rules);
  EXPECT_THAT(pg_rules.out, Not(HasSubstr("1_audit.sql"))) << Describe(pg_rules);
  EXPECT_THAT(pg_rules.out, HasSubstr("1 problem")) << Describe(pg_rules);
  EXPECT_FALSE(std::filesystem::exists(dir_.File("ferry.db")));

  // --engine wins over ferry.toml; SQLite's rules read BEGIN inside $$ as
  // transaction control, and say where the engine came from.
  RunResult sqlite_rules = FerryNoDb({"validate", "--engine", "sqlite", "--json"});
  EXPECT_EQ(sqlite_rules.exit_code, 3) << Describe(sqlite_rules);
  json j = LastJson(sqlite_rules.out);
  EXPECT_EQ(j["engine"], "sqlite");
  EXPECT_EQ(j["engine_from"], "--engine");
  EXPECT_FALSE(std::filesystem::exists(dir_.File("ferry.db")));

  dir_.Write("ferry.toml", "engine = \"mysql\"\n");
  RunResult unknown = FerryNoDb({"validate"});
  EXPECT_NE(unknown.exit_code, 0) << Describe(unknown);
  EXPECT_THAT(unknown.err, HasSubstr("engine from ferry.toml:1: unknown engine 'mysql': use "
                                     "postgres or sqlite"))
      << Describe(unknown);

  // Nothing named: SQLite (the default database), and the output says how
  // to choose PostgreSQL.
  std::filesystem::remove(dir_.File("ferry.toml"));
  RunResult defaulted = FerryNoDb({"validate"});
  EXPECT_THAT(defaulted.out, HasSubstr("engine    sqlite (from the default database; for "
                                       "PostgreSQL files set engine = \"postgres\""))
      << Describe(defaulted);
  EXPECT_FALSE(std::filesystem::exists(dir_.File("ferry.db")));
}

// ---- 4: validate and health see a table dropped by hand ------------------------

TEST_P(FirstContactTest, ValidateAndHealthReportSchemaDriftPerObject) {
  Write("1_init.sql",
        "-- ferry:up\n"
        "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);\n"
        "CREATE INDEX users_email_idx ON users (email);\n"
        "CREATE TABLE partition_stats (id int, load int);\n"
        "-- ferry:down\n"
        "DROP TABLE partition_stats;\nDROP TABLE users;\n");
  Write("2_name.sql",
        "-- ferry:up\nALTER TABLE users ADD COLUMN name text;\n"
        "-- ferry:down\nALTER TABLE users DROP COLUMN name;\n");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  RunResult clean = Ferry({"validate"});
  EXPECT_EQ(clean.exit_code, 0) << Describe(clean);
  EXPECT_THAT(clean.out, HasSubstr("the live schema holds what the migrations made"));
  // A rollback forgets what it removed; applying again records it again.
  ASSERT_EQ(Ferry({"down"}).exit_code, 0);
  EXPECT_EQ(Ferry({"validate"}).exit_code, 0);
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  EXPECT_EQ(Ferry({"validate"}).exit_code, 0);
  RunResult healthy = Ferry({"health"});
  EXPECT_EQ(healthy.exit_code, 0) << Describe(healthy);

  Exec("DROP TABLE partition_stats");
  Exec("DROP INDEX users_email_idx");
  RunResult drift = Ferry({"validate", "--exit-code"});
  EXPECT_EQ(drift.exit_code, 3) << Describe(drift);
  EXPECT_THAT(drift.out, HasSubstr("schema validation failed: missing table partition_stats "
                                   "(made by 1)"))
      << Describe(drift);
  EXPECT_THAT(drift.out, HasSubstr("missing index users_email_idx")) << Describe(drift);
  // The table's columns are explained by the missing table.
  EXPECT_THAT(drift.out, Not(HasSubstr("column partition_stats.load"))) << Describe(drift);
  RunResult j = Ferry({"validate", "--json"});
  json problems = LastJson(j.out)["problems"];
  bool found = false;
  for (const auto& p : problems) {
    found |= p["kind"] == "schema" && p["script"] == "partition_stats";
  }
  EXPECT_TRUE(found) << j.out;
  RunResult health = Ferry({"health"});
  EXPECT_EQ(health.exit_code, 9) << Describe(health);
  EXPECT_THAT(health.out, HasSubstr("missing table partition_stats")) << Describe(health);
  // Another migration later does not forget what was dropped by hand.
  WriteCreate("3_more.sql", "more");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  RunResult still = Ferry({"validate"});
  EXPECT_EQ(still.exit_code, 3) << Describe(still);
  EXPECT_THAT(still.out, HasSubstr("missing table partition_stats")) << Describe(still);
  EXPECT_THAT(still.out, Not(HasSubstr("table more"))) << Describe(still);
}

// ---- 2: one size rule: the largest estimate; unknown is large -------------------

TEST_P(FirstContactPgTest, SizeIsGradedTheSameBeforeAndAfterAnalyze) {
  Exec("CREATE TABLE big (id bigint, name text)");
  Exec("INSERT INTO big SELECT g, 'user_' || g FROM generate_series(1, 100000) g");
  dir_.Write("ferry.toml", "[lint]\nsmall_table_rows = 1000\nlarge_table_rows = 50000\n");
  Write("1_index.sql", "CREATE INDEX big_name_idx ON big (name);\n");
  // Freshly loaded: reltuples is -1 (never analyzed); rows come from its bytes.
  RunResult before = Ferry({"up"});
  EXPECT_EQ(before.exit_code, 11) << Describe(before);
  EXPECT_THAT(before.err, HasSubstr("[create-index-non-concurrently]")) << Describe(before);
  EXPECT_THAT(before.err, HasSubstr("(big has ~")) << Describe(before);
  Exec("ANALYZE big");
  RunResult after = Ferry({"up"});
  EXPECT_EQ(after.exit_code, 11) << Describe(after);
  EXPECT_THAT(after.err, HasSubstr("(big has ~100 thousand rows)")) << Describe(after);
}

// ---- 1 + 8: a realistic 120-migration history applies to an empty database ----

namespace {

std::string DieselVersion(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "2024-01-01-%06d", i);
  return buf;
}

}  // namespace

TEST_P(FirstContactPgTest, RealisticHistoryAppliesToAnEmptyDatabaseWithoutAllowUnsafe) {
  // 20 entities, 6 migrations each, in diesel's layout: tables created and
  // then indexed, altered, constrained, renamed (table and column) and
  // altered again under the new name, data migrations without WHERE, and
  // later migrations indexing tables of earlier ones. On an empty database
  // none of it locks anything anyone waits for.
  int n = 0;
  auto add = [&](const std::string& name, const std::string& up, const std::string& down) {
    std::string folder = "migrations/" + DieselVersion(++n) + "_" + name;
    dir_.Write(folder + "/up.sql", up);
    dir_.Write(folder + "/down.sql", down);
  };
  for (int k = 0; k < 20; ++k) {
    const std::string e = "e" + std::to_string(k), t = "t" + std::to_string(k);
    const std::string parent = k == 0 ? e : "t" + std::to_string(k - 1);
    const std::string older = "t" + std::to_string(k / 2);
    add("create_" + e,
        "CREATE TABLE " + e + " (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name "
        "varchar(100), created_at timestamp);\n",
        "DROP TABLE " + e + ";\n");
    add("index_" + e,
        "CREATE INDEX " + e + "_name_idx ON " + e + " (name);\nALTER TABLE public." + e +
            " ADD COLUMN status text NOT NULL DEFAULT 'new';\n",
        "ALTER TABLE " + e + " DROP COLUMN status;\nDROP INDEX " + e + "_name_idx;\n");
    add("parent_" + e,
        "ALTER TABLE " + e + " ADD COLUMN parent_id bigint;\nALTER TABLE " + e +
            " ADD CONSTRAINT " + e + "_parent_fk FOREIGN KEY (parent_id) REFERENCES " + parent +
            " (id);\nUPDATE " + e + " SET status = 'old';\n",
        "ALTER TABLE " + e + " DROP COLUMN parent_id;\n");
    add("rename_" + e,
        "ALTER TABLE " + e + " RENAME TO " + t + ";\nALTER TABLE " + t +
            " ALTER COLUMN name TYPE text;\nALTER TABLE " + t +
            " RENAME COLUMN name TO title;\n",
        "ALTER TABLE " + t + " RENAME COLUMN title TO name;\nALTER TABLE " + t + " RENAME TO " +
            e + ";\n");
    add("title_" + t,
        "ALTER TABLE " + t + " ALTER COLUMN title SET NOT NULL;\nALTER TABLE public." + t +
            " ADD CONSTRAINT " + t + "_title_key UNIQUE (title);\nCREATE INDEX " + t +
            "_created_idx ON " + t + " (created_at);\n",
        "DROP INDEX " + t + "_created_idx;\nALTER TABLE " + t + " DROP CONSTRAINT " + t +
            "_title_key;\n");
    add("score_" + t,
        "ALTER TABLE " + t + " ADD COLUMN score integer DEFAULT 0;\nALTER TABLE " + t +
            " ALTER COLUMN score TYPE bigint;\nALTER TABLE " + t +
            " ADD CHECK (score >= 0);\nCREATE INDEX " + t + "_score_" + std::to_string(k) +
            "_idx ON " + older + " (score);\n",
        "DROP INDEX " + t + "_score_" + std::to_string(k) + "_idx;\nALTER TABLE " + t +
            " DROP COLUMN score;\n");
  }
  ASSERT_EQ(n, 120);
  // Half first, as a run that stopped midway would leave it: the tables of
  // the first half then exist, empty, when the second half is judged.
  RunResult half = Ferry({"up", "--to", DieselVersion(60)});
  ASSERT_EQ(half.exit_code, 0) << Describe(half);
  RunResult rest = Ferry({"up"});
  ASSERT_EQ(rest.exit_code, 0) << Describe(rest);
  EXPECT_THAT(rest.err, HasSubstr("other findings (warnings, notes) do not block; 'ferry lint' "
                                  "lists them"))
      << Describe(rest);
  EXPECT_THAT(rest.err, Not(HasSubstr("[timestamp-without-time-zone]"))) << Describe(rest);
  EXPECT_EQ(Scalar("SELECT count(*) FROM ferry_schema_history WHERE status = 'success'"), "120");
  EXPECT_EQ(Scalar("SELECT count(*) FROM ferry_schema_history WHERE note LIKE '%allow-unsafe%'"),
            "0");

  // A table with rows is existing: what blocks is listed, the rest counted.
  Exec("INSERT INTO t0 (title) VALUES ('a')");
  add("rename_title",
      "ALTER TABLE t0 RENAME COLUMN title TO heading;\nALTER TABLE t0 ADD COLUMN seen timestamp;\n",
      "ALTER TABLE t0 DROP COLUMN seen;\nALTER TABLE t0 RENAME COLUMN heading TO title;\n");
  RunResult refused = Ferry({"up"});
  EXPECT_EQ(refused.exit_code, 11) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("[rename-column]")) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("lint: 1 other finding (warnings, notes) do not block"))
      << Describe(refused);
  EXPECT_THAT(refused.err, Not(HasSubstr("[timestamp-without-time-zone]"))) << Describe(refused);
}

// ---- 6: the shipped examples pass ferry's own lint -------------------------------

TEST(FirstContactOfflineTest, ShippedExamplesPassLint) {
  int linted = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(FERRY_SOURCE_DIR) + "/examples")) {
    if (!std::filesystem::is_directory(entry.path() / "migrations")) continue;
    RunResult r = RunFerry({"lint", "--dir", "migrations"}, {"DATABASE_URL="},
                           entry.path().string());
    EXPECT_EQ(r.exit_code, 0) << entry.path() << "\n" << Describe(r);
    EXPECT_THAT(r.out, HasSubstr(": 0 errors,")) << entry.path() << "\n" << Describe(r);
    ++linted;
  }
  EXPECT_GE(linted, 2);
}

}  // namespace

std::string FirstContactParamName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

#if FERRY_WITH_POSTGRES
INSTANTIATE_TEST_SUITE_P(Engines, FirstContactTest, ::testing::Values("postgres", "sqlite"),
                         FirstContactParamName);
INSTANTIATE_TEST_SUITE_P(Engines, FirstContactPgTest, ::testing::Values("postgres"),
                         FirstContactParamName);
#else
INSTANTIATE_TEST_SUITE_P(Engines, FirstContactTest, ::testing::Values("sqlite"),
                         FirstContactParamName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(FirstContactPgTest);
#endif

}  // namespace ferry::testing
