// The driver conformance suite: every Connection implementation must pass
// DriverConformance (instantiated below per driver). PostgreSQL-only
// behaviour (COPY, server error fields, connection failures) is in
// PgDriverTest further down.
//
// The suite uses only the Connection interface and OpenConnection(), never a
// concrete driver class.
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "core/url.h"
#include "drivers/connection.h"
#if FERRY_WITH_POSTGRES
#include "drivers/postgres/pg_light.h"
#endif
#include "drivers/registry.h"
#include "test_util.h"

namespace ferry {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

// A fresh, empty database that exists as long as this object does.
class FreshDatabase {
 public:
  virtual ~FreshDatabase() = default;
  // Empty when the database could not be made (the test is skipped or failed).
  virtual std::string url() const = 0;
};

using OpenFunction = std::function<Result<std::unique_ptr<Connection>>(const std::string& url)>;

struct DriverUnderTest {
  std::string name;
  std::function<std::unique_ptr<FreshDatabase>()> open_fresh;
  // How the suite opens a connection to the fresh database (OpenConnection
  // unless a driver is reached some other way, as the light PostgreSQL client).
  OpenFunction open;
  // The driver does COPY (CopyOut/CopyIn); else they return kUnimplemented.
  bool copy = false;
};

void PrintTo(const DriverUnderTest& driver, std::ostream* os) { *os << driver.name; }

class SqliteFreshDatabase : public FreshDatabase {
 public:
  std::string url() const override {
    return dir_.path().empty() ? "" : "sqlite:" + dir_.File("conformance.db");
  }

 private:
  testing::TempDir dir_;
};

#if FERRY_WITH_POSTGRES
class PgFreshDatabase : public FreshDatabase {
 public:
  std::string url() const override { return db_.url(); }

 private:
  testing::FreshPgDatabase db_;
};
#endif

Result<std::unique_ptr<Connection>> Open(const std::string& url) { return OpenConnection(url); }

// Calls `try_once` until it returns true or `timeout` passes.
bool Eventually(const std::function<bool()>& try_once,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (try_once()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// SQL that returns the integers 1..$1 in column x on both engines. The cast
// matters: parameters are text, and SQLite orders every integer before text.
constexpr const char* kCountTo =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < CAST($1 AS integer)) "
    "SELECT x FROM c";

class DriverConformance : public ::testing::TestWithParam<DriverUnderTest> {
 protected:
  void SetUp() override {
    db_ = GetParam().open_fresh();
    if (IsSkipped()) GTEST_SKIP();
    ASSERT_NE(db_, nullptr);
    ASSERT_FALSE(db_->url().empty()) << "could not make a fresh database";
    ASSERT_OK_AND_ASSIGN(conn_, Open(db_->url()));
  }

  // Opens another connection the way this instance's driver is reached.
  Result<std::unique_ptr<Connection>> Open(const std::string& url) const {
    return GetParam().open(url);
  }

  bool IsPostgres() const { return conn_->engine() == Engine::kPostgres; }

  // The single value of a one-row, one-column query.
  std::string Scalar(Connection& conn, const std::string& sql, const Params& params = {}) {
    auto result = conn.Query(sql, params);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    if (!result.ok() || result->empty()) return "<none>";
    return result->Text(0, 0);
  }
  std::string Scalar(const std::string& sql, const Params& params = {}) {
    return Scalar(*conn_, sql, params);
  }

  std::unique_ptr<FreshDatabase> db_;
  std::unique_ptr<Connection> conn_;
};

TEST_P(DriverConformance, ReportsEngineAndRedactedUrl) {
  EXPECT_THAT(EngineName(conn_->engine()), AnyOf("postgres", "sqlite"));
  EXPECT_FALSE(conn_->redacted_url().empty());
  EXPECT_GT(conn_->SessionId(), 0);
}

// The engine's traits (drivers/engine.h) describe what the session does:
// TableExists probes without an error, the vocabulary of ferry's own tables
// is accepted by the server, and a claimed transactional DDL rolls back.
TEST_P(DriverConformance, TraitsDescribeWhatTheEngineDoes) {
  const EngineTraits& traits = conn_->traits();
  EXPECT_EQ(traits.engine(), conn_->engine());
  EXPECT_EQ(&traits, &TraitsOf(conn_->engine()));
  ASSERT_OK_AND_ASSIGN(bool missing, traits.TableExists(*conn_, "no_such_table"));
  EXPECT_FALSE(missing);
  EXPECT_FALSE(conn_->InTransaction()) << "a probe must not leave a transaction open";

  ASSERT_OK(conn_->Exec(fmt::format("CREATE TABLE traits_t (id {}, at {}, flag {} NOT NULL "
                                    "DEFAULT {})",
                                    traits.IdentityPrimaryKey(), traits.TimestampType(),
                                    traits.BooleanType(), traits.BooleanLiteral(false)))
                .status());
  ASSERT_OK_AND_ASSIGN(bool exists, traits.TableExists(*conn_, "traits_t"));
  EXPECT_TRUE(exists);
  ASSERT_OK(conn_->Exec(fmt::format("INSERT INTO traits_t (at) VALUES ({})", traits.Now()))
                .status());
  std::string iso = Scalar(fmt::format("SELECT {} FROM traits_t", traits.IsoTimestamp("at")));
  EXPECT_THAT(iso, ::testing::MatchesRegex(
                       "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"));
  EXPECT_EQ(Scalar("SELECT count(*) FROM traits_t WHERE flag = " +
                   std::string(traits.BooleanLiteral(false))),
            "1");

  ASSERT_OK(conn_->Exec(traits.BeginWrite()).status());
  ASSERT_OK(conn_->Exec("CREATE TABLE traits_rolled_back (id integer)").status());
  ASSERT_OK(conn_->Exec("ROLLBACK").status());
  ASSERT_OK_AND_ASSIGN(bool kept, traits.TableExists(*conn_, "traits_rolled_back"));
  EXPECT_EQ(kept, !traits.Has(Feature::kTransactionalDdl));
}

TEST_P(DriverConformance, ExecRunsMultiStatementScript) {
  ASSERT_OK_AND_ASSIGN(int64_t rows,
                       conn_->Exec("CREATE TABLE t (id integer PRIMARY KEY, name text);\n"
                                   "INSERT INTO t (id, name) VALUES (1, 'a');\n"
                                   "INSERT INTO t (id, name) VALUES (2, 'b'), (3, 'c');\n"));
  EXPECT_EQ(rows, 3);  // all statements together; DDL counts 0
  EXPECT_EQ(Scalar("SELECT count(*) FROM t"), "3");
  ASSERT_OK_AND_ASSIGN(rows, conn_->Exec("UPDATE t SET name = 'z' WHERE id > 1"));
  EXPECT_EQ(rows, 2);
  ASSERT_OK(conn_->Exec("-- only a comment\n").status());
}

// ExecBatch: items in order, rows per item, RETURNING rows, the index of a
// failing item; `reuse` items (kept prepared where the driver can) give the
// same answers every time, also after DEALLOCATE ALL on PostgreSQL.
TEST_P(DriverConformance, BatchRunsItemsInOrderAndReusesStatements) {
  ASSERT_OK(conn_->Exec("CREATE TABLE b (id integer PRIMARY KEY, name text)").status());
  const std::string insert = "INSERT INTO b (id, name) VALUES ($1, $2) RETURNING id";
  for (int round = 0; round < 4; ++round) {
    if (round == 2 && conn_->traits().Has(Feature::kPipelining)) {
      ASSERT_OK(conn_->Exec("DEALLOCATE ALL").status());
    }
    Params first = {std::to_string(round * 2 + 1), "x"};
    Params second = {std::to_string(round * 2 + 2), "y"};
    QueryResult returned;
    std::vector<Connection::BatchItem> batch = {
        {"BEGIN", nullptr, nullptr, true},
        {insert, &first, nullptr, true},
        {insert, &second, &returned, true},  // the same text twice in one batch
        {"UPDATE b SET name = 'z' WHERE id <= 2", nullptr},
        {"COMMIT", nullptr, nullptr, true},
    };
    ASSERT_OK_AND_ASSIGN(std::vector<int64_t> rows, conn_->ExecBatch(batch));
    ASSERT_EQ(rows.size(), 5u) << "round " << round;
    EXPECT_EQ(rows[1], 1);
    EXPECT_EQ(rows[3], 2);
    ASSERT_EQ(returned.rows.size(), 1u);
    EXPECT_EQ(returned.Text(0, 0), std::to_string(round * 2 + 2));
  }
  EXPECT_EQ(Scalar("SELECT count(*) FROM b"), "8");
  // A failing reused item: named by index, nothing of the transaction kept,
  // and the next batch works.
  Params dup = {"1", "again"};
  auto failed = conn_->ExecBatch({{"BEGIN", nullptr, nullptr, true},
                                  {"INSERT INTO b (id, name) VALUES (100, 'new')", nullptr},
                                  {insert, &dup, nullptr, true},
                                  {"COMMIT", nullptr, nullptr, true}});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().Get("batch_index"), "2");
  if (conn_->InTransaction()) ASSERT_OK(conn_->Rollback());
  EXPECT_EQ(Scalar("SELECT count(*) FROM b"), "8");
  Params last = {"9", "last"};
  ASSERT_OK(conn_->ExecBatch({{insert, &last, nullptr, true}}).status());
  EXPECT_EQ(Scalar("SELECT count(*) FROM b"), "9");
  // The libpq driver keeps statements prepared (the light client and SQLite
  // prepare per call). Deallocated inside a transaction block: the block is aborted, so the
  // batch is not resent (that would run it outside the block); the caller
  // gets SQLSTATE 26000 and rolls back, and the next batch prepares anew.
  if (GetParam().name != "PostgreSQL") return;
  ASSERT_OK(conn_->Begin());
  ASSERT_OK(conn_->Exec("INSERT INTO b (id, name) VALUES (50, 'in block')").status());
  ASSERT_OK(conn_->Exec("DEALLOCATE ALL").status());
  Params in_block = {"51", "in block"};
  auto gone = conn_->ExecBatch({{insert, &in_block, nullptr, true}});
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().Get("sqlstate"), "26000") << gone.status().ToString();
  ASSERT_OK(conn_->Rollback());
  EXPECT_EQ(Scalar("SELECT count(*) FROM b WHERE id >= 50"), "0");
  ASSERT_OK(conn_->ExecBatch({{insert, &in_block, nullptr, true}}).status());
  EXPECT_EQ(Scalar("SELECT count(*) FROM b WHERE id >= 50"), "1");
}

