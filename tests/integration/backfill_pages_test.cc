// Backfill by heap page ranges (ctid, issue 21 item 16) on real PostgreSQL:
// every matching row exactly once although updated rows move to other
// pages, kill -9 and resume, rows the application writes during the run,
// the fall back to key ranges and the refusals.
#include <signal.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "drivers/registry.h"
#include "move/backfill.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Connection> Connect(const std::string& url) {
  auto c = OpenConnection(url);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

int64_t Count(Connection& c, const std::string& sql) {
  auto r = c.Query(sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  return r.ok() && !r->empty() && !r->IsNull(0, 0) ? std::stoll(r->Text(0, 0)) : -1;
}

// pg_t: full pages (fillfactor 100) and an index on b, so that every
// backfilled row gets a new version on another page (no HOT update).
void MakePagesTable(Connection& c, int64_t rows) {
  ASSERT_OK(c.Exec("CREATE TABLE pg_t (id bigint PRIMARY KEY, a int NOT NULL, b int, "
                   "n int NOT NULL DEFAULT 0, hits int NOT NULL DEFAULT 0); "
                   "CREATE INDEX pg_t_b ON pg_t (b)")
                .status());
  ASSERT_OK(c.Query("INSERT INTO pg_t (id, a) SELECT g, g % 1000 FROM generate_series(1, $1::bigint) g",
                    {std::to_string(rows)})
                .status());
  ASSERT_OK(c.Exec("ANALYZE pg_t").status());
}

Result<BackfillReport> RunWithEvents(const std::string& url, const BackfillOptions& o,
                                     const std::function<void(const BackfillProgress&)>& on) {
  EventBus bus;
  bus.Subscribe([&](const Event& e) {
    if (e.backfill) on(*e.backfill);
  });
  return RunBackfill(url, o, &bus);
}

BackfillOptions PagesOptions() {
  BackfillOptions o;
  o.table = "pg_t";
  o.set = "b = a * 2, n = n + 1";
  o.where = "b IS NULL";
  return o;
}

TEST(BackfillPagesTest, EveryMatchingRowExactlyOnceByDefault) {
  FreshPgDatabase db;
  if (IsSkipped()) return;
  ASSERT_TRUE(db.ok());
  auto c = Connect(db.url());
  ASSERT_TRUE(c);
  MakePagesTable(*c, 40000);
  // Rows already done (by the new application version) are not touched.
  ASSERT_OK(c->Exec("UPDATE pg_t SET b = a * 2 WHERE id % 7 = 0").status());
  const int64_t todo = Count(*c, "SELECT count(*) FROM pg_t WHERE b IS NULL");
  BackfillOptions o = PagesOptions();
  o.batch_rows = 1500;
  o.adaptive = false;
  int64_t batches = 0;
  auto report = RunWithEvents(db.url(), o, [&](const BackfillProgress& e) {
    if (e.kind == BackfillProgress::Kind::kBatch) ++batches;
  });
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->scan, "ctid");
  EXPECT_THAT(report->update_sql, HasSubstr("ctid >= $4::tid AND ctid < $5::tid"));
  EXPECT_OK(report->CheckStatus());
  EXPECT_EQ(report->remaining, 0);
  EXPECT_EQ(report->rows_updated, todo);
  EXPECT_GT(batches, 10);
  EXPECT_EQ(Count(*c, "SELECT count(*) FROM pg_t WHERE n = 1 AND b = a * 2"), todo);
  EXPECT_EQ(Count(*c, "SELECT count(*) FROM pg_t WHERE n = 0 AND id % 7 = 0"), 40000 - todo);
  EXPECT_EQ(Count(*c, "SELECT count(*) FROM pg_t WHERE n > 1"), 0);
  // The table grew: the new versions went to other pages, beyond the
  // start's bound, and were not walked again.
  auto job = c->Query("SELECT checkpoint FROM ferry_jobs WHERE kind = 'backfill'");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  auto cp = nlohmann::json::parse(job->Text(0, 0));
  EXPECT_EQ(cp["by"], "ctid");
  EXPECT_TRUE(cp["done"].get<bool>());
  EXPECT_GT(Count(*c, "SELECT pg_relation_size('pg_t') / current_setting('block_size')::bigint"),
            cp["start_pages"].get<int64_t>());
}

