// CQL -> PostgreSQL type mapping and COPY text fields (copy_from_cql_types.h).
#include "move/copy_from_cql_types.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry {
namespace {

using ::testing::HasSubstr;

CqlBackColumn Col(std::string_view cql_type) {
  auto c = PgColumnForCql("ks.t", "c", cql_type);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : CqlBackColumn();
}

std::string Field(std::string_view cql_type, std::optional<std::string_view> v) {
  std::string out;
  Status s = AppendCopyField(Col(cql_type), v, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

TEST(CopyFromCqlTypesTest, MapsEveryScalarType) {
  const std::pair<const char*, const char*> cases[] = {
      {"ascii", "text"},           {"text", "text"},
      {"varchar", "text"},         {"tinyint", "smallint"},
      {"smallint", "smallint"},    {"int", "integer"},
      {"bigint", "bigint"},        {"counter", "bigint"},
      {"varint", "numeric"},       {"decimal", "numeric"},
      {"float", "real"},           {"double", "double precision"},
      {"boolean", "boolean"},      {"blob", "bytea"},
      {"uuid", "uuid"},            {"timeuuid", "uuid"},
      {"inet", "inet"},            {"date", "date"},
      {"time", "time without time zone"},
      {"timestamp", "timestamp with time zone"},
      {"duration", "interval"},
  };
  for (const auto& [cql, pg] : cases) EXPECT_EQ(Col(cql).pg_type, pg) << cql;
}

TEST(CopyFromCqlTypesTest, MapsCollections) {
  EXPECT_EQ(Col("list<int>").pg_type, "integer[]");
  EXPECT_EQ(Col("frozen<set<text>>").pg_type, "text[]");
  EXPECT_EQ(Col("set<timestamp>").pg_type, "timestamp with time zone[]");
  EXPECT_EQ(Col("map<text, int>").pg_type, "jsonb");
  EXPECT_EQ(Col("frozen<map<int, boolean>>").kind, CqlBackKind::kJsonMap);
}

TEST(CopyFromCqlTypesTest, RefusesTypesWithoutAForm) {
  for (const char* t : {"tuple<int, text>", "frozen<address>", "list<frozen<list<int>>>",
                        "map<text, frozen<set<int>>>", "list<duration>", "vector<float, 3>",
                        "'org.example.MyType'"}) {
    auto c = PgColumnForCql("ks.t", "c", t);
    ASSERT_FALSE(c.ok()) << t;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(c.status().message(), HasSubstr("ks.t column c"));
    EXPECT_THAT(c.status().message(), HasSubstr(t));
  }
}

TEST(CopyFromCqlTypesTest, EscapesCopyText) {
  std::string out;
  AppendCopyEscaped("a\tb\nc\\d\re", &out);
  EXPECT_EQ(out, "a\\tb\\nc\\\\d\\re");
  EXPECT_EQ(Field("text", std::nullopt), "\\N");
  EXPECT_EQ(Field("text", "\\N"), "\\\\N");  // the text \N is not NULL
  EXPECT_EQ(Field("text", ""), "");
}

TEST(CopyFromCqlTypesTest, ConvertsScalars) {
  EXPECT_EQ(Field("blob", "0x00ff10"), "\\\\x00ff10");
  EXPECT_EQ(Field("timestamp", "2024-02-29T12:34:56.789Z"), "2024-02-29T12:34:56.789Z");
  EXPECT_EQ(Field("time", "10:20:30.123456000"), "10:20:30.123456");
  EXPECT_EQ(Field("double", "NaN"), "NaN");
  EXPECT_EQ(Field("duration", "1y2mo3d4h5m6s7ms8us"),
            "1 years 2 mons 3 days 4 hours 5 mins 6.007008 secs");
  EXPECT_EQ(Field("duration", "-3d"), "-0 years -0 mons -3 days -0 hours -0 mins -0.000000 secs");
  std::string out;
  Status s = AppendCopyField(Col("time"), "10:20:30.123456789", &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("nanoseconds"));
}

// PostgreSQL input text before COPY escaping.
std::string Pg(std::string_view cql_type, std::string_view v) {
  auto r = PgTextForCql(Col(cql_type), v);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : "";
}

TEST(CopyFromCqlTypesTest, ConvertsCollections) {
  EXPECT_EQ(Pg("list<int>", "[3, 1, 2]"), R"({"3","1","2"})");
  EXPECT_EQ(Pg("set<text>", R"({'a b', 'it''s', 'q"\'})"), R"({"a b","it's","q\"\\"})");
  EXPECT_EQ(Pg("list<blob>", "[0xcafe]"), R"({"\\xcafe"})");
  EXPECT_EQ(Pg("set<timestamp>", "{'2024-01-01T00:00:00.000Z'}"), R"({"2024-01-01T00:00:00.000Z"})");
  EXPECT_EQ(Pg("map<text, int>", "{'a': 1, 'b:c': -2}"), R"({"a": 1, "b:c": -2})");
  EXPECT_EQ(Pg("map<int, text>", "{1: 'x\ty', 2: 'back\\slash'}"),
            R"({"1": "x\u0009y", "2": "back\\slash"})");
  EXPECT_EQ(Pg("map<text, double>", "{'n': NaN}"), R"({"n": "NaN"})");
  EXPECT_EQ(Pg("map<text, boolean>", "{'t': true}"), R"({"t": true})");
  EXPECT_EQ(Pg("list<text>", "[]"), "{}");
  // COPY escaping comes on top: every backslash doubled.
  EXPECT_EQ(Field("list<blob>", "[0xcafe]"), R"({"\\\\xcafe"})");
  EXPECT_FALSE(PgTextForCql(Col("list<text>"), "['unterminated]").ok());
}

TEST(CopyFromCqlTypesTest, ParsesTypeNames) {
  auto t = ParseCqlTypeExpr("frozen<map<text, frozen<list<int>>>>");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->name, "map");
  ASSERT_EQ(t->params.size(), 2u);
  EXPECT_EQ(t->params[1].name, "list");
  EXPECT_FALSE(ParseCqlTypeExpr("map<text").ok());
  EXPECT_TRUE(PgTypeAccepts(Col("text"), "character varying(20)"));
  EXPECT_TRUE(PgTypeAccepts(Col("decimal"), "numeric(12,2)"));
  EXPECT_FALSE(PgTypeAccepts(Col("int"), "bigint"));
}

}  // namespace
}  // namespace ferry