// A batch is sent whole before replies are read, so a COPY ... FROM STDIN in
// it would leave the server waiting for data while the next items arrive
// (PostgreSQL then ends the session). Both PostgreSQL drivers refuse it
// before sending anything; the session stays usable.
TEST_P(DriverConformance, CopyFromStdinInABatchIsRefusedBeforeAnythingRuns) {
  if (!conn_->traits().Has(Feature::kCopyProtocol)) return;  // SQLite has no COPY
  ASSERT_OK(conn_->Exec("CREATE TABLE cb (id integer)").status());
  for (std::string_view copy : {std::string_view("COPY cb FROM STDIN"),
                                std::string_view("/* load */ copy cb (id) from\n  stdin "
                                                 "WITH (FORMAT csv)")}) {
    auto batch = conn_->ExecBatch({{"INSERT INTO cb VALUES (1)", nullptr},
                                   {copy, nullptr},
                                   {"INSERT INTO cb VALUES (3)", nullptr}});
    ASSERT_FALSE(batch.ok()) << copy;
    EXPECT_EQ(batch.status().code(), StatusCode::kInvalidArgument) << batch.status().ToString();
    EXPECT_EQ(batch.status().Get("batch_index"), "1");
    EXPECT_THAT(batch.status().message(), HasSubstr("use CopyIn"));
  }
  EXPECT_EQ(Scalar("SELECT count(*) FROM cb"), "0");
  // Not COPY FROM STDIN: a table whose name starts with "stdin", COPY TO.
  ASSERT_OK(conn_->Exec("CREATE TABLE stdin_rows (id integer)").status());
  ASSERT_OK(conn_->ExecBatch({{"INSERT INTO cb SELECT id FROM stdin_rows", nullptr},
                              {"INSERT INTO cb VALUES (7)", nullptr}})
                .status());
  EXPECT_EQ(Scalar("SELECT count(*) FROM cb"), "1");
}

// Floating-point values come back as text that reads as the same double
// (PostgreSQL: extra_float_digits; SQLite: the driver's shortest form).
TEST_P(DriverConformance, FloatsRoundTripExactly) {
  ASSERT_OK(conn_->Exec("CREATE TABLE f (id integer PRIMARY KEY, x double precision)").status());
  const std::vector<double> values = {0.1 + 0.2, 1.7976931348623157e308, 5e-324, -2.5, 3.0,
                                      123456789.12345678};
  for (size_t i = 0; i < values.size(); ++i) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), values[i]);
    ASSERT_EQ(ec, std::errc());
    ASSERT_OK(conn_->Query("INSERT INTO f (id, x) VALUES ($1, $2)",
                           {std::to_string(i), std::string(buf, end)})
                  .status());
  }
  auto rows = conn_->Query("SELECT x FROM f ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->rows.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(std::strtod(rows->Text(i, 0).c_str(), nullptr), values[i]) << rows->Text(i, 0);
  }
  size_t streamed = 0;
  ASSERT_OK(conn_->Stream("SELECT x FROM f ORDER BY id", {}, [&](const RowView& row) -> Status {
    EXPECT_EQ(std::strtod(std::string(*row.fields[0]).c_str(), nullptr), values[streamed]);
    ++streamed;
    return Status();
  }));
  EXPECT_EQ(streamed, values.size());
  if (!IsPostgres()) {
    EXPECT_EQ(Scalar("SELECT x FROM f WHERE id = 4"), "3.0");
  }
}

