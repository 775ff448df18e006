// Migrator, the front: opening, events, status, the public commands (up,
// down, redo, goto, baseline, repair) over the stage files (see
// migrator_internal.h for the list).
#include "migrate/migrator.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <map>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "core/backoff.h"
#include "core/log.h"
#include "core/printable.h"
#include "drivers/registry.h"
#include "migrate/schema_backup.h"
#include "migrate/script_plan.h"
#include "migrate/migrator_internal.h"

namespace ferry {
namespace migrator_internal {

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

HistoryKind KindOf(const Migration& m) {
  return m.kind == MigrationKind::kRepeatable ? HistoryKind::kRepeatable : HistoryKind::kVersioned;
}

int CompareVersionText(const std::string& a, const std::string& b) {
  auto va = Version::Parse(a);
  auto vb = Version::Parse(b);
  if (!va.ok() || !vb.ok()) return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
  auto c = *va <=> *vb;
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

}  // namespace migrator_internal

using namespace migrator_internal;

std::string_view EntryStateName(EntryState state) {
  switch (state) {
    case EntryState::kApplied: return "applied";
    case EntryState::kPending: return "pending";
    case EntryState::kOutOfOrder: return "out_of_order";
    case EntryState::kChanged: return "changed";
    case EntryState::kMissing: return "missing";
    case EntryState::kFailed: return "failed";
    case EntryState::kRunning: return "running";
    case EntryState::kBaseline: return "baseline";
    case EntryState::kBelowBaseline: return "below_baseline";
  }
  return "unknown";
}

Migrator::Migrator(Url url, Secret url_text, std::unique_ptr<Connection> conn,
                   MigratorOptions options)
    : url_(std::move(url)),
      url_text_(std::move(url_text)),
      conn_(std::move(conn)),
      options_(std::move(options)) {
  conn_->SetNoticeHandler([this](std::string_view severity, std::string_view message) {
    ForwardNotice(severity, message);
  });
}

void Migrator::ForwardNotice(std::string_view severity, std::string_view message) {
  // Only what a migration's own statements say (RAISE NOTICE is how the
  // seeds' migrations report progress); ferry's own statements stay quiet.
  if (!running_) {
    FERRY_LOG_DEBUG("postgres: {}: {}", severity, message);
    return;
  }
  MigrationStep e{running_->version, running_->script, running_->description};
  e.message = fmt::format("{}: {}", severity, message);
  Emit("notice", e);
}

Result<std::unique_ptr<Migrator>> Migrator::Open(const std::string& url_text,
                                                 MigratorOptions options) {
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(url_text));
  ConnectOptions connect;
  connect.short_session = options.short_session;
  connect.read_only = options.read_only;
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenConnection(url, connect));
  return std::unique_ptr<Migrator>(new Migrator(std::move(url), Secret(url_text), std::move(conn), std::move(options)));
}

void Migrator::Emit(const std::string& type, MigrationStep step, int64_t duration_ms,
                    std::string error_type) {
  if (type == "migration_started" || type == "undo_started") {
    running_ = MigrationStep{step.version, step.script, step.description};
  } else if (type == "migration_done" || type == "migration_failed" || type == "undo_done" ||
             type == "undo_failed") {
    running_.reset();
    if (type == "migration_done" || type == "undo_done") {
      run_versions_.push_back(step.version.empty() ? step.script : step.version);
    }
  }
  if (bus_ == nullptr) return;
  Event e = MigrationEventOf(type, std::move(step), duration_ms);
  e.database = DatabaseLabel(url_text_.Reveal());
  e.error_type = std::move(error_type);
  bus_->Publish(e);
}

Result<MigrationSet> Migrator::Scan(bool metadata_only) {
  ScanOptions scan;
  scan.metadata_only = metadata_only;
  scan.cache_dir = options_.scan_cache_dir;
  scan.ignore_unknown_files = options_.ignore_unknown_files;
  return ScanDirectory(options_.dir, scan);
}

Result<StatusReport> Migrator::CurrentStatus(bool metadata_only) {
  StatusInputs inputs;
  inputs.metadata_only = metadata_only;
  return CurrentStatus(inputs);
}

