// Shared by the files of the online conversion (partition_convert*.cc); not
// an API.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ops/partition/partition_convert.h"
#include "ops/partition/partition_spec.h"

namespace ferry::partition {

// The table named by a declaration, as the catalog has it now.
struct ResolvedTable {
  bool exists = false;
  uint32_t oid = 0;
  std::string schema;
  std::string name;
  char relkind = 'r';  // 'r' ordinary, 'p' partitioned
};
Result<ResolvedTable> ResolveTable(Connection& conn, const std::string& table);

// Reads what the conversion needs and refuses (kFailedPrecondition naming
// the fix, nothing changed) what it cannot convert: no primary key, a
// primary key or unique index without the partition column, identity
// columns, foreign keys referencing the table, views over it, triggers of
// its own, an unsuitable key type (kInvalidArgument).
Result<SourceTable> ReadSource(Connection& conn, const ResolvedTable& table,
                               const PartitionSpec& spec);

// The ranges the shadow gets: from the interval holding the smallest key to
// the one holding the largest, and at least the one holding `now` and
// `premake` after it. kFailedPrecondition past kMaxPartitions.
inline constexpr size_t kMaxPartitions = 2000;
Result<std::vector<Range>> ShadowRanges(Connection& conn, const SourceTable& t,
                                        const PartitionSpec& spec, std::optional<int64_t> now);

// The control table `ferry_partition_conversions` in the table's schema.
struct ControlRow {
  ConvertPhase phase = ConvertPhase::kNone;
  std::vector<std::string> last_key;  // empty before the first batch
  int64_t rows_copied = 0;
  int64_t rows_verified = 0;
};
std::string ControlTable(const std::string& schema);
Status EnsureControl(Connection& conn, const std::string& schema);
Result<ControlRow> ReadControl(Connection& conn, const ResolvedTable& table);

}  // namespace ferry::partition
