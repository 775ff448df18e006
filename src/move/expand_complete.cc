// Expand/contract, the contract phase (`ferry complete`): every check first
// (backfill finished, no NULLs where NOT NULL is wanted), then NOT NULL by a
// validated CHECK, then the trigger, function and old columns dropped and
// the new ones renamed, each step under lock_timeout with retries.
#include <fmt/format.h>

#include <chrono>
#include <thread>
#include <utility>

#include "core/backoff.h"
#include "core/url.h"
#include "drivers/registry.h"
#include "migrate/history.h"
#include "migrate/lock.h"
#include "move/expand.h"
#include "move/expand_internal.h"
#include "move/table_info.h"

namespace ferry {

using namespace expand_internal;

namespace {

// The changes to contract: those expanded (of options.version when set);
// refused while one of them has not finished its backfill.
Result<std::vector<ExpandState>> ChangesToComplete(Connection& conn,
                                                   const CompleteOptions& options) {
  FERRY_ASSIGN_OR_RETURN(std::vector<ExpandState> states, ListExpandStates(conn));
  std::vector<ExpandState> todo;
  for (ExpandState& st : states) {
    if (!options.version.empty() && st.version != options.version) continue;
    if (st.phase == "expanding") {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("the change on {} (version {}: {}) has not finished its backfill: "
                                "run 'ferry up' to continue it, then 'ferry complete'",
                                st.table, st.version, st.summary));
    }
    if (st.phase == "expanded") todo.push_back(std::move(st));
  }
  if (todo.empty()) {
    return Status(StatusCode::kNotFound,
                  options.version.empty()
                      ? std::string("no expand change awaits complete (see 'ferry status')")
                      : fmt::format("no expand change of version {} awaits complete (see 'ferry "
                                    "status')",
                                    options.version));
  }
  return todo;
}

// Refuses a change whose backfill left rows undone, or whose NOT NULL
// columns still hold NULLs.
Status CheckComplete(Connection& conn, const ExpandState& st, const ExpandSpec& spec) {
  std::string where = BackfillWhere(spec);
  if (!where.empty()) {
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r, conn.Query(fmt::format("SELECT count(*) FROM {} WHERE {}",
                                              spec.Qualified(), where)));
    if (r.Text(0, 0) != "0") {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{} has {} row(s) the backfill has not filled ({}): run 'ferry "
                                "up' again, or check the trigger; nothing was changed",
                                st.table, r.Text(0, 0), FoldWhitespace(where)));
    }
  }
  auto null_check = [&](const std::string& physical, const std::string& name) -> Status {
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r, conn.Query(fmt::format("SELECT count(*) FROM {} WHERE {} IS NULL",
                                              spec.Qualified(), QuoteIdent(physical))));
    if (r.Text(0, 0) != "0") {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("cannot make {}.{} NOT NULL: {} row(s) hold NULL. Give the "
                                "column an 'up {} = coalesce(...)' in a new expand, or fix "
                                "those rows; nothing was changed",
                                st.table, name, r.Text(0, 0), name));
    }
    return Status();
  };
  for (const ExpandAdded& a : spec.added) {
    if (a.not_null) FERRY_RETURN_IF_ERROR(null_check(a.physical, a.name));
  }
  for (const ExpandNotNull& n : spec.not_null) FERRY_RETURN_IF_ERROR(null_check(n.name, n.name));
  return Status();
}

// Runs DDL for the contract phase and lists it in the result.
struct ContractRun {
  Connection& conn;
  const CompleteOptions& options;
  const StepPublisher& progress;
  CompleteResult* result;

  // Runs `statements` in one transaction under lock_timeout, retrying a
  // lock timeout with jittered back-off (writers never queue behind a long
  // wait).
  Status Run(const std::vector<std::string>& statements, bool transaction) {
    for (const std::string& st : statements) result->statements.push_back(st);
    if (options.dry_run) return Status();
    for (int attempt = 1;; ++attempt) {
      std::vector<std::string> all;
      if (transaction) all.push_back("BEGIN");
      all.push_back(fmt::format("SET {}lock_timeout = {}", transaction ? "LOCAL " : "",
                                PgLiteral(options.lock_timeout)));
      for (const std::string& st : statements) all.push_back(st);
      if (transaction) all.push_back("COMMIT");
      std::vector<Connection::BatchItem> batch;
      for (const std::string& st : all) batch.push_back({st, nullptr});
      auto ran = conn.ExecBatch(batch);
      if (ran.ok()) {
        if (!transaction) (void)conn.Exec("RESET lock_timeout");
        return Status();
      }
      if (transaction) (void)conn.Rollback();
      Status s = std::move(ran).TakeStatus();
      if (s.Get("sqlstate") != "55P03" || attempt > options.lock_retries) return s;
      const auto delay =
          RetryDelay(std::chrono::milliseconds(200), attempt, std::chrono::milliseconds(12800));
      if (progress) {
        progress("lock_retry", fmt::format("lock_timeout hit; retry {} of {} in {} ms", attempt,
                                           options.lock_retries, delay.count()));
      }
      std::this_thread::sleep_for(delay);
    }
  }
};

using NotNullChecks = std::vector<std::pair<std::string, std::string>>;  // constraint, column

