// Online conversion runner: walks the phases of partition_convert.h, each
// one or more short transactions that also record the phase reached in
// ferry_partition_conversions.
//
// In:     ConvertOptions (the [[partitions]] declaration, the database).
// Out:    the table partitioned, the original kept as <table>_ferry_old, a
//         "partition" row in the history table.
// Resume: the control row says which phase was reached; the copy restarts
//         after the last key of the last committed batch (ON CONFLICT DO
//         NOTHING covers rows the triggers wrote meanwhile).
#include "ops/partition/partition_convert.h"

#include <fmt/format.h>

#include <array>
#include <thread>

#include "core/backoff.h"
#include "core/url.h"
#include "migrate/history.h"
#include "migrate/lock.h"
#include "ops/partition/partition_catalog.h"
#include "ops/partition/partition_convert_internal.h"

namespace ferry::partition {
namespace {

constexpr std::array<std::pair<ConvertPhase, std::string_view>, 7> kPhaseNames = {{
    {ConvertPhase::kShadowCreated, "shadow_created"},
    {ConvertPhase::kTriggersInstalled, "triggers_installed"},
    {ConvertPhase::kCopying, "copying"},
    {ConvertPhase::kVerified, "verified"},
    {ConvertPhase::kSwapped, "swapped"},
    {ConvertPhase::kDone, "done"},
    {ConvertPhase::kAborted, "aborted"},
}};

void Emit(const ConvertOptions& o, std::string type, std::string message, int64_t rows = 0) {
  if (o.bus == nullptr) return;
  Event e = StepEvent(EventKind::kExpand, std::move(type), std::move(message));
  e.operation = "partition_convert";  // an online table change, like expand/contract
  e.job = o.table;
  e.database = DatabaseLabel(o.url);
  e.rows = rows;
  o.bus->Publish(e);
}

bool LockFailure(const Status& s) {
  std::string state = s.Get("sqlstate");
  return state == "55P03" || state == "40P01";
}

// Runs `body` in one transaction; a lock failure (lock_timeout, deadlock)
// rolls back and retries with backoff, at most o.lock_retries more times.
// `attempts` (optional) receives the tries it took.
Status InTransaction(Connection& conn, const ConvertOptions& o, const std::string& what,
                     const std::function<Status()>& body, int* attempts = nullptr) {
  for (int attempt = 1;; ++attempt) {
    if (attempts != nullptr) *attempts = attempt;
    Status s = conn.Begin();
    if (s.ok()) {
      s = conn.Exec(fmt::format("SET LOCAL lock_timeout = '{}ms'", o.lock_timeout.count()))
              .status();
    }
    if (s.ok()) s = body();
    if (s.ok()) s = conn.Commit();
    if (s.ok()) return s;
    if (conn.InTransaction()) (void)conn.Rollback();
    if (!LockFailure(s)) return s;
    if (attempt > o.lock_retries) {
      return Status(StatusCode::kDeadlineExceeded,
                    fmt::format("{} of {}: no lock after {} tries (lock_timeout {} ms each): a "
                                "long transaction holds a lock on it; run the command again "
                                "later (it resumes), or raise lock_timeout / lock_retries",
                                what, o.table, attempt, o.lock_timeout.count()))
          .With("sqlstate", s.Get("sqlstate"));
    }
    auto delay = RetryDelay(o.retry_delay, attempt, std::chrono::seconds(30));
    Emit(o, "convert_lock_retry",
         fmt::format("{}: {}; retry {} of {} in {} ms", what, s.message(), attempt,
                     o.lock_retries, delay.count()));
    std::this_thread::sleep_for(delay);
  }
}

Status ExecAll(Connection& conn, const std::vector<std::string>& sql) {
  for (const std::string& s : sql) FERRY_RETURN_IF_ERROR(conn.Exec(s).status());
  return Status();
}

Status SetPhase(Connection& conn, const ResolvedTable& t, ConvertPhase phase) {
  return conn
      .Query(fmt::format("UPDATE {} SET phase = $2, updated_at = now() WHERE table_name = $1",
                         ControlTable(t.schema)),
             {t.schema + "." + t.name, std::string(ConvertPhaseName(phase))})
      .status();
}

std::string Normal(const std::string& table) {
  return table.find('.') == std::string::npos ? "public." + table : table;
}

Result<PartitionSpec> FindSpec(const ConvertOptions& o) {
  FERRY_ASSIGN_OR_RETURN(std::vector<PartitionSpec> specs, LoadPartitionSpecs(o.config_file));
  for (PartitionSpec& s : specs) {
    if (Normal(s.table) == Normal(o.table)) return std::move(s);
  }
  return Status(StatusCode::kNotFound,
                fmt::format("table {} is not declared in {}: add a [[partitions]] entry for it "
                            "(table, column, interval; see docs/partitions.md)",
                            o.table, o.config_file.empty() ? "ferry.toml (none found)"
                                                           : o.config_file));
}

// Phase 1: the shadow, its partitions and the control row, in one transaction.
Status CreateShadow(Connection& conn, const ConvertOptions& o, const ResolvedTable& rt,
                    const SourceTable& t, const std::vector<std::string>& shadow_sql) {
  FERRY_ASSIGN_OR_RETURN(Relation leftover, FindRelation(conn, t.schema, ShadowName(t.name)));
  if (leftover.exists) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{}.{} exists but no conversion of {} is recorded: it is not "
                              "ferry's to reuse; drop or rename it, then run again",
                              t.schema, ShadowName(t.name), o.table));
  }
  FERRY_RETURN_IF_ERROR(EnsureControl(conn, t.schema));
  return InTransaction(conn, o, "create shadow", [&]() -> Status {
    FERRY_RETURN_IF_ERROR(ExecAll(conn, shadow_sql));
    return conn
        .Query(fmt::format("INSERT INTO {} (table_name, column_name, phase) VALUES ($1, $2, "
                           "'shadow_created')",
                           ControlTable(t.schema)),
               {rt.schema + "." + rt.name, t.column})
        .status();
  });
}

