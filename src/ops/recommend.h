// Recommendations (seed 003's `recommendations`, seed 000's analysis
// queries): reads a PostgreSQL database's catalog and statistics, changes
// nothing, and returns ranked findings, each with the SQL or ferry command
// that acts on it.
//
// Checks: int4 keys whose sequence is past `int4_warn_ratio` of 2^31-1;
// tables without a primary key (copy and verify need one); indexes never
// scanned; duplicate indexes; dead-tuple bloat; transactions open longer
// than `long_transaction`; large tables with a time column (partition
// candidates); failed or slow migrations in ferry's history; the slowest
// statements when pg_stat_statements is installed; and seed 000's decision
// matrix (database size, commits/s, p95-ish statement latency) against
// thresholds the caller may override.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "ferry/status.h"

namespace ferry {

struct RecommendOptions {
  std::string url;
  std::string history_table = "ferry_schema_history";
  double int4_warn_ratio = 0.5;              // of 2^31-1
  int64_t large_table_bytes = 10LL << 30;    // partition candidates from 10 GiB
  int64_t unused_index_min_bytes = 1 << 20;  // ignore tiny unused indexes
  std::chrono::seconds long_transaction{300};
  int64_t slow_migration_ms = 60'000;
  // Seed 000's matrix: a move to a wide-column store is indicated when at
  // least two of these are exceeded.
  int64_t matrix_database_bytes = 500LL << 30;
  double matrix_commits_per_second = 10'000;
  double matrix_mean_statement_ms = 100;
  // CQL: a partition from this size is flagged (Cassandra warns at 100 MiB),
  // and a table whose reads scan at least this many tombstones at p99.
  int64_t cql_large_partition_mib = 100;
  double cql_tombstones_p99 = 1000;
};

struct Recommendation {
  int priority = 3;     // 1 critical, 2 high, 3 medium, 4 low
  std::string check;    // "int4_exhaustion", "no_primary_key", ...
  std::string subject;  // the table, index or migration
  std::string finding;  // what was measured
  std::string action;   // what to do
  std::string command;  // SQL or a ferry command line
};

struct MatrixFigure {
  std::string name;   // "database_size_bytes", ...
  double value = -1;  // -1 when not measurable
  double threshold = 0;
  bool exceeded = false;
};

struct RecommendReport {
  std::string database;                         // label (host/db)
  std::vector<Recommendation> recommendations;  // by priority, then check
  std::vector<MatrixFigure> matrix;
  bool move_indicated = false;
  std::string matrix_verdict;
  std::vector<std::string> skipped;  // checks that could not run, and why
};

// PostgreSQL: the checks above. CQL (recommend_cql.cc): large partitions,
// tombstone-heavy reads, expiring rows without time-window compaction.
// kUnimplemented for SQLite; connection errors.
Result<RecommendReport> Recommend(const RecommendOptions& options);

}  // namespace ferry
