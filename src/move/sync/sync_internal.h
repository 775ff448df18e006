// Shared by the sync stages (src/move/sync/*.cc); not a public header.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "drivers/postgres/pg_replication.h"
#include "ferry/status.h"
#include "move/sync/pgoutput.h"
#include "move/sync/sync.h"
#include "move/table_info.h"
#include "observe/event.h"

namespace ferry::sync_internal {

// ---- sync_state.cc: the job row in ferry_sync_jobs on the target ----
struct JobRow {
  std::string job, slot, publication, source;  // source: redacted URL
  std::vector<std::string> tables;             // qualified source names
  SyncPhase phase = SyncPhase::kCopying;
  uint64_t applied_lsn = 0;  // end LSN of the last applied transaction
  std::string last_commit_at, updated_at, stream_started_at, error;
  int64_t rows_applied = 0, transactions = 0, stream_rows = 0;
  double stream_seconds = 0;  // updated_at - stream_started_at
  bool caught_up = false;
};

Status EnsureJobTable(Connection& dst);
// nullopt when there is no such job (or no control table yet).
Result<std::optional<JobRow>> ReadJob(Connection& dst, const std::string& job);
Status InsertJob(Connection& dst, const JobRow& row);
// Sets phase (and error, "" clears it) outside any transaction.
Status SetPhase(Connection& dst, const std::string& job, SyncPhase phase,
                const std::string& error = "");
Status SetCaughtUp(Connection& dst, const std::string& job);
// Starts a stream's rate window (stream_started_at = now, stream_rows = 0)
// and sets the start position of a fresh job.
Status StartStreamWindow(Connection& dst, const std::string& job, SyncPhase phase);
Status SetAppliedLsn(Connection& dst, const std::string& job, uint64_t lsn);
// Inside the transaction that applied the changes: the new position.
Status RecordApplied(Connection& dst, const std::string& job, uint64_t end_lsn,
                     double commit_unix, int64_t rows);
Status DeleteJob(Connection& dst, const std::string& job);

// ---- sync_plan.cc: checks and the table list ----
struct PlannedTable {
  std::string name;  // qualified source name ("public.t")
  TableInfo source;
  char replica_identity = 'd';
  bool target_exists = false;
};
struct Plan {
  std::string job, slot, publication;
  std::vector<PlannedTable> tables;
  std::optional<JobRow> existing;
};
// Checks the servers, the job, the slot and every table; writes nothing.
Result<Plan> PlanSync(const SyncOptions& o, Connection& src, Connection& dst);
// Whether a replication slot of that name exists, and if active.
struct SlotInfo {
  bool exists = false, active = false;
  int64_t retained_bytes = 0;  // pg_current_wal_lsn() - confirmed_flush_lsn
  std::string database;
};
Result<SlotInfo> ReadSlot(Connection& src, const std::string& slot);
// ReadSlot, but a slot still active is read again for up to five seconds: a
// run stopped a moment ago leaves its walsender behind until the server
// notices the closed socket.
Result<SlotInfo> ReadSlotOnceIdle(Connection& src, const std::string& slot);

// ---- sync_apply.cc: decoded messages onto the target ----
class Applier {
 public:
  Applier(Connection& dst, std::string job, std::set<std::string> tables, uint64_t applied_lsn)
      : dst_(dst), job_(std::move(job)), tables_(std::move(tables)), applied_lsn_(applied_lsn) {}

  // Applies one message. Begin opens a target transaction (or marks the
  // transaction skipped when it was applied before), Commit records the
  // position and commits. A Relation whose columns differ from the target
  // table is kFailedPrecondition (the open transaction is rolled back).
  Status Apply(const pgoutput::Message& message);
  // Rolls back an open transaction (stop in the middle of one).
  void Abandon();

  bool in_transaction() const { return in_tx_; }
  uint64_t applied_lsn() const { return applied_lsn_; }
  double last_commit_unix() const { return last_commit_unix_; }
  int64_t rows_applied = 0, transactions = 0, skipped = 0;

 private:
  struct Rel {
    pgoutput::Relation msg;
    std::string target;             // quoted qualified target name
    std::vector<size_t> key;        // relation columns of the replica identity
  };
  Status OnBegin(const pgoutput::Begin& b);
  Status OnCommit(const pgoutput::Commit& c);
  Status OnRelation(const pgoutput::Relation& r);
  Status OnInsert(const pgoutput::Insert& m);
  Status OnUpdate(const pgoutput::Update& m);
  Status OnDelete(const pgoutput::Delete& m);
  Status OnTruncate(const pgoutput::Truncate& m);
  Result<const Rel*> Find(uint32_t id) const;
  Result<int64_t> Run(const std::string& sql, const Params& params);
  // Runs an UPDATE or DELETE that must change exactly one row of `target`;
  // none means the target diverged from the source.
  Status RunOneRow(const std::string& sql, const Params& params, const char* what,
                   const std::string& target);
  std::string Where(const Rel& rel, const pgoutput::Tuple& tuple, bool full, Params& params) const;

