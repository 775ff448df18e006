// ferry verify: flags and entry point (verify_command.cc).
#pragma once

#include <string>
#include <vector>

#include "cli/context.h"

namespace ferry::cli {

struct VerifyArgs {
  std::string from;                 // --from URL (default: --database)
  std::string to;                   // --to URL
  std::vector<std::string> tables;  // --table T (repeatable)
  bool all = false;                 // --all
  std::string where;                // --where SQL
  std::string job;                  // --job JOB
  int max_report = 100;             // --max-report N
  int workers = 2;                  // --workers N
  bool hash_in_db = true;           // --hash-in-db / --no-hash-in-db
  int leaf_rows = 256;              // --leaf-rows N
  double sample_percent = 0;        // --sample PERCENT (a CQL side)
};

// Exit 0 when every table is identical, 10 when differences were found,
// an error's exit code otherwise.
int RunVerify(const Context& ctx, const VerifyArgs& args);

}  // namespace ferry::cli
