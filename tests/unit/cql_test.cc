// Unit tests of the CQL driver's pure parts: frames, primitives, LZ4,
// value encodings, Murmur3 tokens, statement splitting, error mapping.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>

#include "drivers/cql/cql_connection.h"
#include "drivers/cql/cql_error.h"
#include "drivers/cql/cql_messages.h"
#include "drivers/cql/cql_split.h"
#include "drivers/cql/cql_types.h"
#include "drivers/cql/cql_wire.h"
#include "drivers/cql/murmur3.h"

namespace ferry::cql {
namespace {

using ::testing::HasSubstr;

std::string Hex(std::string_view b) {
  std::string out;
  for (char c : b) out += fmt::format("{:02x}", static_cast<uint8_t>(c));
  return out;
}

CqlType T(TypeId id, std::vector<CqlType> params = {}) {
  CqlType t;
  t.id = id;
  t.params = std::move(params);
  return t;
}

// Encodes text, checks the bytes, decodes them back to `canonical`.
void RoundTrip(const CqlType& type, const std::string& text, const std::string& hex,
               const std::string& canonical) {
  auto bytes = EncodeValue(type, text);
  ASSERT_TRUE(bytes.ok()) << TypeName(type) << " " << text << ": " << bytes.status().ToString();
  EXPECT_EQ(Hex(*bytes), hex) << TypeName(type) << " " << text;
  auto back = DecodeValue(type, *bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, canonical) << TypeName(type);
}

TEST(CqlWireTest, HeaderRoundTripsAndKeepsNegativeStreams) {
  FrameHeader h{.version = 0x84, .flags = kFlagCompression | kFlagWarning, .stream = -1,
                .opcode = Opcode::kResult, .length = 0x01020304};
  std::string bytes;
  EncodeHeader(h, &bytes);
  EXPECT_EQ(Hex(bytes), "8409ffff0801020304");
  auto back = DecodeHeader(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->stream, -1);
  EXPECT_EQ(back->opcode, Opcode::kResult);
  EXPECT_EQ(back->length, 0x01020304u);
  EXPECT_EQ(back->flags, kFlagCompression | kFlagWarning);
}

TEST(CqlWireTest, OlderProtocolVersionIsAClearError) {
  std::string bytes = std::string("\x83\x00\x00\x01\x00\x00\x00\x00\x00", 9);
  auto h = DecodeHeader(bytes);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(h.status().message(), HasSubstr("protocol version 3"));
}

TEST(CqlWireTest, StartupFrameMatchesTheSpecLayout) {
  WireWriter w;
  w.StringMap({{"CQL_VERSION", "3.0.0"}});
  std::string frame;
  EncodeHeader({.stream = 1, .opcode = Opcode::kStartup,
                .length = static_cast<uint32_t>(w.buffer().size())},
               &frame);
  frame += w.buffer();
  EXPECT_EQ(Hex(frame),
            "0400000101000000160001000b43514c5f56455253494f4e0005332e302e30");
}

TEST(CqlWireTest, ReaderRefusesToReadPastTheEnd) {
  WireWriter w;
  w.Short(10);
  w.Raw("abc");
  WireReader r(w.buffer());
  auto s = r.String();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("truncated"));
  const std::string null_bytes("\xff\xff\xff\xff", 4);
  WireReader nulls(null_bytes);
  auto b = nulls.Bytes();
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->has_value());
}

TEST(CqlWireTest, Lz4RoundTripsAndPrefixesTheLength) {
  std::string body(5000, 'x');
  body += "tail";
  std::string c = Lz4Compress(body);
  EXPECT_EQ(Hex(c.substr(0, 4)), "0000138c");
  EXPECT_LT(c.size(), body.size());
  auto d = Lz4Decompress(c);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, body);
  auto bad = Lz4Decompress(std::string("\x00\x00\x10\x00garbage", 11));
  EXPECT_FALSE(bad.ok());
}

