// Expand/contract: zero-downtime column changes declared in migration files,
// and backfills declared in them (docs/online-changes.md).
//
//   -- ferry:expand users
//   --   change amount type numeric(12,2)
//   --   up   amount = round(amount * 1.0, 2)
//   --   down amount = round(amount)::integer
//
// In:     `-- ferry:expand TABLE` blocks (clauses change, rename, split,
//         merge, not null, up, down) and `-- ferry:backfill TABLE` blocks
//         (set, where, check, batch_rows, workers) of a migration's up script.
// Out:    expand (`ferry up`): new columns added nullable, one PL/pgSQL
//         BEFORE INSERT OR UPDATE trigger that carries a write to either side
//         over to the other (up / down expressions), a row in
//         ferry_expand_state, then a batched backfill (move/backfill.h).
//         complete (`ferry complete`): CHECK ... NOT VALID + VALIDATE, then one
//         short transaction dropping the trigger and old columns, renaming,
//         SET NOT NULL. abort (`ferry abort` / `ferry down`): drops the
//         trigger and the new columns; the old columns already hold every
//         write of the window (the trigger mirrored them).
// Resume: the backfill checkpoints its last key; ferry_expand_state.phase
//         (expanding -> expanded -> completed | aborted) says where a change
//         stands, so `ferry up` continues an unfinished backfill.
//
// Expressions use final names: an `up` expression sees the table as it was
// (old columns), a `down` expression sees it as it will be (new columns
// under their final names). Both are wrapped in CAST(... AS type).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "migrate/migrator.h"
#include "migrate/online_steps.h"
#include "migrate/source.h"

namespace ferry {

// One column added by an expand change.
struct ExpandAdded {
  std::string name;      // final name
  std::string physical;  // name during the window (differs for `change`)
  std::string type;
  std::string up;        // expression over the old columns
  bool not_null = false;
};

// One column the change replaces (dropped by complete).
struct ExpandReplaced {
  std::string name;
  std::string type;  // from the catalog
  std::string down;  // expression over the new columns; "" = not reversible
};

// An existing column that gets NOT NULL (NULLs filled from `up` when given).
struct ExpandNotNull {
  std::string name;
  std::string type;
  std::string up;  // "" = no fill
};

// A parsed and resolved expand block (one table).
struct ExpandSpec {
  std::string file;
  int line = 0;
  std::string version;
  std::string table;      // as written
  std::string schema;     // resolved
  std::string name;       // resolved
  std::string summary;    // "change amount type numeric(12,2)", for humans
  std::vector<ExpandAdded> added;
  std::vector<ExpandReplaced> replaced;
  std::vector<ExpandNotNull> not_null;  // existing columns
  std::vector<std::string> old_columns;  // every column before the change
  std::string function;   // trigger function name (in `schema`)
  std::string trigger;
  int64_t batch_rows = 10000;
  int workers = 1;

  std::string Qualified() const;  // "schema"."name"
  std::string ToJson() const;
  static Result<ExpandSpec> FromJson(std::string_view text);
};

// Parses one expand block (no database). kInvalidArgument naming file:line.
Result<ExpandSpec> ParseExpandBlock(const OnlineBlock& block, const std::string& file);

// A row of ferry_expand_state.
struct ExpandState {
  std::string version;
  std::string table;  // schema.name
  std::string script;
  std::string phase;  // expanding, expanded, completed, aborted
  std::string summary;
  std::string started_at, updated_at;
  std::string spec;   // ExpandSpec JSON
};

// Every row (empty when the table does not exist yet), oldest first.
// `table_exists`: the caller already asked (ExpandStateTableExistsSql).
Result<std::vector<ExpandState>> ListExpandStates(Connection& conn,
                                                  std::optional<bool> table_exists = {});
// A boolean SQL expression: whether the expand state table exists.
std::string ExpandStateTableExistsSql();

struct ExpandStepsOptions {
  // abort/down: drop the new columns even when a replaced column has no
  // down expression (writes made only to the new columns are lost).
  bool discard_new_writes = false;
};

// The OnlineSteps the ferry program gives the migrator.
std::shared_ptr<OnlineSteps> MakeOnlineSteps(ExpandStepsOptions options = {});

struct CompleteOptions {
  std::string url;
  std::string history_table = "ferry_schema_history";
  std::chrono::milliseconds lock_wait{60'000};
  std::string version;        // "" = every change awaiting complete
  std::string lock_timeout = "5s";  // for each DDL step
  int lock_retries = 5;
  bool dry_run = false;
};

struct CompleteResult {
  std::vector<ExpandState> completed;
  std::vector<std::string> statements;  // what ran (or would run)
};

// The contract phase of every change awaiting complete (or `version`).
// Refused before anything changes: no such change (kNotFound), backfill
// unfinished, rows still NULL where NOT NULL is wanted (kFailedPrecondition).
// Progress goes to `bus` (may be null) as kExpand events.
Result<CompleteResult> CompleteExpand(const CompleteOptions& options, EventBus* bus = nullptr);

// `ferry abort [VERSION]` (expand_abort.cc): rolls back the newest applied
// migration when it holds the open expand change (of `version`, or the
// newest), its down step undoing the expand phase first. kNotFound when no
// expand change is open; kFailedPrecondition when newer migrations sit on
// top of it (roll those back first).
Result<ApplyResult> AbortExpand(Migrator& m, const std::string& version);

}  // namespace ferry
