// ferry partition status / maintain: flags and entry points
// (partition_command.cc; the library is ops/partition/partition_ops.h).
#pragma once

#include <string>

#include "cli/context.h"

namespace ferry::cli {

struct PartitionArgs {
  std::string table;  // positional TABLE: only this declared table
  bool dry_run = false;
  bool force = false;
  std::string now;  // --now DATE: plan as if it were this date (UTC)
};

// Exit 0 with the state; an error's exit code when the declaration or the
// database is wrong.
int RunPartitionStatus(const Context& ctx, const PartitionArgs& args);
// Exit 0 when every declared table is as declared (or, with --dry-run, the
// plan); 4 when a lock was not obtained, 8 for a bad declaration, 9 for a
// refused retention or a missing archive schema.
int RunPartitionMaintain(const Context& ctx, const PartitionArgs& args);

}  // namespace ferry::cli
