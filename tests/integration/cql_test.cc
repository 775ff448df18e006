// The CQL driver against the throw-away Cassandra node (FERRY_TEST_CQL_URL).
#include <unistd.h>

#include <fmt/format.h>

#include <memory>
#include <string>
#include <thread>

#include "core/url.h"
#include "drivers/cql/cql_connection.h"
#include "drivers/cql/cql_lease.h"
#include "drivers/cql/cql_session.h"
#include "drivers/cql/murmur3.h"
#include "drivers/registry.h"
#include "test_util.h"

namespace ferry::cql {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::unique_ptr<CqlConnection> OpenCql(const std::string& url_text) {
  auto url = Url::Parse(url_text);
  EXPECT_TRUE(url.ok()) << url.status().ToString();
  if (!url.ok()) return nullptr;
  auto c = CqlConnection::Open(*url, {});
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

// "cql://u:p@h:port/ks" with another user:password or keyspace.
std::string Replace(std::string url, const std::string& from, const std::string& to) {
  size_t at = url.find(from);
  if (at != std::string::npos) url.replace(at, from.size(), to);
  return url;
}

class CqlIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = ::ferry::testing::CqlUrl();
    if (url_.empty()) return;
    conn_ = OpenCql(url_);
    ASSERT_NE(conn_, nullptr);
  }
  // A table name unique to this process and test.
  std::string Table(const std::string& stem) {
    return fmt::format("{}_{}", stem, getpid());
  }
  void Exec(const std::string& cql) {
    auto r = conn_->Exec(cql);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  std::string url_;
  std::unique_ptr<CqlConnection> conn_;
};

TEST_F(CqlIntegrationTest, ConnectsThroughTheRegistryAndReportsTheServer) {
  if (!conn_) return;
  auto generic = OpenConnection(Replace(url_, "cql://", "cassandra://"));
  ASSERT_TRUE(generic.ok()) << generic.status().ToString();
  EXPECT_EQ((*generic)->engine(), Engine::kCql);
  EXPECT_FALSE((*generic)->traits().Has(Feature::kTransactionalDdl));
  auto exists = (*generic)->traits().TableExists(**generic, "system_schema.tables");
  ASSERT_TRUE(exists.ok()) << exists.status().ToString();
  EXPECT_TRUE(*exists);
  auto missing = (*generic)->traits().TableExists(**generic, "no_such_table");
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_FALSE(*missing);
  EXPECT_THAT((*generic)->redacted_url(), Not(HasSubstr("ferry_cql_secret")));
  auto info = conn_->Info();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->engine, "Cassandra");
  EXPECT_THAT(info->version, ::testing::StartsWith("5.0."));
  EXPECT_EQ(info->database, "ferry_test");
  EXPECT_TRUE(conn_->compressed()) << "the node offers lz4; the driver should use it";
  auto nodes = conn_->Nodes();
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].datacenter, "datacenter1");
  EXPECT_FALSE((*nodes)[0].schema_version.empty());
  EXPECT_FALSE((*nodes)[0].tokens.empty());
  EXPECT_TRUE(conn_->WaitForSchemaAgreement(std::chrono::seconds(10)).ok());
}

TEST_F(CqlIntegrationTest, WrongPasswordIsAClearErrorWithoutThePassword) {
  if (!conn_) return;
  std::string bad = Replace(url_, "ferry_cql_secret", "not-the-Secret-42");
  auto c = OpenConnection(bad);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(c.status().Get("cql_error"), "BadCredentials");
  EXPECT_THAT(c.status().ToString(), Not(HasSubstr("not-the-Secret-42")));
  EXPECT_THAT(c.status().ToString(), HasSubstr("ferry_cql"));
}

