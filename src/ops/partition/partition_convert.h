// ferry partition create / abort: converts an existing PostgreSQL table into
// a RANGE-partitioned one online (docs/partitions.md, "Converting an
// existing table").
//
// The conversion is a state machine persisted in the control table
// `ferry_partition_conversions` (one row per table), each phase idempotent,
// so a rerun after a crash (kill -9) resumes where the last one stopped:
//
//   shadow_created     `<table>_ferry_part` PARTITION BY RANGE (column), the
//                      original's columns, defaults, checks, keys and indexes,
//                      partitions covering min..max of the data plus premake
//                      (and DEFAULT when declared); one transaction.
//   triggers_installed AFTER INSERT/UPDATE/DELETE FOR EACH ROW on the original
//                      mirror every write into the shadow.
//   copying            batches in primary-key order, each one short
//                      transaction that also records the last key copied.
//   verified           count and hash per key range equal, each range read in
//                      one snapshot of both tables.
//   swapped            one short transaction under SET LOCAL lock_timeout
//                      (retried with backoff): LOCK, drop the trigger, rename
//                      the original to `<table>_ferry_old` and the shadow to
//                      the table's name, indexes too, sequences OWNED BY the
//                      new table.
//   done               recorded in the history table; the old table dropped
//                      with drop_old.
//
// Every statement that takes a lock on the original runs under lock_timeout,
// so readers and writers of the table never queue behind ferry for longer.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"
#include "observe/event.h"
#include "ops/partition/partition_plan.h"

namespace ferry::partition {

enum class ConvertPhase : uint8_t {
  kNone,  // no conversion recorded
  kShadowCreated,
  kTriggersInstalled,
  kCopying,
  kVerified,
  kSwapped,
  kDone,
  kAborted,
};
std::string_view ConvertPhaseName(ConvertPhase phase);  // "shadow_created", ...
ConvertPhase ConvertPhaseFromName(std::string_view name);  // kNone when unknown

struct ConvertOptions {
  std::string url;
  std::string history_table = "ferry_schema_history";
  std::string config_file;  // ferry.toml holding the [[partitions]] entry
  std::string table;        // the declared table ("schema.table" or "table")
  std::optional<int64_t> now;  // seconds since the epoch; default: the clock
  bool dry_run = false;        // print the plan; change nothing
  bool drop_old = false;       // drop `<table>_ferry_old` after the swap
  int64_t batch_rows = 5000;
  std::chrono::milliseconds lock_timeout{2000};  // every statement locking the original
  int lock_retries = 5;                          // after the first try
  std::chrono::milliseconds retry_delay{500};    // doubled each retry, jittered
  std::chrono::milliseconds lock_wait{60000};    // for ferry's migration lock
  EventBus* bus = nullptr;                       // progress, optional
};

struct ConvertReport {
  std::string table;  // "schema.name"
  std::string column;
  bool dry_run = false;
  bool already_partitioned = false;  // nothing to do
  bool resumed = false;              // a conversion was found in progress
  ConvertPhase phase = ConvertPhase::kNone;  // where it ended
  std::string shadow;                // "schema.name_ferry_part"
  std::string old_table;             // "schema.name_ferry_old" ("" once dropped)
  std::vector<std::string> partitions;  // created in the shadow
  int64_t rows_copied = 0;
  int64_t rows_verified = 0;
  int swap_attempts = 0;
  std::vector<std::string> sql;  // dry run: the plan, in order
};

// Converts options.table (declared in options.config_file) to a partitioned
// table, or resumes its conversion. Refusals change nothing and say the fix:
// kUnimplemented (not PostgreSQL), kNotFound (not declared, or the table does
// not exist: create it PARTITION BY RANGE in a migration), kFailedPrecondition
// (no primary key, a primary key or unique constraint without the partition
// column, identity columns, foreign keys referencing the table, a leftover
// shadow), kDeadlineExceeded (a lock not obtained after the last retry: rerun).
Result<ConvertReport> ConvertToPartitioned(const ConvertOptions& options);

struct AbortReport {
  std::string table;
  ConvertPhase phase_found = ConvertPhase::kNone;
  bool dropped_shadow = false;
};

// Undoes a conversion before its swap: drops the trigger, its function, the
// shadow table and the control row; the original is untouched. After the
// swap it refuses (kFailedPrecondition) and says how to go back by hand.
Result<AbortReport> AbortConversion(const ConvertOptions& options);

// ---- SQL builders (partition_convert_sql.cc): pure, unit-tested. ----

// What the conversion needs to know about the original table.
struct SourceTable {
  std::string schema;
  std::string name;
  std::string column;  // the partition key
  KeyKind key = KeyKind::kTimestampTz;
  std::vector<std::string> columns;     // writable columns, in order (no generated)
  std::vector<std::string> pk;          // primary key columns, in order
  std::vector<std::string> pk_types;    // their format_type()
  std::vector<std::string> constraint_defs;  // "name|PRIMARY KEY (a, b)" (p and u)
  std::vector<std::string> foreign_keys;     // "name|FOREIGN KEY (a) REFERENCES ..." (out of it)
  std::vector<std::string> index_defs;  // "name|CREATE INDEX name ON s.t USING ..." (no constraint)
  std::vector<std::string> sequences;   // "schema.seq|column" owned by a column
};

std::string ShadowName(std::string_view table);  // "<table>_ferry_part" (fits 63 bytes)
std::string OldName(std::string_view table);     // "<table>_ferry_old"
std::string SyncFunctionName(std::string_view table);  // "<table>_ferry_part_sync"
std::string ShadowObjectName(std::string_view name);   // index/constraint names in the shadow
std::string OldObjectName(std::string_view name);      // after the swap, on the old table

// CREATE TABLE shadow (LIKE ...) PARTITION BY RANGE, its keys and indexes,
// then one CREATE TABLE ... PARTITION OF per range (named after the table,
// so they read right after the swap) and the DEFAULT one when asked.
std::vector<std::string> ShadowSql(const SourceTable& t, const Interval& interval,
                                   const std::vector<Range>& ranges, bool default_partition);
// The trigger function and trigger mirroring writes into the shadow.
std::vector<std::string> TriggerSql(const SourceTable& t);
std::vector<std::string> DropTriggerSql(const SourceTable& t);
// One batch: $1..$n the last key copied (absent for the first batch),
// then $n+1..$2n the batch's last key. Rows are locked FOR SHARE while
// copied so a concurrent UPDATE/DELETE cannot slip between read and write.
std::string CopyBatchSql(const SourceTable& t, bool first);
// The batch's last key: $1..$n the last key copied (absent when first);
// the `batch_rows`-th key after it, or the largest; no row when none is left.
std::string NextKeySql(const SourceTable& t, bool first, int64_t batch_rows);
// count and hash of the rows of `table` (quoted) with key in (lower, upper]
// ($1..$n lower unless first, $n+1..$2n upper unless last).
std::string RangeDigestSql(const SourceTable& t, const std::string& table, bool first, bool last);
// The swap's statements, in order, inside the caller's transaction.
std::vector<std::string> SwapSql(const SourceTable& t);
// The pk as "(a, b)" and a row comparison "(a, b) > ($k::t, ...)" from $first.
std::string KeyList(const SourceTable& t);
std::string KeyCompare(const SourceTable& t, std::string_view op, int first_param);

}  // namespace ferry::partition
