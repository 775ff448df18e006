// Updating a large table in small batches from an application: the library
// face of `ferry backfill` (PostgreSQL). Each batch is one short transaction
// over the next primary-key window, checkpointed, so calling again with the
// same request resumes.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "ferry/status.h"

namespace ferry {

struct BackfillRequest {
  std::string url;          // postgres://
  std::string table;        // "t" or "schema.t"
  std::string set;          // "b = a * 2, c = lower(d)"
  std::string where;        // rows still to do, e.g. "b IS NULL"; none may match at the end
  std::string check_query;  // a SELECT that must return no rows at the end ("" = none)
  int workers = 1;
  int64_t batch_rows = 10000;                   // first batch size; then adapted
  std::chrono::milliseconds max_batch{200};     // batches aim at half of this
  std::string job_id;                           // "" = derived from table, set, where
};

struct BackfillOutcome {
  std::string job_id;
  int64_t rows_updated = 0;  // this run plus resumed progress
  int64_t batches = 0;
  int64_t retries = 0;
  double seconds = 0;
  bool resumed = false;
};

// Runs the backfill; a failed integrity check (rows still matching `where`,
// rows returned by `check_query`) is a kFailedPrecondition error saying
// which.
Result<BackfillOutcome> BackfillTable(const BackfillRequest& request);

}  // namespace ferry
