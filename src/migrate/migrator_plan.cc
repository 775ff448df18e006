// Migrator, the planning stage: migration files + history rows -> the
// status report (Compute), and which entries up / down would run
// (SelectForUp, SelectForDown, PlanUp, PlanDown). No statement runs here.
#include <fmt/format.h>

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "core/log.h"
#include "migrate/migrator.h"
#include "migrate/migrator_internal.h"
#include "migrate/sql_split.h"

namespace ferry {

using namespace migrator_internal;

namespace {

// Key that identifies a migration in history: canonical version, or the
// script's description for repeatables.
std::string KeyOf(const Migration& m) {
  return m.kind == MigrationKind::kRepeatable ? "R:" + m.description : m.version.Canonical();
}

std::string KeyOfRow(const HistoryRow& r) {
  if (r.kind == HistoryKind::kRepeatable) return "R:" + r.description;
  auto v = Version::Parse(r.version);
  return v.ok() ? v->Canonical() : r.version;
}

}  // namespace

namespace {

// The latest history row per migration key (undo rows only mark; they are
// not state; partition, checkpoint and auto-rollback rows record
// operations, not migrations), and the successful baseline row.
struct LatestRows {
  std::unordered_map<std::string, const HistoryRow*> latest;
  std::string baseline_version;
  const HistoryRow* baseline_row = nullptr;
};

template <typename RowKey>
LatestRows LatestByKey(const std::vector<HistoryRow>& rows, const RowKey& row_key) {
  LatestRows out;
  for (const HistoryRow& r : rows) {
    if (IsOperationKind(r.kind)) continue;
    if (r.kind == HistoryKind::kBaseline) {
      if (r.status == HistoryStatus::kSuccess) {
        out.baseline_version = r.version;
        out.baseline_row = &r;
      }
      continue;
    }
    out.latest[row_key(r)] = &r;
  }
  return out;
}

// The newest successfully applied version (the baseline's when none is newer).
std::string MaxApplied(const LatestRows& rows,
                       const std::unordered_map<std::string, const Migration*>& by_key) {
  std::string max_applied = rows.baseline_version;
  Version max_parsed;
  if (auto v = Version::Parse(rows.baseline_version); v.ok()) max_parsed = *v;
  for (const auto& [key, r] : rows.latest) {
    if (r->kind != HistoryKind::kVersioned || r->status != HistoryStatus::kSuccess) continue;
    auto file = by_key.find(key);
    Version v;
    if (file != by_key.end()) {
      v = file->second->version;
    } else if (auto parsed = Version::Parse(r->version); parsed.ok()) {
      v = std::move(parsed).value();
    } else {
      continue;
    }
    if (max_applied.empty() || max_parsed < v) {
      max_applied = r->version;
      max_parsed = std::move(v);
    }
  }
  return max_applied;
}

// The state of file `m` whose latest history row is `r` (may be null).
EntryState StateOfFile(const Migration& m, const HistoryRow* r, const std::string& baseline_version,
                       const std::string& max_applied) {
  if (r != nullptr && r->status == HistoryStatus::kSuccess) {
    if (r->checksum == m.checksum) return EntryState::kApplied;
    // A repeatable whose checksum changed simply runs again.
    return m.kind == MigrationKind::kRepeatable ? EntryState::kPending : EntryState::kChanged;
  }
  if (r != nullptr && r->status == HistoryStatus::kFailed) return EntryState::kFailed;
  if (r != nullptr && r->status == HistoryStatus::kRunning) return EntryState::kRunning;
  if (m.kind == MigrationKind::kVersioned && !baseline_version.empty() &&
      CompareVersionText(m.version.text(), baseline_version) <= 0) {
    return EntryState::kBelowBaseline;
  }
  if (m.kind == MigrationKind::kVersioned && !max_applied.empty() &&
      CompareVersionText(m.version.text(), max_applied) < 0) {
    return EntryState::kOutOfOrder;
  }
  return EntryState::kPending;
}

// An entry for a history row with no file behind it (the baseline, or an
// applied migration whose file is gone).
PlanEntry EntryOfRow(const HistoryRow* r, EntryState state, HistoryKind kind) {
  PlanEntry e;
  e.state = state;
  e.version = r->version;
  e.description = r->description;
  e.script = r->script;
  e.kind = kind;
  e.row = r;
  return e;
}

// Sorts the entries (versioned by version, then repeatables by description)
// and counts them by state.
void SortAndCount(StatusReport* report) {
  for (PlanEntry& e : report->entries) {
    if (e.migration != nullptr) {
      e.sort_key = e.migration->version;
    } else if (auto v = Version::Parse(e.version); v.ok()) {
      e.sort_key = *v;
    }
  }
  auto less = [](const PlanEntry& a, const PlanEntry& b) {
    bool ra = a.kind == HistoryKind::kRepeatable;
    bool rb = b.kind == HistoryKind::kRepeatable;
    if (ra != rb) return rb;
    if (ra) return a.description < b.description;
    return a.sort_key < b.sort_key;
  };
  // Files arrive sorted; only missing rows (appended) can be out of place.
  if (!std::is_sorted(report->entries.begin(), report->entries.end(), less)) {
    std::stable_sort(report->entries.begin(), report->entries.end(), less);
  }
  for (const PlanEntry& e : report->entries) {
    switch (e.state) {
      case EntryState::kApplied: ++report->applied; break;
      case EntryState::kPending: ++report->pending; break;
      case EntryState::kOutOfOrder: ++report->out_of_order; break;
      case EntryState::kChanged: ++report->changed; break;
      case EntryState::kMissing: ++report->missing; break;
      case EntryState::kFailed: ++report->failed; break;
      case EntryState::kRunning: ++report->running; break;
      default: break;
    }
  }
}

}  // namespace

Result<StatusReport> Migrator::Compute(MigrationSet files_in, std::vector<HistoryRow> rows_in,
                                       bool history_exists) {
  StatusReport report;
  report.files = std::make_shared<const MigrationSet>(std::move(files_in));
  report.rows = std::make_shared<const std::vector<HistoryRow>>(std::move(rows_in));
  const MigrationSet& files = *report.files;
  const std::vector<HistoryRow>& rows = *report.rows;
  report.database = url_.Redacted();
  report.history_exists = history_exists;

  // Files by key; a row whose version is written as in its file needs no
  // parsing (histories can hold many thousands of rows).
  std::unordered_map<std::string, const Migration*> by_key;
  std::unordered_map<std::string_view, const std::string*> key_of_text;
  std::vector<std::string> keys;
  keys.reserve(files.migrations.size());
  for (const Migration& m : files.migrations) {
    keys.push_back(KeyOf(m));
    by_key[keys.back()] = &m;
    if (m.kind == MigrationKind::kVersioned) {
      report.newest_file_version = m.version.text();
      key_of_text[m.version.text()] = &keys.back();
    }
  }
  auto row_key = [&key_of_text](const HistoryRow& r) {
    if (r.kind != HistoryKind::kRepeatable) {
      auto it = key_of_text.find(r.version);
      if (it != key_of_text.end()) return *it->second;
    }
    return KeyOfRow(r);
  };
  const LatestRows latest_rows = LatestByKey(rows, row_key);
  const auto& latest = latest_rows.latest;
  const std::string max_applied = MaxApplied(latest_rows, by_key);
  report.current_version = max_applied;

  if (latest_rows.baseline_row != nullptr) {
    report.entries.push_back(EntryOfRow(latest_rows.baseline_row, EntryState::kBaseline, HistoryKind::kBaseline));
  }
  for (const Migration& m : files.migrations) {
    PlanEntry e;
    e.version = m.kind == MigrationKind::kRepeatable ? "" : m.version.text();
    e.description = m.description;
    e.script = m.script;
    e.kind = KindOf(m);
    e.migration = &m;
    auto it = latest.find(keys[static_cast<size_t>(&m - files.migrations.data())]);
    e.row = it == latest.end() ? nullptr : it->second;
    e.state = StateOfFile(m, e.row, latest_rows.baseline_version, max_applied);
    report.entries.push_back(e);
  }
  // Applied rows whose file is gone.
  for (const auto& [key, r] : latest) {
    if (by_key.count(key) || r->status != HistoryStatus::kSuccess) continue;
    report.entries.push_back(EntryOfRow(r, EntryState::kMissing, r->kind));
    if (r->kind == HistoryKind::kVersioned && (report.newest_file_version.empty() ||
                                   CompareVersionText(r->version, report.newest_file_version) > 0)) {
      report.future_database = true;
    }
  }
  SortAndCount(&report);
  return report;
}

Status Migrator::CheckBeforeUp(const StatusReport& report, const std::string& target) {
  (void)target;
  if (report.future_database && !options_.allow_future) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("database is at {}, newer than this project's newest migration {}: "
                              "upgrade the application first (or pass --allow-future)",
                              report.current_version,
                              report.newest_file_version.empty() ? "(none)"
                                                                 : report.newest_file_version));
  }
  if (report.changed > 0) {
    std::string list;
    for (const PlanEntry& e : report.entries) {
      if (e.state == EntryState::kChanged) list += "\n  " + e.script;
    }
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("applied migration files were changed after they were applied "
                              "(checksum differs):{}\nrestore them, or accept the change with "
                              "'ferry repair --reason \"...\"'",
                              list));
  }
  if (report.out_of_order > 0 && !options_.out_of_order) {
    for (const PlanEntry& e : report.entries) {
      if (e.state == EntryState::kOutOfOrder) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("pending migration {} ({}) is older than the newest applied "
                                  "version {}: apply it with --out-of-order if it is independent, "
                                  "or give it a newer version",
                                  e.version, e.script, report.current_version));
      }
    }
  }
  const std::string& current_app = options_.compat_current_version;
  if (!current_app.empty() && !report.newest_file_version.empty() &&
      CompareVersionText(report.newest_file_version, current_app) > 0 && target.empty()) {
    FERRY_LOG_WARN("migration {} is newer than the application's current schema version {}",
                   report.newest_file_version, current_app);
  }
  return Status();
}

