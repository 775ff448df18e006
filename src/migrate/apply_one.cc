// Migrator, the apply stage: one migration up (ApplyOne): set up its history
// row, run its statements (one transaction, or statement by statement),
// verify, run its backfills, finish the row.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string_view>

#include "core/log.h"
#include "core/printable.h"
#include "migrate/in_doubt.h"
#include "migrate/migrator.h"
#include "migrate/migrator_internal.h"
#include "migrate/sql_split.h"
#include "migrate/postconditions.h"
#include "observe/ddl_progress.h"

namespace ferry {

using namespace migrator_internal;

namespace {

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

// Watches the statement about to run on `conn` (observe/ddl_progress.h):
// "statement_progress" events with the migration's step (`statement` 0
// for a transaction's whole batch). Null without a bus or progress views.
std::unique_ptr<DdlProgressWatch> WatchStatement(Connection& conn, const Secret& url,
                                                 EventBus* bus, MigrationStep step) {
  if (bus == nullptr) return nullptr;
  Event base = MigrationEventOf(std::string(kStatementProgress), std::move(step));
  base.database = DatabaseLabel(url.Reveal());
  return WatchDdlProgress(conn, url, [bus, base = std::move(base)](const DdlProgress& p) {
    bus->Publish(DdlProgressEventOf(base, p, DdlProgressText(p)));
  });
}

}  // namespace

namespace migrator_internal {

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

}  // namespace migrator_internal

// One migration being applied: what ApplyOne's stages share.
struct Migrator::ApplyRun {
  const Migration& m;
  HistoryRow* row;
  History* history;
  bool in_outer_tx;
  Clock::time_point start = Clock::now();
  // A row whose statements all committed but whose backfills did not
  // finish resumes at the backfills.
  bool online_resume = false;
  OnlinePrepared prepared;
  RunPlan extended;               // the file's plan with the online blocks' DDL
  const RunPlan* plan = nullptr;  // the file's plan, or `extended`
  int total = 0;
  bool resuming = false;
  bool interrupted = false;  // resuming a run that was killed, not one that failed
  int first = 0;  // the first statement to run
};

Status Migrator::ApplyOne(const Migration& m, const RunPlan& file_plan, HistoryRow* row,
                          History* history, bool in_outer_tx) {
  ApplyRun a{m, row, history, in_outer_tx};

  // Online blocks (expand, backfill): their DDL joins the file's statements;
  // their backfills run after the commit (migrate/online_steps.h). A row
  // whose statements all committed but whose backfills did not finish
  // resumes at the backfills.
  const bool has_online = !m.up.online.empty();
  a.online_resume =
      has_online && row->id != 0 && (row->status == HistoryStatus::kFailed || row->status == HistoryStatus::kRunning) &&
      row->statements_done > 0 &&
      row->statements_done >= static_cast<int>(file_plan.statements.size());
  a.plan = &file_plan;
  if (has_online) FERRY_RETURN_IF_ERROR(PrepareOnline(&a, file_plan));
  const RunPlan& plan = *a.plan;
  a.total = static_cast<int>(plan.statements.size());

  a.resuming = row->id != 0 && !plan.transactional && row->statements_done > 0 &&
               (row->status == HistoryStatus::kFailed || row->status == HistoryStatus::kRunning);
  a.first = a.resuming ? std::min(row->statements_done, a.total) : 0;
  a.interrupted = a.resuming && row->status == HistoryStatus::kRunning;
  if (a.online_resume) a.first = row->statements_done;
  StartRow(&a);

  if (a.online_resume) {
    FERRY_ASSIGN_OR_RETURN(row->id, history->Save(*row));
    MigrationStep e{row->version, m.up.path, m.description};
    e.message = "its statements were committed by an earlier run; continuing with the backfills";
    Emit("migration_resumed", e);
  } else if (in_outer_tx || plan.transactional) {
    FERRY_RETURN_IF_ERROR(ApplyInTransaction(&a));
  } else {
    FERRY_RETURN_IF_ERROR(ApplyByStatement(&a));
  }
  if (a.prepared.after_commit) FERRY_RETURN_IF_ERROR(RunBackfills(&a));
  MigrationStep done{row->version, m.up.path, m.description};
  done.rows_affected = row->rows_affected;
  done.statements = a.total;
  Emit("migration_done", done, row->duration_ms);
  return Status();
}

Status Migrator::PrepareOnline(ApplyRun* a, const RunPlan& file_plan) {
  const Migration& m = a->m;
  if (!options_.online) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{}:{}: this migration declares '-- ferry:{}' blocks, which this "
                              "program cannot run: apply it with the ferry command",
                              m.up.path, m.up.online.front().line, m.up.online.front().kind))
        .With("file", m.up.path);
  }
  if (a->online_resume) {
    a->prepared.after_commit = true;
    return Status();
  }
  FERRY_ASSIGN_OR_RETURN(a->prepared, options_.online->Prepare(*conn_, m));
  if (a->prepared.after_commit && a->in_outer_tx) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--single-transaction: {} declares backfills, which run "
                              "outside any transaction; apply it without "
                              "--single-transaction",
                              m.up.path));
  }
  if (!a->prepared.statements.empty()) {
    a->extended = file_plan;
    for (Statement& st : a->prepared.statements) a->extended.statements.push_back(std::move(st));
    a->plan = &a->extended;
  }
  return Status();
}

