// The PostgreSQL -> CQL mapping (move/cql_map.h): parsing, defaults, DDL,
// value conversion and every refusal.
#include "move/cql_map.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry {
namespace {

using ::testing::HasSubstr;

ColumnInfo Col(std::string name, std::string type, int pk = 0) {
  ColumnInfo c;
  c.name = std::move(name);
  c.type = type;
  c.base_type = type;
  c.is_array = type.ends_with("[]");
  c.pk_position = pk;
  return c;
}

TableInfo Messages() {
  TableInfo t;
  t.engine = Engine::kPostgres;
  t.schema = "public";
  t.name = "messages";
  t.columns = {Col("id", "bigint", 1), Col("room_id", "integer"), Col("content", "text"),
               Col("created_at", "timestamp with time zone"),
               Col("updated_at", "timestamp with time zone"), Col("tags", "text[]")};
  t.primary_key = {0};
  return t;
}

constexpr const char* kMap = R"toml(# chat mapping
[[copy.map]]
source = "public.messages"
target = "chat.messages_by_room"
partition_key = ["room_id", "bucket"]
clustering = ["created_at DESC", "message_id"]
ttl = 86400
write_timestamp = "updated_at"
[copy.map.columns]
room_id = "room_id"
bucket = "day(created_at)"
created_at = "created_at"
message_id = "id"
body = "content"
)toml";

TEST(CqlMapTest, ParsesAnEntry) {
  auto m = ParseCqlMapping(kMap, "chat.toml");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->tables.size(), 1u);
  const CqlTableMap& t = m->tables[0];
  EXPECT_EQ(t.keyspace, "chat");
  EXPECT_EQ(t.table, "messages_by_room");
  EXPECT_EQ(t.partition_key, (std::vector<std::string>{"room_id", "bucket"}));
  ASSERT_EQ(t.clustering.size(), 2u);
  EXPECT_EQ(t.clustering[0].second, CqlOrder::kDesc);
  EXPECT_EQ(t.clustering[1].second, CqlOrder::kAsc);
  EXPECT_EQ(t.ttl, 86400);
  ASSERT_EQ(t.columns.size(), 5u);
  EXPECT_EQ(t.columns[1].first, "bucket");  // file order, not alphabetical
  EXPECT_EQ(t.line, 2);
  EXPECT_NE(m->Find("public", "messages"), nullptr);
  EXPECT_EQ(m->Find("other", "messages"), nullptr);
}

TEST(CqlMapTest, ResolvesMappedTableDdlAndInsert) {
  auto m = ParseCqlMapping(kMap, "chat.toml");
  ASSERT_TRUE(m.ok());
  auto t = ResolveCqlTarget(Messages(), &m->tables[0], "ignored", false);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->columns[0].name, "room_id");
  EXPECT_EQ(t->columns[1].name, "bucket");
  EXPECT_EQ(t->columns[1].cql_type, "date");
  EXPECT_EQ(t->columns[2].name, "created_at");
  EXPECT_EQ(t->columns[3].name, "message_id");
  EXPECT_EQ(t->columns[4].name, "body");
  EXPECT_EQ(t->CreateTableCql(),
            "CREATE TABLE IF NOT EXISTS \"chat\".\"messages_by_room\" (\n"
            "  \"room_id\" int,\n  \"bucket\" date,\n  \"created_at\" timestamp,\n"
            "  \"message_id\" bigint,\n  \"body\" text,\n"
            "  PRIMARY KEY ((\"room_id\", \"bucket\"), \"created_at\", \"message_id\")\n)"
            " WITH CLUSTERING ORDER BY (\"created_at\" DESC, \"message_id\" ASC)");
  EXPECT_THAT(t->InsertCql(), HasSubstr("VALUES (?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?"));
  EXPECT_THAT(t->CreateKeyspaceCql(), HasSubstr("'SimpleStrategy', 'replication_factor': 1"));
  auto select = t->SelectList();
  ASSERT_EQ(select.size(), 6u);
  EXPECT_EQ(select[1], "(\"created_at\")::date");
  EXPECT_THAT(select[5], HasSubstr("extract(epoch from \"updated_at\") * 1000000"));
  Params out;
  std::vector<std::optional<std::string_view>> row = {
      "7", "2024-05-01", "2024-05-01 10:20:30.123+00", "42", "hi", "1714558830123000"};
  ASSERT_TRUE(t->ConvertRow(row, &out).ok());
  ASSERT_EQ(out.size(), 7u);
  EXPECT_EQ(*out[2], "2024-05-01T10:20:30.123Z");
  EXPECT_EQ(*out[5], "86400");
  EXPECT_EQ(*out[6], "1714558830123000");
}

