// ferry verify end to end on real PostgreSQL databases and SQLite files:
// planted differences are found exactly, equal data across engines is
// reported identical, bad input fails with a clear error.
#include <nlohmann/json.hpp>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "drivers/registry.h"
#include "move/canonical.h"
#include "move/control.h"
#include "move/table_info.h"
#include "move/verify.h"
#include "move/verify_sqlite.h"
#include "test_util.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;
using testing::FreshPgDatabase;
using testing::RunFerry;
using testing::RunResult;
using testing::TempDir;

std::unique_ptr<Connection> Open(const std::string& url) {
  auto c = OpenConnection(url);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

void Exec(const std::string& url, const std::string& sql) {
  auto c = Open(url);
  ASSERT_NE(c, nullptr);
  auto r = c->Exec(sql);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

nlohmann::json ParseJson(const testing::RunResult& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "stdout: " << r.out << "\nstderr: " << r.err;
  return j;
}

// "kind:key" for every listed difference, e.g. "changed:1".
std::set<std::string> Listed(const nlohmann::json& table) {
  std::set<std::string> out;
  for (const auto& d : table["differences"]) {
    std::string key;
    for (const auto& col : table["key_columns"]) {
      key += (key.empty() ? "" : "|") + d["key"][col.get<std::string>()].get<std::string>();
    }
    out.insert(d["kind"].get<std::string>() + ":" + key);
  }
  return out;
}

// The same 5000 mixed-type rows on both sides.
constexpr const char* kPgMixed = R"sql(
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE TABLE items (
    id bigint PRIMARY KEY,
    name text,
    note text,
    price numeric(12,2),
    weight double precision,
    ok boolean,
    created timestamptz,
    payload bytea,
    tags text[],
    m mood);
  INSERT INTO items
  SELECT g, 'item ' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'n' || g END,
         g * 1.25, g / 3.0, g % 2 = 0,
         timestamptz '2024-01-01 00:00:00+00' + g * interval '37 minutes',
         decode(md5(g::text), 'hex'), ARRAY['a' || g, 'b'], (ARRAY['sad','ok','happy'])[1 + g % 3]::mood
    FROM generate_series(1, 5000) g;
  ANALYZE items;)sql";

struct PgPair {
  FreshPgDatabase src, dst;
  bool ok() const { return src.ok() && dst.ok(); }
  // The same mixed-type table on both sides.
  void LoadMixed() const {
    Exec(src.url(), kPgMixed);
    Exec(dst.url(), kPgMixed);
  }
  // `ferry verify --from src --to dst` plus `args`.
  RunResult Verify(const std::vector<std::string>& args) const {
    std::vector<std::string> all = {"verify", "--from", src.url(), "--to", dst.url()};
    all.insert(all.end(), args.begin(), args.end());
    return RunFerry(all);
  }
};

TEST(VerifyPg, IdenticalTablesExitZero) {
  FERRY_REQUIRE_PG(admin);
  PgPair p;
  ASSERT_TRUE(p.ok());
  p.LoadMixed();
  auto r = p.Verify({"--table", "items", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = ParseJson(r);
  EXPECT_TRUE(j["identical"].get<bool>());
  EXPECT_EQ(j["tables"][0]["source_rows"], 5000);
  EXPECT_EQ(j["tables"][0]["target_rows"], 5000);
  EXPECT_EQ(j["tables"][0]["differences"].size(), 0u);
  // A small table: the workers share the first pass by key ranges, a bigint
  // key's evenly stepped ranges grouped by integer division.
  for (const char* side : {"source", "target"}) {
    const auto& f = j["tables"][0]["first_pass"][side];
    EXPECT_EQ(f["split"], "key ranges") << side;
    EXPECT_EQ(f["grouping"], "integer division") << side;
    EXPECT_EQ(f["queries"], 2) << side;
  }
  auto text = p.Verify({"--table", "items"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_THAT(text.out, HasSubstr("items: identical (5000 rows)"));
}

// Changed value, NULL vs empty string, missing row, extra row, and changes
// in the first and the last row.
void PlantDifferences(const std::string& dst_url) {
  Exec(dst_url, R"sql(
    UPDATE items SET name = 'renamed' WHERE id = 2500;
    UPDATE items SET note = '' WHERE id = 1001;          -- NULL on the source (1001 % 7 = 0)
    DELETE FROM items WHERE id = 3000;
    INSERT INTO items (id, name) VALUES (6000, 'extra');
    UPDATE items SET price = price + 0.01 WHERE id = 1;
    UPDATE items SET ok = NOT ok, m = 'sad' WHERE id = 5000;)sql");
}

void ExpectPlanted(const nlohmann::json& t) {
  EXPECT_EQ(t["missing"], 1);
  EXPECT_EQ(t["extra"], 1);
  EXPECT_EQ(t["changed"], 4);
  EXPECT_EQ(Listed(t), (std::set<std::string>{"changed:1", "changed:1001", "changed:2500",
                                              "missing:3000", "extra:6000", "changed:5000"}));
  for (const auto& d : t["differences"]) {
    std::string key = d["key"]["id"];
    if (key == "1001") {
      ASSERT_EQ(d["columns"].size(), 1u);
      EXPECT_EQ(d["columns"][0]["column"], "note");
      EXPECT_TRUE(d["columns"][0]["source"].is_null());
      EXPECT_EQ(d["columns"][0]["target"], "");
    } else if (key == "2500") {
      EXPECT_EQ(d["columns"][0]["column"], "name");
      EXPECT_EQ(d["columns"][0]["source"], "item 2500");
      EXPECT_EQ(d["columns"][0]["target"], "renamed");
    } else if (key == "1") {
      EXPECT_EQ(d["columns"][0]["column"], "price");
      EXPECT_EQ(d["columns"][0]["source"], "1.25");
      EXPECT_EQ(d["columns"][0]["target"], "1.26");
    } else if (key == "5000") {
      ASSERT_EQ(d["columns"].size(), 2u);
      EXPECT_EQ(d["columns"][0]["column"], "ok");
      EXPECT_EQ(d["columns"][1]["column"], "m");
      EXPECT_EQ(d["columns"][1]["target"], "sad");
    }
  }
}

TEST(VerifyPg, FindsPlantedDifferencesExactly) {
  FERRY_REQUIRE_PG(admin);
  PgPair p;
  ASSERT_TRUE(p.ok());
  p.LoadMixed();
  PlantDifferences(p.dst.url());
  // Small leaves force several levels of bisection.
  auto r = p.Verify({"--table", "items",
                     "--leaf-rows", "8", "--json"});
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;
  auto j = ParseJson(r);
  EXPECT_FALSE(j["identical"].get<bool>());
  const auto& t = j["tables"][0];
  ExpectPlanted(t);
  EXPECT_EQ(t["source_rows"], 5000);
  EXPECT_EQ(t["target_rows"], 5000);
  // Only the small ranges around the 6 differences were read row by row.
  EXPECT_LE(t["rows_fetched"].get<int64_t>(), 6 * 2 * 8 + 16);
  EXPECT_GT(j["summary"]["bytes_transferred"].get<int64_t>(), 0);

  // In key order in the text report, with the columns and both values.
  auto text = p.Verify({"--table", "items"});
  EXPECT_EQ(text.exit_code, 10);
  EXPECT_THAT(text.out, HasSubstr("items: 1 missing on target, 1 extra on target, 4 changed"));
  EXPECT_THAT(text.out, HasSubstr("changed  id=2500  name: \"item 2500\" -> \"renamed\""));
  EXPECT_THAT(text.out, HasSubstr("changed  id=1001  note: NULL -> \"\""));
  EXPECT_THAT(text.out, HasSubstr("missing  id=3000"));
  EXPECT_THAT(text.out, HasSubstr("extra    id=6000"));
  EXPECT_LT(text.out.find("id=1 "), text.out.find("id=1001"));
  EXPECT_LT(text.out.find("id=3000"), text.out.find("id=5000"));

  // Rows travel instead of hashes: same findings.
  auto rows = p.Verify({"--table", "items",
                        "--no-hash-in-db", "--workers", "1", "--json"});
  EXPECT_EQ(rows.exit_code, 10) << rows.out << rows.err;
  ExpectPlanted(ParseJson(rows)["tables"][0]);
}

// Changes that a weak row hash would miss, each in its own small range (so
// the range hash alone must catch it): a bigint changed to a value whose two
// 32-bit halves XOR alike, array bounds and shape with the same elements,
// NULL vs '' in a text and in an array, values swapped between two rows and
// between two columns (one of them 0, which some hash functions skip), a
// change before an empty array.
TEST(VerifyPg, RangeHashSeesEveryKindOfChange) {
  FERRY_REQUIRE_PG(admin);
  PgPair p;
  ASSERT_TRUE(p.ok());
  constexpr const char* kTable = R"sql(
    CREATE TABLE h (id bigint PRIMARY KEY, big bigint, a text, b text, tags text[],
                    at timestamptz, n numeric, f1 double precision, f2 double precision);
    INSERT INTO h SELECT g, g * 1000, 'a' || g, 'b' || g, ARRAY['x' || g, 'y'],
                         timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour', g, 0, g
      FROM generate_series(1, 1000) g;
    UPDATE h SET tags = '{}' WHERE id = 650;
    UPDATE h SET big = 0 WHERE id = 100;
    UPDATE h SET a = NULL WHERE id = 300;
    UPDATE h SET tags = NULL WHERE id = 700;
    ANALYZE h;)sql";
  Exec(p.src.url(), kTable);
  Exec(p.dst.url(), kTable);
  Exec(p.dst.url(), R"sql(
    UPDATE h SET big = 4294967297 WHERE id = 100;                 -- halves 1 and 1: XOR 0, as 0
    UPDATE h SET tags = '[0:1]={x200,y}' WHERE id = 200;          -- lower bound only
    UPDATE h SET tags = '{{x250},{y}}' WHERE id = 250;            -- shape only
    UPDATE h SET a = '' WHERE id = 300;                           -- NULL -> ''
    UPDATE h SET (a, b) = (b, a) WHERE id = 400;                  -- columns swapped
    UPDATE h SET tags = (SELECT tags FROM h WHERE id = 501) WHERE id = 500;
    UPDATE h SET tags = '{x500,y}' WHERE id = 501;                -- rows 500, 501 swap tags
    UPDATE h SET tags = '{}' WHERE id = 700;                      -- NULL -> empty array
    UPDATE h SET a = 'changed' WHERE id = 650;                    -- before an empty array
    UPDATE h SET (f1, f2) = (f2, f1) WHERE id = 600;              -- 0 and 600 swapped
    UPDATE h SET tags = '{x800,y,NULL}' WHERE id = 800;           -- a NULL element added
  )sql");
  auto r = p.Verify({"--table", "h",
                     "--leaf-rows", "1", "--max-report", "100", "--json"});
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;
  auto j = ParseJson(r);
  const auto& t = j["tables"][0];
  EXPECT_EQ(Listed(t), (std::set<std::string>{"changed:100", "changed:200", "changed:250",
                                              "changed:300", "changed:400", "changed:500",
                                              "changed:501", "changed:600", "changed:650",
                                              "changed:700", "changed:800"}))
      << r.out;
  // The changes were found by range hashes, not by reading the table.
  EXPECT_LT(t["rows_fetched"].get<int64_t>(), 200);
}

TEST(VerifyPg, MaxReportLimitsTheListNotTheCounts) {
  FERRY_REQUIRE_PG(admin);
  PgPair p;
  ASSERT_TRUE(p.ok());
  p.LoadMixed();
  Exec(p.dst.url(), "UPDATE items SET name = 'x' WHERE id % 100 = 0");  // 50 rows
  auto r = p.Verify({"--table", "items",
                     "--max-report", "7", "--json"});
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;
  auto j = ParseJson(r);
  EXPECT_EQ(j["tables"][0]["changed"], 50);
  EXPECT_EQ(j["tables"][0]["differences"].size(), 7u);
  EXPECT_EQ(j["summary"]["listed"], 7);
  EXPECT_TRUE(j["summary"]["truncated"].get<bool>());
  // The first seven in key order.
  EXPECT_EQ(j["tables"][0]["differences"][0]["key"]["id"], "100");
  EXPECT_EQ(j["tables"][0]["differences"][6]["key"]["id"], "700");
}

TEST(VerifyPg, WhereLimitsTheComparedRows) {
  FERRY_REQUIRE_PG(admin);
  PgPair p;
  ASSERT_TRUE(p.ok());
  p.LoadMixed();
  PlantDifferences(p.dst.url());
  auto r = p.Verify({"--table", "items",
                     "--where", "id BETWEEN 2000 AND 2999", "--json"});
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;
  auto j = ParseJson(r);
  EXPECT_EQ(j["tables"][0]["source_rows"], 1000);
  EXPECT_EQ(Listed(j["tables"][0]), std::set<std::string>{"changed:2500"});
  auto clean = p.Verify({"--table", "items",
                         "--where", "id BETWEEN 3001 AND 4999"});
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
}

TEST(VerifyPg, CompositePrimaryKey) {
  FERRY_REQUIRE_PG(admin);
  PgPair p;
  ASSERT_TRUE(p.ok());
  const char* ddl = R"sql(
    CREATE TABLE lines (tenant text, n int, qty int, PRIMARY KEY (tenant, n));
    INSERT INTO lines SELECT 't' || (g % 10), g, g FROM generate_series(1, 3000) g;)sql";
  Exec(p.src.url(), ddl);
  Exec(p.dst.url(), ddl);
  Exec(p.dst.url(), R"sql(
    UPDATE lines SET qty = -1 WHERE tenant = 't3' AND n = 1503;
    DELETE FROM lines WHERE tenant = 't0' AND n = 10;
    INSERT INTO lines VALUES ('t9', 100000, 1);)sql");
  auto r = p.Verify({"--table", "lines",
                     "--leaf-rows", "16", "--json"});
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;
  auto j = ParseJson(r);
  EXPECT_EQ(j["tables"][0]["key_columns"], nlohmann::json({"tenant", "n"}));
  EXPECT_EQ(Listed(j["tables"][0]),
            (std::set<std::string>{"missing:t0|10", "changed:t3|1503", "extra:t9|100000"}));
}

TEST(VerifyPg, BadInputNamesTableAndColumn) {
  FERRY_REQUIRE_PG(admin);
  PgPair p;
  ASSERT_TRUE(p.ok());
  Exec(p.src.url(), R"sql(
    CREATE TABLE a (id int PRIMARY KEY, v text);
    CREATE TABLE b (id int PRIMARY KEY, v text, w int);
    CREATE TABLE c (x int, y int, PRIMARY KEY (x));
    CREATE TABLE nokey (v text);)sql");
  Exec(p.dst.url(), R"sql(
    CREATE TABLE a (id int PRIMARY KEY, v text);
    CREATE TABLE b (id int PRIMARY KEY, v text);
    CREATE TABLE c (x int, y int, PRIMARY KEY (x, y));
    CREATE TABLE nokey (v text);)sql");
  auto missing = p.Verify({"--table", "nosuch"});
  EXPECT_EQ(missing.exit_code, 7) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("nosuch"));
  auto column = p.Verify({"--table", "b"});
  EXPECT_EQ(column.exit_code, 8) << column.err;
  EXPECT_THAT(column.err, HasSubstr("table b: columns differ: w missing on the target"));
  auto key = p.Verify({"--table", "c"});
  EXPECT_EQ(key.exit_code, 8) << key.err;
  EXPECT_THAT(key.err, HasSubstr("primary keys differ: source (x), target (x, y)"));
  auto nokey = p.Verify({"--table", "nokey"});
  EXPECT_EQ(nokey.exit_code, 9) << nokey.err;
  EXPECT_THAT(nokey.err, HasSubstr("nokey"));
  auto where = p.Verify({"--table", "a",
                         "--where", "id >>> 3"});
  EXPECT_EQ(where.exit_code, 8) << where.err;
  auto no_to = RunFerry({"verify", "--from", p.src.url(), "--table", "a"});
  EXPECT_EQ(no_to.exit_code, 8) << no_to.err;
  EXPECT_THAT(no_to.err, HasSubstr("--to"));
}

TEST(VerifyPg, AllTables) {
  FERRY_REQUIRE_PG(admin);
  PgPair p;
  ASSERT_TRUE(p.ok());
  const char* ddl = R"sql(
    CREATE TABLE a (id int PRIMARY KEY, v text);
    CREATE TABLE b (id int PRIMARY KEY, v text);
    INSERT INTO a SELECT g, 'a' FROM generate_series(1, 100) g;
    INSERT INTO b SELECT g, 'b' FROM generate_series(1, 100) g;)sql";
  Exec(p.src.url(), ddl);
  Exec(p.dst.url(), ddl);
  Exec(p.dst.url(), "DELETE FROM b WHERE id = 50");
  auto r = p.Verify({"--all", "--json"});
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;
  auto j = ParseJson(r);
  ASSERT_EQ(j["tables"].size(), 2u);
  EXPECT_TRUE(j["tables"][0]["identical"].get<bool>());
  EXPECT_EQ(Listed(j["tables"][1]), std::set<std::string>{"missing:50"});
}

// Every type on PostgreSQL, and the same values in SQLite the way ferry copy
// stores them (numeric as exact TEXT, timestamptz as ISO text with offset,
// bytea as BLOB, boolean as 0/1, uuid/json/arrays as text), some written
// differently but equal (another offset, upper-case uuid, compact json).
constexpr const char* kPgTypes = R"sql(
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
  CREATE TABLE types (
    id integer PRIMARY KEY, i2 smallint, i8 bigint, n numeric(20,4), nbig numeric,
    f4 real, f8 double precision, f8t double precision, txt text, vc varchar(10), b bytea,
    flag boolean, d date, tm time, ts timestamp, tstz timestamptz, iv interval, u uuid,
    j json, jb jsonb, arr integer[], tarr text[], m mood, dom posint);
  INSERT INTO types VALUES
   (1, -5, 9223372036854775807, 12.5, 'NaN', 0.1, 1.5, '-0', 'héllo, "world" (x)', 'abc',
    '\x00ff', true, '2024-02-29', '12:34:56.5', '2024-01-31 13:45:00.25',
    '2024-06-01 12:00:00+02', '1 year 2 mons 3 days 04:05:06.5',
    'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"b": 1,  "a":2}', '{"b":1,"a":[1.0,2e2]}',
    '{1,2,3}', '{"a b",NULL}', 'happy', 7),
   (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
   (3, 0, 0, 123456789012345.1234, 0.00000000000000000001, 'Infinity', 'NaN', 'Infinity', '', '',
    '\x', false, 'infinity', '00:00:00', 'infinity', '-infinity', '-00:00:01.5',
    '00000000-0000-0000-0000-000000000000', '[]', '[]', '{}', '{}', 'sad', 1),
   (4, 1, -1, -0.001, 1e20, -1e-5, 1.2345678901234567e20, 1e300, ' lead', 'x',
    '\xdeadbeef', true, '0044-03-15 BC', '23:59:59.999999', '1999-12-31 23:59:59',
    '0044-03-15 10:00:00+00 BC', '-1 mons +00:00:01', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
    '"s"', '{"aa": {"b": [true, null]}, "c": "\u00e9\n"}', '{-1}', '{"x,y"}', 'ok', 2);)sql";

constexpr const char* kSqliteTypes = R"sql(
  CREATE TABLE types (
    id INTEGER PRIMARY KEY, i2 INTEGER, i8 INTEGER, n TEXT, nbig TEXT, f4 REAL, f8 REAL,
    f8t TEXT, txt TEXT, vc TEXT, b BLOB, flag INTEGER, d TEXT, tm TEXT, ts TEXT, tstz TEXT,
    iv TEXT, u TEXT, j TEXT, jb TEXT, arr TEXT, tarr TEXT, m TEXT, dom INTEGER);
  INSERT INTO types VALUES
   (1, -5, 9223372036854775807, '12.5000', 'NaN', 0.1, 1.5, '-0', 'héllo, "world" (x)', 'abc',
    x'00ff', 1, '2024-02-29', '12:34:56.500', '2024-01-31T13:45:00.25',
    '2024-06-01T10:00:00Z', 'P1Y2M3DT4H5M6.5S',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1,  "a":2}', '{"a":[1.0,200],"b":1}',
    '{1,2,3}', '{"a b",NULL}', 'happy', 7),
   (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
   (3, 0, 0, '123456789012345.1234', '0.00000000000000000001', 'Infinity', 'NaN', 'Infinity', '', '',
    x'', 0, 'infinity', '00:00:00', 'infinity', '-infinity', '-00:00:01.5',
    '00000000-0000-0000-0000-000000000000', '[]', '[]', '{}', '{}', 'sad', 1),
   (4, 1, -1, '-0.0010', '100000000000000000000', -1e-5, 1.2345678901234567e20, '1e+300', ' lead', 'x',
    x'deadbeef', 1, '0044-03-15 BC', '23:59:59.999999', '1999-12-31 23:59:59',
    '0044-03-15 12:00:00+02 BC', '-1 mons +00:00:01', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
    '"s"', '{"c":"é\n","aa":{"b":[true,null]}}', '{-1}', '{"x,y"}', 'ok', 2);)sql";

