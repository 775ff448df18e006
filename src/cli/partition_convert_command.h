// ferry partition create / abort: the online conversion of an existing
// table into a partitioned one (partition_convert_command.cc; the library is
// ops/partition/partition_convert.h).
#pragma once

#include <cstdint>
#include <string>

#include "cli/context.h"

namespace CLI {
class App;
}

namespace ferry::cli {

struct PartitionConvertArgs {
  std::string table;         // positional TABLE, declared in ferry.toml
  bool dry_run = false;      // create: print the SQL plan
  bool drop_old = false;     // create: drop <table>_ferry_old after the swap
  int64_t batch_rows = 5000;
  std::string lock_timeout;  // "" = lock_timeout of ferry.toml / FERRY_LOCK_TIMEOUT
  std::string now;           // --now DATE: premake as if it were this date (UTC)
};

struct PartitionConvertApps {
  CLI::App* create = nullptr;
  CLI::App* abort = nullptr;
};

// Adds `create` and `abort` under the `partition` command.
PartitionConvertApps AddPartitionConvertCommands(CLI::App* partition, PartitionConvertArgs* args);

// Runs whichever of them was parsed; -1 when neither was.
// Exit 0 done (or planned, or nothing to do); 4 a lock not obtained (rerun:
// it resumes); 7 table or declaration missing; 8 bad declaration; 9 a
// refusal (keys, foreign keys, identity ...) or an abort after the swap.
int RunPartitionConvert(const Context& ctx, const PartitionConvertApps& apps,
                        const PartitionConvertArgs& args);

}  // namespace ferry::cli