Result<std::vector<const PlanEntry*>> Migrator::SelectForUp(const StatusReport& report,
                                                            const std::string& target) {
  FERRY_RETURN_IF_ERROR(CheckBeforeUp(report, target));
  if (!target.empty()) {
    bool known = false;
    for (const PlanEntry& e : report.entries) {
      known |= !e.version.empty() && CompareVersionText(e.version, target) == 0;
    }
    if (!known) {
      return Status(StatusCode::kNotFound,
                    fmt::format("no migration has version {}; see 'ferry status'", target));
    }
  }
  std::vector<const PlanEntry*> todo;
  for (const PlanEntry& e : report.entries) {
    bool wanted = e.state == EntryState::kPending || e.state == EntryState::kFailed ||
                  e.state == EntryState::kRunning ||
                  (e.state == EntryState::kOutOfOrder && options_.out_of_order);
    if (!wanted || e.migration == nullptr) continue;
    if (!target.empty() && e.kind != HistoryKind::kRepeatable && CompareVersionText(e.version, target) > 0) {
      continue;
    }
    todo.push_back(&e);
  }
  return todo;
}

Result<std::vector<PlannedStep>> Migrator::PlanUp(const std::string& target) {
  FERRY_ASSIGN_OR_RETURN(StatusReport report, CurrentStatus());
  return PlanUpFrom(report, target);
}

