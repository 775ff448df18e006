// Up with a checkpoint and auto-rollback (up_checkpoint.h).
//
// In:     an open Migrator, the up target, GuardedUpOptions.
// Out:    the up's result, or its failure and how it was undone; history rows
//         of kinds "checkpoint" and "auto-rollback".
// Resume: after a failed restore the database is as the failed up left it
//         (the restore is one transaction); `ferry checkpoint restore NAME`
//         can be run by hand.
#include "ops/checkpoint/up_checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "migrate/history.h"
#include "observe/event.h"
#include "ops/checkpoint/checkpoint_internal.h"

namespace ferry {

std::string_view ToText(RollbackMethod method) {
  switch (method) {
    case RollbackMethod::kNone:
      return "none";
    case RollbackMethod::kCheckpoint:
      return "checkpoint";
    case RollbackMethod::kDowns:
      return "downs";
  }
  return "none";
}

namespace {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

std::string NameFor(const std::string& version) {
  std::string v = version.empty() ? "none" : version;
  for (char& c : v) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_') c = '_';
  }
  return fmt::format("pre-up-{}-{}", v.substr(0, 40), checkpoint::CompactNow());
}

HistoryRow CheckpointRow(const CheckpointManifest& c) {
  HistoryRow row;
  row.version = c.migration_version;
  row.description = fmt::format("checkpoint before ferry up ({} bytes)", c.size_bytes);
  row.script = "checkpoint " + c.name;
  row.kind = HistoryKind::kCheckpoint;
  row.status = HistoryStatus::kSuccess;
  row.started_at = History::Now();
  row.completed_at = row.started_at;
  row.duration_ms = c.duration_ms;
  row.applied_by = History::Actor();
  row.execution = Execution::kNoTransaction;
  row.note = fmt::format("checkpoint {} ({} scope, {})", c.name, ToText(c.scope), c.tool);
  return row;
}

// A fingerprint of the history: did the run write anything?
std::set<std::string> Marks(const std::vector<HistoryRow>& rows) {
  std::set<std::string> out;
  for (const HistoryRow& r : rows) {
    out.insert(fmt::format("{}|{}|{}|{}", r.id, r.status, r.statements_done, r.attempts));
  }
  return out;
}

void Publish(Migrator& m, EventBus* bus, const std::string& type, const std::string& message,
             int64_t duration_ms = 0) {
  if (bus == nullptr) return;
  MigrationStep step;
  step.script = type;
  step.message = message;
  Event e = MigrationEventOf(type, step, duration_ms);
  e.database = m.redacted_url();
  bus->Publish(std::move(e));
}

// Versions that this run applied: successful versioned rows not in `before`.
std::vector<std::string> AppliedThisRun(const std::vector<HistoryRow>& before,
                                        const std::vector<HistoryRow>& after) {
  std::set<std::string> earlier;
  for (const HistoryRow& r : before) {
    if (r.status == HistoryStatus::kSuccess) earlier.insert(r.version);
  }
  std::vector<std::string> out;
  for (const HistoryRow& r : after) {
    if (r.kind == HistoryKind::kVersioned && r.status == HistoryStatus::kSuccess &&
        !earlier.count(r.version)) {
      out.push_back(r.version);
    }
  }
  return out;
}

// The failed row of this run: its transaction rolled it back, so it is
// marked rolled_back (the plan then sees it pending and `down` may pass
// it). A no-transaction file that failed after some statements committed
// cannot be undone by downs: kFailedPrecondition naming it.
Status SettleFailedRows(Migrator& m, const std::vector<HistoryRow>& before,
                        const std::vector<HistoryRow>& after) {
  const std::set<std::string> earlier = Marks(before);
  History history(m.connection(), m.options().history_table);
  for (HistoryRow row : after) {
    if (row.status != HistoryStatus::kFailed || earlier.count(*Marks({row}).begin())) continue;
    const bool whole = row.execution == Execution::kTransaction || row.execution == Execution::kSingleTransaction ||
                       row.statements_done == 0;
    if (!whole) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{} failed after {} statement(s) ran outside a transaction; the "
                                "downs cannot undo part of it: fix it by hand, or use 'ferry up "
                                "--checkpoint --auto-rollback' next time",
                                row.script, row.statements_done));
    }
    row.status = HistoryStatus::kRolledBack;
    row.note += (row.note.empty() ? "" : "; ") +
                std::string("nothing of it was committed (its transaction rolled back); "
                            "auto-rollback");
    FERRY_RETURN_IF_ERROR(history.Save(row).status());
  }
  return Status();
}

