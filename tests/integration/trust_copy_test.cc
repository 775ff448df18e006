// ferry copy under hostile input and faults (issue 21): a copy onto itself,
// a --where that tries to escape the chunk bounds, odd table names,
// pre-checks that must write nothing, partitioned tables, SIGTERM, a locked
// target. Real PostgreSQL and SQLite files, the built binary end to end.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "drivers/registry.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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

std::string Fingerprint(Connection& c, const std::string& table, const std::string& order) {
  return One(c, "SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY " +
                    order + ")), '') FROM " + table + " x");
}

// The names in a directory with their size and mtime: a command that
// creates, deletes or writes any file there changes it (holds for root too).
std::string Listing(const std::string& dir) {
  std::vector<std::string> lines;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    struct stat st {};
    stat(e.path().c_str(), &st);
    lines.push_back(e.path().filename().string() + " " + std::to_string(st.st_size) + " " +
                    std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

class TrustCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = std::make_unique<FreshPgDatabase>();
    if (IsSkipped()) return;
    ASSERT_TRUE(src_->ok());
    dst_ = std::make_unique<FreshPgDatabase>();
    ASSERT_TRUE(dst_->ok());
    s_ = Connect(src_->url());
    d_ = Connect(dst_->url());
    ASSERT_TRUE(s_ && d_);
  }

  std::unique_ptr<FreshPgDatabase> src_, dst_;
  std::unique_ptr<Connection> s_, d_;
};

// Item 3: the same PostgreSQL table as source and target is refused before
// anything is written (it used to hang: TRUNCATE waited on ferry's own
// snapshot), also when the URL is spelled differently.
TEST_F(TrustCopyTest, CopyOntoItselfIsRefusedOnPostgres) {
  if (IsSkipped()) return;
  ASSERT_OK(s_->Exec("CREATE TABLE t (id int PRIMARY KEY, v text); "
                     "INSERT INTO t SELECT g, 'x' FROM generate_series(1, 50) g")
                .status());
  std::string other_spelling = src_->url() + "?application_name=elsewhere";
  for (const std::string& to : {src_->url(), other_spelling}) {
    RunResult r = RunFerry({"copy", "--from", src_->url(), "--to", to, "--table", "t",
                            "--truncate", "--lock-timeout", "3s"});
    EXPECT_EQ(r.exit_code, 8) << Show(r);
    EXPECT_THAT(r.err, HasSubstr("onto itself")) << Show(r);
  }
  EXPECT_EQ(One(*s_, "SELECT count(*) FROM t"), "50");
  EXPECT_EQ(One(*s_, "SELECT to_regclass('ferry_jobs') IS NULL"), "t");
}

