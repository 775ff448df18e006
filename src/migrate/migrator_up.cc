// Migrator, the up run: every pending migration checked, linted and parsed
// before any runs, then applied one by one (ApplyOne) with lock_timeout
// retries, or all in one transaction (--single-transaction).
#include <fmt/format.h>

#include <map>
#include <thread>

#include "core/backoff.h"
#include "core/log.h"
#include "migrate/migrator.h"
#include "migrate/migrator_internal.h"

namespace ferry {

using namespace migrator_internal;

Status Migrator::LintBeforeUp(const std::vector<const PlanEntry*>& todo) {
  unsafe_notes_.clear();
  if (!options_.lint || todo.empty() || !conn_->traits().Has(Feature::kLintRules)) {
    return Status();
  }
  LintOptions lo = options_.lint_options;
  lo.grammar = conn_->traits().grammar();
  lo.carry_across_files = true;
  lo.default_lock_timeout = lo.default_lock_timeout || !options_.lock_timeout.empty();
  // PrepareScript already refuses these, with its own messages.
  lo.skip_rules.insert("parse-error");
  lo.skip_rules.insert("transaction-control");
  // Without sizes to grade by (CQL) every rule judges at its default severity.
  if (conn_->traits().Has(Feature::kTableStatistics)) {
    if (Status facts = ReadDatabaseFacts(*conn_, &lo); !facts.ok()) {
      FERRY_LOG_WARN("lint: could not read table sizes ({}); judging without them",
                     facts.ToString());
    }
  }
  // The database as each migration will find it: what earlier pending
  // migrations create (carry_across_files) and what is empty now is new.
  lo.empty_tables_are_new = true;
  std::vector<const Migration*> migrations;
  for (const PlanEntry* e : todo) migrations.push_back(e->migration);
  FERRY_ASSIGN_OR_RETURN(LintReport report, LintMigrations(migrations, lo));
  std::string errors;
  std::map<std::string, std::vector<std::string>> by_file;
  // Only what blocks is listed; the rest is one line ('ferry lint' shows it).
  if (const size_t others = report.findings.size() -
                            static_cast<size_t>(report.Count(LintSeverity::kError))) {
    MigrationStep e{"", "", ""};
    e.message = fmt::format("lint: {} other finding{} (warnings, notes) do not block; 'ferry "
                            "lint' lists them",
                            others, others == 1 ? "" : "s");
    Emit("lint_summary", e);
  }
  for (const LintFinding& f : report.findings) {
    std::string where = fmt::format("{}:{}:{}", f.file, f.line, f.column);
    if (f.severity != LintSeverity::kError) continue;
    errors += fmt::format("\n  {}: [{}] {}", where, f.rule, f.message);
    if (!f.safe_sql.empty()) errors += "\n    instead: " + f.safe_sql;
    by_file[f.file].push_back(fmt::format("{} at line {}", f.rule, f.line));
  }
  if (by_file.empty()) return Status();
  if (!options_.allow_unsafe) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("lint found {} error-level finding(s) in pending migrations; fix "
                              "them, or accept one with '-- ferry:lint-ignore RULE reason' above "
                              "the statement, or run 'ferry up --allow-unsafe' (recorded in "
                              "history):{}",
                              report.Count(LintSeverity::kError), errors))
        .With("lint", "unsafe");
  }
  std::string who = History::Actor();
  for (auto& [file, list] : by_file) {
    std::string joined;
    for (const std::string& item : list) joined += (joined.empty() ? "" : ", ") + item;
    unsafe_notes_[file] = fmt::format("applied with --allow-unsafe by {} despite lint: {}", who,
                                      joined);
    MigrationStep e{"", file, ""};
    e.message = fmt::format("--allow-unsafe: applying {} despite lint errors: {}", file, joined);
    Emit("lint_overridden", e);
  }
  return Status();
}

