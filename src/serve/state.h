// What `ferry serve` reads from each database, as JSON documents (the
// bodies of /api/* and /readyz, described by docs/openapi.yaml) and
// Prometheus text (/metrics). Every function opens its own short sessions
// and closes them; nothing is written. URLs and messages are redacted; the
// `database` field is DatabaseLabel() (host/db).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ferry/status.h"

namespace ferry::serve {

struct StateOptions {
  std::vector<std::string> databases;  // URLs (with secrets: never rendered)
  std::string dir = "migrations";      // migration files, for pending and lint
  std::string history_table = "ferry_schema_history";
  // Readiness: a database that does not answer within this is not ready.
  std::chrono::milliseconds connect_bound{2000};
  // Readiness: the migration lock held longer than this counts as stuck.
  std::chrono::milliseconds lock_stuck_after{std::chrono::minutes(10)};
};

// /api/status: per database schema version, pending/failed/running counts
// and versions, lock holder; `reachable` false with `error` when it is down.
nlohmann::json StatusJson(const StateOptions& options);
// /api/history: the newest `limit` history rows of each database.
nlohmann::json HistoryJson(const StateOptions& options, int limit);
// /api/jobs: copy/backfill/verify jobs from ferry_jobs/ferry_chunks of
// each database, newest first, with chunk counts, progress and rate.
nlohmann::json JobsJson(const StateOptions& options);
// /api/lint: lint findings of each database's pending migrations.
nlohmann::json LintJson(const StateOptions& options);
// /readyz: {"ready": bool, "databases": [{database, ready, checks: [...]}]}.
nlohmann::json ReadyJson(const StateOptions& options);
// /metrics: the seeds' gauges read from the databases now
// (schema_version_info, ferry_database_up, ferry_migrations{state},
// ferry_lock_held_seconds, ferry_replication_lag_seconds, ferry_job_* per
// job), made by the observability plugin (kUnavailable without it).
Result<std::string> MetricsText(const StateOptions& options);

}  // namespace ferry::serve
