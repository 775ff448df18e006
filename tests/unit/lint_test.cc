// The lint fixture corpus: for every rule, SQL that must fire it and SQL that
// must not (seed 001's own steps among them), plus ignores, grading by table
// size and server version, and the shape of the text, JSON and SARIF output.
#include "migrate/cql_schema.h"
#include "migrate/lint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace ferry {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

LintReport Lint(const std::string& sql, const LintOptions& options = {}) {
  Script script;
  script.path = "migrations/1_x.sql";
  script.sql = sql;
  script.first_line = 1;
  return LintScript(script, options);
}

std::vector<std::string> Rules(const LintReport& report) {
  std::vector<std::string> out;
  for (const LintFinding& f : report.findings) out.push_back(f.rule);
  return out;
}

const LintFinding* Find(const LintReport& report, const std::string& rule) {
  for (const LintFinding& f : report.findings) {
    if (f.rule == rule) return &f;
  }
  return nullptr;
}

// Options where a default lock_timeout applies, so only the rule under test fires.
LintOptions Quiet() {
  LintOptions o;
  o.default_lock_timeout = true;
  return o;
}

struct Case {
  std::string rule;
  std::string fires;      // SQL that must produce `rule`
  std::string stays_quiet;  // SQL that must not
};

// The corpus: one entry per rule.
const std::vector<Case>& Corpus() {
  static const std::vector<Case> kCases = {
      {"create-index-non-concurrently", "CREATE INDEX users_email_idx ON users (email);",
       "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);"},
      {"concurrently-in-transaction",
       "BEGIN;\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);\nCOMMIT;",
       "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);"},
      {"drop-index-non-concurrently", "DROP INDEX users_email_idx;",
       "DROP INDEX CONCURRENTLY users_email_idx;"},
      {"add-column-volatile-default",
       "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();",
       "ALTER TABLE users ADD COLUMN created timestamptz DEFAULT now();"},
      {"add-column-identity", "ALTER TABLE users ADD COLUMN seq bigserial;",
       "CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);"},
      {"add-column-stored-generated",
       "ALTER TABLE users ADD COLUMN lower_email text GENERATED ALWAYS AS (lower(email)) STORED;",
       "ALTER TABLE users ADD COLUMN lower_email text;"},
      {"alter-column-type", "ALTER TABLE users ALTER COLUMN id TYPE bigint;",
       "ALTER TABLE users ALTER COLUMN id SET DEFAULT 0;"},
      {"set-not-null", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
       "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;\n"
       "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\n"
       "ALTER TABLE users ALTER COLUMN email SET NOT NULL;"},
      {"constraint-without-not-valid",
       "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users "
       "(id);",
       "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users "
       "(id) NOT VALID;"},
      {"unique-constraint-without-index", "ALTER TABLE users ADD CONSTRAINT u UNIQUE (email);",
       "ALTER TABLE users ADD CONSTRAINT u UNIQUE USING INDEX users_email_key;"},
      {"drop-column", "ALTER TABLE users DROP COLUMN legacy;",
       "CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN b;"},
      {"drop-table", "DROP TABLE sessions;",
       "CREATE TABLE scratch (id bigint);\nDROP TABLE scratch;"},
      {"drop-schema", "DROP SCHEMA reporting CASCADE;", "CREATE SCHEMA reporting;"},
      {"rename-column", "ALTER TABLE users RENAME COLUMN email TO email_address;",
       "CREATE TABLE t (a int);\nALTER TABLE t RENAME COLUMN a TO b;"},
      {"rename-table", "ALTER TABLE users RENAME TO accounts;",
       "CREATE TABLE t (a int);\nALTER TABLE t RENAME TO u;"},
      {"create-and-drop-in-same-migration",
       "ALTER TABLE users ADD COLUMN tmp int;\nALTER TABLE users DROP COLUMN tmp;",
       "ALTER TABLE users ADD COLUMN tmp int;"},
      {"dml-without-where", "UPDATE users SET email_verified_v2 = email_verified;",
       "UPDATE users SET email_verified_v2 = email_verified WHERE email_verified_v2 IS NULL;"},
      {"truncate-cascade", "TRUNCATE users CASCADE;", "TRUNCATE users;"},
      {"vacuum-full-cluster", "VACUUM FULL users;", "VACUUM users;"},
      {"integer-primary-key", "CREATE TABLE t (id integer PRIMARY KEY);",
       "CREATE TABLE t (id bigint PRIMARY KEY);"},
      {"timestamp-without-time-zone", "CREATE TABLE t (at timestamp);",
       "CREATE TABLE t (at timestamptz);"},
      {"varchar-length", "CREATE TABLE t (name varchar(64));", "CREATE TABLE t (name text);"},
      {"transaction-control", "BEGIN;\nALTER TABLE users ADD COLUMN a int;\nCOMMIT;",
       "ALTER TABLE users ADD COLUMN a int;"},
      {"lint-ignore-without-reason",
       "-- ferry:lint-ignore drop-table\nDROP TABLE sessions;",
       "-- ferry:lint-ignore drop-table sessions moved to redis in v4.2\nDROP TABLE sessions;"},
      {"lint-ignore-unknown-rule", "-- ferry:lint-ignore no-such-rule because\nSELECT 1;",
       "-- ferry:lint-ignore drop-table because\nSELECT 1;"},
      {"parse-error", "ALTER TABLE users ADD COLUMN;", "ALTER TABLE users ADD COLUMN a int;"},
  };
  return kCases;
}