TEST(CqlWireTest, ConsistencyNames) {
  EXPECT_EQ(*ParseConsistency("local_quorum"), Consistency::kLocalQuorum);
  EXPECT_EQ(*ParseConsistency("SERIAL"), Consistency::kSerial);
  EXPECT_EQ(*ParseConsistency("LOCAL_SERIAL"), Consistency::kLocalSerial);
  EXPECT_EQ(static_cast<uint16_t>(*ParseConsistency("LOCAL_ONE")), 0x000A);
  auto bad = ParseConsistency("MOST");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("EACH_QUORUM"));
}

TEST(CqlTypesTest, ScalarsEncodeAndDecode) {
  RoundTrip(T(TypeId::kInt), "-2", "fffffffe", "-2");
  RoundTrip(T(TypeId::kBigint), "9223372036854775807", "7fffffffffffffff", "9223372036854775807");
  RoundTrip(T(TypeId::kSmallint), "-32768", "8000", "-32768");
  RoundTrip(T(TypeId::kTinyint), "127", "7f", "127");
  RoundTrip(T(TypeId::kCounter), "5", "0000000000000005", "5");
  RoundTrip(T(TypeId::kBoolean), "TRUE", "01", "true");
  RoundTrip(T(TypeId::kDouble), "1.5", "3ff8000000000000", "1.5");
  RoundTrip(T(TypeId::kFloat), "-0.25", "be800000", "-0.25");
  RoundTrip(T(TypeId::kVarchar), "héllo", "68c3a96c6c6f", "héllo");
  RoundTrip(T(TypeId::kBlob), "0xCAFE", "cafe", "0xcafe");
  RoundTrip(T(TypeId::kUuid), "550E8400-e29b-41d4-a716-446655440000",
            "550e8400e29b41d4a716446655440000", "550e8400-e29b-41d4-a716-446655440000");
  RoundTrip(T(TypeId::kInet), "127.0.0.1", "7f000001", "127.0.0.1");
  RoundTrip(T(TypeId::kInet), "::1", "00000000000000000000000000000001", "::1");
}

TEST(CqlTypesTest, VarintAndDecimalUseTwosComplement) {
  RoundTrip(T(TypeId::kVarint), "0", "00", "0");
  RoundTrip(T(TypeId::kVarint), "128", "0080", "128");
  RoundTrip(T(TypeId::kVarint), "-129", "ff7f", "-129");
  RoundTrip(T(TypeId::kVarint), "-1", "ff", "-1");
  RoundTrip(T(TypeId::kVarint), "123456789012345678901234567890",
            "018ee90ff6c373e0ee4e3f0ad2", "123456789012345678901234567890");
  RoundTrip(T(TypeId::kDecimal), "-12.345", "00000003cfc7", "-12.345");
  RoundTrip(T(TypeId::kDecimal), "0.001", "0000000301", "0.001");
  RoundTrip(T(TypeId::kDecimal), "1.5E3", "fffffffe0f", "1500");
}

TEST(CqlTypesTest, DatesTimesAndDurations) {
  RoundTrip(T(TypeId::kTimestamp), "2024-02-29 23:59:58.5+01:00", "0000018df7188fa4",
            "2024-02-29T22:59:58.500Z");
  RoundTrip(T(TypeId::kTimestamp), "-1", "ffffffffffffffff", "1969-12-31T23:59:59.999Z");
  RoundTrip(T(TypeId::kDate), "1970-01-01", "80000000", "1970-01-01");
  RoundTrip(T(TypeId::kDate), "2000-03-01", "80002b09", "2000-03-01");
  RoundTrip(T(TypeId::kTime), "13:14:15.5", "00002b57a9262b00", "13:14:15.500000000");
  RoundTrip(T(TypeId::kDuration), "1y2mo3d4h5ms", "1c06fc1a31865d9680", "1y2mo3d4h5ms");
  RoundTrip(T(TypeId::kDuration), "-1d", "0001"
            "00", "-1d");
}

