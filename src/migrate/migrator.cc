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
#include "migrate/cql_schema.h"
#include "migrate/in_doubt.h"
#include "migrate/schema_backup.h"
#include "migrate/script_plan.h"
#include "migrate/sql_split.h"
#include "migrate/verify_step.h"

namespace ferry {
namespace {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// True when a statement could drop the session's prepared statements
// (DEALLOCATE, DISCARD ALL / PLANS), as a statement or inside a DO block or
// function body. A plain word search: a false alarm only costs the
// migration's closing statements their preparation.
bool MayDeallocate(const std::vector<Statement>& statements) {
  auto upper_eq = [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; };
  for (const Statement& s : statements) {
    for (std::string_view word : {std::string_view("DEALLOCATE"), std::string_view("DISCARD")}) {
      if (std::search(s.text.begin(), s.text.end(), word.begin(), word.end(), upper_eq) !=
          s.text.end()) {
        return true;
      }
    }
  }
  return false;
}

std::string KindName(const Migration& m) {
  return m.kind == MigrationKind::kRepeatable ? "repeatable" : "versioned";
}

// Key that identifies a migration in history: canonical version, or the
// script's description for repeatables.
std::string KeyOf(const Migration& m) {
  return m.kind == MigrationKind::kRepeatable ? "R:" + m.description : m.version.Canonical();
}

std::string KeyOfRow(const HistoryRow& r) {
  if (r.kind == "repeatable") return "R:" + r.description;
  auto v = Version::Parse(r.version);
  return v.ok() ? v->Canonical() : r.version;
}

int CompareVersionText(const std::string& a, const std::string& b) {
  auto va = Version::Parse(a);
  auto vb = Version::Parse(b);
  if (!va.ok() || !vb.ok()) return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
  auto c = *va <=> *vb;
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

// The 1-based line in the file of a 1-based character `position` within `stmt`.
int LineOfPosition(const Statement& stmt, const std::string& position) {
  int pos = 0;
  std::from_chars(position.data(), position.data() + position.size(), pos);
  if (pos <= 0) return stmt.line;
  int line = stmt.line;
  int chars = 0;
  for (char c : stmt.text) {
    if ((static_cast<unsigned char>(c) & 0xC0) == 0x80) continue;  // UTF-8 continuation
    if (++chars >= pos) break;
    if (c == '\n') ++line;
  }
  return line;
}

}  // namespace

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

Result<std::unique_ptr<MigrationLock>> Migrator::Lock() {
  if (std::string_view setup = conn_->traits().MigrationSessionSetup(); !setup.empty()) {
    auto r = conn_->Exec(setup);  // harmless when refused (drivers/engine.h)
    if (!r.ok()) FERRY_LOG_DEBUG("migration session setup: {}", r.status().ToString());
  }
  return MigrationLock::Acquire(url_, options_.history_table, options_.lock_wait,
                                [this](const LockHolder& h) {
                                  MigrationStep e;
                                  e.message = fmt::format("waiting for the migration lock held by "
                                                          "{} since {}",
                                                          h.who, h.since);
                                  Emit("lock_wait", e);
                                });
}

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
    if (r.kind != "repeatable") {
      auto it = key_of_text.find(r.version);
      if (it != key_of_text.end()) return *it->second;
    }
    return KeyOfRow(r);
  };