LintReport LintCql(const std::string& cql) {
  Script script;
  script.path = "migrations/1.0.0_x.cql";
  script.sql = cql;
  script.first_line = 1;
  return LintScript(script, Quiet());
}

// CQL rules (src/migrate/cql_lint_rules.cc), on a *.cql file.
const std::vector<Case>& CqlCorpus() {
  static const std::vector<Case> kCases = {
      {"cql-create-not-idempotent", "CREATE TABLE pins (cid text PRIMARY KEY, n int);",
       "CREATE TABLE IF NOT EXISTS pins (cid text PRIMARY KEY, n int);"},
      {"cql-destructive", "DROP TABLE pins;",
       "-- ferry:lint-ignore cql-destructive replaced by pins_v2 in 1.1.0\nDROP TABLE pins;"},
      {"cql-readd-column",
       "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text);\nALTER TABLE t DROP v;\n"
       "ALTER TABLE t ADD v int;",
       "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text);\nALTER TABLE t DROP v;\n"
       "ALTER TABLE t ADD v2 int;"},
      {"cql-primary-key-change",
       "CREATE TABLE IF NOT EXISTS t (a int, b int, v text, PRIMARY KEY (a, b));\nALTER TABLE t DROP b;",
       "CREATE TABLE IF NOT EXISTS t (a int, b int, v text, PRIMARY KEY (a, b));\nALTER TABLE t DROP v;"},
      {"cql-alter-type", "ALTER TABLE pins ALTER n TYPE bigint;", "ALTER TABLE pins ADD m bigint;"},
      {"cql-secondary-index", "CREATE INDEX IF NOT EXISTS ON pins (owner_id);",
       "CREATE CUSTOM INDEX IF NOT EXISTS ON pins (owner_id) USING 'sai';"},
      {"cql-materialized-view",
       "CREATE MATERIALIZED VIEW IF NOT EXISTS by_peer AS SELECT * FROM pins WHERE peer IS NOT NULL "
       "AND cid IS NOT NULL PRIMARY KEY (peer, cid);",
       "CREATE TABLE IF NOT EXISTS by_peer (peer text, cid text, PRIMARY KEY (peer, cid));"},
      {"cql-allow-filtering", "SELECT * FROM pins WHERE n > 3 ALLOW FILTERING;",
       "SELECT * FROM pins WHERE cid = 'x';"},
      {"cql-table-options",
       "ALTER TABLE pins WITH compaction = {'class': 'LeveledCompactionStrategy'};",
       "ALTER TABLE pins WITH comment = 'pins by cid';"},
      {"cql-counter-mixed",
       "CREATE TABLE IF NOT EXISTS stats (k text PRIMARY KEY, hits counter, name text);",
       "CREATE TABLE IF NOT EXISTS stats (k text PRIMARY KEY, hits counter, misses counter);"},
  };
  return kCases;
}

TEST(LintCqlTest, CorpusFiresAndStaysQuiet) {
  for (const Case& c : CqlCorpus()) {
    SCOPED_TRACE(c.rule);
    EXPECT_THAT(Rules(LintCql(c.fires)), Contains(c.rule)) << c.fires;
    EXPECT_THAT(Rules(LintCql(c.stays_quiet)), Not(Contains(c.rule))) << c.stays_quiet;
  }
}

TEST(LintCqlTest, FindingsNameLineColumnAndTheFix) {
  LintReport r = LintCql("-- 1.0.0\nCREATE TABLE IF NOT EXISTS a (id int PRIMARY KEY);\n"
                         "  CREATE TYPE pin_options (ttl int);\n");
  EXPECT_EQ(r.statements, 2);
  const LintFinding* f = Find(r, "cql-create-not-idempotent");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->line, 3);
  EXPECT_EQ(f->column, 3);
  EXPECT_THAT(f->safe_sql, HasSubstr("CREATE TYPE IF NOT EXISTS pin_options"));
  // A table created earlier in the same run is new: dropping it is not data loss.
  EXPECT_THAT(Rules(LintCql("CREATE TABLE IF NOT EXISTS tmp (id int PRIMARY KEY, v text);\n"
                            "ALTER TABLE tmp DROP v;\nDROP TABLE tmp;")),
              Not(Contains("cql-destructive")));
  // An unterminated string is a parse error with its line.
  LintReport bad = LintCql("SELECT 1;\nINSERT INTO t (a) VALUES ('oops);\n");
  ASSERT_NE(Find(bad, "parse-error"), nullptr);
}

