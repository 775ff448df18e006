// ferry backfill under faults and hostile input (issue 21 items 9 and 14):
// a server restart mid-run, a --check that would write, the first batch
// under --max-batch-ms. Real PostgreSQL, the built binary end to end.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "drivers/registry.h"
#include "move/backfill.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;

std::string Show(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout:\n" + r.out + "--- stderr:\n" + r.err;
}

std::unique_ptr<Connection> Connect(const std::string& url) {
  auto c = OpenConnection(url);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

std::string One(Connection& c, const std::string& sql) {
  auto r = c.Query(sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  if (!r.ok() || r->empty()) return "<none>";
  return r->IsNull(0, 0) ? "<null>" : r->Text(0, 0);
}

std::vector<nlohmann::json> JsonLines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) lines.push_back(std::move(j));
  }
  return lines;
}

// Item 14: the first batch is a small probe, whatever --batch-rows says;
// the size then grows from what the probe measured.
TEST(TrustBackfillTest, FirstBatchIsASmallProbe) {
  FreshPgDatabase db;
  if (IsSkipped()) return;
  ASSERT_TRUE(db.ok());
  auto c = Connect(db.url());
  ASSERT_OK(c->Exec("CREATE TABLE t (id int PRIMARY KEY, a int, b int); "
                    "INSERT INTO t SELECT g, g, NULL FROM generate_series(1, 30000) g; ANALYZE t")
                .status());
  RunResult r = RunFerry({"backfill", "--database", db.url(), "--table", "t", "--set", "b = a",
                          "--where", "b IS NULL", "--max-batch-ms", "100", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  std::vector<nlohmann::json> batches;
  for (auto& j : JsonLines(r.out)) {
    if (j.value("event", "") == "batch") batches.push_back(j);
  }
  ASSERT_GE(batches.size(), 2u) << r.out;
  EXPECT_EQ(batches[0]["batch_limit"], kProbeBatchRows) << batches[0].dump();
  EXPECT_LE(batches[0]["batch_rows"].get<int64_t>(), kProbeBatchRows);
  EXPECT_GT(batches[1]["batch_limit"].get<int64_t>(), kProbeBatchRows) << batches[1].dump();
  EXPECT_EQ(One(*c, "SELECT count(*) FROM t WHERE b IS DISTINCT FROM a"), "0");
}

// Item 9: --check must be one read-only SELECT; a data-modifying CTE (or
// SELECT INTO, FOR UPDATE) is refused before anything changes.
TEST(TrustBackfillTest, WritingCheckIsRefusedUpFront) {
  FreshPgDatabase db;
  if (IsSkipped()) return;
  ASSERT_TRUE(db.ok());
  auto c = Connect(db.url());
  ASSERT_OK(c->Exec("CREATE TABLE t (id int PRIMARY KEY, a int, b int); "
                    "INSERT INTO t SELECT g, g, NULL FROM generate_series(1, 100) g")
                .status());
  for (const std::string& check :
       {std::string("WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d"),
        std::string("WITH u AS (UPDATE t SET a = 0 RETURNING id) SELECT id FROM u WHERE false"),
        std::string("SELECT id INTO stolen FROM t"), std::string("SELECT id FROM t FOR UPDATE")}) {
    RunResult r = RunFerry({"backfill", "--database", db.url(), "--table", "t", "--set", "b = a",
                            "--where", "b IS NULL", "--check", check});
    EXPECT_EQ(r.exit_code, 8) << check << "\n" << Show(r);
    EXPECT_THAT(r.err, HasSubstr("--check")) << Show(r);
  }
  EXPECT_EQ(One(*c, "SELECT count(*) FROM t WHERE b IS NULL AND a = id"), "100");
  EXPECT_EQ(One(*c, "SELECT to_regclass('ferry_jobs') IS NULL"), "t");
  EXPECT_EQ(One(*c, "SELECT to_regclass('stolen') IS NULL"), "t");
  // A read-only check still runs.
  RunResult r = RunFerry({"backfill", "--database", db.url(), "--table", "t", "--set", "b = a",
                          "--where", "b IS NULL", "--check",
                          "WITH x AS (SELECT id FROM t WHERE b <> a) SELECT id FROM x"});
  EXPECT_EQ(r.exit_code, 0) << Show(r);
}

// A PostgreSQL server of this test's own (scripts/test-servers.sh start),
// so that restarting it disturbs no other test.
class OwnServer {
 public:
  OwnServer() {
    script_ = std::string(FERRY_SOURCE_DIR) + "/scripts/test-servers.sh";
    chmod(dir_.path().c_str(), 0755);  // the server's own user must reach DIR/s
    // PostgreSQL is what this test restarts: no Cassandra, no Redis cluster.
    RunResult r = RunBinary("/bin/bash", {script_, "start", dir_.File("s")},
                            {"FERRY_TEST_NO_CQL=1", "FERRY_TEST_NO_REDIS_EXTRAS=1"});
    if (r.exit_code != 0) {
      ADD_FAILURE() << "test-servers.sh start: " << Show(r);
      return;
    }
    std::string env = ReadFile(dir_.File("s/env"));
    const std::string key = "export FERRY_TEST_PG_URL=";
    auto at = env.find(key);
    if (at == std::string::npos) return;
    url_ = env.substr(at + key.size(), env.find('\n', at) - at - key.size());
  }
  ~OwnServer() { RunBinary("/bin/bash", {script_, "stop", dir_.File("s")}); }
  const std::string& url() const { return url_; }
  RunResult Restart() { return RunBinary("/bin/bash", {script_, "restart-pg", dir_.File("s")}); }

 private:
  TempDir dir_;
  std::string script_;
  std::string url_;
};

// Item 9: the server restarts mid-backfill; ferry reconnects, resumes from
// the checkpoint and finishes with every row updated exactly once.
TEST(TrustBackfillTest, ReconnectsAfterTheServerRestarts) {
  FERRY_REQUIRE_PG(shared_url);
  OwnServer server;
  ASSERT_FALSE(server.url().empty());
  auto c = Connect(server.url());
  ASSERT_TRUE(c);
  ASSERT_OK(c->Exec("CREATE TABLE t (id int PRIMARY KEY, a int, b int, n int NOT NULL DEFAULT 0); "
                    "INSERT INTO t SELECT g, g, NULL FROM generate_series(1, 40000) g; ANALYZE t")
                .status());
  TempDir dir;
  int pid = StartFerry({"backfill", "--database", server.url(), "--table", "t", "--set",
                        "b = a, n = n + 1", "--fixed-batch", "--batch-rows", "500", "--sleep",
                        "25ms", "--job-id", "restart"},
                       dir.File("out"));
  bool started = false;
  for (int i = 0; i < 1500 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto r = c->Query("SELECT rows_done FROM ferry_jobs WHERE job_id = 'restart'");
    started = r.ok() && !r->empty() && std::atoll(r->Text(0, 0).c_str()) >= 2000;
  }
  ASSERT_TRUE(started) << ReadFile(dir.File("out") + ".err");
  RunResult restarted = server.Restart();
  ASSERT_EQ(restarted.exit_code, 0) << Show(restarted);
  const int code = WaitFerry(pid);
  EXPECT_EQ(code, 0) << ReadFile(dir.File("out")) << ReadFile(dir.File("out") + ".err");
  c = Connect(server.url());
  ASSERT_TRUE(c);
  EXPECT_EQ(One(*c, "SELECT count(*) FROM t WHERE b IS DISTINCT FROM a"), "0");
  // Exactly once: no batch ran twice across the restart.
  EXPECT_EQ(One(*c, "SELECT min(n) || '/' || max(n) FROM t"), "1/1");
  EXPECT_EQ(One(*c, "SELECT rows_done || ' ' || state FROM ferry_jobs WHERE job_id = 'restart'"),
            "40000 done");
}

// The same with page ranges (issue 21 item 16): a --where makes one worker
// walk ctid ranges; the checkpoint read back after the restart is a page.
TEST(TrustBackfillTest, PageRangesReconnectAfterTheServerRestarts) {
  FERRY_REQUIRE_PG(shared_url);
  OwnServer server;
  ASSERT_FALSE(server.url().empty());
  auto c = Connect(server.url());
  ASSERT_TRUE(c);
  ASSERT_OK(c->Exec("CREATE TABLE t (id int PRIMARY KEY, a int, b int, n int NOT NULL DEFAULT 0); "
                    "INSERT INTO t SELECT g, g, NULL FROM generate_series(1, 40000) g; ANALYZE t")
                .status());
  TempDir dir;
  int pid = StartFerry({"backfill", "--database", server.url(), "--table", "t", "--set",
                        "b = a, n = n + 1", "--where", "b IS NULL", "--by", "ctid", "--fixed-batch", "--batch-rows", "500", "--sleep",
                        "25ms", "--job-id", "restart-ctid"},
                       dir.File("out"));
  bool started = false;
  for (int i = 0; i < 1500 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto r = c->Query("SELECT rows_done FROM ferry_jobs WHERE job_id = 'restart-ctid'");
    started = r.ok() && !r->empty() && std::atoll(r->Text(0, 0).c_str()) >= 2000;
  }
  ASSERT_TRUE(started) << ReadFile(dir.File("out") + ".err");
  RunResult restarted = server.Restart();
  ASSERT_EQ(restarted.exit_code, 0) << Show(restarted);
  const int code = WaitFerry(pid);
  EXPECT_EQ(code, 0) << ReadFile(dir.File("out")) << ReadFile(dir.File("out") + ".err");
  c = Connect(server.url());
  ASSERT_TRUE(c);
  EXPECT_EQ(One(*c, "SELECT count(*) FROM t WHERE b IS DISTINCT FROM a"), "0");
  // Exactly once: no batch ran twice across the restart.
  EXPECT_EQ(One(*c, "SELECT min(n) || '/' || max(n) FROM t"), "1/1");
  EXPECT_EQ(One(*c, "SELECT rows_done || ' ' || state FROM ferry_jobs WHERE job_id = 'restart-ctid'"),
            "40000 done");
  EXPECT_EQ(One(*c, "SELECT checkpoint::jsonb ->> 'by' FROM ferry_jobs WHERE job_id = 'restart-ctid'"),
            "ctid");
}

}  // namespace
}  // namespace ferry::testing
