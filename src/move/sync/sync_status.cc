// Sync status and drop: read or remove a job from any machine.
//
// In:     the target URL (job row), the source URL (slot, publication).
// Out:    SyncStatus: phase, position, lag in bytes and seconds, apply
//         rate, warnings about abandoned ferry slots holding WAL; or the
//         job's slot, publication and rows removed.
// Resume: both only read or drop; a drop that stops half way can be run
//         again.
#include <fmt/format.h>

#include <ctime>

#include "core/url.h"
#include "drivers/registry.h"
#include "move/control.h"
#include "move/sync/sync_internal.h"

namespace ferry {
namespace {

using namespace sync_internal;

Result<std::unique_ptr<Connection>> OpenSide(const std::string& url, std::string_view side) {
  ConnectOptions co;
  co.application_name = "ferry sync";
  auto c = OpenConnection(url, co);
  if (!c.ok()) return std::move(c).TakeStatus().Prefix(side);
  return std::move(*c);
}

// Warnings for ferry slots on the source that hold WAL and are not in use.
Status AbandonedSlots(Connection& src, Connection& dst, const std::string& own_slot,
                      std::vector<std::string>& warnings) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      src.Query("SELECT slot_name, active,"
                " coalesce(pg_current_wal_lsn() - coalesce(confirmed_flush_lsn, restart_lsn), 0)::bigint"
                " FROM pg_replication_slots WHERE slot_name LIKE 'ferry\\_sync\\_%' ORDER BY 1"));
  FERRY_ASSIGN_OR_RETURN(QueryResult has,
                         dst.Query("SELECT to_regclass('ferry_sync_jobs') IS NOT NULL"));
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const std::string& slot = r.Text(i, 0);
    if (r.Text(i, 1) == "t") continue;
    bool known = slot == own_slot;
    if (!known && has.Text(0, 0) == "t") {
      FERRY_ASSIGN_OR_RETURN(QueryResult job,
                             dst.Query("SELECT job FROM ferry_sync_jobs WHERE slot = $1", {slot}));
      known = !job.empty();
    }
    if (slot == own_slot) {
      warnings.push_back(fmt::format(
          "slot {} is not in use: no sync is running, and the source keeps {} bytes of WAL for "
          "it; run ferry sync again to catch up, or ferry sync --drop to remove it",
          slot, r.Text(i, 2)));
    } else if (!known) {
      warnings.push_back(fmt::format(
          "slot {} on the source belongs to no sync job on this target and holds {} bytes of "
          "WAL; if it is abandoned, remove it with ferry sync --drop {} (or SELECT "
          "pg_drop_replication_slot('{}') on the source)",
          slot, r.Text(i, 2), slot.substr(11), slot));
    }
  }
  return Status();
}

}  // namespace