// What applied CQL migrations made (migrate/cql_schema.h), read from the files.
TEST(CqlSchemaTest, ExpectedSchemaFollowsTheScriptsInOrder) {
  auto expected = ExpectedCqlSchema(
      {{"1.0.0",
        "CREATE TABLE IF NOT EXISTS a (id int PRIMARY KEY, v text, m map<text, int>);\n"
        "CREATE TABLE other.b (k int, c int, PRIMARY KEY (k, c));\n"
        "CREATE TABLE gone (id int PRIMARY KEY);"},
       {"1.1.0",
        "ALTER TABLE a ADD (x int, y set<text>);\nALTER TABLE a DROP v;\n"
        "ALTER TABLE other.b RENAME c TO c2;\nDROP TABLE IF EXISTS gone;\n"
        "ALTER TABLE not_ours ADD z int;"}},
      "ks");
  ASSERT_EQ(expected.size(), 2u);
  const CqlExpectedTable& a = expected.at("ks.a");
  EXPECT_EQ(a.made_by, "1.0.0");
  std::set<std::string> cols;
  for (const auto& [c, by] : a.columns) cols.insert(c);
  EXPECT_EQ(cols, (std::set<std::string>{"id", "m", "x", "y"}));
  EXPECT_EQ(a.columns.at("x"), "1.1.0");
  EXPECT_EQ(a.columns.at("id"), "1.0.0");
  EXPECT_TRUE(expected.at("other.b").columns.count("c2"));
  EXPECT_FALSE(expected.at("other.b").columns.count("c"));
  auto none = ExpectedCqlSchema({{"2", "CREATE TABLE ks2.t (id int PRIMARY KEY);\n"
                                       "DROP KEYSPACE IF EXISTS ks2;"}},
                                "ks");
  EXPECT_TRUE(none.empty());
}

TEST(LintTest, EveryRuleHasAFixture) {
  std::set<std::string> covered;
  for (const Case& c : Corpus()) covered.insert(c.rule);
  for (const Case& c : CqlCorpus()) covered.insert(c.rule);
  covered.insert("missing-lock-timeout");  // its own tests below
  for (const LintRuleInfo& r : LintRules()) {
    EXPECT_TRUE(covered.count(std::string(r.id))) << "no fixture for " << r.id;
  }
}

TEST(LintTest, CorpusFiresAndStaysQuiet) {
  for (const Case& c : Corpus()) {
    SCOPED_TRACE(c.rule);
    EXPECT_THAT(Rules(Lint(c.fires, Quiet())), Contains(c.rule)) << c.fires;
    EXPECT_THAT(Rules(Lint(c.stays_quiet, Quiet())), Not(Contains(c.rule))) << c.stays_quiet;
  }
}

TEST(LintTest, FindingsCarryLocationLockBlocksAndSafeSql) {
  LintReport r = Lint("-- add an index\n\n  CREATE INDEX users_email_idx ON users (email);\n", Quiet());
  ASSERT_EQ(r.findings.size(), 1u);
  const LintFinding& f = r.findings[0];
  EXPECT_EQ(f.file, "migrations/1_x.sql");
  EXPECT_EQ(f.line, 3);
  EXPECT_EQ(f.column, 3);
  EXPECT_EQ(f.rule, "create-index-non-concurrently");
  EXPECT_EQ(f.severity, LintSeverity::kError);
  EXPECT_EQ(f.lock, "SHARE on users");
  EXPECT_THAT(f.blocks, HasSubstr("writers"));
  EXPECT_THAT(f.safe_sql,
              HasSubstr("CREATE INDEX CONCURRENTLY users_email_idx ON users (email);"));
}

TEST(LintTest, FirstLineOfTheScriptCounts) {
  Script script;
  script.path = "m/2_y.sql";
  script.sql = "DROP TABLE sessions;";
  script.first_line = 7;
  LintReport r = LintScript(script, Quiet());
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].line, 7);
}

TEST(LintTest, SafeSqlForSetNotNullUsesACheckConstraint) {
  LintReport r = Lint("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", Quiet());
  const LintFinding* f = Find(r, "set-not-null");
  ASSERT_NE(f, nullptr);
  EXPECT_THAT(f->safe_sql, HasSubstr("ADD CONSTRAINT users_email_not_null CHECK (email IS NOT "
                                     "NULL) NOT VALID;"));
  EXPECT_THAT(f->safe_sql, HasSubstr("VALIDATE CONSTRAINT users_email_not_null"));
  EXPECT_THAT(f->safe_sql, HasSubstr("ALTER COLUMN email SET NOT NULL"));
}

