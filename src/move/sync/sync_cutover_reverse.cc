// Sync cut-over, reverse: ferry cutover --reverse prepares a sync job from
// the new primary (the target) back to the old one, created in the write
// pause while both sides hold the same rows, so going back loses nothing.
//
// In:     the target session (after the drain, before the hook), the lock
//         transaction on the source, the forward job's row.
// Out:    on the target, publication and slot ferry_sync_<job>_reverse
//         (no snapshot, no initial copy); on the source, in the lock
//         transaction, the reverse job's row (phase stopped, position =
//         the slot's start). `ferry sync --from NEW --to OLD --job
//         <job>_reverse` then streams from there; the guard lets its
//         applier through (it sets ferry.apply = on).
// Resume: a failed cut-over drops slot and publication again
//         (DropReverse); the job row goes with the rolled-back lock
//         transaction.
#include <fmt/format.h>

#include "move/sync/sync_internal.h"

namespace ferry::sync_internal {

Result<ReverseJob> PrepareReverse(Connection& dst, Connection& lock, const JobRow& forward,
                                  const std::vector<CutTable>& tables) {
  ReverseJob rev;
  rev.job = forward.job + "_reverse";
  FERRY_ASSIGN_OR_RETURN(rev.slot, SyncSlotName(rev.job));
  FERRY_ASSIGN_OR_RETURN(SlotInfo slot, ReadSlot(dst, rev.slot));
  FERRY_ASSIGN_OR_RETURN(QueryResult pub, dst.Query("SELECT 1 FROM pg_publication WHERE pubname = $1",
                                                    {rev.slot}));
  if (slot.exists || !pub.empty()) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("--reverse: slot or publication {} exists on the target already; "
                              "remove it (ferry sync --drop {} --from TARGET --to SOURCE) or cut "
                              "over without --reverse; nothing was changed",
                              rev.slot, rev.job));
  }
  std::string list;
  for (const auto& t : tables) list += (list.empty() ? "" : ", ") + t.quoted;
  FERRY_RETURN_IF_ERROR(
      dst.Exec(fmt::format("CREATE PUBLICATION {} FOR TABLE {}", QuoteIdent(rev.slot), list))
          .status());
  rev.created = true;
  // A slot without a snapshot: nothing is copied, both sides are equal now.
  FERRY_ASSIGN_OR_RETURN(
      QueryResult created,
      dst.Query("SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
                {rev.slot}));
  FERRY_ASSIGN_OR_RETURN(rev.start_lsn, pgoutput::ParseLsn(created.Text(0, 0)));
  JobRow row;
  row.job = rev.job;
  row.slot = rev.slot;
  row.publication = rev.slot;
  row.source = dst.redacted_url();
  row.tables = forward.tables;
  row.phase = SyncPhase::kStopped;
  FERRY_RETURN_IF_ERROR(InsertJob(lock, row));
  FERRY_RETURN_IF_ERROR(SetAppliedLsn(lock, rev.job, rev.start_lsn));
  return rev;
}

void DropReverse(Connection& dst, const ReverseJob& rev) {
  if (!rev.created) return;
  (void)dst.Query(
      "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
      {rev.slot});
  (void)dst.Exec(fmt::format("DROP PUBLICATION IF EXISTS {}", QuoteIdent(rev.slot)));
}

}  // namespace ferry::sync_internal