TEST(BackfillPagesTest, KilledRunResumesAndUpdatesEachRowExactlyOnce) {
  FreshPgDatabase db;
  if (IsSkipped()) return;
  ASSERT_TRUE(db.ok());
  auto c = Connect(db.url());
  ASSERT_TRUE(c);
  const int64_t rows = 30000;
  MakePagesTable(*c, rows);
  TempDir dir;
  const std::vector<std::string> args = {
      "backfill", "--database", db.url(), "--table", "pg_t", "--set", "b = a * 2, n = n + 1",
      "--where", "b IS NULL", "--by", "ctid", "--batch-rows", "500", "--fixed-batch", "--sleep",
      "30ms", "--check", "SELECT id, n FROM pg_t WHERE n <> 1"};
  int pid = StartFerry(args, dir.File("first.out"));
  int64_t done = 0;
  for (int i = 0; i < 2000 && done < 3000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto r = c->Query("SELECT COALESCE(max(rows_done), 0) FROM ferry_jobs WHERE kind = 'backfill'");
    if (r.ok()) done = std::stoll(r->Text(0, 0));
  }
  ASSERT_GE(done, 3000) << ReadFile(dir.File("first.out.err"));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(WaitFerry(pid), 128 + SIGKILL);

  // The checkpoint is exact: its rows are the rows done, and the next page
  // is where the done rows' old versions end.
  auto job = c->Query("SELECT rows_done, state, checkpoint FROM ferry_jobs WHERE kind = 'backfill'");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  ASSERT_EQ(job->rows.size(), 1u);
  EXPECT_EQ(job->Text(0, 1), "running");
  const int64_t rows_done = std::stoll(job->Text(0, 0));
  auto cp = nlohmann::json::parse(job->Text(0, 2));
  EXPECT_EQ(cp["by"], "ctid");
  EXPECT_EQ(cp["rows"].get<int64_t>(), rows_done);
  EXPECT_EQ(Count(*c, "SELECT count(*) FROM pg_t WHERE n = 1"), rows_done);
  EXPECT_EQ(Count(*c, "SELECT count(*) FROM pg_t WHERE n > 1"), 0);
  const int64_t next_page = cp["next_page"].get<int64_t>();
  EXPECT_GT(next_page, 0);
  EXPECT_EQ(Count(*c, "SELECT count(*) FROM pg_t WHERE b IS NULL AND ctid < '(" +
                          std::to_string(next_page) + ",0)'::tid"),
            0);
  EXPECT_LT(rows_done, rows);

  RunResult second = RunFerry({"backfill", "--database", db.url(), "--table", "pg_t", "--set",
                               "b = a * 2, n = n + 1", "--where", "b IS NULL", "--resume", "--json",
                               "--check", "SELECT id, n FROM pg_t WHERE n <> 1"});
  ASSERT_EQ(second.exit_code, 0) << second.err << second.out;
  std::string text = second.out;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  auto out = nlohmann::json::parse(text.substr(text.rfind('\n') + 1));
  EXPECT_TRUE(out["report"]["resumed"].get<bool>());
  EXPECT_EQ(out["report"]["scan"], "ctid");
  EXPECT_EQ(out["report"]["rows_updated"].get<int64_t>(), rows);
  EXPECT_EQ(Count(*c, "SELECT count(*) FROM pg_t WHERE n = 1 AND b = a * 2"), rows);

  // A resumed page job cannot be continued by key ranges without --restart.
  ASSERT_OK(c->Exec("UPDATE ferry_jobs SET state = 'running' WHERE kind = 'backfill'").status());
  RunResult by_key = RunFerry({"backfill", "--database", db.url(), "--table", "pg_t", "--set",
                               "b = a * 2, n = n + 1", "--where", "b IS NULL", "--by", "key"});
  EXPECT_EQ(by_key.exit_code, 9) << by_key.err;
  EXPECT_THAT(by_key.err, HasSubstr("walks the table by page ranges"));
}

// Rows the application writes during the run: old-version inserts (b NULL)
// land in free space behind the pass or beyond its bound, and updates of
// rows not done yet move them to other pages. The end-of-pass count finds
// them and a catch-up sweep updates them, each once. The writes are made
// from the event callback, between two batches, so the test has no timing.
TEST(BackfillPagesTest, RowsWrittenDuringTheRunAreCaughtOnce) {
  FreshPgDatabase db;
  if (IsSkipped()) return;
  ASSERT_TRUE(db.ok());
  auto c = Connect(db.url());
  ASSERT_TRUE(c);
  const int64_t rows = 20000;
  MakePagesTable(*c, rows);
  // Free space in the first pages, where inserts may go.
  ASSERT_OK(c->Exec("DELETE FROM pg_t WHERE id <= 3000 AND id % 3 = 0").status());
  ASSERT_OK(c->Exec("VACUUM pg_t").status());
  const int64_t kept = Count(*c, "SELECT count(*) FROM pg_t");
  auto app = Connect(db.url());
  ASSERT_TRUE(app);
  BackfillOptions o = PagesOptions();
  o.batch_rows = 1000;
  o.adaptive = false;
  int batches = 0;
  int64_t inserted = 0;
  Status app_error;
  std::vector<std::string> catch_ups;
  auto report = RunWithEvents(db.url(), o, [&](const BackfillProgress& e) {
    if (e.kind == BackfillProgress::Kind::kStarted && e.message.find("catch-up") != std::string::npos) {
      catch_ups.push_back(e.message);
    }
    if (e.kind != BackfillProgress::Kind::kBatch) return;
    ++batches;
    if (batches != 4 && batches != 12) return;
    const std::string base = std::to_string(1000000 + batches * 1000);
    Status s = app->Query("INSERT INTO pg_t (id, a) SELECT $1::bigint + g, g FROM "
                          "generate_series(1, 300) g",
                          {base})
                   .status();
    if (s.ok()) inserted += 300;
    // Rows ahead of the pass, not done yet, change and move.
    if (s.ok()) s = app->Exec("UPDATE pg_t SET hits = hits + 1 WHERE id > 15000 AND id % 50 = 0").status();
    // Rows already done change and move too; they stay done.
    if (s.ok()) s = app->Exec("UPDATE pg_t SET hits = hits + 1 WHERE id < 2000 AND id % 50 = 1").status();
    if (!s.ok() && app_error.ok()) app_error = s;
  });
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_OK(app_error);
  EXPECT_EQ(inserted, 600);
  EXPECT_EQ(report->scan, "ctid");
  EXPECT_OK(report->CheckStatus());
  EXPECT_EQ(report->remaining, 0);
  EXPECT_EQ(report->rows_updated, kept + inserted);
  EXPECT_EQ(Count(*c, "SELECT count(*) FROM pg_t"), kept + inserted);
  EXPECT_EQ(Count(*c, "SELECT count(*) FROM pg_t WHERE n = 1 AND b = a * 2"), kept + inserted);
  EXPECT_EQ(Count(*c, "SELECT count(*) FROM pg_t WHERE n <> 1"), 0);
  // The inserts went to the free space of the first pages, behind the pass:
  // found at the end of the pass and updated by ctid.
  ASSERT_FALSE(catch_ups.empty());
  EXPECT_THAT(catch_ups.front(), HasSubstr("by ctid"));
}

