// ferry partition create / abort against a real PostgreSQL server: an
// existing table converted online while a writer keeps writing, a run
// killed with SIGKILL and run again, abort, the refusals, the dry run.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "drivers/registry.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kRows = 50000;
constexpr int64_t kLockTimeoutMs = 1000;

// 50,000 rows from 2026-07-01, four minutes apart (to mid-November): five
// monthly partitions of data, plus premake.
constexpr const char* kEvents =
    "CREATE TABLE events (id bigserial, created_at timestamptz NOT NULL, body text, "
    "n integer NOT NULL DEFAULT 0, PRIMARY KEY (id, created_at));"
    "CREATE INDEX events_body ON events (body);"
    "INSERT INTO events (created_at, body) SELECT timestamptz '2026-07-01 00:00:00+00' + "
    "g * interval '4 minutes', 'b' || g FROM generate_series(1, 50000) g;";

constexpr const char* kToml =
    "[[partitions]]\ntable = \"public.events\"\ncolumn = \"created_at\"\n"
    "interval = \"month\"\npremake = 2\n";

class PartitionConvertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = PgAdminUrl();
    if (url_.empty()) return;
    db_ = std::make_unique<FreshPgDatabase>();
    ASSERT_TRUE(db_->ok());
    auto c = OpenConnection(db_->url());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    conn_ = std::move(c).value();
    dir_.Write("ferry.toml", kToml);
  }

  void Sql(const std::string& sql) {
    auto r = conn_->Exec(sql);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::string One(const std::string& sql) {
    auto r = conn_->Query(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || r->empty()) return "";
    return r->Text(0, 0);
  }
  // Count and hash of every row of `table`: equal means identical rows.
  std::string Digest(const std::string& table) {
    return One("SELECT count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)), 0) FROM " +
               table + " t");
  }
  std::vector<std::string> Args(std::vector<std::string> rest) {
    std::vector<std::string> a = {"--database", db_->url(), "--config", dir_.File("ferry.toml")};
    a.insert(a.end(), rest.begin(), rest.end());
    return a;
  }
  RunResult Ferry(std::vector<std::string> rest) { return RunFerry(Args(std::move(rest))); }
  // Nothing of a conversion is left: no shadow, trigger, function, control row.
  void ExpectNoConversionLeft() {
    EXPECT_EQ(One("SELECT to_regclass('events_ferry_part') IS NULL"), "t");
    EXPECT_EQ(One("SELECT count(*) FROM pg_trigger WHERE tgname = 'ferry_partition_sync'"), "0");
    EXPECT_EQ(One("SELECT count(*) FROM pg_proc WHERE proname = 'events_ferry_part_sync'"), "0");
    if (One("SELECT to_regclass('ferry_partition_conversions') IS NOT NULL") == "t") {
      EXPECT_EQ(One("SELECT count(*) FROM ferry_partition_conversions"), "0");
    }
  }
  // Starts a conversion in small batches and kills it with SIGKILL once it
  // has copied some batches.
  void KillDuringCopy() {
    int pid = StartFerry(Args({"partition", "create", "events", "--now", "2026-12-05",
                               "--batch-rows", "100"}),
                         dir_.File("killed.out"));
    int64_t copied = 0;
    for (int i = 0; i < 6000 && copied < 3000; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      auto r = conn_->Query(
          "SELECT rows_copied FROM ferry_partition_conversions WHERE phase = 'copying'");
      if (r.ok() && !r->empty()) copied = std::stoll(r->Text(0, 0));
    }
    ASSERT_GE(copied, 3000) << ReadFile(dir_.File("killed.out.err"));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    EXPECT_EQ(WaitFerry(pid), 128 + SIGKILL);
    EXPECT_EQ(One("SELECT phase FROM ferry_partition_conversions"), "copying");
  }

  std::string url_;
  std::unique_ptr<FreshPgDatabase> db_;
  std::unique_ptr<Connection> conn_;
  TempDir dir_;
};

// The writer's model of the table: id -> (created_at as epoch seconds, n).
struct Row {
  int64_t at = 0;
  int64_t n = 0;
  bool operator==(const Row&) const = default;
};

