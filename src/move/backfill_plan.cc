// Batched backfills, before and after the run: the flags' values, the SQL
// fragments parsed and type-checked on the server (EXPLAIN in a rolled-back
// transaction), the batch statement's shape, the report, and the integrity
// checks at the end. See backfill.h and docs/backfill.md.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "move/backfill.h"
#include "move/backfill_internal.h"
#include "move/sql_fragment.h"
#include "move/table_info.h"

namespace ferry {
namespace {

using json = nlohmann::json;
using backfill_detail::Plan;

constexpr size_t kCheckRowsShown = 10;

// ---- Validation of the SQL fragments (before any round trip) ----

// The SET list: one UPDATE target list, no WHERE/FROM/RETURNING smuggled in.
// Returns the assigned column names.
Result<std::vector<std::string>> CheckSetList(const std::string& set) {
  FERRY_ASSIGN_OR_RETURN(json stmt,
                         ParseSqlFragment("UPDATE ferry_t SET " + set, "--set", set));
  const json* update = stmt.contains("UpdateStmt") ? &stmt["UpdateStmt"] : nullptr;
  if (update == nullptr) {
    return Status(StatusCode::kInvalidArgument, "--set must be a SET list such as \"b = a * 2\"")
        .With("fragment", Excerpt(set));
  }
  for (const char* clause : {"whereClause", "fromClause", "returningList", "withClause"}) {
    if (update->contains(clause)) {
      return Status(StatusCode::kInvalidArgument,
                    "--set must hold only the assignments (\"b = a * 2, c = lower(d)\"): put the "
                    "row condition in --where")
          .With("fragment", Excerpt(set));
    }
  }
  std::vector<std::string> targets;
  for (const json& t : update->value("targetList", json::array())) {
    if (t.contains("ResTarget")) targets.push_back(t["ResTarget"].value("name", ""));
  }
  return targets;
}

// Server-side type check: EXPLAIN (never executed) inside a transaction that
// is rolled back, under a short lock timeout.
Status ExplainChecked(Connection& conn, const std::string& sql, const Params& params,
                      std::string_view what, std::string_view fragment) {
  FERRY_RETURN_IF_ERROR(conn.Begin());
  auto set = conn.Query("SELECT set_config('lock_timeout', '5s', true)");
  Result<QueryResult> explained =
      set.ok() ? conn.Query("EXPLAIN " + sql, params) : std::move(set).TakeStatus();
  Status rolled_back = conn.Rollback();
  if (!explained.ok()) {
    Status s = std::move(explained).TakeStatus();
    if (s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kPermissionDenied ||
        s.code() == StatusCode::kDeadlineExceeded) {
      return s;
    }
    std::string sqlstate = s.Get("sqlstate");
    StatusCode code = sqlstate == "42703" || sqlstate == "42P01" || sqlstate == "42883"
                          ? StatusCode::kNotFound
                          : StatusCode::kInvalidArgument;
    if (sqlstate == "42703" || sqlstate == "42883") code = StatusCode::kInvalidArgument;
    Status out(code, fmt::format("{} does not type-check on the server: {}", what,
                                 FoldWhitespace(s.message())));
    out.Add("fragment", Excerpt(fragment));
    out.Add("sqlstate", sqlstate);
    out.Add("hint", s.Get("hint").empty()
                        ? "fix the expression; nothing was changed (checked with EXPLAIN in a "
                          "rolled-back transaction)"
                        : s.Get("hint"));
    return out;
  }
  return rolled_back;
}

}  // namespace

namespace backfill_detail {

Status CheckOptionValues(const BackfillOptions& o) {
  auto bad = [](std::string message) {
    return Status(StatusCode::kInvalidArgument, std::move(message));
  };
  if (o.table.empty()) return bad("--table is required: the table to backfill");
  if (o.set.empty()) return bad("--set is required: the assignments, e.g. --set \"b = a * 2\"");
  if (o.batch_rows < 1) return bad("--batch-rows must be at least 1");
  if (o.min_batch_rows < 1 || o.max_batch_rows < o.min_batch_rows) {
    return bad("batch limits must satisfy 1 <= min_batch_rows <= max_batch_rows");
  }
  if (o.max_batch.count() < 1) return bad("--max-batch-ms must be at least 1");
  if (o.sleep.count() < 0) return bad("--sleep must not be negative");
  if (o.workers < 1 || o.workers > 64) return bad("--workers must be between 1 and 64");
  if (o.max_attempts < 1) return bad("max_attempts must be at least 1");
  if (o.lock_timeout.count() < 0 || o.statement_timeout.count() < 0) {
    return bad("timeouts must not be negative (0 turns a timeout off)");
  }
  if (o.resume && o.restart) return bad("--resume and --restart exclude each other");
  return Status();
}

// ---- SQL shapes ----

// "(a, b) OP ($1::integer, $2::text)", appending the values to `params`.
std::string KeyCompare(const TableInfo& table, const KeyTuple& key, std::string_view op,
                       Params& params) {
  std::string cols = "(", vals = "(";
  for (size_t i = 0; i < table.primary_key.size(); ++i) {
    const ColumnInfo& c = table.columns[table.primary_key[i]];
    if (i > 0) cols += ", ", vals += ", ";
    cols += QuoteIdent(c.name);
    params.push_back(i < key.size() ? Value(key[i]) : Value());
    vals += fmt::format("${}::{}", params.size(), c.type);
  }
  return fmt::format("{}) {} {})", cols, op, vals);
}

std::string KeyOrder(const TableInfo& table, bool descending) {
  std::string out;
  for (size_t i = 0; i < table.primary_key.size(); ++i) {
    if (i > 0) out += ", ";
    out += QuoteIdent(table.columns[table.primary_key[i]].name);
    if (descending) out += " DESC";
  }
  return out;
}

// The batch UPDATE; user fragments end with a line break so that a trailing
// "-- comment" cannot swallow the key bounds.
std::string UpdateSql(const Plan& plan, const std::string& key_predicate) {
  std::string sql = fmt::format("UPDATE {} SET\n{}\nWHERE {}", plan.table.QualifiedName(),
                                plan.set, key_predicate);
  if (!plan.where.empty()) sql += fmt::format(" AND (\n{}\n)", plan.where);
  return sql;
}

bool RetryableBatchError(const Status& s) {
  const std::string state = s.Get("sqlstate");
  return state == "55P03" || state == "40001" || state == "40P01" || state == "57014" ||
         s.code() == StatusCode::kUnavailable;
}

std::string RetryReason(const Status& s) {
  const std::string state = s.Get("sqlstate");
  if (state == "55P03") return "lock timeout (a writer holds a row or table lock)";
  if (state == "40001") return "serialization failure";
  if (state == "40P01") return "deadlock";
  if (state == "57014") return "statement timeout (batch halved)";
  if (s.code() == StatusCode::kUnavailable) return "connection lost (reconnecting)";
  return s.message();
}

Result<Plan> MakePlan(Connection& conn, const BackfillOptions& options) {
  FERRY_RETURN_IF_ERROR(CheckOptionValues(options));
  if (!conn.traits().Has(Feature::kOnlineChanges)) {
    return Status(StatusCode::kUnimplemented,
                  fmt::format("backfill runs on PostgreSQL only; {} is {}", conn.redacted_url(),
                              conn.traits().name()));
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> targets, CheckSetList(options.set));
  FERRY_RETURN_IF_ERROR(CheckPgCondition("--where", options.where));
  FERRY_RETURN_IF_ERROR(CheckPgCondition("--done-check", options.done_check));
  FERRY_RETURN_IF_ERROR(CheckReadOnlyQuery("--check", options.check_query));

  Plan plan;
  FERRY_ASSIGN_OR_RETURN(plan.table, DescribeTable(conn, options.table));
  const TableInfo& t = plan.table;
  if (!t.has_primary_key()) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("table {}.{} has no primary key: ferry backfills in primary-key "
                              "batches and will not run one long UPDATE",
                              t.schema, t.name))
        .With("table", t.schema + "." + t.name)
        .With("hint", fmt::format("add one first, e.g. ALTER TABLE {} ADD PRIMARY KEY (id) (or "
                                  "build a unique index CONCURRENTLY and ADD PRIMARY KEY USING "
                                  "INDEX)",
                                  t.QualifiedName()));
  }
  for (const std::string& target : targets) {
    const ColumnInfo* c = t.Find(target);
    if (c == nullptr) {
      std::string names;
      for (const ColumnInfo& col : t.columns) names += (names.empty() ? "" : ", ") + col.name;
      return Status(StatusCode::kNotFound,
                    fmt::format("--set assigns column \"{}\", which table {}.{} does not have",
                                target, t.schema, t.name))
          .With("table", t.schema + "." + t.name)
          .With("column", target)
          .With("hint", "columns: " + names + " (add the new column first, nullable)");
    }
    if (c->pk_position > 0) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--set assigns primary-key column \"{}\" of {}.{}: batches walk "
                                "the primary key, so it cannot change under them",
                                target, t.schema, t.name))
          .With("hint", "backfill into a new column and swap keys in a migration");
    }
  }
  plan.set = options.set;
  plan.where = options.where;
  plan.not_done = options.done_check.empty() ? options.where : options.done_check;
  plan.check_query = options.check_query;

  // Conditions first (their errors are easier to read alone), then the
  // whole batch UPDATE with its key bounds.
  if (!plan.where.empty()) {
    FERRY_RETURN_IF_ERROR(ExplainChecked(
        conn, fmt::format("SELECT 1 FROM {} WHERE (\n{}\n)", t.QualifiedName(), plan.where), {},
        "--where", plan.where));
  }
  if (!options.done_check.empty()) {
    FERRY_RETURN_IF_ERROR(ExplainChecked(
        conn,
        fmt::format("SELECT 1 FROM {} WHERE (\n{}\n)", t.QualifiedName(), options.done_check), {},
        "--done-check", options.done_check));
  }
  KeyTuple sample(t.primary_key.size());
  for (size_t i = 0; i < t.primary_key.size(); ++i) sample[i] = "0";
  Params typed;
  std::string pred = KeyCompare(t, sample, ">", typed);
  pred += " AND " + KeyCompare(t, sample, "<=", typed);
  // EXPLAIN with bound parameters needs values that parse as each key type;
  // pass NULLs instead (the plan does not depend on them).
  Params nulls(typed.size());
  FERRY_RETURN_IF_ERROR(ExplainChecked(conn, UpdateSql(plan, pred), nulls, "--set", plan.set));
  if (!plan.check_query.empty()) {
    FERRY_RETURN_IF_ERROR(ExplainChecked(conn, plan.check_query, {}, "--check", plan.check_query));
  }
  return plan;
}