void Migrator::StartRow(ApplyRun* a) {
  const Migration& m = a->m;
  const RunPlan& plan = *a->plan;
  HistoryRow* row = a->row;
  row->version = m.kind == MigrationKind::kRepeatable ? "" : m.version.text();
  row->description = m.description;
  row->script = m.script;
  row->kind = KindOf(m);
  row->checksum = m.checksum;
  row->status = HistoryStatus::kRunning;
  row->started_at = History::Now();
  row->completed_at.clear();
  row->error_message.clear();
  row->applied_by = History::Actor();
  row->rollback_available = m.down.has_value();
  row->statements_done = a->first;
  if (!a->resuming) row->rows_affected = 0;
  row->execution = a->in_outer_tx ? Execution::kSingleTransaction : ExecutionOf(plan);
  if (!options_.note.empty()) row->note = options_.note;
  if (auto it = unsafe_notes_.find(m.up.path); it != unsafe_notes_.end()) {
    row->note = row->note.empty() ? it->second : row->note + "; " + it->second;
  }
  row->attempts = row->id == 0 ? 1 : row->attempts + 1;

  MigrationStep started{row->version, m.up.path, m.description};
  started.statements = a->total;
  started.message = plan.transactional ? "" : plan.reason;
  Emit("migration_started", started);
  if (a->resuming) {
    MigrationStep e{row->version, m.up.path, m.description};
    e.statement = a->first + 1;
    e.statements = a->total;
    e.message = fmt::format("statements 1..{} were applied by an earlier run; resuming at "
                            "statement {} (line {})",
                            a->first, a->first + 1,
                            plan.statements[static_cast<size_t>(a->first)].line);
    Emit("migration_resumed", e);
  }
}

Status Migrator::FailApply(ApplyRun* a, Status s) {
  HistoryRow* row = a->row;
  row->status = HistoryStatus::kFailed;
  row->error_message = s.ToString();
  row->completed_at = History::Now();
  row->duration_ms = MsSince(a->start);
  if (!a->in_outer_tx) {
    auto saved = a->history->Save(*row);
    if (!saved.ok()) {
      FERRY_LOG_ERROR("could not record the failure of {}: {}", a->m.up.path,
                      saved.status().ToString());
    }
  }
  MigrationStep e{row->version, a->m.up.path, a->m.description};
  e.message = s.message();
  Emit("migration_failed", e, row->duration_ms, ErrorTypeOf(s));
  return s;
}

// The file's lock and statement timeout directives as SET statements
// (engines with session timeouts); "SET LOCAL" inside the migration's transaction.
std::vector<std::string> Migrator::TimeoutSettings(const ApplyRun& a, std::string_view set) {
  const RunPlan& plan = *a.plan;
  std::vector<std::string> out;
  if (!conn_->traits().Has(Feature::kSessionTimeouts)) return out;
  if (!plan.lock_timeout.empty()) {
    out.push_back(fmt::format("{} lock_timeout = {}", set, PgLiteral(plan.lock_timeout)));
  }
  if (!plan.statement_timeout.empty()) {
    out.push_back(fmt::format("{} statement_timeout = {}", set, PgLiteral(plan.statement_timeout)));
  }
  return out;
}

