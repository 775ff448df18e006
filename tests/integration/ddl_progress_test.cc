// Progress of long statements end to end: the built `ferry up` applies a
// CREATE INDEX made slow on purpose (an expression index on an IMMUTABLE
// function that sleeps 1 ms per row: a few seconds on any machine) against
// real PostgreSQL, and its progress, read from pg_stat_progress_create_index
// by a second session, must show in --json lines, on stderr and in the
// --metrics-file; a quick migration must show none.
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "drivers/registry.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Describe(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout:\n" + r.out + "--- stderr:\n" +
         r.err;
}

std::vector<nlohmann::json> JsonLines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    lines.push_back(nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false));
  }
  return lines;
}

class DdlProgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(std::getenv("FERRY_TEST_PG_URL"), nullptr)
        << "set FERRY_TEST_PG_URL (source /tmp/srv/env or scripts/test-servers.sh)";
    db_ = std::make_unique<FreshPgDatabase>();
    ASSERT_TRUE(db_->ok());
    auto conn = OpenConnection(db_->url());
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    // 4,000 rows, and an IMMUTABLE function sleeping 1 ms a call: building
    // an index on slow_key(id) scans the table for 4 s or more.
    ASSERT_OK((*conn)->Exec(
        "CREATE TABLE big (id integer PRIMARY KEY, v text);"
        "INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 4000) g;"
        "CREATE FUNCTION slow_key(k integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS "
        "$$ BEGIN PERFORM pg_sleep(0.001); RETURN k; END $$;"
        "CREATE TABLE small (id integer PRIMARY KEY, v text)").status());
  }

  RunResult Ferry(std::vector<std::string> args) {
    std::vector<std::string> all = {"--database", db_->url(), "--dir", "migrations"};
    all.insert(all.end(), args.begin(), args.end());
    return RunFerry(all, {}, dir_.path());
  }

  TempDir dir_;
  std::unique_ptr<FreshPgDatabase> db_;
};

TEST_F(DdlProgressTest, ConcurrentIndexBuildReportsProgressInJsonAndMetrics) {
  dir_.Write("migrations/1_slow_index.sql",
             "-- ferry:up\nCREATE INDEX CONCURRENTLY big_slow ON big (slow_key(id));\n"
             "-- ferry:down\nDROP INDEX big_slow;\n");
  const std::string prom = dir_.File("ferry.prom");
  RunResult r = Ferry({"up", "--json", "--metrics-file", prom});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);

  int progress = 0;
  bool counted = false;
  for (const nlohmann::json& j : JsonLines(r.out)) {
    if (!j.is_object() || j.value("event", "") != "statement_progress") continue;
    ++progress;
    EXPECT_EQ(j.value("version", ""), "1");
    EXPECT_THAT(j.value("script", ""), HasSubstr("1_slow_index.sql"));
    EXPECT_EQ(j.value("statement", 0), 1);
    ASSERT_TRUE(j.contains("progress")) << j.dump();
    const nlohmann::json& p = j.at("progress");
    EXPECT_EQ(p.value("view", ""), "create_index");
    EXPECT_EQ(p.value("command", ""), "CREATE INDEX CONCURRENTLY");
    EXPECT_FALSE(p.value("phase", "").empty());
    if (p.value("phase", "") == "building index: scanning table" &&
        p.value("blocks_total", 0) > 0) {
      counted = true;
      EXPECT_LE(p.value("blocks_done", -1), p.value("blocks_total", 0));
      EXPECT_TRUE(p.at("ratio").is_number());
    }
  }
  EXPECT_GE(progress, 1) << Describe(r);
  EXPECT_TRUE(counted) << "no 'building index: scanning table' event with blocks\n"
                       << Describe(r);

  const std::string metrics = ReadFile(prom);
  EXPECT_THAT(metrics, HasSubstr("# TYPE ferry_ddl_progress_ratio gauge"));
  EXPECT_THAT(metrics, HasSubstr("ferry_ddl_progress_ratio{command=\"CREATE INDEX CONCURRENTLY\""))
      << metrics;
}

TEST_F(DdlProgressTest, TransactionalIndexBuildPrintsThrottledLinesOnStderr) {
  dir_.Write("migrations/1_slow_index.sql",
             "-- ferry:up\nCREATE INDEX big_slow ON big (slow_key(id));\n"
             "-- ferry:down\nDROP INDEX big_slow;\n");
  RunResult r = Ferry({"up"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("1_slow_index.sql: CREATE INDEX: building index: scanning table"))
      << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(" blocks)")) << Describe(r);
  EXPECT_THAT(r.out, Not(HasSubstr("CREATE INDEX:")));  // progress goes to stderr only
}

TEST_F(DdlProgressTest, QuickMigrationAndQuietRunShowNoProgress) {
  dir_.Write("migrations/1_quick.sql",
             "-- ferry:up\nCREATE INDEX CONCURRENTLY small_v ON small (v);\n"
             "-- ferry:down\nDROP INDEX small_v;\n");
  dir_.Write("migrations/2_slow_index.sql",
             "-- ferry:up\nCREATE INDEX big_slow ON big (slow_key(id));\n"
             "-- ferry:down\nDROP INDEX big_slow;\n");
  RunResult quick = Ferry({"up", "--json", "--to", "1"});
  ASSERT_EQ(quick.exit_code, 0) << Describe(quick);
  EXPECT_THAT(quick.out, Not(HasSubstr("statement_progress"))) << Describe(quick);
  EXPECT_THAT(quick.err, Not(HasSubstr("CREATE INDEX CONCURRENTLY:"))) << Describe(quick);

  RunResult quiet = Ferry({"-q", "up"});
  ASSERT_EQ(quiet.exit_code, 0) << Describe(quiet);
  EXPECT_THAT(quiet.err, Not(HasSubstr("CREATE INDEX:"))) << Describe(quiet);
}

}  // namespace
}  // namespace ferry::testing
