#include "migrate/sql_split.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ferry {
namespace {

using ::testing::HasSubstr;

std::vector<Statement> Split(const std::string& sql, int first_line = 1) {
  Result<std::vector<Statement>> r = SplitPostgres(sql, first_line);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : std::vector<Statement>();
}

std::vector<std::string> Texts(const std::vector<Statement>& stmts) {
  std::vector<std::string> out;
  for (const Statement& s : stmts) out.push_back(s.text);
  return out;
}

Statement One(const std::string& sql) {
  std::vector<Statement> s = Split(sql);
  EXPECT_EQ(s.size(), 1u) << sql;
  return s.empty() ? Statement() : s[0];
}

TEST(SqlSplitTest, SplitsSimpleStatementsWithOffsetsAndLines) {
  std::string sql = "CREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1);\nSELECT 1";
  std::vector<Statement> s = Split(sql, 10);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].text, "CREATE TABLE a (id int)");
  EXPECT_EQ(s[0].offset, 0u);
  EXPECT_EQ(s[0].line, 10);
  EXPECT_EQ(s[0].node_type, "CreateStmt");
  EXPECT_EQ(s[1].text, "INSERT INTO a VALUES (1)");
  EXPECT_EQ(s[1].offset, sql.find("INSERT"));
  EXPECT_EQ(s[1].line, 12);
  EXPECT_EQ(s[1].node_type, "InsertStmt");
  EXPECT_EQ(s[2].text, "SELECT 1");
  EXPECT_EQ(s[2].line, 13);
}

TEST(SqlSplitTest, LineSkipsLeadingCommentsAndWhitespace) {
  std::string sql =
      "SELECT 1;\n"
      "-- a comment; with a semicolon\n"
      "/* block\n"
      "   /* nested; */ still comment */\n"
      "\n"
      "  SELECT 2;";
  std::vector<Statement> s = Split(sql, 5);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].text, "SELECT 2");
  EXPECT_EQ(s[1].line, 10);
  EXPECT_EQ(s[1].offset, sql.find("SELECT 2"));
}

TEST(SqlSplitTest, EmptyAndCommentOnlyInput) {
  EXPECT_TRUE(Split("").empty());
  EXPECT_TRUE(Split("  \n-- nothing\n/* here */\n").empty());
  EXPECT_EQ(Texts(Split("SELECT 1;; ;\n-- trailing comment\n")),
            std::vector<std::string>{"SELECT 1"});
}

TEST(SqlSplitTest, DollarQuotes) {
  std::string sql =
      "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\n"
      "BEGIN\n"
      "  PERFORM 1; RETURN 2;\n"
      "END;\n"
      "$$;\n"
      "DO $body$ BEGIN RAISE NOTICE 'x;y'; END $body$;\n"
      "SELECT $tag$ ; $$ ; $tag$;";
  std::vector<Statement> s = Split(sql);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].node_type, "CreateFunctionStmt");
  EXPECT_THAT(s[0].text, HasSubstr("RETURN 2;\nEND;\n$$"));
  EXPECT_EQ(s[1].node_type, "DoStmt");
  EXPECT_EQ(s[1].line, 6);
  EXPECT_EQ(s[2].text, "SELECT $tag$ ; $$ ; $tag$");
  EXPECT_EQ(s[2].line, 7);
}

TEST(SqlSplitTest, NestedCommentsAndStrings) {
  std::string sql =
      "SELECT /* outer /* inner; */ still; */ 1;\n"
      "SELECT 'it''s; fine', E'back\\'slash; here', \"odd;name\" FROM t;\n"
      "SELECT 3";
  std::vector<Statement> s = Split(sql);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].text, "SELECT /* outer /* inner; */ still; */ 1");
  EXPECT_EQ(s[1].text, "SELECT 'it''s; fine', E'back\\'slash; here', \"odd;name\" FROM t");
  EXPECT_EQ(s[2].line, 3);
}

TEST(SqlSplitTest, BeginAtomicFunctionBody) {
  std::string sql =
      "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\n"
      "BEGIN ATOMIC\n"
      "  SELECT a + b;\n"
      "  SELECT a;\n"
      "END;\n"
      "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;\n"
      "SELECT 1;";
  std::vector<Statement> s = Split(sql);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_THAT(s[0].text, HasSubstr("SELECT a;\nEND"));
  EXPECT_EQ(s[1].line, 6);
  EXPECT_EQ(s[1].node_type, "CreateFunctionStmt");
  EXPECT_EQ(s[2].text, "SELECT 1");
}

TEST(SqlSplitTest, LinesAfterMultiByteCharacters) {
  std::string sql = "SELECT 'é;ü';\nSELECT '日本';\nSELECT 3;";
  std::vector<Statement> s = Split(sql);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[1].line, 2);
  EXPECT_EQ(s[2].line, 3);
  EXPECT_EQ(s[2].offset, sql.find("SELECT 3"));
}