// Verify queries run before the commit when they can (a failure then rolls
// the migration back); after the backfills when there are any.
Status Migrator::VerifyApplied(const ApplyRun& a) {
  const Migration& m = a.m;
  if (!m.verify) return Status();
  MigrationStep e{a.row->version, m.verify->path, m.description};
  Emit("verify_started", e);
  return CheckPostconditions(*conn_, *m.verify);
}

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
Status Migrator::ApplyInTransaction(ApplyRun* a) {
  const EngineTraits& engine = conn_->traits();
  const bool pipelined = engine.Has(Feature::kPipelining);
  const Migration& m = a->m;
  const RunPlan& plan = *a->plan;
  HistoryRow* row = a->row;
  History* history = a->history;
  const bool in_outer_tx = a->in_outer_tx;
  bool prepared_closing = pipelined && !in_outer_tx && !MayDeallocate(plan.statements);
  for (;;) {
    Params running_params;
    QueryResult running_result;
    const std::vector<std::string> settings = TimeoutSettings(*a, "SET LOCAL");  // batch views
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
    Result<std::vector<int64_t>> ran = std::vector<int64_t>{};
    {
      MigrationStep step{row->version, m.up.path, m.description};
      step.statements = a->total;
      std::unique_ptr<DdlProgressWatch> watch;
      if (std::any_of(plan.statements.begin(), plan.statements.end(),
                      [](const Statement& st) { return MayReportProgress(st.text); })) {
        watch = WatchStatement(*conn_, url_text_, bus_, std::move(step));
      }
      ran = conn_->ExecBatch(batch);
    }
    if (pipelined_row) row->id = History::IdOf(running_result);
    if (!ran.ok()) {
      Status err = std::move(ran).TakeStatus();
      if (!in_outer_tx) (void)conn_->Rollback();
      const std::string batch_index = err.Get("batch_index");
      size_t index = static_cast<size_t>(std::atoll(batch_index.c_str()));
      if (index < prefix || batch_index.empty()) {
        return FailApply(a, std::move(err.Drop("batch_index")));
      }
      size_t i = index - prefix;
      return FailApply(a, StatementError(std::move(err), m.up, plan.statements[i],
                                         static_cast<int>(i), a->total));
    }
    int64_t rows = 0;
    for (size_t i = prefix; i < ran->size(); ++i) rows += (*ran)[i];
    if (!a->prepared.after_commit) {
      if (Status v = VerifyApplied(*a); !v.ok()) {
        if (!in_outer_tx) (void)conn_->Rollback();
        return FailApply(a, std::move(v).Prefix("verify failed; the migration was rolled back"));
      }
    }
    // With backfills still to run, the row stays "running" (resumable).
    row->status = a->prepared.after_commit ? HistoryStatus::kRunning : HistoryStatus::kSuccess;
    row->statements_done = a->total;
    row->rows_affected = rows;
    row->completed_at = History::Now();
    row->duration_ms = MsSince(a->start);
    Status saved = in_outer_tx ? history->Save(*row).status()
                               : history->FinishAndCommit(*row, prepared_closing);
    if (saved.ok()) return Status();
    if (!in_outer_tx) (void)conn_->Rollback();
    if (prepared_closing && saved.Get("sqlstate") == "26000") {
      prepared_closing = false;
      row->status = HistoryStatus::kRunning;
      row->completed_at.clear();
      MigrationStep e{row->version, m.up.path, m.description};
      e.message =
          "the migration deallocated ferry's prepared statements, so its transaction could not "
          "record it; rolled back, running it again";
      Emit("migration_retried", e);
      continue;
    }
    return FailApply(a, std::move(saved).Prefix("recording history and committing"));
  }
}

