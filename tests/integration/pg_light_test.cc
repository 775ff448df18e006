// The light PostgreSQL client against the real test server: every login
// method it speaks, the ways a connection fails, Unix sockets, cancelling a
// stream, and server errors reported exactly as the libpq driver reports
// them. The Connection contract itself is checked by the conformance suite
// (instance "PostgreSQLLight" in conformance_test.cc).
#if FERRY_WITH_POSTGRES

#include "drivers/postgres/pg_light.h"

#include <cstdlib>
#include <string>

#include "core/log.h"
#include "core/url.h"
#include "drivers/registry.h"
#include "test_util.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Result<std::unique_ptr<Connection>> Light(const std::string& url) {
  FERRY_ASSIGN_OR_RETURN(Url parsed, Url::Parse(url));
  return postgres::OpenLight(parsed, ConnectOptions());
}

std::string Scalar(Connection& conn, const std::string& sql, const Params& params = {}) {
  auto result = conn.Query(sql, params);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  if (!result.ok() || result->empty()) return "<none>";
  return result->IsNull(0, 0) ? "<null>" : result->Text(0, 0);
}

// A URL from the environment scripts/test-servers.sh writes; "" after
// failing the test when it is missing (these roles exist only there).
std::string RequiredUrl(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    ADD_FAILURE() << "set " << name << " (scripts/test-servers.sh does)";
    return "";
  }
  return value;
}

// `url` with its password replaced.
std::string WithPassword(std::string url, const std::string& password) {
  size_t colon = url.find(':', url.find("://") + 3);
  size_t at = url.find('@');
  url.replace(colon + 1, at - colon - 1, password);
  return url;
}

std::string PasswordOf(const std::string& url) {
  size_t colon = url.find(':', url.find("://") + 3);
  return url.substr(colon + 1, url.find('@') - colon - 1);
}

class PgLightTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(std::getenv("PGPASSWORD"), nullptr) << "unset PGPASSWORD to run these tests";
  }
};

TEST_F(PgLightTest, TrustLogin) {
  FERRY_REQUIRE_PG(url);
  ASSERT_OK_AND_ASSIGN(auto conn, Light(url));
  ASSERT_OK_AND_ASSIGN(Url parsed, Url::Parse(url));
  EXPECT_EQ(conn->engine(), Engine::kPostgres);
  EXPECT_EQ(conn->redacted_url(), parsed.Redacted());
  EXPECT_EQ(Scalar(*conn, "SELECT current_user"), parsed.user());
  EXPECT_EQ(Scalar(*conn, "SELECT current_database()"), parsed.database());
  EXPECT_EQ(Scalar(*conn, "SELECT pg_backend_pid()"), std::to_string(conn->SessionId()));
  EXPECT_EQ(Scalar(*conn, "SHOW client_encoding"), "UTF8");
  EXPECT_EQ(Scalar(*conn, "SHOW application_name"), "ferry");
  ASSERT_OK_AND_ASSIGN(auto custom, Light(url + "?application_name=light%20one"));
  EXPECT_EQ(Scalar(*custom, "SHOW application_name"), "light one");
  // Over TCP: the server sees a client address.
  EXPECT_NE(Scalar(*conn, "SELECT inet_client_addr()::text"), "<null>");
}

TEST_F(PgLightTest, ScramLoginVerifiesTheServer) {
  std::string url = RequiredUrl("FERRY_TEST_PG_PW_URL");
  if (url.empty()) return;
  ASSERT_OK_AND_ASSIGN(Url parsed, Url::Parse(url));
  ASSERT_OK_AND_ASSIGN(auto conn, Light(url));
  EXPECT_EQ(Scalar(*conn, "SELECT current_user"), parsed.user());
  // The role's password is stored as a SCRAM verifier: the login above used SCRAM.
  FERRY_REQUIRE_PG(admin);
  ASSERT_OK_AND_ASSIGN(auto root, Light(admin));
  EXPECT_EQ(Scalar(*root, "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = $1",
                   {parsed.user()}),
            "SCRAM-SHA-256$");
}

