// DescribeTable / ListTables / KeyRange / SplitByKey on real PostgreSQL and SQLite.
#include "move/table_info.h"

#include <memory>
#include <string>
#include <vector>

#include "drivers/registry.h"
#include "test_util.h"

namespace ferry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::unique_ptr<Connection> Open(const std::string& url) {
  auto c = OpenConnection(url);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

// Counts the rows of `table` inside `range`.
int64_t CountIn(Connection& conn, const TableInfo& table, const KeyRange& range) {
  Params params;
  std::string pred = RangePredicate(table, range, params);
  auto r = conn.Query("SELECT count(*) FROM " + table.QualifiedName() + " WHERE " + pred, params);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::stoll(r->Text(0, 0)) : -1;
}

TEST(TableInfoPg, DescribesTypesKeysDomainsEnumsArraysAndGenerated) {
  FERRY_REQUIRE_PG(admin);
  testing::FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  auto conn = Open(db.url());
  ASSERT_NE(conn, nullptr);
  ASSERT_OK(conn->Exec(R"sql(
    CREATE SCHEMA app;
    CREATE TYPE app.mood AS ENUM ('ok', 'sad');
    CREATE DOMAIN app.posint AS integer CHECK (VALUE > 0);
    CREATE TABLE app."Orders" (
      tenant int NOT NULL,
      id bigint GENERATED ALWAYS AS IDENTITY,
      amount numeric(12,2) DEFAULT 0,
      tags text[],
      m app.mood,
      qty app.posint,
      doubled bigint GENERATED ALWAYS AS (id * 2) STORED,
      PRIMARY KEY (id, tenant));
    CREATE TABLE nokey (a int);
    CREATE TABLE ferry_chunks_x (a int);)sql").status());
  ASSERT_OK_AND_ASSIGN(TableInfo t, DescribeTable(*conn, "app.Orders"));
  EXPECT_EQ(t.schema, "app");
  EXPECT_EQ(t.name, "Orders");
  EXPECT_EQ(t.QualifiedName(), "\"app\".\"Orders\"");
  ASSERT_EQ(t.columns.size(), 7u);
  // Key order is the constraint's order (id, tenant), not the column order.
  ASSERT_THAT(t.primary_key, ElementsAre(1u, 0u));
  EXPECT_EQ(t.KeyColumnList(), "\"id\", \"tenant\"");
  EXPECT_EQ(t.columns[1].identity, 'a');
  EXPECT_EQ(t.columns[2].type, "numeric(12,2)");
  EXPECT_EQ(t.columns[2].default_expr.value_or(""), "0");
  EXPECT_TRUE(t.columns[3].is_array);
  EXPECT_EQ(t.columns[3].type, "text[]");
  EXPECT_EQ(t.columns[4].kind, 'e');
  EXPECT_EQ(t.columns[4].type, "app.mood");
  EXPECT_EQ(t.columns[5].type, "app.posint");
  EXPECT_EQ(t.columns[5].base_type, "integer");
  EXPECT_EQ(t.columns[5].base_oid, 23u);
  EXPECT_TRUE(t.columns[6].generated);
  EXPECT_EQ(t.WritableColumnList(), "\"tenant\", \"id\", \"amount\", \"tags\", \"m\", \"qty\"");

  ASSERT_OK_AND_ASSIGN(TableInfo nk, DescribeTable(*conn, "nokey"));
  EXPECT_EQ(nk.schema, "public");
  EXPECT_FALSE(nk.has_primary_key());

  auto missing = DescribeTable(*conn, "app.order");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().ToString(), HasSubstr("app.order"));
  EXPECT_THAT(missing.status().Get("hint"), HasSubstr("app.Orders"));

  ASSERT_OK_AND_ASSIGN(auto tables, ListTables(*conn));
  EXPECT_THAT(tables, ElementsAre("app.Orders", "public.nokey"));
}

TEST(TableInfoPg, SplitByKeyCoversEveryRowOnceWithCompositeKeys) {
  FERRY_REQUIRE_PG(admin);
  testing::FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  auto conn = Open(db.url());
  ASSERT_NE(conn, nullptr);
  ASSERT_OK(conn->Exec("CREATE TABLE t (a int, b text, v int, PRIMARY KEY (a, b));"
                       "INSERT INTO t SELECT g / 10, 'k' || (g % 10), g FROM generate_series(1, 1000) g")
                .status());
  ASSERT_OK_AND_ASSIGN(TableInfo t, DescribeTable(*conn, "t"));
  ASSERT_OK_AND_ASSIGN(auto ranges, SplitByKey(*conn, t, KeyRange{}, "", 100));
  ASSERT_EQ(ranges.size(), 10u);
  EXPECT_FALSE(ranges.front().lower.has_value());
  EXPECT_FALSE(ranges.back().upper.has_value());
  int64_t total = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (i > 0) {
      EXPECT_EQ(ranges[i].lower, ranges[i - 1].upper);
    }
    int64_t n = CountIn(*conn, t, ranges[i]);
    EXPECT_EQ(n, 100) << ranges[i].ToString();
    total += n;
  }
  EXPECT_EQ(total, 1000);