// Phase 3: batches in key order from the last checkpoint.
Status CopyRows(Connection& conn, const ConvertOptions& o, const ResolvedTable& rt,
                const SourceTable& t, ControlRow* row) {
  Emit(o, row->last_key.empty() ? "convert_copy_started" : "convert_copy_resumed",
       fmt::format("copying {} in batches of {} rows", o.table, o.batch_rows), row->rows_copied);
  for (;;) {
    bool first = row->last_key.empty();
    Params lower(row->last_key.begin(), row->last_key.end());
    int64_t copied = 0;
    bool finished = false;
    std::vector<std::string> upper;
    if (Status tx = InTransaction(conn, o, "copy batch", [&]() -> Status {
      upper.clear();
      FERRY_ASSIGN_OR_RETURN(QueryResult next,
                             conn.Query(NextKeySql(t, first, o.batch_rows), lower));
      if (next.empty()) {
        finished = true;
        return SetPhase(conn, rt, ConvertPhase::kCopying);
      }
      Params params = lower;
      for (size_t i = 0; i < t.pk.size(); ++i) {
        upper.push_back(next.Text(0, i));
        params.push_back(next.Text(0, i));
      }
      FERRY_ASSIGN_OR_RETURN(QueryResult ins, conn.Query(CopyBatchSql(t, first), params));
      copied = ins.rows_affected;
      std::string array;
      Params checkpoint = {rt.schema + "." + rt.name, std::to_string(copied)};
      for (size_t i = 0; i < upper.size(); ++i) {
        array += fmt::format("{}${}", i == 0 ? "" : ", ", i + 3);
        checkpoint.push_back(upper[i]);
      }
      return conn
          .Query(fmt::format("UPDATE {} SET phase = 'copying', last_key = ARRAY[{}]::text[], "
                             "rows_copied = rows_copied + $2::bigint, updated_at = now() WHERE "
                             "table_name = $1",
                             ControlTable(t.schema), array),
                 checkpoint)
          .status();
    }); !tx.ok()) return tx;
    if (finished) break;
    row->last_key = upper;
    row->rows_copied += copied;
    Emit(o, "convert_batch", fmt::format("copied up to key ({})", fmt::join(upper, ", ")), copied);
  }
  Emit(o, "convert_copy_done", fmt::format("{} row(s) copied", row->rows_copied), row->rows_copied);
  return Status();
}

