// The history table (default ferry_schema_history) and its metadata table.
//
// One row per migration version (and per repeatable script), updated in
// place as it is applied, fails, is retried or rolled back, plus one row per
// `down` (kind "undo") so the log shows every change made. Rows are never
// deleted by ferry: `repair` marks a failed row rolled_back and notes why.
//
// Format versions: <table>_meta holds format_version (this code writes 1 and
// refuses anything newer) and checksum_algorithm ("sha256v1").
#pragma once

#include <fmt/format.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"

namespace ferry {

inline constexpr int kHistoryFormatVersion = 1;

// The values of the status, kind and execution columns, and their stored text: the
// one place that maps them. Text ferry never wrote (e.g. 'SUCCESS' typed by
// hand) maps to nullopt, and History::Load() refuses the row.
enum class HistoryStatus { kRunning, kSuccess, kFailed, kRolledBack };
// kPartition: an action of `ferry partition maintain` (ops/partition/), not
// a migration: the migration plan ignores those rows.
// kCheckpoint, kAutoRollback: `ferry up --checkpoint` took a checkpoint, and
// `--auto-rollback` restored it (or ran the downs) after a failure
// (ops/checkpoint/); not migrations either.
enum class HistoryKind {
  kVersioned,
  kRepeatable,
  kBaseline,
  kUndo,
  kPartition,
  kCheckpoint,
  kAutoRollback
};
// How a migration ran: in ferry's transaction, without one, inside the
// single transaction of `up --single-transaction`, or in the file's own
// BEGIN/COMMIT as written.
enum class Execution { kTransaction, kNoTransaction, kSingleTransaction, kOwnTransactions };
std::string_view ToText(HistoryStatus status);  // "running", "success", ...
std::string_view ToText(HistoryKind kind);  // "versioned", ..., "checkpoint", "auto-rollback"
std::string_view ToText(Execution execution);  // "transaction", "no-transaction", ...
// Rows that record something other than a migration (undo, partition,
// checkpoint, auto-rollback): the migration plan skips them.
bool IsOperationKind(HistoryKind kind);
std::optional<HistoryStatus> HistoryStatusFromText(std::string_view text);
std::optional<HistoryKind> HistoryKindFromText(std::string_view text);
std::optional<Execution> ExecutionFromText(std::string_view text);
// JSON output writes them as their stored text too (found by ADL).
void to_json(nlohmann::json& j, HistoryStatus v);
void to_json(nlohmann::json& j, HistoryKind v);
void to_json(nlohmann::json& j, Execution v);

}  // namespace ferry

// The three enums format as their stored text: fmt::format("{}", row.status).
template <>
struct fmt::formatter<ferry::HistoryStatus> : fmt::formatter<std::string_view> {
  auto format(ferry::HistoryStatus v, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(ferry::ToText(v), ctx);
  }
};
template <>
struct fmt::formatter<ferry::HistoryKind> : fmt::formatter<std::string_view> {
  auto format(ferry::HistoryKind v, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(ferry::ToText(v), ctx);
  }
};
template <>
struct fmt::formatter<ferry::Execution> : fmt::formatter<std::string_view> {
  auto format(ferry::Execution v, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(ferry::ToText(v), ctx);
  }
};

