#include "migrate/history.h"

#include "core/numbers.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <ctime>
#include <optional>
#include <utility>

#include "core/printable.h"
#include "migrate/cql_history.h"

namespace ferry {
namespace {

constexpr const char* kColumns =
    "version, description, script, kind, checksum, status, started_at, completed_at, "
    "duration_ms, rows_affected, error_message, applied_by, rollback_available, "
    "statements_done, execution, note, attempts";

// The stored format_version: a decimal number from 1, else nullopt.
std::optional<int64_t> FormatVersionOf(const Value& v) {
  if (!v || v->empty()) return std::nullopt;
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || ptr != v->data() + v->size() || out < 1) return std::nullopt;
  return out;
}

// "" is stored as NULL.
Value NullIfEmpty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

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
          std::string(r.rollback_available ? "1" : "0"),
          std::to_string(r.statements_done),
          std::string(ToText(r.execution)),
          NullIfEmpty(r.note),
          std::to_string(r.attempts)};
}

constexpr std::pair<HistoryStatus, std::string_view> kStatusText[] = {
    {HistoryStatus::kRunning, "running"},
    {HistoryStatus::kSuccess, "success"},
    {HistoryStatus::kFailed, "failed"},
    {HistoryStatus::kRolledBack, "rolled_back"}};
constexpr std::pair<HistoryKind, std::string_view> kKindText[] = {
    {HistoryKind::kVersioned, "versioned"},
    {HistoryKind::kRepeatable, "repeatable"},
    {HistoryKind::kBaseline, "baseline"},
    {HistoryKind::kUndo, "undo"},
    {HistoryKind::kPartition, "partition"},
    {HistoryKind::kCheckpoint, "checkpoint"},
    {HistoryKind::kAutoRollback, "auto-rollback"}};
constexpr std::pair<Execution, std::string_view> kExecutionText[] = {
    {Execution::kTransaction, "transaction"},
    {Execution::kNoTransaction, "no-transaction"},
    {Execution::kSingleTransaction, "single-transaction"},
    {Execution::kOwnTransactions, "own-transactions"}};

template <typename E, size_t N>
std::string_view TextOf(const std::pair<E, std::string_view> (&table)[N], E value) {
  for (const auto& [e, text] : table) {
    if (e == value) return text;
  }
  return "";
}

template <typename E, size_t N>
std::optional<E> ValueOf(const std::pair<E, std::string_view> (&table)[N], std::string_view text) {
  for (const auto& [e, t] : table) {
    if (t == text) return e;
  }
  return std::nullopt;
}

template <typename E, size_t N>
std::string AllTexts(const std::pair<E, std::string_view> (&table)[N]) {
  std::string out;
  for (const auto& [e, t] : table) out += (out.empty() ? "" : ", ") + std::string(t);
  return out;
}

// A stored value quoted for a message: control characters escaped, long
// values cut.
std::string Quoted(std::string_view value) {
  std::string shown = Printable(value.substr(0, 80));
  return "'" + shown + (value.size() > 80 ? "...'" : "'");
}

}  // namespace

Status SetStoredEnums(const std::string& table, std::string_view status, std::string_view kind,
                      std::string_view execution, HistoryRow& h) {
  std::optional<HistoryStatus> st = HistoryStatusFromText(status);
  std::optional<HistoryKind> k = HistoryKindFromText(kind);
  std::optional<Execution> ex = ExecutionFromText(execution);
  if (st && k && ex) {
    h.status = *st;
    h.kind = *k;
    h.execution = *ex;
    return Status();
  }
  const char* column = !st ? "status" : !k ? "kind" : "execution";
  std::string_view value = !st ? status : !k ? kind : execution;
  std::string allowed = !st ? AllTexts(kStatusText) : !k ? AllTexts(kKindText)
                                                           : AllTexts(kExecutionText);
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("history table {}: row id {} (version {}) has {} {}, which ferry "
                            "never writes ({} is one of {}); the history cannot be trusted. "
                            "Correct the row by hand (UPDATE {} SET {} = '...' WHERE id = {}), "
                            "or delete it if the migration never ran, then run 'ferry validate'",
                            table, h.id, h.version.empty() ? "none" : Printable(h.version),
                            column, Quoted(value), column, allowed, table, column, h.id))
      .With("row_id", std::to_string(h.id))
      .With("column", column);
}

