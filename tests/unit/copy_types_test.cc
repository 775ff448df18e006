// Type mapping between PostgreSQL and SQLite used by ferry copy.
#include "move/copy_types.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

ColumnInfo Pg(std::string type, char kind = 'b', bool array = false) {
  ColumnInfo c;
  c.name = "c";
  c.type = type;
  c.base_type = type;
  c.kind = kind;
  c.is_array = array;
  return c;
}

ColumnInfo Lite(std::string type) {
  ColumnInfo c;
  c.name = "c";
  c.type = type;
  c.base_type = type;
  return c;
}

TEST(CopyTypesTest, SqliteAffinityFollowsSqlitesRules) {
  EXPECT_EQ(SqliteAffinity("BIGINT"), "INTEGER");
  EXPECT_EQ(SqliteAffinity("POINT"), "INTEGER");  // "INT" inside wins, as in SQLite
  EXPECT_EQ(SqliteAffinity("varchar(10)"), "TEXT");
  EXPECT_EQ(SqliteAffinity(""), "BLOB");
  EXPECT_EQ(SqliteAffinity("BLOB"), "BLOB");
  EXPECT_EQ(SqliteAffinity("DOUBLE PRECISION"), "REAL");
  EXPECT_EQ(SqliteAffinity("BOOLEAN"), "NUMERIC");
  EXPECT_EQ(SqliteAffinity("DECIMAL(10,2)"), "NUMERIC");
}

TEST(CopyTypesTest, PostgresTypesGetLosslessSqliteTypes) {
  EXPECT_EQ(*SqliteTypeFor(Pg("bigint"), "t"), "BIGINT");
  EXPECT_EQ(*SqliteTypeFor(Pg("numeric(20,4)"), "t"), "TEXT");  // exact digits, NaN
  EXPECT_EQ(*SqliteTypeFor(Pg("double precision"), "t"), "REAL");
  EXPECT_EQ(*SqliteTypeFor(Pg("bytea"), "t"), "BLOB");
  EXPECT_EQ(*SqliteTypeFor(Pg("boolean"), "t"), "BOOLEAN");
  EXPECT_EQ(*SqliteTypeFor(Pg("timestamp with time zone"), "t"), "TEXT");
  EXPECT_EQ(*SqliteTypeFor(Pg("uuid"), "t"), "TEXT");
  EXPECT_EQ(*SqliteTypeFor(Pg("jsonb"), "t"), "TEXT");
  EXPECT_EQ(*SqliteTypeFor(Pg("integer[]", 'b', true), "t"), "TEXT");  // array literal
  EXPECT_EQ(*SqliteTypeFor(Pg("mood", 'e'), "t"), "TEXT");
  auto composite = SqliteTypeFor(Pg("pair", 'c'), "t");
  ASSERT_FALSE(composite.ok());
  EXPECT_EQ(composite.status().Get("column"), "c");
  EXPECT_NE(composite.status().message().find("t.c has type pair, a composite type"),
            std::string::npos);
}

TEST(CopyTypesTest, SqliteTypesGetPostgresTypes) {
  EXPECT_EQ(PgTypeForSqlite("INTEGER"), "bigint");
  EXPECT_EQ(PgTypeForSqlite("SMALLINT"), "smallint");
  EXPECT_EQ(PgTypeForSqlite("BOOLEAN"), "boolean");
  EXPECT_EQ(PgTypeForSqlite("TEXT"), "text");
  EXPECT_EQ(PgTypeForSqlite("REAL"), "double precision");
  EXPECT_EQ(PgTypeForSqlite("BLOB"), "bytea");
  EXPECT_EQ(PgTypeForSqlite(""), "text");
  EXPECT_EQ(PgTypeForSqlite("DECIMAL(10,2)"), "numeric");
  EXPECT_EQ(PgTypeForSqlite("timestamptz"), "timestamp with time zone");
}

TEST(CopyTypesTest, CompatibilityOfExistingTargetColumns) {
  // PostgreSQL pair: binary COPY needs the same type; modifiers may differ.
  EXPECT_EQ(IncompatibleReason(Pg("numeric(10,2)"), Engine::kPostgres, Pg("numeric(12,2)"), Engine::kPostgres), "");
  EXPECT_NE(IncompatibleReason(Pg("integer"), Engine::kPostgres, Pg("bigint"), Engine::kPostgres), "");
  // To SQLite: numeric into a NUMERIC-affinity column would round it.
  EXPECT_NE(IncompatibleReason(Pg("numeric"), Engine::kPostgres, Lite("DECIMAL"), Engine::kSqlite), "");
  EXPECT_EQ(IncompatibleReason(Pg("numeric"), Engine::kPostgres, Lite("TEXT"), Engine::kSqlite), "");
  EXPECT_EQ(IncompatibleReason(Pg("integer"), Engine::kPostgres, Lite("NUMERIC"), Engine::kSqlite), "");
  // From SQLite.
  EXPECT_NE(IncompatibleReason(Lite("REAL"), Engine::kSqlite, Pg("integer"), Engine::kPostgres), "");
  EXPECT_NE(IncompatibleReason(Lite("TEXT"), Engine::kSqlite, Pg("bytea"), Engine::kPostgres), "");
  EXPECT_EQ(IncompatibleReason(Lite("INTEGER"), Engine::kSqlite, Pg("boolean"), Engine::kPostgres), "");
}

TEST(CopyTypesTest, StripTypmod) {
  EXPECT_EQ(StripTypmod("numeric(20,4)"), "numeric");
  EXPECT_EQ(StripTypmod("character varying(10)[]"), "character varying[]");
  EXPECT_EQ(StripTypmod("timestamp(3) with time zone"), "timestamp with time zone");
}

TEST(CopyTypesTest, HexByteaAndCopyTextEscaping) {
  std::string out;
  EXPECT_TRUE(DecodePgHexBytea("\\x00ff10", &out));
  EXPECT_EQ(out, std::string("\x00\xff\x10", 3));
  EXPECT_TRUE(DecodePgHexBytea("\\x", &out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(DecodePgHexBytea("\\x0", &out));
  EXPECT_FALSE(DecodePgHexBytea("abc", &out));
  std::string text;
  AppendCopyText("a\tb\nc\\d\re", &text);
  EXPECT_EQ(text, "a\\tb\\nc\\\\d\\re");
}

}  // namespace
}  // namespace ferry
