// The migration commands end to end: the built `ferry` binary run against a
// fresh PostgreSQL database and a fresh SQLite file, each test in its own
// temporary directory (the working directory of every run) holding
// migrations/. What the database holds is checked with a separate connection.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "drivers/registry.h"
#include "migrate/lock.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

// The last line of `out` parsed as JSON (event lines come before the result).
json LastJson(const std::string& out) {
  std::string text = out;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t nl = text.rfind('\n');
  std::string line = nl == std::string::npos ? text : text.substr(nl + 1);
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << out;
  return j;
}

std::string Describe(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout:\n" + r.out + "--- stderr:\n" + r.err;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class MigrateCliTest : public ::testing::TestWithParam<std::string> {
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

  // Runs ferry in the test directory against this test's database.
  RunResult Ferry(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    std::vector<std::string> all = {"--database", url_, "--dir", "migrations"};
    all.insert(all.end(), args.begin(), args.end());
    return RunFerry(all, env, dir_.path());
  }
  // Runs ferry and parses the last line of stdout as JSON ("--json" added).
  json FerryJson(std::vector<std::string> args, int expected_exit = 0) {
    args.push_back("--json");
    RunResult r = Ferry(args);
    EXPECT_EQ(r.exit_code, expected_exit) << Describe(r);
    return LastJson(r.out);
  }

  void Write(const std::string& name, const std::string& content) {
    dir_.Write("migrations/" + name, content);
  }
  // status only reads: on SQLite it needs the file to exist (a missing one
  // is an error, never created), as `up` would leave it.
  void CreateDatabaseFile() {
    if (!pg()) {
      ASSERT_TRUE(OpenConnection(url_).ok());
    }
  }
  void Remove(const std::string& name) {
    std::filesystem::remove_all(dir_.File("migrations/" + name));
  }

  // Rows of `sql` on a connection of our own, NULL as "NULL".
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
    if (rows.empty() || rows[0].empty()) return "<no rows>";
    return rows[0][0];
  }
  void Exec(const std::string& sql) {
    auto conn = OpenConnection(url_);
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    auto r = (*conn)->Exec(sql);
    ASSERT_TRUE(r.ok()) << r.status().ToString() << " in: " << sql;
  }
  bool TableExists(const std::string& name) {
    std::string sql =
        pg() ? "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
               "current_schema() AND table_name = '" + name + "'"
             : "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = '" +
                   name + "'";
    return Scalar(sql) == "1";
  }

  json StatusJson() { return FerryJson({"status"}); }
  json HistoryJson() { return FerryJson({"history"})["history"]; }
  // The status entry of `version` (or of `script` for repeatables).
  json Entry(const json& status, const std::string& key) {
    for (const auto& e : status["migrations"]) {
      if (e["version"] == key || e["script"] == key) return e;
    }
    ADD_FAILURE() << "no entry " << key << " in " << status.dump();
    return json::object();
  }

  // A single-file migration creating `table`, with a down section.
  void WriteCreate(const std::string& name, const std::string& table) {
    Write(name, "-- ferry:up\nCREATE TABLE " + table + " (id int);\n-- ferry:down\nDROP TABLE " +
                    table + ";\n");
  }

  TempDir dir_;
  std::unique_ptr<FreshPgDatabase> pg_db_;
  std::string url_;
};

// PostgreSQL-only behaviour.
class MigrateCliPgTest : public MigrateCliTest {};

// ---- init, new ---------------------------------------------------------------