  // Latest row per migration key (undo rows only mark; they are not state;
  // partition rows record `ferry partition maintain`, not migrations).
  std::unordered_map<std::string, const HistoryRow*> latest;
  std::string baseline_version;
  const HistoryRow* baseline_row = nullptr;
  for (const HistoryRow& r : rows) {
    if (r.kind == "undo" || r.kind == ToText(HistoryKind::kPartition)) continue;
    if (r.kind == "baseline") {
      if (r.status == "success") {
        baseline_version = r.version;
        baseline_row = &r;
      }
      continue;
    }
    latest[row_key(r)] = &r;
  }
  std::string max_applied = baseline_version;
  Version max_parsed;
  if (auto v = Version::Parse(baseline_version); v.ok()) max_parsed = *v;
  for (const auto& [key, r] : latest) {
    if (r->kind != "versioned" || r->status != "success") continue;
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
  report.current_version = max_applied;

  if (baseline_row != nullptr) {
    PlanEntry e;
    e.state = EntryState::kBaseline;
    e.version = baseline_row->version;
    e.description = baseline_row->description;
    e.script = baseline_row->script;
    e.kind = "baseline";
    e.row = baseline_row;
    report.entries.push_back(e);
  }

  for (const Migration& m : files.migrations) {
    PlanEntry e;
    e.version = m.kind == MigrationKind::kRepeatable ? "" : m.version.text();
    e.description = m.description;
    e.script = m.script;
    e.kind = KindName(m);
    e.migration = &m;
    auto it = latest.find(keys[static_cast<size_t>(&m - files.migrations.data())]);
    const HistoryRow* r = it == latest.end() ? nullptr : it->second;
    e.row = r;
    if (r != nullptr && r->status == "success") {
      if (r->checksum == m.checksum) {
        e.state = EntryState::kApplied;
      } else {
        // A repeatable whose checksum changed simply runs again.
        e.state = m.kind == MigrationKind::kRepeatable ? EntryState::kPending : EntryState::kChanged;
      }
    } else if (r != nullptr && r->status == "failed") {
      e.state = EntryState::kFailed;
    } else if (r != nullptr && r->status == "running") {
      e.state = EntryState::kRunning;
    } else if (m.kind == MigrationKind::kVersioned && !baseline_version.empty() &&
               CompareVersionText(m.version.text(), baseline_version) <= 0) {
      e.state = EntryState::kBelowBaseline;
    } else if (m.kind == MigrationKind::kVersioned && !max_applied.empty() &&
               CompareVersionText(m.version.text(), max_applied) < 0) {
      e.state = EntryState::kOutOfOrder;
    } else {
      e.state = EntryState::kPending;
    }
    report.entries.push_back(e);
  }
  // Applied rows whose file is gone.
  for (const auto& [key, r] : latest) {
    if (by_key.count(key) || r->status != "success") continue;
    PlanEntry e;
    e.state = EntryState::kMissing;
    e.version = r->version;
    e.description = r->description;
    e.script = r->script;
    e.kind = r->kind;
    e.row = r;
    report.entries.push_back(e);
    if (r->kind == "versioned" && (report.newest_file_version.empty() ||
                                   CompareVersionText(r->version, report.newest_file_version) > 0)) {
      report.future_database = true;
    }
  }
  for (PlanEntry& e : report.entries) {
    if (e.migration != nullptr) {
      e.sort_key = e.migration->version;
    } else if (auto v = Version::Parse(e.version); v.ok()) {
      e.sort_key = *v;
    }
  }
  auto less = [](const PlanEntry& a, const PlanEntry& b) {
    bool ra = a.kind == "repeatable";
    bool rb = b.kind == "repeatable";
    if (ra != rb) return rb;
    if (ra) return a.description < b.description;
    return a.sort_key < b.sort_key;
  };
  // Files arrive sorted; only missing rows (appended) can be out of place.
  if (!std::is_sorted(report.entries.begin(), report.entries.end(), less)) {
    std::stable_sort(report.entries.begin(), report.entries.end(), less);
  }
  for (const PlanEntry& e : report.entries) {
    switch (e.state) {
      case EntryState::kApplied: ++report.applied; break;
      case EntryState::kPending: ++report.pending; break;
      case EntryState::kOutOfOrder: ++report.out_of_order; break;
      case EntryState::kChanged: ++report.changed; break;
      case EntryState::kMissing: ++report.missing; break;
      case EntryState::kFailed: ++report.failed; break;
      case EntryState::kRunning: ++report.running; break;
      default: break;
    }
  }
  return report;
}

Result<Migrator::Locked> Migrator::LockAndLoad(History* history) {
  FERRY_ASSIGN_OR_RETURN(MigrationSet files, Scan());
  Locked locked;
  FERRY_ASSIGN_OR_RETURN(locked.lock, Lock());
  FERRY_RETURN_IF_ERROR(history->Ensure());
  FERRY_ASSIGN_OR_RETURN(std::vector<HistoryRow> rows, history->Load());
  FERRY_ASSIGN_OR_RETURN(locked.report, Compute(std::move(files), std::move(rows), true));
  return locked;
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

Result<History::Probe> Migrator::ProbeHistory(const std::vector<std::string>& extra) {
  if (!conn_->traits().Has(Feature::kHistoryFingerprint)) {
    return Status(StatusCode::kUnimplemented, "the history probe needs PostgreSQL");
  }
  History history(conn_.get(), options_.history_table);
  std::vector<std::string> all{MigrationLock::PgHeldCondition(options_.history_table)};
  all.insert(all.end(), extra.begin(), extra.end());
  return history.ProbePostgres(all);
}

Result<std::optional<LockHolder>> Migrator::LockHolderNow(std::optional<bool> known_held) {
  return MigrationLock::Holder(conn_.get(), url_, options_.history_table, known_held);
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

namespace {

// Adds file:line and the statement to a server error.
Status StatementError(Status s, const Script& script, const Statement& stmt, int index, int total) {
  int line = LineOfPosition(stmt, s.Get("position"));
  std::string message = fmt::format("{}:{}: statement {} of {} failed: {}", script.path, line,
                                    index + 1, total, s.message());
  // A failed statement means the migration must be fixed, whatever the
  // server's class (missing table, duplicate object, syntax): one code, so
  // scripts see one exit code. Retryable and access failures keep theirs.
  StatusCode code = s.code();
  if (code == StatusCode::kNotFound || code == StatusCode::kAlreadyExists ||
      code == StatusCode::kUnknown) {
    code = StatusCode::kInvalidArgument;
  }
  Status out(code, message);
  out.Add("file", script.path);
  for (const auto& [k, v] : s.context()) {
    // The driver's line is per statement; its batch index is ferry's own.
    if (k != "statement" && k != "line" && k != "batch_index") out.Add(k, v);
  }
  out.Add("line", std::to_string(line));
  out.Add("statement", Excerpt(stmt.text));
  return out;
}

}  // namespace

Status Migrator::ApplyOne(const Migration& m, const RunPlan& file_plan, HistoryRow* row,
                          History* history, bool in_outer_tx) {
  const EngineTraits& engine = conn_->traits();
  const bool pipelined = engine.Has(Feature::kPipelining);
  auto start = Clock::now();

  // Online blocks (expand, backfill): their DDL joins the file's statements;
  // their backfills run after the commit (migrate/online_steps.h). A row
  // whose statements all committed but whose backfills did not finish
  // resumes at the backfills.
  const bool has_online = !m.up.online.empty();
  const bool online_resume =
      has_online && row->id != 0 && (row->status == "failed" || row->status == "running") &&
      row->statements_done > 0 &&
      row->statements_done >= static_cast<int>(file_plan.statements.size());
  OnlinePrepared prepared;
  RunPlan extended;
  const RunPlan* chosen_plan = &file_plan;
  if (has_online) {
    if (!options_.online) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{}:{}: this migration declares '-- ferry:{}' blocks, which this "
                                "program cannot run: apply it with the ferry command",
                                m.up.path, m.up.online.front().line, m.up.online.front().kind))
          .With("file", m.up.path);
    }
    if (online_resume) {
      prepared.after_commit = true;
    } else {
      FERRY_ASSIGN_OR_RETURN(prepared, options_.online->Prepare(*conn_, m));
      if (prepared.after_commit && in_outer_tx) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("--single-transaction: {} declares backfills, which run "
                                  "outside any transaction; apply it without "
                                  "--single-transaction",
                                  m.up.path));
      }
      if (!prepared.statements.empty()) {
        extended = file_plan;
        for (Statement& st : prepared.statements) extended.statements.push_back(std::move(st));
        chosen_plan = &extended;
      }
    }
  }
  const RunPlan& plan = *chosen_plan;
  const int total = static_cast<int>(plan.statements.size());

  bool resuming = row->id != 0 && !plan.transactional && row->statements_done > 0 &&
                  (row->status == "failed" || row->status == "running");
  int first = resuming ? std::min(row->statements_done, total) : 0;
  const bool interrupted = resuming && row->status == "running";  // killed, not failed
  if (online_resume) first = row->statements_done;
  row->version = m.kind == MigrationKind::kRepeatable ? "" : m.version.text();
  row->description = m.description;
  row->script = m.script;
  row->kind = KindName(m);
  row->checksum = m.checksum;
  row->status = "running";
  row->started_at = History::Now();
  row->completed_at.clear();
  row->error_message.clear();
  row->applied_by = History::Actor();
  row->rollback_available = m.down.has_value();
  row->statements_done = first;
  if (!resuming) row->rows_affected = 0;
  row->execution = in_outer_tx ? "single-transaction" : ExecutionName(plan);
  if (!options_.note.empty()) row->note = options_.note;
  if (auto it = unsafe_notes_.find(m.up.path); it != unsafe_notes_.end()) {
    row->note = row->note.empty() ? it->second : row->note + "; " + it->second;
  }
  row->attempts = row->id == 0 ? 1 : row->attempts + 1;

  MigrationStep started{row->version, m.up.path, m.description};
  started.statements = total;
  started.message = plan.transactional ? "" : plan.reason;
  Emit("migration_started", started);
  if (resuming) {
    MigrationStep e{row->version, m.up.path, m.description};
    e.statement = first + 1;
    e.statements = total;
    e.message = fmt::format("statements 1..{} were applied by an earlier run; resuming at "
                            "statement {} (line {})",
                            first, first + 1, plan.statements[static_cast<size_t>(first)].line);
    Emit("migration_resumed", e);
  }

  auto fail = [&](Status s) -> Status {
    row->status = "failed";
    row->error_message = s.ToString();
    row->completed_at = History::Now();
    row->duration_ms = MsSince(start);
    if (!in_outer_tx) {
      auto saved = history->Save(*row);
      if (!saved.ok()) {
        FERRY_LOG_ERROR("could not record the failure of {}: {}", m.up.path,
                        saved.status().ToString());
      }
    }
    MigrationStep e{row->version, m.up.path, m.description};
    e.message = s.message();
    Emit("migration_failed", e, row->duration_ms, ErrorTypeOf(s));
    return s;
  };

  // The file's lock and statement timeout directives as SET statements
  // (engines with session timeouts); "SET LOCAL" inside the migration's transaction.
  auto timeout_settings = [&](std::string_view set) {
    std::vector<std::string> out;
    if (!engine.Has(Feature::kSessionTimeouts)) return out;
    if (!plan.lock_timeout.empty()) {
      out.push_back(fmt::format("{} lock_timeout = {}", set, PgLiteral(plan.lock_timeout)));
    }
    if (!plan.statement_timeout.empty()) {
      out.push_back(
          fmt::format("{} statement_timeout = {}", set, PgLiteral(plan.statement_timeout)));
    }
    return out;
  };

  // Verify queries run before the commit when they can (a failure then rolls
  // the migration back); after the backfills when there are any.
  auto verify = [&]() -> Status {
    if (!m.verify) return Status();
    MigrationStep e{row->version, m.verify->path, m.description};
    Emit("verify_started", e);
    return RunVerify(*conn_, *m.verify);
  };

  if (online_resume) {
    FERRY_ASSIGN_OR_RETURN(row->id, history->Save(*row));
    MigrationStep e{row->version, m.up.path, m.description};
    e.message = "its statements were committed by an earlier run; continuing with the backfills";
    Emit("migration_resumed", e);
  } else if (in_outer_tx || plan.transactional) {
    // The running row is committed first (outside the migration's
    // transaction) so an interrupted run is visible afterwards. On
    // PostgreSQL that commit travels in the same round trip as the
    // migration (pipelined, its own small transaction that does not wait for
    // a WAL flush: the migration's commit flushes it anyway, and a crash
    // before that loses nothing the migration did). Then a second round trip
    // for the history row and COMMIT, as prepared statements unless the
    // migration could deallocate them; if it did anyway (a function doing
    // DEALLOCATE ALL), the transaction is aborted: roll back, run again with
    // plain statements.
    bool prepared_closing = pipelined && !in_outer_tx && !MayDeallocate(plan.statements);
    for (;;) {
      Params running_params;
      QueryResult running_result;
      const std::vector<std::string> settings = timeout_settings("SET LOCAL");  // batch views
      std::vector<Connection::BatchItem> batch;
      batch.reserve(6 + plan.statements.size());
      // ferry's own statements come back with every migration: prepared once
      // per session (the migration's statements are sent as they are).
      auto own = [&batch](std::string_view sql) {
        batch.push_back({sql, nullptr, nullptr, /*reuse=*/true});
      };
      const bool pipelined_row = pipelined && !in_outer_tx && row->id == 0;
      if (pipelined_row) {
        own("BEGIN");
        batch.push_back(history->InsertItem(*row, &running_params, &running_result));
        own("COMMIT");
      } else {
        FERRY_ASSIGN_OR_RETURN(row->id, history->Save(*row));
      }
      if (!in_outer_tx) own(engine.BeginWrite());
      for (const std::string& setting : settings) own(setting);
      const size_t prefix = batch.size();
      for (const Statement& stmt : plan.statements) batch.push_back({stmt.text, nullptr});
      auto ran = conn_->ExecBatch(batch);
      if (pipelined_row) row->id = History::IdOf(running_result);
      if (!ran.ok()) {
        Status err = std::move(ran).TakeStatus();
        if (!in_outer_tx) (void)conn_->Rollback();
        const std::string batch_index = err.Get("batch_index");
        size_t index = static_cast<size_t>(std::atoll(batch_index.c_str()));
        if (index < prefix || batch_index.empty()) return fail(std::move(err.Drop("batch_index")));
        size_t i = index - prefix;
        return fail(StatementError(std::move(err), m.up, plan.statements[i], static_cast<int>(i),
                                   total));
      }
      int64_t rows = 0;
      for (size_t i = prefix; i < ran->size(); ++i) rows += (*ran)[i];
      if (!prepared.after_commit) {
        if (Status v = verify(); !v.ok()) {
          if (!in_outer_tx) (void)conn_->Rollback();
          return fail(std::move(v).Prefix("verify failed; the migration was rolled back"));
        }
      }
      // With backfills still to run, the row stays "running" (resumable).
      row->status = prepared.after_commit ? "running" : "success";
      row->statements_done = total;
      row->rows_affected = rows;
      row->completed_at = History::Now();
      row->duration_ms = MsSince(start);
      Status saved = in_outer_tx ? history->Save(*row).status()
                                 : history->FinishAndCommit(*row, prepared_closing);
      if (saved.ok()) break;
      if (!in_outer_tx) (void)conn_->Rollback();
      if (prepared_closing && saved.Get("sqlstate") == "26000") {
        prepared_closing = false;
        row->status = "running";
        row->completed_at.clear();
        MigrationStep e{row->version, m.up.path, m.description};
        e.message =
            "the migration deallocated ferry's prepared statements, so its transaction could not "
            "record it; rolled back, running it again";
        Emit("migration_retried", e);
        continue;
      }
      return fail(std::move(saved).Prefix("recording history and committing"));
    }
  } else {
    FERRY_ASSIGN_OR_RETURN(row->id, history->Save(*row));
    for (const std::string& setting : timeout_settings("SET")) {
      Status t = conn_->Exec(setting).status();
      if (!t.ok()) return fail(std::move(t));
    }
    int block_start = -1;  // statement that opened the file's own open transaction
    for (int i = first; i < total; ++i) {
      const Statement& stmt = plan.statements[static_cast<size_t>(i)];
      if (stmt.no_transaction_reason == "CREATE INDEX CONCURRENTLY") {  // PostgreSQL grammar only
        Status cleaned = DropInvalidIndex(stmt, m);
        if (!cleaned.ok()) return fail(std::move(cleaned).Prefix("dropping an invalid index"));
      }
      const bool was_in_tx = plan.own_transactions && conn_->InTransaction();
      auto r = conn_->Exec(stmt.text);
      if (!r.ok() && interrupted && i == first && AppliedByInterruptedRun(r.status())) {
        MigrationStep e{row->version, m.up.path, m.description};
        e.message = InDoubtMessage(r.status(), i + 1, stmt.line);
        Emit("migration_resumed", e);
        r = int64_t{0};
      }
      if (!r.ok()) {
        if (plan.own_transactions) RollBackOwnTransaction(row, block_start);
        return fail(StatementError(std::move(r).TakeStatus(), m.up, stmt, i, total));
      }
      if (plan.own_transactions && !was_in_tx && conn_->InTransaction()) block_start = i;
      if (plan.own_transactions && !conn_->InTransaction()) block_start = -1;
      if (Status settled =
              engine.SettleSchema(*conn_, stmt.text, options_.schema_agreement_timeout);
          !settled.ok()) {
        // The statement ran: recorded as done, so the next run does not repeat it.
        row->statements_done = i + 1;
        return fail(std::move(settled).Prefix(fmt::format(
            "{}:{}: statement {} of {} ran, but the nodes did not agree on the schema after it",
            m.up.path, stmt.line, i + 1, total)));
      }
      row->rows_affected += *r;
      row->statements_done = i + 1;
      FERRY_RETURN_IF_ERROR(history->MarkProgress(row->id, row->statements_done, row->rows_affected));
      MigrationStep e{row->version, m.up.path, m.description};
      e.statement = i + 1;
      e.statements = total;
      Emit("statement_done", e);
    }
    if (engine.Has(Feature::kSessionTimeouts) &&
        (!plan.lock_timeout.empty() || !plan.statement_timeout.empty())) {
      (void)conn_->Exec("RESET lock_timeout; RESET statement_timeout");
    }
    if (!prepared.after_commit) {
      if (Status v = verify(); !v.ok()) {
        return fail(std::move(v).Prefix("verify failed (no-transaction migration: its statements "
                                        "stay applied; 'ferry up' verifies again)"));
      }
    }
    row->status = prepared.after_commit ? "running" : "success";
    row->completed_at = History::Now();
    row->duration_ms = MsSince(start);
    FERRY_RETURN_IF_ERROR(history->Save(*row).status());
  }
  if (prepared.after_commit) {
    // The online steps publish on `relay`; their events reach the bus with
    // this migration's detail.
    EventBus relay;
    relay.Subscribe([&](const Event& step) {
      if (bus_ == nullptr) return;
      Event e = step;
      e.migration = MigrationStep{row->version, m.up.path, m.description};
      e.migration->message = step.message;
      e.database = DatabaseLabel(url_text_.Reveal());
      bus_->Publish(e);
    });
    Status s = options_.online->AfterCommit(url_text_.Reveal(), *conn_, m, &relay);
    if (!s.ok()) {
      return fail(std::move(s).Prefix(
          "statements committed; a backfill did not finish ('ferry up' continues it)"));
    }
    if (Status v = verify(); !v.ok()) {
      return fail(std::move(v).Prefix(
          "verify failed after the backfills (the statements stay committed; fix the data, "
          "then 'ferry up' verifies again)"));
    }
    row->status = "success";
    row->completed_at = History::Now();
    row->duration_ms = MsSince(start);
    FERRY_RETURN_IF_ERROR(history->Save(*row).status());
  }
  MigrationStep done{row->version, m.up.path, m.description};
  done.rows_affected = row->rows_affected;
  done.statements = total;
  Emit("migration_done", done, row->duration_ms);
  return Status();
}

