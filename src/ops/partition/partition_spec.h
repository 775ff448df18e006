// Partition declarations: the [[partitions]] entries of ferry.toml.
//
//   [[partitions]]
//   table = "public.messages"      # schema.table or table
//   column = "created_at"          # the RANGE partition key
//   interval = "month"             # day, week, month, year, or an integer step
//   premake = 4                    # future partitions kept made (default 4)
//   retention = "24 months"        # optional; an integer for integer keys
//   archive = "schema:archive"     # where pruned partitions go, or "none" (drop)
//   default_partition = true       # keep a DEFAULT partition (default false)
//
// Parsing checks the file alone; partition_catalog.h checks the entries
// against the database (table partitioned by RANGE on that column, type).
#pragma once

#include <string>
#include <vector>

#include "ferry/status.h"
#include "ops/partition/partition_plan.h"

namespace ferry::partition {

enum class ArchiveKind : uint8_t { kNone, kSchema };

struct PartitionSpec {
  std::string table;  // as written: "messages" or "public.messages"
  std::string column;
  Interval interval;
  int premake = 4;
  Retention retention;
  ArchiveKind archive = ArchiveKind::kNone;
  std::string archive_schema;  // with kSchema
  bool archive_given = false;  // `archive` was written (retention needs it)
  bool default_partition = false;
  std::string origin;  // "ferry.toml:12": where the entry starts
};

// Reads every [[partitions]] entry of `file_path` ("" or a missing file: no
// entries). kInvalidArgument naming file:line and the fix for a bad entry.
Result<std::vector<PartitionSpec>> LoadPartitionSpecs(const std::string& file_path);
// The same from TOML text (`name` is used in messages); for tests.
Result<std::vector<PartitionSpec>> ParsePartitionSpecs(const std::string& text,
                                                       const std::string& name);

}  // namespace ferry::partition