  Connection& dst_;
  std::string job_;
  std::set<std::string> tables_;
  uint64_t applied_lsn_;
  std::map<uint32_t, Rel> relations_;
  bool in_tx_ = false, skipping_ = false;
  int64_t tx_rows_ = 0;
  double last_commit_unix_ = 0;
};


// ---- sync_stream.cc: the replication loop ----
struct StreamContext {
  const SyncOptions* options = nullptr;
  postgres::ReplicationSession* replication = nullptr;
  Connection* src = nullptr;  // for pg_current_wal_lsn()
  Connection* dst = nullptr;
  Applier* applier = nullptr;
  EventBus* bus = nullptr;
  std::string database;  // DatabaseLabel of the target, for events
  SyncPhase phase = SyncPhase::kCatchingUp;
  // In: with until_lag_zero, stop once this position is applied; 0: the
  // source's pg_current_wal_lsn() when the loop starts.
  uint64_t goal = 0;
  // Out: the position confirmed to the source when the loop stopped (the
  // last applied commit, or the server's end of WAL when idle).
  uint64_t position = 0;
};
// Streams and applies until a stop condition; returns why it stopped
// ("caught up", "--stop-after", "cancelled"). The slot's flush position
// is confirmed as transactions commit on the target.
Result<std::string> StreamChanges(StreamContext& ctx);
// pg_current_wal_insert_lsn(): includes commits not yet written
// (synchronous_commit = off), so a goal taken from it covers them.
Result<uint64_t> CurrentWalLsn(Connection& src);

// ---- sync_cutover_steps.cc: the cut-over's steps ----
struct CutTable {
  std::string name;    // as in the job row ("public.t")
  std::string schema;  // unquoted
  std::string quoted;  // "\"public\".\"t\"" (same on both sides)
};
Result<std::vector<CutTable>> CutoverTables(const JobRow& row);
// A sequence owned by a column of a synced table (serial, identity).
struct OwnedSequence {
  std::string name;    // quoted qualified
  std::string table;   // quoted qualified
  std::string column;  // unquoted
  std::string type;    // bigint, integer, smallint
  bool identity = false;
};
Result<std::vector<OwnedSequence>> OwnedSequences(Connection& src,
                                                  const std::vector<CutTable>& tables);
// Creates a serial column's sequence missing on the target (and makes it
// the column's default when it has none); returns the names created. A
// missing identity sequence is kFailedPrecondition saying what to run.
Result<std::vector<std::string>> PrepareTargetSequences(
    Connection& dst, const std::vector<OwnedSequence>& sequences);
// setval on the target: max(source last_value, target last_value) + margin.
Result<std::vector<CutoverSequence>> MoveSequences(Connection& src, Connection& dst,
                                                   const std::vector<OwnedSequence>& sequences,
                                                   int64_t margin);
Result<std::vector<CutoverTable>> CountRows(Connection& src, Connection& dst,
                                            const std::vector<CutTable>& tables);
// "ferry_cutover_guard_<job>" (at most 63 bytes).
Result<std::string> GuardTriggerName(const std::string& job);
// In the caller's transaction: the guard function per schema and one
// statement-level trigger per table refusing every write.
Status InstallGuard(Connection& src, const std::vector<CutTable>& tables, const std::string& job,
                    const std::string& target_redacted);
// Phase cut_over and the report (column cutover, added when missing).
Status RecordCutover(Connection& dst, const CutoverReport& report);

// ---- sync_cutover_reverse.cc: --reverse ----
struct ReverseJob {
  std::string job, slot;  // slot and publication share the name
  uint64_t start_lsn = 0;
  bool created = false;   // the publication (and maybe the slot) exist
};
// On the target: publication + slot of "<job>_reverse"; on `lock` (the
// source's lock transaction): its job row. kFailedPrecondition when they
// exist already. On failure call DropReverse with what `rev` says.
Result<ReverseJob> PrepareReverse(Connection& dst, Connection& lock, const JobRow& forward,
                                  const std::vector<CutTable>& tables);
// Drops the slot and publication PrepareReverse created (best effort).
void DropReverse(Connection& dst, const ReverseJob& rev);

// ---- sync_watch.cc: --watch after the cut-over ----
// Streams the reverse job and checks the condition until the watch ends;
// when it holds, switches back (fills report.watch).
Status WatchCutover(const CutoverOptions& options, CutoverReport& report, EventBus* bus);

// ---- sync_hook.cc: the cut-over's switch hook ----
struct HookResult {
  int exit_code = -1;   // 128 + signal when killed by one
  std::string output;   // the last 4 KiB of its stdout and stderr together
  bool timed_out = false;
};
// Runs `/bin/sh -c command` with `env` added to ferry's environment; kills
// it after `timeout`. kUnavailable when it cannot be started.
Result<HookResult> RunHook(const std::string& command,
                           const std::vector<std::pair<std::string, std::string>>& env,
                           std::chrono::milliseconds timeout);

}  // namespace ferry::sync_internal
