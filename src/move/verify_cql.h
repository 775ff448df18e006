// ferry verify across engines: a PostgreSQL or SQLite table against a CQL
// (Cassandra, ScyllaDB) table, in either direction.
//
// CQL has no server-side hash aggregate and no order across partitions, so
// the range-hash bisection of verify.cc cannot run there. Instead both sides
// are streamed once and every row is put in canonical form: the CQL side's
// values as the driver decodes them (cql_types.h text form); the relational
// side's values converted to the target column's CQL type, encoded and
// decoded again by the same driver code, so "2024-05-01 10:20:30.5+00"
// and the CQL timestamp 2024-05-01T10:20:30.500Z compare equal while a
// value the CQL type cannot hold is a difference, not a silent match.
//
// Bounded memory: rows go to B bucket files per side by a hash of their
// canonical primary key (B from the table's estimated size: about 200,000
// rows a bucket); buckets are then compared one at a time, holding one
// bucket of the reference side in memory. The CQL side is read by W workers
// (--workers), each scanning its own token ranges with paging.
//
// --sample PERCENT: a quick check during dual writes (seed 000's sampled
// consistency check): the relational side is sampled (TABLESAMPLE BERNOULLI
// on PostgreSQL, a key-hash filter on SQLite) and each sampled row is read
// from the CQL table by its primary key. It finds missing and changed rows;
// extra rows on the CQL side cannot be found by sampling (the report says
// how many rows were looked at).
//
// The mapping between the two tables is one to one here: same table name
// (the CQL keyspace is the URL's), same column names, the relational
// primary key is the CQL primary key.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "move/verify.h"

namespace ferry {

// True when `url` names a CQL database (cql://, scylla://, cassandra://).
bool IsCqlUrl(const std::string& url);

// Verify() when one side is CQL. Same report as between two relational
// databases; `job_id` and `--where` are refused (kInvalidArgument) outside
// --sample.
Result<VerifyReport> VerifyWithCql(const VerifyOptions& options);

}  // namespace ferry