TEST_P(MigrateCliTest, InitCreatesDirConfigAndHistoryTable) {
  ASSERT_FALSE(std::filesystem::exists(dir_.File("migrations")));
  RunResult r = Ferry({"init"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("created migrations"));
  EXPECT_THAT(r.out, HasSubstr("created ferry.toml"));
  EXPECT_THAT(r.out, HasSubstr("history table ferry_schema_history ready"));
  EXPECT_TRUE(std::filesystem::is_directory(dir_.File("migrations")));
  std::string toml = ReadFile(dir_.File("ferry.toml"));
  EXPECT_THAT(toml, HasSubstr("dir = \"migrations\""));
  EXPECT_THAT(toml, HasSubstr("database = \"" + url_ + "\""));
  EXPECT_TRUE(TableExists("ferry_schema_history"));
  EXPECT_EQ(Scalar("SELECT count(*) FROM ferry_schema_history"), "0");

  // Again: nothing is overwritten, still fine.
  dir_.Write("ferry.toml", "dir = \"migrations\"\n");
  json again = FerryJson({"init"});
  EXPECT_EQ(again["ok"], true);
  EXPECT_EQ(again["created_dir"], false);
  EXPECT_EQ(again["created_config"], false);
  EXPECT_EQ(again["history_table"], "ferry_schema_history");
  EXPECT_EQ(ReadFile(dir_.File("ferry.toml")), "dir = \"migrations\"\n");

  // The configuration written by init is enough on its own.
  dir_.Write("ferry.toml", toml);
  RunResult status = RunFerry({"status", "--json"}, {}, dir_.path());
  ASSERT_EQ(status.exit_code, 0) << Describe(status);
  EXPECT_EQ(LastJson(status.out)["history_exists"], true);
}

TEST_P(MigrateCliTest, NewCreatesFilesOfEachLayoutWithTheNextVersion) {
  json first = FerryJson({"new", "create users", "--style", "integer"});
  EXPECT_EQ(first["version"], "0001");
  EXPECT_THAT(first["files"], ElementsAre("migrations/0001_create_users.sql"));
  EXPECT_EQ(ReadFile(dir_.File("migrations/0001_create_users.sql")),
            "-- ferry:up\n\n-- ferry:down\n");
  WriteCreate("0001_create_users.sql", "n1");

  json golang = FerryJson({"new", "second", "--layout", "golang", "--style", "integer"});
  EXPECT_EQ(golang["version"], "0002");
  EXPECT_THAT(golang["files"],
              ElementsAre("migrations/0002_second.up.sql", "migrations/0002_second.down.sql"));
  Write("0002_second.up.sql", "CREATE TABLE n2 (id int);\n");
  Write("0002_second.down.sql", "DROP TABLE n2;\n");

  json diesel = FerryJson({"new", "third", "--layout", "diesel", "--style", "integer"});
  EXPECT_EQ(diesel["version"], "0003");
  EXPECT_THAT(diesel["files"],
              ElementsAre("migrations/0003_third/up.sql", "migrations/0003_third/down.sql"));
  Write("0003_third/up.sql", "CREATE TABLE n3 (id int);\n");
  Write("0003_third/down.sql", "DROP TABLE n3;\n");

  json flyway = FerryJson({"new", "fourth", "--layout", "flyway", "--style", "integer"});
  EXPECT_EQ(flyway["version"], "0004");
  EXPECT_THAT(flyway["files"],
              ElementsAre("migrations/V0004__fourth.sql", "migrations/U0004__fourth.sql"));
  Write("V0004__fourth.sql", "CREATE TABLE n4 (id int);\n");
  Write("U0004__fourth.sql", "DROP TABLE n4;\n");

  // Timestamp style (the default): UTC YYYYMMDDHHMMSS, after everything.
  json stamp = FerryJson({"new", "fifth"});
  std::string v5 = stamp["version"];
  EXPECT_THAT(v5, MatchesRegex("20[0-9]{12}"));
  EXPECT_THAT(stamp["files"], ElementsAre("migrations/" + v5 + "_fifth.sql"));
  WriteCreate(v5 + "_fifth.sql", "n5");

  // Diesel timestamps are dashed and still sort after the previous one.
  json dashed = FerryJson({"new", "sixth", "--layout", "diesel"});
  std::string v6 = dashed["version"];
  EXPECT_THAT(v6, MatchesRegex("20[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{6}"));
  EXPECT_THAT(dashed["files"],
              ElementsAre("migrations/" + v6 + "_sixth/up.sql", "migrations/" + v6 + "_sixth/down.sql"));
  Write(v6 + "_sixth/up.sql", "CREATE TABLE n6 (id int);\n");
  Write(v6 + "_sixth/down.sql", "DROP TABLE n6;\n");

  // Sequential numbering after a diesel timestamp is refused, nothing written.
  RunResult seq = Ferry({"new", "seventh", "--style", "integer"});
  EXPECT_EQ(seq.exit_code, 8) << Describe(seq);
  EXPECT_THAT(seq.err, HasSubstr("use the timestamp style"));
  RunResult bad_layout = Ferry({"new", "x", "--layout", "rails"});
  EXPECT_EQ(bad_layout.exit_code, 8) << Describe(bad_layout);
  EXPECT_THAT(bad_layout.err, HasSubstr("unknown layout 'rails'"));

  // Every generated file is a valid migration, in the order generated.
  json up = FerryJson({"up"});
  EXPECT_EQ(up["applied"], json({"0001", "0002", "0003", "0004", v5, v6}));
  for (const char* t : {"n1", "n2", "n3", "n4", "n5", "n6"}) EXPECT_TRUE(TableExists(t)) << t;
  json st = StatusJson();
  EXPECT_EQ(st["applied"], 6);
  EXPECT_EQ(st["pending"], 0);
}

// `ferry new a` then `ferry new b` before editing a: the second must not trip
// over the untouched template the first one wrote.
TEST_P(MigrateCliTest, NewTwiceBeforeEditingTheFirstTemplate) {
  RunResult a = Ferry({"new", "first", "--style", "integer"});
  ASSERT_EQ(a.exit_code, 0) << Describe(a);
  RunResult b = Ferry({"new", "second", "--style", "integer"});
  EXPECT_EQ(b.exit_code, 0) << Describe(b);
  EXPECT_TRUE(std::filesystem::exists(dir_.File("migrations/0002_second.sql")));
}

// ---- layouts, repeatables ------------------------------------------------------

TEST_P(MigrateCliTest, MixedLayoutsApplyInNumericOrderAndRepeatableRerunsOnChange) {
  // Each step records its position, so m_log shows the order things ran in.
  auto step = [](const std::string& what) {
    return "INSERT INTO m_log (step, what) SELECT count(*) + 1, '" + what + "' FROM m_log;\n";
  };
  Write("1_base.sql",
        "-- ferry:up\nCREATE TABLE m_log (step int, what text);\n" + step("ferry") +
            "-- ferry:down\nDROP TABLE m_log;\n");
  Write("V1_1__flyway.sql", step("flyway"));
  Write("U1_1__flyway.sql", "DELETE FROM m_log WHERE what = 'flyway';\n");
  Write("2_dbmate.sql", "-- migrate:up\n" + step("dbmate") +
                            "\n-- migrate:down\nDELETE FROM m_log WHERE what = 'dbmate';\n");
  Write("10_golang.up.sql", step("golang"));
  Write("10_golang.down.sql", "DELETE FROM m_log WHERE what = 'golang';\n");
  Write("2019-02-26-002946_diesel/up.sql", step("diesel"));
  Write("2019-02-26-002946_diesel/down.sql", "DELETE FROM m_log WHERE what = 'diesel';\n");
  Write("R__views.sql", "DROP VIEW IF EXISTS m_view;\nCREATE VIEW m_view AS SELECT count(*) AS n FROM m_log;\n");
  Write("README.md", "not a migration\n");
  CreateDatabaseFile();

  json st = StatusJson();
  EXPECT_EQ(st["pending"], 6);
  std::vector<std::string> order;
  for (const auto& e : st["migrations"]) order.push_back(e["script"]);
  EXPECT_THAT(order, ElementsAre("1_base.sql", "V1_1__flyway.sql", "2_dbmate.sql",
                                 "10_golang.up.sql", "2019-02-26-002946_diesel/up.sql",
                                 "R__views.sql"));
  EXPECT_EQ(Entry(st, "R__views.sql")["kind"], "repeatable");

  json up = FerryJson({"up"});
  EXPECT_EQ(up["applied"],
            json({"1", "1_1", "2", "10", "2019-02-26-002946", "R__views.sql"}));
  EXPECT_EQ(up["current_version"], "2019-02-26-002946");
  auto log = Rows("SELECT step, what FROM m_log ORDER BY step");
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(log[0], (std::vector<std::string>{"1", "ferry"}));
  EXPECT_EQ(log[1], (std::vector<std::string>{"2", "flyway"}));
  EXPECT_EQ(log[2], (std::vector<std::string>{"3", "dbmate"}));
  EXPECT_EQ(log[3], (std::vector<std::string>{"4", "golang"}));
  EXPECT_EQ(log[4], (std::vector<std::string>{"5", "diesel"}));
  EXPECT_EQ(Scalar("SELECT n FROM m_view"), "5");  // the repeatable ran after them all

  // Unchanged: nothing runs again.
  json again = FerryJson({"up"});
  EXPECT_EQ(again["applied"], json::array());
  json hist = HistoryJson();
  ASSERT_EQ(hist.size(), 6u);
  EXPECT_EQ(hist[5]["kind"], "repeatable");
  EXPECT_EQ(hist[5]["script"], "R__views.sql");
  EXPECT_EQ(hist[5]["attempts"], 1);

  // Changed: it runs again, and only it.
  Write("R__views.sql",
        "DROP VIEW IF EXISTS m_view;\nCREATE VIEW m_view AS SELECT count(*) * 10 AS n FROM m_log;\n");
  json changed = StatusJson();
  EXPECT_EQ(Entry(changed, "R__views.sql")["state"], "pending");
  EXPECT_EQ(changed["changed"], 0);
  json rerun = FerryJson({"up"});
  EXPECT_EQ(rerun["applied"], json({"R__views.sql"}));
  EXPECT_EQ(Scalar("SELECT n FROM m_view"), "50");
  EXPECT_EQ(Scalar("SELECT count(*) FROM m_log"), "5");
  hist = HistoryJson();
  ASSERT_EQ(hist.size(), 6u);
  EXPECT_EQ(hist[5]["attempts"], 2);
  EXPECT_EQ(FerryJson({"up"})["applied"], json::array());

  // Every layout's down script works.
  json down = FerryJson({"down", "--to", "1"});
  EXPECT_EQ(down["rolled_back"], json({"2019-02-26-002946", "10", "2", "1_1"}));
  EXPECT_EQ(down["current_version"], "1");
  EXPECT_EQ(Scalar("SELECT count(*) FROM m_log"), "1");
}

// ---- up, plan ----------------------------------------------------------------------

TEST_P(MigrateCliTest, UpToVersionAndDryRun) {
  WriteCreate("1_a.sql", "to_a");
  WriteCreate("2_b.sql", "to_b");
  WriteCreate("3_c.sql", "to_c");

  // A dry run changes nothing: not even the history table is created.
  RunResult dry = Ferry({"up", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << Describe(dry);
  EXPECT_THAT(dry.out, HasSubstr("dry run: would apply 3 migrations: 1, 2, 3"));
  EXPECT_FALSE(TableExists("to_a"));
  EXPECT_FALSE(TableExists("ferry_schema_history"));

  json to2 = FerryJson({"up", "--to", "2"});
  EXPECT_EQ(to2["applied"], json({"1", "2"}));
  EXPECT_EQ(to2["current_version"], "2");
  EXPECT_TRUE(TableExists("to_a"));
  EXPECT_TRUE(TableExists("to_b"));
  EXPECT_FALSE(TableExists("to_c"));

  json dry_json = FerryJson({"up", "--dry-run"});
  EXPECT_EQ(dry_json["dry_run"], true);
  EXPECT_EQ(dry_json["applied"], json({"3"}));
  EXPECT_FALSE(TableExists("to_c"));
  EXPECT_EQ(StatusJson()["pending"], 1);

  RunResult unknown = Ferry({"up", "--to", "7"});
  EXPECT_EQ(unknown.exit_code, 7) << Describe(unknown);
  EXPECT_THAT(unknown.err, HasSubstr("no migration has version 7"));
  EXPECT_FALSE(TableExists("to_c"));

  RunResult rest = Ferry({"up"});
  ASSERT_EQ(rest.exit_code, 0) << Describe(rest);
  EXPECT_THAT(rest.out, HasSubstr("applied 1 migration in"));
  EXPECT_THAT(rest.out, HasSubstr("database is at 3"));
  EXPECT_TRUE(TableExists("to_c"));
  RunResult nothing = Ferry({"up"});
  EXPECT_EQ(nothing.exit_code, 0);
  EXPECT_THAT(nothing.out, HasSubstr("nothing to do; database is at 3"));
}

TEST_P(MigrateCliTest, PlanShowsExactSqlWithTransactionAndLines) {
  Write("1_plan.sql",
        "-- ferry:up\n"
        "CREATE TABLE p1 (id int);\n"
        "\n"
        "CREATE TABLE p2 (id int);\n"
        "-- ferry:down\n"
        "DROP TABLE p2;\n"
        "DROP TABLE p1;\n");
  Write("2_more.up.sql", "-- a comment\nINSERT INTO p1 (id) VALUES (1);\n");
  RunResult plan = Ferry({"plan"});
  ASSERT_EQ(plan.exit_code, 0) << Describe(plan);
  EXPECT_EQ(plan.out,
            "-- up 1 (1_plan.sql, transaction)\n"
            "BEGIN;\n"
            "-- line 2\n"
            "CREATE TABLE p1 (id int);\n"
            "-- line 4\n"
            "CREATE TABLE p2 (id int);\n"
            "-- + history row in the history table\n"
            "COMMIT;\n"
            "\n"
            "-- up 2 (2_more.up.sql, transaction)\n"
            "BEGIN;\n"
            "-- line 2\n"
            "INSERT INTO p1 (id) VALUES (1);\n"
            "-- + history row in the history table\n"
            "COMMIT;\n"
            "\n");
  EXPECT_FALSE(TableExists("p1"));  // planning changes nothing

  json pj = FerryJson({"plan", "--to", "1"});
  ASSERT_EQ(pj["steps"].size(), 1u);
  EXPECT_EQ(pj["steps"][0]["execution"], "transaction");
  EXPECT_EQ(pj["steps"][0]["statements"][1]["line"], 4);
  EXPECT_EQ(pj["steps"][0]["statements"][1]["sql"], "CREATE TABLE p2 (id int)");

  ASSERT_EQ(Ferry({"up", "--to", "1"}).exit_code, 0);
  RunResult down = Ferry({"plan", "--down"});
  ASSERT_EQ(down.exit_code, 0) << Describe(down);
  EXPECT_THAT(down.out, StartsWith("-- down 1 ("));
  EXPECT_THAT(down.out, HasSubstr("1_plan.sql, transaction)\nBEGIN;\n-- line 6\nDROP TABLE p2;\n"
                                  "-- line 7\nDROP TABLE p1;\n"
                                  "-- + history row in the history table\nCOMMIT;\n"));
  EXPECT_TRUE(TableExists("p1"));  // still there
  RunResult none = Ferry({"plan", "--to", "1"});
  EXPECT_EQ(none.out, "-- nothing to do\n");
}

// ---- down, redo, goto ----------------------------------------------------------------

TEST_P(MigrateCliTest, DownStepsToAliasesRedoAndGoto) {
  for (int i = 1; i <= 4; ++i) {
    WriteCreate(std::to_string(i) + "_t" + std::to_string(i) + ".sql", "d" + std::to_string(i));
  }
  auto current = [&] { return StatusJson()["current_version"].get<std::string>(); };
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);

  RunResult dry = Ferry({"down", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << Describe(dry);
  EXPECT_THAT(dry.out, HasSubstr("dry run: would roll back 1 migration: 4"));
  EXPECT_TRUE(TableExists("d4"));

  RunResult one = Ferry({"down"});
  ASSERT_EQ(one.exit_code, 0) << Describe(one);
  EXPECT_THAT(one.out, HasSubstr("rolled back 1 migration in"));
  EXPECT_FALSE(TableExists("d4"));
  EXPECT_TRUE(TableExists("d3"));
  EXPECT_EQ(current(), "3");

  json two = FerryJson({"down", "--steps", "2"});
  EXPECT_EQ(two["rolled_back"], json({"3", "2"}));
  EXPECT_FALSE(TableExists("d3"));
  EXPECT_FALSE(TableExists("d2"));
  EXPECT_TRUE(TableExists("d1"));
  EXPECT_EQ(current(), "1");

  ASSERT_EQ(Ferry({"migrate"}).exit_code, 0);  // alias of up
  EXPECT_TRUE(TableExists("d4"));
  EXPECT_EQ(current(), "4");

  json to2 = FerryJson({"down", "--to", "2"});
  EXPECT_EQ(to2["rolled_back"], json({"4", "3"}));
  EXPECT_TRUE(TableExists("d2"));
  EXPECT_FALSE(TableExists("d3"));
  EXPECT_EQ(current(), "2");

  json alias = FerryJson({"rollback"});
  EXPECT_EQ(alias["rolled_back"], json({"2"}));
  EXPECT_FALSE(TableExists("d2"));
  EXPECT_EQ(current(), "1");

  RunResult both = Ferry({"down", "--steps", "1", "--to", "1"});
  EXPECT_EQ(both.exit_code, 8) << Describe(both);
  EXPECT_TRUE(TableExists("d1"));

  // goto up, then down, then to an unknown version.
  json gup = FerryJson({"goto", "3"});
  EXPECT_EQ(gup["applied"], json({"2", "3"}));
  EXPECT_EQ(gup["current_version"], "3");
  EXPECT_FALSE(TableExists("d4"));
  json gdown = FerryJson({"goto", "1"});
  EXPECT_EQ(gdown["rolled_back"], json({"3", "2"}));
  EXPECT_EQ(gdown["current_version"], "1");
  EXPECT_FALSE(TableExists("d2"));
  EXPECT_TRUE(TableExists("d1"));
  RunResult gbad = Ferry({"goto", "9"});
  EXPECT_EQ(gbad.exit_code, 7) << Describe(gbad);
  EXPECT_THAT(gbad.err, HasSubstr("no migration has version 9"));

  // redo: the newest is rolled back and applied again.
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  Exec("INSERT INTO d4 (id) VALUES (42)");
  RunResult redo = Ferry({"redo"});
  ASSERT_EQ(redo.exit_code, 0) << Describe(redo);
  EXPECT_THAT(redo.out, HasSubstr("rolled back 1 and applied 1 migration(s)"));
  EXPECT_THAT(redo.out, HasSubstr("now at 4"));
  EXPECT_EQ(Scalar("SELECT count(*) FROM d4"), "0");  // the table was dropped and made again
  json hist = HistoryJson();
  int undo4 = 0;
  for (const auto& h : hist) undo4 += h["kind"] == "undo" && h["version"] == "4";
  EXPECT_EQ(undo4, 3);  // down, down --to 2, redo
  EXPECT_EQ(current(), "4");
}

TEST_P(MigrateCliTest, DownRefusesBeforeChangingAnythingWhenADownSectionIsMissing) {
  Write("1_forward_only.sql", "CREATE TABLE f1 (id int);\n");
  WriteCreate("2_two.sql", "f2");
  WriteCreate("3_three.sql", "f3");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  EXPECT_EQ(Entry(StatusJson(), "1")["rollback_available"], false);

  RunResult plan = Ferry({"plan", "--down", "--steps", "3"});
  EXPECT_EQ(plan.exit_code, 9) << Describe(plan);
  RunResult down = Ferry({"down", "--steps", "3"});
  EXPECT_EQ(down.exit_code, 9) << Describe(down);
  EXPECT_THAT(down.err, HasSubstr("1_forward_only.sql has no down section"));
  // Nothing was rolled back: 3 and 2 (which have downs) are still applied.
  EXPECT_TRUE(TableExists("f3"));
  EXPECT_TRUE(TableExists("f2"));
  json st = StatusJson();
  EXPECT_EQ(st["applied"], 3);
  EXPECT_EQ(st["current_version"], "3");
  for (const auto& h : HistoryJson()) EXPECT_NE(h["kind"], "undo") << h.dump();

  // Rolling back only the ones that can be rolled back works.
  EXPECT_EQ(FerryJson({"down", "--steps", "2"})["rolled_back"], json({"3", "2"}));
}

// ---- status, history ------------------------------------------------------------------

TEST_P(MigrateCliTest, StatusTextJsonAndExitCode) {
  WriteCreate("1_a.sql", "s1");
  Write("2_b.up.sql", "CREATE TABLE s2 (id int);\n");
  WriteCreate("3_c.sql", "s3");
  CreateDatabaseFile();

  json fresh = StatusJson();
  EXPECT_EQ(fresh["history_exists"], false);
  EXPECT_EQ(fresh["current_version"], "");
  EXPECT_EQ(fresh["pending"], 3);
  EXPECT_FALSE(TableExists("ferry_schema_history"));  // status only reads

  ASSERT_EQ(Ferry({"up", "--to", "2"}).exit_code, 0);
  RunResult text = Ferry({"status"});
  ASSERT_EQ(text.exit_code, 0) << Describe(text);  // pending, but no --exit-code
  EXPECT_THAT(text.out, HasSubstr("version   2 (2 applied, 1 pending)"));
  EXPECT_THAT(text.out, HasSubstr("lock      free"));
  EXPECT_THAT(text.out, MatchesRegex("(.|\n)*  applied +1 .*1_a\\.sql\n(.|\n)*"));
  EXPECT_THAT(text.out, MatchesRegex("(.|\n)*  pending +3 +3_c\\.sql\n(.|\n)*"));

  json st = StatusJson();
  EXPECT_EQ(st["ok"], true);
  EXPECT_EQ(st["history_exists"], true);
  EXPECT_EQ(st["applied"], 2);
  EXPECT_EQ(st["pending"], 1);
  EXPECT_EQ(st["changed"], 0);
  EXPECT_EQ(st["missing"], 0);
  EXPECT_EQ(st["failed"], 0);
  EXPECT_EQ(st["current_version"], "2");
  EXPECT_EQ(st["newest_file_version"], "3");
  EXPECT_EQ(st["future_database"], false);
  EXPECT_TRUE(st["lock"].is_null());
  ASSERT_EQ(st["migrations"].size(), 3u);
  EXPECT_EQ(st["migrations"][0]["state"], "applied");
  EXPECT_EQ(st["migrations"][0]["rollback_available"], true);
  EXPECT_THAT(st["migrations"][0]["checksum"].get<std::string>(), StartsWith("sha256v1:"));
  EXPECT_FALSE(st["migrations"][0]["applied_at"].get<std::string>().empty());
  EXPECT_EQ(st["migrations"][1]["state"], "applied");
  EXPECT_EQ(st["migrations"][1]["rollback_available"], false);
  EXPECT_EQ(st["migrations"][2]["state"], "pending");
  EXPECT_EQ(st["migrations"][2]["script"], "3_c.sql");

  RunResult pending = Ferry({"status", "--exit-code"});
  EXPECT_EQ(pending.exit_code, 3) << Describe(pending);
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  RunResult clean = Ferry({"status", "--exit-code"});
  EXPECT_EQ(clean.exit_code, 0) << Describe(clean);
  EXPECT_THAT(clean.out, HasSubstr("version   3 (3 applied, 0 pending)"));
}

TEST_P(MigrateCliTest, HistoryRowsRecordWhoWhatAndRollbacks) {
  Write("1_people.sql",
        "-- ferry:up\n"
        "CREATE TABLE people (id int);\n"
        "INSERT INTO people (id) VALUES (1), (2), (3);\n"
        "-- ferry:down\n"
        "DROP TABLE people;\n");
  WriteCreate("2_pets.sql", "pets");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  ASSERT_EQ(Ferry({"down"}).exit_code, 0);

  json hist = HistoryJson();
  ASSERT_EQ(hist.size(), 3u) << hist.dump(2);
  const json& people = hist[0];
  EXPECT_EQ(people["version"], "1");
  EXPECT_EQ(people["kind"], "versioned");
  EXPECT_EQ(people["status"], "success");
  EXPECT_EQ(people["script"], "1_people.sql");
  EXPECT_EQ(people["description"], "people");
  EXPECT_THAT(people["checksum"].get<std::string>(), MatchesRegex("sha256v1:[0-9a-f]{64}"));
  EXPECT_THAT(people["applied_by"].get<std::string>(), HasSubstr(" pid "));
  EXPECT_TRUE(people["duration_ms"].is_number_integer());
  EXPECT_GE(people["duration_ms"].get<int64_t>(), 0);
  EXPECT_EQ(people["rows_affected"], 3);
  EXPECT_EQ(people["execution"], "transaction");
  EXPECT_EQ(people["statements_done"], 2);
  EXPECT_EQ(people["attempts"], 1);
  EXPECT_EQ(people["error_message"], "");
  EXPECT_FALSE(people["started_at"].get<std::string>().empty());
  EXPECT_FALSE(people["completed_at"].get<std::string>().empty());

  EXPECT_EQ(hist[1]["version"], "2");
  EXPECT_EQ(hist[1]["status"], "rolled_back");
  EXPECT_EQ(hist[2]["version"], "2");
  EXPECT_EQ(hist[2]["kind"], "undo");
  EXPECT_EQ(hist[2]["status"], "success");
  EXPECT_EQ(hist[2]["checksum"], hist[1]["checksum"]);
  EXPECT_THAT(hist[2]["applied_by"].get<std::string>(), HasSubstr(" pid "));

  json limited = FerryJson({"history", "--limit", "1"})["history"];
  ASSERT_EQ(limited.size(), 1u);
  EXPECT_EQ(limited[0]["kind"], "undo");
  RunResult text = Ferry({"history"});
  ASSERT_EQ(text.exit_code, 0) << Describe(text);
  EXPECT_THAT(text.out, HasSubstr("rolled_back"));
  EXPECT_THAT(text.out, HasSubstr("undo"));

  // The rolled back version is pending again and applies again.
  EXPECT_EQ(Entry(StatusJson(), "2")["state"], "pending");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  hist = HistoryJson();
  EXPECT_EQ(hist[1]["status"], "success");
  EXPECT_EQ(hist[1]["attempts"], 2);
}

// ---- drift ---------------------------------------------------------------------------------

TEST_P(MigrateCliTest, ChangedFileIsDriftUntilRepairedAndDeletedFileIsMissing) {
  WriteCreate("1_a.sql", "dr1");
  WriteCreate("2_b.sql", "dr2");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  Write("1_a.sql", "-- ferry:up\nCREATE TABLE dr1 (id int, extra int);\n-- ferry:down\nDROP TABLE dr1;\n");
  WriteCreate("3_c.sql", "dr3");

  json st = StatusJson();
  EXPECT_EQ(st["changed"], 1);
  json e = Entry(st, "1");
  EXPECT_EQ(e["state"], "changed");
  EXPECT_NE(e["checksum"], e["applied_checksum"]);
  RunResult text = Ferry({"status", "--exit-code"});
  EXPECT_EQ(text.exit_code, 3);
  EXPECT_THAT(text.out, HasSubstr("changed"));
  EXPECT_THAT(text.out, HasSubstr("ferry repair"));

  RunResult validate = Ferry({"validate"});
  EXPECT_EQ(validate.exit_code, 3) << Describe(validate);
  EXPECT_THAT(validate.out, HasSubstr("1_a.sql: checksum:"));
  json vj = FerryJson({"validate"}, 3);
  EXPECT_EQ(vj["ok"], false);
  ASSERT_EQ(vj["problems"].size(), 1u);
  EXPECT_EQ(vj["problems"][0]["kind"], "checksum");
  EXPECT_EQ(vj["problems"][0]["script"], "1_a.sql");

  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 9) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("1_a.sql"));
  EXPECT_THAT(up.err, HasSubstr("ferry repair"));
  EXPECT_FALSE(TableExists("dr3"));

  RunResult repair = Ferry({"repair", "--reason", "column added before release"});
  ASSERT_EQ(repair.exit_code, 0) << Describe(repair);
  EXPECT_THAT(repair.out, HasSubstr("accepted new checksum of 1_a.sql"));
  json hist = HistoryJson();
  EXPECT_THAT(hist[0]["note"].get<std::string>(), HasSubstr("column added before release"));
  EXPECT_EQ(hist[0]["checksum"], Entry(StatusJson(), "1")["checksum"]);
  EXPECT_EQ(StatusJson()["changed"], 0);
  EXPECT_EQ(Ferry({"validate"}).exit_code, 0);
  EXPECT_EQ(Ferry({"repair", "--reason", "again"}).out, "nothing to repair\n");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  EXPECT_TRUE(TableExists("dr3"));

  // A deleted applied file is missing.
  Remove("2_b.sql");
  json gone = StatusJson();
  EXPECT_EQ(gone["missing"], 1);
  EXPECT_EQ(Entry(gone, "2")["state"], "missing");
  EXPECT_EQ(gone["future_database"], false);
  json vm = FerryJson({"validate"}, 3);
  ASSERT_EQ(vm["problems"].size(), 1u);
  EXPECT_EQ(vm["problems"][0]["kind"], "missing");
  EXPECT_EQ(vm["problems"][0]["script"], "2_b.sql");
  EXPECT_EQ(Ferry({"status", "--exit-code"}).exit_code, 3);
}

// ---- baseline, future, order -----------------------------------------------------------------

TEST_P(MigrateCliTest, BaselineSkipsOlderFilesAndIsRefusedOnceApplied) {
  Exec("CREATE TABLE legacy_a (id int)");
  Exec("CREATE TABLE legacy_b (id int)");
  Write("1_legacy_a.sql", "CREATE TABLE legacy_a (id int);\n");
  Write("2_legacy_b.sql", "CREATE TABLE legacy_b (id int);\n");
  Write("3_new_c.sql", "CREATE TABLE new_c (id int);\n");

  RunResult base = Ferry({"baseline", "2", "--description", "schema before ferry"});
  ASSERT_EQ(base.exit_code, 0) << Describe(base);
  EXPECT_THAT(base.out, HasSubstr("baseline 2 recorded"));
  json st = StatusJson();
  EXPECT_EQ(st["current_version"], "2");
  EXPECT_EQ(st["pending"], 1);
  EXPECT_EQ(Entry(st, "1")["state"], "below_baseline");
  EXPECT_EQ(Entry(st, "2_legacy_b.sql")["state"], "below_baseline");
  EXPECT_EQ(Entry(st, "3")["state"], "pending");
  EXPECT_EQ(Entry(st, "<baseline>")["state"], "baseline");

  json up = FerryJson({"up"});
  EXPECT_EQ(up["applied"], json({"3"}));
  EXPECT_TRUE(TableExists("new_c"));
  json hist = HistoryJson();
  ASSERT_EQ(hist.size(), 2u);
  EXPECT_EQ(hist[0]["kind"], "baseline");
  EXPECT_EQ(hist[0]["version"], "2");
  EXPECT_EQ(hist[0]["description"], "schema before ferry");
  EXPECT_EQ(hist[1]["version"], "3");

  RunResult again = Ferry({"baseline", "3"});
  EXPECT_EQ(again.exit_code, 9) << Describe(again);
  EXPECT_THAT(again.err, HasSubstr("already has applied migrations"));
  EXPECT_EQ(HistoryJson().size(), 2u);
}

TEST_P(MigrateCliTest, BaselineRefusedWhenMigrationsAreApplied) {
  WriteCreate("1_a.sql", "ba1");
  WriteCreate("2_b.sql", "ba2");
  ASSERT_EQ(Ferry({"up", "--to", "1"}).exit_code, 0);
  RunResult base = Ferry({"baseline", "2"});
  EXPECT_EQ(base.exit_code, 9) << Describe(base);
  EXPECT_THAT(base.err, HasSubstr("already has applied migrations"));
  json st = StatusJson();
  EXPECT_EQ(st["current_version"], "1");
  EXPECT_EQ(Entry(st, "2")["state"], "pending");
}

TEST_P(MigrateCliTest, FutureDatabaseRefusedUnlessAllowed) {
  WriteCreate("1_a.sql", "fu1");
  WriteCreate("2_b.sql", "fu2");
  WriteCreate("3_c.sql", "fu3");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  Remove("3_c.sql");

  json st = StatusJson();
  EXPECT_EQ(st["future_database"], true);
  EXPECT_EQ(st["missing"], 1);
  EXPECT_EQ(Entry(st, "3")["state"], "missing");
  RunResult text = Ferry({"status"});
  EXPECT_THAT(text.out, HasSubstr("newer than the newest migration file 2"));

  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 9) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("newer than this project's newest migration"));
  EXPECT_THAT(up.err, HasSubstr("--allow-future"));
  RunResult allowed = Ferry({"up", "--allow-future"});
  EXPECT_EQ(allowed.exit_code, 0) << Describe(allowed);
  EXPECT_THAT(allowed.out, HasSubstr("database is at 3"));
  EXPECT_TRUE(TableExists("fu3"));
}