// Phase 4: per key range, count and hash of both tables in one snapshot.
Status VerifyRows(Connection& conn, const ConvertOptions& o, const SourceTable& t,
                  ControlRow* row) {
  std::string original = QuoteIdent(t.schema) + "." + QuoteIdent(t.name);
  std::string shadow = QuoteIdent(t.schema) + "." + QuoteIdent(ShadowName(t.name));
  std::vector<std::string> lower;
  int64_t rows = 0;
  for (;;) {
    bool first = lower.empty();
    Params params(lower.begin(), lower.end());
    FERRY_ASSIGN_OR_RETURN(QueryResult next,
                           conn.Query(NextKeySql(t, first, o.batch_rows * 4), params));
    bool last = next.empty();
    std::vector<std::string> upper;
    for (size_t i = 0; !last && i < t.pk.size(); ++i) {
      upper.push_back(next.Text(0, i));
      params.push_back(next.Text(0, i));
    }
    QueryResult a, b;
    if (Status tx = InTransaction(conn, o, "verify", [&]() -> Status {
      FERRY_RETURN_IF_ERROR(conn.Exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").status());
      FERRY_ASSIGN_OR_RETURN(a, conn.Query(RangeDigestSql(t, original, first, last), params));
      FERRY_ASSIGN_OR_RETURN(b, conn.Query(RangeDigestSql(t, shadow, first, last), params));
      return Status();
    }); !tx.ok()) return tx;
    if (a.Text(0, 0) != b.Text(0, 0) || a.Text(0, 1) != b.Text(0, 1)) {
      return Status(StatusCode::kInternal,
                    fmt::format("verify of {}: keys after ({}) up to ({}) differ: {} row(s) in "
                                "the original, {} in the shadow (or their hashes differ); nothing "
                                "was swapped: run 'ferry partition abort {}' and report this",
                                o.table, fmt::join(lower, ", "),
                                last ? "the end" : fmt::format("{}", fmt::join(upper, ", ")),
                                a.Text(0, 0), b.Text(0, 0), o.table));
    }
    rows += std::stoll(a.Text(0, 0));
    if (last) break;
    lower = upper;
  }
  row->rows_verified = rows;
  Emit(o, "convert_verify_done", fmt::format("{} row(s) equal in both tables", rows), rows);
  return Status();
}

// The plan of a fresh conversion, for --dry-run.
std::vector<std::string> PlanSql(const SourceTable& t, std::vector<std::string> shadow_sql) {
  std::vector<std::string> out = {"-- 1. shadow table and its partitions (one transaction)"};
  for (std::string& s : shadow_sql) out.push_back(std::move(s));
  out.push_back("-- 2. triggers keeping the shadow in step (one transaction)");
  for (std::string& s : TriggerSql(t)) out.push_back(std::move(s));
  out.push_back("-- 3. batches in key order, each its own transaction ($ = the batch's keys)");
  out.push_back(CopyBatchSql(t, false));
  out.push_back("-- 4. verify: per key range, in one snapshot, on both tables");
  out.push_back(RangeDigestSql(t, QuoteIdent(t.schema) + "." + QuoteIdent(t.name), false, false));
  out.push_back("-- 5. swap (one transaction, SET LOCAL lock_timeout, retried)");
  for (std::string& s : SwapSql(t)) out.push_back(std::move(s));
  return out;
}

Status NotThere(const PartitionSpec& spec) {
  return Status(StatusCode::kNotFound,
                fmt::format("{}: table {} does not exist, and ferry.toml declares no columns to "
                            "build it from: create it in a migration (CREATE TABLE {} (..., "
                            "PRIMARY KEY (id, {})) PARTITION BY RANGE ({})), then run 'ferry "
                            "partition maintain' to make its partitions",
                            spec.origin, spec.table, spec.table, spec.column, spec.column));
}

HistoryRow HistoryFor(const ConvertOptions& o, const PartitionSpec& spec, const ControlRow& row) {
  HistoryRow h;
  h.description = fmt::format("convert to RANGE ({}) interval {}", spec.column,
                              IntervalText(spec.interval));
  h.script = fmt::format("partition convert {}", Normal(o.table));
  h.kind = HistoryKind::kPartition;
  h.status = HistoryStatus::kSuccess;
  h.started_at = History::Now();
  h.completed_at = h.started_at;
  h.applied_by = History::Actor();
  h.execution = Execution::kNoTransaction;
  h.rows_affected = row.rows_copied;
  h.note = fmt::format("original kept as {}", OldName(Normal(o.table).substr(
                                                  Normal(o.table).find('.') + 1)));
  return h;
}

}  // namespace

std::string_view ConvertPhaseName(ConvertPhase phase) {
  for (const auto& [p, name] : kPhaseNames) {
    if (p == phase) return name;
  }
  return "none";
}

ConvertPhase ConvertPhaseFromName(std::string_view name) {
  for (const auto& [p, text] : kPhaseNames) {
    if (text == name) return p;
  }
  return ConvertPhase::kNone;
}