TEST(VerifyCrossEngine, PostgresAndSqliteWithEqualValuesAreIdentical) {
  FERRY_REQUIRE_PG(admin);
  FreshPgDatabase pg;
  ASSERT_TRUE(pg.ok());
  TempDir dir;
  const std::string lite = "sqlite:" + dir.File("copy.db");
  Exec(pg.url(), kPgTypes);
  Exec(lite, kSqliteTypes);
  for (bool hash_in_db : {true, false}) {
    std::vector<std::string> args = {"verify", "--from", pg.url(), "--to", lite, "--table", "types", "--json"};
    if (!hash_in_db) args.push_back("--no-hash-in-db");
    auto r = RunFerry(args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(ParseJson(r)["tables"][0]["source_rows"], 4);
  }
  // And in the other direction (SQLite is the source).
  auto back = RunFerry({"verify", "--from", lite, "--to", pg.url(), "--table", "types"});
  EXPECT_EQ(back.exit_code, 0) << back.out << back.err;
}

// Every type between two PostgreSQL databases (each column's hash step runs):
// equal tables are identical; a change in every row (NULL -> value, value ->
// NULL, one column each) is found by the range hashes of single rows.
TEST(VerifyPg, EveryTypeHashesAndDiffers) {
  FERRY_REQUIRE_PG(admin);
  PgPair p;
  ASSERT_TRUE(p.ok());
  Exec(p.src.url(), kPgTypes);
  Exec(p.dst.url(), kPgTypes);
  auto same = p.Verify({"--table", "types"});
  EXPECT_EQ(same.exit_code, 0) << same.out << same.err;
  Exec(p.dst.url(), R"sql(
    UPDATE types SET jb = '{}' WHERE id = 1;
    UPDATE types SET tarr = '{}' WHERE id = 2;
    UPDATE types SET b = NULL WHERE id = 3;
    UPDATE types SET tstz = tstz + interval '1 microsecond' WHERE id = 4;)sql");
  auto r = p.Verify({"--table", "types",
                     "--leaf-rows", "1", "--json"});
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;
  const auto t = ParseJson(r)["tables"][0];
  EXPECT_EQ(Listed(t), (std::set<std::string>{"changed:1", "changed:2", "changed:3", "changed:4"}));
}

TEST(VerifyCrossEngine, DifferencesBetweenPostgresAndSqlite) {
  FERRY_REQUIRE_PG(admin);
  FreshPgDatabase pg;
  ASSERT_TRUE(pg.ok());
  TempDir dir;
  const std::string lite = "sqlite:" + dir.File("copy.db");
  Exec(pg.url(), kPgTypes);
  Exec(lite, kSqliteTypes);
  Exec(lite, R"sql(
    UPDATE types SET n = '12.5001', txt = NULL WHERE id = 1;
    UPDATE types SET txt = NULL WHERE id = 3;           -- '' on PostgreSQL
    UPDATE types SET tstz = '2024-06-01T10:00:01Z', f8t = '0' WHERE id = 4;
    DELETE FROM types WHERE id = 2;
    INSERT INTO types (id) VALUES (5);)sql");
  auto r = RunFerry({"verify", "--from", pg.url(), "--to", lite, "--table", "types", "--json"});
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;
  auto j = ParseJson(r);
  const auto& t = j["tables"][0];
  EXPECT_EQ(Listed(t), (std::set<std::string>{"changed:1", "missing:2", "changed:3", "changed:4",
                                              "extra:5"}));
  for (const auto& d : t["differences"]) {
    std::string key = d["key"]["id"];
    std::set<std::string> cols;
    if (d.contains("columns")) {
      for (const auto& c : d["columns"]) cols.insert(c["column"].get<std::string>());
    }
    if (key == "1") {
      EXPECT_EQ(cols, (std::set<std::string>{"n", "txt"}));
      EXPECT_EQ(d["columns"][0]["source"], "12.5");
      EXPECT_EQ(d["columns"][0]["target"], "12.5001");
    }
    if (key == "3") {
      EXPECT_EQ(cols, std::set<std::string>{"txt"});
    }
    if (key == "4") {
      EXPECT_EQ(cols, (std::set<std::string>{"f8t", "tstz"}));
    }
  }
}

TEST(VerifySqlite, SqliteToSqlite) {
  TempDir dir;
  const std::string a = "sqlite:" + dir.File("a.db"), b = "sqlite:" + dir.File("b.db");
  const char* ddl = R"sql(
    CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, r REAL, bl BLOB);
    WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 2000)
    INSERT INTO t SELECT x, 'v' || x, x / 7.0, x'' FROM g;)sql";
  Exec(a, ddl);
  Exec(b, ddl);
  auto same = RunFerry({"verify", "--from", a, "--to", b, "--table", "t"});
  EXPECT_EQ(same.exit_code, 0) << same.out << same.err;
  Exec(b, "UPDATE t SET r = r + 1e-9 WHERE id = 777; DELETE FROM t WHERE id = 2000;");
  auto r = RunFerry({"verify", "--from", a, "--to", b, "--table", "t", "--leaf-rows", "10", "--json"});
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;
  EXPECT_EQ(Listed(ParseJson(r)["tables"][0]), (std::set<std::string>{"changed:777", "missing:2000"}));
}