void Migrator::RollBackOwnTransaction(HistoryRow* row, int block_start) {
  // The file's own transaction failed: roll it back (with the progress
  // marks made inside it), so the failure can be recorded and the next run
  // resumes at the statement that opened it.
  if (!conn_->InTransaction()) return;
  (void)conn_->Exec("ROLLBACK");
  if (block_start >= 0) row->statements_done = block_start;
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
  if (report.changed > 0 && !options_.allow_changed) {
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

Status Migrator::DropInvalidIndex(const Statement& stmt, const Migration& m) {
  std::string name = CreatedIndexName(stmt.text);
  if (name.empty()) return Status();
  FERRY_ASSIGN_OR_RETURN(
      QueryResult found,
      conn_->Query("SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
                   "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                   "JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE NOT i.indisvalid AND c.relname = $1 AND pg_table_is_visible(c.oid)",
                   {Value(name)}));
  if (found.rows.empty() || found.rows[0].empty() || !found.rows[0][0]) return Status();
  // A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind: it
  // costs every write and blocks re-creating it under the same name.
  const std::string& qualified = *found.rows[0][0];
  FERRY_RETURN_IF_ERROR(conn_->Exec("DROP INDEX CONCURRENTLY IF EXISTS " + qualified).status());
  MigrationStep e{m.version.text(), m.up.path, m.description};
  e.message = fmt::format("dropped the INVALID index {} left by an earlier failed CREATE INDEX "
                          "CONCURRENTLY (line {}) before building it again",
                          qualified, stmt.line);
  Emit("invalid_index_dropped", e);
  return Status();
}

Status Migrator::LintBeforeUp(const std::vector<const PlanEntry*>& todo) {
  unsafe_notes_.clear();
  if (!options_.lint || todo.empty() || !conn_->traits().Has(Feature::kTableStatistics)) {
    return Status();
  }
  LintOptions lo = options_.lint_options;
  lo.carry_across_files = true;
  lo.default_lock_timeout = lo.default_lock_timeout || !options_.lock_timeout.empty();
  // PrepareScript already refuses these, with its own messages.
  lo.skip_rules.insert("parse-error");
  lo.skip_rules.insert("transaction-control");
  if (Status facts = ReadDatabaseFacts(*conn_, &lo); !facts.ok()) {
    FERRY_LOG_WARN("lint: could not read table sizes ({}); judging without them",
                   facts.ToString());
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
    if (!target.empty() && e.kind != "repeatable" && CompareVersionText(e.version, target) > 0) {
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
    step.execution = options_.single_transaction ? "single-transaction" : ExecutionName(plan);
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
                               e.row->execution == "no-transaction" ||
                                       e.row->execution == "own-transactions"
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
        failed.status = "failed";
        failed.started_at = staged[i].started_at;
        failed.completed_at = History::Now();
        failed.applied_by = staged[i].applied_by;
        failed.execution = "single-transaction";
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
    if (e->kind == "versioned" &&
        (result.current_version.empty() ||
         CompareVersionText(e->version, result.current_version) > 0)) {
      result.current_version = e->version;
    }
  }
  result.duration_ms = MsSince(start);
  return result;
}

Result<std::vector<const PlanEntry*>> Migrator::SelectForDown(const StatusReport& report,
                                                              int steps,
                                                              const std::string& target) {
  std::vector<const PlanEntry*> applied;
  for (const PlanEntry& e : report.entries) {
    if (e.kind != "versioned") continue;
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
    if (e->state == EntryState::kChanged && !options_.allow_changed) {
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
    step.execution = ExecutionName(plan);
    for (const Statement& s : plan.statements) {
      step.statements.push_back(s.text);
      step.lines.push_back(s.line);
    }
    out.push_back(std::move(step));
  }
  return out;
}

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
  undo.kind = "undo";
  undo.checksum = m.checksum;
  undo.started_at = History::Now();
  undo.applied_by = History::Actor();
  undo.execution = ExecutionName(plan);
  undo.note = options_.note;
  int64_t rows = 0;
  if (plan.transactional) FERRY_RETURN_IF_ERROR(conn_->Begin());
  for (int i = 0; i < total; ++i) {
    const Statement& stmt = plan.statements[static_cast<size_t>(i)];
    auto r = conn_->Exec(stmt.text);
    if (!r.ok()) {
      if (plan.transactional || plan.own_transactions) (void)conn_->Rollback();
      Status s = StatementError(std::move(r).TakeStatus(), script, stmt, i, total);
      undo.status = "failed";
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
  undo.status = "success";
  undo.rows_affected = rows;
  undo.completed_at = History::Now();
  undo.duration_ms = MsSince(start);
  undo.statements_done = total;
  row->status = "rolled_back";
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
    if (!applied || e.kind == "repeatable") continue;
    if (std::find(chosen.begin(), chosen.end(), &e) != chosen.end()) continue;
    if (result.current_version.empty() || CompareVersionText(e.version, result.current_version) > 0) {
      result.current_version = e.version;
    }
  }
  result.duration_ms = MsSince(start);
  return result;
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
    known |= !e.version.empty() && e.kind == "versioned" && CompareVersionText(e.version, target) == 0;
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

Result<std::vector<ValidationProblem>> Migrator::Validate() {
  std::vector<ValidationProblem> problems;
  auto files = Scan();
  if (!files.ok()) {
    problems.push_back({"source", options_.dir, files.status().message()});
    return problems;
  }
  for (const Migration& m : files->migrations) {
    auto up = PrepareScript(m, false);
    if (!up.ok()) problems.push_back({"parse", m.up.path, up.status().message()});
    if (m.down) {
      auto down = PrepareScript(m, true);
      if (!down.ok()) problems.push_back({"parse", m.down->path, down.status().message()});
    }
  }
  History history(conn_.get(), options_.history_table);
  FERRY_ASSIGN_OR_RETURN(bool exists, history.Exists());
  std::vector<HistoryRow> rows;
  if (exists) {
    Status s = history.Ensure();
    if (!s.ok()) {
      problems.push_back({"history", options_.history_table, s.message()});
      return problems;
    }
    FERRY_ASSIGN_OR_RETURN(rows, history.Load());
  }
  FERRY_ASSIGN_OR_RETURN(StatusReport report,
                         Compute(std::move(files).value(), std::move(rows), exists));
  for (const PlanEntry& e : report.entries) {
    switch (e.state) {
      case EntryState::kChanged:
        problems.push_back({"checksum", e.script,
                            fmt::format("checksum differs from the applied one (applied {}, file "
                                        "{}): restore the file or run 'ferry repair'",
                                        e.row->checksum, e.migration->checksum)});
        break;
      case EntryState::kMissing:
        problems.push_back({"missing", e.script,
                            fmt::format("version {} is applied but no file has it", e.version)});
        break;
      case EntryState::kOutOfOrder:
        problems.push_back({"order", e.script,
                            fmt::format("pending version {} is older than the applied {}",
                                        e.version, report.current_version)});
        break;
      case EntryState::kFailed:
        problems.push_back({"history", e.script,
                            fmt::format("the last attempt failed: {}", e.row->error_message)});
        break;
      default:
        break;
    }
  }
  AddSchemaDrift(&problems);
  const std::string& min = options_.compat_min_version;
  const std::string& cur = options_.compat_current_version;
  if (!cur.empty() && !report.newest_file_version.empty() &&
      CompareVersionText(report.newest_file_version, cur) > 0) {
    problems.push_back({"compat", options_.dir,
                        fmt::format("newest migration {} is newer than compat.current_version {}",
                                    report.newest_file_version, cur)});
  }
  if (!min.empty() && !cur.empty() && CompareVersionText(min, cur) > 0) {
    problems.push_back({"compat", "ferry.toml",
                        fmt::format("compat.min_version {} is newer than compat.current_version {}",
                                    min, cur)});
  }
  return problems;
}

Result<HealthReport> Migrator::Health() {
  HealthReport h;
  auto add = [&h](std::string name, bool ok, std::string detail) {
    h.checks.push_back({std::move(name), ok, std::move(detail)});
    if (!ok) h.healthy = false;
  };
  auto info = conn_->Info();
  add("connect", info.ok(),
      info.ok() ? fmt::format("{} {}", info->engine, info->version) : info.status().message());
  auto report = CurrentStatus(/*metadata_only=*/true);
  if (!report.ok()) {
    add("history", false, report.status().message());
    return h;
  }
  add("history", true,
      report->history_exists ? fmt::format("{} readable", options_.history_table)
                             : fmt::format("{} not created yet (nothing applied)",
                                           options_.history_table));
  if (report->lock_holder) {
    bool stuck = report->lock_holder->held_ms > options_.lock_wait.count();
    add("lock", !stuck,
        fmt::format("held by {} since {} ({} s){}", report->lock_holder->who,
                    report->lock_holder->since, report->lock_holder->held_ms / 1000,
                    stuck ? "; longer than --lock-wait: is it stuck?" : ""));
  } else {
    add("lock", true, "free");
  }
  add("failed", report->failed == 0,
      report->failed == 0 ? "no failed migrations"
                          : fmt::format("{} failed migration(s): see 'ferry status'",
                                        report->failed));
  bool lock_free = !report->lock_holder.has_value();
  bool dead = report->running > 0 && lock_free;
  add("running", !dead,
      dead ? fmt::format("{} migration(s) marked running but no process holds the lock: the "
                         "runner died; 'ferry up' continues them",
                         report->running)
           : (report->running > 0 ? "a migration is running now" : "none running"));
  const std::string& min = options_.compat_min_version;
  const std::string& cur = options_.compat_current_version;
  const std::string& db = report->current_version;
  if (min.empty() && cur.empty()) {
    add("compatibility", true, "no compat range configured");
  } else if (db.empty()) {
    add("compatibility", min.empty(), fmt::format("database has no schema version; application "
                                                  "needs at least {}",
                                                  min));
  } else {
    bool too_old = !min.empty() && CompareVersionText(db, min) < 0;
    bool too_new = !cur.empty() && CompareVersionText(db, cur) > 0;
    add("compatibility", !too_old && !too_new,
        too_old   ? fmt::format("database is at {}, older than the minimum {}: run 'ferry up'", db,
                                min)
        : too_new ? fmt::format("database is at {}, newer than the application's {}: upgrade "
                                "the application",
                                db, cur)
                  : fmt::format("database at {} within [{}, {}]", db, min.empty() ? "-" : min,
                                cur.empty() ? "-" : cur));
  }
  add("pending", true, fmt::format("{} pending", report->pending));
  std::vector<ValidationProblem> drift;
  AddSchemaDrift(&drift);
  std::string detail;
  for (const ValidationProblem& p : drift) detail += (detail.empty() ? "" : "; ") + p.message;
  add("schema", drift.empty(),
      drift.empty() ? "the live schema holds what the applied migrations made"
                    : fmt::format("schema validation failed: {}", detail));
  return h;
}

void Migrator::AddSchemaDrift(std::vector<ValidationProblem>* problems) {
  if (conn_->traits().grammar() == SqlGrammar::kCql) return AddCqlSchemaDrift(problems);
  if (!conn_->traits().Has(Feature::kSqlTables)) return;  // no schema record (Recorded)
  SchemaRecord record(conn_.get(), options_.history_table);
  auto drift = record.Compare();
  if (!drift.ok()) {
    problems->push_back({"schema", record.table(),
                         fmt::format("cannot compare with the live schema: {}",
                                     drift.status().message())});
    return;
  }
  for (const SchemaDrift& d : *drift) problems->push_back({"schema", d.name, d.message});
}

// CQL keeps no schema record: what the applied up scripts made is read
// from the files and compared with system_schema (migrate/cql_schema.h).
void Migrator::AddCqlSchemaDrift(std::vector<ValidationProblem>* problems) {
  auto report = CurrentStatus(/*metadata_only=*/false);
  if (!report.ok()) return;  // the history problem is reported by the caller
  std::vector<CqlAppliedScript> applied;
  for (const PlanEntry& e : report->entries) {
    // A changed file no longer says what was applied (validate reports its
    // checksum): what it made is not judged.
    if (e.state == EntryState::kApplied && e.migration != nullptr) {
      applied.push_back({e.version, e.migration->up.sql});
    }
  }
  auto drift = CompareCqlSchema(*conn_, ExpectedCqlSchema(applied, url_.database()));
  if (!drift.ok()) {
    problems->push_back({"schema", "system_schema",
                         fmt::format("cannot compare with the live schema: {}",
                                     drift.status().message())});
    return;
  }
  for (const SchemaDrift& d : *drift) problems->push_back({"schema", d.name, d.message});
}

Status Migrator::Baseline(const std::string& version, const std::string& description) {
  FERRY_ASSIGN_OR_RETURN(Version v, Version::Parse(version));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<MigrationLock> lock, Lock());
  History history(conn_.get(), options_.history_table);
  FERRY_RETURN_IF_ERROR(history.Ensure());
  FERRY_ASSIGN_OR_RETURN(std::vector<HistoryRow> rows, history.Load());
  for (const HistoryRow& r : rows) {
    if ((r.kind == "versioned" || r.kind == "baseline") && r.status == "success") {
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
  row.kind = "baseline";
  row.status = "success";
  row.started_at = History::Now();
  row.completed_at = row.started_at;
  row.applied_by = History::Actor();
  row.execution = "transaction";
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
      row.status = "rolled_back";
      row.statements_done = 0;
      FERRY_RETURN_IF_ERROR(history.Save(row).status());
      changed.push_back(fmt::format("cleared {} attempt of {}", e.row->status, e.script));
    }
  }
  return changed;
}

}  // namespace ferry