Result<ApplyResult> Migrator::UpUnrecorded(const std::string& target) {
  auto start = Clock::now();
  ApplyResult result;
  if (options_.dry_run) {
    FERRY_ASSIGN_OR_RETURN(StatusReport now, CurrentStatus());
    FERRY_ASSIGN_OR_RETURN(std::vector<PlannedStep> steps, PlanUpFrom(now, target));
    for (const auto& s : steps) result.applied.push_back(s.version.empty() ? s.script : s.version);
    result.dry_run = true;
    result.current_version = now.current_version;
    return result;
  }
  History history(conn_.get(), options_.history_table);
  FERRY_ASSIGN_OR_RETURN(Locked locked, LockAndLoad(&history));
  const StatusReport& report = locked.report;
  FERRY_ASSIGN_OR_RETURN(std::vector<const PlanEntry*> todo, SelectForUp(report, target));
  for (const PlanEntry* entry : todo) {
    const PlanEntry& e = *entry;
    if (e.state == EntryState::kRunning) {
      MigrationStep ev{e.version, e.script, e.description};
      ev.message = fmt::format("{} was left running by {} (started {}); that process is gone, so "
                               "ferry continues it{}",
                               e.script, e.row->applied_by, e.row->started_at,
                               e.row->execution == Execution::kNoTransaction ||
                                       e.row->execution == Execution::kOwnTransactions
                                   ? fmt::format(" after statement {}", e.row->statements_done)
                                   : " (nothing of it was committed)");
      Emit("migration_interrupted", ev);
    }
  }
  // Every pending script is parsed and checked before any runs.
  std::vector<RunPlan> plans;
  plans.reserve(todo.size());
  for (const PlanEntry* e : todo) {
    FERRY_ASSIGN_OR_RETURN(RunPlan plan, PrepareScript(*e->migration, false));
    plans.push_back(std::move(plan));
  }
  FERRY_RETURN_IF_ERROR(LintBeforeUp(todo));
  if (!todo.empty()) FERRY_RETURN_IF_ERROR(StartSchemaRecord(report, todo, false));
  if (options_.single_transaction && !todo.empty()) {
    for (size_t i = 0; i < todo.size(); ++i) {
      const PlanEntry* e = todo[i];
      const RunPlan& plan = plans[i];
      if (!plan.transactional) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("--single-transaction: {} cannot run in a transaction ({})",
                                  e->script, plan.reason));
      }
    }
    FERRY_RETURN_IF_ERROR(conn_->Begin());
    std::vector<HistoryRow> staged(todo.size());
    for (size_t i = 0; i < todo.size(); ++i) {
      if (todo[i]->row != nullptr) staged[i] = *todo[i]->row;
      Status s = ApplyOne(*todo[i]->migration, plans[i], &staged[i], &history, true);
      if (!s.ok()) {
        (void)conn_->Rollback();
        // Record the failure outside the rolled-back transaction.
        HistoryRow failed = todo[i]->row != nullptr ? *todo[i]->row : HistoryRow{};
        failed.version = staged[i].version;
        failed.description = staged[i].description;
        failed.script = staged[i].script;
        failed.kind = staged[i].kind;
        failed.checksum = staged[i].checksum;
        failed.status = HistoryStatus::kFailed;
        failed.started_at = staged[i].started_at;
        failed.completed_at = History::Now();
        failed.applied_by = staged[i].applied_by;
        failed.execution = Execution::kSingleTransaction;
        failed.error_message = s.ToString();
        failed.attempts = staged[i].attempts;
        (void)history.Save(failed);
        return std::move(s).Prefix("nothing was applied (single transaction rolled back)");
      }
    }
    FERRY_RETURN_IF_ERROR(conn_->Commit());
    for (const PlanEntry* e : todo) result.applied.push_back(e->version.empty() ? e->script : e->version);
  } else {
    for (size_t i = 0; i < todo.size(); ++i) {
      const PlanEntry* e = todo[i];
      HistoryRow row = e->row != nullptr ? *e->row : HistoryRow{};
      FERRY_RETURN_IF_ERROR(locked.lock->Check());  // a lease lost: stop before the next one
      for (int attempt = 1;; ++attempt) {
        Status s = ApplyOne(*e->migration, plans[i], &row, &history, false);
        if (s.ok()) break;
        // lock_timeout: someone holds a conflicting lock. Waiting longer
        // would queue every other query on the table behind us; back off.
        if (s.Get("sqlstate") != "55P03" || attempt > options_.lock_retries) {
          if (s.Get("sqlstate") == "55P03") {
            s.Add("lock_attempts", std::to_string(attempt));
          }
          return s;
        }
        const auto delay = RetryDelay(options_.lock_retry_delay, attempt,
                                      options_.lock_retry_delay * 1024);
        MigrationStep ev{e->version, e->migration->up.path, e->description};
        ev.message = fmt::format("{}: lock_timeout hit (another transaction holds a conflicting "
                                 "lock); retry {} of {} in {} ms",
                                 e->migration->up.path, attempt, options_.lock_retries,
                                 delay.count());
        Emit("lock_retry", ev, 0, ErrorTypeOf(s));
        std::this_thread::sleep_for(delay);
      }
      result.applied.push_back(e->version.empty() ? e->script : e->version);
    }
  }
  result.current_version = report.current_version;
  for (const PlanEntry* e : todo) {
    if (e->kind == HistoryKind::kVersioned &&
        (result.current_version.empty() ||
         CompareVersionText(e->version, result.current_version) > 0)) {
      result.current_version = e->version;
    }
  }
  result.duration_ms = MsSince(start);
  return result;
}

}  // namespace ferry
