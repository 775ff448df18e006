// What every command receives after the command line is parsed.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"
#include "migrate/lint.h"

namespace ferry::cli {

struct Context {
  Config config;       // flags > environment > ferry.toml > defaults
  bool json = false;   // machine-readable output on stdout
  bool quiet = false;  // no progress or chatter, results only
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
  bool exit_code = false;     // status: non-zero on pending or drift
  bool all = false;           // status: list every applied migration
  bool down = false;          // plan --down
  std::string name;           // new NAME
  std::string layout;         // new --layout
  std::string style;          // new --style
  std::string reason;         // repair --reason
  std::string description;    // baseline --description
  std::string format;         // report --format
  int limit = 0;              // history --limit
};

// Runs init, new, up, down, redo, goto, status, history, validate, plan,
// baseline, repair, report or health.
int RunMigrateCommand(const Context& ctx, const std::string& command, const MigrateArgs& args);

}  // namespace ferry::cli