BackfillReport ReportFor(const Plan& plan, const BackfillOptions& options) {
  BackfillReport r;
  r.table = plan.table.schema + "." + plan.table.name;
  r.dry_run = options.dry_run;
  r.workers = options.workers;
  r.estimated_rows = std::max<int64_t>(plan.table.estimated_rows, 0);
  Params p;
  KeyTuple k(plan.table.primary_key.size());
  std::string pred = KeyCompare(plan.table, k, ">", p);
  pred += " AND " + KeyCompare(plan.table, k, "<=", p);
  r.update_sql = UpdateSql(plan, pred);
  r.remaining_condition = plan.not_done;
  r.final_batch_rows = options.batch_rows;
  return r;
}

// The report's mode and, in page mode, its batch statement.
void ShowScan(const Plan& plan, ScanMode mode, BackfillReport& report) {
  report.scan = std::string(backfill_detail::ScanModeName(mode));
  if (mode == ScanMode::kPages) report.update_sql = UpdateSql(plan, "ctid >= $4::tid AND ctid < $5::tid");
}

std::string DefaultJobId(const Plan& plan) {
  std::string basis = plan.set + "\n" + plan.where;
  return fmt::format("backfill:{}.{}:{:016x}", plan.table.schema, plan.table.name, Xxh3(basis));
}

