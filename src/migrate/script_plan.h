// How one migration script runs: its statements (split by the engine's
// rules), in a transaction or not and why, and its timeouts. Shared by the
// migrator (up, down, plan) and by `validate` without a database, which
// judges files by the rules of the engine named in ferry.toml or --engine.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"
#include "migrate/history.h"
#include "migrate/source.h"
#include "migrate/sql_split.h"

namespace ferry {

struct ScriptPlan {
  std::vector<Statement> statements;
  bool transactional = true;
  std::string reason;  // why not transactional
  // The file opens and ends its own transactions (BEGIN/COMMIT, as Flyway
  // runs such files) and says `-- ferry:no-transaction`: it runs as
  // written, statement by statement.
  bool own_transactions = false;
  std::string lock_timeout;
  std::string statement_timeout;
  const Script* script = nullptr;
};

// How a plan runs, as the history's execution column records it: in ferry's
// transaction, without one, or in the file's own BEGIN/COMMIT as written.
inline Execution ExecutionOf(const ScriptPlan& plan) {
  return plan.own_transactions ? Execution::kOwnTransactions
                               : (plan.transactional ? Execution::kTransaction
                                                     : Execution::kNoTransaction);
}

struct ScriptPlanOptions {
  SqlGrammar grammar = SqlGrammar::kPostgres;  // the engine's grammar (drivers/engine.h)
  std::string lock_timeout;       // defaults when the file sets none
  std::string statement_timeout;
};

// Splits and classifies the up (or down) script of `m`. kInvalidArgument,
// naming file and line, for psql meta-commands, SQL the parser cannot read,
// an empty section, and BEGIN/COMMIT in a file ferry runs in a transaction
// (the message says to add `-- ferry:no-transaction` to run it as written).
// `m` must outlive the plan (it points into m's script).
Result<ScriptPlan> PlanScript(const Migration& m, bool down, const ScriptPlanOptions& options);

}  // namespace ferry