namespace ferry {

class CqlHistory;  // migrate/cql_history.h

struct HistoryRow {
  int64_t id = 0;                    // order of first application
  std::string version;               // "" for repeatable
  std::string description;
  std::string script;                // file path relative to the migrations dir
  HistoryKind kind = HistoryKind::kVersioned;
  std::string checksum;
  HistoryStatus status = HistoryStatus::kRunning;
  std::string started_at;            // ISO 8601 UTC
  std::string completed_at;
  int64_t duration_ms = 0;
  int64_t rows_affected = 0;
  std::string error_message;
  std::string applied_by;            // user@host pid N
  bool rollback_available = false;
  int statements_done = 0;           // statements committed (no-transaction files)
  Execution execution = Execution::kTransaction;
  std::string note;                  // repair reasons, --allow-unsafe, ...
  int attempts = 0;
};

// Sets row.status, kind and execution from their stored text (the columns
// as read). kFailedPrecondition, naming the row, the column and the texts
// ferry writes, when one is text ferry never wrote (shared by the history
// stores).
Status SetStoredEnums(const std::string& table, std::string_view status, std::string_view kind,
                      std::string_view execution, HistoryRow& row);

// The history of one database. On engines whose own tables are SQL
// (Feature::kSqlTables) it is written here; on the others (CQL) every call
// but the SQL-only ones below goes to CqlHistory (migrate/cql_history.h),
// chosen once by the traits in the constructor.
class History {
 public:
  // `table` may be schema-qualified ("ops.ferry_schema_history").
  History(Connection* conn, std::string table);
  ~History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  const std::string& table() const { return table_; }

  // Creates the tables when missing; refuses a newer format version.
  Status Ensure();
  // For existing tables: kFailedPrecondition unless the meta table holds a
  // format_version ferry knows (a number from 1 to kHistoryFormatVersion);
  // a missing, empty or garbage value is named with what to do.
  Status CheckFormat();
  // Whether the history table exists (no side effects).
  Result<bool> Exists();
  // All rows, ordered by id. kFailedPrecondition, naming the row, when a
  // row's status or kind is not one ferry writes (the history cannot be
  // trusted: validate fails, up refuses).
  Result<std::vector<HistoryRow>> Load();

  // The calls below are for SQL engines only (their callers ask the traits:
  // kHistoryFingerprint, kPipelining, kTransactions); elsewhere they return
  // kUnimplemented.
  // One round trip that tells whether the history changed (PostgreSQL; see
  // migrate/status_memo.h). `extra` are boolean SQL expressions evaluated in
  // the same query (e.g. MigrationLock::PgHeldCondition), answered in order.
  struct Probe {
    bool exists = false;
    int64_t format_version = 0;
    std::string fingerprint;  // database and table oids, row count, sum of hash(id, xmin)
    std::vector<bool> extra;
  };
  Result<Probe> ProbePostgres(const std::vector<std::string>& extra);

  // Inserts a row or, when `row.id` != 0, updates that row. Returns the id.
  Result<int64_t> Save(const HistoryRow& row);
  // The INSERT of a new row (no id) as a batch item, for callers that send it
  // in one round trip with what follows (PostgreSQL pipeline), inside their
  // own BEGIN ... COMMIT: that commit does not wait for the WAL flush (the
  // row only marks a migration as running; the migration's own commit
  // flushes it). `params` and `result` must outlive the batch;
  // IdOf(*result) is the new row's id.
  Connection::BatchItem InsertItem(const HistoryRow& row, Params* params, QueryResult* result);
  static int64_t IdOf(const QueryResult& inserted);
  // Records the end of the migration of row `row.id` (the fields that change
  // then: status, statements_done, rows_affected, completed_at, duration_ms;
  // error_message cleared) and commits the open transaction, in one round
  // trip where the engine allows. With `prepared` both statements run as
  // prepared statements of the session (Connection::BatchItem::reuse): pass
  // it only when nothing in the transaction could have deallocated them, or
  // be ready for SQLSTATE 26000 (the transaction is then aborted).
  Status FinishAndCommit(const HistoryRow& row, bool prepared);
  // Updates only status/progress fields of row `id`.
  Status MarkProgress(int64_t id, int statements_done, int64_t rows_affected);

  // "2026-11-21T14:53:00.123Z"
  static std::string Now();
  // "user@host pid N"
  static std::string Actor();

 private:
  Connection* conn_;
  std::string table_;
  std::unique_ptr<CqlHistory> cql_;  // engines without kSqlTables
  std::string quoted_;
  std::string meta_quoted_;
  std::string insert_sql_;
  std::string running_insert_sql_;
  std::string finish_sql_;
  std::string update_sql_;  // every column, by id
};

}  // namespace ferry
