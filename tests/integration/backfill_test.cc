// Batched backfills on real PostgreSQL: concurrent writers checked row by
// row, kill -9 and resume, adaptive batches, lock waits, dry runs, bad input
// refused before anything changes, integrity checks that fail.
#include "move/backfill.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "drivers/registry.h"
#include "test_util.h"

namespace ferry {
namespace {

// RunBackfill with `on` subscribed to its events' backfill detail.
Result<BackfillReport> RunWithEvents(const std::string& url, const BackfillOptions& o,
                                     const std::function<void(const BackfillProgress&)>& on) {
  EventBus bus;
  bus.Subscribe([&](const Event& e) {
    if (e.backfill) on(*e.backfill);
  });
  return RunBackfill(url, o, &bus);
}

using ::testing::HasSubstr;
using testing::FreshPgDatabase;
using testing::RunFerry;

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::stoll(v) : fallback;
}

// Rows for the bigger tests; smaller under sanitizers via the environment.
int64_t BigRows() { return EnvInt("FERRY_TEST_BACKFILL_ROWS", 100000); }

// The last line of --json output: the command's result.
nlohmann::json LastJsonLine(const std::string& out) {
  std::string text = out;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return nlohmann::json::parse(text.substr(text.rfind('\n') + 1));
}

std::unique_ptr<Connection> Open(const std::string& url) {
  auto c = OpenConnection(url);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

int64_t Scalar(Connection& conn, const std::string& sql) {
  auto r = conn.Query(sql);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() && !r->empty() && !r->IsNull(0, 0) ? std::stoll(r->Text(0, 0)) : -1;
}

// A fingerprint of the whole table, to prove nothing changed.
std::string Fingerprint(Connection& conn, const std::string& table) {
  auto r = conn.Query("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM " + table + " t");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->Text(0, 0) : "";
}

bool JobsTableHasJobs(Connection& conn) {
  auto r = conn.Query("SELECT count(*) FROM ferry_jobs WHERE kind = 'backfill'");
  return r.ok() && r->Text(0, 0) != "0";
}

void MakeTable(Connection& conn, int64_t rows) {
  ASSERT_OK(conn.Exec("CREATE TABLE t (id bigint PRIMARY KEY, a int NOT NULL, b int, "
                      "hits int NOT NULL DEFAULT 0, n int NOT NULL DEFAULT 0)")
                .status());
  ASSERT_OK(conn.Query("INSERT INTO t (id, a) SELECT g, g % 1000 FROM generate_series(1, $1::bigint) g",
                       {std::to_string(rows)})
                .status());
  ASSERT_OK(conn.Exec("ANALYZE t").status());
}

// Application writers: each on its own connection, each statement under a
// lock_timeout a little above the backfill's, recording what it did so the
// final table can be checked row by row.
class Writers {
 public:
  Writers(std::string url, int64_t rows, int count) : url_(std::move(url)), rows_(rows) {
    for (int w = 0; w < count; ++w) threads_.emplace_back([this, w] { Run(w); });
  }
  ~Writers() { Stop(); }

  void Stop() {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  std::vector<std::string> errors;  // every failed statement
  std::map<int64_t, int> hits;      // id -> committed updates
  std::vector<int64_t> inserted;    // ids inserted (with a dual-written b)
  std::atomic<int64_t> statements{0};

 private:
  void Run(int w) {
    auto c = OpenConnection(url_);
    if (!c.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      errors.push_back(c.status().ToString());
      return;
    }
    std::unique_ptr<Connection> conn = std::move(*c);
    // The backfill waits at most 500 ms per lock: a writer waiting longer
    // than 3 s would mean a batch held its locks far too long.
    (void)conn->Exec("SET lock_timeout = '3s'");
    std::mt19937_64 rng(static_cast<uint64_t>(w) * 7919 + 17);
    std::uniform_int_distribution<int64_t> pick(1, rows_);
    int64_t next_id = rows_ + 1 + w * 1000000LL;
    std::map<int64_t, int> mine;
    std::vector<int64_t> my_inserts;
    while (!stop_) {
      Status s;
      if (rng() % 10 == 0) {
        // A new row written by the new application version (both columns).
        int64_t id = next_id++;
        s = conn->Query("INSERT INTO t (id, a, b) VALUES ($1, $2, $2 * 2)",
                        {std::to_string(id), std::to_string(id % 1000)})
                .status();
        if (s.ok()) my_inserts.push_back(id);
      } else {
        // The application changes the source column and writes both.
        int64_t id = pick(rng);
        s = conn->Query("UPDATE t SET a = a + 1, b = (a + 1) * 2, hits = hits + 1 WHERE id = $1",
                        {std::to_string(id)})
                .status();
        if (s.ok()) ++mine[id];
      }
      ++statements;
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        errors.push_back(s.ToString());
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, n] : mine) hits[id] += n;
    inserted.insert(inserted.end(), my_inserts.begin(), my_inserts.end());
  }

  std::string url_;
  int64_t rows_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

// Each test: a fresh database and a connection to it.
class BackfillPg : public ::testing::Test {
 protected:
  void SetUp() override {
    if (IsSkipped()) return;
    ASSERT_TRUE(db.ok());
    conn = Open(db.url());
    ASSERT_NE(conn, nullptr);
  }

  FreshPgDatabase db;
  std::unique_ptr<Connection> conn;
};

TEST_F(BackfillPg, ConcurrentWritersLoseNothingAndEveryRowMatches) {
  const int64_t rows = BigRows();
  MakeTable(*conn, rows);

  Writers writers(db.url(), rows, 3);
  // Let the writers get going before the backfill starts.
  while (writers.statements.load() < 50) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  BackfillOptions o;
  o.table = "t";
  o.set = "b = a * 2";
  o.where = "b IS NULL";
  o.workers = 2;
  o.batch_rows = 2000;
  o.lock_timeout = std::chrono::milliseconds(500);
  std::vector<BackfillProgress> events;
  const int64_t before = writers.statements.load();
  auto report = RunWithEvents(db.url(), o, [&](const BackfillProgress& e) { events.push_back(e); });
  const int64_t during = writers.statements.load() - before;
  writers.Stop();
  ASSERT_TRUE(report.ok()) << report.status().ToString();

  // The writers really ran during the backfill, and none of their
  // statements failed (no lock timeout, no deadlock).
  EXPECT_GT(during, 0);
  EXPECT_TRUE(writers.errors.empty()) << writers.errors.size() << " writer errors, first: "
                                      << writers.errors.front();
  EXPECT_OK(report->CheckStatus());
  EXPECT_EQ(report->remaining, 0);
  EXPECT_GT(report->batches, 1);
  EXPECT_LE(report->rows_updated, rows);
  int64_t batch_total = 0;
  for (const auto& e : events) {
    if (e.kind == BackfillProgress::Kind::kBatch) batch_total += e.batch_rows;
  }
  EXPECT_EQ(batch_total, report->rows_updated);

  // Row by row: b derives from the current a; a and hits show every writer
  // update; every inserted row is there.
  std::map<int64_t, std::vector<int64_t>> table;
  auto r = conn->Query("SELECT id, a, b, hits FROM t ORDER BY id");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(static_cast<int64_t>(r->rows.size()),
            rows + static_cast<int64_t>(writers.inserted.size()));
  int mismatches = 0;
  for (size_t i = 0; i < r->rows.size(); ++i) {
    const int64_t id = std::stoll(r->Text(i, 0));
    const int64_t a = std::stoll(r->Text(i, 1));
    ASSERT_FALSE(r->IsNull(i, 2)) << "row " << id << " was not backfilled";
    const int64_t b = std::stoll(r->Text(i, 2));
    const int64_t hits = std::stoll(r->Text(i, 3));
    const auto w = writers.hits.find(id);
    const int64_t expected_hits = w == writers.hits.end() ? 0 : w->second;
    if (id <= rows) {
      if (a != id % 1000 + expected_hits || hits != expected_hits) ++mismatches;
    }
    if (b != a * 2) ++mismatches;
    if (mismatches > 0 && mismatches < 5) {
      ADD_FAILURE() << "row " << id << ": a=" << a << " b=" << b << " hits=" << hits
                    << " expected hits " << expected_hits;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_F(BackfillPg, CompositeKeyWithWorkersCoversEveryRowOnce) {
  ASSERT_OK(conn->Exec("CREATE SCHEMA app; CREATE TABLE app.\"Line Items\" (tenant text, id int, "
                       "qty int, total int, n int NOT NULL DEFAULT 0, PRIMARY KEY (tenant, id)); "
                       "INSERT INTO app.\"Line Items\" (tenant, id, qty) SELECT 't' || (g % 7), "
                       "g, g % 13 FROM generate_series(1, 20000) g; ANALYZE app.\"Line Items\"")
                .status());
  BackfillOptions o;
  o.table = "app.Line Items";
  o.set = "total = qty * 10, n = n + 1";
  o.workers = 3;
  o.batch_rows = 700;
  o.adaptive = false;
  o.check_query = "SELECT tenant, id FROM app.\"Line Items\" WHERE n <> 1 OR total IS DISTINCT FROM qty * 10";
  auto report = RunBackfill(db.url(), o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_OK(report->CheckStatus());
  EXPECT_EQ(report->rows_updated, 20000);
  EXPECT_EQ(report->workers, 3);
  EXPECT_EQ(Scalar(*conn, "SELECT count(*) FROM app.\"Line Items\" WHERE n = 1"), 20000);
}

TEST_F(BackfillPg, KilledBackfillResumesAndUpdatesEachRowExactlyOnce) {
  const int64_t rows = 30000;
  MakeTable(*conn, rows);
  testing::TempDir dir;
  // No --where: every row is updated, and n counts how often; a batch done
  // twice after the resume would leave n = 2.
  const std::vector<std::string> args = {
      "backfill", "--database", db.url(), "--table", "t", "--set", "b = a * 2, n = n + 1",
      "--batch-rows", "500", "--fixed-batch", "--sleep", "30ms", "--check",
      "SELECT id, n FROM t WHERE n <> 1"};
  int pid = testing::StartFerry(args, dir.File("first.out"));
  // Wait until some batches committed, then kill without warning.
  int64_t done = 0;
  for (int i = 0; i < 2000 && done < 3000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto r = conn->Query("SELECT COALESCE(max(rows_done), 0) FROM ferry_jobs WHERE kind = 'backfill'");
    if (r.ok()) done = std::stoll(r->Text(0, 0));
  }
  ASSERT_GE(done, 3000) << testing::ReadFile(dir.File("first.out.err"));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(testing::WaitFerry(pid), 128 + SIGKILL);

  // The checkpoint is exact: rows up to the last key are done, none after.
  auto job = conn->Query("SELECT rows_done, state, checkpoint FROM ferry_jobs WHERE kind = 'backfill'");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  ASSERT_EQ(job->rows.size(), 1u);
  EXPECT_EQ(job->Text(0, 1), "running");
  const int64_t rows_done = std::stoll(job->Text(0, 0));
  auto cp = nlohmann::json::parse(job->Text(0, 2));
  const std::string last = cp["ranges"][0]["last"][0].get<std::string>();
  EXPECT_EQ(Scalar(*conn, "SELECT count(*) FROM t WHERE n = 1"), rows_done);
  EXPECT_EQ(Scalar(*conn, "SELECT count(*) FROM t WHERE n = 1 AND id <= " + last), rows_done);
  EXPECT_LT(rows_done, rows);

  // The same command resumes on its own; --resume requires the job.
  auto second = RunFerry({"backfill", "--database", db.url(), "--table", "t", "--set",
                          "b = a * 2, n = n + 1", "--resume", "--json", "--check",
                          "SELECT id, n FROM t WHERE n <> 1"});
  ASSERT_EQ(second.exit_code, 0) << second.err << second.out;
  auto out = LastJsonLine(second.out);
  EXPECT_TRUE(out["report"]["resumed"].get<bool>());
  EXPECT_EQ(out["report"]["rows_updated"].get<int64_t>(), rows);
  EXPECT_THAT(second.out, HasSubstr("\"event\":\"started\""));
  EXPECT_EQ(Scalar(*conn, "SELECT count(*) FROM t WHERE n = 1 AND b = a * 2"), rows);
  EXPECT_EQ(Scalar(*conn, "SELECT count(*) FROM ferry_jobs WHERE kind = 'backfill' AND state = 'done'"), 1);

  // Once done, --resume has nothing to resume.
  auto third = RunFerry({"backfill", "--database", db.url(), "--table", "t", "--set",
                         "b = a * 2, n = n + 1", "--resume"});
  EXPECT_EQ(third.exit_code, 7) << third.err;
  EXPECT_THAT(third.err, HasSubstr("no unfinished backfill job"));
}

TEST_F(BackfillPg, BatchSizeAdaptsTowardTheTarget) {
  MakeTable(*conn, BigRows());
  // Far too big a start for a 4 ms ceiling: the window must stay small.
  BackfillOptions o;
  o.table = "t";
  o.set = "b = a * 2";
  o.where = "b IS NULL";
  o.batch_rows = 50000;
  o.min_batch_rows = 50;
  o.max_batch = std::chrono::milliseconds(4);
  std::vector<int64_t> limits;
  auto report = RunWithEvents(db.url(), o, [&](const BackfillProgress& e) {
    if (e.kind == BackfillProgress::Kind::kBatch) limits.push_back(e.batch_limit);
  });
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_GE(limits.size(), 3u);
  // The first batch is a probe (issue 21): small whatever the start.
  EXPECT_EQ(limits.front(), kProbeBatchRows);
  EXPECT_LT(limits.back(), 50000 / 4);
  EXPECT_LT(report->final_batch_rows, 50000);
  EXPECT_EQ(report->remaining, 0);

  // Far too small a start for a 10 s ceiling: it must grow.
  ASSERT_OK(conn->Exec("UPDATE t SET b = NULL").status());
  o.batch_rows = 20;
  o.max_batch = std::chrono::seconds(10);
  o.restart = true;
  limits.clear();
  report = RunWithEvents(db.url(), o, [&](const BackfillProgress& e) {
    if (e.kind == BackfillProgress::Kind::kBatch) limits.push_back(e.batch_limit);
  });
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_GE(limits.size(), 2u);
  EXPECT_EQ(limits.front(), 20);
  EXPECT_GT(*std::max_element(limits.begin(), limits.end()), 20 * 8);
  EXPECT_EQ(report->remaining, 0);
}

TEST_F(BackfillPg, LockedRowsAreRetriedNotWaitedOn) {
  MakeTable(*conn, 5000);
  // Another session holds a row lock for a while.
  auto holder = Open(db.url());
  ASSERT_NE(holder, nullptr);
  ASSERT_OK(holder->Begin());
  ASSERT_OK(holder->Exec("UPDATE t SET hits = hits + 1 WHERE id = 2500").status());
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    EXPECT_OK(holder->Commit());
  });
  BackfillOptions o;
  o.table = "t";
  o.set = "b = a * 2";
  o.where = "b IS NULL";
  o.batch_rows = 1000;
  o.adaptive = false;
  o.lock_timeout = std::chrono::milliseconds(100);
  o.max_attempts = 20;
  std::vector<std::string> retries;
  auto report = RunWithEvents(db.url(), o, [&](const BackfillProgress& e) {
    if (e.kind == BackfillProgress::Kind::kRetry) retries.push_back(e.message);
  });
  release.join();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_FALSE(retries.empty());
  EXPECT_THAT(retries.front(), HasSubstr("lock timeout"));
  EXPECT_EQ(report->retries, static_cast<int64_t>(retries.size()));
  EXPECT_EQ(report->remaining, 0);
  EXPECT_EQ(Scalar(*conn, "SELECT hits FROM t WHERE id = 2500"), 1);
}

TEST_F(BackfillPg, DryRunChangesNothing) {
  MakeTable(*conn, 1000);
  const std::string before = Fingerprint(*conn, "t");
  auto r = RunFerry({"backfill", "--database", db.url(), "--table", "t", "--set", "b = a * 2",
                     "--where", "b IS NULL", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("dry run: nothing changed"));
  EXPECT_THAT(r.out, HasSubstr("UPDATE \"public\".\"t\" SET b = a * 2"));
  EXPECT_EQ(Fingerprint(*conn, "t"), before);
  EXPECT_FALSE(JobsTableHasJobs(*conn));
}

TEST_F(BackfillPg, BadInputIsRefusedBeforeAnythingChanges) {
  MakeTable(*conn, 1000);
  ASSERT_OK(conn->Exec("CREATE TABLE nokey (a int, b int); INSERT INTO nokey VALUES (1, NULL)").status());
  const std::string before = Fingerprint(*conn, "t");
  struct Case {
    std::vector<std::string> flags;
    int exit_code;
    std::string says;
  };
  const std::vector<Case> cases = {
      // Does not type-check: function on the wrong type, text into integer.
      {{"--table", "t", "--set", "b = lower(a)"}, 8, "does not type-check"},
      {{"--table", "t", "--set", "b = 'x' || a::text"}, 8, "does not type-check"},
      {{"--table", "t", "--set", "b = a", "--where", "a + 1"}, 8, "--where does not type-check"},
      {{"--table", "t", "--set", "b = a", "--where", "zzz IS NULL"}, 8, "zzz"},
      // Would escape the key bounds or smuggle clauses.
      {{"--table", "t", "--set", "b = a", "--where", "b IS NULL) OR (true"}, 8, "does not parse"},
      {{"--table", "t", "--set", "b = a WHERE true"}, 8, "--where"},
      {{"--table", "t", "--set", "b = a; DROP TABLE t"}, 8, "one expression"},
      {{"--table", "t", "--set", "id = id + 1"}, 8, "primary-key column"},
      // Missing things.
      {{"--table", "missing", "--set", "b = 1"}, 7, "missing"},
      {{"--table", "t", "--set", "c = 1"}, 7, "column \"c\""},
      {{"--table", "nokey", "--set", "b = a"}, 9, "no primary key"},
      {{"--table", "t", "--set", "b = a", "--check", "DELETE FROM t"}, 8, "SELECT"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"backfill", "--database", db.url()};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    auto r = RunFerry(args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.flags[3] << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.says)) << c.flags[3];
  }
  EXPECT_EQ(Fingerprint(*conn, "t"), before);
  EXPECT_EQ(Scalar(*conn, "SELECT count(*) FROM nokey WHERE b IS NULL"), 1);
  EXPECT_FALSE(JobsTableHasJobs(*conn));
}

TEST_F(BackfillPg, FailingChecksExitNonZero) {
  MakeTable(*conn, 2000);
  // The user's check query returns rows.
  auto r = RunFerry({"backfill", "--database", db.url(), "--table", "t", "--set", "b = a * 2",
                     "--where", "b IS NULL", "--check", "SELECT id, b FROM t WHERE b <> a * 3 ORDER BY id"});
  EXPECT_EQ(r.exit_code, 10) << r.err;
  EXPECT_THAT(r.err, HasSubstr("the --check query returned"));
  EXPECT_THAT(r.err, HasSubstr("id=1, b=2"));
  EXPECT_EQ(Scalar(*conn, "SELECT count(*) FROM t WHERE b = a * 2"), 2000);

  // The SET leaves some rows matching the not-done condition.
  ASSERT_OK(conn->Exec("UPDATE t SET b = NULL").status());
  r = RunFerry({"backfill", "--database", db.url(), "--table", "t", "--set",
                "b = NULLIF(a, 5) * 2", "--where", "b IS NULL", "--json"});
  EXPECT_EQ(r.exit_code, 10) << r.err;
  auto out = LastJsonLine(r.out);
  EXPECT_FALSE(out["ok"].get<bool>());
  EXPECT_EQ(out["report"]["remaining"].get<int64_t>(), 2);  // ids 5 and 1005
  EXPECT_THAT(out["error"]["message"].get<std::string>(), HasSubstr("2 row(s)"));
}

TEST_F(BackfillPg, SecondRunnerOfTheSameJobIsRefused) {
  MakeTable(*conn, 20000);
  testing::TempDir dir;
  const std::vector<std::string> args = {"backfill", "--database", db.url(), "--table", "t",
                                         "--set", "b = a * 2", "--where", "b IS NULL",
                                         "--batch-rows", "200", "--fixed-batch", "--sleep", "20ms"};
  int pid = testing::StartFerry(args, dir.File("first.out"));
  int64_t done = 0;
  for (int i = 0; i < 2000 && done == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto r = conn->Query("SELECT COALESCE(max(rows_done), 0) FROM ferry_jobs WHERE kind = 'backfill'");
    if (r.ok()) done = std::stoll(r->Text(0, 0));
  }
  ASSERT_GT(done, 0) << testing::ReadFile(dir.File("first.out.err"));
  auto second = RunFerry(args);
  EXPECT_EQ(second.exit_code, 9) << second.err;
  EXPECT_THAT(second.err, HasSubstr("running in another ferry process"));
  // Ctrl-C (SIGINT) stops the first after its batch; the job stays resumable.
  ASSERT_EQ(kill(pid, SIGINT), 0);
  EXPECT_EQ(testing::WaitFerry(pid), 1);
  EXPECT_THAT(testing::ReadFile(dir.File("first.out.err")), HasSubstr("run the same command again"));
  EXPECT_EQ(Scalar(*conn, "SELECT count(*) FROM ferry_jobs WHERE state = 'cancelled'"), 1);
  auto third = RunFerry(args);
  EXPECT_EQ(third.exit_code, 0) << third.err;
  EXPECT_THAT(third.out, HasSubstr("resumed"));
  EXPECT_EQ(Scalar(*conn, "SELECT count(*) FROM t WHERE b = a * 2"), 20000);
}

}  // namespace
}  // namespace ferry