Result<std::vector<PlannedStep>> Migrator::PlanUpFrom(const StatusReport& report,
                                                      const std::string& target) {
  FERRY_ASSIGN_OR_RETURN(std::vector<const PlanEntry*> todo, SelectForUp(report, target));
  std::vector<PlannedStep> steps;
  for (const PlanEntry* entry : todo) {
    const PlanEntry& e = *entry;
    FERRY_ASSIGN_OR_RETURN(RunPlan plan, PrepareScript(*e.migration, false));
    PlannedStep step;
    step.version = e.version;
    step.script = e.script;
    step.direction = "up";
    step.execution = options_.single_transaction ? Execution::kSingleTransaction : ExecutionOf(plan);
    size_t first = 0;
    if (!plan.transactional && e.row != nullptr && e.row->statements_done > 0) {
      first = static_cast<size_t>(e.row->statements_done);
    }
    for (size_t i = first; i < plan.statements.size(); ++i) {
      step.statements.push_back(plan.statements[i].text);
      step.lines.push_back(plan.statements[i].line);
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

Result<std::vector<const PlanEntry*>> Migrator::SelectForDown(const StatusReport& report,
                                                              int steps,
                                                              const std::string& target) {
  std::vector<const PlanEntry*> applied;
  for (const PlanEntry& e : report.entries) {
    if (e.kind != HistoryKind::kVersioned) continue;
    if (e.state == EntryState::kApplied || e.state == EntryState::kChanged ||
        e.state == EntryState::kMissing || e.state == EntryState::kFailed ||
        e.state == EntryState::kRunning) {
      applied.push_back(&e);
    }
  }
  std::reverse(applied.begin(), applied.end());  // newest first
  std::vector<const PlanEntry*> chosen;
  if (!target.empty()) {
    auto t = Version::Parse(target);
    if (!t.ok()) return std::move(t).TakeStatus();
    for (const PlanEntry* e : applied) {
      if (CompareVersionText(e->version, target) > 0) chosen.push_back(e);
    }
  } else {
    for (const PlanEntry* e : applied) {
      if (static_cast<int>(chosen.size()) >= steps) break;
      chosen.push_back(e);
    }
  }
  for (const PlanEntry* e : chosen) {
    if (e->state == EntryState::kFailed || e->state == EntryState::kRunning) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{} is {}: fix and re-run 'ferry up', or clear it with 'ferry "
                                "repair', before rolling back",
                                e->script, EntryStateName(e->state)));
    }
    if (e->migration == nullptr) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("cannot roll back {} ({}): its file is missing from {}",
                                e->version, e->script, options_.dir));
    }
    // A file of expand blocks only is undone by its blocks.
    const bool online_only =
        !e->migration->up.online.empty() && !HasSqlTokens(e->migration->up.sql);
    if (!e->migration->down && !online_only) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("cannot roll back {}: {} has no down section; {}, or roll "
                                "forward with a new migration",
                                e->version, e->script, HowToAddDown(*e->migration)));
    }
    if (e->state == EntryState::kChanged) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{} changed since it was applied; check its down section, then "
                                "accept it with 'ferry repair' before rolling back",
                                e->script));
    }
  }
  return chosen;
}