TEST_P(DriverConformance, QueryBindsParametersWithoutSplicing) {
  ASSERT_OK(conn_->Exec("CREATE TABLE t (id integer PRIMARY KEY, v text)").status());
  const std::vector<Value> values = {
      "it's; DROP TABLE t; --",
      std::nullopt,
      "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x9A\x80",  // héllo 世界 🚀
      "\"double\" and 'single' quotes; $1 and ?",
      "",
      "line one\nline two\ttabbed\\backslash",
  };
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(QueryResult inserted, conn_->Query("INSERT INTO t (id, v) VALUES ($1, $2)",
                                                            {std::to_string(i + 1), values[i]}));
    EXPECT_EQ(inserted.rows_affected, 1);
    EXPECT_TRUE(inserted.columns.empty());
  }
  ASSERT_OK_AND_ASSIGN(QueryResult all, conn_->Query("SELECT id, v FROM t ORDER BY id"));
  ASSERT_EQ(all.columns.size(), 2u);
  EXPECT_EQ(all.columns[0].name, "id");
  EXPECT_EQ(all.columns[1].name, "v");
  ASSERT_EQ(all.rows.size(), values.size());
  EXPECT_EQ(all.rows_affected, static_cast<int64_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(all.Text(i, 0), std::to_string(i + 1));
    EXPECT_EQ(all.rows[i][1], values[i]) << "row " << i;
  }
  EXPECT_TRUE(all.IsNull(1, 1));
  EXPECT_FALSE(all.IsNull(4, 1));  // '' is not NULL
  if (IsPostgres()) {
    EXPECT_EQ(all.columns[0].type_oid, 23u);  // int4
    EXPECT_EQ(all.columns[1].type_oid, 25u);  // text
  }
  // The value travelled as data: it matches itself and the table survived.
  EXPECT_EQ(Scalar("SELECT id FROM t WHERE v = $1", {values[0]}), "1");
  EXPECT_EQ(Scalar("SELECT count(*) FROM t WHERE v IS NULL"), "1");
  EXPECT_EQ(Scalar("SELECT $1 || $2", {"a'b", "c;d"}), "a'bc;d");
  ASSERT_OK_AND_ASSIGN(QueryResult none, conn_->Query("SELECT v FROM t WHERE id = $1", {"999"}));
  EXPECT_TRUE(none.empty());
  ASSERT_EQ(none.columns.size(), 1u);
}

TEST_P(DriverConformance, StreamsManyRowsAndStopsEarly) {
  int64_t count = 0;
  int64_t sum = 0;
  std::string column;
  ASSERT_OK(conn_->Stream(kCountTo, {"100000"}, [&](const RowView& row) {
    if (count == 0) column = row.columns->at(0).name;
    EXPECT_EQ(row.fields.size(), 1u);
    sum += std::stoll(std::string(row.fields.at(0).value()));
    ++count;
    return Status();
  }));
  EXPECT_EQ(count, 100000);
  EXPECT_EQ(sum, int64_t{100000} * 100001 / 2);
  EXPECT_EQ(column, "x");

  // A non-ok callback stops the stream and its Status comes back.
  int seen = 0;
  Status stopped = conn_->Stream(kCountTo, {"100000"}, [&](const RowView&) {
    return ++seen == 10 ? Status(StatusCode::kCancelled, "enough rows") : Status();
  });
  EXPECT_EQ(stopped.code(), StatusCode::kCancelled) << stopped.ToString();
  EXPECT_EQ(stopped.message(), "enough rows");
  EXPECT_EQ(seen, 10);
  EXPECT_EQ(Scalar("SELECT 1 + 1"), "2");  // the connection is usable again

  // Inside a transaction an early stop keeps the transaction usable.
  ASSERT_OK(conn_->Exec("CREATE TABLE t (id integer)").status());
  ASSERT_OK(conn_->Begin());
  ASSERT_OK(conn_->Exec("INSERT INTO t VALUES (1)").status());
  seen = 0;
  stopped = conn_->Stream(kCountTo, {"50000"}, [&](const RowView&) {
    return ++seen == 3 ? Status(StatusCode::kAborted, "stop") : Status();
  });
  EXPECT_EQ(stopped.code(), StatusCode::kAborted);
  EXPECT_TRUE(conn_->InTransaction());
  EXPECT_EQ(Scalar("SELECT count(*) FROM t"), "1");
  ASSERT_OK(conn_->Commit());
  EXPECT_EQ(Scalar("SELECT count(*) FROM t"), "1");

  // No rows: the callback never runs.
  ASSERT_OK(conn_->Stream("SELECT id FROM t WHERE id < 0", {}, [](const RowView&) {
    ADD_FAILURE() << "callback called for an empty result";
    return Status();
  }));
  // NULL fields arrive as nullopt.
  ASSERT_OK(conn_->Stream("SELECT NULL AS n, $1 AS s", {"v"}, [](const RowView& row) {
    EXPECT_FALSE(row.fields.at(0).has_value());
    EXPECT_EQ(row.fields.at(1).value_or("<null>"), "v");
    return Status();
  }));
}

TEST_P(DriverConformance, StreamReportsStatementErrors) {
  Status status = conn_->Stream("SELECT * FROM no_such_table_here", {},
                                [](const RowView&) { return Status(); });
  EXPECT_THAT(status.code(), AnyOf(StatusCode::kNotFound, StatusCode::kInvalidArgument))
      << status.ToString();
  EXPECT_THAT(status.Get("statement"), HasSubstr("no_such_table_here"));
  EXPECT_EQ(Scalar("SELECT 3"), "3");
}

