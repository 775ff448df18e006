// ferry recommend: flags and entry point (recommend_command.cc).
#pragma once

#include <cstdint>

#include "cli/context.h"

namespace ferry::cli {

struct RecommendArgs {
  double int4_warn_ratio = 0.5;              // --int4-warn
  int64_t matrix_database_gib = 500;         // --matrix-size-gib
  double matrix_commits_per_second = 10000;  // --matrix-commits
  double matrix_mean_statement_ms = 100;     // --matrix-latency-ms
};

// Exit 0 with the report (findings are not errors); an error's exit code
// when the database cannot be read or is not PostgreSQL.
int RunRecommendCommand(const Context& ctx, const RecommendArgs& args);

}  // namespace ferry::cli
