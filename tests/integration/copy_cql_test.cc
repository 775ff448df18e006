// ferry copy PostgreSQL -> CQL on the real servers (PostgreSQL and the
// throw-away Cassandra node): one-to-one and mapped copies, --where,
// --dry-run, kill -9 and resume, dual writes, refusals of bad input.
// Every test uses a keyspace of its own.
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/url.h"
#include "drivers/cql/cql_connection.h"
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

class CqlCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cql_url_ = ::ferry::testing::CqlUrl();
    if (cql_url_.empty()) return;
    pg_ = std::make_unique<FreshPgDatabase>();
    ASSERT_TRUE(pg_->ok());
    auto s = OpenConnection(pg_->url());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    src_ = std::move(*s);
    static std::atomic<int> n{0};
    ks_ = fmt::format("cc_{}_{}", getpid(), n++);
    auto url = Url::Parse(cql_url_);
    ASSERT_TRUE(url.ok());
    auto c = cql::CqlConnection::Open(*url, {});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cql_ = std::move(*c);
    Cql(fmt::format("CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {{'class': "
                    "'SimpleStrategy', 'replication_factor': 1}}",
                    ks_));
    // The target URL names the test's keyspace.
    ks_url_ = cql_url_.substr(0, cql_url_.rfind('/') + 1) + ks_;
  }
  void TearDown() override {
    if (cql_) (void)cql_->Exec("DROP KEYSPACE IF EXISTS " + ks_);
  }
  bool Skipped() const { return cql_url_.empty(); }
  void Pg(const std::string& sql) {
    auto r = src_->Exec(sql);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  void Cql(const std::string& cql) {
    auto r = cql_->Exec(cql);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  QueryResult CqlQuery(const std::string& cql) {
    auto r = cql_->Query(cql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : QueryResult();
  }
  std::string PgOne(const std::string& sql) {
    auto r = src_->Query(sql);
    EXPECT_TRUE(r.ok() && !r->empty()) << (r.ok() ? "no row" : r.status().ToString());
    return r.ok() && !r->empty() ? r->Text(0, 0) : "";
  }
  std::string CqlCount(const std::string& table) {
    QueryResult r = CqlQuery(fmt::format("SELECT count(*) FROM {}.{}", ks_, table));
    return r.empty() ? "" : r.Text(0, 0);
  }
  // ferry copy from the test database to the test keyspace, in `dir`.
  RunResult Copy(const TempDir& dir, std::vector<std::string> extra) {
    std::vector<std::string> args = {"copy", "--from", pg_->url(), "--to", ks_url_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunFerry(args, {}, dir.path());
  }
  void CreateChat() {
    Pg("CREATE TABLE messages (id bigint PRIMARY KEY, room_id int NOT NULL, content text, "
       "created_at timestamptz, updated_at timestamptz NOT NULL);"
       "INSERT INTO messages SELECT g, g % 3, 'm' || g, timestamptz '2024-05-01 00:00:00+00' + "
       "g * interval '7 hours', timestamptz '2024-06-01 00:00:00+00' + g * interval '1 second' "
       "FROM generate_series(1, 60) g");
  }
  std::string ChatMap(const TempDir& dir, const std::string& extra = "") {
    dir.Write("chat.toml", fmt::format(R"toml([[copy.map]]
source = "messages"
target = "{}.messages_by_room"
partition_key = ["room_id", "bucket"]
clustering = ["created_at DESC", "message_id"]
ttl = 86400
write_timestamp = "updated_at"
{}
[copy.map.columns]
room_id = "room_id"
bucket = "day(created_at)"
created_at = "created_at"
message_id = "id"
body = "content"
)toml",
                                       ks_, extra));
    return dir.File("chat.toml");
  }

  std::string cql_url_, ks_, ks_url_;
  std::unique_ptr<FreshPgDatabase> pg_;
  std::unique_ptr<Connection> src_;
  std::unique_ptr<cql::CqlConnection> cql_;
};

TEST_F(CqlCopyTest, OneToOneManyTypesReadBackEqual) {
  if (Skipped()) return;
  Pg("CREATE TYPE mood AS ENUM ('calm', 'wild');"
     "CREATE TABLE kinds (id int, k2 text, s smallint, b bigint, n numeric(12,3), r real, "
     "d double precision, ok boolean, v varchar(10), c char(3), bl bytea, u uuid, ts timestamptz, "
     "tl timestamp, dt date, tm time, j jsonb, ip inet, arr int[], tags text[], iv interval, "
     "m mood, PRIMARY KEY (id, k2));"
     "INSERT INTO kinds VALUES (1, 'a', -3, 9007199254740993, 12345.678, 1.5, 0.1, true, 'vc', "
     "'ab', '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-05-01 10:20:30.123+02', "
     "'2024-05-01 10:20:30', '1999-12-31', '23:59:58.25', '{\"x\": [1, 2]}', '192.168.0.1', "
     "'{1,2,3}', '{\"it''s\",b}', '1 mon 2 days 00:00:03', 'wild'),"
     "(2, 'b', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
     "NULL, NULL, NULL, NULL, NULL, NULL)");
  TempDir dir;
  RunResult r = Copy(dir, {"--table", "kinds", "--create-tables"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(std::filesystem::exists(dir.File(".ferry/copy-control.db")));
  QueryResult q = CqlQuery(fmt::format(
      "SELECT s, b, n, r, d, ok, v, c, bl, u, ts, tl, dt, tm, j, ip, arr, tags, iv, m FROM "
      "{}.kinds WHERE id = 1 AND k2 = 'a'",
      ks_));
  ASSERT_EQ(q.rows.size(), 1u);
  std::vector<std::string> want = {"-3", "9007199254740993", "12345.678", "1.5", "0.1", "true",
                                   "vc", "ab ", "0x00ff10", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                                   "2024-05-01T08:20:30.123Z", "2024-05-01T10:20:30.000Z",
                                   "1999-12-31", "23:59:58.250000000", "{\"x\": [1, 2]}",
                                   "192.168.0.1", "[1, 2, 3]", "['it''s', 'b']", "1mo2d3s", "wild"};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(q.Text(0, i), want[i]) << "column " << i;
  }
  QueryResult nulls = CqlQuery(fmt::format("SELECT s, ts, arr FROM {}.kinds WHERE id = 2 AND k2 = 'b'", ks_));
  ASSERT_EQ(nulls.rows.size(), 1u);
  EXPECT_FALSE(nulls.rows[0][0].has_value());
  EXPECT_FALSE(nulls.rows[0][1].has_value());
}

TEST_F(CqlCopyTest, MappedCopyBucketsOrderTtlAndWriteTime) {
  if (Skipped()) return;
  CreateChat();
  TempDir dir;
  std::string map = ChatMap(dir);
  RunResult r = Copy(dir, {"--table", "messages", "--map", map, "--create-tables", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_THAT(r.out, HasSubstr("\"event\":\"chunk_done\""));
  EXPECT_THAT(r.out, HasSubstr("\"rows_migrated\":60"));
  EXPECT_EQ(CqlCount("messages_by_room"), "60");
  // Message 3: room 0, created 2024-05-01 21:00 -> bucket 2024-05-01.
  QueryResult q = CqlQuery(fmt::format(
      "SELECT message_id, body, TTL(body), WRITETIME(body) FROM {}.messages_by_room WHERE "
      "room_id = 0 AND bucket = '2024-05-01'",
      ks_));
  ASSERT_EQ(q.rows.size(), 1u);
  EXPECT_EQ(q.Text(0, 0), "3");
  EXPECT_EQ(q.Text(0, 1), "m3");  // renamed content -> body
  int ttl = std::stoi(q.Text(0, 2));
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 86400);
  EXPECT_EQ(q.Text(0, 3), PgOne("SELECT floor(extract(epoch from updated_at) * 1000000)::bigint::text "
                                "FROM messages WHERE id = 3"));
  // Clustering created_at DESC: newest first within a partition.
  QueryResult day = CqlQuery(fmt::format(
      "SELECT message_id FROM {}.messages_by_room WHERE room_id = 1 AND bucket = '2024-05-03'", ks_));
  ASSERT_GE(day.rows.size(), 2u);
  EXPECT_GT(std::stoll(day.Text(0, 0)), std::stoll(day.Text(1, 0)));
  // A second copy into the existing table (same key) is accepted.
  r = Copy(dir, {"--table", "messages", "--map", map, "--restart"});
  EXPECT_EQ(r.exit_code, 0) << Show(r);
}

TEST_F(CqlCopyTest, WhereCopiesTheSubset) {
  if (Skipped()) return;
  CreateChat();
  TempDir dir;
  // The mapping from ./ferry.toml this time (no --map).
  std::string map = ReadFile(ChatMap(dir));
  dir.Write("ferry.toml", "log_level = \"warn\"\n\n" + map);
  RunResult r = Copy(dir, {"--table", "messages", "--create-tables", "--where", "room_id = 1",
                           "--max-rate", "1000"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(CqlCount("messages_by_room"), PgOne("SELECT count(*) FROM messages WHERE room_id = 1"));
  QueryResult other = CqlQuery(fmt::format(
      "SELECT count(*) FROM {}.messages_by_room WHERE room_id = 0 AND bucket = '2024-05-01'", ks_));
  EXPECT_EQ(other.Text(0, 0), "0");
}

TEST_F(CqlCopyTest, DryRunWritesNothing) {
  if (Skipped()) return;
  CreateChat();
  TempDir dir;
  RunResult r = Copy(dir, {"--table", "messages", "--map", ChatMap(dir), "--create-tables", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_THAT(r.out, HasSubstr("CREATE TABLE IF NOT EXISTS"));
  EXPECT_THAT(r.out, HasSubstr("WITH CLUSTERING ORDER BY (\"created_at\" DESC, \"message_id\" ASC)"));
  EXPECT_THAT(r.out, HasSubstr("USING TTL ? AND TIMESTAMP ?"));
  EXPECT_FALSE(std::filesystem::exists(dir.File(".ferry")));
  QueryResult t = CqlQuery(fmt::format(
      "SELECT table_name FROM system_schema.tables WHERE keyspace_name = '{}'", ks_));
  EXPECT_TRUE(t.empty());
}

// kill -9 once some chunks are done; the resumed run starts only the chunks
// that were not done, and every row is there.
TEST_F(CqlCopyTest, KillNineThenResumeSkipsDoneChunks) {
  if (Skipped()) return;
  Pg("CREATE TABLE big (id bigint PRIMARY KEY, v text); INSERT INTO big SELECT g, md5(g::text) "
     "FROM generate_series(1, 40000) g; ANALYZE big");
  TempDir dir;
  std::vector<std::string> args = {"copy", "--from", pg_->url(), "--to", ks_url_, "--table", "big",
                                   "--create-tables", "--batch-rows", "1000", "--workers", "2",
                                   "--max-rate", "8000", "--control", pg_->url()};
  int pid = ::ferry::testing::StartFerry(args, dir.File("first.out"));
  int done = 0;
  for (int i = 0; i < 3000 && done < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto q = src_->Query("SELECT count(*) FROM ferry_chunks WHERE state = 'done'");
    done = q.ok() && !q->empty() ? std::atoi(q->Text(0, 0).c_str()) : 0;
  }
  ASSERT_GE(done, 4) << ReadFile(dir.File("first.out") + ".err");
  kill(pid, SIGKILL);
  EXPECT_EQ(::ferry::testing::WaitFerry(pid), 128 + SIGKILL);
  int total = std::stoi(PgOne("SELECT count(*) FROM ferry_chunks"));
  int done_before = std::stoi(PgOne("SELECT count(*) FROM ferry_chunks WHERE state = 'done'"));
  ASSERT_LT(done_before, total) << "killed too late to test";

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
  EXPECT_EQ(CqlCount("big"), "40000");
  QueryResult v = CqlQuery(fmt::format("SELECT v FROM {}.big WHERE id = 31337", ks_));
  ASSERT_EQ(v.rows.size(), 1u);
  EXPECT_EQ(v.Text(0, 0), PgOne("SELECT md5('31337')"));
}

// The application writes newer versions to CQL with its own write timestamp
// while the copy runs (re-run here with --restart, which re-writes every
// row): the newer application value wins.
TEST_F(CqlCopyTest, DualWriteNewerApplicationWriteWins) {
  if (Skipped()) return;
  CreateChat();
  TempDir dir;
  std::string map = ChatMap(dir);
  RunResult r = Copy(dir, {"--table", "messages", "--map", map, "--create-tables"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  // The application edits message 3 (room 0, bucket 2024-05-01) after the copy read it.
  std::string later = PgOne("SELECT (floor(extract(epoch from updated_at) * 1000000) + 1000000)::bigint::text "
                            "FROM messages WHERE id = 3");
  Cql(fmt::format("UPDATE {}.messages_by_room USING TIMESTAMP {} SET body = 'edited by app' WHERE "
                  "room_id = 0 AND bucket = '2024-05-01' AND created_at = '2024-05-01T21:00:00Z' "
                  "AND message_id = 3",
                  ks_, later));
  // An older write (a stale application replica) loses to the copy: message 6
  // (room 0, created 2024-05-02 18:00).
  std::string earlier = PgOne("SELECT (floor(extract(epoch from updated_at) * 1000000) - 1000000)::bigint::text "
                              "FROM messages WHERE id = 6");
  Cql(fmt::format("UPDATE {}.messages_by_room USING TIMESTAMP {} SET body = 'stale' WHERE "
                  "room_id = 0 AND bucket = '2024-05-02' AND created_at = '2024-05-02T18:00:00Z' "
                  "AND message_id = 6",
                  ks_, earlier));
  r = Copy(dir, {"--table", "messages", "--map", map, "--restart"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  QueryResult stale = CqlQuery(fmt::format(
      "SELECT body FROM {}.messages_by_room WHERE room_id = 0 AND bucket = '2024-05-02' AND "
      "created_at = '2024-05-02T18:00:00Z' AND message_id = 6",
      ks_));
  ASSERT_EQ(stale.rows.size(), 1u);
  EXPECT_EQ(stale.Text(0, 0), "m6");
  QueryResult q = CqlQuery(fmt::format(
      "SELECT body, WRITETIME(body) FROM {}.messages_by_room WHERE room_id = 0 AND bucket = "
      "'2024-05-01' AND message_id = 3 ALLOW FILTERING",
      ks_));
  ASSERT_EQ(q.rows.size(), 1u);
  EXPECT_EQ(q.Text(0, 0), "edited by app");
  EXPECT_EQ(q.Text(0, 1), later);
  // A row the application did not touch got the copy's value again.
  EXPECT_EQ(CqlCount("messages_by_room"), "60");
}

TEST_F(CqlCopyTest, BadInputIsRefusedBeforeWriting) {
  if (Skipped()) return;
  CreateChat();
  Pg("CREATE TABLE nokey (a int, b text); INSERT INTO nokey VALUES (1, 'x');"
     "CREATE TABLE shapes (id int PRIMARY KEY, span int4range); INSERT INTO shapes VALUES (1, '[1,3)')");
  TempDir dir;
  auto table_count = [&] {
    return CqlQuery(fmt::format("SELECT table_name FROM system_schema.tables WHERE keyspace_name = '{}'", ks_))
        .rows.size();
  };
  // A primary-key column left unmapped.
  dir.Write("unmapped.toml", fmt::format("[[copy.map]]\nsource = \"messages\"\ntarget = \"{}.m\"\n"
                                         "partition_key = [\"room_id\", \"bucket\"]\n"
                                         "[copy.map.columns]\nroom_id = \"room_id\"\n",
                                         ks_));
  RunResult r = Copy(dir, {"--table", "messages", "--map", dir.File("unmapped.toml"), "--create-tables"});
  EXPECT_EQ(r.exit_code, 8) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("unmapped.toml:1: partition key column 'bucket' is not among"));
  // An unknown source column, with its line.
  dir.Write("unknown.toml", fmt::format("[[copy.map]]\nsource = \"messages\"\ntarget = \"{}.m\"\n"
                                        "partition_key = [\"id\"]\n[copy.map.columns]\nid = \"id\"\n"
                                        "x = \"no_such\"\n",
                                        ks_));
  r = Copy(dir, {"--table", "messages", "--map", dir.File("unknown.toml"), "--create-tables"});
  EXPECT_EQ(r.exit_code, 8) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("unknown.toml:7: column x reads 'no_such'"));
  // A type that cannot convert.
  r = Copy(dir, {"--table", "shapes", "--create-tables"});
  EXPECT_EQ(r.exit_code, 8) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("column span (int4range)"));
  // A source without a primary key, and no declared key.
  r = Copy(dir, {"--table", "nokey", "--create-tables"});
  EXPECT_EQ(r.exit_code, 9) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("has no primary key"));
  // Missing target table without --create-tables.
  r = Copy(dir, {"--table", "messages", "--map", ChatMap(dir)});
  EXPECT_EQ(r.exit_code, 7) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("--create-tables"));
  EXPECT_EQ(table_count(), 0u);
  // A target table whose key differs from the mapping.
  Cql(fmt::format("CREATE TABLE {}.messages_by_room (room_id int, bucket date, created_at "
                  "timestamp, message_id bigint, body text, PRIMARY KEY ((room_id), bucket, "
                  "created_at, message_id))",
                  ks_));
  r = Copy(dir, {"--table", "messages", "--map", ChatMap(dir), "--create-tables"});
  EXPECT_EQ(r.exit_code, 9) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("has partition key (room_id)"));
  EXPECT_EQ(CqlCount("messages_by_room"), "0");
  EXPECT_FALSE(std::filesystem::exists(dir.File(".ferry")));
  // No password in any output.
  auto url = Url::Parse(cql_url_);
  ASSERT_TRUE(url.ok());
  std::string password = url->password().Reveal();
  ASSERT_FALSE(password.empty());
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(password)));
}

// A source without a primary key is copied when the mapping declares the
// CQL key (in one chunk).
TEST_F(CqlCopyTest, SourceWithoutKeyCopiesWithDeclaredKey) {
  if (Skipped()) return;
  Pg("CREATE TABLE events (a int, b text); INSERT INTO events SELECT g, 'e' || g FROM "
     "generate_series(1, 50) g");
  TempDir dir;
  dir.Write("m.toml", "[[copy.map]]\nsource = \"events\"\npartition_key = [\"a\"]\n");
  RunResult r = Copy(dir, {"--table", "events", "--map", dir.File("m.toml"), "--create-tables", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_THAT(r.out, HasSubstr("\"chunks_total\":1"));
  EXPECT_EQ(CqlCount("events"), "50");
}

// A row whose derived partition key is NULL is counted, listed with its key
// in the job, and the copy exits non-zero; the other rows are written.
TEST_F(CqlCopyTest, NullDerivedKeyRowsAreCountedAndListed) {
  if (Skipped()) return;
  CreateChat();
  Pg("UPDATE messages SET created_at = NULL WHERE id IN (5, 17)");
  TempDir dir;
  std::string map = ChatMap(dir);
  RunResult r = Copy(dir, {"--table", "messages", "--map", map, "--create-tables", "--json"});
  EXPECT_EQ(r.exit_code, 9) << Show(r);
  EXPECT_THAT(r.out, HasSubstr("\"rows_failed\":2"));
  EXPECT_THAT(r.out, HasSubstr("(5): partition key column bucket is NULL"));
  EXPECT_THAT(r.out, HasSubstr("(17)"));
  EXPECT_EQ(CqlCount("messages_by_room"), "58");
  auto url = Url::Parse(cql_url_);
  ASSERT_TRUE(url.ok());
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(url->password().Reveal())));
  // The job lists them too.
  RunResult st = RunFerry({"copy", "--to", ks_url_, "--status", "copy:messages"}, {}, dir.path());
  EXPECT_EQ(st.exit_code, 0) << Show(st);
  EXPECT_THAT(st.out, HasSubstr("(17)"));
}

// ferry verify across engines (move/verify_cql.h): a 1:1 copy is identical;
// a planted set of differences (changed value, missing first and last key,
// extra row, NULL vs empty text) is found exactly, in both directions and
// by --sample 100 (which cannot see extra rows).
class CqlVerifyTest : public CqlCopyTest {
 protected:
  void Plant() {
    Pg("CREATE TABLE vx (id int, k text, v text, f boolean, ts timestamptz, n numeric, b bytea, "
       "PRIMARY KEY (id, k));"
       "INSERT INTO vx SELECT i, 'k' || i, 'v' || i, i % 2 = 0, timestamptz '2026-01-01 "
       "00:00:00.123+00' + i * interval '1 second', i * 1.5, '\\xcafe' FROM generate_series(1, 500) i;"
       "UPDATE vx SET v = NULL WHERE id = 5");
  }
  RunResult Verify(const std::string& from, const std::string& to, std::vector<std::string> extra) {
    std::vector<std::string> args = {"verify", "--from", from, "--to", to, "--table", "vx", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunFerry(args, {}, dir_.path());
  }
  static nlohmann::json Table(const RunResult& r) {
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_discarded() ? nlohmann::json() : j["tables"][0];
  }
  static std::vector<std::string> Diffs(const nlohmann::json& t) {
    std::vector<std::string> out;
    for (const auto& d : t["differences"]) {
      out.push_back(d["kind"].get<std::string>() + ":" + d["key"]["id"].get<std::string>());
    }
    return out;
  }
  TempDir dir_;
};

TEST_F(CqlVerifyTest, FindsPlantedDifferencesExactly) {
  if (Skipped()) GTEST_FAIL() << "no CQL server";
  Plant();
  RunResult c = Copy(dir_, {"--table", "vx", "--create-tables"});
  ASSERT_EQ(c.exit_code, 0) << Show(c);
  RunResult same = Verify(pg_->url(), ks_url_, {});
  ASSERT_EQ(same.exit_code, 0) << Show(same);
  EXPECT_EQ(Table(same)["source_rows"], 500);
  EXPECT_EQ(Table(same)["target_rows"], 500);

  Cql(fmt::format("UPDATE {0}.vx SET v = 'changed' WHERE id = 9 AND k = 'k9';"
                  "DELETE FROM {0}.vx WHERE id = 1 AND k = 'k1';"
                  "DELETE FROM {0}.vx WHERE id = 500 AND k = 'k500';"
                  "INSERT INTO {0}.vx (id, k, v) VALUES (2000, 'extra', 'x');"
                  "UPDATE {0}.vx SET v = '' WHERE id = 5 AND k = 'k5';"
                  "UPDATE {0}.vx SET ts = '2026-01-01T00:00:09.124Z' WHERE id = 8 AND k = 'k8'",
                  ks_));
  RunResult diff = Verify(pg_->url(), ks_url_, {});
  EXPECT_EQ(diff.exit_code, 10) << Show(diff);
  nlohmann::json t = Table(diff);
  EXPECT_EQ(t["missing"], 2);
  EXPECT_EQ(t["extra"], 1);
  EXPECT_EQ(t["changed"], 3);
  EXPECT_THAT(Diffs(t), ::testing::UnorderedElementsAre("missing:1", "missing:500", "extra:2000",
                                                        "changed:5", "changed:8", "changed:9"));
  for (const auto& d : t["differences"]) {
    if (d["key"]["id"] == "5") {
      EXPECT_TRUE(d["columns"][0]["source"].is_null());
      EXPECT_EQ(d["columns"][0]["target"], "");
    }
  }

  // The other direction: CQL is the reference, so missing and extra swap.
  nlohmann::json back = Table(Verify(ks_url_, pg_->url(), {}));
  EXPECT_EQ(back["missing"], 1);
  EXPECT_EQ(back["extra"], 2);
  EXPECT_EQ(back["changed"], 3);

  // Sampling every row: missing and changed found, extra rows out of reach.
  RunResult sample = Verify(pg_->url(), ks_url_, {"--sample", "100"});
  EXPECT_EQ(sample.exit_code, 10) << Show(sample);
  nlohmann::json st = Table(sample);
  EXPECT_EQ(st["source_rows"], 500);
  EXPECT_EQ(st["missing"], 2);
  EXPECT_EQ(st["changed"], 3);
  EXPECT_EQ(st["extra"], 0);
  EXPECT_THAT(sample.out + sample.err, Not(HasSubstr("ferry_cql_secret")));
}

TEST_F(CqlVerifyTest, RefusesWhatItCannotCompare) {
  if (Skipped()) GTEST_FAIL() << "no CQL server";
  Plant();
  RunResult missing = Verify(pg_->url(), ks_url_, {});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.out + missing.err, HasSubstr("does not exist"));
  Cql(fmt::format("CREATE TABLE {}.vx (id int, k text, v text, PRIMARY KEY ((k), id))", ks_));
  RunResult key = Verify(pg_->url(), ks_url_, {});
  EXPECT_NE(key.exit_code, 0);
  EXPECT_THAT(key.out + key.err, HasSubstr("primary keys differ"));
  RunResult where = Verify(pg_->url(), ks_url_, {"--where", "id > 3"});
  EXPECT_NE(where.exit_code, 0);
  EXPECT_THAT(where.out + where.err, HasSubstr("--sample"));
}

// examples/chat-app (seed 000) end to end at small size: its run.sh makes
// the PostgreSQL schema and data, the CQL model, and copies with map.toml.
TEST_F(CqlCopyTest, ChatAppExampleCopiesEveryTableByItsMapping) {
  if (Skipped()) GTEST_FAIL() << "no CQL server";
  const char* pg_bin = std::getenv("FERRY_TEST_PG_BIN");
  ASSERT_NE(pg_bin, nullptr) << "FERRY_TEST_PG_BIN (psql) is not set: source the servers' env";
  TempDir dir;
  Cql("DROP KEYSPACE IF EXISTS chat_keyspace");
  const std::string example = std::string(FERRY_SOURCE_DIR) + "/examples/chat-app/run.sh";
  RunResult r = ::ferry::testing::RunBinary(
      "/bin/bash", {example, "3000"},
      {"PG=" + pg_->url(), "CQL=" + ks_url_, std::string("FERRY=") + FERRY_BINARY,
       std::string("PATH=") + pg_bin + ":" + std::getenv("PATH")},
      dir.path());
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_THAT(r.out + r.err, Not(HasSubstr("ferry_cql_secret")));
  EXPECT_EQ(PgOne("SELECT count(*) FROM room_message"), "3000");
  auto count = [&](const std::string& t) {
    QueryResult q = CqlQuery("SELECT count(*) FROM chat_keyspace." + t);
    return q.empty() ? "" : q.Text(0, 0);
  };
  EXPECT_EQ(count("messages_by_room"), "3000");
  EXPECT_EQ(count("rooms"), PgOne("SELECT count(*) FROM room"));
  EXPECT_EQ(count("room_members"), PgOne("SELECT count(*) FROM room_member"));
  EXPECT_EQ(count("message_meta"), PgOne("SELECT count(*) FROM room_message_meta"));
  // A message lands in its room's partition of its UTC day, under its id.
  std::string room = PgOne("SELECT room_id FROM room_message WHERE id = 42");
  std::string day = PgOne("SELECT (created_at AT TIME ZONE 'UTC')::date FROM room_message WHERE id = 42");
  QueryResult m = CqlQuery("SELECT message_id, content FROM chat_keyspace.messages_by_room WHERE room_id = " +
                           room + " AND bucket = '" + day + "'");
  bool found = false;
  for (size_t i = 0; i < m.rows.size(); ++i) found = found || m.Text(i, 0) == "42";
  EXPECT_TRUE(found) << "message 42 not in room " << room << " bucket " << day;
  Cql("DROP KEYSPACE IF EXISTS chat_keyspace");
}

}  // namespace
}  // namespace ferry
