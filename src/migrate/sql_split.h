// Splitting migration scripts into statements, and what each statement needs.
//
// PostgreSQL scripts are split by the server's own grammar (libpg_query), so
// dollar quotes ($$, $tag$), nested /* */ comments, E'' strings with \'
// escapes, BEGIN ATOMIC ... END function bodies and semicolons inside any of
// them are handled exactly as the server would. SQLite scripts are split with
// sqlite3_complete(), which understands CREATE TRIGGER ... BEGIN ... END.
//
// Line numbers are 1-based lines of the file the script came from: pass the
// line where the script starts (Script::first_line) as `first_line`.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/engine.h"
#include "ferry/status.h"

namespace ferry {

struct Statement {
  // The statement without leading whitespace and comments, without its
  // terminating ';' and trailing whitespace.
  std::string text;
  size_t offset = 0;  // byte offset of `text` in the script
  int line = 1;       // line of the statement's first token in the file

  // PostgreSQL parse node, e.g. "IndexStmt", "CreateStmt". Empty for SQLite.
  std::string node_type;
  // The server refuses to run this inside a transaction block (CREATE INDEX
  // CONCURRENTLY, VACUUM, CREATE DATABASE, ...); the migration must run
  // without a transaction. `no_transaction_reason` names the construct.
  bool cannot_run_in_transaction = false;
  std::string no_transaction_reason;
  // BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE,
  // PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED.
  bool is_transaction_control = false;
  // ALTER TYPE ... ADD VALUE: refused in a transaction block before
  // PostgreSQL 12, and from 12 on the new value cannot be used until the
  // transaction commits. Not counted in cannot_run_in_transaction; the
  // runner decides by server version.
  bool adds_enum_value = false;
};

// Splits and classifies a PostgreSQL script.
//
// Errors (kInvalidArgument): a syntax error, with the parser's message, the
// line and column in the file (context "line", "column") and an excerpt of
// the failing statement (context "statement"); a NUL byte in the script.
// Empty input, or only comments, yields no statements.
Result<std::vector<Statement>> SplitPostgres(std::string_view sql, int first_line = 1);

// Refuses psql-only syntax before anything runs: backslash meta-commands
// (\i, \set, \connect, \copy, \gexec, ...) outside strings, quoted
// identifiers, dollar quotes and comments, and COPY ... FROM STDIN whose data
// would follow inline. kInvalidArgument naming each offending line.
Status CheckForPsqlMetaCommands(std::string_view sql, int first_line = 1);

// Splits a SQLite script at the semicolons that end a complete statement
// (per sqlite3_complete), so trigger bodies stay whole. A final statement
// without ';' is kept. Sets is_transaction_control (BEGIN, COMMIT, END,
// ROLLBACK, SAVEPOINT, RELEASE) and cannot_run_in_transaction (VACUUM).
std::vector<Statement> SplitSqlite(std::string_view sql, int first_line = 1);

// Splits `sql` with the grammar of the engine that will run it.
Result<std::vector<Statement>> SplitScript(SqlGrammar grammar, std::string_view sql,
                                           int first_line = 1);

// True when `sql` holds anything besides whitespace, -- comments and
// (nested) /* */ comments.
bool HasSqlTokens(std::string_view sql);
// Offset of the first byte at or after `pos` that is not whitespace or in a
// comment (-- or nested /* */); sql.size() when there is none.
size_t SkipSqlSpaceAndComments(std::string_view sql, size_t pos = 0);

}  // namespace ferry
