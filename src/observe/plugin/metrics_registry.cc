// The plugin's metrics registry: prometheus-cpp families updated from bus
// events (the series of docs/observability.md and observe/metrics.h).
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "observe/ddl_progress_event.h"
#include "observe/plugin/plugin_internal.h"

namespace ferry::plugin {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// Migrations: seconds to an hour.
const Histogram::BucketBoundaries kMigrationBuckets = {0.01, 0.05, 0.1, 0.5, 1,   5,
                                                       10,   30,   60,  300, 900, 3600};
// Single operations (a batch, a chunk, a statement).
const Histogram::BucketBoundaries kOperationBuckets = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                                       1,     5,     10,   30,   120};

// Every family the registry declares (the same for every registry).
std::vector<FamilyDecl>& Declared() {
  static std::vector<FamilyDecl> declared;
  return declared;
}
void Declare(const std::string& name, const std::string& help, const std::string& type) {
  for (const FamilyDecl& d : Declared()) {
    if (d.name == name) return;
  }
  Declared().push_back({name, help, type});
}

Family<Counter>& CounterFamily(prometheus::Registry& r, const std::string& name,
                               const std::string& help) {
  Declare(name, help, "counter");
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
Family<Gauge>& GaugeFamily(prometheus::Registry& r, const std::string& name,
                           const std::string& help) {
  Declare(name, help, "gauge");
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
Family<Histogram>& HistogramFamily(prometheus::Registry& r, const std::string& name,
                                   const std::string& help) {
  Declare(name, help, "histogram");
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

std::string Direction(const Event& e) { return e.operation == "undo" ? "down" : "up"; }

double Seconds(int64_t ms) { return static_cast<double>(ms) / 1000.0; }

}  // namespace

struct Families {
  explicit Families(prometheus::Registry& r)
      : migration_duration(HistogramFamily(r, "migration_duration_seconds",
                                           "Time taken by each migration (up) or rollback (down)")),
        migration_success(CounterFamily(r, "migration_success_total",
                                        "Migrations applied or rolled back successfully")),
        migration_failure(CounterFamily(r, "migration_failure_total", "Migrations that failed")),
        schema_version(GaugeFamily(r, "schema_version_info",
                                   "Current schema version of each database (value 1)")),
        operations(CounterFamily(r, "migration_operations_total",
                                 "Operations finished (migration, undo, copy_chunk, "
                                 "backfill_batch, verify ...) by status")),
        operation_duration(HistogramFamily(r, "migration_operation_duration_seconds",
                                           "Duration of each finished operation")),
        errors(CounterFamily(r, "migration_errors_total",
                             "Failed or retried operations by error type (SQLSTATE or code)")),
        copy_rows(CounterFamily(r, "ferry_copy_rows_total", "Rows copied")),
        copy_rows_failed(CounterFamily(r, "ferry_copy_rows_failed_total",
                                       "Rows of chunks that failed for good")),
        copy_bytes(CounterFamily(r, "ferry_copy_bytes_total", "Bytes copied")),
        copy_chunks(GaugeFamily(r, "ferry_copy_chunks", "Chunks of a copy job by state")),
        backfill_rows(CounterFamily(r, "ferry_backfill_rows_total", "Rows updated by backfills")),
        backfill_batches(
            CounterFamily(r, "ferry_backfill_batches_total", "Backfill batches committed")),
        backfill_retries(
            CounterFamily(r, "ferry_backfill_retries_total", "Backfill batches retried")),
        backfill_rate(GaugeFamily(r, "ferry_backfill_rows_per_second",
                                  "Keys walked per second by a running backfill")),
        verify_differences(GaugeFamily(r, "ferry_verify_differences",
                                       "Rows that differ between source and target, by kind")),
        verify_rows(
            CounterFamily(r, "ferry_verify_rows_compared_total", "Source rows compared by verify")),
        lock_waits(CounterFamily(r, "ferry_lock_waits_total",
                                 "Times a command waited for a lock held by someone else")),
        lint_findings(CounterFamily(r, "ferry_lint_findings_total",
                                    "Lint findings reported before applying migrations")),
        expand_steps(CounterFamily(r, "ferry_expand_steps_total", "Expand/contract steps")),
        redis_keys(GaugeFamily(r, "ferry_redis_keys",
                               "Keys of a Redis copy or slot move so far, by state")),
        redis_slots(GaugeFamily(r, "ferry_redis_slots", "Slots of a Redis slot move, by state")),
        redis_lag(GaugeFamily(r, "ferry_redis_follow_lag_keys",
                              "redis copy --follow: source keys changed and not yet copied")),
        sync_rows(CounterFamily(r, "ferry_sync_rows_applied_total",
                                "Rows changed on the target by ferry sync's streamed changes")),
        sync_lag_bytes(GaugeFamily(r, "ferry_sync_lag_bytes",
                                   "Source WAL not yet confirmed by a sync (bytes)")),
        sync_lag_seconds(GaugeFamily(r, "ferry_sync_lag_seconds",
                                     "Age of the last applied source commit; 0 when caught up")),
        ddl_progress(GaugeFamily(r, "ferry_ddl_progress_ratio",
                                 "Fraction done of the current phase of a long statement "
                                 "(pg_stat_progress_* views), by command and phase")) {}

  Family<Histogram>& migration_duration;
  Family<Counter>& migration_success;
  Family<Counter>& migration_failure;
  Family<Gauge>& schema_version;
  Family<Counter>& operations;
  Family<Histogram>& operation_duration;
  Family<Counter>& errors;
  Family<Counter>& copy_rows;
  Family<Counter>& copy_rows_failed;
  Family<Counter>& copy_bytes;
  Family<Gauge>& copy_chunks;
  Family<Counter>& backfill_rows;
  Family<Counter>& backfill_batches;
  Family<Counter>& backfill_retries;
  Family<Gauge>& backfill_rate;
  Family<Gauge>& verify_differences;
  Family<Counter>& verify_rows;
  Family<Counter>& lock_waits;
  Family<Counter>& lint_findings;
  Family<Counter>& expand_steps;
  Family<Gauge>& redis_keys;
  Family<Gauge>& redis_slots;
  Family<Gauge>& redis_lag;
  Family<Counter>& sync_rows;
  Family<Gauge>& sync_lag_bytes;
  Family<Gauge>& sync_lag_seconds;
  Family<Gauge>& ddl_progress;
};

class MetricsRegistry {
 public:
  MetricsRegistry() : f_(std::make_unique<Families>(registry_)) {}
  void Observe(const Event& e);
  std::string Text() const {
    return WithEmptyFamilies(prometheus::TextSerializer().Serialize(registry_.Collect()),
                             Declared());
  }

 private:
  void ObserveMigration(const Event& e);
  void ObserveCopy(const Event& e);
  void ObserveBackfill(const Event& e);
  void ObserveOther(const Event& e);
  void ObserveRedis(const Event& e);
  void ObserveDdlProgress(const Event& e, const DdlProgress& p);

  prometheus::Registry registry_;
  std::unique_ptr<Families> f_;
  std::mutex mu_;                                       // guards the maps below
  std::map<std::string, std::string> schema_versions_;  // database -> version shown
  std::map<std::string, int64_t> copy_chunks_failed_;   // job -> chunks failed
  // (database, command) -> the phase its ddl_progress series shows.
  std::map<std::pair<std::string, std::string>, std::string> ddl_phases_;
};

void MetricsRegistry::Observe(const Event& e) {
  // Seed 000's generic series: every finished, failed or retried operation.
  const bool finished = e.status == EventStatus::kSucceeded || e.status == EventStatus::kFailed ||
                        e.status == EventStatus::kRetrying;
  if (finished && e.kind != EventKind::kLint) {
    f_->operations
        .Add({{"operation", e.operation},
              {"status", std::string(EventStatusName(e.status))},
              {"database", e.database}})
        .Increment();
    // Migrations always report their time (0 ms is a time); other
    // operations only when they measured one (a copy chunk does not).
    const bool timed = e.duration_ms > 0 || e.operation == "migration" || e.operation == "undo";
    if (e.status != EventStatus::kRetrying && timed) {
      f_->operation_duration
          .Add({{"operation", e.operation}, {"database", e.database}}, kOperationBuckets)
          .Observe(Seconds(e.duration_ms));
    }
    if (e.status != EventStatus::kSucceeded) {
      f_->errors
          .Add({{"operation", e.operation},
                {"error_type", e.error_type.empty() ? "unknown" : e.error_type}})
          .Increment();
    }
  }
  if (std::optional<DdlProgress> progress = DdlProgressOf(e)) {
    ObserveDdlProgress(e, *progress);
    return;
  }
  switch (e.kind) {
    case EventKind::kMigration:
      ObserveMigration(e);
      break;
    case EventKind::kCopy:
      ObserveCopy(e);
      break;
    case EventKind::kBackfill:
      ObserveBackfill(e);
      break;
    default:
      ObserveOther(e);
      break;
  }
}

void MetricsRegistry::ObserveMigration(const Event& e) {
  if (e.type == "lock_wait") {
    f_->lock_waits.Add({{"database", e.database}, {"operation", "migrate"}}).Increment();
    return;
  }
  if (e.type == "schema_version") {
    std::lock_guard lock(mu_);
    auto it = schema_versions_.find(e.database);
    if (it != schema_versions_.end()) {
      if (it->second == e.job) return;
      prometheus::Labels old = {{"database", e.database}, {"version", it->second}};
      if (f_->schema_version.Has(old)) f_->schema_version.Remove(&f_->schema_version.Add(old));
    }
    schema_versions_[e.database] = e.job;
    f_->schema_version.Add({{"database", e.database}, {"version", e.job}}).Set(1);
    return;
  }
  const bool done = e.type == "migration_done" || e.type == "undo_done";
  const bool failed = e.type == "migration_failed" || e.type == "undo_failed";
  if (!done && !failed) return;
  prometheus::Labels labels = {{"database", e.database}, {"direction", Direction(e)}};
  (done ? f_->migration_success : f_->migration_failure).Add(labels).Increment();
  f_->migration_duration.Add(labels, kMigrationBuckets).Observe(Seconds(e.duration_ms));
}

void MetricsRegistry::ObserveCopy(const Event& e) {
  if (!e.copy) return;
  const CopyProgress& c = *e.copy;
  prometheus::Labels labels = {{"job", e.job}, {"table", c.table}, {"database", e.database}};
  if (e.type == "chunk_done") {
    f_->copy_rows.Add(labels).Increment(static_cast<double>(c.rows));
    f_->copy_bytes.Add(labels).Increment(static_cast<double>(c.bytes));
  } else if (e.type == "chunk_failed") {
    f_->copy_rows_failed.Add(labels).Increment(static_cast<double>(c.rows));
  }
  int64_t failed = 0;
  {
    std::lock_guard lock(mu_);
    if (e.type == "chunk_failed") copy_chunks_failed_[e.job]++;
    failed = copy_chunks_failed_[e.job];
  }
  auto chunks = [&](const char* state, int64_t n) {
    f_->copy_chunks.Add({{"job", e.job}, {"state", state}}).Set(static_cast<double>(n));
  };
  chunks("total", c.job_chunks_total);
  chunks("done", c.job_chunks_done);
  chunks("failed", failed);
  chunks("pending", std::max<int64_t>(c.job_chunks_total - c.job_chunks_done - failed, 0));
}

void MetricsRegistry::ObserveBackfill(const Event& e) {
  if (!e.backfill) return;
  const BackfillProgress& b = *e.backfill;
  prometheus::Labels labels = {{"job", e.job}, {"database", e.database}};
  if (b.kind == BackfillProgress::Kind::kBatch) {
    f_->backfill_rows.Add(labels).Increment(static_cast<double>(b.batch_rows));
    f_->backfill_batches.Add(labels).Increment();
    f_->backfill_rate.Add({{"job", e.job}}).Set(b.rows_per_second);
  } else if (b.kind == BackfillProgress::Kind::kRetry) {
    f_->backfill_retries.Add(labels).Increment();
  } else if (b.kind == BackfillProgress::Kind::kFinished) {
    f_->backfill_rate.Add({{"job", e.job}}).Set(0);
  }
}

void MetricsRegistry::ObserveOther(const Event& e) {
  if (e.kind == EventKind::kLint && e.type == "lint_finding") {
    f_->lint_findings
        .Add({{"rule", e.error_type.empty() ? "unknown" : e.error_type}, {"database", e.database}})
        .Increment();
  } else if (e.kind == EventKind::kExpand) {
    if (e.type == "lock_wait") {
      f_->lock_waits.Add({{"database", e.database}, {"operation", "expand"}}).Increment();
    }
    f_->expand_steps.Add({{"step", e.type}, {"database", e.database}}).Increment();
  } else if (e.kind == EventKind::kRedis && e.redis) {
    ObserveRedis(e);
  } else if (e.kind == EventKind::kSync && e.sync) {
    f_->sync_rows.Add({{"job", e.job}, {"database", e.database}})
        .Increment(static_cast<double>(e.rows));
    if (e.sync->lag_bytes >= 0) {
      f_->sync_lag_bytes.Add({{"job", e.job}}).Set(static_cast<double>(e.sync->lag_bytes));
    }
    f_->sync_lag_seconds.Add({{"job", e.job}}).Set(e.sync->lag_seconds);
  } else if (e.kind == EventKind::kVerify && e.verify) {
    const VerifyTableProgress& v = *e.verify;
    auto diff = [&](const char* kind, int64_t n) {
      f_->verify_differences.Add({{"table", v.table}, {"kind", kind}, {"database", e.database}})
          .Set(static_cast<double>(n));
    };
    diff("missing", v.missing);
    diff("extra", v.extra);
    diff("changed", v.changed);
    f_->verify_rows.Add({{"table", v.table}, {"database", e.database}})
        .Increment(static_cast<double>(v.source_rows));
  }
}

void MetricsRegistry::ObserveRedis(const Event& e) {
  const RedisProgress& r = *e.redis;
  auto keys = [&](const char* state, int64_t n) {
    f_->redis_keys.Add({{"job", e.job}, {"state", state}, {"database", e.database}})
        .Set(static_cast<double>(n));
  };
  if (e.operation == "redis_move_slots") {
    keys("moved", r.copied);
    f_->redis_slots.Add({{"job", e.job}, {"state", "done"}}).Set(r.slots_done);
    f_->redis_slots.Add({{"job", e.job}, {"state", "total"}}).Set(r.slots);
    return;
  }
  keys("scanned", r.scanned);
  keys("copied", r.copied);
  keys("skipped", r.skipped);
  keys("expired", r.expired);
  keys("failed", r.failed);
  keys("total", r.total);
  keys("followed", r.followed);
  keys("deleted", r.deleted);
  f_->redis_lag.Add({{"job", e.job}, {"database", e.database}}).Set(static_cast<double>(r.lag));
}

// One series per database and command (a handful of commands, a dozen
// phases): a new phase replaces the command's old series, so a run leaves
// the last phase seen. Phases without a counter show 0.
void MetricsRegistry::ObserveDdlProgress(const Event& e, const DdlProgress& p) {
  {
    std::lock_guard lock(mu_);
    std::string& shown = ddl_phases_[{e.database, p.command}];
    if (!shown.empty() && shown != p.phase) {
      prometheus::Labels old = {{"database", e.database}, {"command", p.command}, {"phase", shown}};
      if (f_->ddl_progress.Has(old)) f_->ddl_progress.Remove(&f_->ddl_progress.Add(old));
    }
    shown = p.phase;
  }
  f_->ddl_progress.Add({{"database", e.database}, {"command", p.command}, {"phase", p.phase}})
      .Set(std::max(DdlProgressRatio(p), 0.0));
}

std::string WithEmptyFamilies(std::string text, const std::vector<FamilyDecl>& families) {
  for (const FamilyDecl& f : families) {
    if (text.find("# TYPE " + f.name + " ") != std::string::npos) continue;
    text += "# HELP " + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n";
  }
  return text;
}

void* MetricsNew() { return new MetricsRegistry(); }
void MetricsDelete(void* m) { delete static_cast<MetricsRegistry*>(m); }
void MetricsObserve(void* m, const Event& e) { static_cast<MetricsRegistry*>(m)->Observe(e); }
std::string MetricsText(void* m) { return static_cast<MetricsRegistry*>(m)->Text(); }

}  // namespace ferry::plugin