TEST_F(CqlIntegrationTest, UnknownKeyspaceAndUnreachableNode) {
  if (!conn_) return;
  auto c = OpenConnection(Replace(url_, "/ferry_test", "/no_such_keyspace"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("keyspace 'no_such_keyspace' does not exist"));
  auto down = OpenConnection("cql://u:p@127.0.0.1:1/ks?connect_timeout=2");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(down.status().message(), HasSubstr("127.0.0.1:1"));
}

TEST_F(CqlIntegrationTest, ServerErrorsKeepTheirNameAndMessage) {
  if (!conn_) return;
  auto syntax = conn_->Query("SELEC * FROM system.local");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(syntax.status().Get("cql_error"), "SyntaxError");
  EXPECT_THAT(syntax.status().message(), HasSubstr("SELEC"));
  EXPECT_THAT(syntax.status().Get("statement"), HasSubstr("SELEC * FROM"));

  auto invalid = conn_->Query("SELECT * FROM no_such_table_here");
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.status().Get("cql_error"), "Invalid");

  std::string t = Table("dup");
  Exec(fmt::format("CREATE TABLE {} (k int PRIMARY KEY)", t));
  auto again = conn_->Exec(fmt::format("CREATE TABLE {} (k int PRIMARY KEY)", t));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.status().Get("table"), t);

  auto ro = OpenCql(::ferry::testing::CqlReadOnlyUrl());
  ASSERT_NE(ro, nullptr);
  auto denied = ro->Query(fmt::format("INSERT INTO {} (k) VALUES (1)", t));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.status().Get("cql_error"), "Unauthorized");
  Exec("DROP TABLE " + t);
}

TEST_F(CqlIntegrationTest, BoundValuesOfEveryTypeRoundTrip) {
  if (!conn_) return;
  std::string type = Table("addr");
  std::string t = Table("types");
  Exec(fmt::format("CREATE TYPE {} (street text, number int)", type));
  Exec(fmt::format(
      "CREATE TABLE {} (k int PRIMARY KEY, a ascii, t text, vc varchar, i int, bi bigint, "
      "si smallint, ti tinyint, vi varint, f float, d double, dc decimal, b boolean, bl blob, "
      "u uuid, tu timeuuid, ip inet, dt date, tm time, ts timestamp, du duration, "
      "l list<int>, s set<text>, m map<text, int>, tp tuple<int, text>, ud frozen<{}>, "
      "fl frozen<list<frozen<map<int, text>>>>)",
      t, type));
  const std::vector<std::pair<std::string, std::string>> values = {
      {"k", "1"},
      {"a", "plain ascii"},
      {"t", "tëxt 'quoted'"},
      {"vc", "varchar"},
      {"i", "-2147483648"},
      {"bi", "9223372036854775807"},
      {"si", "-32768"},
      {"ti", "-128"},
      {"vi", "-123456789012345678901234567890"},
      {"f", "3.25"},
      {"d", "-1.0000000000000002"},
      {"dc", "12345.678900"},
      {"b", "true"},
      {"bl", "0x00ff10"},
      {"u", "550e8400-e29b-41d4-a716-446655440000"},
      {"tu", "d2177dd0-eaa2-11de-a572-001b779c76e3"},
      {"ip", "2001:db8::1"},
      {"dt", "2024-02-29"},
      {"tm", "23:59:59.123456789"},
      {"ts", "2024-02-29T12:34:56.789Z"},
      {"du", "1y2mo3d4h5m6s7ms8us9ns"},
      {"l", "[3, 1, 2]"},
      {"s", "{'a', 'b''c'}"},
      {"m", "{'x': 1, 'y': -2}"},
      {"tp", "(7, 'seven')"},
      {"ud", "{street: 'Main St', number: 12}"},
      {"fl", "[{1: 'one'}, {2: 'two', 3: 'three'}]"},
  };
  std::string cols, marks;
  Params params;
  for (const auto& [col, text] : values) {
    cols += (cols.empty() ? "" : ", ") + col;
    marks += marks.empty() ? "?" : ", ?";
    params.emplace_back(text);
  }
  auto ins = conn_->Query(fmt::format("INSERT INTO {} ({}) VALUES ({})", t, cols, marks), params);
  ASSERT_TRUE(ins.ok()) << ins.status().ToString();
  // Read back both with and without bound parameters (EXECUTE and QUERY).
  for (bool bound : {true, false}) {
    auto r = bound ? conn_->Query(fmt::format("SELECT {} FROM {} WHERE k = ?", cols, t), {"1"})
                   : conn_->Query(fmt::format("SELECT {} FROM {} WHERE k = 1", cols, t));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->rows.size(), 1u);
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(r->Text(0, i), values[i].second) << values[i].first;
    }
  }
  EXPECT_EQ(conn_->last_column_types()[10], "double");
  EXPECT_EQ(conn_->last_column_types()[26], "list<map<int, text>>");
  // NULLs bind and read back as null.
  auto nul = conn_->Query(fmt::format("INSERT INTO {} (k, t, l) VALUES (?, ?, ?)", t),
                          {"2", std::nullopt, std::nullopt});
  ASSERT_TRUE(nul.ok()) << nul.status().ToString();
  auto r = conn_->Query(fmt::format("SELECT t, l FROM {} WHERE k = 2", t));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->IsNull(0, 0));
  EXPECT_TRUE(r->IsNull(0, 1));
  // A value that does not fit its bind type is refused before sending.
  auto bad = conn_->Query(fmt::format("INSERT INTO {} (k, ti) VALUES (?, ?)", t), {"3", "300"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("parameter 2 (ti)"));
  Exec("DROP TABLE " + t);
  Exec("DROP TYPE " + type);
}

