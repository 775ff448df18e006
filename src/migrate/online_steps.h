// Online steps: the work a migration file declares beyond its SQL
// (`-- ferry:expand` and `-- ferry:backfill` blocks, docs/online-changes.md).
//
// The migrator (this folder) knows when they run; src/move knows how
// (triggers, batched backfills), and sits above migrate. So the migrator
// calls this interface and the program hands it an implementation
// (move/expand.h: MakeOnlineSteps()), keeping dependencies pointing down.
//
// Order for `up` of a migration with online blocks:
//   1. Prepare(): validate every block against the database (tables, keys,
//      columns, expressions type-checked); nothing changes on failure.
//   2. In the migration's transaction, after its own statements: the
//      statements Prepare() returned (expand: new columns, trigger, state row).
//   3. After COMMIT: AfterCommit() (batched backfills, outside any
//      transaction; resumable), then the verify queries.
// `down` (and `ferry abort`) of such a migration first asks PrepareUndo()
// for the statements that undo the expand phase; they run in the down
// transaction, before the down section.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "migrate/source.h"
#include "migrate/sql_split.h"
#include "observe/event.h"

namespace ferry {

struct OnlinePrepared {
  // Run inside the migration's transaction, after its own statements. Each
  // carries the file line of the block it comes from.
  std::vector<Statement> statements;
  bool after_commit = false;  // AfterCommit() has work to do
};

class OnlineSteps {
 public:
  virtual ~OnlineSteps() = default;

  // Validates the blocks of `m.up.online` against the database reached by
  // `conn` and returns what to run in the migration's transaction. Changes
  // nothing. kInvalidArgument (bad block, expression that does not
  // type-check), kNotFound (table, column), kFailedPrecondition (no usable
  // key, another change on the table still open); messages name file:line.
  virtual Result<OnlinePrepared> Prepare(Connection& conn, const Migration& m) = 0;

  // After the migration committed: the backfills, each resumable (running
  // it again continues where a killed run stopped). `url` is the database
  // (backfill workers open their own connections). Progress goes to `bus`
  // (may be null): kExpand events whose type says the step
  // ("backfill_progress", "expand_phase" ...) and whose message is human
  // text, plus the backfills' own kBackfill events.
  virtual Status AfterCommit(const std::string& url, Connection& conn, const Migration& m,
                             EventBus* bus) = 0;

  // Statements that undo the expand phase of `m` (drop triggers and new
  // columns), to run before its down section; empty when nothing is open.
  // kFailedPrecondition, before anything changes, when undoing would lose
  // writes (a replaced column without a down expression) or the change was
  // completed already.
  virtual Result<std::vector<Statement>> PrepareUndo(Connection& conn, const Migration& m) = 0;
};

}  // namespace ferry