std::string_view ToText(HistoryStatus status) { return TextOf(kStatusText, status); }
std::string_view ToText(HistoryKind kind) { return TextOf(kKindText, kind); }
std::string_view ToText(Execution execution) { return TextOf(kExecutionText, execution); }
bool IsOperationKind(HistoryKind k) {
  return k == HistoryKind::kUndo || k == HistoryKind::kPartition ||
         k == HistoryKind::kCheckpoint || k == HistoryKind::kAutoRollback;
}
std::optional<HistoryStatus> HistoryStatusFromText(std::string_view text) {
  return ValueOf(kStatusText, text);
}
std::optional<HistoryKind> HistoryKindFromText(std::string_view text) {
  return ValueOf(kKindText, text);
}
std::optional<Execution> ExecutionFromText(std::string_view text) {
  return ValueOf(kExecutionText, text);
}
void to_json(nlohmann::json& j, HistoryStatus v) { j = std::string(ToText(v)); }
void to_json(nlohmann::json& j, HistoryKind v) { j = std::string(ToText(v)); }
void to_json(nlohmann::json& j, Execution v) { j = std::string(ToText(v)); }

History::~History() = default;

History::History(Connection* conn, std::string table) : conn_(conn), table_(std::move(table)) {
  if (!conn_->traits().Has(Feature::kSqlTables)) cql_ = std::make_unique<CqlHistory>(conn_, table_);
  quoted_ = QuoteQualified(table_);
  meta_quoted_ = QuoteQualified(table_ + "_meta");
  std::string sets;
  int i = 1;
  std::string_view cols = kColumns;
  while (!cols.empty()) {
    size_t comma = cols.find(',');
    std::string_view col = cols.substr(0, comma);
    while (!col.empty() && col.front() == ' ') col.remove_prefix(1);
    sets += fmt::format("{}{} = ${}", sets.empty() ? "" : ", ", col, i++);
    cols = comma == std::string_view::npos ? std::string_view() : cols.substr(comma + 1);
  }
  update_sql_ = fmt::format("UPDATE {} SET {} WHERE id = ${}", quoted_, sets, i);
  std::string placeholders;
  for (int p = 1; p < i; ++p) placeholders += (p > 1 ? ", $" : "$") + std::to_string(p);
  insert_sql_ = fmt::format("INSERT INTO {} ({}) VALUES ({}) RETURNING id", quoted_, kColumns,
                            placeholders);
  // The same INSERT, also turning off the wait for the WAL flush at the
  // commit of the transaction it runs in (set_config(..., true) is SET
  // LOCAL), in one statement instead of two.
  running_insert_sql_ = fmt::format(
      "INSERT INTO {} ({}) SELECT {} FROM (SELECT set_config('synchronous_commit', 'off', true)) "
      "AS no_flush_wait RETURNING id",
      quoted_, kColumns, placeholders);
  finish_sql_ = fmt::format(
      "UPDATE {} SET status = $1, statements_done = $2, rows_affected = $3, completed_at = $4, "
      "duration_ms = $5, error_message = NULL WHERE id = $6",
      quoted_);
}

std::string History::Now() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms));
}

std::string History::Actor() {
  static const std::string kActor = [] {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  const char* user = std::getenv("USER");
  std::string name;
  if (user != nullptr && *user != '\0') {
    name = user;
  } else if (passwd* pw = getpwuid(getuid()); pw != nullptr) {
    name = pw->pw_name;
  } else {
    name = std::to_string(getuid());
  }
  return fmt::format("{}@{} pid {}", name, host, getpid());
  }();
  return kActor;
}

Result<bool> History::Exists() { return conn_->traits().TableExists(*conn_, table_); }

namespace {
Status SqlOnly(std::string_view what) {
  return Status(StatusCode::kInternal,
                fmt::format("History::{} needs an engine whose tables are SQL", what));
}
}  // namespace