TEST(SqlSplitTest, ParseErrorNamesLineColumnAndStatement) {
  std::string sql = "SELECT 1;\n\nCREATE TABLE t (\n  id int,\n  name text,,\n);\nSELECT 2;";
  Result<std::vector<Statement>> r = SplitPostgres(sql, 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("syntax error at or near \",\""));
  EXPECT_THAT(r.status().message(), HasSubstr("line 24, column 13"));
  EXPECT_EQ(r.status().Get("line"), "24");
  EXPECT_EQ(r.status().Get("column"), "13");
  EXPECT_THAT(r.status().Get("statement"), HasSubstr("CREATE TABLE t ( id int, name text,,"));
  EXPECT_THAT(r.status().message(), HasSubstr("CREATE TABLE t ("));
}

TEST(SqlSplitTest, ParseErrorColumnCountsCharactersNotBytes) {
  std::string sql = "SELECT 'ééé' FROM;";
  Result<std::vector<Statement>> r = SplitPostgres(sql);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().Get("line"), "1");
  EXPECT_EQ(r.status().Get("column"), "18");  // the ';'
}

TEST(SqlSplitTest, ParseErrorAtEndOfInput) {
  Result<std::vector<Statement>> r = SplitPostgres("SELECT 1;\nSELECT (1", 3);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("end of input"));
  EXPECT_EQ(r.status().Get("line"), "4");
  EXPECT_THAT(r.status().Get("statement"), HasSubstr("SELECT (1"));
}

TEST(SqlSplitTest, UnterminatedDollarQuoteIsAnError) {
  Result<std::vector<Statement>> r = SplitPostgres("SELECT 1;\nDO $$ BEGIN NULL; END;");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("unterminated dollar-quoted string"));
}

TEST(SqlSplitTest, NulByteIsAnError) {
  Result<std::vector<Statement>> r = SplitPostgres(std::string("SELECT 1;\nSELECT\0 2;", 20));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("NUL byte at line 2"));
}

TEST(SqlSplitTest, ClassifiesStatementsThatRefuseTransactions) {
  struct Case {
    const char* sql;
    const char* reason;  // "" = fine inside a transaction
  };
  const Case cases[] = {
      {"CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE INDEX CONCURRENTLY"},
      {"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)", "CREATE INDEX CONCURRENTLY"},
      {"CREATE INDEX i ON t (a)", ""},
      {"DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"},
      {"DROP INDEX i", ""},
      {"REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"},
      {"REINDEX (CONCURRENTLY) TABLE t", "REINDEX CONCURRENTLY"},
      {"REINDEX (CONCURRENTLY false) TABLE t", ""},
      {"REINDEX TABLE t", ""},
      {"REINDEX SCHEMA s", "REINDEX SCHEMA"},
      {"REINDEX DATABASE d", "REINDEX DATABASE"},
      {"REINDEX SYSTEM d", "REINDEX SYSTEM"},
      {"VACUUM", "VACUUM"},
      {"VACUUM ANALYZE t", "VACUUM"},
      {"VACUUM (VERBOSE, ANALYZE) t", "VACUUM"},
      {"ANALYZE t", ""},
      {"ANALYZE", ""},
      {"CREATE DATABASE d", "CREATE DATABASE"},
      {"DROP DATABASE IF EXISTS d", "DROP DATABASE"},
      {"ALTER DATABASE d SET TABLESPACE fast", "ALTER DATABASE ... SET TABLESPACE"},
      {"ALTER DATABASE d SET work_mem = '64MB'", ""},
      {"ALTER DATABASE d CONNECTION LIMIT 5", ""},
      {"CREATE TABLESPACE fast LOCATION '/ssd'", "CREATE TABLESPACE"},
      {"DROP TABLESPACE fast", "DROP TABLESPACE"},
      {"ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM"},
      {"CLUSTER", "CLUSTER without a table name"},
      {"CLUSTER t USING i", ""},
      {"DISCARD ALL", "DISCARD ALL"},
      {"DISCARD PLANS", ""},
      {"COMMIT PREPARED 'x'", "COMMIT PREPARED"},
      {"ROLLBACK PREPARED 'x'", "ROLLBACK PREPARED"},
      {"ALTER TABLE t DETACH PARTITION p CONCURRENTLY",
       "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"},
      {"ALTER TABLE t DETACH PARTITION p", ""},
      {"CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p",
       "CREATE SUBSCRIPTION with a replication slot (create_slot = true)"},
      {"CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (create_slot = false)", ""},
      {"CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (connect = false)", ""},
      {"CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (connect = off, "
       "create_slot = on)",
       "CREATE SUBSCRIPTION with a replication slot (create_slot = true)"},
      {"DROP SUBSCRIPTION s", "DROP SUBSCRIPTION of a subscription with a replication slot"},
      {"ALTER SUBSCRIPTION s REFRESH PUBLICATION", "ALTER SUBSCRIPTION ... REFRESH PUBLICATION"},
      {"ALTER SUBSCRIPTION s SET PUBLICATION p",
       "ALTER SUBSCRIPTION ... PUBLICATION with refresh = true"},
      {"ALTER SUBSCRIPTION s SET PUBLICATION p WITH (refresh = false)", ""},
      {"ALTER SUBSCRIPTION s DISABLE", ""},
      {"REFRESH MATERIALIZED VIEW CONCURRENTLY mv", ""},
      {"CREATE TABLE t (id int)", ""},
  };
  for (const Case& c : cases) {
    Statement s = One(c.sql);
    EXPECT_EQ(s.cannot_run_in_transaction, c.reason[0] != '\0') << c.sql;
    EXPECT_EQ(s.no_transaction_reason, c.reason) << c.sql;
    EXPECT_EQ(s.is_transaction_control, s.node_type == "TransactionStmt") << c.sql;
  }
}