// No transaction around the file (or the file runs its own): statement by
// statement, each recorded as done, so a later run resumes after it.
Status Migrator::ApplyByStatement(ApplyRun* a) {
  const EngineTraits& engine = conn_->traits();
  const Migration& m = a->m;
  const RunPlan& plan = *a->plan;
  HistoryRow* row = a->row;
  History* history = a->history;
  const int total = a->total;
  FERRY_ASSIGN_OR_RETURN(row->id, history->Save(*row));
  for (const std::string& setting : TimeoutSettings(*a, "SET")) {
    Status t = conn_->Exec(setting).status();
    if (!t.ok()) return FailApply(a, std::move(t));
  }
  int block_start = -1;  // statement that opened the file's own open transaction
  for (int i = a->first; i < total; ++i) {
    const Statement& stmt = plan.statements[static_cast<size_t>(i)];
    if (stmt.no_transaction_reason == "CREATE INDEX CONCURRENTLY") {  // PostgreSQL grammar only
      Status cleaned = DropInvalidIndex(stmt, m);
      if (!cleaned.ok()) return FailApply(a, std::move(cleaned).Prefix("dropping an invalid index"));
    }
    const bool was_in_tx = plan.own_transactions && conn_->InTransaction();
    Result<int64_t> r = int64_t{0};
    {
      MigrationStep step{row->version, m.up.path, m.description};
      step.statement = i + 1;
      step.statements = total;
      std::unique_ptr<DdlProgressWatch> watch;
      if (MayReportProgress(stmt.text)) watch = WatchStatement(*conn_, url_text_, bus_, std::move(step));
      r = conn_->Exec(stmt.text);
    }
    if (!r.ok() && a->interrupted && i == a->first && AppliedByInterruptedRun(r.status())) {
      MigrationStep e{row->version, m.up.path, m.description};
      e.message = InDoubtMessage(r.status(), i + 1, stmt.line);
      Emit("migration_resumed", e);
      r = int64_t{0};
    }
    if (!r.ok()) {
      if (plan.own_transactions) RollBackOwnTransaction(row, block_start);
      return FailApply(a, StatementError(std::move(r).TakeStatus(), m.up, stmt, i, total));
    }
    if (plan.own_transactions && !was_in_tx && conn_->InTransaction()) block_start = i;
    if (plan.own_transactions && !conn_->InTransaction()) block_start = -1;
    if (Status settled =
            engine.SettleSchema(*conn_, stmt.text, options_.schema_agreement_timeout);
        !settled.ok()) {
      // The statement ran: recorded as done, so the next run does not repeat it.
      row->statements_done = i + 1;
      return FailApply(a, std::move(settled).Prefix(fmt::format(
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
  if (!a->prepared.after_commit) {
    if (Status v = VerifyApplied(*a); !v.ok()) {
      return FailApply(a, std::move(v).Prefix("verify failed (no-transaction migration: its "
                                              "statements stay applied; 'ferry up' verifies "
                                              "again)"));
    }
  }
  row->status = a->prepared.after_commit ? HistoryStatus::kRunning : HistoryStatus::kSuccess;
  row->completed_at = History::Now();
  row->duration_ms = MsSince(a->start);
  return history->Save(*row).status();
}

// After the commit: the online blocks' backfills, then the verify queries.
Status Migrator::RunBackfills(ApplyRun* a) {
  const Migration& m = a->m;
  HistoryRow* row = a->row;
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
    return FailApply(a, std::move(s).Prefix(
        "statements committed; a backfill did not finish ('ferry up' continues it)"));
  }
  if (Status v = VerifyApplied(*a); !v.ok()) {
    return FailApply(a, std::move(v).Prefix(
        "verify failed after the backfills (the statements stay committed; fix the data, "
        "then 'ferry up' verifies again)"));
  }
  row->status = HistoryStatus::kSuccess;
  row->completed_at = History::Now();
  row->duration_ms = MsSince(a->start);
  return a->history->Save(*row).status();
}

void Migrator::RollBackOwnTransaction(HistoryRow* row, int block_start) {
  // The file's own transaction failed: roll it back (with the progress
  // marks made inside it), so the failure can be recorded and the next run
  // resumes at the statement that opened it.
  if (!conn_->InTransaction()) return;
  (void)conn_->Exec("ROLLBACK");
  if (block_start >= 0) row->statements_done = block_start;
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

}  // namespace ferry