TEST_F(CqlIntegrationTest, CountersAndLightweightTransactionsWithSerialConsistency) {
  if (!conn_) return;
  std::string c = Table("counters");
  std::string l = Table("lwt");
  Exec(fmt::format("CREATE TABLE {} (k text PRIMARY KEY, n counter)", c));
  Exec(fmt::format("CREATE TABLE {} (k text PRIMARY KEY, owner text)", l));
  ASSERT_TRUE(conn_->Query(fmt::format("UPDATE {} SET n = n + ? WHERE k = ?", c), {"5", "a"}).ok());
  ASSERT_TRUE(conn_->Query(fmt::format("UPDATE {} SET n = n + ? WHERE k = ?", c), {"-2", "a"}).ok());
  auto n = conn_->Query(fmt::format("SELECT n FROM {} WHERE k = 'a'", c));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->Text(0, 0), "3");
  ExecOptions serial{.serial_consistency = Consistency::kLocalSerial};
  std::string insert = fmt::format("INSERT INTO {} (k, owner) VALUES (?, ?) IF NOT EXISTS", l);
  auto first = conn_->Run(insert, {"lock", "me"}, serial);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto first_text = CqlConnection::ToText(*first);
  ASSERT_TRUE(first_text.ok());
  EXPECT_EQ(first_text->Text(0, 0), "true");
  auto second = conn_->Run(insert, {"lock", "you"}, ExecOptions{.serial_consistency = Consistency::kSerial});
  ASSERT_TRUE(second.ok());
  auto second_text = CqlConnection::ToText(*second);
  ASSERT_TRUE(second_text.ok());
  EXPECT_EQ(second_text->Text(0, 0), "false");
  EXPECT_EQ(second_text->columns[0].name, "[applied]");
  auto read = conn_->Run(fmt::format("SELECT owner FROM {} WHERE k = 'lock'", l), {},
                         ExecOptions{.consistency = Consistency::kSerial});
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  Exec("DROP TABLE " + c);
  Exec("DROP TABLE " + l);
}