TEST(LintTest, SafeSqlForForeignKeyAndCheckAddsNotValid) {
  LintReport fk = Lint("ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id);", Quiet());
  const LintFinding* f = Find(fk, "constraint-without-not-valid");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->safe_sql,
            "ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) "
            "REFERENCES users (id) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT "
            "orders_user_id_fkey;  -- checks rows without blocking writes (in its own migration)");
  EXPECT_THAT(f->lock, HasSubstr("SHARE ROW EXCLUSIVE on orders and users"));
  LintReport check = Lint("ALTER TABLE t ADD CONSTRAINT pos CHECK (n > 0);", Quiet());
  ASSERT_NE(Find(check, "constraint-without-not-valid"), nullptr);
  EXPECT_THAT(Find(check, "constraint-without-not-valid")->safe_sql,
              HasSubstr("ADD CONSTRAINT pos CHECK (n > 0) NOT VALID;"));
  EXPECT_THAT(Rules(Lint("ALTER TABLE t ADD CONSTRAINT pos CHECK (n > 0) NOT VALID;", Quiet())),
              IsEmpty());
}

TEST(LintTest, UniqueSafeSqlBuildsTheIndexConcurrently) {
  LintReport r = Lint("ALTER TABLE users ADD UNIQUE (email);", Quiet());
  const LintFinding* f = Find(r, "unique-constraint-without-index");
  ASSERT_NE(f, nullptr);
  EXPECT_THAT(f->safe_sql, HasSubstr("CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users "
                                     "(email);"));
  EXPECT_THAT(f->safe_sql, HasSubstr("ADD CONSTRAINT users_email_key UNIQUE USING INDEX "
                                     "users_email_key;"));
}

TEST(LintTest, DefaultsAreJudgedByVolatility) {
  auto rules = [](const std::string& sql) { return Rules(Lint(sql, Quiet())); };
  EXPECT_THAT(rules("ALTER TABLE t ADD COLUMN a int DEFAULT 0;"), IsEmpty());
  EXPECT_THAT(rules("ALTER TABLE t ADD COLUMN a text DEFAULT 'x';"), IsEmpty());
  EXPECT_THAT(rules("ALTER TABLE t ADD COLUMN a timestamptz DEFAULT CURRENT_TIMESTAMP;"), IsEmpty());
  EXPECT_THAT(rules("ALTER TABLE t ADD COLUMN a float8 DEFAULT random();"),
              Contains("add-column-volatile-default"));
  EXPECT_THAT(rules("ALTER TABLE t ADD COLUMN a timestamptz DEFAULT clock_timestamp();"),
              Contains("add-column-volatile-default"));
  // An unknown function may be volatile: a warning, not an error.
  LintReport maybe = Lint("ALTER TABLE t ADD COLUMN a int DEFAULT my_func();", Quiet());
  ASSERT_EQ(maybe.findings.size(), 1u);
  EXPECT_EQ(maybe.findings[0].severity, LintSeverity::kWarning);
  EXPECT_THAT(maybe.findings[0].message, HasSubstr("my_func()"));
  LintReport volatile_default =
      Lint("ALTER TABLE t ADD COLUMN a uuid DEFAULT gen_random_uuid() NOT NULL;", Quiet());
  const LintFinding* f = Find(volatile_default, "add-column-volatile-default");
  ASSERT_NE(f, nullptr);
  EXPECT_THAT(f->safe_sql, HasSubstr("ALTER TABLE t ADD COLUMN a uuid;\nALTER TABLE t ALTER "
                                     "COLUMN a SET DEFAULT gen_random_uuid();"));
}

TEST(LintTest, ServerVersionDecidesWhatIsSafe) {
  LintOptions pg10 = Quiet();
  pg10.server_version_num = 100012;
  EXPECT_THAT(Rules(Lint("ALTER TABLE t ADD COLUMN a int DEFAULT 0;", pg10)),
              Contains("add-column-volatile-default"));
  LintOptions pg11 = Quiet();
  pg11.server_version_num = 110000;
  EXPECT_THAT(Rules(Lint("ALTER TABLE t ADD COLUMN a int DEFAULT 0;", pg11)), IsEmpty());
  EXPECT_THAT(Rules(Lint("ALTER TABLE t ADD COLUMN a int DEFAULT NULL;", pg10)), IsEmpty());
  // SET NOT NULL after a validated CHECK scans again before PostgreSQL 12.
  std::string sql =
      "ALTER TABLE users ADD CONSTRAINT nn CHECK (email IS NOT NULL) NOT VALID;\n"
      "ALTER TABLE users VALIDATE CONSTRAINT nn;\n"
      "ALTER TABLE users ALTER COLUMN email SET NOT NULL;";
  EXPECT_THAT(Rules(Lint(sql, pg11)), Contains("set-not-null"));
  LintOptions pg12 = Quiet();
  pg12.server_version_num = 120000;
  EXPECT_THAT(Rules(Lint(sql, pg12)), Not(Contains("set-not-null")));
}

