// Copy PostgreSQL -> Cassandra/ScyllaDB (a cql://, scylla:// or cassandra://
// target): the copy engine's plan and run for a CQL target, reached through
// PlanCopy/RunCopy (copy.h) when the target URL is CQL.
//
// In:     CopyOptions (map_file, control_url, max_rate, allow_lossy too).
// Out:    rows upserted into the mapped CQL tables (cql_map.h); kCopy events.
// Resume: CQL has no transactions, so the job and its chunks live in
//         control tables on another database: --control URL (PostgreSQL or
//         SQLite), by default sqlite:.ferry/copy-control.db in the working
//         directory. A chunk is marked done only after every write of it was
//         acknowledged; a killed run resumes from the chunks not done and
//         re-writes at most the chunks in flight (harmless: upserts, and the
//         mapped write timestamp keeps newer application writes).
//
// The source is read in one exported snapshot, cut in primary-key ranges
// (a source without a key, mapped with a declared partition key: one
// chunk); each worker streams its chunk with one SELECT, converts the rows
// (CqlTarget::ConvertRow) and keeps up to `in_flight` prepared INSERTs in
// flight, routed token-aware; timeouts/Overloaded/Unavailable are retried
// with backoff. A row that cannot be written (NULL key, value without a CQL
// form) is counted and its key listed in the chunk's error: the chunk ends
// failed, the run exits non-zero, nothing is dropped silently.
#pragma once

#include <string>

#include "ferry/status.h"
#include "move/copy.h"

namespace ferry {

// True for cql://, scylla:// and cassandra:// URLs.
bool IsCqlTarget(const std::string& url);

// The control database used when --control is not given.
std::string DefaultCqlControlUrl();

Result<CopyPlan> PlanCopyToCql(const CopyOptions& options);
Result<CopySummary> RunCopyToCql(const CopyOptions& options, EventBus* bus, CopySummary* partial);

}  // namespace ferry