// Undoes the failed run; fills the rollback fields of `r`.
void RollBack(Migrator& m, const GuardedUpOptions& o, const std::vector<HistoryRow>& before,
              EventBus* bus, GuardedUpResult* r) {
  Result<std::vector<HistoryRow>> after = m.ListHistory();
  if (after.ok() && Marks(*after) == Marks(before)) {
    r->rollback_note = "nothing to roll back: no migration ran";
    return;
  }
  r->rollback_attempted = true;
  auto start = Clock::now();
  if (r->checkpoint) {
    r->rollback = RollbackMethod::kCheckpoint;
    Publish(m, bus, "auto_rollback_started",
            fmt::format("auto-rollback: restoring checkpoint {}", r->checkpoint->name));
    CheckpointOptions co = o.checkpoint_options;
    co.dry_run = false;
    r->rollback_status = RestoreCheckpoint(co, r->checkpoint->name).status();
    r->rollback_note = fmt::format("restored checkpoint {}", r->checkpoint->name);
  } else {
    r->rollback = RollbackMethod::kDowns;
    r->rolled_back = after.ok() ? AppliedThisRun(before, *after) : std::vector<std::string>{};
    if (!after.ok()) {
      r->rollback_status = after.status();
    } else if (Status settled = SettleFailedRows(m, before, *after); !settled.ok()) {
      r->rollback_status = std::move(settled);
    } else if (!r->rolled_back.empty()) {
      Publish(m, bus, "auto_rollback_started",
              fmt::format("auto-rollback: running the downs of {}",
                          fmt::join(r->rolled_back, ", ")));
      r->rollback_status = m.Down(static_cast<int>(r->rolled_back.size())).status();
    }
    r->rollback_note =
        r->rolled_back.empty()
            ? "no checkpoint and no migration of this run was applied: nothing to undo"
            : fmt::format("ran the downs of {}", fmt::join(r->rolled_back, ", "));
  }
  r->rollback_ms = MsSince(start);
}

// The history rows of the run's end. After a restore the history is as it
// was when the checkpoint was taken, so the checkpoint's row is written again.
Status Record(Migrator& m, const GuardedUpResult& r) {
  History history(m.connection(), m.options().history_table);
  FERRY_RETURN_IF_ERROR(history.Ensure());
  if (r.rollback == RollbackMethod::kCheckpoint && r.rollback_status.ok()) {
    FERRY_RETURN_IF_ERROR(history.Save(CheckpointRow(*r.checkpoint)).status());
  }
  if (!r.rollback_attempted) return Status();
  HistoryRow row;
  row.description = r.rollback_note;
  row.script = r.rollback == RollbackMethod::kCheckpoint ? "auto-rollback " + r.checkpoint->name
                                                          : "auto-rollback downs";
  row.kind = HistoryKind::kAutoRollback;
  row.status = r.rollback_status.ok() ? HistoryStatus::kSuccess : HistoryStatus::kFailed;
  row.started_at = History::Now();
  row.completed_at = row.started_at;
  row.duration_ms = r.rollback_ms;
  row.applied_by = History::Actor();
  row.execution = Execution::kNoTransaction;
  row.error_message = "reason: " + r.failure.ToString();
  if (!r.rollback_status.ok()) row.error_message += "; rollback failed: " + r.rollback_status.ToString();
  row.note = fmt::format("method {}{}", ToText(r.rollback),
                         r.checkpoint ? ", checkpoint " + r.checkpoint->name : "");
  return history.Save(row).status();
}

}  // namespace

Result<GuardedUpResult> UpWithCheckpoint(Migrator& m, const std::string& target,
                                         const GuardedUpOptions& o) {
  GuardedUpResult r;
  EventBus* bus = m.event_bus();
  const bool dry_run = m.options().dry_run;
  FERRY_ASSIGN_OR_RETURN(std::vector<PlannedStep> plan, m.PlanUp(target));
  if (o.checkpoint && !dry_run && !plan.empty()) {
    CheckpointOptions co = o.checkpoint_options;
    co.history_table = m.options().history_table;
    co.note = "ferry up --checkpoint";
    co.schemas.clear();
    co.tables.clear();
    FERRY_ASSIGN_OR_RETURN(std::string version,
                           CurrentMigrationVersion(*m.connection(), co.history_table));
    FERRY_ASSIGN_OR_RETURN(CheckpointManifest c, CreateCheckpoint(co, NameFor(version)));
    Publish(m, bus, "checkpoint_created",
            fmt::format("checkpoint {} taken: {} bytes in {} ms ({})", c.name, c.size_bytes,
                        c.duration_ms, checkpoint::FolderOf(co.dir, c.name)),
            c.duration_ms);
    History history(m.connection(), co.history_table);
    FERRY_RETURN_IF_ERROR(history.Ensure());
    FERRY_RETURN_IF_ERROR(history.Save(CheckpointRow(c)).status());
    r.checkpoint = std::move(c);
  }
  // What the history holds before anything runs (the checkpoint's row included).
  std::vector<HistoryRow> before;
  if (!dry_run && !plan.empty()) {
    FERRY_ASSIGN_OR_RETURN(before, m.ListHistory());
  }
  Result<ApplyResult> up = m.Up(target);
  if (up.ok()) {
    r.applied = std::move(*up);
    return r;
  }
  r.failure = up.status();
  if (!o.auto_rollback) return r;
  RollBack(m, o, before, bus, &r);
  if (r.rollback_attempted) {
    Publish(m, bus, r.rollback_status.ok() ? "auto_rollback_done" : "auto_rollback_failed",
            fmt::format("auto-rollback {}: {}", r.rollback_status.ok() ? "done" : "FAILED",
                        r.rollback_status.ok() ? r.rollback_note
                                               : r.rollback_status.ToString()),
            r.rollback_ms);
  }
  if (Status s = Record(m, r); !s.ok() && r.rollback_status.ok()) {
    r.rollback_status = std::move(s).Prefix("the rollback worked but its history row was not "
                                            "written");
  }
  return r;
}

}  // namespace ferry