  // A sub-range with a filter, capped in count.
  KeyRange within{KeyTuple{"10", "k0"}, KeyTuple{"60", "k0"}};
  ASSERT_OK_AND_ASSIGN(auto sub, SplitByKey(*conn, t, within, "v % 2 = 0", 10, 4));
  ASSERT_EQ(sub.size(), 4u);
  EXPECT_EQ(sub.front().lower, within.lower);
  EXPECT_EQ(sub.back().upper, within.upper);
  int64_t inside = 0;
  for (const auto& r : sub) inside += CountIn(*conn, t, r);
  EXPECT_EQ(inside, CountIn(*conn, t, within));

  // Encode/Decode round trip, as stored in the control tables.
  ASSERT_OK_AND_ASSIGN(KeyRange back, KeyRange::Decode(sub[1].Encode()));
  EXPECT_EQ(back.lower, sub[1].lower);
  EXPECT_EQ(back.upper, sub[1].upper);
  EXPECT_FALSE(KeyRange::Decode("[1,2]").ok());

  ASSERT_OK(conn->Exec("CREATE TABLE nokey (a int)").status());
  ASSERT_OK_AND_ASSIGN(TableInfo nk, DescribeTable(*conn, "nokey"));
  auto refused = SplitByKey(*conn, nk, KeyRange{}, "", 10);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().ToString(), HasSubstr("no primary key"));
}

TEST(TableInfoSqlite, DescribesAndSplits) {
  testing::TempDir dir;
  auto conn = Open("sqlite:" + dir.File("t.db"));
  ASSERT_NE(conn, nullptr);
  ASSERT_OK(conn->Exec(R"sql(
    CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price NUMERIC,
                        twice INTEGER GENERATED ALWAYS AS (id * 2) STORED);
    CREATE TABLE pairs (x TEXT, y INTEGER, PRIMARY KEY (y, x));
    WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 250)
    INSERT INTO items (id, name, price) SELECT n, 'n' || n, n * 1.5 FROM g;)sql").status());
  ASSERT_OK_AND_ASSIGN(TableInfo t, DescribeTable(*conn, "items"));
  EXPECT_EQ(t.engine, Engine::kSqlite);
  ASSERT_EQ(t.columns.size(), 4u);
  EXPECT_EQ(t.columns[0].type, "INTEGER");
  EXPECT_TRUE(t.columns[1].not_null);
  EXPECT_TRUE(t.columns[3].generated);
  ASSERT_THAT(t.primary_key, ElementsAre(0u));
  ASSERT_OK_AND_ASSIGN(TableInfo p, DescribeTable(*conn, "pairs"));
  ASSERT_THAT(p.primary_key, ElementsAre(1u, 0u));

  ASSERT_OK_AND_ASSIGN(auto ranges, SplitByKey(*conn, t, KeyRange{}, "", 100));
  ASSERT_EQ(ranges.size(), 3u);
  EXPECT_EQ(CountIn(*conn, t, ranges[0]), 100);
  EXPECT_EQ(CountIn(*conn, t, ranges[1]), 100);
  EXPECT_EQ(CountIn(*conn, t, ranges[2]), 50);

  ASSERT_OK_AND_ASSIGN(auto tables, ListTables(*conn));
  EXPECT_THAT(tables, ElementsAre("items", "pairs"));
  EXPECT_EQ(DescribeTable(*conn, "nope").status().code(), StatusCode::kNotFound);
}