// Integrity: rows still not done, and the user's check query.
// `known_remaining` >= 0: the not-done rows were just counted (page mode's
// count after its last pass, when --done-check is --where): not again.
Status RunChecks(Connection& conn, const Plan& plan, int64_t known_remaining,
                 BackfillReport& report) {
  FERRY_RETURN_IF_ERROR(conn.Begin());
  auto run = [&]() -> Status {
    FERRY_RETURN_IF_ERROR(conn.Query("SET TRANSACTION READ ONLY").status());
    FERRY_RETURN_IF_ERROR(conn.Query("SELECT set_config('statement_timeout', '0', true)").status());
    if (known_remaining >= 0) {
      report.remaining = known_remaining;
    } else if (!plan.not_done.empty()) {
      FERRY_ASSIGN_OR_RETURN(
          QueryResult r, conn.Query(fmt::format("SELECT count(*) FROM {} WHERE (\n{}\n)",
                                                plan.table.QualifiedName(), plan.not_done)));
      report.remaining = std::stoll(r.Text(0, 0));
    }
    if (!plan.check_query.empty()) {
      FERRY_ASSIGN_OR_RETURN(
          QueryResult r, conn.Query(fmt::format("SELECT * FROM (\n{}\n) ferry_check LIMIT {}",
                                                plan.check_query, kCheckRowsShown)));
      for (const Column& col : r.columns) report.check_columns.push_back(col.name);
      report.check_rows = std::move(r.rows);
    }
    return Status();
  };
  Status s = run();
  Status end = conn.Rollback();
  if (!s.ok()) return std::move(s).Prefix("integrity check: ");
  return end;
}