// Inserts, updates (also of the partition key) and deletes through its own
// connection until told to stop; keeps the expected rows and its longest
// single statement.
class Writer {
 public:
  explicit Writer(const std::string& url) : url_(url) {
    for (int64_t id = 1; id <= kRows; ++id) rows_[id] = Row{1782864000 + id * 240, 0};
  }
  void Start() { thread_ = std::thread([this] { Run(); }); }
  void Stop() {
    stop_ = true;
    thread_.join();
  }
  int64_t ops() const { return ops_; }
  int64_t longest_ms() const { return longest_ms_; }
  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }  // after Stop()
  const std::map<int64_t, Row>& rows() const { return rows_; }

 private:
  void Run() {
    auto c = OpenConnection(url_);
    if (!c.ok()) {
      error_ = c.status().ToString();
      failed_ = true;
      return;
    }
    std::mt19937_64 rng(42);
    int64_t next_move = 2, next_delete = 3;  // each id moved or deleted at most once
    while (!stop_) {
      int op = static_cast<int>(rng() % 4);
      if ((op == 2 && next_move > kRows) || (op == 3 && next_delete > kRows)) op = 1;
      int64_t id = 5 + 4 * static_cast<int64_t>(rng() % (kRows / 4 - 2));  // never moved/deleted
      auto start = std::chrono::steady_clock::now();
      Status s;
      if (op == 0) {
        auto r = (*c)->Query(
            "INSERT INTO events (created_at, body) VALUES ('2026-11-20 10:00:00+00', 'w') "
            "RETURNING id");
        s = r.status();
        if (r.ok()) rows_[std::stoll(r->Text(0, 0))] = Row{1795168800, 0};
      } else if (op == 1) {
        s = (*c)->Query("UPDATE events SET n = n + 1 WHERE id = $1", {std::to_string(id)}).status();
        if (s.ok()) rows_[id].n++;
      } else if (op == 2) {  // moves the row to the next month's partition
        s = (*c)->Query("UPDATE events SET created_at = created_at + interval '31 days' WHERE "
                        "id = $1",
                        {std::to_string(next_move)})
                .status();
        if (s.ok()) rows_[next_move].at += 31 * 86400;
        next_move += 4;
      } else {
        s = (*c)->Query("DELETE FROM events WHERE id = $1", {std::to_string(next_delete)})
                .status();
        if (s.ok()) rows_.erase(next_delete);
        next_delete += 4;
      }
      int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
      longest_ms_ = std::max<int64_t>(longest_ms_, ms);
      if (!s.ok()) {
        error_ = s.ToString();
        failed_ = true;
        return;
      }
      ++ops_;
    }
  }

  std::string url_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<int64_t> ops_{0};
  std::atomic<int64_t> longest_ms_{0};
  std::string error_;
  std::map<int64_t, Row> rows_;
};