// The SQLite functions compute exactly what PostgreSQL computes.
TEST(VerifyCrossEngine, SqliteRowHashEqualsPostgresRowHash) {
  FERRY_REQUIRE_PG(admin);
  RegisterSqliteVerifyFunctions();
  auto pg = Open(admin);
  ASSERT_NE(pg, nullptr);
  auto lite = Open("sqlite::memory:");
  ASSERT_NE(lite, nullptr);
  ASSERT_OK(pg->Exec("SET TimeZone = 'UTC'; SET extra_float_digits = 1").status());
  ASSERT_OK_AND_ASSIGN(
      QueryResult p,
      pg->Query("SELECT ('x' || left(md5(ROW(1::bigint, 'a b'::text, NULL::text, ''::text, "
                "true, trim_scale(1.50::numeric), '\\x01'::bytea, 0.1::float8)::text), 16))::bit(64)::bigint"));
  ASSERT_OK_AND_ASSIGN(
      QueryResult s,
      lite->Query("SELECT ferry_row_hash('integer,text,text,text,bool,numeric,bytea,float8', "
                  "1, 'a b', NULL, '', 1, '1.50', x'01', 0.1)"));
  EXPECT_EQ(p.Text(0, 0), s.Text(0, 0));
}

TEST(VerifyJob, StartsFromTheCopyJobsChunks) {
  FERRY_REQUIRE_PG(admin);
  PgPair p;
  ASSERT_TRUE(p.ok());
  p.LoadMixed();
  PlantDifferences(p.dst.url());
  {
    auto dst = Open(p.dst.url());
    ASSERT_NE(dst, nullptr);
    ControlTables control(*dst);
    ASSERT_OK(control.Ensure());
    JobRow job;
    job.job_id = "copy-test";
    job.kind = "copy";
    job.spec = "{}";
    job.state = JobState::kDone;
    ASSERT_OK(control.CreateJob(job));
    std::vector<ChunkRow> chunks;
    const std::vector<std::optional<std::string>> bounds = {std::nullopt, "1200", "2600", "4100",
                                                            std::nullopt};
    for (size_t i = 0; i + 1 < bounds.size(); ++i) {
      KeyRange r;
      if (bounds[i]) r.lower = KeyTuple{*bounds[i]};
      if (bounds[i + 1]) r.upper = KeyTuple{*bounds[i + 1]};
      ChunkRow c;
      c.job_id = "copy-test";
      c.chunk_id = static_cast<int64_t>(i + 1);
      c.table_name = "items";
      c.range_spec = r.Encode();
      c.state = ChunkState::kDone;
      chunks.push_back(c);
    }
    ASSERT_OK(control.AddChunks(chunks));
  }
  auto r = p.Verify({"--job", "copy-test",
                     "--json"});
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;
  auto j = ParseJson(r);
  ASSERT_EQ(j["tables"].size(), 1u);
  EXPECT_EQ(j["tables"][0]["table"], "items");
  ExpectPlanted(j["tables"][0]);
  auto none = p.Verify({"--job", "nope"});
  EXPECT_EQ(none.exit_code, 7) << none.err;
  EXPECT_THAT(none.err, HasSubstr("nope"));
}