TEST(CqlTypesTest, SignedVintsMatchCassandrasEncoding) {
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{63}, int64_t{-64}, int64_t{64}, int64_t{1} << 40,
                    INT64_MAX, INT64_MIN}) {
    std::string out;
    PutSignedVint(v, &out);
    size_t pos = 0;
    auto back = GetSignedVint(out, &pos);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, v);
    EXPECT_EQ(pos, out.size());
  }
  std::string one;
  PutSignedVint(64, &one);  // zig-zag 128: two bytes, first with one leading 1 bit
  EXPECT_EQ(Hex(one), "8080");
}

TEST(CqlTypesTest, CollectionsTuplesAndUdts) {
  CqlType list = T(TypeId::kList, {T(TypeId::kVarchar)});
  RoundTrip(list, "['a', 'it''s']", "000000020000000161" "0000000469742773", "['a', 'it''s']");
  CqlType map = T(TypeId::kMap, {T(TypeId::kInt), T(TypeId::kBoolean)});
  RoundTrip(map, "{1: true}", "00000001000000040000000100000001" "01", "{1: true}");
  CqlType set = T(TypeId::kSet, {T(TypeId::kInt)});
  RoundTrip(set, "{}", "00000000", "{}");
  CqlType tuple = T(TypeId::kTuple, {T(TypeId::kInt), T(TypeId::kVarchar)});
  RoundTrip(tuple, "(7, null)", "0000000400000007ffffffff", "(7, null)");
  CqlType udt = T(TypeId::kUdt, {T(TypeId::kVarchar), T(TypeId::kInt)});
  udt.udt_name = "person";
  udt.field_names = {"name", "age"};
  RoundTrip(udt, "{age: 3, name: 'x'}", "00000001780000000400000003", "{name: 'x', age: 3}");
  CqlType nested = T(TypeId::kMap, {T(TypeId::kVarchar), T(TypeId::kList, {T(TypeId::kInt)})});
  auto bad = EncodeValue(nested, "{'a': [1, 2}");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TypeName(nested), "map<text, list<int>>");
}

TEST(CqlTypesTest, BadTextNamesTheType) {
  auto r = EncodeValue(T(TypeId::kInt), "12x");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("not a valid int value"));
  EXPECT_FALSE(EncodeValue(T(TypeId::kTinyint), "300").ok());
  EXPECT_FALSE(EncodeValue(T(TypeId::kUuid), "1234").ok());
  EXPECT_FALSE(EncodeValue(T(TypeId::kAscii), "é").ok());
}

TEST(CqlTypesTest, ReadsNestedTypeOptionsAndCustomDuration) {
  WireWriter w;
  w.Short(0x0021);  // map<text, frozen<tuple<int, uuid>>>
  w.Short(0x000D);
  w.Short(0x0031);
  w.Short(2);
  w.Short(0x0009);
  w.Short(0x000C);
  w.Short(0x0000);
  w.String("org.apache.cassandra.db.marshal.DurationType");
  WireReader r(w.buffer());
  auto t = ReadType(r);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(TypeName(*t), "map<text, tuple<int, uuid>>");
  auto d = ReadType(r);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->id, TypeId::kDuration);
}

// Tokens computed by Apache Cassandra 5.0.9 (SELECT token(k) FROM t) for
// these keys; see CqlIntegrationTest.Murmur3MatchesServerTokens.
TEST(CqlMurmur3Test, KnownVectors) {
  for (const auto& [key, token] : std::vector<std::pair<std::string, int64_t>>{
           {"a", -8839064797231613815},
           {"ab", -7815133031266706642},
           {"hello", -3758069500696749310},
           {"0123456789abcde", -6472281833689111727},
           {"0123456789abcdef", 5467490433528156583},
           {"0123456789abcdef0", -1502884478548852619},
           // tail bytes >= 0x80 exercise the sign-extension quirk
           {"\xc3\xbf\xc3\xbe\xc3\xbd long key with high bytes \xc3\xbf", 2658906853073499527},
           {std::string(100, 'z'), 7478763804228709344}}) {
    EXPECT_EQ(Murmur3Token(key), token) << key;
  }
}