TEST_P(MigrateCliTest, OutOfOrderRefusedUnlessAllowed) {
  WriteCreate("1_a.sql", "oo1");
  WriteCreate("3_c.sql", "oo3");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  WriteCreate("2_b.sql", "oo2");

  json st = StatusJson();
  EXPECT_EQ(st["out_of_order"], 1);
  EXPECT_EQ(Entry(st, "2")["state"], "out_of_order");
  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 9) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("pending migration 2 (2_b.sql)"));
  EXPECT_THAT(up.err, HasSubstr("newest applied version 3"));
  EXPECT_THAT(up.err, HasSubstr("--out-of-order"));
  EXPECT_FALSE(TableExists("oo2"));

  json ok = FerryJson({"up", "--out-of-order"});
  EXPECT_EQ(ok["applied"], json({"2"}));
  EXPECT_EQ(ok["current_version"], "3");
  EXPECT_TRUE(TableExists("oo2"));
  EXPECT_EQ(StatusJson()["out_of_order"], 0);
}

// ---- failures --------------------------------------------------------------------------------

TEST_P(MigrateCliTest, FailedStatementRollsBackTheWholeFileAndIsRetriedAfterFix) {
  WriteCreate("1_ok.sql", "before_fail");
  Write("2_fail.sql",
        "-- ferry:up\n"
        "CREATE TABLE fail_a (id int);\n"
        "INSERT INTO fail_a (id) VALUES (1), (2, 3);\n"
        "CREATE TABLE fail_c (id int);\n"
        "-- ferry:down\n"
        "DROP TABLE fail_c;\n"
        "DROP TABLE fail_a;\n");
  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 8) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("migrations/2_fail.sql:3: statement 2 of 3 failed"));
  EXPECT_THAT(up.err, HasSubstr("  file: migrations/2_fail.sql\n"));
  EXPECT_THAT(up.err, HasSubstr("  statement: INSERT INTO fail_a (id) VALUES (1), (2, 3)"));
  if (pg()) {
    EXPECT_THAT(up.err, HasSubstr("  sqlstate: 42601"));
  }
  EXPECT_TRUE(TableExists("before_fail"));  // the earlier file stays applied
  EXPECT_FALSE(TableExists("fail_a"));      // nothing of the failing file
  EXPECT_FALSE(TableExists("fail_c"));

  json hist = HistoryJson();
  ASSERT_EQ(hist.size(), 2u);
  EXPECT_EQ(hist[1]["status"], "failed");
  EXPECT_EQ(hist[1]["statements_done"], 0);
  EXPECT_THAT(hist[1]["error_message"].get<std::string>(), HasSubstr("2_fail.sql:3"));
  json st = StatusJson();
  EXPECT_EQ(st["failed"], 1);
  EXPECT_EQ(Entry(st, "2")["state"], "failed");
  EXPECT_THAT(Entry(st, "2")["error"].get<std::string>(), HasSubstr("statement 2 of 3"));
  EXPECT_EQ(st["current_version"], "1");
  EXPECT_EQ(Ferry({"health"}).exit_code, 9);
  EXPECT_EQ(Ferry({"validate"}).exit_code, 3);

  // Again, with the error as JSON.
  json err = FerryJson({"up"}, 8);
  EXPECT_EQ(err["ok"], false);
  EXPECT_EQ(err["exit_code"], 8);
  EXPECT_THAT(err["error"]["message"].get<std::string>(), StartsWith("migrations/2_fail.sql:3:"));
  EXPECT_EQ(err["error"]["context"]["file"], "migrations/2_fail.sql");
  if (pg()) {
    EXPECT_EQ(err["error"]["context"]["sqlstate"], "42601");
  }
  EXPECT_FALSE(TableExists("fail_a"));

  Write("2_fail.sql",
        "-- ferry:up\n"
        "CREATE TABLE fail_a (id int);\n"
        "INSERT INTO fail_a (id) VALUES (1), (2);\n"
        "CREATE TABLE fail_c (id int);\n"
        "-- ferry:down\n"
        "DROP TABLE fail_c;\n"
        "DROP TABLE fail_a;\n");
  json fixed = FerryJson({"up"});
  EXPECT_EQ(fixed["applied"], json({"2"}));
  EXPECT_EQ(Scalar("SELECT count(*) FROM fail_a"), "2");
  EXPECT_TRUE(TableExists("fail_c"));
  hist = HistoryJson();
  ASSERT_EQ(hist.size(), 2u);
  EXPECT_EQ(hist[1]["status"], "success");
  EXPECT_EQ(hist[1]["error_message"], "");
  EXPECT_EQ(hist[1]["attempts"], 3);
  EXPECT_EQ(Ferry({"health"}).exit_code, 0);
}