TEST_F(PgLightTest, Md5AndCleartextLogins) {
  for (const char* name : {"FERRY_TEST_PG_MD5_URL", "FERRY_TEST_PG_CLEAR_URL"}) {
    SCOPED_TRACE(name);
    std::string url = RequiredUrl(name);
    if (url.empty()) continue;
    ASSERT_OK_AND_ASSIGN(Url parsed, Url::Parse(url));
    ASSERT_OK_AND_ASSIGN(auto conn, Light(url));
    EXPECT_EQ(Scalar(*conn, "SELECT current_user"), parsed.user());

    auto wrong = Light(WithPassword(url, "wr0ng-pa55"));
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.status().code(), StatusCode::kPermissionDenied) << wrong.status().ToString();
    EXPECT_THAT(wrong.status().message(), HasSubstr("password authentication failed"));
    EXPECT_THAT(wrong.status().ToString(), Not(HasSubstr("wr0ng-pa55")));
    EXPECT_THAT(wrong.status().ToString(), Not(HasSubstr(PasswordOf(url))));
  }
  // The md5 role really has an md5 hash (else the server would use SCRAM).
  FERRY_REQUIRE_PG(admin);
  ASSERT_OK_AND_ASSIGN(auto root, Light(admin));
  EXPECT_EQ(Scalar(*root, "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'ferry_md5'"),
            "md5");
}

TEST_F(PgLightTest, WrongScramPasswordIsPermissionDeniedWithoutPasswords) {
  std::string url = RequiredUrl("FERRY_TEST_PG_PW_URL");
  if (url.empty()) return;
  auto r = Light(WithPassword(url, "wr0ng-pa55"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("password"));
  EXPECT_THAT(r.status().message(), HasSubstr("127.0.0.1"));
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr("wr0ng-pa55")));
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr(PasswordOf(url))));
}

// No password given: libpq would look in ~/.pgpass, so the light client
// steps aside instead of failing.
TEST_F(PgLightTest, MissingPasswordDefersToLibpq) {
  std::string url = RequiredUrl("FERRY_TEST_PG_PW_URL");
  if (url.empty()) return;
  std::string bare = url;
  size_t colon = bare.find(':', bare.find("://") + 3);
  bare.erase(colon, bare.find('@') - colon);  // postgres://user@host:port/db
  auto r = Light(bare);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("pgpass"));
  // With PGPASSWORD it logs in.
  setenv("PGPASSWORD", PasswordOf(url).c_str(), 1);
  auto with_env = Light(bare);
  unsetenv("PGPASSWORD");
  ASSERT_TRUE(with_env.ok()) << with_env.status().ToString();
}

TEST_F(PgLightTest, UnknownDatabaseIsNotFound) {
  FERRY_REQUIRE_PG(url);
  auto r = Light(testing::WithDatabase(url, "ferry_light_no_such_db"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("ferry_light_no_such_db"));
  EXPECT_THAT(r.status().message(), HasSubstr("createdb"));
}

TEST_F(PgLightTest, UnknownRoleIsPermissionDenied) {
  FERRY_REQUIRE_PG(url);
  ASSERT_OK_AND_ASSIGN(Url parsed, Url::Parse(url));
  auto r = Light("postgres://ferry_light_no_role:s3cret@" + parsed.host() + ":" +
                 std::to_string(parsed.port()) + "/" + parsed.database());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr("s3cret")));
}

TEST_F(PgLightTest, UnixSocket) {
  FERRY_REQUIRE_PG(url);
  const char* dir = std::getenv("FERRY_TEST_PG_SOCKET_DIR");
  const char* port = std::getenv("FERRY_TEST_PG_PORT");
  ASSERT_TRUE(dir != nullptr && port != nullptr)
      << "set FERRY_TEST_PG_SOCKET_DIR and FERRY_TEST_PG_PORT (scripts/test-servers.sh does)";
  ASSERT_OK_AND_ASSIGN(Url parsed, Url::Parse(url));
  std::string encoded;
  for (char c : std::string(dir)) encoded += c == '/' ? std::string("%2F") : std::string(1, c);
  for (const std::string& socket_url :
       {"postgres://postgres@" + encoded + ":" + port + "/" + parsed.database(),
        "postgres:///" + parsed.database() + "?host=" + dir + "&port=" + port + "&user=postgres"}) {
    SCOPED_TRACE(socket_url);
    ASSERT_OK_AND_ASSIGN(auto conn, Light(socket_url));
    // Over a Unix socket the server sees no client address.
    EXPECT_EQ(Scalar(*conn, "SELECT inet_client_addr()::text"), "<null>");
    EXPECT_EQ(Scalar(*conn, "SELECT current_database()"), parsed.database());
  }
  // A directory with no socket: unavailable, named.
  auto missing = Light("postgres:///x?host=/nonexistent-dir&port=5432&user=postgres");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kUnavailable) << missing.status().ToString();
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent-dir/.s.PGSQL.5432"));
}

