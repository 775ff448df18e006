// Partition maintain: runs the planned actions (partition_status.cc's
// PlanActions) under ferry's migration lock, each DDL under lock_timeout with
// bounded retries, and records each action in the history table.
//
// In:     PartitionOptions (ferry.toml's [[partitions]], the database).
// Out:    the actions done, each a "partition" history row.
// Resume: idempotent. Everything is read again from the catalog: a table
//         left by an interrupted premake is reused, an interrupted DETACH
//         ... CONCURRENTLY is finished with FINALIZE, a run that finds the
//         partitions in place does nothing.
#include <fmt/format.h>

#include <thread>

#include "core/backoff.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/url.h"
#include "migrate/history.h"
#include "migrate/lock.h"
#include "ops/partition/partition_internal.h"

namespace ferry::partition {
namespace {

bool LockFailure(const Status& s) {
  std::string state = s.Get("sqlstate");
  return state == "55P03" || state == "40P01";
}

// Runs a.sql from statement `*next` on. BEGIN ... COMMIT is one block: a
// failure inside it rolls back and leaves `*next` at its BEGIN, so a retry
// runs the block again; statements outside a block are not run twice.
// Watches the statement about to run on `conn` (observe/ddl_progress.h).
std::unique_ptr<DdlProgressWatch> Watch(Connection& conn, const PartitionAction& a,
                                        const PartitionOptions& o, int statement) {
  if (o.bus == nullptr) return nullptr;
  MigrationStep step;
  step.script = fmt::format("partition {} {}", ActionName(a.kind), a.partition);
  step.statement = statement;
  step.statements = static_cast<int>(a.sql.size());
  Event base = MigrationEventOf(std::string(kStatementProgress), std::move(step));
  base.operation = "partition";
  base.job = a.partition;
  base.database = DatabaseLabel(o.url);
  EventBus* bus = o.bus;
  return WatchDdlProgress(
      conn, Secret(o.url),
      [bus, base = std::move(base)](const DdlProgress& p) {
        bus->Publish(DdlProgressEventOf(base, p, DdlProgressText(p)));
      },
      o.progress);
}

Status RunFrom(Connection& conn, PartitionAction* a, size_t* next, const PartitionOptions& o) {
  for (size_t i = *next; i < a->sql.size(); ++i) {
    const std::string& stmt = a->sql[i];
    Status s;
    if (stmt == "BEGIN") {
      s = conn.Begin();
    } else if (stmt == "COMMIT") {
      s = conn.Commit();
    } else {
      Result<int64_t> rows = int64_t{0};
      {
        std::unique_ptr<DdlProgressWatch> watch = Watch(conn, *a, o, static_cast<int>(i) + 1);
        rows = conn.Exec(stmt);
      }
      s = rows.status();
      if (rows.ok() && stmt.starts_with("WITH moved AS")) a->rows = *rows;
    }
    if (!s.ok()) {
      if (conn.InTransaction()) (void)conn.Rollback();
      return s;
    }
    if (!conn.InTransaction()) *next = i + 1;
  }
  return Status();
}

// After a failed DETACH ... CONCURRENTLY the partition may be left "detach
// pending": then only FINALIZE completes it.
Status SwitchToFinalizeIfPending(Connection& conn, PartitionAction* a) {
  if (a->kind != ActionKind::kDetach || !a->sql[0].ends_with(" CONCURRENTLY")) return Status();
  FERRY_ASSIGN_OR_RETURN(QueryResult r,
                         conn.Query("SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = "
                                    "to_regclass($1)",
                                    {QuoteQualified(a->partition)}));
  if (!r.empty() && r.Text(0, 0) == "t") {
    std::string& sql = a->sql[0];
    sql = sql.substr(0, sql.size() - std::string(" CONCURRENTLY").size()) + " FINALIZE";
  }
  return Status();
}

Status RunWithRetries(Connection& conn, PartitionAction* a, const PartitionOptions& o) {
  size_t next = 0;
  for (int attempt = 1;; ++attempt) {
    a->attempts = attempt;
    Status s = RunFrom(conn, a, &next, o);
    if (s.ok()) return s;
    if (!LockFailure(s) || attempt > o.lock_retries) {
      if (!LockFailure(s)) return s;
      return Status(StatusCode::kDeadlineExceeded,
                    fmt::format("{} {}: no lock after {} tries (lock_timeout {} ms each): a long "
                                "transaction holds a lock on {} or its partitions; run maintain "
                                "again later, or raise lock_timeout / lock_retries",
                                ActionName(a->kind), a->partition, attempt, o.lock_timeout.count(),
                                a->table))
          .With("sqlstate", s.Get("sqlstate"))
          .With("statement", s.Get("statement"));
    }
    auto delay = RetryDelay(o.retry_delay, attempt, std::chrono::seconds(30));
    FERRY_LOG_WARN("{} {}: {}; retry {} of {} in {} ms", ActionName(a->kind), a->partition,
                   s.message(), attempt, o.lock_retries, delay.count());
    std::this_thread::sleep_for(delay);
    FERRY_RETURN_IF_ERROR(SwitchToFinalizeIfPending(conn, a));
  }
}

// archive: the partition's rows are counted, it moves to the archive schema,
// and the count there must match (else nothing more is done to it).
Status RunArchive(Connection& conn, PartitionAction* a, const PartitionOptions& o) {
  FERRY_ASSIGN_OR_RETURN(int64_t before, CountRows(conn, QuoteQualified(a->partition)));
  FERRY_RETURN_IF_ERROR(RunWithRetries(conn, a, o));
  // "ALTER TABLE x SET SCHEMA s": the table now lives in s.
  std::string schema = a->sql[0].substr(a->sql[0].rfind(" SET SCHEMA ") + 12);
  std::string name = a->partition.substr(a->partition.find('.') + 1);
  FERRY_ASSIGN_OR_RETURN(int64_t after, CountRows(conn, schema + "." + QuoteIdent(name)));
  if (after != before) {
    return Status(StatusCode::kInternal,
                  fmt::format("archive {}: {} rows before, {} in {}: kept, nothing dropped",
                              a->partition, before, after, schema));
  }
  a->rows = after;
  return Status();
}

HistoryRow RowFor(const PartitionAction& a) {
  HistoryRow row;
  row.description = a.lower.empty() ? "DEFAULT" : fmt::format("FROM {} TO {}", a.lower, a.upper);
  row.script = fmt::format("partition {} {}", ActionName(a.kind), a.partition);
  row.kind = HistoryKind::kPartition;
  row.status = HistoryStatus::kRunning;
  row.started_at = History::Now();
  row.applied_by = History::Actor();
  row.execution = Execution::kNoTransaction;
  for (const std::string& s : a.sql) row.note += (row.note.empty() ? "" : "; ") + s;
  return row;
}

Status RunAndRecord(Connection& conn, History& history, PartitionAction* a,
                    const PartitionOptions& o) {
  HistoryRow row = RowFor(*a);
  auto start = std::chrono::steady_clock::now();
  FERRY_ASSIGN_OR_RETURN(row.id, history.Save(row));
  Status s = a->kind == ActionKind::kArchive ? RunArchive(conn, a, o) : RunWithRetries(conn, a, o);
  row.completed_at = History::Now();
  row.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  row.rows_affected = a->rows;
  row.attempts = a->attempts;
  row.statements_done = static_cast<int>(a->sql.size());
  row.status = s.ok() ? HistoryStatus::kSuccess : HistoryStatus::kFailed;
  if (!s.ok()) row.error_message = s.message();
  row.note = RowFor(*a).note;  // FINALIZE may have replaced CONCURRENTLY
  Status saved = history.Save(row).status();
  FERRY_RETURN_IF_ERROR(s);
  return saved;
}

}  // namespace

std::string_view ActionName(ActionKind kind) {
  switch (kind) {
    case ActionKind::kCreateDefault:
      return "create_default";
    case ActionKind::kPremake:
      return "premake";
    case ActionKind::kAttach:
      return "attach";
    case ActionKind::kDetach:
      return "detach";
    case ActionKind::kArchive:
      return "archive";
    case ActionKind::kDrop:
      return "drop";
  }
  return "";
}

Result<MaintainReport> MaintainPartitions(const PartitionOptions& o) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                         OpenPartitionSession(o.url, o.lock_timeout));
  MaintainReport report;
  report.dry_run = o.dry_run;
  std::unique_ptr<MigrationLock> lock;
  if (!o.dry_run) {
    FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(o.url));
    FERRY_ASSIGN_OR_RETURN(
        lock, MigrationLock::Acquire(url, o.history_table, o.lock_wait, [&o](const LockHolder& h) {
          if (o.on_lock_wait) o.on_lock_wait(h.who);
        }));
  }
  // Read after the lock: a maintainer that waited sees what the other did.
  FERRY_ASSIGN_OR_RETURN(std::vector<TablePlan> plans, LoadPlans(*conn, o));
  std::vector<std::vector<PartitionAction>> planned;
  for (const TablePlan& plan : plans) {
    FERRY_ASSIGN_OR_RETURN(std::vector<PartitionAction> actions, PlanActions(*conn, plan, o.force));
    planned.push_back(std::move(actions));
  }
  if (o.dry_run) {
    for (auto& actions : planned) {
      for (PartitionAction& a : actions) report.actions.push_back(std::move(a));
    }
    return report;
  }
  History history(conn.get(), o.history_table);
  FERRY_RETURN_IF_ERROR(history.Ensure());
  for (auto& actions : planned) {
    for (PartitionAction& a : actions) {
      Status s = RunAndRecord(*conn, history, &a, o);
      if (!s.ok()) {
        return std::move(s).With("actions_done", std::to_string(report.actions.size()));
      }
      if (o.on_action) o.on_action(a);
      report.actions.push_back(std::move(a));
    }
  }
  return report;
}

}  // namespace ferry::partition