void PublishProgress(EventBus& bus, const std::string& job_id, const BackfillOptions& options,
                     const std::string& url, BackfillProgress e, int64_t scanned_now,
                     double seconds, std::string error_type) {
  e.rows_per_second = seconds > 0 ? static_cast<double>(scanned_now) / seconds : 0;
  if (e.rows_per_second > 0) {
    e.eta_seconds = static_cast<double>(std::max<int64_t>(e.estimated_rows - e.rows_scanned, 0)) /
                    e.rows_per_second;
  }
  Event event = BackfillEventOf(job_id, options.table, std::move(e));
  event.database = DatabaseLabel(url);
  event.error_type = std::move(error_type);
  bus.Publish(event);
}

}  // namespace backfill_detail


Status BackfillReport::CheckStatus() const {
  if (remaining > 0) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("integrity check failed: {} row(s) of {} still match the not-done "
                              "condition ({})",
                              remaining, table, FoldWhitespace(remaining_condition)))
        .With("job", job_id)
        .With("hint", "rows written during the backfill without the new value, or rows the SET "
                      "leaves matching the condition: run the same backfill again (it only "
                      "touches rows that still match), make the application write the new "
                      "column, or give --done-check/--check a condition that matches your intent");
  }
  if (!check_rows.empty()) {
    std::string first;
    for (size_t i = 0; i < check_rows.front().size(); ++i) {
      const Value& v = check_rows.front()[i];
      first += fmt::format("{}{}={}", i ? ", " : "", i < check_columns.size() ? check_columns[i] : "?",
                           v ? *v : "NULL");
    }
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("integrity check failed: the --check query returned {}{} row(s); "
                              "first: {}",
                              check_rows.size() >= kCheckRowsShown ? "at least " : "",
                              check_rows.size(), first))
        .With("job", job_id)
        .With("hint", "the check must return no rows; inspect the rows it returns, fix them, "
                      "and run the backfill again");
  }
  return Status();
}

}  // namespace ferry