// The "line" of a failed statement's error (stderr, JSON context, history)
// is the line in the file, like the "file:line:" the message starts with.
TEST_P(MigrateCliTest, FailedStatementErrorContextLineIsTheFileLine) {
  Write("1_line.sql",
        "-- ferry:up\n"
        "CREATE TABLE line_a (id int);\n"
        "INSERT INTO line_a (id) VALUES (1), (2, 3);\n");
  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 8) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("migrations/1_line.sql:3: statement 2 of 2 failed"));
  EXPECT_THAT(up.err, HasSubstr("  line: 3\n"));
  json err = FerryJson({"up"}, 8);
  EXPECT_EQ(err["error"]["context"]["line"], "3");
  // The driver's position in ferry's own batch is not the user's business.
  EXPECT_THAT(up.err, Not(HasSubstr("batch_index")));
  EXPECT_FALSE(err["error"]["context"].contains("batch_index")) << err.dump();
  json hist = HistoryJson();
  ASSERT_EQ(hist.size(), 1u);
  EXPECT_THAT(hist[0]["error_message"].get<std::string>(), HasSubstr("line=3,"));
  EXPECT_THAT(hist[0]["error_message"].get<std::string>(), Not(HasSubstr("batch_index")));
}

// A statement that fails at run time because a table is missing is a bad
// migration like any other SQL error (exit 8), not "database, file or
// directory does not exist" (exit 7).
TEST_P(MigrateCliTest, FailedStatementOnMissingTableIsInvalidInput) {
  Write("1_missing.sql",
        "CREATE TABLE mt_a (id int);\n"
        "INSERT INTO mt_no_such_table (id) VALUES (1);\n");
  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 8) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("migrations/1_missing.sql:2: statement 2 of 2 failed"));
  EXPECT_FALSE(TableExists("mt_a"));
}