Result<StatusReport> Migrator::CurrentStatus(const StatusInputs& inputs) {
  ScanOptions scan;
  scan.metadata_only = inputs.metadata_only;
  scan.cache_dir = options_.scan_cache_dir;
  scan.signature = inputs.dir_signature;
  scan.ignore_unknown_files = options_.ignore_unknown_files;
  FERRY_ASSIGN_OR_RETURN(MigrationSet files, ScanDirectory(options_.dir, scan));
  History history(conn_.get(), options_.history_table);
  bool exists = inputs.history_checked;
  if (!exists) {
    FERRY_ASSIGN_OR_RETURN(exists, history.Exists());
    if (exists) FERRY_RETURN_IF_ERROR(history.CheckFormat());
  }
  std::vector<HistoryRow> rows;
  if (exists) {
    FERRY_ASSIGN_OR_RETURN(rows, history.Load());
  }
  FERRY_ASSIGN_OR_RETURN(StatusReport report, Compute(std::move(files), std::move(rows), exists));
  auto holder = LockHolderNow(inputs.lock_held);
  if (holder.ok()) report.lock_holder = *holder;
  return report;
}

Result<Migrator::RunPlan> Migrator::PrepareScript(const Migration& m, bool down) {
  ScriptPlanOptions o;
  o.grammar = conn_->traits().grammar();
  o.lock_timeout = options_.lock_timeout;
  o.statement_timeout = options_.statement_timeout;
  FERRY_ASSIGN_OR_RETURN(RunPlan plan, PlanScript(m, down, o));
  if (!conn_->traits().Has(Feature::kTransactions) && plan.transactional) {
    plan.transactional = false;
    plan.reason = fmt::format("{} has no transactions: statement by statement",
                              conn_->traits().name());
  }
  return plan;
}

Result<ApplyResult> Migrator::Up(const std::string& target) {
  FERRY_ASSIGN_OR_RETURN(std::string backup, BackupBeforeUp(*conn_, url_.database(), options_));
  Result<ApplyResult> r = Recorded([&] { return UpUnrecorded(target); });
  if (r.ok()) r->backup_path = backup;
  return r;
}

Result<ApplyResult> Migrator::Down(int steps, const std::string& target) {
  return Recorded([&] { return DownUnrecorded(steps, target); });
}

Result<ApplyResult> Migrator::Recorded(const std::function<Result<ApplyResult>()>& run) {
  run_versions_.clear();
  // The schema record is kept in SQL tables and reads a SQL catalog.
  if (!conn_->traits().Has(Feature::kSqlTables)) return run();
  schema_record_ = std::make_unique<SchemaRecord>(conn_.get(), options_.history_table);
  Result<ApplyResult> result = run();
  if (schema_record_->started()) {
    if (conn_->InTransaction()) (void)conn_->Rollback();
    std::vector<SchemaRecord::RunScript> done;
    for (const std::string& v : run_versions_) done.push_back({v, run_sql_[v]});
    Status s = schema_record_->After(done);
    if (!s.ok()) {
      FERRY_LOG_WARN("could not record the schema objects this run made ({}): validate and "
                     "health will not know them",
                     s.ToString());
    }
  }
  schema_record_.reset();
  return result;
}

Status Migrator::StartSchemaRecord(const StatusReport& report,
                                   const std::vector<const PlanEntry*>& todo, bool down) {
  if (!schema_record_) return Status();
  // The scripts' text outlives the report: objects are attributed after it.
  run_sql_.clear();
  for (const PlanEntry* e : todo) {
    if (e->migration == nullptr) continue;
    const Script& script = down && e->migration->down ? *e->migration->down : e->migration->up;
    run_sql_[e->version.empty() ? e->migration->up.path : e->version] = script.sql;
  }
  return schema_record_->Before(!report.current_version.empty());
}

Result<ApplyResult> Migrator::Redo(int steps) {
  FERRY_ASSIGN_OR_RETURN(ApplyResult down, Down(steps));
  if (down.rolled_back.empty()) return down;
  std::string target = down.rolled_back.front();  // the newest one rolled back
  FERRY_ASSIGN_OR_RETURN(ApplyResult up, Up(target));
  up.rolled_back = down.rolled_back;
  up.duration_ms += down.duration_ms;
  return up;
}

