// Migrator, the undo stage: one migration down (UndoOne: its online undo and
// down section, recorded as an undo row) and the down run (DownUnrecorded).
#include <fmt/format.h>

#include <algorithm>

#include "migrate/migrator.h"
#include "migrate/migrator_internal.h"

namespace ferry {

using namespace migrator_internal;

Status Migrator::UndoOne(const Migration& m, HistoryRow* row, History* history) {
  RunPlan plan;
  if (m.down) {
    FERRY_ASSIGN_OR_RETURN(plan, PrepareScript(m, true));
  }
  // An open expand phase is undone first, in the same transaction
  // (migrate/online_steps.h); refused before anything runs when that would
  // lose writes.
  if (!m.up.online.empty()) {
    if (!options_.online) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{} declares online blocks, which this program cannot undo: "
                                "use the ferry command",
                                m.up.path));
    }
    FERRY_ASSIGN_OR_RETURN(std::vector<Statement> undo, options_.online->PrepareUndo(*conn_, m));
    plan.statements.insert(plan.statements.begin(), undo.begin(), undo.end());
  }
  const Script& script = m.down ? *m.down : m.up;
  const int total = static_cast<int>(plan.statements.size());
  auto start = Clock::now();
  MigrationStep started{row->version, script.path, m.description};
  started.statements = total;
  Emit("undo_started", started);
  HistoryRow undo;
  undo.version = row->version;
  undo.description = m.description;
  undo.script = m.script;
  undo.kind = HistoryKind::kUndo;
  undo.checksum = m.checksum;
  undo.started_at = History::Now();
  undo.applied_by = History::Actor();
  undo.execution = ExecutionOf(plan);
  undo.note = options_.note;
  int64_t rows = 0;
  if (plan.transactional) FERRY_RETURN_IF_ERROR(conn_->Begin());
  for (int i = 0; i < total; ++i) {
    const Statement& stmt = plan.statements[static_cast<size_t>(i)];
    auto r = conn_->Exec(stmt.text);
    if (!r.ok()) {
      if (plan.transactional || plan.own_transactions) (void)conn_->Rollback();
      Status s = StatementError(std::move(r).TakeStatus(), script, stmt, i, total);
      undo.status = HistoryStatus::kFailed;
      undo.error_message = s.ToString();
      undo.completed_at = History::Now();
      undo.duration_ms = MsSince(start);
      (void)history->Save(undo);
      MigrationStep e{row->version, script.path, m.description};
      e.message = s.message();
      Emit("undo_failed", e, 0, ErrorTypeOf(s));
      return s;
    }
    if (Status settled =
            conn_->traits().SettleSchema(*conn_, stmt.text, options_.schema_agreement_timeout);
        !settled.ok()) {
      return std::move(settled).Prefix(fmt::format(
          "{}:{}: statement {} of {} ran, but the nodes did not agree on the schema after it",
          script.path, stmt.line, i + 1, total));
    }
    rows += *r;
  }
  undo.status = HistoryStatus::kSuccess;
  undo.rows_affected = rows;
  undo.completed_at = History::Now();
  undo.duration_ms = MsSince(start);
  undo.statements_done = total;
  row->status = HistoryStatus::kRolledBack;
  row->statements_done = 0;
  Status s = history->Save(undo).status();
  if (s.ok()) s = history->Save(*row).status();
  if (!s.ok()) {
    if (plan.transactional) (void)conn_->Rollback();
    return std::move(s).Prefix("recording the rollback");
  }
  if (plan.transactional) FERRY_RETURN_IF_ERROR(conn_->Commit());
  MigrationStep done{row->version, script.path, m.description};
  done.rows_affected = rows;
  Emit("undo_done", done, undo.duration_ms);
  return Status();
}

Result<ApplyResult> Migrator::DownUnrecorded(int steps, const std::string& target) {
  auto start = Clock::now();
  ApplyResult result;
  if (options_.dry_run) {
    FERRY_ASSIGN_OR_RETURN(StatusReport now, CurrentStatus());
    FERRY_ASSIGN_OR_RETURN(std::vector<PlannedStep> planned, PlanDownFrom(now, steps, target));
    for (const auto& s : planned) result.rolled_back.push_back(s.version);
    result.dry_run = true;
    result.current_version = now.current_version;
    return result;
  }
  History history(conn_.get(), options_.history_table);
  FERRY_ASSIGN_OR_RETURN(Locked locked, LockAndLoad(&history));
  const StatusReport& report = locked.report;
  FERRY_ASSIGN_OR_RETURN(std::vector<const PlanEntry*> chosen,
                         SelectForDown(report, steps, target));
  // Parse every down script before running any.
  for (const PlanEntry* e : chosen) {
    if (e->migration->down) FERRY_RETURN_IF_ERROR(PrepareScript(*e->migration, true).status());
  }
  if (!chosen.empty()) FERRY_RETURN_IF_ERROR(StartSchemaRecord(report, chosen, true));
  for (const PlanEntry* e : chosen) {
    HistoryRow row = *e->row;
    FERRY_RETURN_IF_ERROR(UndoOne(*e->migration, &row, &history));
    result.rolled_back.push_back(e->version);
  }
  for (const PlanEntry& e : report.entries) {
    bool applied = e.state == EntryState::kApplied || e.state == EntryState::kChanged ||
                   e.state == EntryState::kMissing || e.state == EntryState::kBaseline;
    if (!applied || e.kind == HistoryKind::kRepeatable) continue;
    if (std::find(chosen.begin(), chosen.end(), &e) != chosen.end()) continue;
    if (result.current_version.empty() || CompareVersionText(e.version, result.current_version) > 0) {
      result.current_version = e.version;
    }
  }
  result.duration_ms = MsSince(start);
  return result;
}

}  // namespace ferry