TEST_P(DriverConformance, TransactionsCommitAndRollBack) {
  EXPECT_FALSE(conn_->InTransaction());
  ASSERT_OK(conn_->Begin());
  EXPECT_TRUE(conn_->InTransaction());
  ASSERT_OK(conn_->Exec("CREATE TABLE kept (id integer); INSERT INTO kept VALUES (1)").status());
  ASSERT_OK(conn_->Commit());
  EXPECT_FALSE(conn_->InTransaction());
  EXPECT_EQ(Scalar("SELECT count(*) FROM kept"), "1");

  // Rollback discards DDL and data alike.
  ASSERT_OK(conn_->Begin());
  ASSERT_OK(conn_->Exec("CREATE TABLE gone (id integer); INSERT INTO gone VALUES (1)").status());
  ASSERT_OK(conn_->Query("INSERT INTO kept VALUES ($1)", {"2"}).status());
  EXPECT_EQ(Scalar("SELECT count(*) FROM kept"), "2");
  ASSERT_OK(conn_->Rollback());
  EXPECT_FALSE(conn_->InTransaction());
  EXPECT_EQ(Scalar("SELECT count(*) FROM kept"), "1");
  auto gone = conn_->Query("SELECT * FROM gone");
  ASSERT_FALSE(gone.ok());
  EXPECT_THAT(gone.status().code(), AnyOf(StatusCode::kNotFound, StatusCode::kInvalidArgument));

  // Another connection does not see uncommitted rows.
  ASSERT_OK_AND_ASSIGN(auto other, Open(db_->url()));
  ASSERT_OK(conn_->Begin());
  ASSERT_OK(conn_->Exec("INSERT INTO kept VALUES (3)").status());
  EXPECT_EQ(Scalar(*other, "SELECT count(*) FROM kept"), "1");
  ASSERT_OK(conn_->Commit());
  EXPECT_EQ(Scalar(*other, "SELECT count(*) FROM kept"), "2");

  // Rollback with nothing to undo is harmless.
  EXPECT_OK(conn_->Rollback());
}

TEST_P(DriverConformance, TryLockExcludesOtherSessions) {
  constexpr int64_t kKey = 4242424242;
  ASSERT_OK_AND_ASSIGN(auto other, Open(db_->url()));
  ASSERT_OK_AND_ASSIGN(bool got, conn_->TryLock(kKey));
  EXPECT_TRUE(got);
  ASSERT_OK_AND_ASSIGN(got, other->TryLock(kKey));
  EXPECT_FALSE(got) << "a second session took a held lock";
  ASSERT_OK_AND_ASSIGN(got, other->TryLock(kKey + 1));
  EXPECT_TRUE(got) << "another key is independent";
  ASSERT_OK(other->Unlock(kKey + 1));

  ASSERT_OK(conn_->Unlock(kKey));
  ASSERT_OK_AND_ASSIGN(got, other->TryLock(kKey));
  EXPECT_TRUE(got) << "free after Unlock";
  ASSERT_OK_AND_ASSIGN(got, conn_->TryLock(kKey));
  EXPECT_FALSE(got);

  // The lock goes with its session.
  other.reset();
  EXPECT_TRUE(Eventually([&] {
    auto r = conn_->TryLock(kKey);
    return r.ok() && *r;
  })) << "not released when the holder's connection was destroyed";
  ASSERT_OK(conn_->Unlock(kKey));
  // Negative keys are keys too.
  ASSERT_OK_AND_ASSIGN(got, conn_->TryLock(-7));
  EXPECT_TRUE(got);
  ASSERT_OK(conn_->Unlock(-7));
}

TEST_P(DriverConformance, SyntaxErrorIsInvalidArgumentWithContext) {
  auto result = conn_->Query("SELEC 1");
  ASSERT_FALSE(result.ok());
  const Status& status = result.status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_EQ(status.Get("statement"), "SELEC 1");
  EXPECT_FALSE(status.message().empty());
  if (IsPostgres()) {
    EXPECT_EQ(status.Get("sqlstate"), "42601");
    EXPECT_EQ(status.Get("position"), "1");
  }

  auto script = conn_->Exec("CREATE TABLE ok_table (id integer);\nSELEC oops;\n");
  ASSERT_FALSE(script.ok());
  EXPECT_EQ(script.status().code(), StatusCode::kInvalidArgument) << script.status().ToString();
  EXPECT_THAT(script.status().Get("statement"), HasSubstr("SELEC oops"));
  if (IsPostgres()) {
    EXPECT_EQ(script.status().Get("sqlstate"), "42601");
    EXPECT_EQ(script.status().Get("line"), "2");
  }
  EXPECT_EQ(Scalar("SELECT 5"), "5");  // still usable
}

TEST_P(DriverConformance, MissingTableIsNotFoundOrInvalidArgument) {
  auto result = conn_->Query("SELECT * FROM no_such_table WHERE id = $1", {"1"});
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().code(), AnyOf(StatusCode::kNotFound, StatusCode::kInvalidArgument))
      << result.status().ToString();
  EXPECT_THAT(result.status().Get("statement"), HasSubstr("no_such_table"));
  if (IsPostgres()) {
    EXPECT_EQ(result.status().code(), StatusCode::kNotFound);
    EXPECT_EQ(result.status().Get("sqlstate"), "42P01");
  }
  auto exec = conn_->Exec("DELETE FROM no_such_table");
  ASSERT_FALSE(exec.ok());
  EXPECT_THAT(exec.status().code(), AnyOf(StatusCode::kNotFound, StatusCode::kInvalidArgument));
}

TEST_P(DriverConformance, InfoReportsEngineVersionAndCapabilities) {
  ASSERT_OK_AND_ASSIGN(ServerInfo info, conn_->Info());
  EXPECT_THAT(info.engine, AnyOf("PostgreSQL", "SQLite"));
  EXPECT_FALSE(info.version.empty());
  EXPECT_GT(info.version_num, 0);
  EXPECT_FALSE(info.database.empty());
  ASSERT_FALSE(info.capabilities.empty());
  bool transactional_ddl = false;
  for (const Capability& c : info.capabilities) {
    EXPECT_FALSE(c.name.empty());
    if (c.available) {
      EXPECT_TRUE(c.hint.empty()) << c.name << " is available but has a hint";
    } else {
      EXPECT_FALSE(c.hint.empty()) << c.name << " is missing but has no hint";
    }
    if (c.name == "transactional_ddl") transactional_ddl = c.available;
  }
  EXPECT_TRUE(transactional_ddl);
}

TEST_P(DriverConformance, QuoteIdentRoundTripsWeirdNames) {
  const std::string table = "we\"ird name";
  const std::string column = "Col \"x\"; --";
  ASSERT_OK(conn_->Exec("CREATE TABLE " + QuoteIdent(table) + " (" + QuoteIdent(column) + " text)")
                .status());
  ASSERT_OK(conn_->Query("INSERT INTO " + QuoteIdent(table) + " VALUES ($1)", {"v"}).status());
  ASSERT_OK_AND_ASSIGN(QueryResult r,
                       conn_->Query("SELECT " + QuoteIdent(column) + " FROM " + QuoteIdent(table)));
  ASSERT_EQ(r.columns.size(), 1u);
  EXPECT_EQ(r.columns[0].name, column);
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.Text(0, 0), "v");
}

