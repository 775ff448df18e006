// ferry copy CQL -> PostgreSQL on the real servers: PostgreSQL -> CQL with
// the forward copy, then back into a fresh PostgreSQL database, rows
// compared; a composite partition key with map/set columns written in CQL;
// kill -9 and resume; bad input refused before writing. Every test uses a
// keyspace and PostgreSQL databases of its own. Both servers are required:
// a missing FERRY_TEST_CQL_URL or FERRY_TEST_PG_URL fails the test.
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/url.h"
#include "drivers/registry.h"
#include "test_util.h"

namespace ferry {
namespace {

using ::ferry::testing::FreshPgDatabase;
using ::ferry::testing::ReadFile;
using ::ferry::testing::RunFerry;
using ::ferry::testing::RunResult;
using ::ferry::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Show(const RunResult& r) { return "stdout:\n" + r.out + "\nstderr:\n" + r.err; }

class CqlCopyBackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* cql = std::getenv("FERRY_TEST_CQL_URL");
    ASSERT_NE(cql, nullptr) << "FERRY_TEST_CQL_URL is not set: source the test servers' env";
    ASSERT_NE(std::getenv("FERRY_TEST_PG_URL"), nullptr) << "FERRY_TEST_PG_URL is not set";
    cql_url_ = cql;
    src_db_ = std::make_unique<FreshPgDatabase>();
    dst_db_ = std::make_unique<FreshPgDatabase>();
    ASSERT_TRUE(src_db_->ok() && dst_db_->ok());
    ASSERT_OK_AND_ASSIGN(src_, OpenConnection(src_db_->url()));
    ASSERT_OK_AND_ASSIGN(dst_, OpenConnection(dst_db_->url()));
    Exec(*src_, "SET TimeZone = 'UTC'");
    Exec(*dst_, "SET TimeZone = 'UTC'");
    static std::atomic<int> n{0};
    ks_ = fmt::format("cb_{}_{}", getpid(), n++);
    ASSERT_OK_AND_ASSIGN(cql_, OpenConnection(cql_url_));
    Cql(fmt::format("CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {{'class': "
                    "'SimpleStrategy', 'replication_factor': 1}}",
                    ks_));
    ks_url_ = cql_url_.substr(0, cql_url_.rfind('/') + 1) + ks_;
  }
  void TearDown() override {
    if (cql_) (void)cql_->Exec("DROP KEYSPACE IF EXISTS " + ks_);
  }
  void Cql(const std::string& cql) {
    auto r = cql_->Exec(cql);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  static void Exec(Connection& c, const std::string& sql) {
    auto r = c.Exec(sql);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  static std::string One(Connection& c, const std::string& sql) {
    auto r = c.Query(sql);
    EXPECT_TRUE(r.ok() && !r->empty()) << (r.ok() ? "no row" : r.status().ToString());
    return r.ok() && !r->empty() ? (r->IsNull(0, 0) ? "<null>" : r->Text(0, 0)) : "";
  }
  // Every row of `table` as text (columns `cols`), in key order.
  static std::string Rows(Connection& c, const std::string& table, const std::string& cols,
                          const std::string& order) {
    return One(c, fmt::format("SELECT coalesce(string_agg(ROW({})::text, E'\\n' ORDER BY {}), '') "
                              "FROM {}",
                              cols, order, table));
  }
  RunResult Forward(const TempDir& dir, const std::string& table) {
    return RunFerry({"copy", "--from", src_db_->url(), "--to", ks_url_, "--table", table,
                     "--create-tables", "--control", src_db_->url()},
                    {}, dir.path());
  }
  RunResult Back(const TempDir& dir, std::vector<std::string> extra) {
    std::vector<std::string> args = {"copy", "--from", ks_url_, "--to", dst_db_->url()};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunFerry(args, {}, dir.path());
  }
  bool RangesTableExists() { return One(*dst_, "SELECT to_regclass('ferry_copy_ranges') IS NOT NULL") == "t"; }

  std::string cql_url_, ks_, ks_url_;
  std::unique_ptr<FreshPgDatabase> src_db_, dst_db_;
  std::unique_ptr<Connection> src_, dst_, cql_;
};

// PostgreSQL -> CQL -> a fresh PostgreSQL: every supported type, NULLs,
// arrays; the rows come back identical, in tables of the same types.
TEST_F(CqlCopyBackTest, RoundTripsEveryTypeBackToPostgres) {
  Exec(*src_,
       "CREATE TABLE items (id bigint PRIMARY KEY, name text, qty integer, uid uuid, "
       "at timestamptz, ok boolean, score double precision, price numeric, data bytea, "
       "day date, tags text[], nums integer[]);"
       "INSERT INTO items VALUES "
       "(1, E'tab\\there\\nnew line \\\\ back', 7, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', "
       " '2024-02-29 12:34:56.789+00', true, -1.0000000000000002, 12345678901234567890.0123456789, "
       " '\\x00ff10', '2024-02-29', ARRAY['a b', 'it''s', 'q\"\\\\', '\\N'], ARRAY[3, 1, 2]),"
       "(2, '', -2147483648, NULL, '1970-01-01 00:00:00+00', false, 1e308, -0.50, '\\x', "
       " '0001-01-01', ARRAY['x'], ARRAY[-1]),"
       "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
       "INSERT INTO items (id, name, qty) SELECT g, 'n' || g, g FROM generate_series(4, 300) g");
  TempDir dir;
  RunResult f = Forward(dir, "items");
  ASSERT_EQ(f.exit_code, 0) << Show(f);

  RunResult b = Back(dir, {"--table", "items", "--create-tables", "--workers", "3", "--json"});
  ASSERT_EQ(b.exit_code, 0) << Show(b);
  EXPECT_THAT(b.out, HasSubstr("\"event\":\"summary\""));
  EXPECT_THAT(b.out, HasSubstr("\"rows_migrated\":300"));
  const std::string cols = "id, name, qty, uid, at, ok, score, price, data, day, tags, nums";
  EXPECT_EQ(Rows(*dst_, "items", cols, "id"), Rows(*src_, "items", cols, "id"));
  const std::string types =
      "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attname) "
      "FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0";
  EXPECT_EQ(One(*dst_, types), One(*src_, types));
  EXPECT_EQ(One(*dst_, "SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a ON "
                       "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indisprimary "
                       "AND i.indrelid = 'items'::regclass"),
            "id");

  // The same command again: already done, nothing copied twice.
  RunResult again = Back(dir, {"--table", "items", "--create-tables"});
  ASSERT_EQ(again.exit_code, 0) << Show(again);
  EXPECT_THAT(again.out, HasSubstr("already finished"));
  EXPECT_EQ(One(*dst_, "SELECT count(*) FROM items"), "300");
}

// A table made in CQL: composite partition key, clustering column, map and
// set columns, NULLs; --dry-run first writes nothing.
TEST_F(CqlCopyBackTest, CompositeKeysMapsAndSets) {
  Cql(fmt::format("CREATE TABLE {}.ev (tenant int, day date, seq int, attrs map<text, int>, "
                  "labels set<text>, at timestamp, note text, PRIMARY KEY ((tenant, day), seq))",
                  ks_));
  Cql(fmt::format("INSERT INTO {}.ev (tenant, day, seq, attrs, labels, at, note) VALUES "
                  "(1, '2024-05-01', 1, {{'a': 1, 'b''c': -2}}, {{'x', 'y z'}}, "
                  "'2024-05-01T10:20:30.500Z', 'hello')",
                  ks_));
  Cql(fmt::format("INSERT INTO {}.ev (tenant, day, seq) VALUES (1, '2024-05-01', 2)", ks_));
  Cql(fmt::format("INSERT INTO {}.ev (tenant, day, seq, note) VALUES (2, '2024-05-02', 1, 'two')", ks_));
  TempDir dir;
  RunResult plan = Back(dir, {"--table", "ev", "--create-tables", "--dry-run"});
  ASSERT_EQ(plan.exit_code, 0) << Show(plan);
  EXPECT_THAT(plan.out, HasSubstr("PRIMARY KEY (\"tenant\", \"day\", \"seq\")"));
  EXPECT_THAT(plan.out, HasSubstr("token(\"tenant\", \"day\")"));
  EXPECT_FALSE(RangesTableExists());
  EXPECT_EQ(One(*dst_, "SELECT to_regclass('ev') IS NULL"), "t");

  RunResult b = Back(dir, {"--table", "ev", "--create-tables"});
  ASSERT_EQ(b.exit_code, 0) << Show(b);
  EXPECT_EQ(Rows(*dst_, "ev", "tenant, day, seq, attrs, labels, at, note", "tenant, day, seq"),
            "(1,2024-05-01,1,\"{\"\"a\"\": 1, \"\"b'c\"\": -2}\",\"{x,\"\"y z\"\"}\","
            "\"2024-05-01 10:20:30.5+00\",hello)\n"
            "(1,2024-05-01,2,,,,)\n"
            "(2,2024-05-02,1,,,,two)");
  EXPECT_EQ(One(*dst_, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                       "'ev'::regclass AND attname = 'attrs'"),
            "jsonb");
}

// kill -9 while ranges are being copied; the next run copies only the
// ranges that were not done, and every row is there exactly once.
TEST_F(CqlCopyBackTest, KillNineThenResumeHasNoDuplicates) {
  Exec(*src_, "CREATE TABLE big (id bigint PRIMARY KEY, v text); INSERT INTO big SELECT g, md5(g::text) "
              "FROM generate_series(1, 20000) g");
  TempDir dir;
  RunResult f = Forward(dir, "big");
  ASSERT_EQ(f.exit_code, 0) << Show(f);

  std::vector<std::string> args = {"copy",    "--from",     ks_url_, "--to",      dst_db_->url(),
                                   "--table", "big",        "--create-tables", "--workers", "2",
                                   "--max-rate", "4000"};
  int pid = ::ferry::testing::StartFerry(args, dir.File("first.out"));
  int done = 0;
  for (int i = 0; i < 3000 && done < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto q = dst_->Query("SELECT count(*) FROM ferry_copy_ranges WHERE state = 'done'");
    done = q.ok() && !q->empty() ? std::atoi(q->Text(0, 0).c_str()) : 0;
  }
  ASSERT_GE(done, 3) << ReadFile(dir.File("first.out") + ".err");
  kill(pid, SIGKILL);
  EXPECT_EQ(::ferry::testing::WaitFerry(pid), 128 + SIGKILL);
  int total = std::stoi(One(*dst_, "SELECT count(*) FROM ferry_copy_ranges"));
  int done_before = std::stoi(One(*dst_, "SELECT count(*) FROM ferry_copy_ranges WHERE state = 'done'"));
  ASSERT_LT(done_before, total) << "killed too late to test";
  // What is in the table is exactly the rows of the done ranges.
  EXPECT_EQ(One(*dst_, "SELECT count(*) FROM big"),
            One(*dst_, "SELECT sum(rows) FROM ferry_copy_ranges WHERE state = 'done'"));

  args.resize(args.size() - 2);  // no rate limit now
  args.push_back("--json");
  RunResult r = RunFerry(args, {}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  int started = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("event", "") == "chunk_started") ++started;
  }
  EXPECT_EQ(started, total - done_before);
  EXPECT_THAT(r.out, HasSubstr("\"resumed\":true"));
  EXPECT_EQ(One(*dst_, "SELECT count(*) FROM big"), "20000");
  EXPECT_EQ(Rows(*dst_, "big", "id, v", "id"), Rows(*src_, "big", "id, v", "id"));
  RunResult st = RunFerry({"copy", "--to", dst_db_->url(), "--status", "copy:big", "--json"}, {}, dir.path());
  EXPECT_EQ(st.exit_code, 0) << Show(st);
  EXPECT_THAT(st.out, HasSubstr("\"state\":\"done\""));
  EXPECT_THAT(st.out, HasSubstr("20000"));
  // ferry verify agrees: the PostgreSQL copy against the CQL table.
  RunResult v = RunFerry({"verify", "--from", dst_db_->url(), "--to", ks_url_, "--table", "big"}, {},
                         dir.path());
  EXPECT_EQ(v.exit_code, 0) << Show(v);
}

// Bad input is refused before anything is written on PostgreSQL, and the
// password of the CQL URL never appears in the output.
TEST_F(CqlCopyBackTest, RefusesBadInputBeforeWriting) {
  Cql(fmt::format("CREATE TABLE {}.ev (tenant int, day date, seq int, note text, "
                  "PRIMARY KEY ((tenant, day), seq))",
                  ks_));
  Cql(fmt::format("CREATE TABLE {}.odd (id int PRIMARY KEY, pair frozen<tuple<int, text>>)", ks_));
  Cql(fmt::format("INSERT INTO {}.ev (tenant, day, seq, note) VALUES (1, '2024-05-01', 1, 'x')", ks_));
  ASSERT_OK_AND_ASSIGN(Url url, Url::Parse(cql_url_));
  const std::string password = url.password().Reveal();
  TempDir dir;
  auto expect_refused = [&](const RunResult& r, int code, const std::string& what) {
    EXPECT_EQ(r.exit_code, code) << Show(r);
    EXPECT_THAT(r.err + r.out, HasSubstr(what)) << Show(r);
    if (!password.empty()) {
      EXPECT_THAT(r.err + r.out, Not(HasSubstr(password)));
    }
    EXPECT_FALSE(RangesTableExists()) << what;
  };
  expect_refused(Back(dir, {"--table", "nosuch", "--create-tables"}), 7, "nosuch does not exist");
  expect_refused(Back(dir, {"--table", "odd", "--create-tables"}), 8, "tuple<int, text>");
  expect_refused(Back(dir, {"--table", "ev"}), 7, "--create-tables");
  expect_refused(Back(dir, {"--table", "ev", "--create-tables", "--where", "seq > 1"}), 8, "--where");

  Exec(*dst_, "CREATE TABLE ev (tenant int, day date, seq int, note text, PRIMARY KEY (tenant, seq))");
  expect_refused(Back(dir, {"--table", "ev", "--create-tables"}), 9, "primary key (tenant, seq)");
  Exec(*dst_, "DROP TABLE ev; CREATE TABLE ev (tenant int, day date, seq int, note integer, "
              "PRIMARY KEY (tenant, day, seq))");
  expect_refused(Back(dir, {"--table", "ev"}), 8, "note is integer");
  Exec(*dst_, "ALTER TABLE ev ALTER COLUMN note TYPE text; INSERT INTO ev VALUES (9, '2024-01-01', 9, 'old')");
  expect_refused(Back(dir, {"--table", "ev"}), 9, "already has rows");
  EXPECT_EQ(One(*dst_, "SELECT count(*) FROM ev"), "1");

  // With --truncate the old row goes and the CQL row comes.
  RunResult ok = Back(dir, {"--table", "ev", "--truncate"});
  ASSERT_EQ(ok.exit_code, 0) << Show(ok);
  EXPECT_EQ(Rows(*dst_, "ev", "tenant, day, seq, note", "tenant"), "(1,2024-05-01,1,x)");
}

}  // namespace
}  // namespace ferry
