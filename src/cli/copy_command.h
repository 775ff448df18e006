// ferry copy: flags and entry point (copy_command.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/context.h"

namespace ferry::cli {

struct CopyArgs {
  std::string from;                 // --from URL (default: --database)
  std::string to;                   // --to URL
  std::vector<std::string> tables;  // --table T (repeatable)
  bool all = false;                 // --all
  std::string where;                // --where SQL
  int workers = 2;                  // --workers N
  int64_t batch_rows = 250000;      // --batch-rows N (rows per chunk)
  std::string split = "auto";       // --split auto|key|pages
  bool dry_run = false;
  bool create_tables = false;
  bool truncate = false;
  bool append = false;
  bool restart = false;
  std::string job;                  // --job NAME
  std::string lock_timeout = "10s"; // --lock-timeout DURATION (TRUNCATE/CREATE on the target)
  std::string status;               // --status JOB
  // CQL targets (cql://, scylla://, cassandra://):
  std::string map;                  // --map FILE ([[copy.map]] entries; default: ferry.toml's)
  std::string control;              // --control URL (job and chunk leases)
  double max_rate = 0;              // --max-rate ROWS_PER_SECOND
  bool allow_lossy = false;         // --allow-lossy
  int in_flight = 128;              // --in-flight N (CQL writes in flight per worker)
};

// Exit 0 when every chunk is copied; 9 when chunks failed for good (the
// same command retries them); 1 when stopped by SIGINT/SIGTERM (the leases
// are released and the command that resumes is printed); an error's exit
// code otherwise.
int RunCopyCommand(const Context& ctx, const CopyArgs& args);

}  // namespace ferry::cli