TEST_P(DriverConformance, CopyIsCopyOrUnimplemented) {
  ASSERT_OK(conn_->Exec("CREATE TABLE t (id integer)").status());
  Status out = conn_->CopyOut("COPY t TO STDOUT", [](std::string_view) { return Status(); });
  auto in = conn_->CopyIn("COPY t FROM STDIN");
  if (GetParam().copy) {
    EXPECT_OK(out);
    ASSERT_TRUE(in.ok()) << in.status().ToString();
    EXPECT_OK((*in)->Abort("not needed"));
  } else {
    EXPECT_EQ(out.code(), StatusCode::kUnimplemented);
    EXPECT_EQ(in.status().code(), StatusCode::kUnimplemented);
  }
  EXPECT_EQ(Scalar("SELECT count(*) FROM t"), "0");
}

std::vector<DriverUnderTest> Drivers() {
  std::vector<DriverUnderTest> drivers;
#if FERRY_WITH_POSTGRES
  drivers.push_back({"PostgreSQL", [] { return std::make_unique<PgFreshDatabase>(); }, &Open,
                     /*copy=*/true});
  // The built-in light client (pg_light.h) must behave as the libpq driver
  // does, except that it leaves COPY to libpq.
  drivers.push_back({"PostgreSQLLight", [] { return std::make_unique<PgFreshDatabase>(); },
                     [](const std::string& url) -> Result<std::unique_ptr<Connection>> {
                       FERRY_ASSIGN_OR_RETURN(Url parsed, Url::Parse(url));
                       return postgres::OpenLight(parsed, ConnectOptions());
                     },
                     /*copy=*/false});
#endif
  drivers.push_back(
      {"SQLite", [] { return std::make_unique<SqliteFreshDatabase>(); }, &Open, /*copy=*/false});
  return drivers;
}

INSTANTIATE_TEST_SUITE_P(Drivers, DriverConformance, ::testing::ValuesIn(Drivers()),
                         [](const ::testing::TestParamInfo<DriverUnderTest>& param_info) {
                           return param_info.param.name;
                         });

#if FERRY_WITH_POSTGRES

// ---- PostgreSQL only ------------------------------------------------------

class PgDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<testing::FreshPgDatabase>();
    if (IsSkipped()) GTEST_SKIP();
    ASSERT_TRUE(db_->ok());
    ASSERT_OK_AND_ASSIGN(conn_, Open(db_->url()));
    ASSERT_OK_AND_ASSIGN(Url url, Url::Parse(db_->url()));
    url_ = url;
  }

  std::string Scalar(Connection& conn, const std::string& sql, const Params& params = {}) {
    auto result = conn.Query(sql, params);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    if (!result.ok() || result->empty()) return "<none>";
    return result->Text(0, 0);
  }
  std::string Scalar(const std::string& sql, const Params& params = {}) {
    return Scalar(*conn_, sql, params);
  }

  // CopyOut of `sql` into one string.
  std::string CopyAll(Connection& conn, const std::string& sql) {
    std::string data;
    Status status = conn.CopyOut(sql, [&](std::string_view chunk) {
      data.append(chunk);
      return Status();
    });
    EXPECT_TRUE(status.ok()) << status.ToString();
    return data;
  }

  // Creates table `name` with a mix of types and, when `fill`, rows that
  // exercise escaping: NULLs, tabs, newlines, backslashes, unicode, bytes.
  void MakeTable(const std::string& name, bool fill) {
    ASSERT_OK(conn_
                  ->Exec("CREATE TABLE " + name +
                         " (id integer PRIMARY KEY, name text, data bytea, at timestamptz, "
                         "n numeric, doc jsonb, tags text[])")
                  .status());
    if (!fill) return;
    ASSERT_OK(conn_
                  ->Exec("INSERT INTO " + name +
                         " SELECT g, 'row ' || g || E'\\t\\n\\\\ h\xC3\xA9', "
                         "decode(md5(g::text), 'hex'), "
                         "'2024-01-01 00:00:00+00'::timestamptz + g * interval '1 minute', "
                         "g / 7.0, jsonb_build_object('g', g, 'q', 'it''s'), ARRAY['a', g::text] "
                         "FROM generate_series(1, 5000) g")
                  .status());
    ASSERT_OK(conn_->Exec("INSERT INTO " + name + " (id) VALUES (0)").status());  // all NULL
  }

  // Rows of `a` missing from `b` plus rows of `b` missing from `a`.
  std::string Difference(const std::string& a, const std::string& b) {
    return Scalar("SELECT count(*) FROM ((SELECT * FROM " + a + " EXCEPT ALL SELECT * FROM " + b +
                  ") UNION ALL (SELECT * FROM " + b + " EXCEPT ALL SELECT * FROM " + a + ")) d");
  }

  std::unique_ptr<testing::FreshPgDatabase> db_;
  std::unique_ptr<Connection> conn_;
  Url url_;
};

// PgLiteral: the text PostgreSQL reads back is the value, with either
// setting of standard_conforming_strings.
TEST_F(PgDriverTest, PgLiteralReadsBackAsTheValue) {
  const std::vector<std::string> values = {"plain", "it's", "back\\slash", "\\'; DROP TABLE x; --",
                                           "{\"json\": \"a\\\"b\"}", ""};
  for (const char* scs : {"on", "off"}) {
    ASSERT_OK(conn_->Exec(std::string("SET standard_conforming_strings = ") + scs).status());
    for (const auto& v : values) {
      EXPECT_EQ(Scalar("SELECT " + PgLiteral(v) + "::text"), v) << scs << " " << PgLiteral(v);
    }
  }
}

TEST_F(PgDriverTest, CopyTextAndCsvRoundTrip) {
  MakeTable("a", true);
  for (const std::string format : {"text", "csv"}) {
    SCOPED_TRACE(format);
    MakeTable("b_" + format, false);
    std::string data = CopyAll(*conn_, "COPY a TO STDOUT (FORMAT " + format + ")");
    ASSERT_FALSE(data.empty());
    ASSERT_OK_AND_ASSIGN(auto writer,
                         conn_->CopyIn("COPY b_" + format + " FROM STDIN (FORMAT " + format + ")"));
    // Write in uneven pieces: COPY data need not arrive in whole rows.
    for (size_t pos = 0; pos < data.size(); pos += 777) {
      ASSERT_OK(writer->Write(std::string_view(data).substr(pos, 777)));
    }
    ASSERT_OK_AND_ASSIGN(int64_t rows, writer->Finish());
    EXPECT_EQ(rows, 5001);
    EXPECT_EQ(Difference("a", "b_" + format), "0");
    EXPECT_EQ(Scalar("SELECT count(*) FROM b_" + format), "5001");
    // Finished writers refuse further use.
    EXPECT_EQ(writer->Write("x").code(), StatusCode::kFailedPrecondition);
  }
}