TEST(LintTest, TablesCreatedEarlierInTheFileAreNew) {
  std::string sql =
      "CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text);\n"
      "CREATE INDEX accounts_email_idx ON accounts (email);\n"
      "ALTER TABLE accounts ADD COLUMN token uuid DEFAULT gen_random_uuid();\n"
      "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;\n"
      "ALTER TABLE accounts ADD CONSTRAINT e UNIQUE (email);\n"
      "UPDATE accounts SET email = lower(email);\n";
  EXPECT_THAT(Rules(Lint(sql)), IsEmpty());
  // A column added earlier in the file is new too.
  EXPECT_THAT(Rules(Lint("ALTER TABLE users ADD COLUMN n int;\n"
                         "ALTER TABLE users ALTER COLUMN n TYPE bigint;\n"
                         "ALTER TABLE users ALTER COLUMN n SET NOT NULL;",
                         Quiet())),
              IsEmpty());
}

TEST(LintTest, TablesFromEarlierPendingMigrationsAreNewOnlyWhenCarried) {
  Migration create;
  create.up.path = "m/1_create.sql";
  create.up.sql = "CREATE TABLE items (id bigint PRIMARY KEY, name text);";
  Migration index;
  index.up.path = "m/2_index.sql";
  index.up.sql = "CREATE INDEX items_name_idx ON items (name);";
  LintOptions options = Quiet();
  options.carry_across_files = true;
  auto pending = LintMigrations({&create, &index}, options);
  ASSERT_TRUE(pending.ok());
  EXPECT_THAT(Rules(*pending), IsEmpty());
  EXPECT_EQ(pending->files, 2);
  options.carry_across_files = false;
  auto separate = LintMigrations({&create, &index}, options);
  ASSERT_TRUE(separate.ok());
  EXPECT_THAT(Rules(*separate), Contains("create-index-non-concurrently"));
}

TEST(LintTest, MissingLockTimeout) {
  LintReport r = Lint("ALTER TABLE users ADD COLUMN a int;\nALTER TABLE users DROP COLUMN b;");
  std::vector<std::string> all = Rules(r);
  EXPECT_EQ(std::count(all.begin(), all.end(), "missing-lock-timeout"), 1);
  const LintFinding* f = Find(r, "missing-lock-timeout");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->lock, "ACCESS EXCLUSIVE on users");
  EXPECT_THAT(f->safe_sql, HasSubstr("-- ferry:lock_timeout 5s"));
  // Quiet: SET in the file, the file's directive, a configured default, a new table.
  EXPECT_THAT(Rules(Lint("SET lock_timeout = '5s';\nALTER TABLE users ADD COLUMN a int;")),
              IsEmpty());
  Script with_directive;
  with_directive.path = "m/1.sql";
  with_directive.sql = "ALTER TABLE users ADD COLUMN a int;";
  with_directive.directives.lock_timeout = "3s";
  EXPECT_THAT(Rules(LintScript(with_directive, {})), IsEmpty());
  EXPECT_THAT(Rules(Lint("ALTER TABLE users ADD COLUMN a int;", Quiet())), IsEmpty());
  EXPECT_THAT(Rules(Lint("CREATE TABLE n (a int);\nALTER TABLE n ADD COLUMN b int;")), IsEmpty());
  // SET lock_timeout = 0 turns it off again.
  EXPECT_THAT(Rules(Lint("SET lock_timeout = 0;\nALTER TABLE users ADD COLUMN a int;")),
              Contains("missing-lock-timeout"));
}

TEST(LintTest, SeedOneStepOneFindsTheTransactionProblems) {
  // Seed 001 step 1, as written there.
  std::string sql =
      "-- Migration: 001_add_email_verification_v2.sql\n"
      "BEGIN;\n"
      "ALTER TABLE users \n"
      "ADD COLUMN email_verified_v2 BOOLEAN DEFAULT NULL,\n"
      "ADD COLUMN verification_token_v2 VARCHAR(255) DEFAULT NULL,\n"
      "ADD COLUMN verified_at_v2 TIMESTAMP DEFAULT NULL;\n"
      "CREATE INDEX CONCURRENTLY idx_users_email_verified_v2 \n"
      "ON users(email_verified_v2) \n"
      "WHERE email_verified_v2 IS NOT NULL;\n"
      "INSERT INTO migration_log (version, description, executed_at, status)\n"
      "VALUES ('001', 'Add email verification v2 columns', NOW(), 'SUCCESS');\n"
      "COMMIT;\n";
  LintReport r = Lint(sql);
  std::vector<std::string> rules = Rules(r);
  EXPECT_THAT(rules, Contains("concurrently-in-transaction"));
  EXPECT_THAT(rules, Contains("transaction-control"));
  EXPECT_THAT(rules, Contains("varchar-length"));
  EXPECT_THAT(rules, Contains("timestamp-without-time-zone"));
  EXPECT_THAT(rules, Contains("missing-lock-timeout"));
  EXPECT_THAT(rules, Not(Contains("add-column-volatile-default")));  // DEFAULT NULL is free
  EXPECT_THAT(rules, Not(Contains("create-index-non-concurrently")));
  const LintFinding* f = Find(r, "concurrently-in-transaction");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->line, 7);
  EXPECT_TRUE(r.has_errors());
}