TEST(CqlMurmur3Test, CompositeRoutingKey) {
  EXPECT_EQ(Hex(RoutingKey({"ab"})), "6162");
  EXPECT_EQ(Hex(RoutingKey({"ab", std::string("\x00\x01", 2)})), "000261620000020001" "00");
}

TEST(CqlSplitTest, SplitsAtTopLevelSemicolonsOnly) {
  auto r = SplitCql(
      "-- comment; here\nCREATE TABLE t (k int PRIMARY KEY, v text);\n"
      "INSERT INTO t (k, v) VALUES (1, 'a;b''c');\n"
      "BEGIN UNLOGGED BATCH INSERT INTO t (k) VALUES (2); INSERT INTO t (k) VALUES (3); APPLY BATCH;\n"
      "CREATE FUNCTION f() RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java AS $$ return 1; $$;\n"
      "/* block; */ SELECT \"we;ird\" FROM t",
      10);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0].text, "CREATE TABLE t (k int PRIMARY KEY, v text)");
  EXPECT_EQ((*r)[0].line, 11);
  EXPECT_EQ((*r)[1].text, "INSERT INTO t (k, v) VALUES (1, 'a;b''c')");
  EXPECT_THAT((*r)[2].text, HasSubstr("APPLY BATCH"));
  EXPECT_THAT((*r)[3].text, HasSubstr("return 1; $$"));
  EXPECT_EQ((*r)[4].text, "SELECT \"we;ird\" FROM t");
  EXPECT_EQ((*r)[4].line, 15);
  EXPECT_EQ((*r)[4].column, 14);
}

TEST(CqlSplitTest, UnterminatedStringNamesTheLine) {
  auto r = SplitCql("SELECT 1;\nINSERT INTO t (k) VALUES ('x);", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().Get("line"), "2");
}

TEST(CqlSplitTest, SchemaChangeDetection) {
  EXPECT_TRUE(IsSchemaChange("create table if not exists t (k int primary key)"));
  EXPECT_TRUE(IsSchemaChange("ALTER TABLE t ADD v text"));
  EXPECT_TRUE(IsSchemaChange("DROP INDEX i"));
  EXPECT_TRUE(IsSchemaChange("CREATE MATERIALIZED VIEW v AS SELECT ..."));
  EXPECT_FALSE(IsSchemaChange("INSERT INTO t (k) VALUES (1)"));
  EXPECT_FALSE(IsSchemaChange("DROP ROLE r"));
  EXPECT_EQ(LeadingKeywords("  /* x */ create  table t"), "CREATE TABLE");
}