TEST_P(MigrateCliTest, SingleTransactionAppliesAllOrNothing) {
  WriteCreate("1_a.sql", "st1");
  WriteCreate("2_b.sql", "st2");
  Write("3_c.sql", "CREATE TABLE st3 (id int);\nINSERT INTO st3 (id) VALUES (1), (2, 3);\n");
  RunResult up = Ferry({"up", "--single-transaction"});
  EXPECT_EQ(up.exit_code, 8) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("nothing was applied (single transaction rolled back)"));
  EXPECT_THAT(up.err, HasSubstr("3_c.sql:2"));
  EXPECT_FALSE(TableExists("st1"));
  EXPECT_FALSE(TableExists("st2"));
  EXPECT_FALSE(TableExists("st3"));
  json st = StatusJson();
  EXPECT_EQ(st["applied"], 0);
  EXPECT_EQ(st["current_version"], "");
  EXPECT_EQ(Entry(st, "1")["state"], "pending");
  EXPECT_EQ(Entry(st, "2")["state"], "pending");
  EXPECT_EQ(Entry(st, "3")["state"], "failed");

  Write("3_c.sql", "CREATE TABLE st3 (id int);\nINSERT INTO st3 (id) VALUES (1), (2);\n");
  json ok = FerryJson({"up", "--single-transaction"});
  EXPECT_EQ(ok["applied"], json({"1", "2", "3"}));
  for (const auto& h : HistoryJson()) {
    EXPECT_EQ(h["status"], "success") << h.dump();
    EXPECT_EQ(h["execution"], "single-transaction") << h.dump();
  }
  EXPECT_EQ(Scalar("SELECT count(*) FROM st3"), "2");
}