// A --set that leaves rows matching --where: page mode could meet a moved
// row again, so it rolls that batch back and the run goes on by key ranges.
TEST(BackfillPagesTest, RowsStillMatchingAfterTheSetFallBackToKeys) {
  FreshPgDatabase db;
  if (IsSkipped()) return;
  ASSERT_TRUE(db.ok());
  auto c = Connect(db.url());
  ASSERT_TRUE(c);
  ASSERT_OK(c->Exec("CREATE TABLE pg_t (id bigint PRIMARY KEY, a int, b int, n int NOT NULL "
                    "DEFAULT 0); CREATE INDEX pg_t_b ON pg_t (b); INSERT INTO pg_t (id, a) "
                    "SELECT g, CASE WHEN g = 15000 THEN NULL ELSE g END FROM "
                    "generate_series(1, 20000) g; ANALYZE pg_t")
                .status());
  BackfillOptions o;
  o.table = "pg_t";
  o.set = "b = a, n = n + 1";
  o.where = "b IS NULL";
  o.batch_rows = 1000;
  o.adaptive = false;
  std::vector<std::string> started;
  auto report = RunWithEvents(db.url(), o, [&](const BackfillProgress& e) {
    if (e.kind == BackfillProgress::Kind::kStarted) started.push_back(e.message);
  });
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(started.size(), 2u);
  EXPECT_THAT(started[1], HasSubstr("falling back to key ranges"));
  EXPECT_EQ(report->scan, "key");
  EXPECT_EQ(report->remaining, 1);  // the NULL source: reported, as by key ranges
  EXPECT_EQ(report->rows_updated, 20000);
  EXPECT_EQ(Count(*c, "SELECT count(*) FROM pg_t WHERE n = 1"), 20000);
}

TEST(BackfillPagesTest, ModeChoiceAndRefusals) {
  FreshPgDatabase db;
  if (IsSkipped()) return;
  ASSERT_TRUE(db.ok());
  auto c = Connect(db.url());
  ASSERT_TRUE(c);
  MakePagesTable(*c, 2000);
  // No --where: by key ranges (a moved row would otherwise be met again).
  BackfillOptions o = PagesOptions();
  o.where.clear();
  o.check_query = "SELECT id FROM pg_t WHERE n <> 1";
  auto report = RunBackfill(db.url(), o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->scan, "key");
  EXPECT_OK(report->CheckStatus());
  // Two workers: key ranges.
  o = PagesOptions();
  o.set = "b = a * 3";
  o.workers = 2;
  report = RunBackfill(db.url(), o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->scan, "key");

  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"--by", "ctid"},
        std::vector<std::string>{"--by", "ctid", "--where", "b IS NULL", "--workers", "2"}}) {
    std::vector<std::string> args = {"backfill", "--database", db.url(), "--table", "pg_t",
                                     "--set", "b = a * 4"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = RunFerry(args);
    EXPECT_EQ(r.exit_code, 8) << r.err;
    EXPECT_THAT(r.err, HasSubstr("--by ctid"));
  }
  RunResult dry = RunFerry({"backfill", "--database", db.url(), "--table", "pg_t", "--set",
                            "b = a * 4", "--where", "b IS NULL", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_THAT(dry.out, HasSubstr("heap page ranges (ctid)"));
  EXPECT_THAT(dry.out, HasSubstr("ctid >= $4::tid"));
}

}  // namespace
}  // namespace ferry::testing