TEST_F(PgDriverTest, CopyBinaryStreamsTableToTable) {
  MakeTable("a", true);
  MakeTable("b", false);
  // Out of one session straight into another, chunk by chunk.
  ASSERT_OK_AND_ASSIGN(auto target, Open(db_->url()));
  ASSERT_OK_AND_ASSIGN(auto writer, target->CopyIn("COPY b FROM STDIN (FORMAT binary)"));
  int chunks = 0;
  ASSERT_OK(conn_->CopyOut("COPY a TO STDOUT (FORMAT binary)", [&](std::string_view chunk) {
    ++chunks;
    return writer->Write(chunk);
  }));
  EXPECT_GT(chunks, 1);
  ASSERT_OK_AND_ASSIGN(int64_t rows, writer->Finish());
  EXPECT_EQ(rows, 5001);
  EXPECT_EQ(Difference("a", "b"), "0");
  // A query as the source works too.
  std::string data =
      CopyAll(*conn_, "COPY (SELECT * FROM a WHERE id < 10) TO STDOUT (FORMAT binary)");
  EXPECT_EQ(data.substr(0, 11), std::string("PGCOPY\n\xff\r\n\0", 11));
}

TEST_F(PgDriverTest, CopyAbortAndDestroyDiscardRows) {
  MakeTable("a", true);
  MakeTable("b", false);
  std::string data = CopyAll(*conn_, "COPY a TO STDOUT");
  {
    ASSERT_OK_AND_ASSIGN(auto writer, conn_->CopyIn("COPY b FROM STDIN"));
    ASSERT_OK(writer->Write(data));
    // While the COPY is open the session takes nothing else.
    auto busy = conn_->Query("SELECT 1");
    EXPECT_EQ(busy.status().code(), StatusCode::kFailedPrecondition) << busy.status().ToString();
    ASSERT_OK(writer->Abort("test says no"));
    EXPECT_EQ(writer->Finish().status().code(), StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(Scalar("SELECT count(*) FROM b"), "0");
  {
    ASSERT_OK_AND_ASSIGN(auto writer, conn_->CopyIn("COPY b FROM STDIN"));
    ASSERT_OK(writer->Write(data));
  }  // destroyed without Finish: aborted
  EXPECT_EQ(Scalar("SELECT count(*) FROM b"), "0");
  // Inside a transaction, an aborted COPY fails the transaction, as on the server.
  ASSERT_OK(conn_->Begin());
  ASSERT_OK_AND_ASSIGN(auto writer, conn_->CopyIn("COPY b FROM STDIN"));
  ASSERT_OK(writer->Abort(""));
  EXPECT_TRUE(conn_->InTransaction());
  Status commit = conn_->Commit();
  EXPECT_EQ(commit.code(), StatusCode::kAborted) << commit.ToString();
  EXPECT_FALSE(conn_->InTransaction());
  EXPECT_EQ(Scalar("SELECT count(*) FROM b"), "0");
}

TEST_F(PgDriverTest, CopyErrorsCarryContext) {
  MakeTable("b", false);
  ASSERT_OK_AND_ASSIGN(auto writer, conn_->CopyIn("COPY b (id, name) FROM STDIN"));
  ASSERT_OK(writer->Write("1\tfine\nnot-a-number\toops\n"));
  auto finished = writer->Finish();
  ASSERT_FALSE(finished.ok());
  const Status& status = finished.status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_EQ(status.Get("sqlstate"), "22P02");
  EXPECT_THAT(status.Get("where"), HasSubstr("COPY b"));
  EXPECT_THAT(status.Get("statement"), HasSubstr("COPY b"));
  EXPECT_EQ(Scalar("SELECT count(*) FROM b"), "0");

  Status missing = conn_->CopyOut("COPY nope TO STDOUT", [](std::string_view) { return Status(); });
  EXPECT_EQ(missing.code(), StatusCode::kNotFound) << missing.ToString();
  auto wrong_way = conn_->CopyIn("COPY b TO STDOUT");
  EXPECT_EQ(wrong_way.status().code(), StatusCode::kInvalidArgument);
  Status not_copy = conn_->CopyOut("SELECT 1", [](std::string_view) { return Status(); });
  EXPECT_EQ(not_copy.code(), StatusCode::kInvalidArgument);
  auto exec_copy = conn_->Exec("COPY b FROM STDIN");
  EXPECT_EQ(exec_copy.status().code(), StatusCode::kInvalidArgument);
  auto query_copy = conn_->Query("COPY b TO STDOUT");
  EXPECT_EQ(query_copy.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Scalar("SELECT 7"), "7");

  // A sink error stops the COPY and comes back; the session stays usable.
  MakeTable("a", true);
  int calls = 0;
  Status stopped = conn_->CopyOut("COPY a TO STDOUT", [&](std::string_view) {
    return ++calls == 2 ? Status(StatusCode::kUnavailable, "disk full") : Status();
  });
  EXPECT_EQ(stopped.code(), StatusCode::kUnavailable);
  EXPECT_EQ(stopped.message(), "disk full");
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(Scalar("SELECT 8"), "8");
}

// Inside a transaction a sink's ordinary error leaves the rest of the COPY
// to be read and dropped (the transaction stays usable); kCancelled cancels
// the server's COPY at once and leaves the transaction aborted. The second
// COPY would send 50 million rows: only the cancel ends it early.
TEST_F(PgDriverTest, CancelledSinkCancelsTheCopyInsideATransaction) {
  ASSERT_OK(conn_->Begin());
  Status stopped = conn_->CopyOut("COPY (SELECT g FROM generate_series(1, 1000) g) TO STDOUT",
                                  [](std::string_view) { return Status(StatusCode::kUnknown, "no"); });
  EXPECT_EQ(stopped.code(), StatusCode::kUnknown);
  EXPECT_EQ(Scalar("SELECT 9"), "9");  // still in a healthy transaction
  int calls = 0;
  stopped = conn_->CopyOut("COPY (SELECT generate_series(1, 50000000)) TO STDOUT",
                           [&](std::string_view) {
                             return ++calls == 3 ? Status(StatusCode::kCancelled, "target gone")
                                                 : Status();
                           });
  EXPECT_EQ(stopped.code(), StatusCode::kCancelled);
  EXPECT_EQ(stopped.message(), "target gone");
  EXPECT_EQ(calls, 3);
  auto aborted = conn_->Query("SELECT 10");
  EXPECT_FALSE(aborted.ok());
  EXPECT_EQ(aborted.status().Get("sqlstate"), "25P02") << aborted.status().ToString();
  ASSERT_OK(conn_->Rollback());
  EXPECT_EQ(Scalar("SELECT 11"), "11");
}

TEST_F(PgDriverTest, ErrorContextHasPositionDetailAndHint) {
  ASSERT_OK(
      conn_->Exec("CREATE TABLE u (id integer PRIMARY KEY); INSERT INTO u VALUES (1)").status());
  auto dup = conn_->Query("INSERT INTO u (id) VALUES ($1)", {"1"});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dup.status().Get("sqlstate"), "23505");
  EXPECT_THAT(dup.status().Get("detail"), HasSubstr("Key (id)=(1) already exists"));
  EXPECT_EQ(dup.status().Get("constraint"), "u_pkey");
  EXPECT_EQ(dup.status().Get("table"), "u");

  auto column = conn_->Query("SELECT id,\n  nosuchcol FROM u");
  ASSERT_FALSE(column.ok());
  EXPECT_EQ(column.status().Get("sqlstate"), "42703");
  EXPECT_EQ(column.status().Get("position"), "14");
  EXPECT_EQ(column.status().Get("line"), "2");

  auto hint = conn_->Query("SELECT 1 = 'a'::text");
  ASSERT_FALSE(hint.ok());
  EXPECT_EQ(hint.status().Get("sqlstate"), "42883");
  EXPECT_THAT(hint.status().Get("hint"), HasSubstr("explicit type casts"));

  auto where =
      conn_->Exec("DO $$ BEGIN RAISE EXCEPTION 'boom %', 1 USING DETAIL = 'd', HINT = 'h'; END $$");
  ASSERT_FALSE(where.ok());
  EXPECT_EQ(where.status().message(), "boom 1");
  EXPECT_EQ(where.status().Get("sqlstate"), "P0001");
  EXPECT_EQ(where.status().Get("detail"), "d");
  EXPECT_EQ(where.status().Get("hint"), "h");
  EXPECT_THAT(where.status().Get("where"), HasSubstr("PL/pgSQL"));
}

TEST_F(PgDriverTest, TimeoutsAndAbortsHaveRetryableCodes) {
  ASSERT_OK(conn_->Exec("SET statement_timeout = '50ms'").status());
  auto slow = conn_->Query("SELECT pg_sleep(2)");
  EXPECT_EQ(slow.status().code(), StatusCode::kDeadlineExceeded) << slow.status().ToString();
  EXPECT_EQ(slow.status().Get("sqlstate"), "57014");
  ASSERT_OK(conn_->Exec("RESET statement_timeout").status());

  ASSERT_OK(conn_->Exec("CREATE TABLE t (id integer)").status());
  ASSERT_OK_AND_ASSIGN(auto other, Open(db_->url()));
  ASSERT_OK(other->Begin());
  ASSERT_OK(other->Exec("LOCK TABLE t IN ACCESS EXCLUSIVE MODE").status());
  ASSERT_OK(conn_->Exec("SET lock_timeout = '50ms'").status());
  auto locked = conn_->Query("SELECT * FROM t");
  EXPECT_EQ(locked.status().code(), StatusCode::kDeadlineExceeded) << locked.status().ToString();
  EXPECT_EQ(locked.status().Get("sqlstate"), "55P03");
  ASSERT_OK(other->Rollback());

  // A failed statement fails the transaction: COMMIT reports the rollback.
  ASSERT_OK(conn_->Begin());
  EXPECT_FALSE(conn_->Exec("SELECT 1/0").ok());
  auto after = conn_->Query("SELECT 1");
  EXPECT_EQ(after.status().code(), StatusCode::kAborted);
  EXPECT_EQ(after.status().Get("sqlstate"), "25P02");
  EXPECT_EQ(conn_->Commit().code(), StatusCode::kAborted);
  EXPECT_FALSE(conn_->InTransaction());
  EXPECT_EQ(conn_->Begin().code(), StatusCode::kOk);
  EXPECT_EQ(conn_->Begin().code(), StatusCode::kFailedPrecondition);
  ASSERT_OK(conn_->Rollback());
  EXPECT_EQ(conn_->Commit().code(), StatusCode::kFailedPrecondition);
}

TEST_F(PgDriverTest, StreamErrorAfterRowsLeavesConnectionUsable) {
  int rows = 0;
  Status status =
      conn_->Stream("SELECT 1 / (50 - g) FROM generate_series(1, 100) g", {}, [&](const RowView&) {
        ++rows;
        return Status();
      });
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_EQ(status.Get("sqlstate"), "22012");
  EXPECT_EQ(rows, 49);
  EXPECT_EQ(Scalar("SELECT 9"), "9");
}

TEST_F(PgDriverTest, LostConnectionIsUnavailable) {
  ASSERT_OK_AND_ASSIGN(auto victim, Open(db_->url()));
  std::string pid = std::to_string(victim->SessionId());
  EXPECT_EQ(Scalar("SELECT pg_terminate_backend($1::int)", {pid}), "t");
  auto gone = victim->Query("SELECT 1");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kUnavailable) << gone.status().ToString();
  auto again = victim->Exec("SELECT 1");
  EXPECT_EQ(again.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(again.status().message(), HasSubstr(victim->redacted_url()));
}

TEST_F(PgDriverTest, UnlockOfUnheldLockFails) {
  EXPECT_EQ(conn_->Unlock(99).code(), StatusCode::kFailedPrecondition);
}

TEST_F(PgDriverTest, SessionSettings) {
  EXPECT_EQ(Scalar("SHOW client_encoding"), "UTF8");
  EXPECT_EQ(Scalar("SHOW application_name"), "ferry");
  std::string url = db_->url() + (db_->url().find('?') == std::string::npos ? "?" : "&") +
                    "application_name=custom";
  ASSERT_OK_AND_ASSIGN(auto custom, Open(url));
  EXPECT_EQ(Scalar(*custom, "SHOW application_name"), "custom");
  EXPECT_EQ(Scalar("SELECT pg_backend_pid()"), std::to_string(conn_->SessionId()));
}

TEST_F(PgDriverTest, NoticesGoToTheLogNotStderr) {
  LogLevel saved = GetLogLevel();
  SetLogLevel(LogLevel::kInfo);
  ::testing::internal::CaptureStderr();
  auto r = conn_->Exec("DROP TABLE IF EXISTS not_here");
  std::string err = ::testing::internal::GetCapturedStderr();
  SetLogLevel(saved);
  ASSERT_OK(r.status());
  EXPECT_EQ(err, "");
}

TEST_F(PgDriverTest, InfoNamesEveryCapability) {
  ASSERT_OK_AND_ASSIGN(ServerInfo info, conn_->Info());
  EXPECT_EQ(info.engine, "PostgreSQL");
  EXPECT_EQ(info.database, db_->name());
  EXPECT_EQ(info.user, url_.user());
  EXPECT_GE(info.version_num, 110000);
  std::vector<std::string> names;
  for (const Capability& c : info.capabilities) names.push_back(c.name);
  EXPECT_THAT(names, ::testing::IsSupersetOf({"transactional_ddl", "advisory_locks", "copy",
                                              "logical_replication", "replication_slots",
                                              "max_wal_senders", "replication_privilege",
                                              "create_privilege", "server_version_supported"}));
  for (const Capability& c : info.capabilities) {
    if (c.name != "logical_replication") continue;
    EXPECT_THAT(c.detail, HasSubstr("wal_level="));
    if (!c.available) {
      EXPECT_THAT(c.hint, HasSubstr("wal_level = logical"));
    }
  }
}

TEST_F(PgDriverTest, KeyValueConnectionStringWorks) {
  std::string kv = "host=" + url_.host() + " port=" + std::to_string(url_.port()) +
                   " user=" + url_.user() + " dbname='" + db_->name() + "'";
  ASSERT_OK_AND_ASSIGN(auto conn, OpenConnection(kv));
  EXPECT_EQ(conn->engine(), Engine::kPostgres);
  EXPECT_EQ(Scalar(*conn, "SELECT current_database()"), db_->name());
  EXPECT_EQ(Scalar(*conn, "SHOW application_name"), "ferry");
}

TEST_F(PgDriverTest, RefusedPortIsUnavailableAndRedacted) {
  for (const std::string url : {"postgres://u:s3cret@127.0.0.1:1/x",
                                "host=127.0.0.1 port=1 user=u password=s3cret dbname=x"}) {
    SCOPED_TRACE(url);
    auto r = OpenConnection(url);
    ASSERT_FALSE(r.ok());
    const Status& status = r.status();
    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
    EXPECT_THAT(status.message(), HasSubstr(RedactSecrets(url)));
    EXPECT_THAT(status.message(), HasSubstr("127.0.0.1:1"));
    EXPECT_THAT(status.ToString(), Not(HasSubstr("s3cret")));
  }
}

TEST_F(PgDriverTest, UnknownHostIsUnavailable) {
  auto r = OpenConnection("postgres://u:s3cret@no-such-host.invalid:5432/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr("s3cret")));
}

TEST_F(PgDriverTest, MissingDatabaseIsNotFound) {
  auto r = OpenConnection(testing::WithDatabase(db_->url(), "ferry_no_such_db"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("createdb"));
  EXPECT_THAT(r.status().message(), HasSubstr("ferry_no_such_db"));
}

TEST_F(PgDriverTest, UnknownRoleIsPermissionDenied) {
  std::string url = "postgres://ferry_no_such_role:pw@" + url_.host() + ":" +
                    std::to_string(url_.port()) + "/" + db_->name();
  auto r = OpenConnection(url);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr(":pw@")));
}

TEST_F(PgDriverTest, WrongPasswordIsPermissionDenied) {
  // scripts/test-servers.sh provides a role that must log in with a password;
  // the catch-all trust rule would accept any password for other roles.
  const char* pw_url = std::getenv("FERRY_TEST_PG_PW_URL");
  if (pw_url == nullptr || *pw_url == '\0') {
    GTEST_SKIP() << "set FERRY_TEST_PG_PW_URL (scripts/test-servers.sh does) to a role with "
                    "password authentication";
  }
  ASSERT_OK_AND_ASSIGN(Url good, Url::Parse(pw_url));
  ASSERT_OK_AND_ASSIGN(auto conn, OpenConnection(good));
  EXPECT_EQ(Scalar(*conn, "SELECT current_user"), good.user());

  std::string bad = pw_url;
  size_t colon = bad.find(':', bad.find("://") + 3);
  size_t at = bad.find('@');
  ASSERT_TRUE(colon != std::string::npos && at != std::string::npos && colon < at);
  std::string real_password = bad.substr(colon + 1, at - colon - 1);
  bad.replace(colon + 1, at - colon - 1, "wr0ng-pa55");
  auto r = OpenConnection(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("password"));
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr("wr0ng-pa55")));
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr(real_password)));
}