namespace {

// Phases 2 to 6 from wherever `row` stands.
Status RunPhases(Connection& conn, const ConvertOptions& o, const PartitionSpec& spec,
                 const ResolvedTable& rt, const SourceTable& t, ControlRow& row,
                 ConvertReport& report) {
  if (row.phase == ConvertPhase::kShadowCreated) {
    if (Status tx = InTransaction(conn, o, "install triggers", [&]() -> Status {
      FERRY_RETURN_IF_ERROR(ExecAll(conn, TriggerSql(t)));
      return SetPhase(conn, rt, ConvertPhase::kTriggersInstalled);
    }); !tx.ok()) return tx;
    row.phase = ConvertPhase::kTriggersInstalled;
    Emit(o, "convert_phase", "triggers installed");
  }
  if (row.phase == ConvertPhase::kTriggersInstalled || row.phase == ConvertPhase::kCopying) {
    FERRY_RETURN_IF_ERROR(CopyRows(conn, o, rt, t, &row));
    FERRY_RETURN_IF_ERROR(VerifyRows(conn, o, t, &row));
    FERRY_RETURN_IF_ERROR(
        conn.Query(fmt::format("UPDATE {} SET phase = 'verified', rows_verified = $2::bigint, "
                               "updated_at = now() WHERE table_name = $1",
                               ControlTable(rt.schema)),
                   {rt.schema + "." + rt.name, std::to_string(row.rows_verified)})
            .status());
    row.phase = ConvertPhase::kVerified;
  }
  if (row.phase == ConvertPhase::kVerified) {
    if (Status tx = InTransaction(
        conn, o, "swap",
        [&]() -> Status {
          FERRY_RETURN_IF_ERROR(ExecAll(conn, SwapSql(t)));
          return SetPhase(conn, rt, ConvertPhase::kSwapped);
        },
        &report.swap_attempts); !tx.ok()) return tx;
    row.phase = ConvertPhase::kSwapped;
    Emit(o, "convert_phase", fmt::format("swapped after {} attempt(s)", report.swap_attempts));
  }
  if (row.phase == ConvertPhase::kSwapped) {
    History history(&conn, o.history_table);
    FERRY_RETURN_IF_ERROR(history.Ensure());
    FERRY_RETURN_IF_ERROR(history.Save(HistoryFor(o, spec, row)).status());
    if (o.drop_old) {
      if (Status tx = InTransaction(conn, o, "drop old table", [&]() -> Status {
        return conn
            .Exec(fmt::format("DROP TABLE IF EXISTS {}.{}", QuoteIdent(rt.schema),
                              QuoteIdent(OldName(rt.name))))
            .status();
      }); !tx.ok()) return tx;
      report.old_table.clear();
    }
    FERRY_RETURN_IF_ERROR(SetPhase(conn, rt, ConvertPhase::kDone));
    row.phase = ConvertPhase::kDone;
  }
  return Status();
}

}  // namespace