// "kind:key" for every difference of a Verify() result.
std::set<std::string> Listed(const TableVerifyResult& t) {
  std::set<std::string> out;
  for (const auto& d : t.differences) {
    std::string key;
    for (const auto& k : d.key) key += (key.empty() ? "" : "|") + k;
    out.insert(std::string(RowDifferenceKindName(d.kind)) + ":" + key);
  }
  return out;
}

VerifyOptions Options(const std::string& from, const std::string& to, const std::string& table) {
  VerifyOptions o;
  o.from_url = from;
  o.to_url = to;
  o.tables = {table};
  o.max_report = 1000;
  return o;
}

// The first pass shared by pages: the two sides store their rows in
// different physical orders (the target loaded shuffled, then updated), yet
// the per-range hashes agree, because each worker groups its pages' rows by
// key range and the slices are summed. Three workers, an integer key
// (integer division) and a text key (width_bucket).
TEST(VerifyPg, FirstPassByPagesIsExactWhateverThePhysicalOrder) {
  FERRY_REQUIRE_PG(admin);
  PgPair p;
  ASSERT_TRUE(p.ok());
  const std::string ddl = R"sql(
    CREATE TABLE n (id bigint PRIMARY KEY, v text, tags text[]);
    CREATE TABLE s (code text PRIMARY KEY, v int);)sql";
  Exec(p.src.url(), ddl + R"sql(
    INSERT INTO n SELECT g, 'v' || g, ARRAY['t' || g % 7] FROM generate_series(1, 20000) g;
    INSERT INTO s SELECT 'c' || lpad(g::text, 6, '0'), g FROM generate_series(1, 20000) g;
    ANALYZE n; ANALYZE s;)sql");
  Exec(p.dst.url(), ddl + R"sql(
    INSERT INTO n SELECT g, 'v' || g, ARRAY['t' || g % 7] FROM generate_series(1, 20000) g
      ORDER BY random();
    INSERT INTO s SELECT 'c' || lpad(g::text, 6, '0'), g FROM generate_series(1, 20000) g
      ORDER BY random();
    ANALYZE n; ANALYZE s;)sql");
  VerifyOptions o = Options(p.src.url(), p.dst.url(), "n");
  o.workers = 3;
  o.min_pages_to_split = 1;
  o.leaf_rows = 16;
  ASSERT_OK_AND_ASSIGN(VerifyReport same, Verify(o));
  ASSERT_EQ(same.tables.size(), 1u);
  EXPECT_TRUE(same.identical());
  EXPECT_EQ(same.tables[0].source_rows, 20000);
  EXPECT_EQ(same.tables[0].target_rows, 20000);
  const TableVerifyResult& st = same.tables[0];
  for (const FirstPassInfo* f : {&st.source_first_pass, &st.target_first_pass}) {
    EXPECT_EQ(f->split, "pages");
    EXPECT_EQ(f->grouping, "integer division");
    EXPECT_EQ(f->queries, 3);
  }
  Exec(p.dst.url(), R"sql(
    UPDATE n SET v = 'changed' WHERE id IN (1, 777, 20000);
    UPDATE n SET tags = '[0:0]={t0}' WHERE id = 7;        -- array bounds only
    UPDATE n SET tags = NULL WHERE id = 8;
    DELETE FROM n WHERE id IN (5000, 5001);
    INSERT INTO n VALUES (0, 'below'), (-9223372036854775808, 'min'), (9223372036854775807, 'max');
    UPDATE s SET v = -1 WHERE code = 'c010000';
    DELETE FROM s WHERE code = 'c000001';
    INSERT INTO s VALUES ('a', 0), ('zz', 0);)sql");
  ASSERT_OK_AND_ASSIGN(VerifyReport r, Verify(o));
  EXPECT_EQ(Listed(r.tables[0]),
            (std::set<std::string>{"changed:1", "changed:7", "changed:8", "changed:777",
                                   "changed:20000", "missing:5000", "missing:5001", "extra:0",
                                   "extra:-9223372036854775808", "extra:9223372036854775807"}));
  EXPECT_EQ(r.tables[0].target_rows, 20001);
  EXPECT_LT(r.tables[0].rows_fetched, 2000);  // found by range hashes, not by reading the table

  o.tables = {"s"};
  ASSERT_OK_AND_ASSIGN(VerifyReport text, Verify(o));
  EXPECT_EQ(text.tables[0].source_first_pass.split, "pages");
  EXPECT_EQ(text.tables[0].source_first_pass.grouping, "width_bucket");
  EXPECT_EQ(Listed(text.tables[0]),
            (std::set<std::string>{"changed:c010000", "missing:c000001", "extra:a", "extra:zz"}));
  // Small tables (by default under 1024 pages) are shared by key ranges: same findings.
  o.min_pages_to_split = VerifyOptions{}.min_pages_to_split;
  ASSERT_OK_AND_ASSIGN(VerifyReport by_key, Verify(o));
  EXPECT_EQ(by_key.tables[0].source_first_pass.split, "key ranges");
  EXPECT_EQ(Listed(by_key.tables[0]), Listed(text.tables[0]));
}

