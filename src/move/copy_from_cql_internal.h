// Shared by copy_from_cql_plan.cc and copy_from_cql.cc (not part of the API).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "move/copy.h"
#include "move/copy_from_cql_types.h"

namespace ferry::cqlback {

inline constexpr int kRangesPerWorker = 8;
inline constexpr const char* kRangesTable = "ferry_copy_ranges";

// One CQL table and its PostgreSQL target.
struct BackTable {
  std::string keyspace, table;   // CQL source
  std::string target;            // PostgreSQL table (unqualified: the search path's schema)
  std::vector<CqlBackColumn> columns;  // partition key, clustering columns, the others
  size_t partition_count = 0, key_count = 0;
  bool target_exists = false, target_has_rows = false;
  std::string create_sql;        // what --create-tables runs ("" when it exists)

  // SELECT cols FROM "ks"."t" WHERE token(pk) >= ? AND token(pk) <= ?
  std::string SelectCql() const;
  // COPY "t" ("a", "b") FROM STDIN
  std::string CopySql() const;
};

struct BackSetup {
  std::string job_id;
  std::string source_display, target_display;  // redacted URLs
  std::vector<BackTable> tables;
  bool resumes = false;   // ranges of this job exist on the target
  int ranges_per_table = 0;
};

// Checks everything and returns the setup; writes nothing.
Result<BackSetup> Prepare(const CopyOptions& options, Connection& cql, Connection& pg);

// The Murmur3 ring cut in `n` inclusive ranges [lo, hi] covering it all.
std::vector<std::pair<int64_t, int64_t>> TokenRanges(int n);

// Whether `ferry_copy_ranges` exists and holds ranges of `job_id`.
Result<int64_t> CountJobRanges(Connection& pg, const std::string& job_id);

}  // namespace ferry::cqlback
