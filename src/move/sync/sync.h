// Sync: continuous logical replication from one PostgreSQL database to
// another (docs/sync.md).
//
// In:     SyncOptions (source and target URLs, tables, job name).
// Out:    the target tables follow the source: an initial copy from the
//         slot's exported snapshot, then every committed change streamed
//         from the slot and applied in commit order. Events of kind kSync.
// Resume: the job row in ferry_sync_jobs on the target holds the applied
//         position (commit end LSN), written in the same transaction as
//         the changes; a restarted run skips transactions at or before it.
//
// Stages: sync_plan.cc (checks, table list), sync_state.cc (control table),
// sync_run.cc (create slot, copy, then stream), sync_stream.cc (the
// replication loop), sync_apply.cc (one transaction onto the target),
// sync_status.cc (status and drop), pgoutput.cc (message decoder),
// sync_cutover.cc (the cut-over), sync_cutover_steps.cc (its steps),
// sync_hook.cc (the switch hook).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "observe/event.h"

namespace ferry {

struct SyncOptions {
  std::string from_url;
  std::string to_url;
  std::vector<std::string> tables;  // "t" or "schema.t"; empty with all = true
  bool all = false;                 // every user table of the source
  std::string job = "sync";         // names the slot and publication: ferry_sync_<job>
  bool create_tables = false;       // create missing target tables (as ferry copy does)
  bool resume = false;              // require an existing job of this name
  bool until_lag_zero = false;      // stop once every change up to now is applied
  std::chrono::milliseconds stop_after{0};  // stop after this long streaming; 0: never
  int copy_workers = 2;
  // Set from a signal handler: the loop stops at the next message boundary
  // (an open transaction is rolled back; it is streamed again next run).
  const std::atomic<bool>* cancel = nullptr;
};

// kCutOver: ferry cutover moved the writes to the target (sync_cutover.cc).
// kRolledBack: a cut-over whose --rollback-if condition held while
// --watch was running; the writes went back to the source (sync_watch.cc).
enum class SyncPhase { kCopying, kCatchingUp, kStreaming, kStopped, kCutOver, kRolledBack };
std::string_view SyncPhaseName(SyncPhase phase);
Result<SyncPhase> ParseSyncPhase(std::string_view name);

struct SyncSummary {
  std::string job;
  std::string slot;
  bool resumed = false;
  int64_t rows_copied = 0;      // initial copy of this run
  int64_t rows_applied = 0;     // streamed changes applied by this run
  int64_t transactions = 0;     // by this run
  int64_t skipped_transactions = 0;  // already applied before a restart
  std::string applied_lsn;      // text form
  double seconds = 0;
  std::string stop_reason;      // "caught up", "--stop-after", "cancelled"
};

// Runs (or resumes) the job until it is caught up (until_lag_zero), the
// stop-after time passed, cancel was set, or it fails. Bad input fails
// before anything is created: wal_level not logical, a role without
// REPLICATION, a table without primary key or replica identity, a slot of
// that name not owned by this job, non-empty target tables for a new job.
// A DDL change on the source (columns that differ from the target table)
// stops it with kFailedPrecondition saying how to resume.
Result<SyncSummary> RunSync(const SyncOptions& options, EventBus* bus);

struct SyncTableStatus {
  std::string table;
};
struct SyncStatus {
  std::string job, slot, publication, source;
  std::string phase;             // copying, catching_up, streaming, stopped
  std::vector<std::string> tables;
  std::string applied_lsn;       // last applied commit end LSN
  std::string last_commit_at;    // source commit time of that transaction
  std::string updated_at;
  std::string error;             // why it stopped, when it did on an error
  bool slot_exists = false;
  bool slot_active = false;      // a sync is reading from the slot now
  int64_t lag_bytes = -1;        // pg_current_wal_lsn() - confirmed_flush_lsn; -1 unknown
  double lag_seconds = 0;        // 0 when caught up
  int64_t rows_applied = 0, transactions = 0;
  double apply_rate = 0;         // rows per second of the current (or last) stream
  std::vector<std::string> warnings;  // abandoned slots holding WAL, ...
  std::string cutover;           // JSON of the cut-over (ferry cutover), "" when none
};

// Reads the job row on `to_url` and its slot on `from_url` (when empty, the
// source URL stored in the job, which has no password).
Result<SyncStatus> ReadSyncStatus(const std::string& from_url, const std::string& to_url,
                                  const std::string& job);

// Drops the job's slot and publication on the source and its rows on the
// target (a slot in use by a running sync is refused). Works when only some
// of them are left.
struct SyncDropResult {
  bool slot_dropped = false, publication_dropped = false, job_dropped = false;
};
Result<SyncDropResult> DropSync(const std::string& from_url, const std::string& to_url,
                                const std::string& job);

// ---- ferry cutover (docs/sync.md, "Cut-over") ----
// After the cut-over (docs/cutover.md, "Watching and rolling back"):
// stream the reverse job and check a condition every interval; when it
// holds, cut the reverse job over (the switch back) and run rollback_hook.
struct WatchOptions {
  std::chrono::milliseconds duration{0};  // 0: no watch
  std::chrono::milliseconds interval{std::chrono::seconds(10)};
  // One condition: a PromQL query (holds: any sample != 0) on
  // prometheus_url, or a /bin/sh command (holds: exit code 0).
  std::string prometheus_url, query;
  std::string check_command;
  std::string rollback_hook;  // the switch back; "" for none
  int max_failures = 3;       // consecutive failed checks that end the watch
};

struct WatchReport {
  bool enabled = false;
  double duration_s = 0;          // how long it watched
  int checks = 0;                 // conditions evaluated (failed checks included)
  bool condition_held = false;
  std::string value;              // the value that made it hold (or the last one seen)
  std::string reason;             // why it rolled back: the condition, value and time
  bool rolled_back = false;
  int64_t rollback_pause_ms = 0;  // the reverse cut-over's pause
};

struct CutoverOptions {
  std::string from_url, to_url;
  std::string job = "sync";
  int64_t max_lag_bytes = 16 << 20;  // catch up (no lock) until the lag is at most this
  std::chrono::milliseconds catch_up_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds lock_timeout{std::chrono::seconds(5)};  // waiting for LOCK TABLE
  std::chrono::milliseconds max_pause{std::chrono::seconds(5)};  // bound of lock + drain
  bool verify = false;          // full row-by-row verify instead of row counts
  std::string switch_hook;      // /bin/sh -c command; "" for none
  std::chrono::milliseconds hook_timeout{std::chrono::seconds(60)};
  int64_t sequence_margin = 1000;  // target sequences end at max(source, target) + this
  // Also prepare sync job "<job>_reverse" from the target back to the
  // source, starting at the pause (no copy); the guard lets it apply.
  bool reverse = false;
  WatchOptions watch;  // needs reverse
  const std::atomic<bool>* cancel = nullptr;
};

struct CutoverSequence {
  std::string name;      // qualified
  int64_t source = 0;    // last_value on the source
  int64_t target = 0;    // the value set on the target
};
struct CutoverTable {
  std::string name;
  int64_t source_rows = 0, target_rows = 0;
};
// As JSON objects ({name, source, target} and {name, source_rows,
// target_rows}): the --json report and the job row's record (found by ADL).
void to_json(nlohmann::json& j, const CutoverSequence& s);
void to_json(nlohmann::json& j, const CutoverTable& t);
struct CutoverReport {
  std::string job;
  int64_t lag_before_bytes = 0;  // slot lag when cutover started
  std::string drain_lsn;         // source WAL position when writes stopped
  int64_t pause_ms = 0;          // lock acquired -> guard committed
  std::vector<CutoverSequence> sequences;
  std::vector<CutoverTable> tables;
  std::string hook_command;      // as given, URL passwords redacted
  int hook_exit_code = -1;       // -1: no hook
  bool verified = false;         // a full verify ran and found the tables identical
  bool guard_installed = false;
  std::string guard_trigger;     // trigger name on each source table
  std::string reverse_job;       // with reverse: its name ("" without)
  std::string reverse_start_lsn; // target WAL position it streams from
  WatchReport watch;             // with WatchOptions::duration > 0
};

// Cuts the writes of sync job `job` over from the source to the target:
// catches up without locks until the lag is <= max_lag_bytes; locks the
// synced source tables IN EXCLUSIVE MODE (reads go on, writers wait);
// drains to the position of the lock; moves the tables' owned sequences on
// the target past the source's; compares row counts (or verifies); runs the
// switch hook; installs guard triggers that refuse writes on the source
// tables and commits (that ends the pause). Any failure before the commit
// rolls the lock transaction back: the source takes writes again and keeps
// no guard. kFailedPrecondition: the slot is in use, the job is not
// streaming, the lag stays above the bound, counts differ, the hook failed.
// With options.watch.duration > 0 (and reverse) the cut-over is then
// watched (sync_watch.cc): a condition that holds switches back through
// the reverse job; a monitor that fails max_failures checks in a row ends
// the watch with kFailedPrecondition, the cut-over left in place.
Result<CutoverReport> RunCutover(const CutoverOptions& options, EventBus* bus);

// Drops the guard triggers a cut-over of `job` left on the source (and the
// guard function when no trigger uses it any more); returns the tables.
// kNotFound when there is none.
Result<std::vector<std::string>> UndoCutoverGuard(const std::string& from_url,
                                                  const std::string& job);

// "ferry_sync_" + the job name made safe for a slot name (lower case,
// [a-z0-9_], at most 63 bytes). kInvalidArgument for an empty name.
Result<std::string> SyncSlotName(std::string_view job);

}  // namespace ferry