// Item 3: SQLite identity is the file (device + inode), whatever the path.
TEST_F(TrustCopyTest, CopyOntoItselfIsRefusedOnSqliteThroughAnyPath) {
  if (IsSkipped()) return;
  TempDir dir;
  std::filesystem::create_directory(dir.File("sub"));
  {
    auto c = Connect("sqlite:" + dir.File("self.db"));
    ASSERT_TRUE(c);
    ASSERT_OK(c->Exec("CREATE TABLE t (id integer PRIMARY KEY, v text); "
                      "INSERT INTO t VALUES (1, 'a'), (2, 'b')")
                  .status());
  }
  ASSERT_EQ(link(dir.File("self.db").c_str(), dir.File("hard.db").c_str()), 0);
  for (const std::string& to : {"sqlite:" + dir.File("self.db"),
                                "sqlite:" + dir.File("sub/../self.db"),
                                "sqlite:" + dir.path() + "/./self.db",
                                "sqlite:" + dir.File("hard.db")}) {
    RunResult r = RunFerry({"copy", "--to", to, "--table", "t", "--truncate"},
                           {"DATABASE_URL=sqlite:self.db"}, dir.path());
    EXPECT_EQ(r.exit_code, 8) << to << "\n" << Show(r);
    EXPECT_THAT(r.err, HasSubstr("onto itself")) << Show(r);
  }
  auto c = Connect("sqlite:" + dir.File("self.db"));
  EXPECT_EQ(One(*c, "SELECT count(*) FROM t"), "2");
  EXPECT_EQ(One(*c, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'ferry%'"), "0");
}

// Item 3: TRUNCATE on a target table another session has locked gives up
// after --lock-timeout with a clear error, and writes nothing.
TEST_F(TrustCopyTest, TruncateOfALockedTargetTimesOut) {
  if (IsSkipped()) return;
  ASSERT_OK(s_->Exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)").status());
  ASSERT_OK(d_->Exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (7)").status());
  auto holder = Connect(dst_->url());
  ASSERT_OK(holder->Exec("BEGIN; SELECT * FROM t").status());
  RunResult r = RunFerry({"copy", "--from", src_->url(), "--to", dst_->url(), "--table", "t",
                          "--truncate", "--lock-timeout", "300ms"});
  EXPECT_EQ(r.exit_code, 4) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("locked by another session")) << Show(r);
  ASSERT_OK(holder->Exec("ROLLBACK").status());
  EXPECT_EQ(One(*d_, "SELECT string_agg(id::text, ',') FROM t"), "7");
  EXPECT_EQ(One(*d_, "SELECT count(*) FROM ferry_jobs WHERE job_id = 'copy:t'"), "0");
}

// Item 4: a --where that closes the parenthesis around it is refused; it
// used to widen every chunk to the whole table (rows copied many times).
TEST_F(TrustCopyTest, WhereThatEscapesTheChunkIsRefused) {
  if (IsSkipped()) return;
  ASSERT_OK(s_->Exec("CREATE TABLE nokey (id int, v text); "
                     "INSERT INTO nokey SELECT g, 'v' FROM generate_series(1, 100) g")
                .status());
  ASSERT_OK(d_->Exec("CREATE TABLE nokey (id int, v text)").status());
  for (const std::string& where :
       {std::string("id <= 100) OR (id <= 100"), std::string("true) --"),
        std::string("id < 5; DELETE FROM nokey")}) {
    RunResult r = RunFerry({"copy", "--from", src_->url(), "--to", dst_->url(), "--table",
                            "nokey", "--batch-rows", "10", "--where", where});
    EXPECT_EQ(r.exit_code, 8) << where << "\n" << Show(r);
    EXPECT_THAT(r.err, HasSubstr("--where")) << Show(r);
  }
  EXPECT_EQ(One(*d_, "SELECT count(*) FROM nokey"), "0");
  // A good condition still works, with its own parentheses and comments.
  RunResult r = RunFerry({"copy", "--from", src_->url(), "--to", dst_->url(), "--table", "nokey",
                          "--batch-rows", "10", "--where", "(id <= 10) OR id > 95 -- edges"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(One(*d_, "SELECT count(*) || '/' || count(DISTINCT id) FROM nokey"), "15/15");

  // A SQLite source: its own dialect, the same rule.
  TempDir dir;
  {
    auto c = Connect("sqlite:" + dir.File("s.db"));
    ASSERT_OK(c->Exec("CREATE TABLE nokey (id integer, v text); "
                      "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 100) "
                      "INSERT INTO nokey SELECT i, 'v' FROM g")
                  .status());
  }
  ASSERT_OK(d_->Exec("TRUNCATE nokey").status());
  r = RunFerry({"copy", "--from", "sqlite:" + dir.File("s.db"), "--to", dst_->url(), "--table",
                "nokey", "--where", "id <= 100) OR (id <= 100", "--job", "sq"});
  EXPECT_EQ(r.exit_code, 8) << Show(r);
  r = RunFerry({"copy", "--from", "sqlite:" + dir.File("s.db"), "--to", dst_->url(), "--table",
                "nokey", "--where", "id == 3 OR v = ')'", "--job", "sq2"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(One(*d_, "SELECT count(*) FROM nokey"), "1");
}

// Item 5: names with a space, a tab or a dot, with --create-tables and --all,
// PostgreSQL to PostgreSQL and to SQLite, and back from SQLite.
TEST_F(TrustCopyTest, OddTableNamesCopyWithCreateTablesAndAll) {
  if (IsSkipped()) return;
  ASSERT_OK(s_->Exec("CREATE TABLE \"Mixed Case\" (id int PRIMARY KEY, v text); "
                     "CREATE TABLE \"a.b\" (id int PRIMARY KEY, v text); "
                     "CREATE TABLE \"tab\tname\" (x int); "
                     "INSERT INTO \"Mixed Case\" SELECT g, 'm' FROM generate_series(1, 30) g; "
                     "INSERT INTO \"a.b\" SELECT g, 'd' FROM generate_series(1, 20) g; "
                     "INSERT INTO \"tab\tname\" SELECT g FROM generate_series(1, 10) g")
                .status());
  RunResult r = RunFerry({"copy", "--from", src_->url(), "--to", dst_->url(), "--all",
                          "--create-tables", "--batch-rows", "7"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(One(*d_, "SELECT count(*) FROM \"Mixed Case\""), "30");
  EXPECT_EQ(One(*d_, "SELECT count(*) FROM \"a.b\""), "20");
  EXPECT_EQ(One(*d_, "SELECT count(*) FROM \"tab\tname\""), "10");

  TempDir dir;
  const std::string lite = "sqlite:" + dir.File("odd.db");
  r = RunFerry({"copy", "--from", src_->url(), "--to", lite, "--all", "--create-tables"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  auto c = Connect(lite);
  EXPECT_EQ(One(*c, "SELECT count(*) FROM \"a.b\""), "20");
  EXPECT_EQ(One(*c, "SELECT count(*) FROM \"Mixed Case\""), "30");

  // Back from SQLite into a fresh PostgreSQL database, one table by name.
  FreshPgDatabase back;
  ASSERT_TRUE(back.ok());
  r = RunFerry({"copy", "--from", lite, "--to", back.url(), "--table", "a.b", "--create-tables"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  auto b = Connect(back.url());
  EXPECT_EQ(One(*b, "SELECT count(*) FROM \"a.b\""), "20");
}

// Item 6: a copy that fails its checks writes nothing: no control tables on
// a PostgreSQL target, no new SQLite file (also for --dry-run).
TEST_F(TrustCopyTest, FailedPrechecksWriteNothing) {
  if (IsSkipped()) return;
  ASSERT_OK(s_->Exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a')")
                .status());
  RunResult r = RunFerry({"copy", "--from", src_->url(), "--to", dst_->url(), "--table", "t"});
  EXPECT_EQ(r.exit_code, 7) << Show(r);  // target table missing, no --create-tables
  r = RunFerry({"copy", "--from", src_->url(), "--to", dst_->url(), "--table", "t",
                "--create-tables", "--where", "nosuchcolumn > 1"});
  EXPECT_EQ(r.exit_code, 8) << Show(r);
  EXPECT_EQ(One(*d_, "SELECT count(*) FROM pg_class WHERE relname LIKE 'ferry%' OR relname = 't'"),
            "0");

  TempDir dir;
  const std::string before = Listing(dir.path());
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"--where", "nosuchcolumn > 1"},
        std::vector<std::string>{"--table", "missing"}, std::vector<std::string>{"--dry-run"}}) {
    std::vector<std::string> args = {"copy", "--from", src_->url(), "--to",
                                     "sqlite:" + dir.File("new.db"), "--table", "t",
                                     "--create-tables"};
    args.insert(args.end(), extra.begin(), extra.end());
    r = RunFerry(args);
    EXPECT_NE(r.exit_code, 2) << Show(r);
    EXPECT_EQ(Listing(dir.path()), before) << "a file appeared: " << Show(r);
  }
  // The checks passing, the file is made.
  r = RunFerry({"copy", "--from", src_->url(), "--to", "sqlite:" + dir.File("new.db"), "--table",
                "t", "--create-tables"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(std::filesystem::exists(dir.File("new.db")));
}

// Item 7: a partitioned source table is copied (parent: rows of every
// partition), in one chunk or many, with or without --where; the plan says
// how the target is made.
TEST_F(TrustCopyTest, PartitionedTablesCopy) {
  if (IsSkipped()) return;
  ASSERT_OK(s_->Exec(R"sql(
CREATE TABLE p (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (1000);
CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (1000) TO (2000);
CREATE TABLE p3 PARTITION OF p FOR VALUES FROM (2000) TO (3000);
INSERT INTO p SELECT g, md5(g::text) FROM generate_series(0, 2999) g;
CREATE TABLE q (id int, v text) PARTITION BY LIST ((id % 2));
CREATE TABLE q0 PARTITION OF q FOR VALUES IN (0);
CREATE TABLE q1 PARTITION OF q FOR VALUES IN (1);
INSERT INTO q SELECT g, md5(g::text) FROM generate_series(1, 2000) g;
ANALYZE;)sql")
                .status());
  RunResult r = RunFerry({"copy", "--from", src_->url(), "--to", dst_->url(), "--table", "p",
                          "--create-tables", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_THAT(r.out, HasSubstr("partitioned")) << Show(r);
  EXPECT_THAT(r.out, HasSubstr("plain table")) << Show(r);

  // One chunk, no --where: COPY p TO STDOUT is refused by PostgreSQL.
  r = RunFerry({"copy", "--from", src_->url(), "--to", dst_->url(), "--table", "p",
                "--create-tables"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(Fingerprint(*s_, "p", "id"), Fingerprint(*d_, "p", "id"));
  // Many chunks (key ranges), and with --where.
  r = RunFerry({"copy", "--from", src_->url(), "--to", dst_->url(), "--table", "p", "--truncate",
                "--batch-rows", "250", "--job", "p-many"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(Fingerprint(*s_, "p", "id"), Fingerprint(*d_, "p", "id"));
  r = RunFerry({"copy", "--from", src_->url(), "--to", dst_->url(), "--table", "p", "--truncate",
                "--where", "id % 3 = 0", "--job", "p-where"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(One(*d_, "SELECT count(*) FROM p"), "1000");

  // No primary key: ctid page ranges over every partition, several chunks.
  r = RunFerry({"copy", "--from", src_->url(), "--to", dst_->url(), "--table", "q",
                "--create-tables", "--batch-rows", "100", "--split", "pages"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(Fingerprint(*s_, "q", "id"), Fingerprint(*d_, "q", "id"));
  EXPECT_EQ(One(*d_, "SELECT count(*) > 1 FROM ferry_chunks WHERE job_id = 'copy:q'"), "t");

  // To SQLite.
  TempDir dir;
  r = RunFerry({"copy", "--from", src_->url(), "--to", "sqlite:" + dir.File("p.db"), "--table",
                "p", "--create-tables"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  auto lite = Connect("sqlite:" + dir.File("p.db"));
  EXPECT_EQ(One(*lite, "SELECT count(*) FROM p"), "3000");

  // A target that exists partitioned keeps its partitions; the plan says so.
  FreshPgDatabase parted;
  ASSERT_TRUE(parted.ok());
  auto pt = Connect(parted.url());
  ASSERT_OK(pt->Exec("CREATE TABLE p (id int PRIMARY KEY, v text) PARTITION BY RANGE (id); "
                     "CREATE TABLE lo PARTITION OF p FOR VALUES FROM (0) TO (1500); "
                     "CREATE TABLE hi PARTITION OF p FOR VALUES FROM (1500) TO (3000)")
                .status());
  r = RunFerry({"copy", "--from", src_->url(), "--to", parted.url(), "--table", "p", "--dry-run"});
  EXPECT_THAT(r.out, HasSubstr("exists partitioned")) << Show(r);
  r = RunFerry({"copy", "--from", src_->url(), "--to", parted.url(), "--table", "p"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(One(*pt, "SELECT count(*) FROM lo") + "/" + One(*pt, "SELECT count(*) FROM hi"),
            "1500/1500");
}

// Item 8: SIGTERM stops a copy cleanly: no lease left, the resume command
// printed, exit 1; running it finishes with every row exactly once.
TEST_F(TrustCopyTest, SigtermStopsCleanlyAndTheResumeIsExact) {
  if (IsSkipped()) return;
  ASSERT_OK(s_->Exec("CREATE TABLE k (id bigint PRIMARY KEY, v text); INSERT INTO k SELECT g, "
                     "repeat(md5(g::text), 4) FROM generate_series(1, 300000) g; ANALYZE k;")
                .status());
  TempDir dir;
  std::vector<std::string> args = {"copy", "--from", src_->url(), "--to", dst_->url(), "--table",
                                   "k", "--create-tables", "--batch-rows", "3000", "--workers",
                                   "2"};
  int pid = StartFerry(args, dir.File("first.out"));
  bool some_done = false;
  for (int i = 0; i < 1500 && !some_done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto r = d_->Query("SELECT count(*) FROM ferry_chunks WHERE state = 'done'");
    some_done = r.ok() && !r->empty() && std::atoi(r->Text(0, 0).c_str()) >= 2;
  }
  ASSERT_TRUE(some_done) << ReadFile(dir.File("first.out") + ".err");
  kill(pid, SIGTERM);
  EXPECT_EQ(WaitFerry(pid), 1) << ReadFile(dir.File("first.out") + ".err");
  const std::string err = ReadFile(dir.File("first.out") + ".err");
  EXPECT_THAT(err, HasSubstr("stopped by a signal")) << err;
  EXPECT_THAT(err, HasSubstr("to resume: ferry copy --from")) << err;
  EXPECT_EQ(One(*d_, "SELECT count(*) FROM ferry_chunks WHERE state = 'leased'"), "0");
  EXPECT_EQ(One(*d_, "SELECT state FROM ferry_jobs WHERE job_id = 'copy:k'"), "cancelled");
  EXPECT_EQ(One(*d_, "SELECT count(*) FROM k"),
            One(*d_, "SELECT coalesce(sum(\"rows\"), 0) FROM ferry_chunks WHERE state = 'done'"));
  EXPECT_NE(One(*d_, "SELECT count(*) FROM k"), "300000") << "stopped too late to test";
  // --create-tables builds the primary key after the data: not yet.
  const std::string has_key =
      "SELECT count(*) FROM pg_index WHERE indrelid = 'k'::regclass AND indisprimary";
  EXPECT_EQ(One(*d_, has_key), "0");

  RunResult r = RunFerry(args);
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_THAT(r.out, HasSubstr("(resumed)"));
  EXPECT_EQ(Fingerprint(*s_, "k", "id"), Fingerprint(*d_, "k", "id"));
  EXPECT_EQ(One(*d_, has_key), "1");
  r = RunFerry({"verify", "--from", src_->url(), "--to", dst_->url(), "--table", "k"});
  EXPECT_EQ(r.exit_code, 0) << Show(r);
}

}  // namespace
}  // namespace ferry::testing