TEST(CqlMapTest, OneToOneDefaults) {
  TableInfo t = Messages();
  t.columns[1].pk_position = 2;
  t.primary_key = {0, 1};
  auto r = ResolveCqlTarget(t, nullptr, "ks", false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->keyspace, "ks");
  EXPECT_EQ(r->table, "messages");
  EXPECT_EQ(r->partition_count, 1u);
  EXPECT_EQ(r->clustering_count, 1u);
  EXPECT_THAT(r->CreateTableCql(), HasSubstr("PRIMARY KEY ((\"id\"), \"room_id\")"));
  EXPECT_THAT(r->CreateTableCql(), HasSubstr("\"tags\" list<text>"));
  EXPECT_EQ(r->InsertCql().find("USING"), std::string::npos);
}

TEST(CqlMapTest, TypeMap) {
  struct Case {
    const char* pg;
    const char* cql;
  } cases[] = {{"smallint", "smallint"}, {"integer", "int"}, {"bigint", "bigint"},
               {"numeric(20,4)", "decimal"}, {"real", "float"}, {"double precision", "double"},
               {"boolean", "boolean"}, {"character varying(10)", "text"}, {"character(3)", "text"},
               {"bytea", "blob"}, {"uuid", "uuid"}, {"timestamp(3) with time zone", "timestamp"},
               {"timestamp without time zone", "timestamp"}, {"date", "date"},
               {"time without time zone", "time"}, {"jsonb", "text"}, {"json", "text"},
               {"inet", "inet"}, {"interval", "duration"}, {"integer[]", "list<int>"},
               {"text[]", "list<text>"}};
  for (const auto& c : cases) {
    auto r = CqlColumnFor(Col("c", c.pg), "t", false);
    ASSERT_TRUE(r.ok()) << c.pg << ": " << r.status().ToString();
    EXPECT_EQ(r->cql_type, c.cql) << c.pg;
  }
  ColumnInfo e = Col("mood", "mood");
  e.kind = 'e';
  EXPECT_EQ(CqlColumnFor(e, "t", false)->cql_type, "text");
}

TEST(CqlMapTest, RefusesTypesWithoutCqlForm) {
  ColumnInfo comp = Col("addr", "address");
  comp.kind = 'c';
  auto r = CqlColumnFor(comp, "public.people", false);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("table public.people column addr"));
  EXPECT_THAT(r.status().message(), HasSubstr("text(addr)"));
  ColumnInfo range = Col("span", "tstzrange");
  range.kind = 'r';
  EXPECT_FALSE(CqlColumnFor(range, "t", false).ok());
  EXPECT_FALSE(CqlColumnFor(Col("p", "point"), "t", false).ok());
  auto tz = CqlColumnFor(Col("at", "time with time zone"), "t", false);
  ASSERT_FALSE(tz.ok());
  EXPECT_THAT(tz.status().message(), HasSubstr("--allow-lossy"));
  EXPECT_TRUE(CqlColumnFor(Col("at", "time with time zone"), "t", true).ok());
}

TEST(CqlMapTest, ConvertsValues) {
  EXPECT_EQ(*ConvertCqlValue(CqlValueKind::kBool, "t", false), "true");
  EXPECT_EQ(*ConvertCqlValue(CqlValueKind::kBytea, "\\x0aff", false), "0x0aff");
  EXPECT_EQ(*ConvertCqlValue(CqlValueKind::kTimestamp, "2024-05-01 10:20:30+00", false),
            "2024-05-01T10:20:30.000Z");
  EXPECT_EQ(*ConvertCqlValue(CqlValueKind::kTimestamp, "2024-05-01 10:20:30.120000", false),
            "2024-05-01T10:20:30.120Z");
  EXPECT_EQ(*ConvertCqlValue(CqlValueKind::kInterval, "14,3,5000000", false), "14mo3d5000000us");
  EXPECT_EQ(*ConvertCqlValue(CqlValueKind::kInterval, "0,-1,0", false), "-0mo1d0us");
  EXPECT_EQ(*ConvertCqlValue(CqlValueKind::kInet, "10.0.0.1", false), "10.0.0.1");
}

TEST(CqlMapTest, RefusesLossyValuesUnlessAllowed) {
  auto us = ConvertCqlValue(CqlValueKind::kTimestamp, "2024-05-01 10:20:30.123456+00", false);
  ASSERT_FALSE(us.ok());
  EXPECT_THAT(us.status().message(), HasSubstr("--allow-lossy"));
  EXPECT_EQ(*ConvertCqlValue(CqlValueKind::kTimestamp, "2024-05-01 10:20:30.123456+00", true),
            "2024-05-01T10:20:30.123Z");
  EXPECT_FALSE(ConvertCqlValue(CqlValueKind::kNumeric, "NaN", true).ok());
  EXPECT_FALSE(ConvertCqlValue(CqlValueKind::kTimestamp, "infinity", true).ok());
  EXPECT_FALSE(ConvertCqlValue(CqlValueKind::kDate, "-infinity", true).ok());
  EXPECT_FALSE(ConvertCqlValue(CqlValueKind::kInet, "10.0.0.0/8", false).ok());
  EXPECT_EQ(*ConvertCqlValue(CqlValueKind::kInet, "10.0.0.0/8", true), "10.0.0.0");
  EXPECT_FALSE(ConvertCqlValue(CqlValueKind::kInterval, "1,-1,0", true).ok());
}

