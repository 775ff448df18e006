// Sync state: the job row in ferry_sync_jobs on the target.
//
// In:     the job's name, slot, publication, tables; positions from apply.
// Out:    one row per job: phase, applied_lsn (end LSN of the last applied
//         source transaction), source commit time of it, counters.
// Resume: RecordApplied runs inside the transaction that applied the
//         changes, so the row and the rows agree after any crash.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "move/sync/sync_internal.h"

namespace ferry {

std::string_view SyncPhaseName(SyncPhase phase) {
  switch (phase) {
    case SyncPhase::kCopying: return "copying";
    case SyncPhase::kCatchingUp: return "catching_up";
    case SyncPhase::kStreaming: return "streaming";
    case SyncPhase::kStopped: return "stopped";
    case SyncPhase::kCutOver: return "cut_over";
    case SyncPhase::kRolledBack: return "rolled_back";
  }
  return "stopped";
}

Result<SyncPhase> ParseSyncPhase(std::string_view name) {
  for (SyncPhase p : {SyncPhase::kCopying, SyncPhase::kCatchingUp, SyncPhase::kStreaming,
                      SyncPhase::kStopped, SyncPhase::kCutOver, SyncPhase::kRolledBack}) {
    if (SyncPhaseName(p) == name) return p;
  }
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("unknown sync phase '{}' in ferry_sync_jobs", name));
}

namespace sync_internal {
namespace {

constexpr const char* kCreate =
    "CREATE TABLE IF NOT EXISTS ferry_sync_jobs ("
    " job text PRIMARY KEY, slot text NOT NULL, publication text NOT NULL,"
    " source text NOT NULL, tables text NOT NULL, phase text NOT NULL,"
    " applied_lsn pg_lsn NOT NULL DEFAULT '0/0', last_commit_at timestamptz,"
    " rows_applied bigint NOT NULL DEFAULT 0, transactions bigint NOT NULL DEFAULT 0,"
    " stream_started_at timestamptz, stream_rows bigint NOT NULL DEFAULT 0,"
    " caught_up boolean NOT NULL DEFAULT false, error text,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " updated_at timestamptz NOT NULL DEFAULT now())";

Result<int64_t> Run(Connection& dst, std::string_view sql, const Params& params) {
  FERRY_ASSIGN_OR_RETURN(std::vector<int64_t> n,
                         dst.ExecBatch({{.sql = sql, .params = &params, .reuse = true}}));
  return n.empty() ? 0 : n[0];
}

}  // namespace

Status EnsureJobTable(Connection& dst) { return dst.Exec(kCreate).status(); }

Result<std::optional<JobRow>> ReadJob(Connection& dst, const std::string& job) {
  FERRY_ASSIGN_OR_RETURN(QueryResult has,
                         dst.Query("SELECT to_regclass('ferry_sync_jobs') IS NOT NULL"));
  if (has.Text(0, 0) != "t") return std::optional<JobRow>();
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      dst.Query("SELECT job, slot, publication, source, tables, phase, applied_lsn::text,"
                " coalesce(to_char(last_commit_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), ''),"
                " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
                " coalesce(stream_started_at::text, ''), coalesce(error, ''), rows_applied,"
                " transactions, stream_rows,"
                " coalesce(extract(epoch FROM updated_at - stream_started_at), 0)::float8,"
                " caught_up FROM ferry_sync_jobs WHERE job = $1",
                {job}));
  if (r.empty()) return std::optional<JobRow>();
  JobRow row;
  row.job = r.Text(0, 0);
  row.slot = r.Text(0, 1);
  row.publication = r.Text(0, 2);
  row.source = r.Text(0, 3);
  nlohmann::json tables = nlohmann::json::parse(r.Text(0, 4), nullptr, false);
  if (tables.is_array()) {
    for (const auto& t : tables) {
      if (t.is_string()) row.tables.push_back(t.get<std::string>());
    }
  }
  FERRY_ASSIGN_OR_RETURN(row.phase, ParseSyncPhase(r.Text(0, 5)));
  FERRY_ASSIGN_OR_RETURN(row.applied_lsn, pgoutput::ParseLsn(r.Text(0, 6)));
  row.last_commit_at = r.Text(0, 7);
  row.updated_at = r.Text(0, 8);
  row.stream_started_at = r.Text(0, 9);
  row.error = r.Text(0, 10);
  row.rows_applied = std::stoll(r.Text(0, 11));
  row.transactions = std::stoll(r.Text(0, 12));
  row.stream_rows = std::stoll(r.Text(0, 13));
  row.stream_seconds = std::stod(r.Text(0, 14));
  row.caught_up = r.Text(0, 15) == "t";
  return std::optional<JobRow>(std::move(row));
}