TEST_F(CqlIntegrationTest, PagesThroughMoreThanFiveThousandRows) {
  if (!conn_) return;
  std::string t = Table("paging");
  Exec(fmt::format("CREATE TABLE {} (p int, c int, v text, PRIMARY KEY (p, c))", t));
  constexpr int kRows = 12001;
  std::string insert = fmt::format("INSERT INTO {} (p, c, v) VALUES (?, ?, ?)", t);
  for (int start = 0; start < kRows; start += 100) {
    std::vector<std::pair<std::string, Params>> batch;
    for (int i = start; i < std::min(kRows, start + 100); ++i) {
      batch.push_back({insert, {"1", std::to_string(i), "row " + std::to_string(i)}});
    }
    ASSERT_OK(conn_->Batch(BatchType::kUnlogged, batch));
  }
  auto all = conn_->Query(fmt::format("SELECT c, v FROM {} WHERE p = ?", t), {"1"});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->rows.size(), static_cast<size_t>(kRows));
  EXPECT_EQ(all->Text(kRows - 1, 1), "row 12000");
  int64_t streamed = 0, last = -1;
  bool ordered = true;
  ASSERT_OK(conn_->Stream(fmt::format("SELECT c FROM {}", t), {}, [&](const RowView& row) {
    int64_t c = std::stoll(std::string(*row.fields[0]));
    ordered = ordered && c == last + 1;
    last = c;
    ++streamed;
    return Status();
  }));
  EXPECT_EQ(streamed, kRows);
  EXPECT_TRUE(ordered);
  Exec("DROP TABLE " + t);
}

TEST_F(CqlIntegrationTest, ReprepareAfterTheServerForgetsTheStatement) {
  if (!conn_) return;
  std::string t = Table("reprep");
  Exec(fmt::format("CREATE TABLE {} (k int PRIMARY KEY, v text)", t));
  std::string insert = fmt::format("INSERT INTO {} (k, v) VALUES (?, ?)", t);
  ASSERT_TRUE(conn_->Query(insert, {"1", "a"}).ok());
  // Dropping the table makes the server forget statements prepared on it.
  Exec("DROP TABLE " + t);
  Exec(fmt::format("CREATE TABLE {} (k int PRIMARY KEY, v text)", t));
  auto again = conn_->Query(insert, {"2", "b"});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  auto r = conn_->Query(fmt::format("SELECT v FROM {} WHERE k = 2", t));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Text(0, 0), "b");
  Exec("DROP TABLE " + t);
}

TEST_F(CqlIntegrationTest, Murmur3MatchesServerTokens) {
  if (!conn_) return;
  std::string t = Table("tokens");
  std::string c = Table("tokens2");
  Exec(fmt::format("CREATE TABLE {} (k text PRIMARY KEY)", t));
  Exec(fmt::format("CREATE TABLE {} (a bigint, b text, PRIMARY KEY ((a, b)))", c));
  std::vector<std::string> keys = {"a", "ab", "hello", "0123456789abcde", "0123456789abcdef",
                                   "0123456789abcdef0", "ÿþý long key with high bytes \xc3\xbf",
                                   std::string(100, 'z')};
  for (const auto& k : keys) {
    ASSERT_TRUE(conn_->Query(fmt::format("INSERT INTO {} (k) VALUES (?)", t), {k}).ok());
    auto r = conn_->Query(fmt::format("SELECT token(k) FROM {} WHERE k = ?", t), {k});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->rows.size(), 1u);
    EXPECT_EQ(std::to_string(Murmur3Token(k)), r->Text(0, 0)) << "key '" << k << "'";
  }
  ASSERT_TRUE(conn_->Query(fmt::format("INSERT INTO {} (a, b) VALUES (?, ?)", c), {"-7", "x"}).ok());
  auto r = conn_->Query(fmt::format("SELECT token(a, b) FROM {}", c));
  ASSERT_TRUE(r.ok());
  std::string a = std::string("\xff\xff\xff\xff\xff\xff\xff\xf9", 8);
  EXPECT_EQ(std::to_string(Murmur3Token(RoutingKey({a, "x"}))), r->Text(0, 0));
  auto route = conn_->RouteFor(fmt::format("SELECT * FROM {} WHERE a = ? AND b = ?", c), {"-7", "x"});
  ASSERT_TRUE(route.ok()) << route.status().ToString();
  EXPECT_FALSE(route->empty());
  Exec("DROP TABLE " + t);
  Exec("DROP TABLE " + c);
}

