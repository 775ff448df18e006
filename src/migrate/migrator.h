// Migrator: plans and applies schema migrations to one database.
//
// Flow of Up(): scan the directory -> take the lock (own connection) ->
// ensure the history table -> load history -> plan -> check (drift, future
// database, out-of-order) -> for each pending migration: transaction or not,
// statements, history row, events -> release the lock.
//
// A migration runs in its own transaction unless it contains statements the
// server refuses inside one (found by the PostgreSQL parser) or says
// `-- ferry:no-transaction`, or the engine has no transactions (CQL); then
// it runs statement by statement, recording progress per statement (and
// waiting for schema agreement after each schema change where the engine
// needs it), and a later run resumes at the failed statement.
//
// Findings (pending, drift, validation problems) are values in the returned
// reports; a Status is non-ok only when the operation could not be done.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/url.h"
#include "drivers/connection.h"
#include "ferry/status.h"
#include "migrate/history.h"
#include "migrate/lint.h"
#include "migrate/lock.h"
#include "migrate/online_steps.h"
#include "migrate/schema_record.h"
#include "migrate/script_plan.h"
#include "migrate/source.h"
#include "migrate/sql_split.h"
#include "observe/event.h"

namespace ferry {

struct MigratorOptions {
  std::string dir = "migrations";
  std::string history_table = "ferry_schema_history";
  std::chrono::milliseconds lock_wait{60'000};
  // Engines whose nodes learn schema changes one by one (CQL): how long to
  // wait after each schema-changing statement until every node agrees
  // (EngineTraits::SettleSchema).
  std::chrono::milliseconds schema_agreement_timeout{60'000};
  std::string lock_timeout;       // default lock_timeout for each migration ("" = server's)
  std::string statement_timeout;  // default statement_timeout
  bool dry_run = false;
  bool single_transaction = false;
  bool allow_future = false;
  bool out_of_order = false;
  std::string compat_min_version;      // oldest schema the application supports
  std::string compat_current_version;  // newest schema the application knows
  std::string note;                    // recorded in history rows (e.g. repair reason)
  std::string backup;                  // up: schema backup file or directory ("" none)
  std::string scan_cache_dir;          // status/health may reuse scans from here ("" = off)
  bool ignore_unknown_files = false;   // ScanOptions::ignore_unknown_files
  bool short_session = false;          // read-only command: ConnectOptions::short_session
  bool read_only = false;              // creates nothing: ConnectOptions::read_only
  // Lint pending PostgreSQL migrations before applying any (migrate/lint.h)
  // and refuse error-level findings (kFailedPrecondition, context
  // lint=unsafe) unless allow_unsafe, which is recorded in each affected
  // history row's note. Table sizes and server version come from the work
  // connection.
  // Retries of a migration whose statement hit lock_timeout (SQLSTATE
  // 55P03), after lock_retry_delay * 2^(n-1), jittered by +-50%. A
  // transactional file is retried whole; a no-transaction file resumes at
  // the statement that timed out.
  int lock_retries = 0;
  std::chrono::milliseconds lock_retry_delay{1000};
  bool lint = false;
  bool allow_unsafe = false;
  LintOptions lint_options;
  // Runs `-- ferry:expand` / `-- ferry:backfill` blocks (migrate/online_steps.h;
  // the ferry program passes move/expand.h's MakeOnlineSteps()). Without it
  // a migration declaring such blocks is refused before anything runs.
  std::shared_ptr<OnlineSteps> online;
};

enum class EntryState {
  kApplied,     // applied and the file is unchanged
  kPending,     // in files, not applied, newer than everything applied
  kOutOfOrder,  // in files, not applied, older than the newest applied
  kChanged,     // applied, but the file's checksum differs (drift)
  kMissing,     // applied, but no file has this version (future or deleted)
  kFailed,      // the last attempt failed; `up` retries it
  kRunning,     // marked running: in progress now, or its process died
  kBaseline,    // the baseline marker row
  kBelowBaseline,  // a file older than the baseline: never applied
};
std::string_view EntryStateName(EntryState state);

struct PlanEntry {
  EntryState state = EntryState::kPending;
  std::string version;  // "" for repeatables
  std::string description;
  std::string script;
  HistoryKind kind = HistoryKind::kVersioned;  // versioned, repeatable, baseline
  const Migration* migration = nullptr;  // the file, if present
  const HistoryRow* row = nullptr;       // the history row, if any
  Version sort_key;                      // parsed once, for ordering
};

struct StatusReport {
  std::string database;  // redacted URL
  bool history_exists = false;
  std::string current_version;  // highest applied version, "" when none
  std::string newest_file_version;
  std::vector<PlanEntry> entries;  // in version order, repeatables last
  std::optional<LockHolder> lock_holder;
  int applied = 0, pending = 0, changed = 0, missing = 0, failed = 0, running = 0,
      out_of_order = 0;
  bool future_database = false;  // database has versions newer than the newest file
  // Own what the entries point to, so a copied report stays valid.
  std::shared_ptr<const MigrationSet> files;
  std::shared_ptr<const std::vector<HistoryRow>> rows;

  bool has_drift() const { return changed > 0 || missing > 0; }
};

struct ApplyResult {
  std::string current_version;  // newest applied version afterwards ("" when none)
  std::vector<std::string> applied;  // versions (or repeatable scripts) applied
  std::vector<std::string> rolled_back;
  int64_t duration_ms = 0;
  bool dry_run = false;
  std::string backup_path;  // up --backup: the schema file written first
};

// The SQL that up/down would run, with transaction boundaries.
struct PlannedStep {
  std::string version;
  std::string script;
  std::string direction;  // up, down
  Execution execution = Execution::kTransaction;
  std::vector<std::string> statements;
  std::vector<int> lines;
};

struct ValidationProblem {
  std::string kind;  // parse, checksum, missing, order, compat, history, schema
  std::string script;
  std::string message;
};

struct HealthReport {
  bool healthy = true;
  struct Check {
    std::string name;
    bool ok = true;
    std::string detail;
  };
  std::vector<Check> checks;
};

class Migrator {
 public:
  // Connects to `url_text` (work connection). The lock uses its own.
  static Result<std::unique_ptr<Migrator>> Open(const std::string& url_text,
                                                MigratorOptions options);

  // Progress goes to `bus` (observe/event.h; not owned, may be null): kind
  // kMigration with types lock_wait, migration_started, statement_done,
  // migration_done, migration_failed, migration_resumed, undo_started,
  // undo_done ...; kLint for lint findings; kExpand for the online steps.
  void SetEventBus(EventBus* bus) { bus_ = bus; }
  EventBus* event_bus() const { return bus_; }
  const MigratorOptions& options() const { return options_; }
  MigratorOptions& mutable_options() { return options_; }
  Connection* connection() { return conn_.get(); }
  std::string redacted_url() const { return url_.Redacted(); }

  // Read-only: files vs history (no lock taken, tables not created).
  // `metadata_only`: the entries' migrations may lack SQL (scan cache); for
  // reporting only.
  Result<StatusReport> CurrentStatus(bool metadata_only = false);
  // The same with what the caller knows already: the directory's signature
  // (scan_cache.h) and whether the lock is held (from ProbeHistory).
  struct StatusInputs {
    bool metadata_only = true;
    std::optional<uint64_t> dir_signature;
    std::optional<bool> lock_held;
    // The caller's probe found the history table in a format this ferry
    // reads (ProbeHistory): no existence or format query.
    bool history_checked = false;
  };
  Result<StatusReport> CurrentStatus(const StatusInputs& inputs);
  // PostgreSQL: one round trip telling whether the history exists, its
  // format, its fingerprint and whether the lock is held (extra[0]), then
  // the caller's `extra` boolean expressions (status_memo.h).
  // Other engines: kUnimplemented.
  Result<History::Probe> ProbeHistory(const std::vector<std::string>& extra = {});
  // Who holds the migration lock (nullopt: free); see MigrationLock::Holder.
  Result<std::optional<LockHolder>> LockHolderNow(std::optional<bool> known_held = {});

  // `ferry status` as text, through the memo (status_memo.h): on PostgreSQL,
  // with a directory signature and a cache folder (options().scan_cache_dir),
  // one probe decides whether the text rendered last time still holds; if
  // not, the report is computed inside one REPEATABLE READ snapshot,
  // rendered by `render` and stored. The lock holder is read live every
  // time. `extra`: boolean SQL expressions read in the same probe, their
  // values returned in order (empty when no probe ran). Elsewhere: computed
  // and rendered every time.
  struct StatusText {
    std::string head, body;  // the live lock line goes between them
    bool attention = false;  // pending, failed or changed migrations
  };
  struct MemoizedStatus {
    StatusText text;
    std::optional<LockHolder> lock_holder;
    std::vector<bool> extra;
    bool from_memo = false;
  };
  struct MemoRequest {
    std::string mode;  // the renderer's variant, part of the memo key
    std::optional<uint64_t> dir_signature;
    std::vector<std::string> extra;
  };
  Result<MemoizedStatus> StatusThroughMemo(
      const MemoRequest& request, const std::function<StatusText(const StatusReport&)>& render);

  // Applies pending migrations up to and including `target` (all when empty).
  Result<ApplyResult> Up(const std::string& target = "");
  // Rolls back the newest `steps` applied migrations, or down to (not
  // including) version `target` when set.
  Result<ApplyResult> Down(int steps, const std::string& target = "");
  // Down `steps`, then up again (tests the rollback path).
  Result<ApplyResult> Redo(int steps);
  // Up or down until `target` is the newest applied version.
  Result<ApplyResult> Goto(const std::string& target);

  // The exact statements `up` (or `down` with steps/target) would run.
  Result<std::vector<PlannedStep>> PlanUp(const std::string& target = "");
  Result<std::vector<PlannedStep>> PlanDown(int steps, const std::string& target = "");

  Result<std::vector<HistoryRow>> ListHistory();
  // Creates the history table and its metadata table when missing, or
  // checks their format (`ferry init`); idempotent.
  Status EnsureHistory();
  // Files parse, applied checksums match, order, compatibility, and the live
  // schema holds what the applied migrations made (kind "schema": "missing
  // table partition_stats (made by 2)"; see schema_record.h).
  Result<std::vector<ValidationProblem>> Validate();
  // Connection, lock, failed or dead runs, compatibility, schema drift.
  Result<HealthReport> Health();

  // Marks an existing database as being at `version`: files up to it count
  // as applied. Refused when anything is applied already.
  Status Baseline(const std::string& version, const std::string& description);
  // Accepts changed checksums of applied files and clears failed rows,
  // recording who and `reason`. Returns what it changed.
  Result<std::vector<std::string>> Repair(const std::string& reason);

 private:
  Migrator(Url url, Secret url_text, std::unique_ptr<Connection> conn, MigratorOptions options);

  Result<MigrationSet> Scan(bool metadata_only = false);
  Result<StatusReport> Compute(MigrationSet files, std::vector<HistoryRow> rows,
                               bool history_exists);
  // Up and Down without the schema record; Up/Down wrap them in Recorded().
  Result<ApplyResult> UpUnrecorded(const std::string& target);
  Result<ApplyResult> DownUnrecorded(int steps, const std::string& target);
  // Runs `run`; when it started the schema record (StartSchemaRecord), records
  // what the run added to or removed from the schema (schema_record.h).
  Result<ApplyResult> Recorded(const std::function<Result<ApplyResult>()>& run);
  // Schema drift as validation problems of kind "schema".
  void AddSchemaDrift(std::vector<ValidationProblem>* problems);
  void AddCqlSchemaDrift(std::vector<ValidationProblem>* problems);
  // Called by a run once it knows it will change something, under the lock,
  // with the entries it will apply (or roll back: `down`).
  Status StartSchemaRecord(const StatusReport& report, const std::vector<const PlanEntry*>& todo,
                           bool down);
  Result<std::unique_ptr<MigrationLock>> Lock();
  // Scan, take the lock, ensure and load history, compute: the start of
  // every command that changes the database.
  struct Locked {
    std::unique_ptr<MigrationLock> lock;
    StatusReport report;
  };
  Result<Locked> LockAndLoad(History* history);
  void Emit(const std::string& type, MigrationStep step, int64_t duration_ms = 0,
            std::string error_type = "");
  // Server notices while a migration runs become "notice" events.
  void ForwardNotice(std::string_view severity, std::string_view message);

  using RunPlan = ScriptPlan;  // migrate/script_plan.h
  Result<RunPlan> PrepareScript(const Migration& m, bool down);
  Status ApplyOne(const Migration& m, const RunPlan& plan, HistoryRow* row, History* history,
                  bool in_outer_tx);
  // ApplyOne's stages (apply_one.cc); ApplyRun is the migration being applied.
  struct ApplyRun;
  Status PrepareOnline(ApplyRun* a, const RunPlan& file_plan);
  void StartRow(ApplyRun* a);
  Status FailApply(ApplyRun* a, Status s);
  std::vector<std::string> TimeoutSettings(const ApplyRun& a, std::string_view set);
  Status VerifyApplied(const ApplyRun& a);
  Status ApplyInTransaction(ApplyRun* a);
  Status ApplyByStatement(ApplyRun* a);
  Status RunBackfills(ApplyRun* a);
  // A file running its own BEGIN ... COMMIT failed inside it: ROLLBACK,
  // and statements_done back to the statement that opened it.
  void RollBackOwnTransaction(HistoryRow* row, int block_start);
  Status UndoOne(const Migration& m, HistoryRow* row, History* history);
  Status CheckBeforeUp(const StatusReport& report, const std::string& target);
  // PlanUp / PlanDown on a report already computed.
  Result<std::vector<PlannedStep>> PlanUpFrom(const StatusReport& report,
                                              const std::string& target);
  Result<std::vector<PlannedStep>> PlanDownFrom(const StatusReport& report, int steps,
                                                const std::string& target);
  // Checks, then the entries `up` would apply (up to `target`), in order.
  Result<std::vector<const PlanEntry*>> SelectForUp(const StatusReport& report,
                                                    const std::string& target);
  // Lints the migrations `up` is about to apply (options_.lint).
  Status LintBeforeUp(const std::vector<const PlanEntry*>& todo);
  // Drops the INVALID index a failed CREATE INDEX CONCURRENTLY of `stmt`
  // left behind, so the statement can run again.
  Status DropInvalidIndex(const Statement& stmt, const Migration& m);
  Result<std::vector<const PlanEntry*>> SelectForDown(const StatusReport& report, int steps,
                                                      const std::string& target);

  Url url_;
  // The URL as given (with its password), for the online steps that open
  // their own connections; never printed.
  Secret url_text_;
  std::unique_ptr<Connection> conn_;
  MigratorOptions options_;
  EventBus* bus_ = nullptr;
  std::map<std::string, std::string> unsafe_notes_;  // up script path -> history note
  std::optional<MigrationStep> running_;  // the migration whose statements run now
  std::unique_ptr<SchemaRecord> schema_record_;  // during Recorded()
  std::vector<std::string> run_versions_;        // applied or rolled back in this run
  std::map<std::string, std::string> run_sql_;   // version (or script) -> its SQL this run
};

}  // namespace ferry