Status InsertJob(Connection& dst, const JobRow& row) {
  FERRY_RETURN_IF_ERROR(EnsureJobTable(dst));
  nlohmann::json tables = row.tables;
  return Run(dst,
             "INSERT INTO ferry_sync_jobs (job, slot, publication, source, tables, phase)"
             " VALUES ($1, $2, $3, $4, $5, $6)",
             {row.job, row.slot, row.publication, row.source, tables.dump(),
              std::string(SyncPhaseName(row.phase))})
      .status();
}

Status SetPhase(Connection& dst, const std::string& job, SyncPhase phase,
                const std::string& error) {
  return Run(dst,
             "UPDATE ferry_sync_jobs SET phase = $2, error = nullif($3, ''), updated_at = now()"
             " WHERE job = $1",
             {job, std::string(SyncPhaseName(phase)), error})
      .status();
}

Status SetCaughtUp(Connection& dst, const std::string& job) {
  return Run(dst,
             "UPDATE ferry_sync_jobs SET caught_up = true, phase = 'streaming', updated_at = now()"
             " WHERE job = $1",
             {job})
      .status();
}

Status StartStreamWindow(Connection& dst, const std::string& job, SyncPhase phase) {
  return Run(dst,
             "UPDATE ferry_sync_jobs SET phase = $2, error = NULL, caught_up = false,"
             " stream_started_at = now(), stream_rows = 0, updated_at = now() WHERE job = $1",
             {job, std::string(SyncPhaseName(phase))})
      .status();
}

Status SetAppliedLsn(Connection& dst, const std::string& job, uint64_t lsn) {
  return Run(dst,
             "UPDATE ferry_sync_jobs SET applied_lsn = $2::pg_lsn, updated_at = now()"
             " WHERE job = $1",
             {job, pgoutput::LsnText(lsn)})
      .status();
}

Status RecordApplied(Connection& dst, const std::string& job, uint64_t end_lsn,
                     double commit_unix, int64_t rows) {
  FERRY_ASSIGN_OR_RETURN(
      int64_t n,
      Run(dst,
          "UPDATE ferry_sync_jobs SET applied_lsn = $2::pg_lsn,"
          " last_commit_at = to_timestamp($3::float8), rows_applied = rows_applied + $4::bigint,"
          " transactions = transactions + 1, stream_rows = stream_rows + $4::bigint,"
          " caught_up = false, updated_at = now() WHERE job = $1",
          {job, pgoutput::LsnText(end_lsn), fmt::format("{:.6f}", commit_unix),
           std::to_string(rows)}));
  if (n != 1) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("sync job '{}' is gone from ferry_sync_jobs on the target (was it "
                              "dropped?); start it again",
                              job));
  }
  return Status();
}

Status DeleteJob(Connection& dst, const std::string& job) {
  FERRY_ASSIGN_OR_RETURN(QueryResult has,
                         dst.Query("SELECT to_regclass('ferry_sync_jobs') IS NOT NULL"));
  if (has.Text(0, 0) != "t") return Status();
  return Run(dst, "DELETE FROM ferry_sync_jobs WHERE job = $1", {job}).status();
}

}  // namespace sync_internal
}  // namespace ferry