TEST_F(PgLightTest, RefusedPortIsUnavailableAndRedacted) {
  auto r = Light("postgres://u:s3cret@127.0.0.1:1/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("postgres://u:***@127.0.0.1:1/x"));
  EXPECT_THAT(r.status().message(), HasSubstr("127.0.0.1:1"));
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr("s3cret")));

  auto unknown = Light("postgres://u:s3cret@no-such-host.invalid:5432/x");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnavailable) << unknown.status().ToString();
  EXPECT_THAT(unknown.status().message(), HasSubstr("no-such-host.invalid"));
  EXPECT_THAT(unknown.status().ToString(), Not(HasSubstr("s3cret")));
}

// kCancelled sends a CancelRequest: inside a transaction the server's
// statement is cancelled, which aborts the transaction (proof that the
// cancel reached the server; a drained stream would leave it healthy).
// Outside one the session is simply usable again.
TEST_F(PgLightTest, CancelledStreamStopsTheServer) {
  FERRY_REQUIRE_PG(url);
  testing::FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  ASSERT_OK_AND_ASSIGN(auto conn, Light(db.url()));
  // In the select list the series streams (in FROM it would be materialized first).
  constexpr const char* kMany = "SELECT generate_series(1, 50000000) AS g";
  int seen = 0;
  Status stopped = conn->Stream(kMany, {}, [&](const RowView&) {
    return ++seen == 5 ? Status(StatusCode::kCancelled, "enough") : Status();
  });
  EXPECT_EQ(stopped.code(), StatusCode::kCancelled);
  EXPECT_EQ(seen, 5);
  EXPECT_EQ(Scalar(*conn, "SELECT 1 + 1"), "2");

  ASSERT_OK(conn->Begin());
  seen = 0;
  stopped = conn->Stream(kMany, {}, [&](const RowView&) {
    return ++seen == 3 ? Status(StatusCode::kCancelled, "target gone") : Status();
  });
  EXPECT_EQ(stopped.code(), StatusCode::kCancelled);
  EXPECT_TRUE(conn->InTransaction());
  auto aborted = conn->Query("SELECT 10");
  ASSERT_FALSE(aborted.ok());
  EXPECT_EQ(aborted.status().Get("sqlstate"), "25P02") << aborted.status().ToString();
  ASSERT_OK(conn->Rollback());
  EXPECT_EQ(Scalar(*conn, "SELECT 11"), "11");
}

// The same failing statements through libpq and through the light client
// give the same Status: code, message and every context field.
TEST_F(PgLightTest, ServerErrorsMatchTheLibpqDriver) {
  FERRY_REQUIRE_PG(url);
  testing::FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  ASSERT_OK_AND_ASSIGN(auto libpq, OpenConnection(db.url()));
  ASSERT_OK_AND_ASSIGN(auto light, Light(db.url()));
  ASSERT_OK(libpq->Exec("CREATE TABLE u (id integer PRIMARY KEY, v text NOT NULL)").status());
  ASSERT_OK(libpq->Exec("INSERT INTO u VALUES (1, 'a')").status());

  auto same = [](const Status& a, const Status& b) {
    EXPECT_FALSE(a.ok());
    EXPECT_EQ(a.code(), b.code());
    EXPECT_EQ(a.message(), b.message());
    EXPECT_EQ(a.context(), b.context()) << a.ToString() << "\n" << b.ToString();
  };
  struct Case {
    std::string sql;
    Params params;
  };
  const std::vector<Case> queries = {
      {"SELEC 1", {}},
      {"INSERT INTO u (id, v) VALUES ($1, $2)", {"1", "b"}},
      {"INSERT INTO u (id, v) VALUES ($1, $2)", {"2", std::nullopt}},
      {"SELECT id,\n  nosuchcol FROM u", {}},
      {"SELECT 1 = 'a'::text", {}},
      {"SELECT $1::integer", {"not a number"}},
      {"SELECT * FROM no_such_table", {}},
  };
  for (const Case& c : queries) {
    SCOPED_TRACE(c.sql);
    same(libpq->Query(c.sql, c.params).status(), light->Query(c.sql, c.params).status());
  }
  for (const std::string sql :
       {"CREATE TABLE ok_table (id integer);\nSELEC oops;\n",
        "DO $$ BEGIN RAISE EXCEPTION 'boom %', 1 USING DETAIL = 'd', HINT = 'h'; END $$"}) {
    SCOPED_TRACE(sql);
    same(libpq->Exec(sql).status(), light->Exec(sql).status());
  }
  auto light_error = light->Query("INSERT INTO u (id, v) VALUES ($1, $2)", {"1", "b"}).status();
  EXPECT_EQ(light_error.Get("sqlstate"), "23505");
  EXPECT_THAT(light_error.Get("detail"), HasSubstr("Key (id)=(1) already exists"));
  auto position = light->Query("SELECT id,\n  nosuchcol FROM u").status();
  EXPECT_EQ(position.Get("position"), "14");
  EXPECT_EQ(position.Get("line"), "2");
  auto hint = light->Query("SELECT 1 = 'a'::text").status();
  EXPECT_THAT(hint.Get("hint"), HasSubstr("explicit type casts"));
}

