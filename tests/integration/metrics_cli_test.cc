// --metrics-file and --pushgateway end to end: the built `ferry` runs real
// migrations, copies and verifies against PostgreSQL and SQLite, and the
// Prometheus text it writes is read back series by series.
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/url.h"
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

// "name{labels} value" lines of a Prometheus text file, keyed by the part
// before the value (labels as prometheus-cpp writes them: sorted by name).
std::map<std::string, double> Series(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

// The label ferry gives a database: host:port/db, or the SQLite file name.
std::string Label(const std::string& url) {
  auto u = Url::Parse(url);
  if (!u.ok()) return "";
  if (u->scheme() == "sqlite") return std::filesystem::path(u->database()).filename().string();
  return u->host() + ":" + std::to_string(u->port()) + "/" + u->database();
}

class MetricsCliTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      pg_ = std::make_unique<FreshPgDatabase>();
      if (IsSkipped()) return;
      ASSERT_TRUE(pg_->ok());
      url_ = pg_->url();
    } else {
      url_ = "sqlite:" + dir_.File("app.db");
    }
    dir_.Write("migrations/1_create.sql",
               "-- ferry:up\nCREATE TABLE t (id integer PRIMARY KEY, v text);\n"
               "-- ferry:down\nDROP TABLE t;\n");
    dir_.Write("migrations/2_rows.sql",
               "-- ferry:up\nINSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');\n"
               "-- ferry:down\nDELETE FROM t;\n");
    std::filesystem::create_directories(dir_.File("textfile"));
  }

  RunResult Ferry(std::vector<std::string> args) {
    std::vector<std::string> all = {"--database", url_, "--dir", "migrations"};
    all.insert(all.end(), args.begin(), args.end());
    return RunFerry(all, {}, dir_.path());
  }

  std::string Sel(const std::string& labels) const { return "{" + labels + "}"; }

  TempDir dir_;
  std::unique_ptr<FreshPgDatabase> pg_;
  std::string url_;
};