TEST(SqlSplitTest, ClassifiesNodeTypes) {
  EXPECT_EQ(One("CREATE INDEX CONCURRENTLY i ON t (a)").node_type, "IndexStmt");
  EXPECT_EQ(One("ALTER TABLE t ADD COLUMN c int").node_type, "AlterTableStmt");
  EXPECT_EQ(One("VACUUM").node_type, "VacuumStmt");
  EXPECT_EQ(One("UPDATE t SET a = 1").node_type, "UpdateStmt");
}

TEST(SqlSplitTest, ClassifiesTransactionControl) {
  for (const char* sql : {"BEGIN", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE", "COMMIT",
                          "END", "ROLLBACK", "SAVEPOINT s", "RELEASE SAVEPOINT s",
                          "ROLLBACK TO SAVEPOINT s", "BEGIN TRANSACTION", "ABORT"}) {
    Statement s = One(sql);
    EXPECT_TRUE(s.is_transaction_control) << sql;
    EXPECT_EQ(s.node_type, "TransactionStmt") << sql;
    EXPECT_FALSE(s.cannot_run_in_transaction) << sql;
  }
  EXPECT_FALSE(One("SELECT 1").is_transaction_control);
  // BEGIN inside a DO block is not transaction control.
  EXPECT_FALSE(One("DO $$ BEGIN PERFORM 1; END $$").is_transaction_control);
}

TEST(SqlSplitTest, FlagsEnumValueAdditions) {
  Statement add = One("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh' AFTER 'ok'");
  EXPECT_TRUE(add.adds_enum_value);
  EXPECT_FALSE(add.cannot_run_in_transaction);
  EXPECT_FALSE(One("ALTER TYPE mood RENAME VALUE 'meh' TO 'fine'").adds_enum_value);
}

TEST(SqlSplitTest, MixedScriptFlagsOnlyTheRightStatements) {
  std::vector<Statement> s =
      Split("BEGIN;\nCREATE TABLE t (a int);\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON t (a);\n");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_TRUE(s[0].is_transaction_control);
  EXPECT_FALSE(s[1].is_transaction_control);
  EXPECT_TRUE(s[2].is_transaction_control);
  EXPECT_TRUE(s[3].cannot_run_in_transaction);
  EXPECT_EQ(s[3].line, 4);
}

// ---- psql meta-commands ----------------------------------------------------

TEST(SqlSplitTest, PsqlMetaCommandIsRefusedWithItsLine) {
  Status s = CheckForPsqlMetaCommands("SELECT 1;\n\\i other.sql\nSELECT 2;", 7);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("line 8: psql meta-command \\i is not SQL"));
  EXPECT_THAT(s.message(), HasSubstr("ferry sends statements to the server directly"));
  EXPECT_THAT(s.message(), HasSubstr("inline the file or split it into migrations"));
}