Result<ConvertReport> ConvertToPartitioned(const ConvertOptions& o) {
  if (o.batch_rows < 1) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--batch-rows {} must be at least 1", o.batch_rows));
  }
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                         OpenPartitionSession(o.url, o.lock_timeout));
  FERRY_ASSIGN_OR_RETURN(PartitionSpec spec, FindSpec(o));
  std::unique_ptr<MigrationLock> lock;
  if (!o.dry_run) {
    FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(o.url));
    FERRY_ASSIGN_OR_RETURN(lock, MigrationLock::Acquire(url, o.history_table, o.lock_wait,
                                                        [&o](const LockHolder& h) {
                                                          Emit(o, "convert_lock_wait",
                                                               "ferry's migration lock is held "
                                                               "by " + h.who);
                                                        }));
  }
  FERRY_ASSIGN_OR_RETURN(ResolvedTable rt, ResolveTable(*conn, spec.table));
  if (!rt.exists) return NotThere(spec);
  FERRY_ASSIGN_OR_RETURN(ControlRow row, ReadControl(*conn, rt));
  ConvertReport report;
  report.table = rt.schema + "." + rt.name;
  report.column = spec.column;
  report.dry_run = o.dry_run;
  report.resumed = row.phase != ConvertPhase::kNone;
  report.shadow = rt.schema + "." + ShadowName(rt.name);
  report.old_table = rt.schema + "." + OldName(rt.name);
  report.rows_copied = row.rows_copied;
  report.phase = row.phase;
  if ((row.phase == ConvertPhase::kNone && rt.relkind == 'p') || row.phase == ConvertPhase::kDone) {
    report.already_partitioned = true;
    if (row.phase == ConvertPhase::kNone) report.old_table.clear();
    return report;
  }
  SourceTable t;
  t.schema = rt.schema;
  t.name = rt.name;
  if (row.phase < ConvertPhase::kSwapped) {
    FERRY_ASSIGN_OR_RETURN(t, ReadSource(*conn, rt, spec));
  }
  if (row.phase == ConvertPhase::kNone) {
    FERRY_ASSIGN_OR_RETURN(std::vector<Range> ranges, ShadowRanges(*conn, t, spec, o.now));
    for (const Range& r : ranges) report.partitions.push_back(ChildName(t.name, spec.interval, r));
    std::vector<std::string> shadow_sql =
        ShadowSql(t, spec.interval, ranges, spec.default_partition);
    if (o.dry_run) {
      report.sql = PlanSql(t, std::move(shadow_sql));
      return report;
    }
    FERRY_RETURN_IF_ERROR(CreateShadow(*conn, o, rt, t, shadow_sql));
    row.phase = ConvertPhase::kShadowCreated;
    Emit(o, "convert_started",
         fmt::format("shadow {} created with {} partition(s)", report.shadow, ranges.size()));
  } else if (o.dry_run) {
    report.sql = {fmt::format("-- a conversion of {} is at phase {}: a run resumes there",
                              report.table, ConvertPhaseName(row.phase))};
    return report;
  }
  Status s = RunPhases(*conn, o, spec, rt, t, row, report);
  report.phase = row.phase;
  report.rows_copied = row.rows_copied;
  report.rows_verified = row.rows_verified;
  if (!s.ok()) return std::move(s).With("phase", std::string(ConvertPhaseName(row.phase)));
  Emit(o, "convert_done", fmt::format("{} is partitioned by RANGE ({})", report.table, spec.column),
       row.rows_copied);
  return report;
}

Result<AbortReport> AbortConversion(const ConvertOptions& o) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                         OpenPartitionSession(o.url, o.lock_timeout));
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(o.url));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<MigrationLock> lock,
                         MigrationLock::Acquire(url, o.history_table, o.lock_wait, nullptr));
  FERRY_ASSIGN_OR_RETURN(ResolvedTable rt, ResolveTable(*conn, o.table));
  if (!rt.exists) {
    return Status(StatusCode::kNotFound, fmt::format("table {} does not exist", o.table));
  }
  FERRY_ASSIGN_OR_RETURN(ControlRow row, ReadControl(*conn, rt));
  AbortReport report;
  report.table = rt.schema + "." + rt.name;
  report.phase_found = row.phase;
  if (row.phase == ConvertPhase::kNone) {
    return Status(StatusCode::kNotFound,
                  fmt::format("no conversion of {} is recorded: nothing to abort", report.table));
  }
  if (row.phase == ConvertPhase::kSwapped || row.phase == ConvertPhase::kDone) {
    return Status(
        StatusCode::kFailedPrecondition,
        fmt::format("the conversion of {} was already swapped: {} is the partitioned table now "
                    "and the original is {}.{} (unless dropped). ferry does not swap back, since "
                    "rows written after the swap are only in the new table; to go back by hand, "
                    "copy those rows into {}.{}, then rename the tables in one transaction",
                    report.table, report.table, rt.schema, OldName(rt.name), rt.schema,
                    OldName(rt.name)));
  }
  SourceTable t;
  t.schema = rt.schema;
  t.name = rt.name;
  if (Status tx = InTransaction(*conn, o, "abort", [&]() -> Status {
    FERRY_RETURN_IF_ERROR(ExecAll(*conn, DropTriggerSql(t)));
    std::string shadow = QuoteIdent(t.schema) + "." + QuoteIdent(ShadowName(t.name));
    FERRY_RETURN_IF_ERROR(conn->Exec("DROP TABLE IF EXISTS " + shadow).status());
    return conn
        ->Query(fmt::format("DELETE FROM {} WHERE table_name = $1", ControlTable(t.schema)),
                {report.table})
        .status();
  }); !tx.ok()) return tx;
  report.dropped_shadow = true;
  Emit(o, "convert_aborted", fmt::format("conversion of {} undone", report.table));
  return report;
}

}  // namespace ferry::partition
