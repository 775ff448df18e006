// Keys built after the data: a PostgreSQL table that `ferry copy
// --create-tables` creates gets its primary key only once every chunk is
// in, so rows go into a bare heap (no index to maintain per row) and the
// key is built by one sort, tables in parallel.
//
// In:     the statements recorded in the job's spec (tables[i].after).
// Out:    the keys exist on the target; a rerun (after a crash or kill
//         during the build) builds only what is missing, so resume stays
//         exact. The job is marked done only after this step.
#pragma once

#include <string>
#include <vector>

#include "ferry/status.h"

namespace ferry {

struct DeferredDdl {
  std::string table;                    // target table, for messages
  std::vector<std::string> statements;  // e.g. ALTER TABLE ... ADD PRIMARY KEY
};

// Runs every table's statements on `target_url`, up to `workers` tables at
// a time, each on its own connection under `lock_timeout_ms`. A primary
// key that already exists (SQLSTATE 42P16, or 42P07 for a named one) counts
// as built. Returns the first error, naming the table.
Status BuildDeferred(const std::string& target_url, const std::vector<DeferredDdl>& todo,
                     int workers, int64_t lock_timeout_ms);

}  // namespace ferry