Result<ApplyResult> Migrator::Goto(const std::string& target) {
  FERRY_ASSIGN_OR_RETURN(Version t, Version::Parse(target));
  FERRY_ASSIGN_OR_RETURN(StatusReport report, CurrentStatus());
  bool known = false;
  for (const PlanEntry& e : report.entries) {
    known |= !e.version.empty() && e.kind == HistoryKind::kVersioned && CompareVersionText(e.version, target) == 0;
  }
  if (!known) {
    return Status(StatusCode::kNotFound,
                  fmt::format("no migration has version {}; see 'ferry status'", t.text()));
  }
  if (report.current_version.empty() || CompareVersionText(target, report.current_version) > 0) {
    return Up(target);
  }
  return Down(0, target);
}

Result<std::vector<HistoryRow>> Migrator::ListHistory() {
  History history(conn_.get(), options_.history_table);
  FERRY_ASSIGN_OR_RETURN(bool exists, history.Exists());
  if (!exists) return std::vector<HistoryRow>();
  FERRY_RETURN_IF_ERROR(history.Ensure());
  return history.Load();
}

Status Migrator::EnsureHistory() {
  History history(conn_.get(), options_.history_table);
  return history.Ensure();
}

Status Migrator::Baseline(const std::string& version, const std::string& description) {
  FERRY_ASSIGN_OR_RETURN(Version v, Version::Parse(version));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<MigrationLock> lock, Lock());
  History history(conn_.get(), options_.history_table);
  FERRY_RETURN_IF_ERROR(history.Ensure());
  FERRY_ASSIGN_OR_RETURN(std::vector<HistoryRow> rows, history.Load());
  for (const HistoryRow& r : rows) {
    if ((r.kind == HistoryKind::kVersioned || r.kind == HistoryKind::kBaseline) && r.status == HistoryStatus::kSuccess) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{} already has applied migrations (latest {} '{}'); baseline "
                                "is for databases that ferry has not managed yet",
                                url_.Redacted(), r.version, r.description));
    }
  }
  HistoryRow row;
  row.version = v.text();
  row.description = description.empty() ? "baseline" : description;
  row.script = "<baseline>";
  row.kind = HistoryKind::kBaseline;
  row.status = HistoryStatus::kSuccess;
  row.started_at = History::Now();
  row.completed_at = row.started_at;
  row.applied_by = History::Actor();
  row.execution = Execution::kTransaction;
  row.note = options_.note;
  return history.Save(row).status();
}

Result<std::vector<std::string>> Migrator::Repair(const std::string& reason) {
  if (reason.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "repair changes the recorded history: say why with --reason \"...\"");
  }
  History history(conn_.get(), options_.history_table);
  FERRY_ASSIGN_OR_RETURN(Locked locked, LockAndLoad(&history));
  const StatusReport& report = locked.report;
  std::vector<std::string> changed;
  std::string who = History::Actor();
  std::string now = History::Now();
  for (const PlanEntry& e : report.entries) {
    if (e.row == nullptr) continue;
    HistoryRow row = *e.row;
    std::string append = row.note.empty() ? "" : row.note + "; ";
    if (e.state == EntryState::kChanged) {
      row.note = append + fmt::format("checksum {} accepted as {} by {} at {}: {}", row.checksum,
                                      e.migration->checksum, who, now, reason);
      row.checksum = e.migration->checksum;
      FERRY_RETURN_IF_ERROR(history.Save(row).status());
      changed.push_back(fmt::format("accepted new checksum of {}", e.script));
    } else if (e.state == EntryState::kFailed || e.state == EntryState::kRunning) {
      row.note = append + fmt::format("{} row cleared by {} at {} (statements done: {}): {}",
                                      row.status, who, now, row.statements_done, reason);
      row.status = HistoryStatus::kRolledBack;
      row.statements_done = 0;
      FERRY_RETURN_IF_ERROR(history.Save(row).status());
      changed.push_back(fmt::format("cleared {} attempt of {}", e.row->status, e.script));
    }
  }
  return changed;
}

}  // namespace ferry