// NOT NULL without a long lock: CHECK ... NOT VALID (brief lock), then
// VALIDATE (reads the table; writers go on), then SET NOT NULL uses the
// valid CHECK and skips the scan (ContractStatements).
Result<NotNullChecks> AddNotNullChecks(ContractRun& run, const ExpandSpec& spec) {
  NotNullChecks checks;  // constraint, physical column
  for (const ExpandAdded& a : spec.added) {
    if (a.not_null) checks.emplace_back(ObjectName("ferry_nn", spec.version, a.name), a.physical);
  }
  for (const ExpandNotNull& n : spec.not_null) {
    checks.emplace_back(ObjectName("ferry_nn", spec.version, n.name), n.name);
  }
  for (const auto& [constraint, column] : checks) {
    bool exists = false;
    if (!run.options.dry_run) {
      FERRY_ASSIGN_OR_RETURN(
          QueryResult r,
          run.conn.Query("SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2",
                         {Value(spec.Qualified()), Value(constraint)}));
      exists = !r.rows.empty();
    }
    if (!exists) {
      FERRY_RETURN_IF_ERROR(run.Run({fmt::format("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IS "
                                                 "NOT NULL) NOT VALID",
                                                 spec.Qualified(), QuoteIdent(constraint),
                                                 QuoteIdent(column))},
                                    false));
    }
    FERRY_RETURN_IF_ERROR(run.Run({fmt::format("ALTER TABLE {} VALIDATE CONSTRAINT {}",
                                               spec.Qualified(), QuoteIdent(constraint))},
                                  false));
  }
  return checks;
}

// The contract step, in one transaction: trigger and function dropped, old
// columns dropped, new ones renamed, NOT NULL set, the state row completed.
std::vector<std::string> ContractStatements(const ExpandSpec& spec, const ExpandState& st,
                                            const NotNullChecks& checks) {
  std::vector<std::string> contract;
  contract.push_back(fmt::format("DROP TRIGGER IF EXISTS {} ON {}", QuoteIdent(spec.trigger),
                                 spec.Qualified()));
  contract.push_back(fmt::format("DROP FUNCTION IF EXISTS {}.{}()", QuoteIdent(spec.schema),
                                 QuoteIdent(spec.function)));
  for (const ExpandReplaced& r : spec.replaced) {
    contract.push_back(
        fmt::format("ALTER TABLE {} DROP COLUMN {}", spec.Qualified(), QuoteIdent(r.name)));
  }
  for (const ExpandAdded& a : spec.added) {
    if (a.physical != a.name) {
      contract.push_back(fmt::format("ALTER TABLE {} RENAME COLUMN {} TO {}", spec.Qualified(),
                                     QuoteIdent(a.physical), QuoteIdent(a.name)));
    }
  }
  for (const auto& [constraint, column] : checks) {
    std::string final_name = column;
    for (const ExpandAdded& a : spec.added) {
      if (a.physical == column) final_name = a.name;
    }
    contract.push_back(fmt::format("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
                                   spec.Qualified(), QuoteIdent(final_name)));
    contract.push_back(fmt::format("ALTER TABLE {} DROP CONSTRAINT {}", spec.Qualified(),
                                   QuoteIdent(constraint)));
  }
  contract.push_back(fmt::format("UPDATE {} SET phase = 'completed', updated_at = now() WHERE "
                                 "version = {} AND table_name = {}",
                                 kStateTable, PgLiteral(st.version), PgLiteral(st.table)));
  return contract;
}

// The history row of the migration says what happened to its change.
void NoteCompleted(Connection& conn, const std::string& history_table, const ExpandState& st) {
  History history(&conn, history_table);
  auto rows = history.Load();
  if (!rows.ok()) return;
  for (auto it = rows->rbegin(); it != rows->rend(); ++it) {
    if (it->version != st.version || it->kind != HistoryKind::kVersioned) continue;
    HistoryRow row = *it;
    row.note = (row.note.empty() ? "" : row.note + "; ") +
               fmt::format("expand on {} completed by {} at {}", st.table, History::Actor(),
                           History::Now());
    (void)history.Save(row);
    break;
  }
}

}  // namespace

Result<CompleteResult> CompleteExpand(const CompleteOptions& options, EventBus* bus) {
  StepPublisher progress(bus);
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(options.url));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenConnection(url));
  if (!conn->traits().Has(Feature::kOnlineChanges)) {
    return Status(StatusCode::kUnimplemented, "expand/contract needs PostgreSQL");
  }
  std::unique_ptr<MigrationLock> lock;
  if (!options.dry_run) {
    FERRY_ASSIGN_OR_RETURN(lock, MigrationLock::Acquire(url, options.history_table,
                                                        options.lock_wait, [&](const LockHolder& h) {
                                                          if (progress) {
                                                            progress("lock_wait",
                                                                     "waiting for the migration "
                                                                     "lock held by " + h.who);
                                                          }
                                                        }));
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<ExpandState> todo, ChangesToComplete(*conn, options));
  CompleteResult result;
  // Every check first: nothing changes when one fails.
  std::vector<ExpandSpec> specs;
  for (const ExpandState& st : todo) {
    FERRY_ASSIGN_OR_RETURN(ExpandSpec spec, ExpandSpec::FromJson(st.spec));
    FERRY_RETURN_IF_ERROR(CheckComplete(*conn, st, spec));
    specs.push_back(std::move(spec));
  }
  ContractRun run{*conn, options, progress, &result};
  for (size_t i = 0; i < specs.size(); ++i) {
    const ExpandSpec& spec = specs[i];
    const ExpandState& st = todo[i];
    FERRY_ASSIGN_OR_RETURN(NotNullChecks checks, AddNotNullChecks(run, spec));
    FERRY_RETURN_IF_ERROR(run.Run(ContractStatements(spec, st, checks), true)
                              .Prefix(fmt::format("completing {}", st.table)));
    if (!options.dry_run) {
      NoteCompleted(*conn, options.history_table, st);
      if (progress) progress("expand_completed", fmt::format("{}: completed ({})", st.table, st.summary));
    }
    result.completed.push_back(st);
  }
  return result;
}

}  // namespace ferry
