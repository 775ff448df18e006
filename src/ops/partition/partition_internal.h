// Shared by partition_status.cc and partition_maintain.cc; not an API.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ops/partition/partition_catalog.h"
#include "ops/partition/partition_ops.h"

namespace ferry::partition {

// One declared table as found in the database, and what it should have.
struct TablePlan {
  PartitionSpec spec;
  ParentTable parent;
  int64_t now = 0;             // the clock, or the largest key for integer keys
  std::vector<Range> wanted;   // the partition holding now and `premake` after it
  std::optional<int64_t> cut;  // partitions ending at or before it are past retention
};

// The declarations of options.config_file (only options.table when set),
// each read from the database. kNotFound when options.table is not declared.
Result<std::vector<TablePlan>> LoadPlans(Connection& conn, const PartitionOptions& options);

Result<TableStatus> StatusOf(Connection& conn, const TablePlan& plan);

// The actions that bring `plan.parent` to its declaration, in order: the
// DEFAULT partition, premake + attach per missing range, then detach and
// archive or drop per partition past retention. Refuses (nothing planned)
// a retention that would detach every partition unless `force`, and a
// missing archive schema or a name already taken in it.
Result<std::vector<PartitionAction>> PlanActions(Connection& conn, const TablePlan& plan,
                                                 bool force);

// "schema.name" for messages.
std::string Dotted(const std::string& schema, const std::string& name);

}  // namespace ferry::partition