TEST_F(CqlIntegrationTest, ManyRequestsInFlightOnOneConnection) {
  if (!conn_) return;
  auto url = Url::Parse(url_);
  ASSERT_TRUE(url.ok());
  SessionOptions o;
  auto hosts = ParseHosts(url->host(), url->port());
  ASSERT_TRUE(hosts.ok());
  o.host = hosts->front().first;
  o.port = hosts->front().second;
  o.user = "ferry_cql";
  o.password = "ferry_cql_secret";
  auto s = Session::Connect(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::vector<int16_t> streams;
  for (int i = 0; i < 50; ++i) {
    QueryParams qp;
    qp.consistency = Consistency::kOne;
    auto id = (*s)->Send(Opcode::kQuery, QueryBody(fmt::format("SELECT (int){} AS n FROM system.local", i), qp));
    ASSERT_TRUE(id.ok());
    streams.push_back(*id);
  }
  EXPECT_EQ((*s)->in_flight(), 50u);
  for (int i = 49; i >= 0; --i) {  // collected in reverse order of sending
    auto r = (*s)->Wait(streams[static_cast<size_t>(i)]);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto parsed = ParseResult(r->body);
    ASSERT_TRUE(parsed.ok());
    auto text = CqlConnection::ToText(*parsed);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(text->Text(0, 0), std::to_string(i));
  }
}

TEST_F(CqlIntegrationTest, LeaseHasOneHolderAndExpiresUnderAKilledHolder) {
  if (!conn_) return;
  auto other = OpenCql(url_);
  ASSERT_NE(other, nullptr);
  std::string table = Table("lease");
  Lease a(conn_.get(), table, "migrations", "runner-a", std::chrono::seconds(60));
  Lease b(other.get(), table, "migrations", "runner-b", std::chrono::seconds(2));
  ASSERT_OK(a.Ensure());
  ASSERT_OK(b.Ensure());
  auto got = a.TryAcquire();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got);
  std::optional<LeaseHolder> holder;
  auto refused = b.TryAcquire(&holder);
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_FALSE(*refused);
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(holder->owner, "runner-a");
  EXPECT_GT(holder->expires_in_s, 0);
  EXPECT_OK(a.Renew());
  EXPECT_EQ(b.Renew().code(), StatusCode::kFailedPrecondition);  // not b's to renew
  EXPECT_OK(b.Release());                                        // not b's: no effect
  EXPECT_FALSE(*b.TryAcquire());
  EXPECT_OK(a.Release());
  // b takes it with a 2 s TTL and then "dies" (never renews): a gets it once
  // the server expires the row, without anyone deleting it.
  ASSERT_TRUE(*b.TryAcquire());
  EXPECT_FALSE(*a.TryAcquire());
  bool taken = false;
  for (int i = 0; i < 300 && !taken; ++i) {  // bounded: 30 s at most
    auto r = a.TryAcquire();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    taken = *r;
    if (!taken) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(taken);
  Status lost = b.Renew();
  EXPECT_EQ(lost.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(lost.message(), HasSubstr("runner-a"));
  EXPECT_OK(a.Release());
  auto free = a.Holder();
  ASSERT_TRUE(free.ok());
  EXPECT_FALSE(free->has_value());
  Exec("DROP TABLE " + table);
}

TEST_F(CqlIntegrationTest, DoctorReportsServerProtocolNodesAndDatacenters) {
  if (!conn_) return;
  auto r = ::ferry::testing::RunFerry({"doctor", Replace(url_, "cql://", "scylla://")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("engine    Cassandra 5.0."));
  EXPECT_THAT(r.out, HasSubstr("protocol  CQL native protocol v4, compression lz4"));
  EXPECT_THAT(r.out, HasSubstr("nodes     1 in datacenter datacenter1"));
  EXPECT_THAT(r.out, Not(HasSubstr("ferry_cql_secret")));
  auto json = ::ferry::testing::RunFerry({"doctor", "--json", url_});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"datacenters\":[\"datacenter1\"]"));
  EXPECT_THAT(json.out, HasSubstr("\"release_version\":\"5.0."));
  auto bad = ::ferry::testing::RunFerry({"doctor", Replace(url_, "ferry_cql_secret", "Wrong-Pw-77")});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err, HasSubstr("BadCredentials"));
  EXPECT_THAT(bad.out + bad.err, Not(HasSubstr("Wrong-Pw-77")));
}

}  // namespace
}  // namespace ferry::cql
