// ferry partition status / maintain: keeps the RANGE partitions declared in
// ferry.toml ([[partitions]], partition_spec.h) on PostgreSQL.
//
// status  reads only: partitions with bounds, estimated rows and size,
//         gaps and overlaps, rows in the DEFAULT partition, partitions past
//         retention, future partitions missing.
// maintain (idempotent; under ferry's migration lock, so several at once
//         are safe: the others wait and then find nothing to do):
//   premake  CREATE TABLE child (LIKE parent INCLUDING ...) with the parent's
//            indexes, plus a CHECK matching the bounds;
//   attach   one transaction: LOCK the DEFAULT partition (if any), move its
//            rows of the new range into the child, ATTACH PARTITION (the
//            CHECK spares the scan of the child), COMMIT; then the CHECK is
//            dropped;
//   detach   partitions whose upper bound is past retention: DETACH
//            PARTITION ... CONCURRENTLY (plain DETACH when a DEFAULT
//            partition exists: PostgreSQL refuses CONCURRENTLY then);
//   archive  ALTER TABLE ... SET SCHEMA <archive>, then the row count is
//            checked in the archive (kept there);
//   drop     with archive = "none" only.
// Every DDL runs under SET lock_timeout with bounded, jittered retries; each
// action is a "partition" row in the history table (`ferry history`).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "observe/ddl_progress.h"
#include "observe/event.h"
#include "ops/partition/partition_spec.h"

namespace ferry::partition {

enum class ActionKind : uint8_t { kCreateDefault, kPremake, kAttach, kDetach, kArchive, kDrop };
std::string_view ActionName(ActionKind kind);  // "create_default", "premake", "attach", ...

struct PartitionAction {
  ActionKind kind = ActionKind::kPremake;
  std::string table;      // the parent, "schema.name"
  std::string partition;  // the child, "schema.name"
  std::string lower;      // bound text ("" for DEFAULT)
  std::string upper;
  std::vector<std::string> sql;  // the statements, in order (BEGIN/COMMIT included)
  int64_t rows = 0;              // attach: rows moved from DEFAULT; archive: rows verified
  int attempts = 0;              // tries it took (lock_timeout retries)
};

struct PartitionOptions {
  std::string url;
  std::string history_table = "ferry_schema_history";
  std::string config_file;                       // ferry.toml holding [[partitions]]
  std::string table;                             // only this declared table ("" = every one)
  std::optional<int64_t> now;                    // seconds since the epoch; default: the clock
  bool dry_run = false;                          // maintain: plan and print, change nothing
  bool force = false;                            // allow a retention that detaches every partition
  std::chrono::milliseconds lock_timeout{5000};  // per DDL statement
  int lock_retries = 3;                          // after the first try
  std::chrono::milliseconds retry_delay{1000};   // doubled each retry, jittered
  std::chrono::milliseconds lock_wait{60000};    // for ferry's migration lock
  // Called when ferry's migration lock is busy (who holds it), and after
  // each action is done.
  std::function<void(const std::string& holder)> on_lock_wait;
  std::function<void(const PartitionAction&)> on_action;
  // maintain: a statement running longer than progress.delay (an index
  // build, a DEFAULT partition's rows moving) publishes its progress from
  // pg_stat_progress_* on `bus` (not owned; null: none) as
  // "statement_progress" events (kind kMigration, operation "partition",
  // job the partition, migration.script "partition <action> <partition>").
  EventBus* bus = nullptr;
  DdlProgressOptions progress;
};

struct PartitionRow {
  std::string name;   // "schema.name"
  std::string lower;  // bound text
  std::string upper;
  int64_t estimated_rows = -1;
  int64_t bytes = 0;
  bool past_retention = false;
  bool detach_pending = false;
};

struct MissingPartition {
  std::string name;
  std::string lower;
  std::string upper;
};

struct TableStatus {
  std::string table;  // "schema.name"
  std::string column;
  std::string column_type;
  std::string interval;
  std::string retention;
  std::string archive;                     // "schema:x" or "none"
  std::string origin;                      // ferry.toml:line
  std::vector<PartitionRow> partitions;    // by lower bound
  std::string default_partition;           // "" when none
  int64_t default_rows = 0;                // exact count
  std::vector<MissingPartition> gaps;      // ranges between partitions that none covers
  std::vector<MissingPartition> overlaps;  // ranges two partitions both cover
  std::vector<MissingPartition> missing;   // wanted now or in premake, not there
  std::vector<std::string> past_retention;
  bool default_wanted_missing = false;  // default_partition = true, none exists
};

// Reads the declared tables' state. Read-only; no lock.
Result<std::vector<TableStatus>> PartitionStatus(const PartitionOptions& options);

struct MaintainReport {
  bool dry_run = false;
  std::vector<PartitionAction> actions;  // done (or, with dry_run, planned)
};

// Brings every declared table (or options.table) to its declaration.
// kInvalidArgument/kNotFound for a bad declaration (nothing changed),
// kFailedPrecondition for a retention that would detach every partition
// without `force`, or a missing archive schema (nothing changed),
// kDeadlineExceeded when a lock was not obtained after the last retry (the
// actions done before it stay done and recorded). Several processes at once
// serialize on ferry's migration lock.
Result<MaintainReport> MaintainPartitions(const PartitionOptions& options);

}  // namespace ferry::partition