// ---- bad input --------------------------------------------------------------------------------

TEST_P(MigrateCliTest, BadInputIsRefusedAndNothingIsApplied) {
  struct Case {
    std::string name;
    std::string file;
    std::string content;
    std::vector<std::string> expect;  // substrings of stderr
  };
  // Each bad file sorts before the good one, so nothing may run at all.
  std::vector<Case> cases = {
      {"meta-command", "1_meta.sql", "CREATE TABLE bad_t (id int);\n\\i other.sql\n",
       {"1_meta.sql:2: psql meta-command \\i"}},
      {"copy from stdin", "1_copy.sql",
       "CREATE TABLE bad_t (id int);\nCOPY bad_t FROM stdin;\n1\n\\.\n",
       {"1_copy.sql:2: COPY ... FROM STDIN"}},
      {"empty", "1_empty.sql", "", {"1_empty.sql: is empty"}},
      {"comments only", "1_comments.sql", "-- nothing here\n", {"1_comments.sql"}},
      {"not UTF-8", "1_latin1.sql", "CREATE TABLE bad_t (id int); -- caf\xe9\n",
       {"1_latin1.sql: is not valid UTF-8"}},
      {"no layout", "notes.sql", "CREATE TABLE bad_t (id int);\n",
       {"notes.sql: fits no migration layout"}},
      {"duplicate version", "005_dup.sql", "CREATE TABLE bad_t (id int);\n",
       {"duplicate version", "005_dup.sql", "5_good.sql"}},
      {"transaction control", "1_tx.sql", "BEGIN;\nCREATE TABLE bad_t (id int);\nCOMMIT;\n",
       {"1_tx.sql:1:", "remove BEGIN/COMMIT", "-- ferry:no-transaction"}},
  };
  WriteCreate("5_good.sql", "good_t");
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Write(c.file, c.content);
    RunResult up = Ferry({"up"});
    EXPECT_EQ(up.exit_code, 8) << Describe(up);
    for (const auto& s : c.expect) EXPECT_THAT(up.err, HasSubstr(s));
    EXPECT_FALSE(TableExists("bad_t"));
    EXPECT_FALSE(TableExists("good_t"));
    Remove(c.file);
  }
  // With the bad files gone, the good one applies.
  json up = FerryJson({"up"});
  EXPECT_EQ(up["applied"], json({"5"}));
  EXPECT_TRUE(TableExists("good_t"));
  EXPECT_FALSE(TableExists("bad_t"));
}

// `up` checks every pending file before applying any, as `down` does for
// down scripts and `plan` does: a bad file 2 must not leave file 1 applied.
TEST_P(MigrateCliTest, UpChecksEveryPendingFileBeforeApplyingAny) {
  WriteCreate("1_good.sql", "chk_good");
  Write("2_tx.sql", "BEGIN;\nCREATE TABLE chk_bad (id int);\nCOMMIT;\n");
  RunResult plan = Ferry({"plan"});
  EXPECT_EQ(plan.exit_code, 8) << Describe(plan);
  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 8) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("2_tx.sql:1:"));
  EXPECT_FALSE(TableExists("chk_good"));
  EXPECT_EQ(StatusJson()["applied"], 0);
}

TEST_P(MigrateCliTest, MissingMigrationsDirectorySaysRunInit) {
  for (const char* cmd : {"up", "status", "plan"}) {
    RunResult r = Ferry({cmd});
    EXPECT_EQ(r.exit_code, 7) << cmd << "\n" << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("'migrations' does not exist")) << cmd;
    EXPECT_THAT(r.err, HasSubstr("ferry init")) << cmd;
  }
  json j = FerryJson({"up"}, 7);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["exit_code"], 7);
  EXPECT_EQ(j["error"]["code"], "NOT_FOUND");
}

// ---- health, report ------------------------------------------------------------------------------

TEST_P(MigrateCliTest, HealthChecksAndCompatRange) {
  WriteCreate("1_a.sql", "h1");
  WriteCreate("2_b.sql", "h2");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  RunResult text = Ferry({"health"});
  EXPECT_EQ(text.exit_code, 0) << Describe(text);
  EXPECT_THAT(text.out, HasSubstr("healthy\n"));
  json h = FerryJson({"health"});
  EXPECT_EQ(h["healthy"], true);
  std::vector<std::string> names;
  for (const auto& c : h["checks"]) {
    names.push_back(c["name"]);
    EXPECT_EQ(c["ok"], true) << c.dump();
  }
  EXPECT_THAT(names, ElementsAre("connect", "history", "lock", "failed", "running",
                                 "compatibility", "pending", "schema"));
  EXPECT_THAT(h["checks"][0]["detail"].get<std::string>(),
              StartsWith(pg() ? "PostgreSQL " : "SQLite "));

  dir_.Write("ferry.toml", "[compat]\nmin_version = \"5\"\n");
  RunResult old = Ferry({"health"});
  EXPECT_EQ(old.exit_code, 9) << Describe(old);
  EXPECT_THAT(old.out, HasSubstr("unhealthy"));
  json hj = FerryJson({"health"}, 9);
  EXPECT_EQ(hj["healthy"], false);
  for (const auto& c : hj["checks"]) {
    if (c["name"] == "compatibility") {
      EXPECT_EQ(c["ok"], false);
      EXPECT_THAT(c["detail"].get<std::string>(), HasSubstr("older than the minimum 5"));
    } else {
      EXPECT_EQ(c["ok"], true) << c.dump();
    }
  }
  dir_.Write("ferry.toml", "[compat]\nmin_version = \"2\"\ncurrent_version = \"3\"\n");
  EXPECT_EQ(Ferry({"health"}).exit_code, 0);
}

TEST_P(MigrateCliTest, ReportJsonAndSummary) {
  WriteCreate("1_a.sql", "r1");
  WriteCreate("2_b.sql", "r2");
  ASSERT_EQ(Ferry({"up", "--to", "1"}).exit_code, 0);
  RunResult rj = Ferry({"report", "--format", "json"});
  ASSERT_EQ(rj.exit_code, 0) << Describe(rj);
  json j = LastJson(rj.out);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["ferry_version"], FERRY_VERSION);
  EXPECT_FALSE(j["generated_at"].get<std::string>().empty());
  EXPECT_EQ(j["status"]["applied"], 1);
  EXPECT_EQ(j["status"]["pending"], 1);
  EXPECT_EQ(j["status"]["current_version"], "1");
  ASSERT_EQ(j["history"].size(), 1u);
  EXPECT_EQ(j["history"][0]["script"], "1_a.sql");
  EXPECT_EQ(j["health"]["healthy"], true);
  EXPECT_FALSE(j["health"]["checks"].empty());

  RunResult summary = Ferry({"report", "--format", "summary"});
  ASSERT_EQ(summary.exit_code, 0) << Describe(summary);
  EXPECT_THAT(summary.out, StartsWith("ferry migration report\n"));
  EXPECT_THAT(summary.out, HasSubstr("version   1 (1 applied, 1 pending)"));
  EXPECT_THAT(summary.out, HasSubstr("history: 1 rows"));
  EXPECT_THAT(summary.out, HasSubstr("health: healthy"));
  RunResult bad = Ferry({"report", "--format", "xml"});
  EXPECT_EQ(bad.exit_code, 8) << Describe(bad);
}