TEST(LintTest, SeedOneStepFiveIsDestructiveAndRenames) {
  std::string sql =
      "DROP INDEX IF EXISTS idx_users_email_verified;\n"
      "ALTER TABLE users \n"
      "DROP COLUMN IF EXISTS email_verified,\n"
      "DROP COLUMN IF EXISTS verification_token;\n"
      "ALTER TABLE users \n"
      "RENAME COLUMN email_verified_v2 TO email_verified;\n"
      "CREATE INDEX idx_users_email_verified \n"
      "ON users(email_verified) \n"
      "WHERE email_verified = true;\n";
  std::vector<std::string> rules = Rules(Lint(sql, Quiet()));
  EXPECT_THAT(rules, Contains("drop-index-non-concurrently"));
  EXPECT_THAT(rules, Contains("drop-column"));
  EXPECT_THAT(rules, Contains("rename-column"));
  EXPECT_THAT(rules, Contains("create-index-non-concurrently"));
}

TEST(LintTest, SeedOneBackfillInADoBlockIsQuiet) {
  std::string sql =
      "DO $$\nDECLARE batch_size INTEGER := 10000;\nBEGIN\n"
      "  WHILE EXISTS (SELECT 1 FROM users WHERE email_verified_v2 IS NULL LIMIT 1) LOOP\n"
      "    UPDATE users SET email_verified_v2 = email_verified\n"
      "     WHERE id IN (SELECT id FROM users WHERE email_verified_v2 IS NULL LIMIT batch_size);\n"
      "  END LOOP;\nEND $$;\n";
  EXPECT_THAT(Rules(Lint(sql, Quiet())), IsEmpty());
}

TEST(LintTest, QuickstartMigrationsAreQuietWhenPendingTogether) {
  Migration create;
  create.up.path = "m/1.sql";
  create.up.sql =
      "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text);";
  Migration add;
  add.up.path = "m/2.sql";
  add.up.sql = "ALTER TABLE users ADD COLUMN email_verified_v2 boolean;";
  Migration index;
  index.up.path = "m/3.sql";
  index.up.sql = "CREATE INDEX idx ON users (email_verified_v2) WHERE email_verified_v2;";
  LintOptions options;
  options.carry_across_files = true;
  auto r = LintMigrations({&create, &add, &index}, options);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(Rules(*r), IsEmpty());
}

TEST(LintTest, ParseErrorNamesLineAndColumnAndOtherFilesAreStillLinted) {
  Migration bad;
  bad.up.path = "m/1_bad.sql";
  bad.up.sql = "CREATE TABLE a (id int);\nALTER TABLE a ADD COLUMN;\n";
  Migration good;
  good.up.path = "m/2_good.sql";
  good.up.sql = "DROP TABLE sessions;";
  auto r = LintMigrations({&bad, &good}, Quiet());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->findings.size(), 2u);
  EXPECT_EQ(r->findings[0].rule, "parse-error");
  EXPECT_EQ(r->findings[0].file, "m/1_bad.sql");
  EXPECT_EQ(r->findings[0].line, 2);
  EXPECT_EQ(r->findings[0].column, 25);
  EXPECT_THAT(r->findings[0].message, HasSubstr("syntax error"));
  EXPECT_EQ(r->findings[1].rule, "drop-table");
  EXPECT_EQ(r->findings[1].file, "m/2_good.sql");
}

TEST(LintTest, InlineIgnoreCoversOnlyTheNextStatement) {
  std::string sql =
      "-- ferry:lint-ignore create-index-non-concurrently table has 12 rows forever\n"
      "CREATE INDEX a_idx ON users (a);\n"
      "CREATE INDEX b_idx ON users (b);\n";
  LintReport r = Lint(sql, Quiet());
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].line, 3);
  // Several rules, and `all`.
  EXPECT_THAT(Rules(Lint("-- ferry:lint-ignore drop-table,missing-lock-timeout archived\n"
                         "DROP TABLE old;")),
              IsEmpty());
  EXPECT_THAT(Rules(Lint("-- ferry:lint_ignore all reviewed by DBA\nVACUUM FULL t;", Quiet())),
              IsEmpty());
  // Another rule is not covered.
  EXPECT_THAT(Rules(Lint("-- ferry:lint-ignore drop-table reason\nVACUUM FULL t;", Quiet())),
              Contains("vacuum-full-cluster"));
}

TEST(LintTest, FileIgnoreCoversTheWholeFileAndAboveTheUpMarker) {
  std::string sql =
      "-- ferry:lint-ignore-file drop-column legacy columns unused since v3\n"
      "ALTER TABLE users DROP COLUMN a;\nALTER TABLE users DROP COLUMN b;\n";
  EXPECT_THAT(Rules(Lint(sql, Quiet())), IsEmpty());
}

TEST(LintTest, IgnoreWithoutReasonStillIgnoresButIsAnError) {
  LintReport r = Lint("-- ferry:lint-ignore drop-table\nDROP TABLE sessions;", Quiet());
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].rule, "lint-ignore-without-reason");
  EXPECT_EQ(r.findings[0].severity, LintSeverity::kError);
  EXPECT_EQ(r.findings[0].line, 1);
}