// Integer keys at both ends of bigint: the first pass groups rows by
// integer division without overflowing (keys below the first bound and
// above the last are not subtracted), and falls back to width_bucket when
// the bounds span more than a bigint holds.
constexpr const char* kExtremeKeys = R"sql(
  CREATE TABLE k (id bigint PRIMARY KEY, v text);
  INSERT INTO k SELECT -9223372036854775808 + g, 'lo' || g FROM generate_series(0, 999) g;
  INSERT INTO k SELECT g, 'mid' || g FROM generate_series(0, 999) g;
  INSERT INTO k SELECT 9223372036854775807 - g, 'hi' || g FROM generate_series(0, 999) g;
  CREATE TABLE top (id bigint PRIMARY KEY, v text);
  INSERT INTO top SELECT 9223372036854775807 - 3 * g, 'v' || g FROM generate_series(0, 2999) g;
  ANALYZE k; ANALYZE top;)sql";

void PlantExtremeDifferences(const std::string& url) {
  Exec(url, R"sql(
    UPDATE k SET v = 'x' WHERE id IN (-9223372036854775808, 0, 9223372036854775807);
    DELETE FROM k WHERE id IN (-9223372036854775807, 9223372036854775806);
    INSERT INTO k VALUES (-500, 'gap'), (9223372036854770000, 'gap');
    UPDATE top SET v = 'x' WHERE id IN (9223372036854775807, 9223372036854775807 - 3 * 1500);
    DELETE FROM top WHERE id = 9223372036854775807 - 3 * 2999;
    INSERT INTO top VALUES (-9223372036854775808, 'min'), (9223372036854775806, 'between');)sql");
}