Status History::Ensure() {
  if (cql_) return cql_->Ensure();
  const EngineTraits& engine = conn_->traits();
  FERRY_ASSIGN_OR_RETURN(bool exists, Exists());
  if (!exists) {
    std::string ddl = fmt::format(
        "CREATE TABLE IF NOT EXISTS {0} (\n"
        "  id {1},\n"
        "  version text,\n"
        "  description text NOT NULL,\n"
        "  script text NOT NULL,\n"
        "  kind text NOT NULL,\n"
        "  checksum text,\n"
        "  status text NOT NULL,\n"
        "  started_at {2},\n"
        "  completed_at {2},\n"
        "  duration_ms bigint NOT NULL DEFAULT 0,\n"
        "  rows_affected bigint NOT NULL DEFAULT 0,\n"
        "  error_message text,\n"
        "  applied_by text NOT NULL,\n"
        "  rollback_available {3} NOT NULL DEFAULT {4},\n"
        "  statements_done integer NOT NULL DEFAULT 0,\n"
        "  execution text NOT NULL DEFAULT 'transaction',\n"
        "  note text,\n"
        "  attempts integer NOT NULL DEFAULT 1\n"
        ");\n"
        "CREATE TABLE IF NOT EXISTS {5} (key text PRIMARY KEY, value text NOT NULL);\n"
        "INSERT INTO {5} (key, value) VALUES ('format_version', '{6}'), "
        "('checksum_algorithm', 'sha256v1') ON CONFLICT (key) DO NOTHING;\n",
        quoted_, engine.IdentityPrimaryKey(), engine.TimestampType(), engine.BooleanType(),
        engine.BooleanLiteral(false), meta_quoted_, kHistoryFormatVersion);
    // Creating in one transaction so two first runs cannot interleave.
    bool own_tx = !conn_->InTransaction();
    if (own_tx) FERRY_RETURN_IF_ERROR(conn_->Begin());
    auto r = conn_->Exec(ddl);
    if (!r.ok()) {
      if (own_tx) (void)conn_->Rollback();
      return std::move(r).TakeStatus().Prefix("creating history table " + table_);
    }
    if (own_tx) FERRY_RETURN_IF_ERROR(conn_->Commit());
    return Status();
  }
  return CheckFormat();
}

Status History::CheckFormat() {
  if (cql_) return cql_->CheckFormat();
  auto meta = conn_->Query(
      fmt::format("SELECT value FROM {} WHERE key = 'format_version'", meta_quoted_));
  if (!meta.ok()) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("table {} exists but {}_meta cannot be read ({}); is it a ferry "
                              "history table? choose another name with --history-table",
                              table_, table_, meta.status().message()));
  }
  std::optional<int64_t> parsed =
      meta->empty() ? std::nullopt : FormatVersionOf(meta->rows[0][0]);
  if (!parsed) {
    std::string found = meta->empty() ? std::string("no format_version row")
                        : !meta->rows[0][0] ? std::string("format_version NULL")
                                            : "format_version " + Quoted(*meta->rows[0][0]);
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("history table {}: {}_meta holds {}, not a format version ferry "
                              "wrote (1 to {}); the history cannot be trusted. Restore the row "
                              "(INSERT INTO {}_meta (key, value) VALUES ('format_version', '1') "
                              "or UPDATE it) if this is a ferry history, or choose another "
                              "table with --history-table",
                              table_, table_, found, kHistoryFormatVersion, table_));
  }
  int64_t format = *parsed;
  if (format > kHistoryFormatVersion) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("history table {} has format version {}, newer than this ferry "
                              "understands ({}): upgrade ferry (this is ferry {})",
                              table_, format, kHistoryFormatVersion, FERRY_VERSION));
  }
  return Status();
}

Result<std::vector<HistoryRow>> History::Load() {
  if (cql_) return cql_->Load();
  const EngineTraits& engine = conn_->traits();
  auto ts = [&engine](const char* col) { return engine.IsoTimestamp(col); };
  std::string sql = fmt::format(
      "SELECT id, version, description, script, kind, checksum, status, {}, {}, duration_ms, "
      "rows_affected, error_message, applied_by, rollback_available, statements_done, "
      "execution, note, attempts FROM {} ORDER BY id",
      ts("started_at"), ts("completed_at"), quoted_);
  FERRY_ASSIGN_OR_RETURN(QueryResult r, conn_->Query(sql));
  std::vector<HistoryRow> rows;
  rows.reserve(r.rows.size());
  for (std::vector<Value>& f : r.rows) {
    // Fields are moved out, not copied: histories can hold many thousands.
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
    std::string rb = take(13);
    h.rollback_available = rb == "t" || rb == "1" || rb == "true";
    h.statements_done = static_cast<int>(ColumnInt64(f[14]));
    std::string execution = take(15);
    h.note = take(16);
    h.attempts = static_cast<int>(ColumnInt64(f[17]));
    FERRY_RETURN_IF_ERROR(SetStoredEnums(table_, status, kind, execution, h));
    rows.push_back(std::move(h));
  }
  return rows;
}

