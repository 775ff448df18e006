// /metrics of `ferry serve`: gauges read from the databases at scrape time,
// in a registry built for that scrape (a database that went away leaves no
// stale series behind).
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "serve/state.h"

namespace ferry::serve {

namespace {

using nlohmann::json;

double Num(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0;
}

}  // namespace

std::string MetricsText(const StateOptions& options) {
  prometheus::Registry registry;
  auto& up = prometheus::BuildGauge()
                 .Name("ferry_database_up")
                 .Help("1 when the database answered the last scrape")
                 .Register(registry);
  auto& version = prometheus::BuildGauge()
                      .Name("schema_version_info")
                      .Help("Current schema version of each database (value 1)")
                      .Register(registry);
  auto& migrations = prometheus::BuildGauge()
                         .Name("ferry_migrations")
                         .Help("Migrations by state (applied, pending, failed, running)")
                         .Register(registry);
  auto& lock = prometheus::BuildGauge()
                   .Name("ferry_lock_held_seconds")
                   .Help("How long the migration lock has been held (0 when free)")
                   .Register(registry);
  auto& lag = prometheus::BuildGauge()
                  .Name("ferry_replication_lag_seconds")
                  .Help("Largest replay lag of the database's streaming replicas (PostgreSQL)")
                  .Register(registry);
  auto& job_rows = prometheus::BuildGauge()
                       .Name("ferry_job_rows_done")
                       .Help("Rows done by a copy/backfill/verify job")
                       .Register(registry);
  auto& job_chunks = prometheus::BuildGauge()
                         .Name("ferry_job_chunks")
                         .Help("Chunks of a job by state (total, done, failed, leased)")
                         .Register(registry);
  auto& job_progress = prometheus::BuildGauge()
                           .Name("ferry_job_progress_ratio")
                           .Help("Fraction of a job's chunks finished (0..1)")
                           .Register(registry);

  json status = StatusJson(options);
  for (const json& db : status["databases"]) {
    const std::string label = db["database"].get<std::string>();
    const bool reachable = db["reachable"].get<bool>();
    up.Add({{"database", label}}).Set(reachable ? 1 : 0);
    if (!reachable) continue;
    std::string v = db["current_version"].get<std::string>();
    version.Add({{"database", label}, {"version", v.empty() ? "none" : v}}).Set(1);
    for (const char* state : {"applied", "pending", "failed", "running"}) {
      migrations.Add({{"database", label}, {"state", state}}).Set(Num(db, state));
    }
    if (db["replication_lag_seconds"].is_number()) {
      lag.Add({{"database", label}}).Set(db["replication_lag_seconds"].get<double>());
    }
    const json& holder = db["lock_holder"];
    lock.Add({{"database", label}}).Set(holder.is_object() ? Num(holder, "held_ms") / 1000 : 0);
  }
  json jobs = JobsJson(options);
  for (const json& j : jobs["jobs"]) {
    prometheus::Labels base = {{"database", j["database"].get<std::string>()},
                               {"job", j["job_id"].get<std::string>()},
                               {"kind", j["kind"].get<std::string>()}};
    job_rows.Add(base).Set(Num(j, "rows_done"));
    for (const char* state : {"total", "done", "failed", "leased"}) {
      prometheus::Labels l = base;
      l["state"] = state;
      job_chunks.Add(l).Set(Num(j, (std::string("chunks_") + state).c_str()));
    }
    if (j["progress"].is_number()) job_progress.Add(base).Set(j["progress"].get<double>());
  }
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace ferry::serve