const std::set<std::string> kExtremeK = {
    "changed:-9223372036854775808", "changed:0", "changed:9223372036854775807",
    "missing:-9223372036854775807", "missing:9223372036854775806", "extra:-500",
    "extra:9223372036854770000"};
const std::set<std::string> kExtremeTop = {
    "changed:9223372036854775807", "changed:9223372036854771307",
    "missing:9223372036854766810", "extra:-9223372036854775808", "extra:9223372036854775806"};

TEST(VerifyPg, BigintKeysAtBothEndsDoNotOverflow) {
  FERRY_REQUIRE_PG(admin);
  PgPair p;
  ASSERT_TRUE(p.ok());
  Exec(p.src.url(), kExtremeKeys);
  Exec(p.dst.url(), kExtremeKeys);
  PlantExtremeDifferences(p.dst.url());
  for (int64_t min_pages : {int64_t{1}, int64_t{1} << 40}) {
    SCOPED_TRACE(min_pages == 1 ? "split by pages" : "split by key ranges");
    VerifyOptions o = Options(p.src.url(), p.dst.url(), "k");
    o.min_pages_to_split = min_pages;
    o.leaf_rows = 4;
    o.max_initial_ranges = 64;
    ASSERT_OK_AND_ASSIGN(VerifyReport r, Verify(o));
    const TableVerifyResult& k = r.tables[0];
    EXPECT_EQ(Listed(k), kExtremeK);
    EXPECT_EQ(k.source_rows, 3000);
    EXPECT_EQ(k.target_rows, 3000);
    // One query over all ranges spans the whole bigint range: width_bucket.
    // Each worker's half of the ranges fits: integer division.
    EXPECT_EQ(k.source_first_pass.grouping, min_pages == 1 ? "width_bucket" : "integer division");

    o.tables = {"top"};
    ASSERT_OK_AND_ASSIGN(VerifyReport t, Verify(o));
    EXPECT_EQ(Listed(t.tables[0]), kExtremeTop);
    EXPECT_EQ(t.tables[0].source_first_pass.grouping, "integer division");
  }
}