TEST_F(PartitionConvertTest, ConvertsWhileAWriterWritesAndKeepsEveryWrite) {
  if (url_.empty()) return;
  Sql(kEvents);
  Writer writer(db_->url());
  writer.Start();
  while (writer.ops() < 200 && !writer.failed()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  RunResult r = Ferry({"partition", "create", "events", "--now", "2026-12-05", "--batch-rows",
                       "1000", "--lock-timeout", std::to_string(kLockTimeoutMs) + "ms", "--json"});
  int64_t ops_at_swap = writer.ops();
  while (writer.ops() < ops_at_swap + 200 && !writer.failed()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  writer.Stop();
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  ASSERT_EQ(writer.error(), "");
  std::printf("[ writer ] %lld statements, longest single statement wait %lld ms (lock_timeout %lld ms)\n",
              static_cast<long long>(writer.ops()), static_cast<long long>(writer.longest_ms()),
              static_cast<long long>(kLockTimeoutMs));
  // A property of lock_timeout (ferry never queues ahead of the writer for
  // longer), with a margin for the swap itself on a loaded machine.
  EXPECT_LT(writer.longest_ms(), kLockTimeoutMs + 2000);

  // The table is partitioned, by month, and holds exactly the writer's rows.
  EXPECT_EQ(One("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass"), "p");
  EXPECT_EQ(One("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"), "8");
  auto got = conn_->Query(
      "SELECT id, extract(epoch from created_at)::bigint, n FROM events ORDER BY id");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  std::map<int64_t, Row> actual;
  for (size_t i = 0; i < got->rows.size(); ++i) {
    actual[std::stoll(got->Text(i, 0))] = Row{std::stoll(got->Text(i, 1)), std::stoll(got->Text(i, 2))};
  }
  EXPECT_EQ(actual.size(), writer.rows().size());
  EXPECT_TRUE(actual == writer.rows()) << "rows differ from the writer's model";
  // Moved rows live in their new month's partition.
  EXPECT_EQ(One("SELECT count(*) FROM events_p2026_07 WHERE id = 2"), "0");
  // Indexes carry the original names; the sequence follows the new table.
  EXPECT_EQ(One("SELECT count(*) FROM pg_indexes WHERE tablename = 'events' AND indexname IN "
                "('events_pkey', 'events_body')"),
            "2");
  EXPECT_EQ(One("SELECT pg_get_serial_sequence('events', 'id') IS NOT NULL"), "t");
  EXPECT_EQ(One("SELECT to_regclass('events_ferry_old') IS NOT NULL"), "t");
  EXPECT_EQ(One("SELECT phase FROM ferry_partition_conversions"), "done");
  RunResult history = Ferry({"history", "--json"});
  EXPECT_THAT(history.out, HasSubstr("partition convert public.events"));
  // ferry partition keeps it from now on.
  RunResult status = Ferry({"partition", "status", "--now", "2026-12-05"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  RunResult again = Ferry({"partition", "create", "events"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("nothing to do"));
  // After the swap, abort refuses and says why.
  RunResult abort = Ferry({"partition", "abort", "events"});
  EXPECT_EQ(abort.exit_code, 9) << abort.err;
  EXPECT_THAT(abort.err, HasSubstr("already swapped"));
}

// A reader holds its transaction open across the swap: the swap's lock
// request gives up after lock_timeout and is retried, so the writer queued
// behind it never waits much longer than lock_timeout, and the conversion
// still completes once the reader is done.
TEST_F(PartitionConvertTest, SwapRetriesBehindALongReaderWithoutBlockingTheWriter) {
  if (url_.empty()) return;
  Sql(kEvents);
  auto reader = OpenConnection(db_->url());
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_OK((*reader)->Begin());
  ASSERT_TRUE((*reader)->Query("SELECT count(*) FROM events").ok());
  // Ends the reader's transaction some time after the copy was verified, so
  // the first swap attempt meets it.
  std::thread releaser([&] {
    auto watch = OpenConnection(db_->url());
    if (!watch.ok()) return;
    for (int i = 0; i < 12000; ++i) {
      auto r = (*watch)->Query(
          "SELECT 1 FROM ferry_partition_conversions WHERE phase IN ('verified', 'swapped', "
          "'done')");
      if (r.ok() && !r->empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    (void)(*reader)->Commit();
  });
  Writer writer(db_->url());
  writer.Start();
  RunResult r = RunFerry(Args({"partition", "create", "events", "--now", "2026-12-05",
                               "--batch-rows", "2000", "--lock-timeout",
                               std::to_string(kLockTimeoutMs) + "ms", "--json"}),
                         {"FERRY_LOCK_RETRIES=10", "FERRY_LOCK_RETRY_DELAY=200ms"});
  releaser.join();
  writer.Stop();
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  ASSERT_EQ(writer.error(), "");
  std::printf("[ writer ] %lld statements, longest single statement wait %lld ms behind a "
              "retried swap (lock_timeout %lld ms)\n",
              static_cast<long long>(writer.ops()), static_cast<long long>(writer.longest_ms()),
              static_cast<long long>(kLockTimeoutMs));
  EXPECT_LT(writer.longest_ms(), kLockTimeoutMs + 2000);
  EXPECT_THAT(r.out, HasSubstr("convert_lock_retry"));
  EXPECT_EQ(One("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass"), "p");
  EXPECT_EQ(One("SELECT count(*) FROM events"), std::to_string(writer.rows().size()));
}

TEST_F(PartitionConvertTest, KilledDuringCopyResumesToIdenticalRows) {
  if (url_.empty()) return;
  Sql(kEvents);
  std::string before = Digest("events");
  KillDuringCopy();
  RunResult r = Ferry({"partition", "create", "events", "--now", "2026-12-05", "--drop-old"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("(resumed)"));
  EXPECT_EQ(One("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass"), "p");
  EXPECT_EQ(Digest("events"), before);
  EXPECT_EQ(One("SELECT to_regclass('events_ferry_old') IS NULL"), "t") << "--drop-old";
  Sql("INSERT INTO events (created_at) VALUES ('2026-12-24 00:00:00+00')");
  EXPECT_EQ(One("SELECT count(*) FROM events_p2026_12"), "1");
}

TEST_F(PartitionConvertTest, AbortBeforeSwapLeavesTheOriginalUntouched) {
  if (url_.empty()) return;
  Sql(kEvents);
  std::string before = Digest("events");
  KillDuringCopy();
  RunResult r = Ferry({"partition", "abort", "events"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  ExpectNoConversionLeft();
  EXPECT_EQ(One("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass"), "r");
  EXPECT_EQ(Digest("events"), before);
  Sql("INSERT INTO events (created_at) VALUES ('2026-12-24 00:00:00+00')");  // no trigger left
  RunResult none = Ferry({"partition", "abort", "events"});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_THAT(none.err, HasSubstr("nothing to abort"));
}

TEST_F(PartitionConvertTest, DryRunPrintsThePlanAndChangesNothing) {
  if (url_.empty()) return;
  Sql(kEvents);
  RunResult r = Ferry({"partition", "create", "events", "--now", "2026-12-05", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("PARTITION BY RANGE (\"created_at\")"));
  EXPECT_THAT(r.out, HasSubstr("CREATE TABLE \"public\".\"events_p2026_07\" PARTITION OF"));
  EXPECT_THAT(r.out, HasSubstr("ALTER TABLE \"public\".\"events_ferry_part\" RENAME TO \"events\""));
  EXPECT_THAT(r.out, HasSubstr("dry run: nothing was changed"));
  ExpectNoConversionLeft();
  EXPECT_EQ(One("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass"), "r");
}

TEST_F(PartitionConvertTest, RefusesWhatItCannotConvertAndChangesNothing) {
  if (url_.empty()) return;
  // The primary key lacks the partition column.
  Sql("CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)");
  RunResult pk = Ferry({"partition", "create", "events"});
  EXPECT_EQ(pk.exit_code, 9) << pk.err;
  EXPECT_THAT(pk.err, HasSubstr("does not include the partition column created_at"));
  EXPECT_THAT(pk.err, HasSubstr("ADD PRIMARY KEY"));
  ExpectNoConversionLeft();

  // A foreign key references the table.
  Sql("ALTER TABLE events DROP CONSTRAINT events_pkey, ADD PRIMARY KEY (id, created_at);"
      "CREATE TABLE refs (id bigint, at timestamptz, FOREIGN KEY (id, at) REFERENCES events)");
  RunResult fk = Ferry({"partition", "create", "events"});
  EXPECT_EQ(fk.exit_code, 9) << fk.err;
  EXPECT_THAT(fk.err, HasSubstr("foreign keys reference it (refs_id_at_fkey on refs)"));
  ExpectNoConversionLeft();

  // Not declared in ferry.toml.
  RunResult undeclared = Ferry({"partition", "create", "refs"});
  EXPECT_EQ(undeclared.exit_code, 7) << undeclared.err;
  EXPECT_THAT(undeclared.err, HasSubstr("add a [[partitions]] entry"));

  // Declared, but the table does not exist: ferry.toml has no columns.
  Sql("DROP TABLE refs; DROP TABLE events");
  RunResult missing = Ferry({"partition", "create", "events"});
  EXPECT_EQ(missing.exit_code, 7) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("create it in a migration"));

  // SQLite has no declarative partitions.
  RunResult sqlite = RunFerry({"--database", "sqlite:" + dir_.File("x.db"), "--config",
                               dir_.File("ferry.toml"), "partition", "create", "events"});
  EXPECT_NE(sqlite.exit_code, 0);
  EXPECT_THAT(sqlite.err, HasSubstr("ferry partition works on PostgreSQL"));
}

}  // namespace
}  // namespace ferry::testing