TEST(LintTest, DisabledRulesAreSilent) {
  LintOptions o = Quiet();
  o.disabled = {"varchar-length", "timestamp-without-time-zone"};
  EXPECT_THAT(Rules(Lint("CREATE TABLE t (a varchar(3), b timestamp);", o)), IsEmpty());
}

TEST(LintTest, TableSizesGradeSeverity) {
  LintOptions o = Quiet();
  o.sizes_known = true;
  o.table_sizes["tiny"] = {10, 8192, -1, 250};
  o.table_sizes["mid"] = {50'000, 5 << 20, -1, 250};
  o.table_sizes["huge"] = {10'000'000, int64_t{2} << 30, -1, 250};
  auto severity = [&](const std::string& table) {
    LintReport r = Lint("ALTER TABLE " + table + " ALTER COLUMN a TYPE bigint;", o);
    EXPECT_EQ(r.findings.size(), 1u);
    return r.findings.empty() ? LintSeverity::kError : r.findings[0].severity;
  };
  EXPECT_EQ(severity("tiny"), LintSeverity::kNote);
  EXPECT_EQ(severity("mid"), LintSeverity::kWarning);
  EXPECT_EQ(severity("huge"), LintSeverity::kError);
  EXPECT_EQ(severity("unknown_table"), LintSeverity::kError);
  LintReport r = Lint("ALTER TABLE huge ALTER COLUMN a TYPE bigint;", o);
  EXPECT_EQ(r.findings[0].table_rows, 10'000'000);
  EXPECT_THAT(r.findings[0].message, HasSubstr("huge has ~10.0 million rows"));
  // Not graded: renames break the application whatever the size.
  LintReport rename = Lint("ALTER TABLE tiny RENAME COLUMN a TO b;", o);
  ASSERT_EQ(rename.findings.size(), 1u);
  EXPECT_EQ(rename.findings[0].severity, LintSeverity::kError);
}

TEST(LintTest, ScannerAcceptsLintIgnoreComments) {
  // Covered in source_test too; here: a finding-free file keeps its statements.
  LintReport r = Lint("SELECT 1;\n-- ferry:lint-ignore-file all generated file\nSELECT 2;");
  EXPECT_EQ(r.statements, 2);
}

TEST(LintTest, TextOutput) {
  LintReport r = Lint("DROP TABLE sessions;", Quiet());
  std::string text = LintReportText(r);
  EXPECT_THAT(text, HasSubstr("migrations/1_x.sql:1:1: warning [drop-table] DROP TABLE sessions "
                              "destroys its data."));
  EXPECT_THAT(text, HasSubstr("\n  lock:    ACCESS EXCLUSIVE on sessions\n"));
  EXPECT_THAT(text, HasSubstr("\n  instead: ALTER TABLE sessions RENAME TO sessions_deprecated;"));
  EXPECT_THAT(text, HasSubstr("1 file, 1 statement: 0 errors, 1 warning, 0 notes\n"));
  EXPECT_EQ(LintReportText(Lint("SELECT 1;")), "1 file, 1 statement: 0 errors, 0 warnings, 0 notes\n");
}

TEST(LintTest, JsonOutput) {
  json j = json::parse(LintReportJson(Lint("CREATE INDEX i ON users (a);\nDROP TABLE s;", Quiet())));
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["summary"]["errors"], 1);
  EXPECT_EQ(j["summary"]["warnings"], 1);
  EXPECT_EQ(j["summary"]["statements"], 2);
  ASSERT_EQ(j["findings"].size(), 2u);
  const json& f = j["findings"][0];
  EXPECT_EQ(f["file"], "migrations/1_x.sql");
  EXPECT_EQ(f["line"], 1);
  EXPECT_EQ(f["column"], 1);
  EXPECT_EQ(f["rule"], "create-index-non-concurrently");
  EXPECT_EQ(f["severity"], "error");
  EXPECT_EQ(f["lock"], "SHARE on users");
  EXPECT_TRUE(f["table_rows"].is_null());
  EXPECT_THAT(f["safe_sql"].get<std::string>(), HasSubstr("CONCURRENTLY"));
  EXPECT_EQ(json::parse(LintReportJson(Lint("SELECT 1;")))["ok"], true);
}