Result<SyncStatus> ReadSyncStatus(const std::string& from_url, const std::string& to_url,
                                  const std::string& job) {
  FERRY_ASSIGN_OR_RETURN(auto dst, OpenSide(to_url, "target"));
  FERRY_ASSIGN_OR_RETURN(std::optional<sync_internal::JobRow> row, ReadJob(*dst, job));
  FERRY_ASSIGN_OR_RETURN(std::string slot_name, SyncSlotName(job));
  if (!row && from_url.empty()) {
    return Status(StatusCode::kNotFound,
                  fmt::format("no sync job '{}' on the target {} (ferry_sync_jobs); add --from "
                              "URL to look for a left-over slot on the source",
                              job, dst->redacted_url()));
  }
  SyncStatus st;
  st.job = job;
  st.slot = row ? row->slot : slot_name;
  st.publication = row ? row->publication : slot_name;
  st.phase = row ? std::string(SyncPhaseName(row->phase)) : "none";
  if (row) {
    st.source = row->source;
    st.tables = row->tables;
    st.applied_lsn = pgoutput::LsnText(row->applied_lsn);
    st.last_commit_at = row->last_commit_at;
    st.updated_at = row->updated_at;
    st.error = row->error;
    st.rows_applied = row->rows_applied;
    st.transactions = row->transactions;
    st.apply_rate = row->stream_seconds > 0
                        ? static_cast<double>(row->stream_rows) / row->stream_seconds
                        : 0;
    // to_jsonb(j) reads the cutover column only where a cut-over added it.
    FERRY_ASSIGN_OR_RETURN(
        QueryResult cut,
        dst->Query("SELECT coalesce(to_jsonb(j)->>'cutover', '') FROM ferry_sync_jobs j"
                   " WHERE job = $1",
                   {job}));
    if (!cut.empty()) st.cutover = cut.Text(0, 0);
    if (!row->caught_up && !row->last_commit_at.empty()) {
      FERRY_ASSIGN_OR_RETURN(
          QueryResult age,
          dst->Query("SELECT greatest(extract(epoch FROM now() - last_commit_at), 0)::float8"
                     " FROM ferry_sync_jobs WHERE job = $1",
                     {job}));
      if (!age.empty() && !age.IsNull(0, 0)) st.lag_seconds = std::stod(age.Text(0, 0));
    }
  }
  const std::string source = from_url.empty() ? st.source : from_url;
  FERRY_ASSIGN_OR_RETURN(auto src, OpenSide(source, "source"));
  FERRY_ASSIGN_OR_RETURN(SlotInfo slot, ReadSlot(*src, st.slot));
  st.slot_exists = slot.exists;
  st.slot_active = slot.active;
  st.lag_bytes = slot.exists ? slot.retained_bytes : -1;
  if (row && row->phase != SyncPhase::kCopying && !slot.exists) {
    st.warnings.push_back(fmt::format(
        "the job's slot {} is gone from the source: the sync cannot resume; run ferry sync "
        "--drop {} and start again",
        st.slot, job));
  }
  if (!row && slot.exists) {
    st.warnings.push_back(fmt::format("no job '{}' on the target, but its slot {} exists on the "
                                      "source",
                                      job, st.slot));
  }
  FERRY_RETURN_IF_ERROR(AbandonedSlots(*src, *dst, row ? st.slot : "", st.warnings));
  return st;
}

Result<SyncDropResult> DropSync(const std::string& from_url, const std::string& to_url,
                                const std::string& job) {
  FERRY_ASSIGN_OR_RETURN(std::string slot_name, SyncSlotName(job));
  FERRY_ASSIGN_OR_RETURN(auto dst, OpenSide(to_url, "target"));
  FERRY_ASSIGN_OR_RETURN(std::optional<sync_internal::JobRow> row, ReadJob(*dst, job));
  const std::string source = !from_url.empty() ? from_url : row ? row->source : "";
  if (source.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--drop {}: there is no such job on the target; add --from URL to "
                              "drop a left-over slot on the source",
                              job));
  }
  FERRY_ASSIGN_OR_RETURN(auto src, OpenSide(source, "source"));
  const std::string slot = row ? row->slot : slot_name;
  const std::string publication = row ? row->publication : slot_name;
  SyncDropResult out;
  FERRY_ASSIGN_OR_RETURN(SlotInfo info, ReadSlotOnceIdle(*src, slot));
  if (info.active) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("slot {} is in use by a running ferry sync; stop it first (Ctrl-C "
                              "or kill), then run --drop again",
                              slot));
  }
  if (info.exists) {
    FERRY_RETURN_IF_ERROR(
        src->Query("SELECT pg_drop_replication_slot($1)", {slot}).status());
    out.slot_dropped = true;
  }
  FERRY_ASSIGN_OR_RETURN(QueryResult pub,
                         src->Query("SELECT 1 FROM pg_publication WHERE pubname = $1",
                                    {publication}));
  if (!pub.empty()) {
    FERRY_RETURN_IF_ERROR(
        src->Exec(fmt::format("DROP PUBLICATION IF EXISTS {}", QuoteIdent(publication))).status());
    out.publication_dropped = true;
  }
  if (row) {
    FERRY_RETURN_IF_ERROR(DeleteJob(*dst, job));
    out.job_dropped = true;
  }
  FERRY_ASSIGN_OR_RETURN(QueryResult jobs, dst->Query("SELECT to_regclass('ferry_jobs') IS NOT NULL"));
  if (jobs.Text(0, 0) == "t") {
    ControlTables control(*dst);
    FERRY_RETURN_IF_ERROR(control.DeleteJob("sync:" + job));
  }
  return out;
}

}  // namespace ferry
