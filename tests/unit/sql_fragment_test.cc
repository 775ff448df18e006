// The checks of user SQL fragments (src/move/sql_fragment.h): a condition
// must stand alone, a check query must be read-only.
#include "move/sql_fragment.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(SqlFragmentTest, PgConditionMustStandAlone) {
  EXPECT_TRUE(CheckPgCondition("--where", "").ok());
  EXPECT_TRUE(CheckPgCondition("--where", "(id <= 10) OR id > 95 -- edges").ok());
  EXPECT_TRUE(CheckPgCondition("--where", "v = ')' AND w = '('").ok());
  EXPECT_FALSE(CheckPgCondition("--where", "id <= 100) OR (id <= 100").ok());
  EXPECT_FALSE(CheckPgCondition("--where", "true; DELETE FROM t").ok());
  EXPECT_FALSE(CheckPgCondition("--where", "true ORDER BY 1").ok());
}

TEST(SqlFragmentTest, SqliteConditionParenthesesBalanceOutsideQuotesAndComments) {
  EXPECT_TRUE(CheckSqliteCondition("--where", "id == 3 OR v = ')'").ok());
  EXPECT_TRUE(CheckSqliteCondition("--where", "\"a)\" = 1 AND [b(] = 2 -- )\n").ok());
  EXPECT_TRUE(CheckSqliteCondition("--where", "v = 'it''s (' /* ) */").ok());
  EXPECT_FALSE(CheckSqliteCondition("--where", "id <= 100) OR (id <= 100").ok());
  EXPECT_FALSE(CheckSqliteCondition("--where", "(id <= 100").ok());
  EXPECT_FALSE(CheckSqliteCondition("--where", "id = 1; DROP TABLE t").ok());
  EXPECT_FALSE(CheckSqliteCondition("--where", "v = 'open").ok());
  EXPECT_FALSE(CheckSqliteCondition("--where", "v = 1 /* open").ok());
}

TEST(SqlFragmentTest, CheckQueryMustBeReadOnly) {
  EXPECT_TRUE(CheckReadOnlyQuery("--check", "SELECT id FROM t WHERE b <> a").ok());
  EXPECT_TRUE(CheckReadOnlyQuery("--check", "WITH x AS (SELECT 1 AS id) SELECT id FROM x").ok());
  EXPECT_FALSE(CheckReadOnlyQuery("--check", "DELETE FROM t").ok());
  EXPECT_FALSE(
      CheckReadOnlyQuery("--check", "WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d").ok());
  EXPECT_FALSE(CheckReadOnlyQuery(
                   "--check", "SELECT * FROM (WITH u AS (UPDATE t SET a = 1 RETURNING 1) "
                              "SELECT * FROM u) s")
                   .ok());
  EXPECT_FALSE(CheckReadOnlyQuery("--check", "SELECT id INTO x FROM t").ok());
  EXPECT_FALSE(CheckReadOnlyQuery("--check", "SELECT id FROM t FOR UPDATE").ok());
  EXPECT_FALSE(CheckReadOnlyQuery("--check", "SELECT 1; SELECT 2").ok());
}

}  // namespace
}  // namespace ferry