TEST(CqlErrorTest, MapsServerErrorsKeepingNameAndMessage) {
  auto body = [](int32_t code, const std::string& msg, auto extra) {
    WireWriter w;
    w.Int(code);
    w.String(msg);
    extra(w);
    return w.Take();
  };
  auto none = [](WireWriter&) {};
  Status syntax = DecodeError(body(0x2000, "line 1:0 no viable alternative", none));
  EXPECT_EQ(syntax.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(syntax.Get("cql_error"), "SyntaxError");
  EXPECT_THAT(syntax.message(), HasSubstr("no viable alternative"));
  Status unavailable = DecodeError(body(0x1000, "Cannot achieve consistency", [](WireWriter& w) {
    w.Short(0x0004);
    w.Int(2);
    w.Int(1);
  }));
  EXPECT_EQ(unavailable.code(), StatusCode::kUnavailable);
  EXPECT_EQ(unavailable.Get("consistency"), "QUORUM");
  EXPECT_EQ(unavailable.Get("alive"), "1");
  EXPECT_EQ(DecodeError(body(0x1001, "busy", none)).code(), StatusCode::kUnavailable);
  Status wt = DecodeError(body(0x1100, "timeout", [](WireWriter& w) {
    w.Short(0x0009);
    w.Int(0);
    w.Int(1);
    w.String("CAS");
  }));
  EXPECT_EQ(wt.code(), StatusCode::kUnavailable);
  EXPECT_EQ(wt.Get("write_type"), "CAS");
  EXPECT_EQ(DecodeError(body(0x0100, "bad", none)).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(DecodeError(body(0x2100, "no", none)).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(DecodeError(body(0x2200, "invalid", none)).code(), StatusCode::kInvalidArgument);
  Status exists = DecodeError(body(0x2400, "exists", [](WireWriter& w) {
    w.String("ks");
    w.String("t");
  }));
  EXPECT_EQ(exists.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(exists.Get("table"), "t");
  EXPECT_TRUE(IsUnprepared(DecodeError(body(0x2500, "unknown id", [](WireWriter& w) { w.ShortBytes("id"); }))));
}

TEST(CqlMessagesTest, ParsesRowsWithPagingState) {
  WireWriter w;
  w.Int(2);           // Rows
  w.Int(0x0001 | 0x0002);  // global spec + more pages
  w.Int(1);
  w.Bytes(std::string("PS"));
  w.String("ks");
  w.String("t");
  w.String("k");
  w.Short(0x0009);
  w.Int(2);
  w.Bytes(std::string("\x00\x00\x00\x05", 4));
  w.Bytes(std::nullopt);
  auto r = ParseResult(w.buffer());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->paging_state.value_or(""), "PS");
  auto text = CqlConnection::ToText(*r);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->Text(0, 0), "5");
  EXPECT_TRUE(text->IsNull(1, 0));
}

TEST(CqlMessagesTest, QueryBodyCarriesFlagsInSpecOrder) {
  QueryParams p;
  p.consistency = Consistency::kOne;
  p.values = {std::string("a"), std::nullopt};
  p.page_size = 100;
  p.paging_state = "S";
  p.serial_consistency = Consistency::kLocalSerial;
  EXPECT_EQ(Hex(QueryBody("Q", p)),
            "0000000151" "0001" "1d" "0002" "0000000161" "ffffffff" "00000064" "0000000153" "0009");
}

TEST(CqlUrlTest, ParsesHostLists) {
  auto h = ParseHosts("h1:9043,[::1]:9044,h3", 9042);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[0], std::make_pair(std::string("h1"), 9043));
  EXPECT_EQ((*h)[1], std::make_pair(std::string("::1"), 9044));
  EXPECT_EQ((*h)[2], std::make_pair(std::string("h3"), 9042));
  EXPECT_FALSE(ParseHosts("h1:x", 9042).ok());
}

TEST(CqlUrlTest, SchemesAreAliasesOfCql) {
  for (const char* text : {"cql://u:p@h/ks", "scylla://u:p@h/ks", "CASSANDRA://u:p@h/ks"}) {
    auto url = Url::Parse(text);
    ASSERT_TRUE(url.ok()) << text;
    EXPECT_EQ(url->scheme(), "cql");
    EXPECT_EQ(url->port(), 9042);
    EXPECT_EQ(url->database(), "ks");
    EXPECT_EQ(url->Redacted().find(":p@"), std::string::npos);
  }
  auto multi = Url::Parse("cql://u:p@h1:9043,h2:9044/ks?consistency=LOCAL_QUORUM&dc=dc1");
  ASSERT_TRUE(multi.ok());
  EXPECT_EQ(multi->host(), "h1:9043,h2:9044");
  EXPECT_EQ(multi->params().at("dc"), "dc1");
}

}  // namespace
}  // namespace ferry::cql
