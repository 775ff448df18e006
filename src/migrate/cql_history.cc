#include "migrate/cql_history.h"

#include "core/numbers.h"

#include <fmt/format.h>

#include <charconv>
#include <utility>
#include <optional>

#include "core/printable.h"
#include "migrate/history.h"

namespace ferry {
namespace {

// The one partition that holds every history row.
constexpr std::string_view kPartition = "history";

constexpr std::string_view kColumns =
    "version, description, script, kind, checksum, status, started_at, completed_at, "
    "duration_ms, rows_affected, error_message, applied_by, rollback_available, "
    "statements_done, execution, note, attempts";

Value NullIfEmpty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

// Values in kColumns order, as the CQL driver reads text.
Params RowParams(const HistoryRow& r) {
  return {NullIfEmpty(r.version),
          r.description,
          r.script,
          std::string(ToText(r.kind)),
          NullIfEmpty(r.checksum),
          std::string(ToText(r.status)),
          NullIfEmpty(r.started_at),
          NullIfEmpty(r.completed_at),
          std::to_string(r.duration_ms),
          std::to_string(r.rows_affected),
          NullIfEmpty(r.error_message),
          r.applied_by,
          std::string(r.rollback_available ? "true" : "false"),
          std::to_string(r.statements_done),
          std::string(ToText(r.execution)),
          NullIfEmpty(r.note),
          std::to_string(r.attempts)};
}

}  // namespace

CqlHistory::CqlHistory(Connection* conn, std::string table)
    : conn_(conn),
      table_(std::move(table)),
      quoted_(QuoteQualified(table_)),
      meta_quoted_(QuoteQualified(table_ + "_meta")) {}

Result<bool> CqlHistory::Exists() { return conn_->traits().TableExists(*conn_, table_); }

Status CqlHistory::Ensure() {
  FERRY_ASSIGN_OR_RETURN(bool exists, Exists());
  if (exists) return CheckFormat();
  const EngineTraits& engine = conn_->traits();
  const std::string history_ddl = fmt::format(
      "CREATE TABLE IF NOT EXISTS {} (part text, id bigint, version text, description text, "
      "script text, kind text, checksum text, status text, started_at timestamp, "
      "completed_at timestamp, duration_ms bigint, rows_affected bigint, error_message text, "
      "applied_by text, rollback_available boolean, statements_done int, execution text, "
      "note text, attempts int, PRIMARY KEY ((part), id)) WITH CLUSTERING ORDER BY (id ASC)",
      quoted_);
  const std::string meta_ddl =
      fmt::format("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value text)", meta_quoted_);
  for (const std::string& ddl : {history_ddl, meta_ddl}) {
    Status s = conn_->Exec(ddl).status();
    if (s.ok()) s = engine.SettleSchema(*conn_, ddl, agreement_timeout_);
    if (!s.ok()) return std::move(s).Prefix("creating history table " + table_);
  }
  const std::string insert_meta = fmt::format(
      "INSERT INTO {} (key, value) VALUES (?, ?) IF NOT EXISTS", meta_quoted_);
  for (const auto& [key, value] :
       {std::pair<std::string, std::string>{"format_version",
                                            std::to_string(kHistoryFormatVersion)},
        {"checksum_algorithm", "sha256v1"}}) {
    Status s = conn_->Query(insert_meta, {key, value}).status();
    if (!s.ok()) return std::move(s).Prefix("writing " + table_ + "_meta");
  }
  return CheckFormat();
}

Status CqlHistory::CheckFormat() {
  auto meta = conn_->Query(fmt::format("SELECT value FROM {} WHERE key = ?", meta_quoted_),
                           {std::string("format_version")});
  if (!meta.ok()) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("table {} exists but {}_meta cannot be read ({}); is it a ferry "
                              "history table? choose another name with --history-table",
                              table_, table_, meta.status().message()));
  }
  int64_t format = 0;
  if (!meta->empty() && meta->rows[0][0]) {
    const std::string& text = *meta->rows[0][0];
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), format);
    if (ec != std::errc() || ptr != text.data() + text.size()) format = 0;
  }
  if (format < 1) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("history table {}: {}_meta holds no format version ferry wrote "
                              "(1 to {}); the history cannot be trusted. Restore the row "
                              "(INSERT INTO {}_meta (key, value) VALUES ('format_version', '1')) "
                              "if this is a ferry history, or choose another table with "
                              "--history-table",
                              table_, table_, kHistoryFormatVersion, table_));
  }
  if (format > kHistoryFormatVersion) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("history table {} has format version {}, newer than this ferry "
                              "understands ({}): upgrade ferry (this is ferry {})",
                              table_, format, kHistoryFormatVersion, FERRY_VERSION));
  }
  return Status();
}

Result<std::vector<HistoryRow>> CqlHistory::Load() {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn_->Query(fmt::format("SELECT id, {} FROM {} WHERE part = ?", kColumns, quoted_),
                   {std::string(kPartition)}));
  std::vector<HistoryRow> rows;
  rows.reserve(r.rows.size());
  for (std::vector<Value>& f : r.rows) {
    auto take = [&f](size_t col) { return f[col] ? std::move(*f[col]) : std::string(); };
    HistoryRow h;
    h.id = ColumnInt64(f[0]);
    h.version = take(1);
    h.description = take(2);
    h.script = take(3);
    std::string kind = take(4);
    h.checksum = take(5);
    std::string status = take(6);
    h.started_at = take(7);
    h.completed_at = take(8);
    h.duration_ms = ColumnInt64(f[9]);
    h.rows_affected = ColumnInt64(f[10]);
    h.error_message = take(11);
    h.applied_by = take(12);
    h.rollback_available = take(13) == "true";
    h.statements_done = static_cast<int>(ColumnInt64(f[14]));
    std::string execution = take(15);
    h.note = take(16);
    h.attempts = static_cast<int>(ColumnInt64(f[17]));
    FERRY_RETURN_IF_ERROR(SetStoredEnums(table_, status, kind, execution, h));
    rows.push_back(std::move(h));
  }
  return rows;  // clustering order: by id
}

Result<int64_t> CqlHistory::NextId() {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn_->Query(fmt::format("SELECT id FROM {} WHERE part = ? ORDER BY id DESC LIMIT 1",
                               quoted_),
                   {std::string(kPartition)}));
  return r.empty() ? 1 : ColumnInt64(r.rows[0][0]) + 1;
}

Result<int64_t> CqlHistory::Save(const HistoryRow& row) {
  int64_t id = row.id;
  if (id == 0) {
    FERRY_ASSIGN_OR_RETURN(id, NextId());
  }
  // An INSERT writes every column whether the row is new or not (CQL
  // INSERT and UPDATE are both upserts), so one statement serves both.
  std::string markers;
  for (int i = 0; i < 19; ++i) markers += i == 0 ? "?" : ", ?";
  Params params = {std::string(kPartition), std::to_string(id)};
  for (Value& v : RowParams(row)) params.push_back(std::move(v));
  FERRY_RETURN_IF_ERROR(
      conn_->Query(fmt::format("INSERT INTO {} (part, id, {}) VALUES ({})", quoted_, kColumns,
                               markers),
                   params)
          .status());
  return id;
}

Status CqlHistory::MarkProgress(int64_t id, int statements_done, int64_t rows_affected) {
  return conn_
      ->Query(fmt::format("UPDATE {} SET statements_done = ?, rows_affected = ? WHERE part = ? "
                          "AND id = ?",
                          quoted_),
              {std::to_string(statements_done), std::to_string(rows_affected),
               std::string(kPartition), std::to_string(id)})
      .status();
}

}  // namespace ferry