TEST_F(PgDriverTest, LibpqEnvironmentAndPgpassStillWork) {
  const char* pw_url = std::getenv("FERRY_TEST_PG_PW_URL");
  if (pw_url == nullptr || *pw_url == '\0') {
    GTEST_SKIP() << "set FERRY_TEST_PG_PW_URL (scripts/test-servers.sh does)";
  }
  ASSERT_OK_AND_ASSIGN(Url with_password, Url::Parse(pw_url));
  std::string url = pw_url;
  size_t colon = url.find(':', url.find("://") + 3);
  size_t at = url.find('@');
  ASSERT_TRUE(colon != std::string::npos && at != std::string::npos && colon < at);
  std::string password = url.substr(colon + 1, at - colon - 1);
  url.erase(colon, at - colon);  // postgres://user@host:port/db

  ASSERT_EQ(std::getenv("PGPASSWORD"), nullptr) << "unset PGPASSWORD to run this test";
  setenv("PGPASSWORD", password.c_str(), 1);
  auto from_env = OpenConnection(url);
  unsetenv("PGPASSWORD");
  ASSERT_TRUE(from_env.ok()) << from_env.status().ToString();

  testing::TempDir dir;
  dir.Write("pgpass", with_password.host() + ":" + std::to_string(with_password.port()) +
                          ":*:" + with_password.user() + ":" + password + "\n");
  std::string pgpass = dir.File("pgpass");
  ASSERT_EQ(chmod(pgpass.c_str(), 0600), 0);
  auto from_file = OpenConnection(url + "?passfile=" + pgpass);
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  EXPECT_EQ(Scalar(**from_file, "SELECT current_user"), with_password.user());
}

