// Migration safety lint: reads PostgreSQL migrations with the server's own
// parser (libpg_query) and reports statements that take heavy locks, rewrite
// tables, destroy data or break the running application, each with the lock
// it takes, whom it blocks and for how long, and the SQL to write instead.
//
// In:  up scripts of migrations (in the order they would run) and options:
//      rules turned off, live table sizes and server version when a database
//      was given, whether a default lock_timeout applies.
// Out: a LintReport of findings (values). A file the parser cannot read is a
//      "parse-error" finding; the other files are still linted.
//
// "New" tables: a table created earlier in the same file, or (with
// LintOptions::carry_across_files) by an earlier migration of the list, has
// no rows and no readers yet, so rules that only matter for existing tables
// stay silent for it. Renames are followed: after `ALTER TABLE a RENAME TO
// b` (or RENAME COLUMN) of a new table, b is new. With
// LintOptions::empty_tables_are_new, a table that is empty now is new too.
// Unqualified names and `public.` names are the same table.
//
// Ignores are SQL comments read by lint (the scanner leaves them alone):
//   -- ferry:lint-ignore RULE[,RULE...] reason     the next statement
//   -- ferry:lint-ignore-file RULE[,RULE...] reason  the whole file
// RULE may be `all`. An ignore without a reason is itself a finding
// ("lint-ignore-without-reason"), as is one naming an unknown rule.
//
// How to add a rule:
//   1. Add its id, default severity and summary to kRules in lint.cc.
//   2. Check it in LintStatement() (lint_rules.cc); fill lock, blocks and
//      safe_sql when they exist; use Grade() when the cost grows with the
//      table's size.
//   3. Add a must-fire and a must-not-fire case to tests/unit/lint_test.cc
//      and a row to docs/lint.md.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/connection.h"
#include "drivers/engine.h"
#include "ferry/status.h"
#include "migrate/source.h"

namespace ferry {

enum class LintSeverity : uint8_t { kNote, kWarning, kError };
// "note", "warning", "error".
std::string_view LintSeverityName(LintSeverity severity);

struct LintFinding {
  std::string file;
  int line = 0;    // 1-based line in `file`
  int column = 0;  // 1-based column (characters) of the statement's first token
  std::string rule;
  LintSeverity severity = LintSeverity::kError;
  std::string message;   // what is wrong
  std::string lock;      // "ACCESS EXCLUSIVE on users", "" when none
  std::string blocks;    // who waits, for how long
  std::string safe_sql;  // what to write instead, "" when there is no drop-in
  std::string table;     // the table concerned, "" when none
  int64_t table_rows = -1;  // live estimate with --database, -1 unknown
};

struct LintRuleInfo {
  std::string_view id;
  LintSeverity severity;     // before grading by table size
  bool graded_by_size;       // cost grows with the table: note/warning/error by rows
  std::string_view summary;  // one line
};
// Every rule, in documentation order.
const std::vector<LintRuleInfo>& LintRules();
const LintRuleInfo* FindLintRule(std::string_view id);

struct TableSize {
  int64_t rows = -1;       // pg_class.reltuples; -1 never analyzed
  int64_t bytes = -1;      // pg_relation_size (partitioned: its leaves'); -1 unknown
  int64_t live_rows = -1;  // pg_stat_user_tables.n_live_tup; -1 unknown
  int64_t row_width = 0;   // estimated bytes per row on disk (header included); 0 unknown

  // The one rule for a table's size: the largest of reltuples, n_live_tup
  // and an estimate from its bytes (8 kB pages of rows of row_width bytes).
  // -1 when all three are unknown: graded rules then treat it as large.
  int64_t EstimatedRows() const;
  // The bytes-based estimate alone (-1 unknown).
  int64_t RowsFromBytes() const;
};

struct LintOptions {
  std::set<std::string> disabled;  // rule ids (ferry.toml lint.disable)
  // A default lock_timeout applies to every file (ferry.toml lock_timeout),
  // so statements never queue without one.
  bool default_lock_timeout = false;
  // Tables created by an earlier migration of the list count as new (the
  // list is the pending migrations, in run order).
  bool carry_across_files = false;
  // From --database: server_version_num (0 = unknown: assume a supported
  // current release) and table sizes keyed by lower-case "schema.table" and
  // "table".
  int server_version_num = 0;
  bool sizes_known = false;
  std::map<std::string, TableSize> table_sizes;
  int64_t small_table_rows = 10'000;     // below: size-graded findings are notes
  int64_t large_table_rows = 1'000'000;  // from here: errors
  // Rules the runner refuses by itself (up skips them to keep its messages).
  std::set<std::string> skip_rules;
  // With sizes known: a table that holds no rows now counts as new (up and
  // lint --database judge the database as it will be when each pending
  // migration runs).
  bool empty_tables_are_new = false;
  // Which grammar the scripts are in; a file named *.cql is CQL whatever this says.
  SqlGrammar grammar = SqlGrammar::kPostgres;
};

struct LintReport {
  std::vector<LintFinding> findings;  // by file order, then line
  int files = 0;
  int statements = 0;
  int server_version_num = 0;
  bool sizes_known = false;

  int Count(LintSeverity severity) const;
  bool has_errors() const { return Count(LintSeverity::kError) > 0; }
};

// Lints the up scripts of `to_lint` in order. Never fails on bad SQL (that is
// a finding); non-ok only for internal errors.
Result<LintReport> LintMigrations(const std::vector<const Migration*>& to_lint,
                                  const LintOptions& options);

// Lints one script as one file would be (for tests and loose .sql files).
LintReport LintScript(const Script& script, const LintOptions& options);

// Renderings. Text: one block per finding, then a summary line. JSON: an
// object {"ok", "summary", "findings": [...]}. SARIF 2.1.0: one run of tool
// "ferry lint" with the rules and results.
std::string LintReportText(const LintReport& report);
std::string LintReportJson(const LintReport& report);
std::string LintReportSarif(const LintReport& report);

// The name of the index a CREATE INDEX statement creates ("" when the
// statement is something else or names none).
std::string CreatedIndexName(std::string_view sql);

// Reads the server version and every table's size (pg_class.reltuples,
// pg_stat_user_tables.n_live_tup, pg_relation_size and an estimated row
// width; a partitioned table sums its leaves on PostgreSQL 12+) from a
// PostgreSQL connection into `options`, setting sizes_known. Unqualified
// names resolve to the current schema first.
// kInvalidArgument for another engine; the connection's error otherwise.
Status ReadDatabaseFacts(Connection& conn, LintOptions* options);

}  // namespace ferry
