// ferry checkpoint create | list | restore | delete | prune, and the
// checkpoint side of `ferry up --checkpoint --auto-rollback`: flags and
// entry points (checkpoint_command.cc; the library is
// ops/checkpoint/checkpoint.h). Flags are declared in main.cc.
#pragma once

#include <string>
#include <vector>

#include "cli/context.h"

namespace ferry {
class Migrator;
}

namespace ferry::cli {

struct CheckpointArgs {
  std::string action;  // create, list, restore, delete, prune (set by main.cc)
  std::string name;
  std::vector<std::string> schemas;  // create --schema S (repeatable)
  std::vector<std::string> tables;   // create --table T (repeatable)
  bool dry_run = false;              // restore --dry-run
  int keep = 0;                      // prune --keep N (0: [checkpoint] keep)
  std::string dir;                   // --dir-checkpoints (else [checkpoint] dir)
  std::string pg_bin;                // --pg-bin (else [checkpoint] pg_bin)
};

// Exit 0 done; 7 no such checkpoint; 8 bad name or scope; 9 tools too old
// or missing, or a failed dump or restore (the database is unchanged).
int RunCheckpointCommand(const Context& ctx, const CheckpointArgs& args);

// `ferry up` with --checkpoint and/or --auto-rollback, on an open migrator.
// Exit 0 applied; otherwise the failed migration's exit code, after the
// rollback (reported in text and --json with its reason).
int RunGuardedUp(const Context& ctx, const MigrateArgs& args, Migrator& m);

}  // namespace ferry::cli