// ---- PostgreSQL only ------------------------------------------------------------------------------

TEST_P(MigrateCliPgTest, ConcurrentIndexRunsOutsideATransaction) {
  WriteCreate("1_items.sql", "items");
  Write("2_index.sql", "CREATE INDEX CONCURRENTLY items_id_idx ON items (id);\n");
  RunResult plan = Ferry({"plan"});
  ASSERT_EQ(plan.exit_code, 0) << Describe(plan);
  EXPECT_THAT(plan.out, HasSubstr("-- up 2 (2_index.sql, no-transaction)\n-- line 1\n"
                                  "CREATE INDEX CONCURRENTLY items_id_idx ON items (id);\n"
                                  "-- + history row in the history table\n\n"));
  json pj = FerryJson({"plan"});
  EXPECT_EQ(pj["steps"][1]["execution"], "no-transaction");

  RunResult single = Ferry({"up", "--single-transaction"});
  EXPECT_EQ(single.exit_code, 8) << Describe(single);
  EXPECT_THAT(single.err, HasSubstr("cannot run in a transaction"));
  EXPECT_FALSE(TableExists("items"));

  RunResult up = Ferry({"up"});
  ASSERT_EQ(up.exit_code, 0) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("CREATE INDEX CONCURRENTLY cannot run inside a transaction"));
  EXPECT_EQ(Scalar("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                   "WHERE c.relname = 'items_id_idx' AND i.indisvalid"),
            "1");
  json hist = HistoryJson();
  ASSERT_EQ(hist.size(), 2u);
  EXPECT_EQ(hist[0]["execution"], "transaction");
  EXPECT_EQ(hist[1]["execution"], "no-transaction");
  EXPECT_EQ(hist[1]["status"], "success");
}

TEST_P(MigrateCliPgTest, NoTransactionFileResumesAtTheFailedStatement) {
  WriteCreate("1_items.sql", "items");
  Write("2_nt.sql",
        "-- ferry:no-transaction\n"
        "INSERT INTO items (id) VALUES (1);\n"
        "CREATE TABLE resumed (id int, id int);\n"
        "INSERT INTO resumed (id) VALUES (7);\n");
  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 8) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("migrations/2_nt.sql:3: statement 2 of 3 failed"));
  EXPECT_THAT(up.err, HasSubstr("  sqlstate: 42701"));
  EXPECT_EQ(Scalar("SELECT count(*) FROM items"), "1");  // statement 1 committed
  json e = Entry(StatusJson(), "2");
  EXPECT_EQ(e["state"], "failed");
  EXPECT_EQ(e["statements_done"], 1);

  Write("2_nt.sql",
        "-- ferry:no-transaction\n"
        "INSERT INTO items (id) VALUES (1);\n"
        "CREATE TABLE resumed (id int);\n"
        "INSERT INTO resumed (id) VALUES (7);\n");
  RunResult plan = Ferry({"plan"});
  ASSERT_EQ(plan.exit_code, 0) << Describe(plan);
  EXPECT_THAT(plan.out, HasSubstr("-- up 2 (2_nt.sql, no-transaction)\n-- line 3\n"
                                  "CREATE TABLE resumed (id int);\n"));
  EXPECT_THAT(plan.out, Not(HasSubstr("INSERT INTO items")));

  RunResult again = Ferry({"up"});
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_THAT(again.err, HasSubstr("resuming at statement 2 (line 3)"));
  EXPECT_EQ(Scalar("SELECT count(*) FROM items"), "1");  // statement 1 did not run again
  EXPECT_EQ(Scalar("SELECT count(*) FROM resumed"), "1");
  json hist = HistoryJson();
  ASSERT_EQ(hist.size(), 2u);
  EXPECT_EQ(hist[1]["status"], "success");
  EXPECT_EQ(hist[1]["execution"], "no-transaction");
  EXPECT_EQ(hist[1]["statements_done"], 3);
  EXPECT_EQ(hist[1]["attempts"], 2);
  EXPECT_EQ(hist[1]["rows_affected"], 2);  // one INSERT in each run
}

// The failing statement's line in the file must survive the server's own
// position-based line (which counts from the start of the statement).
TEST_P(MigrateCliPgTest, ServerErrorPositionKeepsTheFileLine) {
  Write("1_pos.sql",
        "CREATE TABLE pos_a (id int);\n"
        "\n"
        "SELECT id,\n"
        "       no_such_column\n"
        "  FROM pos_a;\n");
  json err = FerryJson({"up"}, 8);
  EXPECT_THAT(err["error"]["message"].get<std::string>(), StartsWith("migrations/1_pos.sql:4:"));
  EXPECT_EQ(err["error"]["context"]["line"], "4");
  EXPECT_EQ(err["error"]["context"]["sqlstate"], "42703");
  EXPECT_FALSE(TableExists("pos_a"));
}

std::string PasswordOf(const std::string& url) {
  size_t at = url.find('@');
  size_t colon = url.rfind(':', at);
  return url.substr(colon + 1, at - colon - 1);
}

TEST_P(MigrateCliPgTest, PasswordNeverAppearsInOutput) {
  const char* pw_env = std::getenv("FERRY_TEST_PG_PW_URL");
  ASSERT_NE(pw_env, nullptr) << "scripts/test-servers.sh sets FERRY_TEST_PG_PW_URL";
  std::string secret = PasswordOf(pw_env);
  ASSERT_FALSE(secret.empty());
  Exec("GRANT CREATE ON SCHEMA public TO ferry_pw");
  std::string pw_url = WithDatabase(pw_env, pg_db_->name());
  WriteCreate("1_a.sql", "pw1");
  Write("2_bad.sql", "CREATE TABLE pw2 (id int);\nINSERT INTO pw2 (id) VALUES (1), (2, 3);\n");

  std::string all;
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> full = {"--database", pw_url, "--dir", "migrations"};
    full.insert(full.end(), args.begin(), args.end());
    RunResult r = RunFerry(full, {}, dir_.path());
    all += r.out + r.err;
    return r;
  };
  RunResult status = run({"status"});
  EXPECT_EQ(status.exit_code, 0) << Describe(status);
  EXPECT_THAT(status.out, HasSubstr("database  postgres://ferry_pw:***@"));
  RunResult sj = run({"status", "--json"});
  EXPECT_EQ(sj.exit_code, 0) << Describe(sj);
  EXPECT_THAT(LastJson(sj.out)["database"].get<std::string>(), HasSubstr("ferry_pw:***@"));
  RunResult up = run({"up"});
  EXPECT_EQ(up.exit_code, 8) << Describe(up);
  run({"up", "--json"});
  run({"history", "--json"});
  run({"health", "--json"});
  run({"report", "--format", "summary"});
  run({"report", "--format", "json"});
  run({"validate"});
  EXPECT_TRUE(TableExists("pw1"));  // it really worked as that role
  EXPECT_THAT(all, Not(HasSubstr(secret)));
}

// `init` with a password in --database must not copy it into ferry.toml (the
// file itself says "Keep passwords out of this file").
TEST_P(MigrateCliPgTest, InitDoesNotWriteThePasswordIntoFerryToml) {
  const char* pw_env = std::getenv("FERRY_TEST_PG_PW_URL");
  ASSERT_NE(pw_env, nullptr) << "scripts/test-servers.sh sets FERRY_TEST_PG_PW_URL";
  std::string secret = PasswordOf(pw_env);
  Exec("GRANT CREATE ON SCHEMA public TO ferry_pw");
  std::string pw_url = WithDatabase(pw_env, pg_db_->name());
  RunResult init = RunFerry({"--database", pw_url, "init"}, {}, dir_.path());
  ASSERT_EQ(init.exit_code, 0) << Describe(init);
  EXPECT_THAT(init.out + init.err, Not(HasSubstr(secret)));
  EXPECT_THAT(ReadFile(dir_.File("ferry.toml")), Not(HasSubstr(secret)));
}

// ---- status memo (migrate/status_memo.h) ---------------------------------------------