TEST(CqlMapTest, ArraysAndNullKeys) {
  auto t = ResolveCqlTarget(Messages(), nullptr, "ks", false);
  ASSERT_TRUE(t.ok());
  Params out;
  std::vector<std::optional<std::string_view>> row = {
      "1", "2", "x", std::nullopt, std::nullopt, "{a,\"b c\",\"it's\"}"};
  ASSERT_TRUE(t->ConvertRow(row, &out).ok());
  EXPECT_EQ(*out[5], "['a', 'b c', 'it''s']");
  row[5] = "{a,NULL}";
  auto bad = t->ConvertRow(row, &out);
  EXPECT_THAT(bad.message(), HasSubstr("cannot hold NULL"));
  row[5] = "{{1,2},{3,4}}";
  EXPECT_THAT(t->ConvertRow(row, &out).message(), HasSubstr("multi-dimensional"));
  row[5] = std::nullopt;
  row[0] = std::nullopt;
  auto null_key = t->ConvertRow(row, &out);
  ASSERT_FALSE(null_key.ok());
  EXPECT_THAT(null_key.message(), HasSubstr("partition key column id is NULL"));
}

Status ResolveText(const std::string& text, const TableInfo& table = Messages()) {
  auto m = ParseCqlMapping(text, "m.toml");
  if (!m.ok()) return m.status();
  return ResolveCqlTarget(table, m->tables.empty() ? nullptr : &m->tables[0], "ks", false).status();
}

TEST(CqlMapTest, Refusals) {
  const std::string head = "[[copy.map]]\nsource = \"messages\"\n";
  // A key column that is not among the mapped columns.
  Status s = ResolveText(head + "partition_key = [\"bucket\"]\n[copy.map.columns]\nid = \"id\"\n");
  EXPECT_THAT(s.message(), HasSubstr("m.toml:1: partition key column 'bucket' is not among"));
  // An unknown source column, named with its line.
  s = ResolveText(head + "partition_key = [\"id\"]\n[copy.map.columns]\nid = \"id\"\nx = \"nope\"\n");
  EXPECT_THAT(s.message(), HasSubstr("m.toml:6: column x reads 'nope'"));
  s = ResolveText(head + "write_timestamp = \"nope\"\n");
  EXPECT_THAT(s.message(), HasSubstr("write_timestamp names 'nope'"));
  s = ResolveText(head + "write_timestamp = \"content\"\n");
  EXPECT_THAT(s.message(), HasSubstr("must be a timestamp"));
  s = ResolveText(head + "partition_key = [\"id\"]\n[copy.map.columns]\nid = \"day(content)\"\n");
  EXPECT_THAT(s.message(), HasSubstr("day() needs a date or timestamp column"));
  s = ResolveText(head + "partition_key = [\"id\"]\n[copy.map.columns]\nid = \"week(id)\"\n");
  EXPECT_THAT(s.message(), HasSubstr("unknown function 'week'"));
  s = ResolveText(head + "partition_key = [\"t\"]\n[copy.map.columns]\nt = \"tags\"\n");
  EXPECT_THAT(s.message(), HasSubstr("not allow in a primary key"));
  // Parse errors.
  EXPECT_THAT(ResolveText(head + "colour = 1\n").message(), HasSubstr("m.toml:3: unknown key 'colour'"));
  EXPECT_THAT(ResolveText(head + "ttl = -1\n").message(), HasSubstr("ttl must be"));
  EXPECT_THAT(ResolveText(head + "clustering = [\"a sideways\"]\n").message(), HasSubstr("ASC"));
  EXPECT_THAT(ResolveText(head + "replication = \"x; DROP\"\n").message(), HasSubstr("CQL map"));
  EXPECT_THAT(ResolveText("[copy]\nmap = 1\n").message(), HasSubstr("[[copy.map]]"));
  EXPECT_THAT(ResolveText("[[copy.map]]\ntarget = \"a.b\"\n").message(), HasSubstr("needs source"));
  EXPECT_THAT(ResolveText(head + head).message(), HasSubstr("mapped twice"));
  EXPECT_THAT(ResolveText("[[copy.map]\n").message(), HasSubstr("m.toml:1"));
  // No primary key and no declared key.
  TableInfo nokey = Messages();
  nokey.primary_key.clear();
  s = ResolveCqlTarget(nokey, nullptr, "ks", false).status();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("has no primary key"));
  EXPECT_TRUE(ResolveText(head + "partition_key = [\"id\"]\n", nokey).ok());
  // No keyspace anywhere.
  EXPECT_THAT(ResolveCqlTarget(Messages(), nullptr, "", false).status().message(),
              HasSubstr("no CQL keyspace"));
}

}  // namespace
}  // namespace ferry
