// What the copy engine's stages share (private to src/move/copy*.cc): a
// table of the job as both sides see it (TableJob), the prepared job
// (Prepared: both connections, tables, snapshot), and each stage's entry
// points. Stages: copy_plan.cc (validate, describe, split into chunks),
// copy_worker.cc (workers leasing and moving chunks), copy.cc (the public
// PlanCopy / RunCopy / ReadCopyStatus that drive them).
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "move/control.h"
#include "move/copy.h"
#include "move/copy_progress.h"
#include "move/table_info.h"

namespace ferry::copy_internal {

using Clock = std::chrono::steady_clock;
using ConnPtr = std::unique_ptr<Connection>;

enum class Split { kPrimaryKey, kCtid, kSingle };

// One table of the job as both sides see it.
struct TableJob {
  std::string source_name;  // as given / listed
  std::string target_name;
  TableInfo src;
  TableInfo dst;            // valid when target_exists (or after creation)
  bool target_exists = false;
  bool target_has_rows = false;
  Split split = Split::kPrimaryKey;
  std::vector<const ColumnInfo*> columns;  // source columns copied, in order
  std::vector<std::string> ddl;
  // Run once every chunk is in (PostgreSQL target created by the job): the
  // primary key, so that rows go into a bare heap (copy_indexes.h).
  std::vector<std::string> after;
  std::string partition_note;  // PartitionNote() for the plan
  int64_t estimated_rows = -1;
  std::vector<KeyRange> ranges;
  // Filled by BuildSql().
  std::string column_list;  // quoted names
  std::string select_list;  // source expressions
  std::string copy_in;      // PostgreSQL target
  std::string insert_prefix;  // SQLite target: INSERT INTO t (cols) VALUES
  std::vector<bool> blob_param;  // SQLite target: bind column i as BLOB
  std::vector<bool> bytea_hex;   // PostgreSQL source -> SQLite: decode '\x..'
};

inline bool IsPg(const Connection& c) { return c.engine() == Engine::kPostgres; }

std::string_view SplitName(Split s);
std::string InlineParams(std::string_view sql, const Params& params);
std::string RangeText(const TableJob& t, const KeyRange& r);
std::string ChunkPredicate(const TableJob& t, const KeyRange& r, const std::string& where,
                           Params& params);
std::string QuotedTarget(const std::string& target_name, bool pg_target);
Status WithTable(Status s, const std::string& table);

// Session settings for PostgreSQL sources read as text: unambiguous,
// lossless text forms (ISO dates, UTC offsets, hex bytea, shortest exact
// floats).
inline constexpr const char* kPgSourceSession =
    "SET standard_conforming_strings = on; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
    "SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'";

struct Prepared {
  ConnPtr src, dst;
  std::vector<TableJob> tables;
  std::string job_id;
  std::optional<JobRow> existing;
  std::string snapshot;  // exported by src (kept open) on a PostgreSQL source
  std::string target_display;  // the target's redacted URL
};

nlohmann::json SpecJson(const CopyOptions& o, const Connection& src, const Connection& dst,
                        const std::vector<TableJob>& tables);
Status Validate(const CopyOptions& o);
Result<ConnPtr> Open(const std::string& url, std::string_view side);
Result<ConnPtr> OpenTargetForPlan(const std::string& url, bool* placeholder);
std::string RedactedUrl(const std::string& url);
Result<std::optional<JobRow>> FindJob(Connection& dst, const std::string& job_id);
Status ExecUnderLockTimeout(Connection& dst, const std::string& sql, const std::string& table);
Status SetLockTimeout(Connection& dst, std::chrono::milliseconds timeout);
Result<std::vector<std::string>> TableNames(const CopyOptions& o, Connection& src);
Result<Prepared> Prepare(const CopyOptions& o, bool for_run);

// The SQL a worker runs per chunk, fixed per table (copy_worker.cc).
void BuildSql(TableJob& t, Engine target_engine);

// Runs `workers` workers on the job's chunks until none is left or one
// fails for good; returns the first fatal error (copy_worker.cc).
Status RunWorkers(const CopyOptions& o, std::vector<TableJob>& tables, const std::string& job_id,
                  const std::string& snapshot, int workers, Progress& progress);

// The job's totals from its chunk rows.
Result<CopySummary> Tally(Connection& dst, const std::string& job_id,
                          const std::vector<TableJob>& tables);

// Chunks still leased by a worker of this process go back to pending.
Status ReleaseOwnLeases(Connection& dst, const std::string& job_id);

}  // namespace ferry::copy_internal