TEST_F(PgLightTest, ExecBatchIsOneImplicitTransactionAndFillsResults) {
  FERRY_REQUIRE_PG(url);
  testing::FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  ASSERT_OK_AND_ASSIGN(auto conn, Light(db.url()));
  ASSERT_OK(conn->Exec("CREATE TABLE t (id integer PRIMARY KEY)").status());
  Params one = {"1"};
  Params two = {"2"};
  QueryResult returned;
  ASSERT_OK_AND_ASSIGN(
      std::vector<int64_t> rows,
      conn->ExecBatch({{"INSERT INTO t VALUES ($1)", &one},
                       {"INSERT INTO t VALUES ($1) RETURNING id * 10 AS tenfold", &two, &returned},
                       {"UPDATE t SET id = id + 100", nullptr}}));
  EXPECT_EQ(rows, (std::vector<int64_t>{1, 1, 2}));
  ASSERT_EQ(returned.rows.size(), 1u);
  EXPECT_EQ(returned.columns.at(0).name, "tenfold");
  EXPECT_EQ(returned.Text(0, 0), "20");

  Params three = {"3"};
  auto failed = conn->ExecBatch({{"INSERT INTO t VALUES ($1)", &three},
                                 {"INSERT INTO t VALUES (101)", nullptr},
                                 {"INSERT INTO t VALUES (4)", nullptr}});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().Get("batch_index"), "1") << failed.status().ToString();
  EXPECT_EQ(failed.status().Get("sqlstate"), "23505");
  // The batch ran as one implicit transaction: item 0 is gone too.
  EXPECT_EQ(Scalar(*conn, "SELECT string_agg(id::text, ',' ORDER BY id) FROM t"), "101,102");
  EXPECT_FALSE(conn->InTransaction());

  // A batch far larger than the socket buffers both ways (20 MB out, 20 MB
  // back): the client takes in results while it sends, so neither side stalls.
  Params big = {std::string(10000, 'x')};
  std::vector<Connection::BatchItem> many(2000, {"SELECT $1::text", &big});
  ASSERT_OK_AND_ASSIGN(rows, conn->ExecBatch(many));
  EXPECT_EQ(rows, std::vector<int64_t>(2000, 1));
  EXPECT_EQ(Scalar(*conn, "SELECT 4"), "4");
}

TEST_F(PgLightTest, LostConnectionIsUnavailable) {
  FERRY_REQUIRE_PG(url);
  ASSERT_OK_AND_ASSIGN(auto admin, Light(url));
  ASSERT_OK_AND_ASSIGN(auto victim, Light(url));
  EXPECT_EQ(
      Scalar(*admin, "SELECT pg_terminate_backend($1::int)", {std::to_string(victim->SessionId())}),
      "t");
  auto gone = victim->Query("SELECT 1");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kUnavailable) << gone.status().ToString();
  EXPECT_THAT(gone.status().message(), HasSubstr(victim->redacted_url()));
  auto again = victim->Exec("SELECT 1");
  EXPECT_EQ(again.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(again.status().message(), HasSubstr(victim->redacted_url()));
  EXPECT_EQ(victim->Begin().code(), StatusCode::kUnavailable);
}

TEST_F(PgLightTest, TimeoutsAbortsAndNotices) {
  FERRY_REQUIRE_PG(url);
  testing::FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  ASSERT_OK_AND_ASSIGN(auto conn, Light(db.url()));
  ASSERT_OK(conn->Exec("SET statement_timeout = '50ms'").status());
  auto slow = conn->Query("SELECT pg_sleep(2)");
  EXPECT_EQ(slow.status().code(), StatusCode::kDeadlineExceeded) << slow.status().ToString();
  ASSERT_OK(conn->Exec("RESET statement_timeout").status());

  // A failed statement fails the transaction: COMMIT reports the rollback.
  ASSERT_OK(conn->Begin());
  EXPECT_FALSE(conn->Exec("SELECT 1/0").ok());
  EXPECT_TRUE(conn->InTransaction());
  EXPECT_EQ(conn->Query("SELECT 1").status().code(), StatusCode::kAborted);
  EXPECT_EQ(conn->Commit().code(), StatusCode::kAborted);
  EXPECT_FALSE(conn->InTransaction());
  EXPECT_EQ(conn->Commit().code(), StatusCode::kFailedPrecondition);

  // Server notices go to the debug log, not to stderr.
  LogLevel saved = GetLogLevel();
  SetLogLevel(LogLevel::kInfo);
  ::testing::internal::CaptureStderr();
  auto notice = conn->Exec("DROP TABLE IF EXISTS not_here");
  std::string err = ::testing::internal::GetCapturedStderr();
  SetLogLevel(saved);
  ASSERT_OK(notice.status());
  EXPECT_EQ(err, "");
}