TEST_P(MetricsCliTest, UpWritesTheSeedsSeriesWithTheirValues) {
  if (IsSkipped()) return;
  const std::string prom = dir_.File("textfile/ferry.prom");
  RunResult r = Ferry({"up", "--metrics-file", prom});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const std::string text = ReadFile(prom);
  auto s = Series(text);
  const std::string db = "database=\"" + Label(url_) + "\"";
  EXPECT_EQ(s["migration_success_total{" + db + ",direction=\"up\"}"], 2) << text;
  EXPECT_EQ(s["migration_failure_total{" + db + ",direction=\"up\"}"], 0) << text;
  EXPECT_EQ(s["migration_duration_seconds_count{" + db + ",direction=\"up\"}"], 2) << text;
  EXPECT_EQ(s["schema_version_info{" + db + ",version=\"2\"}"], 1) << text;
  EXPECT_EQ(s["migration_operations_total{" + db + ",operation=\"migration\",status=\"success\"}"],
            2)
      << text;
  EXPECT_EQ(s["migration_operation_duration_seconds_count{" + db + ",operation=\"migration\"}"], 2)
      << text;
  EXPECT_THAT(text, HasSubstr("# TYPE migration_duration_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("# TYPE migration_errors_total counter"));
  // Written by rename: no temporary file is left beside it.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.File("textfile"))) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);

  // Down then a failing migration: the version moves, failures are counted
  // with the error's type.
  r = Ferry({"down", "--metrics-file", prom});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  s = Series(ReadFile(prom));
  EXPECT_EQ(s["migration_success_total{" + db + ",direction=\"down\"}"], 1);
  EXPECT_EQ(s["schema_version_info{" + db + ",version=\"1\"}"], 1);
  EXPECT_EQ(s.count("schema_version_info{" + db + ",version=\"2\"}"), 0u);

  dir_.Write("migrations/3_bad.sql", "-- ferry:up\nINSERT INTO missing_table VALUES (1);\n");
  r = Ferry({"up", "--metrics-file", prom});
  ASSERT_NE(r.exit_code, 0) << Describe(r);
  const std::string after = ReadFile(prom);
  s = Series(after);
  EXPECT_EQ(s["migration_success_total{" + db + ",direction=\"up\"}"], 1) << after;
  EXPECT_EQ(s["migration_failure_total{" + db + ",direction=\"up\"}"], 1) << after;
  EXPECT_EQ(s["migration_operations_total{" + db + ",operation=\"migration\",status=\"failure\"}"],
            1)
      << after;
  const std::string error_type = GetParam() == "postgres" ? "42P01" : "INVALID_ARGUMENT";
  EXPECT_EQ(s["migration_errors_total{error_type=\"" + error_type + "\",operation=\"migration\"}"],
            1)
      << after;
}

TEST_P(MetricsCliTest, MissingFolderIsAnErrorBeforeAnyWork) {
  if (IsSkipped()) return;
  RunResult r = Ferry({"up", "--metrics-file", dir_.File("no/such/dir/ferry.prom")});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("does not exist")) << Describe(r);
  if (GetParam() == "sqlite") {
    // Nothing was opened: the database file was not even created.
    EXPECT_FALSE(std::filesystem::exists(dir_.File("app.db")));
    return;
  }
  RunResult status = Ferry({"status", "--json"});
  EXPECT_THAT(status.out, HasSubstr("\"pending\":2")) << Describe(status);
}

TEST_P(MetricsCliTest, PushgatewayDownWarnsAndTheCommandSucceeds) {
  if (IsSkipped()) return;
  // Port 1 on loopback: nothing listens there, the connection is refused.
  RunResult r = Ferry({"up", "--pushgateway", "http://127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("warning: metrics not pushed")) << Describe(r);
  RunResult status = Ferry({"status", "--json"});
  EXPECT_THAT(status.out, HasSubstr("\"pending\":0")) << Describe(status);
}

std::string EngineName(const ::testing::TestParamInfo<std::string>& param) { return param.param; }

#ifdef FERRY_WITH_POSTGRES
INSTANTIATE_TEST_SUITE_P(Engines, MetricsCliTest, ::testing::Values("postgres", "sqlite"),
                         EngineName);
#else
INSTANTIATE_TEST_SUITE_P(Engines, MetricsCliTest, ::testing::Values("sqlite"), EngineName);
#endif

// A real copy (PostgreSQL -> SQLite) and verify: rows, chunks and
// differences arrive in the file; no password is in any label.
TEST(MetricsCopyTest, CopyAndVerifySeriesCountRowsChunksAndDifferences) {
  FERRY_REQUIRE_PG(admin);
  FreshPgDatabase src;
  ASSERT_TRUE(src.ok());
  auto conn = OpenConnection(src.url());
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  ASSERT_TRUE((*conn)
                  ->Exec("CREATE TABLE items (id bigint PRIMARY KEY, name text);"
                         "INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 1000) g")
                  .ok());
  TempDir dir;
  const std::string lite = "sqlite:" + dir.File("copy.db");
  const std::string prom = dir.File("copy.prom");
  RunResult r =
      RunFerry({"copy", "--from", src.url(), "--to", lite, "--table", "items", "--create-tables",
                "--batch-rows", "100", "--job", "items-job", "--metrics-file", prom});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto s = Series(ReadFile(prom));
  const std::string labels = "{database=\"copy.db\",job=\"items-job\",table=\"items\"}";
  EXPECT_EQ(s["ferry_copy_rows_total" + labels], 1000) << ReadFile(prom);
  EXPECT_GT(s["ferry_copy_bytes_total" + labels], 0);
  EXPECT_EQ(s["ferry_copy_chunks{job=\"items-job\",state=\"done\"}"], 10) << ReadFile(prom);
  EXPECT_EQ(s["ferry_copy_chunks{job=\"items-job\",state=\"pending\"}"], 0);
  EXPECT_EQ(s["migration_operations_total{database=\"copy.db\",operation=\"copy_chunk\","
              "status=\"success\"}"],
            10);

  // Two rows changed on the target: verify reports them as "changed".
  auto lc = OpenConnection(lite);
  ASSERT_TRUE(lc.ok());
  ASSERT_TRUE((*lc)->Exec("UPDATE items SET name = 'x' WHERE id IN (5, 6)").ok());
  r = RunFerry(
      {"verify", "--from", src.url(), "--to", lite, "--table", "items", "--metrics-file", prom});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  s = Series(ReadFile(prom));
  EXPECT_EQ(s["ferry_verify_differences{database=\"copy.db\",kind=\"changed\",table=\"items\"}"], 2)
      << ReadFile(prom);
  EXPECT_EQ(s["ferry_verify_differences{database=\"copy.db\",kind=\"missing\",table=\"items\"}"],
            0);
}

}  // namespace
}  // namespace ferry::testing
