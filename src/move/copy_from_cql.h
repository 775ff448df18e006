// Copy Cassandra/ScyllaDB -> PostgreSQL (a cql://, scylla:// or
// cassandra:// source, a postgres:// target): the way back of a copy to CQL
// (seed 000's rollback path), reached through PlanCopy/RunCopy (copy.h).
//
// In:     CopyOptions (tables or --all of the URL's keyspace, workers,
//         create_tables, truncate, restart, job_id; max_rate).
// Out:    each CQL table's rows in the PostgreSQL table of the same name;
//         kCopy events on the caller's bus.
// Resume: the job is a list of token ranges in `ferry_copy_ranges` on the
//         PostgreSQL target. A worker takes a pending range with SELECT ...
//         FOR UPDATE SKIP LOCKED, COPYs its rows and marks it done, all in
//         one PostgreSQL transaction: a killed run leaves every range either
//         done with its rows or pending without them, so the next run does
//         the pending ones and nothing twice.
//
// Planning (copy_from_cql_plan.cc): columns and keys from system_schema,
// PostgreSQL types from copy_from_cql_types.h; a type that cannot convert,
// an existing target table with another key or column type, or a target
// with rows outside a resumed job is refused before anything is written.
// Running (copy_from_cql.cc): the Murmur3 ring is cut into workers*8 ranges
// per table; each range is read with SELECT ... WHERE token(pk) >= ? AND
// token(pk) <= ?, paged (the URL's page_size), and written with COPY FROM
// STDIN in text format.
//
// The mapping is one to one (same table and column names, the CQL primary
// key as the PostgreSQL primary key); a table that a [[copy.map]] entry of
// the --map file (or ferry.toml) fills is refused: no reverse mapping yet.
#pragma once

#include <optional>
#include <string>

#include "drivers/connection.h"

#include "ferry/status.h"
#include "move/copy.h"

namespace ferry {

// True when --from names a CQL engine and --to a PostgreSQL one (by the
// engines of their URLs).
bool IsCqlToPostgres(const CopyOptions& options);

Result<CopyPlan> PlanCopyFromCql(const CopyOptions& options);
Result<CopySummary> RunCopyFromCql(const CopyOptions& options, EventBus* bus, CopySummary* partial);

// Progress of a CQL -> PostgreSQL job from ferry_copy_ranges on `pg`
// (ReadCopyStatus falls back to it); nullopt when there is no such job.
Result<std::optional<CopyStatus>> ReadCopyFromCqlStatus(Connection& pg, const std::string& job_id);

}  // namespace ferry