TEST_F(PgLightTest, CopyIsLeftToLibpq) {
  FERRY_REQUIRE_PG(url);
  ASSERT_OK_AND_ASSIGN(auto conn, Light(url));
  Status out =
      conn->CopyOut("COPY (SELECT 1) TO STDOUT", [](std::string_view) { return Status(); });
  EXPECT_EQ(out.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(out.message(), HasSubstr("COPY"));
  // COPY through Exec/Query is refused and the session stays usable.
  auto exec = conn->Exec("COPY (SELECT 1) TO STDOUT");
  EXPECT_EQ(exec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Scalar(*conn, "SELECT 3"), "3");
}

// COPY FROM STDIN through every call that is not CopyIn: refused with
// kInvalidArgument naming the call, the server's COPY ended, nothing after it
// in a batch applied, and the session usable afterwards.
TEST_F(PgLightTest, CopyFromStdinIsRefusedByEveryCall) {
  FERRY_REQUIRE_PG(url);
  ASSERT_OK_AND_ASSIGN(auto conn, Light(url));
  ASSERT_OK(conn->Exec("DROP TABLE IF EXISTS light_copy; CREATE TABLE light_copy (id int)")
                .status());
  auto exec = conn->Exec("COPY light_copy FROM STDIN");
  EXPECT_EQ(exec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(exec.status().message(), HasSubstr("through Exec"));
  auto query = conn->Query("COPY light_copy FROM STDIN");
  EXPECT_EQ(query.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(query.status().message(), HasSubstr("through Query"));
  int rows = 0;
  Status stream = conn->Stream("COPY light_copy FROM STDIN", {}, [&](const RowView&) {
    ++rows;
    return Status();
  });
  EXPECT_EQ(stream.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(stream.message(), HasSubstr("through Stream"));
  auto batch = conn->ExecBatch({{"INSERT INTO light_copy VALUES (1)", nullptr},
                                {"COPY light_copy FROM STDIN", nullptr},
                                {"INSERT INTO light_copy VALUES (3)", nullptr}});
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), StatusCode::kInvalidArgument) << batch.status().ToString();
  EXPECT_THAT(batch.status().message(), HasSubstr("through ExecBatch"));
  EXPECT_EQ(batch.status().Get("batch_index"), "1");
  EXPECT_FALSE(conn->InTransaction());
  EXPECT_EQ(Scalar(*conn, "SELECT count(*) FROM light_copy"), "0");
  EXPECT_EQ(rows, 0);
  // Server errors keep their batch index; the session goes on.
  auto failed = conn->ExecBatch({{"INSERT INTO light_copy VALUES (1)", nullptr},
                                 {"INSERT INTO no_such_table VALUES (2)", nullptr}});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().Get("batch_index"), "1");
  EXPECT_EQ(failed.status().Get("sqlstate"), "42P01");
  ASSERT_OK_AND_ASSIGN(auto counts, conn->ExecBatch({{"INSERT INTO light_copy VALUES (4)", nullptr},
                                                     {"", nullptr},
                                                     {"SELECT 1 UNION SELECT 2", nullptr}}));
  EXPECT_EQ(counts, (std::vector<int64_t>{1, 0, 2}));
  EXPECT_EQ(Scalar(*conn, "SELECT string_agg(id::text, ',') FROM light_copy"), "4");
  ASSERT_OK(conn->Exec("DROP TABLE light_copy").status());
}

TEST_F(PgLightTest, InfoReportsTheServer) {
  FERRY_REQUIRE_PG(url);
  ASSERT_OK_AND_ASSIGN(auto light, Light(url));
  ASSERT_OK_AND_ASSIGN(auto libpq, OpenConnection(url));
  ASSERT_OK_AND_ASSIGN(ServerInfo a, light->Info());
  ASSERT_OK_AND_ASSIGN(ServerInfo b, libpq->Info());
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.version_num, b.version_num);
  EXPECT_GE(a.version_num, 110000);
  EXPECT_EQ(a.database, b.database);
  EXPECT_EQ(a.capabilities.size(), b.capabilities.size());
}

}  // namespace
}  // namespace ferry

#endif  // FERRY_WITH_POSTGRES
