// Partition catalog: what PostgreSQL says about a partitioned table and its
// children. Partitions are found through pg_inherits and their bounds read
// with pg_get_expr(relpartbound), never from their names.
//
// The connection's session must use TimeZone UTC (OpenPartitionSession does
// it), so timestamptz bounds print as '... +00'.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "ops/partition/partition_plan.h"
#include "ops/partition/partition_spec.h"

namespace ferry::partition {

struct ChildPartition {
  std::string schema;
  std::string name;
  std::string bound;  // pg_get_expr text: "FOR VALUES FROM (...) TO (...)" or "DEFAULT"
  bool is_default = false;
  bool detach_pending = false;    // an interrupted DETACH ... CONCURRENTLY
  Range range;                    // when !is_default
  int64_t estimated_rows = -1;    // pg_class.reltuples; -1 when never analysed
  int64_t bytes = 0;              // pg_total_relation_size
  std::string Qualified() const;  // "schema"."name"
};

struct ParentTable {
  uint32_t oid = 0;
  std::string schema;
  std::string name;
  std::string column;
  std::string column_type;  // format_type(): "timestamp with time zone"
  KeyKind key = KeyKind::kTimestampTz;
  std::vector<std::string> columns;      // the columns an INSERT may name, in order
  std::vector<ChildPartition> children;  // range partitions, by lower bound
  std::optional<ChildPartition> default_child;
  std::string Qualified() const;  // "schema"."name"
};

// Opens a PostgreSQL session for partition work: TimeZone UTC, and
// lock_timeout (so no read or DDL waits behind a lock for longer).
// kUnimplemented for engines without declarative partitions.
Result<std::unique_ptr<Connection>> OpenPartitionSession(const std::string& url,
                                                         std::chrono::milliseconds lock_timeout);

// Reads `spec.table` and its children and checks the declaration against it:
// kNotFound (no such table), kInvalidArgument naming spec.origin and the fix
// (not partitioned, not by RANGE, another column, a column type that does
// not suit the interval).
Result<ParentTable> ReadParent(Connection& conn, const PartitionSpec& spec);

// The largest key in the table (integer keys: their "now"); 0 when empty.
Result<int64_t> MaxKey(Connection& conn, const ParentTable& parent);

// Rows of `table` (quoted) whose key lies in `range`.
Result<int64_t> CountInRange(Connection& conn, const std::string& table, const ParentTable& parent,
                             const Range& range);
// All rows of `table` (quoted).
Result<int64_t> CountRows(Connection& conn, const std::string& table);

// Whether a relation `schema`.`name` exists, and whether it is a partition.
struct Relation {
  bool exists = false;
  bool is_partition = false;
};
Result<Relation> FindRelation(Connection& conn, const std::string& schema, const std::string& name);
Result<bool> SchemaExists(Connection& conn, const std::string& schema);

}  // namespace ferry::partition