// The memo file of this test's cache directory (there is one per directory,
// database, table and mode).
std::string OnlyMemo(const std::string& cache) {
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::directory_iterator(cache)) {
    if (e.path().filename().string().rfind("status-", 0) == 0) found.push_back(e.path().string());
  }
  EXPECT_EQ(found.size(), 1u);
  return found.empty() ? "" : found[0];
}

// Marks the memo's body so that output coming from it can be told apart.
void TamperMemo(const std::string& path) {
  std::string text = ReadFile(path);
  size_t at = text.find("2_b.sql");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 7, "2_b.sql (from the memo)");
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

TEST_P(MigrateCliPgTest, StatusMemoServedOnlyWhileFilesAndHistoryAreUnchanged) {
  TempDir cache;
  const std::vector<std::string> env = {"FERRY_CACHE_DIR=" + cache.path()};
  auto status = [&](std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"status"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Ferry(args, env);
  };
  WriteCreate("1_a.sql", "m1");
  WriteCreate("2_b.sql", "m2");
  ASSERT_EQ(Ferry({"up"}, env).exit_code, 0);

  RunResult first = status();
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  EXPECT_THAT(first.out, HasSubstr("version   2 (2 applied, 0 pending)"));
  std::string memo = OnlyMemo(cache.path());
  ASSERT_FALSE(memo.empty());
  EXPECT_EQ(status().out, first.out);

  // Nothing changed: the body comes from the memo; the lock line is live.
  TamperMemo(memo);
  EXPECT_THAT(status().out, HasSubstr("2_b.sql (from the memo)"));
  {
    auto holder = OpenConnection(url_);
    ASSERT_TRUE(holder.ok());
    const std::string key = std::to_string(MigrationLock::KeyFor("ferry_schema_history"));
    ASSERT_TRUE((*holder)->Query("SELECT pg_advisory_lock($1::bigint)", {key}).ok());
    RunResult locked = status();
    EXPECT_THAT(locked.out, HasSubstr("2_b.sql (from the memo)"));
    EXPECT_THAT(locked.out, HasSubstr("lock      held by"));
  }
  RunResult unlocked = status();
  EXPECT_THAT(unlocked.out, HasSubstr("lock      free"));
  // Other transactions on the server (each takes a transaction id) leave the
  // history, and so the memo, as they were.
  Exec("CREATE TABLE unrelated (id int)");
  for (int i = 0; i < 3; ++i) Exec("INSERT INTO unrelated VALUES (1)");
  EXPECT_THAT(status().out, HasSubstr("2_b.sql (from the memo)"));

  // The history edited by hand: computed again.
  Exec("UPDATE ferry_schema_history SET checksum = 'sha256v1:00' WHERE version = '1'");
  RunResult changed = status();
  EXPECT_THAT(changed.out, HasSubstr("1 changed"));
  EXPECT_THAT(changed.out, Not(HasSubstr("(from the memo)")));
  ASSERT_EQ(Ferry({"repair", "--reason", "test"}, env).exit_code, 0);

  // A new file: computed again.
  EXPECT_THAT(status().out, Not(HasSubstr("changed")));
  TamperMemo(OnlyMemo(cache.path()));
  WriteCreate("3_c.sql", "m3");
  RunResult pending = status();
  EXPECT_THAT(pending.out, HasSubstr("version   2 (2 applied, 1 pending)"));
  EXPECT_THAT(pending.out, Not(HasSubstr("(from the memo)")));
  // ... and --exit-code answers from the memo as it would without it.
  RunResult pending_again = status({"--exit-code"});
  EXPECT_EQ(pending_again.exit_code, 3) << Describe(pending_again);
  EXPECT_EQ(pending_again.out, pending.out);

  // A history row deleted by hand: computed again.
  ASSERT_EQ(Ferry({"up"}, env).exit_code, 0);
  EXPECT_EQ(status({"--exit-code"}).exit_code, 0);
  TamperMemo(OnlyMemo(cache.path()));
  Exec("DELETE FROM ferry_schema_history WHERE version = '3'");
  RunResult deleted = status({"--exit-code"});
  EXPECT_EQ(deleted.exit_code, 3) << Describe(deleted);
  EXPECT_THAT(deleted.out, HasSubstr("version   2 (2 applied, 1 pending)"));
  EXPECT_THAT(deleted.out, Not(HasSubstr("(from the memo)")));

  // An edited file (new size and mtime): computed again.
  TamperMemo(OnlyMemo(cache.path()));
  Write("1_a.sql", "-- ferry:up\nCREATE TABLE m1 (id bigint);\n-- ferry:down\nDROP TABLE m1;\n");
  RunResult edited = status();
  EXPECT_THAT(edited.out, HasSubstr("1 changed"));
  EXPECT_THAT(edited.out, Not(HasSubstr("(from the memo)")));

  // --all is another mode with a memo of its own.
  EXPECT_THAT(status({"--all"}).out, HasSubstr("1_a.sql"));

  // Without a cache directory nothing is written and status still answers.
  RunResult off = Ferry({"status"}, {"FERRY_CACHE_DIR=off"});
  EXPECT_EQ(off.exit_code, 0) << Describe(off);
  EXPECT_EQ(off.out, edited.out);
}

// ferry keeps its own per-migration statements prepared on the session; a
// migration that deallocates every prepared statement must not break the
// ones after it.
TEST_P(MigrateCliPgTest, MigrationThatDeallocatesPreparedStatementsDoesNotBreakTheNext) {
  WriteCreate("1_a.sql", "m1");
  Write("2_dealloc.sql", "DEALLOCATE ALL;\nCREATE TABLE m2 (id int);\n");
  Write("3_dealloc_in_do.sql",
        "DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; END $$;\nCREATE TABLE m3 (id int);\n");
  WriteCreate("4_d.sql", "m4");
  RunResult up = Ferry({"up"});
  ASSERT_EQ(up.exit_code, 0) << Describe(up);
  RunResult status = Ferry({"status", "--exit-code"});
  EXPECT_EQ(status.exit_code, 0) << Describe(status);
  EXPECT_THAT(status.out, HasSubstr("4 applied, 0 pending"));
}

// ferry's closing UPDATE and COMMIT run as prepared statements unless the
// migration's text mentions DEALLOCATE or DISCARD. A function that hides the
// word still drops them: the transaction is aborted at the closing UPDATE,
// rolled back and run again with plain statements, applied exactly once.
TEST_P(MigrateCliPgTest, HiddenDeallocateIsRolledBackAndRunAgain) {
  Write("1_fn.sql",
        "CREATE FUNCTION forget_plans() RETURNS void LANGUAGE plpgsql AS $$\n"
        "BEGIN EXECUTE 'DEALL' || 'OCATE ALL'; END $$;\n"
        "CREATE TABLE hits (n int);\n");
  Write("2_calls.sql", "INSERT INTO hits VALUES (1);\nSELECT forget_plans();\n");
  WriteCreate("3_after.sql", "m3");
  RunResult up = Ferry({"up", "--json"});
  ASSERT_EQ(up.exit_code, 0) << Describe(up);
  EXPECT_THAT(up.out, HasSubstr("\"event\":\"migration_retried\""));
  EXPECT_EQ(Scalar("SELECT count(*) FROM hits"), "1");
  EXPECT_EQ(Scalar("SELECT string_agg(version || ':' || status, ',' ORDER BY version) "
                  "FROM ferry_schema_history"),
            "1:success,2:success,3:success");
  EXPECT_TRUE(TableExists("m3"));
}

std::string ParamName(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

#if FERRY_WITH_POSTGRES
INSTANTIATE_TEST_SUITE_P(Engines, MigrateCliTest, ::testing::Values("postgres", "sqlite"),
                         ParamName);
INSTANTIATE_TEST_SUITE_P(Engines, MigrateCliPgTest, ::testing::Values("postgres"), ParamName);
#else
INSTANTIATE_TEST_SUITE_P(Engines, MigrateCliTest, ::testing::Values("sqlite"), ParamName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(MigrateCliPgTest);
#endif

}  // namespace
}  // namespace ferry::testing

namespace ferry::testing {
namespace {

// A history table written by a newer ferry (format_version 99) is refused,
// with a clear message, and nothing is applied.
TEST_P(MigrateCliTest, HistoryFromAFutureFerryIsRefused) {
  WriteCreate("1_a.sql", "future_a");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  Exec("UPDATE ferry_schema_history_meta SET value = '99' WHERE key = 'format_version'");
  WriteCreate("2_b.sql", "future_b");
  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 9) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("format version 99, newer than this ferry understands"));
  EXPECT_THAT(up.err, HasSubstr("upgrade ferry"));
  EXPECT_FALSE(TableExists("future_b"));
  RunResult status = Ferry({"status"});
  EXPECT_EQ(status.exit_code, 9) << Describe(status);
}

}  // namespace
}  // namespace ferry::testing