// SplitIntegerKeyRange (copy helper): min/max cuts that cover every row once.
TEST(TableInfoSqlite, SplitIntegerKeyRangeCoversEveryRowOnce) {
  testing::TempDir dir;
  auto conn = Open("sqlite:" + dir.File("i.db"));
  ASSERT_NE(conn, nullptr);
  ASSERT_OK(conn->Exec(R"sql(
    CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT);
    WITH RECURSIVE g(n) AS (SELECT -50 UNION ALL SELECT n + 1 FROM g WHERE n < 249)
    INSERT INTO items SELECT n * 3, 'v' || n FROM g;
    CREATE TABLE loose (id INT PRIMARY KEY, v TEXT);
    INSERT INTO loose VALUES (1, 'a'), ('x', 'b');
    CREATE TABLE empty (id INTEGER PRIMARY KEY);
    CREATE TABLE pairs (x TEXT, y INTEGER, PRIMARY KEY (y, x));)sql").status());
  ASSERT_OK_AND_ASSIGN(TableInfo t, DescribeTable(*conn, "items"));
  EXPECT_TRUE(HasIntegerKey(t));
  ASSERT_OK_AND_ASSIGN(auto ranges, SplitIntegerKeyRange(*conn, t, "", -1, 100));
  ASSERT_EQ(ranges.size(), 3u);  // 300 rows, 100 per range
  EXPECT_FALSE(ranges.front().lower);
  EXPECT_FALSE(ranges.back().upper);
  int64_t total = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (i > 0) {
      EXPECT_EQ(ranges[i].lower, ranges[i - 1].upper);
    }
    int64_t n = CountIn(*conn, t, ranges[i]);
    EXPECT_EQ(n, 100) << ranges[i].ToString();
    total += n;
  }
  EXPECT_EQ(total, 300);
  // A filter: min/max of the matching rows; max_ranges caps the count.
  ASSERT_OK_AND_ASSIGN(auto few, SplitIntegerKeyRange(*conn, t, "id >= 300", -1, 10, 4));
  EXPECT_EQ(few.size(), 4u);
  ASSERT_OK_AND_ASSIGN(TableInfo e, DescribeTable(*conn, "empty"));
  ASSERT_OK_AND_ASSIGN(auto none, SplitIntegerKeyRange(*conn, e, "", -1, 10));
  ASSERT_EQ(none.size(), 1u);
  EXPECT_TRUE(none[0].unbounded());
  // Not applicable: SQLite's loose typing, and composite keys.
  ASSERT_OK_AND_ASSIGN(TableInfo l, DescribeTable(*conn, "loose"));
  EXPECT_EQ(SplitIntegerKeyRange(*conn, l, "", -1, 1).status().code(),
            StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(TableInfo p, DescribeTable(*conn, "pairs"));
  EXPECT_FALSE(HasIntegerKey(p));
  EXPECT_EQ(SplitIntegerKeyRange(*conn, p, "", -1, 1).status().code(),
            StatusCode::kFailedPrecondition);
}

// SplitIntegerKeyRange's bounds step by one integer (a reader finds a key's
// range by integer division), also over the whole bigint range, whose width
// does not fit a bigint.
TEST(TableInfoSqlite, SplitIntegerKeyRangeStepsEvenlyOverTheWholeBigintRange) {
  testing::TempDir dir;
  auto conn = Open("sqlite:" + dir.File("e.db"));
  ASSERT_NE(conn, nullptr);
  ASSERT_OK(conn->Exec(R"sql(
    CREATE TABLE wide (id INTEGER PRIMARY KEY);
    INSERT INTO wide VALUES (-9223372036854775807 - 1), (-9223372036854775807), (0),
                            (9223372036854775806), (9223372036854775807);
    CREATE TABLE dense (id INTEGER PRIMARY KEY);
    WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 1000)
    INSERT INTO dense SELECT n FROM g;)sql").status());
  ASSERT_OK_AND_ASSIGN(TableInfo wide, DescribeTable(*conn, "wide"));
  ASSERT_OK_AND_ASSIGN(auto ranges, SplitIntegerKeyRange(*conn, wide, "", -1, 1, 4));
  ASSERT_EQ(ranges.size(), 4u);
  EXPECT_EQ(ranges[0].upper, KeyTuple{"-4611686018427387904"});  // min + 2^62
  EXPECT_EQ(ranges[1].upper, KeyTuple{"0"});
  EXPECT_EQ(ranges[2].upper, KeyTuple{"4611686018427387904"});
  const std::vector<int64_t> rows = {2, 0, 1, 2};
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (i > 0) {
      EXPECT_EQ(ranges[i].lower, ranges[i - 1].upper);
    }
    EXPECT_EQ(CountIn(*conn, wide, ranges[i]), rows[i]) << ranges[i].ToString();
  }
  ASSERT_OK_AND_ASSIGN(TableInfo dense, DescribeTable(*conn, "dense"));
  ASSERT_OK_AND_ASSIGN(auto even, SplitIntegerKeyRange(*conn, dense, "", -1, 100));
  ASSERT_EQ(even.size(), 10u);
  for (size_t i = 1; i < even.size(); ++i) {
    EXPECT_EQ(even[i].lower, KeyTuple{std::to_string(1 + 100 * i)});
    EXPECT_EQ(CountIn(*conn, dense, even[i]), 100);
  }
}

}  // namespace
}  // namespace ferry
