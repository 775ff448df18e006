// /metrics of `ferry serve`: gauges from what /api/status and /api/jobs
// read at scrape time, in a registry built for that scrape (a database
// that went away leaves no stale series behind).
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <nlohmann/json.hpp>

#include "observe/plugin/plugin_internal.h"

namespace ferry::plugin {

namespace {

using nlohmann::json;

double Num(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0;
}

}  // namespace

std::string StateMetricsText(const std::string& status_json, const std::string& jobs_json) {
  prometheus::Registry registry;
  std::vector<FamilyDecl> declared;
  auto gauge = [&](const std::string& name, const std::string& help) -> auto& {
    declared.push_back({name, help, "gauge"});
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
  };
  auto& up = gauge("ferry_database_up", "1 when the database answered the last scrape");
  auto& version = gauge("schema_version_info", "Current schema version of each database (value 1)");
  auto& migrations =
      gauge("ferry_migrations", "Migrations by state (applied, pending, failed, running)");
  auto& lock =
      gauge("ferry_lock_held_seconds", "How long the migration lock has been held (0 when free)");
  auto& lag = gauge("ferry_replication_lag_seconds",
                    "Largest replay lag of the database's streaming replicas (PostgreSQL)");
  auto& job_rows = gauge("ferry_job_rows_done", "Rows done by a copy/backfill/verify job");
  auto& job_chunks =
      gauge("ferry_job_chunks", "Chunks of a job by state (total, done, failed, leased)");
  auto& job_progress =
      gauge("ferry_job_progress_ratio", "Fraction of a job's chunks finished (0..1)");
  auto& sync_lag = gauge("ferry_sync_lag_seconds",
                         "Age of the last source commit a sync job applied; 0 when caught up");

  auto& redis_keys = gauge("ferry_redis_db_keys", "Keys of a watched Redis server or cluster");
  auto& redis_memory = gauge("ferry_redis_memory_bytes",
                             "Memory of a watched Redis server or cluster (kind used, max; "
                             "max 0 = no limit)");
  json status = json::parse(status_json);
  for (const json& db : status["databases"]) {
    const std::string label = db["database"].get<std::string>();
    const bool reachable = db["reachable"].get<bool>();
    up.Add({{"database", label}}).Set(reachable ? 1 : 0);
    if (!reachable) continue;
    if (db.value("engine", "") == "redis") {
      redis_keys.Add({{"database", label}}).Set(Num(db, "keys"));
      redis_memory.Add({{"database", label}, {"kind", "used"}}).Set(Num(db, "used_memory_bytes"));
      redis_memory.Add({{"database", label}, {"kind", "max"}}).Set(Num(db, "max_memory_bytes"));
      continue;
    }
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
  json jobs = json::parse(jobs_json);
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
    if (j.contains("sync") && j["sync"]["lag_seconds"].is_number()) {
      sync_lag.Add({{"database", base["database"]}, {"job", base["job"]}})
          .Set(j["sync"]["lag_seconds"].get<double>());
    }
  }
  return WithEmptyFamilies(prometheus::TextSerializer().Serialize(registry.Collect()), declared);
}

}  // namespace ferry::plugin
