// What every command receives after the command line is parsed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/config.h"
#include "migrate/lint.h"

namespace ferry {
class Connection;
class EventBus;
class Migrator;
struct ApplyResult;
}  // namespace ferry

namespace ferry::cli {

struct Context {
  Config config;       // flags > environment > ferry.toml > defaults
  bool json = false;   // machine-readable output on stdout
  bool quiet = false;  // no progress or chatter, results only
  // The run's one event bus (observe/event.h): commands subscribe their
  // text or JSON progress and hand it to the engine; main.cc attaches the
  // metrics consumer to it. Never null once main.cc built the context.
  EventBus* bus = nullptr;
};

// Each returns the process exit code (cli/exit_codes.h).
int RunDoctor(const Context& ctx, const std::string& url);

// ferry lint [PATHS] --format text|json|sarif. PATHS are migration
// directories or files (default: the migrations directory). With an
// explicit --database (PostgreSQL) lint reads live table sizes and the
// server version, and for the migrations directory lints only pending files.
int RunLint(const Context& ctx, const std::vector<std::string>& paths, const std::string& format);

// Lint settings from ferry.toml / environment ([lint] table).
Result<LintOptions> LintOptionsFromConfig(const Config& config);

// ferry backfill: the flags as given; durations are text ("200ms", "2s", or
// a bare number of milliseconds), parsed in backfill_command.cc.
struct BackfillArgs {
  std::string table, set, where, done_check, check, job_id;
  std::string by = "auto";  // auto | key | ctid
  int64_t batch_rows = 10000;
  int workers = 1;
  std::string max_batch = "200ms", sleep = "0", lock_timeout = "2s",
              statement_timeout = "30s", max_lag = "10s";
  bool resume = false, restart = false, dry_run = false, fixed_batch = false;
};
int RunBackfillCommand(const Context& ctx, const BackfillArgs& args);

}  // namespace ferry::cli

namespace ferry::cli {

// Flags of the migration commands (one struct: most are shared).
struct MigrateArgs {
  std::string target;         // --to V, or the positional V of goto/baseline
  int steps = 1;              // --steps N
  bool steps_given = false;
  bool dry_run = false;
  bool single_transaction = false;
  bool allow_future = false;
  bool out_of_order = false;
  bool allow_unsafe = false;  // up: apply despite error-level lint findings
  std::string backup;         // up: write the schema here first (file or directory)
  bool exit_code = false;     // status: non-zero on pending or drift
  bool all = false;           // status: list every applied migration
  bool down = false;          // plan --down
  std::string name;           // new NAME
  std::string layout;         // new --layout
  std::string style;          // new --style
  std::string reason;         // repair --reason
  std::string description;    // baseline --description
  std::string format;         // report --format
  std::string format_word;    // report's positional form: `report json`
  std::string engine;         // validate --engine (no database): postgres or sqlite
  int limit = 0;              // history --limit
  bool discard_new_writes = false;  // abort: drop new columns lacking a down expression
  bool checkpoint = false;          // up --checkpoint: take one before applying
  bool auto_rollback = false;       // up --auto-rollback: restore it (or run downs) on failure
  std::string checkpoint_dir;       // up --dir-checkpoints (else [checkpoint] dir)
  std::string pg_bin;               // up --pg-bin (else [checkpoint] pg_bin)
};

// Runs init, new, up, down, redo, goto, status, history, validate, plan,
// baseline, repair, report or health.
int RunMigrateCommand(const Context& ctx, const std::string& command, const MigrateArgs& args);

// Expand/contract (expand_commands.cc): `ferry complete [VERSION]`, and the
// expand part of `ferry status` (text lines / JSON array, "" / [] when none).
int RunComplete(const Context& ctx, const MigrateArgs& args);
std::string ExpandStatusText(Connection& conn, std::optional<bool> table_exists = {});
nlohmann::json ExpandStatusJson(Connection& conn);

}  // namespace ferry::cli