#endif  // FERRY_WITH_POSTGRES

}  // namespace
}  // namespace ferry

namespace ferry::testing {
namespace {

// Several processes starting at once on a database file that does not exist
// yet all race to turn it to WAL; SQLite answers that race with an immediate
// SQLITE_BUSY (no busy handler), which Open must wait out, not report. Forked
// children, because SQLite's locks between threads of one process differ.
TEST(SqliteOpenTest, ProcessesOpeningANewFileAtOnceAllSucceed) {
  for (int round = 0; round < 40; ++round) {
    TempDir dir;
    std::string url = "sqlite:" + dir.File("new.db");
    std::vector<pid_t> children;
    for (int i = 0; i < 6; ++i) {
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        // As `ferry up` does: open, write, open a second connection.
        for (int k = 0; k < 3; ++k) {
          auto conn = OpenConnection(url);
          if (!conn.ok()) {
            std::fprintf(stderr, "%s\n", conn.status().ToString().c_str());
            _exit(1);
          }
          auto mode = (*conn)->Query("PRAGMA journal_mode", {});
          if (!mode.ok() || mode->Text(0, 0) != "wal") _exit(2);
          if (!(*conn)->Exec("CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1)").ok()) {
            _exit(3);
          }
        }
        _exit(0);
      }
      children.push_back(pid);
    }
    for (pid_t pid : children) {
      int status = 0;
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "round " << round << ": a child failed to open the new file (exit "
          << WEXITSTATUS(status) << ")";
    }
  }
}

}  // namespace
}  // namespace ferry::testing