// PostgreSQL groups the first pass by integer division, SQLite hashes each
// range on its own: the same ranges, the same hashes, extreme keys included.
TEST(VerifyCrossEngine, BigintKeysAtBothEndsPostgresAndSqlite) {
  FERRY_REQUIRE_PG(admin);
  FreshPgDatabase pg;
  ASSERT_TRUE(pg.ok());
  TempDir dir;
  const std::string lite = "sqlite:" + dir.File("k.db");
  Exec(pg.url(), kExtremeKeys);
  Exec(lite, R"sql(
    CREATE TABLE k (id INTEGER PRIMARY KEY, v TEXT);
    WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g WHERE x < 999)
    INSERT INTO k SELECT -9223372036854775807 - 1 + x, 'lo' || x FROM g
      UNION ALL SELECT x, 'mid' || x FROM g
      UNION ALL SELECT 9223372036854775807 - x, 'hi' || x FROM g;
    CREATE TABLE top (id INTEGER PRIMARY KEY, v TEXT);
    WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g WHERE x < 2999)
    INSERT INTO top SELECT 9223372036854775807 - 3 * x, 'v' || x FROM g;)sql");
  for (const char* table : {"k", "top"}) {
    VerifyOptions o = Options(pg.url(), lite, table);
    o.min_pages_to_split = 1 << 30;  // key ranges: division on PostgreSQL for both tables
    o.leaf_rows = 4;
    o.max_initial_ranges = 64;
    ASSERT_OK_AND_ASSIGN(VerifyReport same, Verify(o));
    EXPECT_TRUE(same.identical()) << table;
    EXPECT_EQ(same.tables[0].source_first_pass.grouping, "integer division") << table;
    EXPECT_EQ(same.tables[0].target_first_pass.grouping, "per range") << table;
  }
  PlantExtremeDifferences(lite);
  VerifyOptions o = Options(pg.url(), lite, "k");
  o.min_pages_to_split = 1 << 30;
  o.leaf_rows = 4;
  o.max_initial_ranges = 64;
  ASSERT_OK_AND_ASSIGN(VerifyReport k, Verify(o));
  EXPECT_EQ(Listed(k.tables[0]), kExtremeK);
  o.tables = {"top"};
  ASSERT_OK_AND_ASSIGN(VerifyReport top, Verify(o));
  EXPECT_EQ(Listed(top.tables[0]), kExtremeTop);
}

}  // namespace
}  // namespace ferry