TEST(LintTest, SarifOutput) {
  json s = json::parse(LintReportSarif(Lint("\n  VACUUM FULL users;", Quiet())));
  EXPECT_EQ(s["version"], "2.1.0");
  EXPECT_THAT(s["$schema"].get<std::string>(), HasSubstr("sarif-2.1.0"));
  ASSERT_EQ(s["runs"].size(), 1u);
  const json& driver = s["runs"][0]["tool"]["driver"];
  EXPECT_EQ(driver["name"], "ferry lint");
  EXPECT_EQ(driver["rules"].size(), LintRules().size());
  EXPECT_EQ(driver["rules"][0]["id"], "create-index-non-concurrently");
  EXPECT_EQ(driver["rules"][0]["defaultConfiguration"]["level"], "error");
  ASSERT_EQ(s["runs"][0]["results"].size(), 1u);
  const json& result = s["runs"][0]["results"][0];
  EXPECT_EQ(result["ruleId"], "vacuum-full-cluster");
  EXPECT_EQ(driver["rules"][result["ruleIndex"].get<size_t>()]["id"], "vacuum-full-cluster");
  EXPECT_EQ(result["level"], "error");
  const json& loc = result["locations"][0]["physicalLocation"];
  EXPECT_EQ(loc["artifactLocation"]["uri"], "migrations/1_x.sql");
  EXPECT_EQ(loc["region"]["startLine"], 2);
  EXPECT_EQ(loc["region"]["startColumn"], 3);
  EXPECT_THAT(result["message"]["text"].get<std::string>(), HasSubstr("Instead:\n"));
  EXPECT_THAT(result["properties"]["lock"].get<std::string>(), HasSubstr("ACCESS EXCLUSIVE"));
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

// Issue 13 item 2: one rule for a table's size, whatever was analyzed.
TEST(LintTest, SizeIsTheLargestEstimateAndUnknownIsLarge) {
  LintOptions o = Quiet();
  o.sizes_known = true;
  // 2,000,000 rows loaded a moment ago: never analyzed, stats not yet in,
  // 91 MB of ~44-byte rows.
  o.table_sizes["users"] = {-1, 91 << 20, -1, 44};
  o.table_sizes["analyzed"] = {2'000'000, 91 << 20, 2'000'000, 44};
  o.table_sizes["live"] = {-1, 8192, 2'000'000, 44};
  o.table_sizes["unknown"] = {-1, -1, -1, 0};
  auto finding = [&](const std::string& table) {
    LintReport r = Lint("CREATE INDEX i ON " + table + " (a);", o);
    EXPECT_EQ(r.findings.size(), 1u) << table;
    return r.findings.empty() ? LintFinding{} : r.findings[0];
  };
  EXPECT_EQ(finding("users").severity, LintSeverity::kError);
  EXPECT_THAT(finding("users").message, HasSubstr("estimated from its 91 MB"));
  EXPECT_GE(finding("users").table_rows, 1'000'000);
  EXPECT_EQ(finding("analyzed").severity, LintSeverity::kError);
  EXPECT_EQ(finding("live").severity, LintSeverity::kError);
  EXPECT_EQ(finding("unknown").severity, LintSeverity::kError);
  EXPECT_THAT(finding("unknown").message, HasSubstr("size unknown, judged as large"));
  EXPECT_EQ((TableSize{-1, 0, -1, 44}.EstimatedRows()), 0);
  EXPECT_EQ((TableSize{-1, -1, -1, 0}.EstimatedRows()), -1);
}

// Issue 13 items 1 and 8: renames are followed; empty tables are new.
TEST(LintTest, RenamesOfNewTablesAndEmptyTablesStayNew) {
  LintOptions o = Quiet();
  EXPECT_THAT(Rules(Lint("CREATE TABLE a (x int);\nALTER TABLE a RENAME TO b;\n"
                         "ALTER TABLE b ALTER COLUMN x TYPE bigint;\n"
                         "ALTER TABLE b RENAME COLUMN x TO y;\nALTER TABLE b ALTER COLUMN y "
                         "SET NOT NULL;\nCREATE INDEX b_y ON public.b (y);\n",
                         o)),
              IsEmpty());
  // A renamed existing table is still existing under its new name.
  EXPECT_THAT(Rules(Lint("ALTER TABLE old RENAME TO b;\nCREATE INDEX b_y ON b (y);\n", o)),
              Contains("create-index-non-concurrently"));
  o.sizes_known = true;
  o.table_sizes["empty"] = {-1, 0, 0, 40};
  o.table_sizes["busy"] = {5'000'000, int64_t{1} << 30, 5'000'000, 40};
  EXPECT_THAT(Rules(Lint("ALTER TABLE empty RENAME COLUMN a TO b;", o)), Contains("rename-column"));
  o.empty_tables_are_new = true;
  EXPECT_THAT(Rules(Lint("ALTER TABLE empty RENAME COLUMN a TO b;\n"
                         "CREATE INDEX e_b ON empty (b);", o)),
              IsEmpty());
  EXPECT_THAT(Rules(Lint("ALTER TABLE busy RENAME COLUMN a TO b;", o)), Contains("rename-column"));
}

// Issue 13 item 9: a no-transaction file runs its own BEGIN/COMMIT.
TEST(LintTest, OwnTransactionsAreQuietInANoTransactionFile) {
  Script script;
  script.path = "migrations/V1__x.sql";
  script.sql = "BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;\n";
  EXPECT_THAT(Rules(LintScript(script, Quiet())), Contains("transaction-control"));
  script.directives.no_transaction = true;
  EXPECT_THAT(Rules(LintScript(script, Quiet())), Not(Contains("transaction-control")));
}

}  // namespace
}  // namespace ferry