TEST(SqlSplitTest, EveryPsqlMetaCommandIsReportedOnItsOwnLine) {
  Status s = CheckForPsqlMetaCommands(
      "\\set ON_ERROR_STOP on\n\\connect other\nSELECT 1;\n  \\copy t from 'x.csv'\n"
      "SELECT format('x') \\gexec\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("line 1: psql meta-command \\set"));
  EXPECT_THAT(s.message(), HasSubstr("line 2: psql meta-command \\connect"));
  EXPECT_THAT(s.message(), HasSubstr("line 4: psql meta-command \\copy"));
  EXPECT_THAT(s.message(), HasSubstr("line 5: psql meta-command \\gexec"));
}

TEST(SqlSplitTest, BackslashesInsideLiteralsAndCommentsAreFine) {
  EXPECT_TRUE(CheckForPsqlMetaCommands("SELECT E'a\\'b\\\\';\n"
                                       "SELECT 'C:\\dir\\i';\n"
                                       "SELECT \"we\\ird\" FROM t;\n"
                                       "-- \\i comment.sql\n"
                                       "/* \\set x /* nested \\c */ */\n"
                                       "DO $$ BEGIN RAISE NOTICE '\\i'; END $$;\n"
                                       "SELECT $t$\n\\i not a command\n$t$;\n"
                                       "SELECT $1, a$b FROM t;\n")
                  .ok());
}

TEST(SqlSplitTest, EscapeStringQuoteDoesNotEndTheString) {
  // Without E the backslash is literal and the string ends at the quote.
  Status s = CheckForPsqlMetaCommands("SELECT 'x\\';\n\\echo hi\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("line 2: psql meta-command \\echo"));
  EXPECT_TRUE(CheckForPsqlMetaCommands("SELECT e'x\\' \\echo';\n").ok());
}

TEST(SqlSplitTest, CopyFromStdinIsRefused) {
  Status s = CheckForPsqlMetaCommands(
      "CREATE TABLE t (a int, b text);\n"
      "COPY t (a, b) FROM stdin;\n"
      "1\tone\n"
      "2\t\\N\n"
      "\\.\n"
      "SELECT 1;\n",
      3);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("line 4: COPY ... FROM STDIN"));
  // The inline data (with its \N and \.) is not reported as meta-commands.
  EXPECT_EQ(s.message().find("meta-command"), std::string::npos) << s.message();
}

TEST(SqlSplitTest, OtherCopyFormsAreFine) {
  EXPECT_TRUE(CheckForPsqlMetaCommands("COPY t FROM '/data/t.csv' WITH (FORMAT csv);").ok());
  EXPECT_TRUE(CheckForPsqlMetaCommands("COPY (SELECT * FROM stdin_log) TO STDOUT;").ok());
  EXPECT_TRUE(CheckForPsqlMetaCommands("SELECT 'COPY t FROM stdin';").ok());
  EXPECT_FALSE(CheckForPsqlMetaCommands("copy t from STDIN with (format csv);").ok());
}

// ---- SQLite ------------------------------------------------------------------

TEST(SqlSplitTest, SqliteSplitsAndKeepsTriggersWhole) {
  std::string sql =
      "CREATE TABLE t (a INTEGER, b TEXT DEFAULT 'x;y');\n"
      "-- comment; here\n"
      "CREATE TRIGGER tr AFTER INSERT ON t\n"
      "BEGIN\n"
      "  UPDATE t SET b = 'z;' WHERE a = new.a;\n"
      "  DELETE FROM t WHERE a < 0;\n"
      "END;\n"
      "/* c */ INSERT INTO t (a) VALUES (1);\n"
      "SELECT 1";
  std::vector<Statement> s = SplitSqlite(sql, 2);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].text, "CREATE TABLE t (a INTEGER, b TEXT DEFAULT 'x;y')");
  EXPECT_EQ(s[0].line, 2);
  EXPECT_THAT(s[1].text, HasSubstr("DELETE FROM t WHERE a < 0;\nEND"));
  EXPECT_EQ(s[1].line, 4);
  EXPECT_EQ(s[1].offset, sql.find("CREATE TRIGGER"));
  EXPECT_EQ(s[2].text, "INSERT INTO t (a) VALUES (1)");
  EXPECT_EQ(s[2].line, 9);
  EXPECT_EQ(s[3].text, "SELECT 1");
  EXPECT_EQ(s[3].line, 10);
  EXPECT_TRUE(s[0].node_type.empty());
}

TEST(SqlSplitTest, SqliteClassifies) {
  std::vector<Statement> s = SplitSqlite(
      "BEGIN;\nCOMMIT;\nEND TRANSACTION;\nSAVEPOINT a;\nRELEASE a;\nROLLBACK;\n"
      "VACUUM;\nSELECT 1;;\n-- done\n");
  ASSERT_EQ(s.size(), 8u);
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(s[static_cast<size_t>(i)].is_transaction_control) << i;
  EXPECT_TRUE(s[6].cannot_run_in_transaction);
  EXPECT_FALSE(s[7].is_transaction_control);
  EXPECT_TRUE(SplitSqlite("  -- only a comment\n").empty());
}

TEST(SqlSplitTest, HasSqlTokens) {
  EXPECT_FALSE(HasSqlTokens(""));
  EXPECT_FALSE(HasSqlTokens(" \n-- x\n/* a /* b */ c */\n"));
  EXPECT_TRUE(HasSqlTokens("-- x\nSELECT 1"));
  EXPECT_EQ(SkipSqlSpaceAndComments("  /* x */ SELECT"), 10u);
}

}  // namespace
}  // namespace ferry