Result<History::Probe> History::ProbePostgres(const std::vector<std::string>& extra) {
  if (cql_) return SqlOnly("ProbePostgres");
  // xmin changes with every INSERT/UPDATE of a row, the count with every
  // DELETE: the sum of hash(id, xmin) over the rows changes whenever the
  // history does. Computed by the server over (id, xmin) only, nothing sent
  // but one row. xmin is read as age('3') - age(xmin), which is xmin - 3
  // whatever the transaction counter (age() measures from one value fixed
  // for the whole statement) and costs half of xmin::text::bigint: ~1.5 ms
  // rather than ~2.5 ms for 10,000 rows.
  std::string sql = fmt::format(
      "SELECT (SELECT value FROM {meta} WHERE key = 'format_version'), "
      "(SELECT oid FROM pg_database WHERE datname = current_database()) || '/' || "
      "$1::regclass::oid || '/' || count(*) || '/' || "
      "coalesce(sum(hashint8extended(id, age('3'::xid)::bigint - age(xmin))), 0) || '/' || "
      "(SELECT count(*) || '/' || "
      "coalesce(sum(hashint8extended(0, age('3'::xid)::bigint - age(xmin))), 0) "
      "FROM {meta}){extra} FROM {table}",
      fmt::arg("meta", meta_quoted_), fmt::arg("table", quoted_),
      fmt::arg("extra", extra.empty() ? "" : ", " + fmt::format("{}", fmt::join(extra, ", "))));
  Probe probe;
  // The catalog first: a query on a missing table would leave an ERROR in
  // the server log at every `status` of a database without history.
  FERRY_ASSIGN_OR_RETURN(QueryResult found,
                         conn_->Query("SELECT to_regclass($1) IS NOT NULL, "
                                      "to_regclass($2) IS NOT NULL",
                                      {quoted_, meta_quoted_}));
  if (found.Text(0, 0) != "t") return probe;  // no history table (yet)
  probe.exists = true;
  if (found.Text(0, 1) != "t") return probe;  // format_version 0: CheckFormat() explains
  auto r = conn_->Query(sql, {quoted_});
  if (!r.ok()) return std::move(r).TakeStatus();
  probe.exists = true;
  // 0: missing or garbage; the caller then takes the full path, whose
  // CheckFormat() names the problem.
  probe.format_version = FormatVersionOf(r->rows[0][0]).value_or(0);
  probe.fingerprint = r->Text(0, 1);
  for (size_t i = 0; i < extra.size(); ++i) probe.extra.push_back(r->Text(0, 2 + i) == "t");
  return probe;
}

Result<int64_t> History::Save(const HistoryRow& row) {
  if (cql_) return cql_->Save(row);
  Params params = RowParams(row);
  if (row.id == 0) {
    FERRY_ASSIGN_OR_RETURN(QueryResult r, conn_->Query(insert_sql_, params));
    return IdOf(r);
  }
  params.push_back(std::to_string(row.id));
  FERRY_ASSIGN_OR_RETURN(QueryResult r, conn_->Query(update_sql_, params));
  (void)r;
  return row.id;
}

Connection::BatchItem History::InsertItem(const HistoryRow& row, Params* params,
                                          QueryResult* result) {
  *params = RowParams(row);
  return {running_insert_sql_, params, result, /*reuse=*/true};
}

int64_t History::IdOf(const QueryResult& inserted) {
  return inserted.rows.empty() || inserted.rows[0].empty() ? 0 : ColumnInt64(inserted.rows[0][0]);
}

Status History::FinishAndCommit(const HistoryRow& row, bool prepared) {
  if (cql_) return SqlOnly("FinishAndCommit");
  Params params = {std::string(ToText(row.status)), std::to_string(row.statements_done),
                   std::to_string(row.rows_affected), NullIfEmpty(row.completed_at),
                   std::to_string(row.duration_ms), std::to_string(row.id)};
  return conn_
      ->ExecBatch({{finish_sql_, &params, nullptr, prepared}, {"COMMIT", nullptr, nullptr, prepared}})
      .status();
}

Status History::MarkProgress(int64_t id, int statements_done, int64_t rows_affected) {
  if (cql_) return cql_->MarkProgress(id, statements_done, rows_affected);
  return conn_
      ->Query(fmt::format("UPDATE {} SET statements_done = $1, rows_affected = $2 WHERE id = $3",
                          quoted_),
              {std::to_string(statements_done), std::to_string(rows_affected), std::to_string(id)})
      .status();
}

}  // namespace ferry
