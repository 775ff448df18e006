// Metrics: a consumer of the event bus that keeps Prometheus series
// (prometheus-cpp, in the observability plugin: observe/plugin.h) under the
// seeds' names, plus ferry's own for jobs.
//
// Seed 003: migration_duration_seconds{database,direction} (histogram),
//   migration_success_total / migration_failure_total{database,direction},
//   schema_version_info{database,version} (1 for the current version).
// Seed 000: migration_operations_total{operation,status,database},
//   migration_operation_duration_seconds{operation,database} (histogram),
//   migration_errors_total{operation,error_type}.
// ferry: ferry_copy_rows_total / ferry_copy_rows_failed_total /
//   ferry_copy_bytes_total{job,table,database}, ferry_copy_chunks{job,state},
//   ferry_backfill_rows_total / ferry_backfill_batches_total /
//   ferry_backfill_retries_total{job,database}, ferry_backfill_rows_per_second{job},
//   ferry_verify_differences{table,kind,database},
//   ferry_verify_rows_compared_total{table,database},
//   ferry_lock_waits_total{database,operation}, ferry_lint_findings_total{rule,database},
//   ferry_expand_steps_total{step,database}.
// docs/observability.md lists them with their meaning.
//
// Labels come from event headers: `database` is DatabaseLabel() (host/db,
// never a user or password). Thread-safe: Observe() runs on the bus (one
// event at a time) while Text() may run on any thread.
#pragma once

#include <memory>
#include <string>

#include "ferry/status.h"
#include "observe/event.h"

namespace ferry {

struct ObservePlugin;

class Metrics {
 public:
  // Loads the plugin (kUnavailable when it is missing).
  static Result<std::unique_ptr<Metrics>> Create();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Subscribes Observe() to `bus` (the bus must outlive this object's use).
  void Attach(EventBus& bus);
  // Updates the series an event touches; other events are ignored.
  void Observe(const Event& event);
  // The Prometheus text exposition format (version 0.0.4) of every series.
  std::string Text() const;

 private:
  Metrics(const ObservePlugin* plugin, void* registry) : plugin_(plugin), registry_(registry) {}
  const ObservePlugin* plugin_;
  void* registry_;
};

// Writes `text` to `path` for node_exporter's textfile collector: into a
// temporary file in the same folder, then renamed over `path`, so a reader
// sees the old or the new file, never half of one. kNotFound when the
// folder does not exist; kPermissionDenied / kUnavailable for write errors.
Status WriteMetricsFile(const std::string& path, const std::string& text);
// Checks, before any work, that `path`'s folder exists and is a folder.
Status CheckMetricsFilePath(const std::string& path);

// Replaces the metrics of group job="ferry", command=`command` on the
// Prometheus Pushgateway at `url` (http://host:port[/prefix]) with `text`
// (HTTP PUT). kInvalidArgument for a bad URL, kUnavailable when the
// gateway cannot be reached or answers with an error.
Status PushMetrics(const std::string& url, const std::string& command, const std::string& text);

}  // namespace ferry