Result<std::vector<PlannedStep>> Migrator::PlanDown(int steps, const std::string& target) {
  FERRY_ASSIGN_OR_RETURN(StatusReport report, CurrentStatus());
  return PlanDownFrom(report, steps, target);
}

Result<std::vector<PlannedStep>> Migrator::PlanDownFrom(const StatusReport& report, int steps,
                                                        const std::string& target) {
  FERRY_ASSIGN_OR_RETURN(std::vector<const PlanEntry*> chosen,
                         SelectForDown(report, steps, target));
  std::vector<PlannedStep> out;
  for (const PlanEntry* e : chosen) {
    RunPlan plan;
    if (e->migration->down) {
      FERRY_ASSIGN_OR_RETURN(plan, PrepareScript(*e->migration, true));
    }
    if (!e->migration->up.online.empty() && options_.online) {
      FERRY_ASSIGN_OR_RETURN(std::vector<Statement> undo,
                             options_.online->PrepareUndo(*conn_, *e->migration));
      plan.statements.insert(plan.statements.begin(), undo.begin(), undo.end());
    }
    PlannedStep step;
    step.version = e->version;
    step.script = e->migration->down ? e->migration->down->path : e->migration->up.path;
    step.direction = "down";
    step.execution = ExecutionOf(plan);
    for (const Statement& s : plan.statements) {
      step.statements.push_back(s.text);
      step.lines.push_back(s.line);
    }
    out.push_back(std::move(step));
  }
  return out;
}

}  // namespace ferry
