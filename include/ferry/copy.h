// Copying tables between databases from an application: the library face of
// `ferry copy` (PostgreSQL, SQLite, and PostgreSQL <-> CQL). Chunks are
// leased from control tables on the target and committed with their rows,
// so calling again with the same request resumes an interrupted job.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ferry/status.h"

namespace ferry {

struct CopyRequest {
  std::string from_url;             // postgres://, sqlite:, cql://
  std::string to_url;               // holds the job's progress (or `control_url`)
  std::vector<std::string> tables;  // "t" or "schema.t"
  bool all_tables = false;          // every user table of the source
  std::string where;                // one SQL condition on the source rows ("" = all)
  int workers = 2;
  bool create_tables = false;       // create missing target tables
  bool truncate = false;            // empty non-empty target tables first
  bool restart = false;             // start the job over
  std::string job_id;               // "" = derived from the tables
  std::string map_file;             // CQL target: [[copy.map]] entries ("" = one to one)
  std::string control_url;          // CQL target: where the job lives ("" = default file)
};

struct CopyOutcome {
  std::string job_id;
  bool resumed = false;       // an earlier run's finished chunks were kept
  bool already_done = false;  // the job had finished before this call
  int64_t rows_copied = 0;    // by every run of the job
  int64_t rows_failed = 0;
  int64_t bytes_copied = 0;
  int64_t chunks_done = 0, chunks_total = 0;
  double seconds = 0;         // this call
};

// Copies and returns the outcome, or the error with what to do (a chunk that
// failed for good is an error naming its table and range; call again to
// retry it).
Result<CopyOutcome> CopyTables(const CopyRequest& request);

}  // namespace ferry
