#include "serve/state.h"

#include <fmt/format.h>

#include <ctime>
#include <future>
#include <map>
#include <memory>
#include <thread>

#include "core/numbers.h"
#include "core/url.h"
#include "drivers/registry.h"
#include "migrate/migrator.h"
#include "move/redis/redis_pair.h"
#include "move/control.h"
#include "observe/event.h"
#include "observe/plugin.h"

namespace ferry::serve {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Runs `fn` on its own thread and waits at most `bound` for it; a call
// that takes longer keeps running detached (its result is dropped) and the
// caller gets kDeadlineExceeded, so one hung database never hangs a request.
template <typename T>
Result<T> Bounded(std::chrono::milliseconds bound, std::function<Result<T>()> fn) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  std::future<Result<T>> future = promise->get_future();
  std::thread([promise, fn = std::move(fn)] { promise->set_value(fn()); }).detach();
  if (future.wait_for(bound) != std::future_status::ready) {
    return Status(StatusCode::kDeadlineExceeded,
                  fmt::format("no answer within {} ms", bound.count()));
  }
  return future.get();
}

MigratorOptions MigratorFor(const StateOptions& o, bool with_sql) {
  MigratorOptions m;
  m.dir = o.dir;
  m.history_table = o.history_table;
  m.short_session = !with_sql;
  m.lock_wait = std::chrono::duration_cast<std::chrono::milliseconds>(o.lock_stuck_after);
  return m;
}

Result<std::shared_ptr<Migrator>> OpenBounded(const StateOptions& o, const std::string& url,
                                              bool with_sql = false) {
  MigratorOptions m = MigratorFor(o, with_sql);
  return Bounded<std::shared_ptr<Migrator>>(
      o.connect_bound, [url, m]() -> Result<std::shared_ptr<Migrator>> {
        FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Migrator> opened, Migrator::Open(url, m));
        return std::shared_ptr<Migrator>(std::move(opened));
      });
}

json DownJson(const std::string& url, const Status& s) {
  return {{"database", DatabaseLabel(url)},
          {"reachable", false},
          {"error", RedactSecrets(s.ToString())}};
}

bool IsRedis(const std::string& url) {
  auto u = Url::Parse(url);
  return u.ok() && u->scheme() == "redis";
}

// A Redis server or cluster has no migrations: what serve shows of it.
struct RedisFacts {
  bool cluster = false;
  int masters = 0;
  int64_t keys = 0;
  int64_t used = 0, max = 0;  // bytes, summed over masters (max 0: no limit somewhere)
  double fullest = 0;         // highest used/maxmemory of a master with a limit
  int64_t connect_ms = 0;
};

Result<RedisFacts> ReadRedis(const StateOptions& o, const std::string& url) {
  const auto start = Clock::now();
  return Bounded<RedisFacts>(o.connect_bound, [url, start]() -> Result<RedisFacts> {
    FERRY_ASSIGN_OR_RETURN(redis::RedisSide side, redis::OpenRedisSide(url, "server"));
    RedisFacts f;
    f.connect_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    f.cluster = side.client->cluster();
    f.masters = static_cast<int>(side.masters.size());
    bool limited = true;
    for (const redis::NodeFacts& n : side.masters) {
      f.keys += n.keys;
      f.used += n.used_memory;
      f.max += n.maxmemory;
      limited = limited && n.maxmemory > 0;
      if (n.maxmemory > 0) {
        f.fullest = std::max(f.fullest, static_cast<double>(n.used_memory) / n.maxmemory);
      }
    }
    if (!limited) f.max = 0;
    return f;
  });
}

json RedisStatus(const StateOptions& o, const std::string& url) {
  auto f = ReadRedis(o, url);
  if (!f.ok()) return DownJson(url, f.status());
  return {{"database", DatabaseLabel(url)},
          {"reachable", true},
          {"engine", "redis"},
          {"url", RedactSecrets(url)},
          {"mode", f->cluster ? "cluster" : "standalone"},
          {"masters", f->masters},
          {"keys", f->keys},
          {"used_memory_bytes", f->used},
          {"max_memory_bytes", f->max}};
}

json LockJson(const std::optional<LockHolder>& holder) {
  if (!holder) return nullptr;
  return {{"who", holder->who}, {"since", holder->since}, {"held_ms", holder->held_ms}};
}

json OneStatus(const StateOptions& o, const std::string& url) {
  if (IsRedis(url)) return RedisStatus(o, url);
  auto m = OpenBounded(o, url);
  if (!m.ok()) return DownJson(url, m.status());
  auto report = (*m)->CurrentStatus(/*metadata_only=*/true);
  if (!report.ok()) return DownJson(url, report.status());
  json pending = json::array(), failed = json::array(), running = json::array();
  for (const PlanEntry& e : report->entries) {
    std::string id = e.version.empty() ? e.script : e.version;
    if (e.state == EntryState::kPending || e.state == EntryState::kOutOfOrder)
      pending.push_back(id);
    if (e.state == EntryState::kFailed) failed.push_back(id);
    if (e.state == EntryState::kRunning) running.push_back(id);
  }
  // Streaming replicas' replay lag (PostgreSQL; 0 without replicas or
  // without the privilege to see it).
  json lag = nullptr;
  Connection* conn = (*m)->connection();
  if (conn->engine() == Engine::kPostgres) {
    auto r = conn->Query(
        "SELECT COALESCE(max(EXTRACT(EPOCH FROM replay_lag)), 0)::float8 FROM pg_stat_replication");
    if (r.ok() && !r->empty()) lag = std::stod(r->Text(0, 0));
  }
  return {{"database", DatabaseLabel(url)},
          {"reachable", true},
          {"url", RedactSecrets(url)},
          {"replication_lag_seconds", lag},
          {"history_exists", report->history_exists},
          {"current_version", report->current_version},
          {"newest_file_version", report->newest_file_version},
          {"applied", report->applied},
          {"pending", report->pending + report->out_of_order},
          {"failed", report->failed},
          {"running", report->running},
          {"changed", report->changed},
          {"pending_versions", pending},
          {"failed_versions", failed},
          {"running_versions", running},
          {"lock_holder", LockJson(report->lock_holder)}};
}

// Seconds since the epoch of an ISO-8601 UTC text ("2026-01-02T03:04:05Z",
// "2026-01-02 03:04:05.123+00"); -1 when it does not parse.
double EpochOf(const std::string& iso) {
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  double s = 0;
  if (std::sscanf(iso.c_str(), "%d-%d-%d%*c%d:%d:%lf", &y, &mo, &d, &h, &mi, &s) != 6) return -1;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return static_cast<double>(timegm(&tm)) + s;
}

json OneJob(ControlTables& control, const JobRow& job) {
  int64_t total = 0, done = 0, failed = 0, leased = 0, chunk_rows = 0;
  auto chunks = control.ListChunks(job.job_id);
  if (chunks.ok()) {
    for (const ChunkRow& c : *chunks) {
      ++total;
      if (c.state == ChunkState::kDone) {
        ++done;
        chunk_rows += c.rows;
      }
      if (c.state == ChunkState::kFailed) ++failed;
      if (c.state == ChunkState::kLeased) ++leased;
    }
  }
  const int64_t rows = std::max(job.rows_done, chunk_rows);
  json j = {{"database", ""},
            {"job_id", job.job_id},
            {"kind", job.kind},
            {"state", std::string(JobStateName(job.state))},
            {"created_at", job.created_at},
            {"updated_at", job.updated_at},
            {"finished_at", job.finished_at},
            {"owner", job.owner},
            {"rows_done", rows},
            {"rows_failed", job.rows_failed},
            {"bytes_done", job.bytes_done},
            {"chunks_total", total},
            {"chunks_done", done},
            {"chunks_failed", failed},
            {"chunks_leased", leased},
            {"error", RedactSecrets(job.error)}};
  json progress = nullptr, rate = nullptr, eta = nullptr;
  if (total > 0) progress = static_cast<double>(done + failed) / static_cast<double>(total);
  if (job.state == JobState::kDone) progress = 1.0;
  const double start = EpochOf(job.created_at);
  // A finished job's rate is over its run (its last update when it has no
  // finish time), a running one's up to now.
  const bool over = job.state == JobState::kDone || job.state == JobState::kFailed ||
                    job.state == JobState::kCancelled;
  const double end = !job.finished_at.empty() ? EpochOf(job.finished_at)
                     : over                   ? EpochOf(job.updated_at)
                                              : static_cast<double>(std::time(nullptr));
  if (start > 0 && end > start) {
    double r = static_cast<double>(rows) / (end - start);
    rate = r;
    if (progress.is_number() && progress.get<double>() > 0 && progress.get<double>() < 1) {
      double p = progress.get<double>();
      eta = (end - start) * (1 - p) / p;
    }
  }
  j["progress"] = progress;
  j["rows_per_second"] = rate;
  j["eta_seconds"] = eta;
  return j;
}

// Whether `table` exists, without creating anything.
Result<bool> HasTable(Connection& conn, const std::string& table) {
  const bool pg = conn.engine() == Engine::kPostgres;
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query(pg ? "SELECT to_regclass($1) IS NOT NULL"
                    : "SELECT count(*) > 0 FROM sqlite_master WHERE name = $1",
                 {table}));
  const std::string flag = r.Text(0, 0);
  return flag == "t" || flag == "1" || flag == "true";
}

// The streaming side of `ferry sync` jobs kept on this (target) database
// (ferry_sync_jobs, docs/sync.md), by job name. Lag in seconds is the age
// of the last applied source commit, 0 once caught up, as `sync --status`
// says; the bytes behind need the source, which serve does not open.
Result<std::map<std::string, json>> SyncJobsOf(Connection& conn) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query("SELECT job, phase, applied_lsn::text, rows_applied, transactions, caught_up,"
                 " extract(epoch FROM now() - last_commit_at),"
                 " extract(epoch FROM now() - updated_at) FROM ferry_sync_jobs ORDER BY job"));
  std::map<std::string, json> out;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const bool caught_up = r.Text(i, 5) == "t";
    json age = r.IsNull(i, 6) ? json(nullptr) : json(std::stod(r.Text(i, 6)));
    out[r.Text(i, 0)] = {{"phase", r.Text(i, 1)},
                         {"applied_lsn", r.Text(i, 2)},
                         {"rows_applied", ColumnInt64(r.rows[i][3])},
                         {"transactions", ColumnInt64(r.rows[i][4])},
                         {"caught_up", caught_up},
                         {"lag_seconds", caught_up ? json(0.0) : age},
                         {"seconds_since_update", std::stod(r.Text(i, 7))}};
  }
  return out;
}

Result<json> JobsOf(const std::string& url) {
  FERRY_ASSIGN_OR_RETURN(Url parsed, Url::Parse(url));
  ConnectOptions co;
  co.application_name = "ferry serve";
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenConnection(parsed, co));
  // The control tables exist only once a job ran there: read, never create.
  json out = json::array();
  FERRY_ASSIGN_OR_RETURN(bool has_jobs, HasTable(*conn, "ferry_jobs"));
  if (has_jobs) {
    ControlTables control(*conn);
    FERRY_ASSIGN_OR_RETURN(std::vector<JobRow> jobs, control.ListJobs());
    for (const JobRow& job : jobs) {
      json j = OneJob(control, job);
      j["database"] = DatabaseLabel(url);
      out.push_back(std::move(j));
    }
  }
  if (conn->engine() != Engine::kPostgres) return out;
  FERRY_ASSIGN_OR_RETURN(bool has_sync, HasTable(*conn, "ferry_sync_jobs"));
  if (!has_sync) return out;
  FERRY_ASSIGN_OR_RETURN(auto syncs, SyncJobsOf(*conn));
  // A sync job's initial copy is the copy job "sync:<job>": its entry
  // carries the streaming side too.
  for (json& j : out) {
    const std::string id = j["job_id"].get<std::string>();
    if (id.rfind("sync:", 0) != 0) continue;
    auto it = syncs.find(id.substr(5));
    if (it == syncs.end()) continue;
    j["kind"] = "sync";
    j["sync"] = std::move(it->second);
    syncs.erase(it);
  }
  return out;
}

}  // namespace

json StatusJson(const StateOptions& options) {
  json dbs = json::array();
  for (const std::string& url : options.databases) dbs.push_back(OneStatus(options, url));
  return {{"databases", dbs}};
}

json HistoryJson(const StateOptions& options, int limit) {
  json dbs = json::array();
  for (const std::string& url : options.databases) {
    if (IsRedis(url)) continue;  // no migration history
    auto m = OpenBounded(options, url);
    if (!m.ok()) {
      dbs.push_back(DownJson(url, m.status()));
      continue;
    }
    auto rows = (*m)->ListHistory();
    if (!rows.ok()) {
      dbs.push_back(DownJson(url, rows.status()));
      continue;
    }
    json list = json::array();
    for (auto it = rows->rbegin(); it != rows->rend() && static_cast<int>(list.size()) < limit;
         ++it) {
      list.push_back({{"version", it->version},
                      {"description", it->description},
                      {"script", it->script},
                      {"kind", it->kind},
                      {"status", it->status},
                      {"started_at", it->started_at},
                      {"completed_at", it->completed_at},
                      {"duration_ms", it->duration_ms},
                      {"rows_affected", it->rows_affected},
                      {"applied_by", it->applied_by},
                      {"error_message", RedactSecrets(it->error_message)}});
    }
    dbs.push_back({{"database", DatabaseLabel(url)}, {"reachable", true}, {"rows", list}});
  }
  return {{"databases", dbs}};
}

json JobsJson(const StateOptions& options) {
  json jobs = json::array();
  json errors = json::array();
  for (const std::string& url : options.databases) {
    if (IsRedis(url)) continue;  // redis copy keeps its state in a local file
    auto r = Bounded<json>(options.connect_bound * 4, [url] { return JobsOf(url); });
    if (!r.ok()) {
      errors.push_back(DownJson(url, r.status()));
      continue;
    }
    for (json& j : *r) jobs.push_back(std::move(j));
  }
  return {{"jobs", jobs}, {"errors", errors}};
}

json LintJson(const StateOptions& options) {
  json dbs = json::array();
  for (const std::string& url : options.databases) {
    if (IsRedis(url)) continue;  // nothing to lint
    auto m = OpenBounded(options, url, /*with_sql=*/true);
    if (!m.ok()) {
      dbs.push_back(DownJson(url, m.status()));
      continue;
    }
    auto report = (*m)->CurrentStatus(/*metadata_only=*/false);
    if (!report.ok()) {
      dbs.push_back(DownJson(url, report.status()));
      continue;
    }
    std::vector<const Migration*> pending;
    for (const PlanEntry& e : report->entries) {
      if ((e.state == EntryState::kPending || e.state == EntryState::kOutOfOrder) &&
          e.migration != nullptr) {
        pending.push_back(e.migration);
      }
    }
    LintOptions lo;
    lo.carry_across_files = true;
    if ((*m)->connection()->traits().Has(Feature::kTableStatistics)) {
      (void)ReadDatabaseFacts(*(*m)->connection(), &lo);
    }
    json findings = json::array();
    auto lint = LintMigrations(pending, lo);
    if (lint.ok()) {
      for (const LintFinding& f : lint->findings) {
        findings.push_back({{"file", f.file},
                            {"line", f.line},
                            {"column", f.column},
                            {"rule", f.rule},
                            {"severity", std::string(LintSeverityName(f.severity))},
                            {"message", f.message},
                            {"safe_sql", f.safe_sql}});
      }
    }
    dbs.push_back({{"database", DatabaseLabel(url)},
                   {"reachable", true},
                   {"files", static_cast<int>(pending.size())},
                   {"findings", findings}});
  }
  return {{"databases", dbs}};
}

// Readiness of a Redis server or cluster: it answers within the bound, a
// cluster reports cluster_state:ok with every slot served (OpenRedisSide
// refuses it otherwise), and no master is at 90% of its maxmemory.
template <typename Add>
void RedisReady(const StateOptions& options, const std::string& url, Add& add) {
  auto f = ReadRedis(options, url);
  if (!f.ok()) {
    add("connect", false, f.status().ToString());
    return;
  }
  add("connect", true,
      fmt::format("connected in {} ms (bound {} ms), {} {} master(s)", f->connect_ms,
                  options.connect_bound.count(), f->cluster ? "cluster," : "standalone,",
                  f->masters));
  add("memory", f->fullest < 0.9,
      f->fullest > 0 ? fmt::format("fullest master at {:.0f}% of maxmemory", f->fullest * 100)
                     : std::string("no maxmemory limit"));
}

json ReadyJson(const StateOptions& options) {
  bool all_ready = true;
  json dbs = json::array();
  for (const std::string& url : options.databases) {
    json checks = json::array();
    bool ready = true;
    auto add = [&](const std::string& name, bool ok, const std::string& detail) {
      checks.push_back({{"name", name}, {"ok", ok}, {"detail", RedactSecrets(detail)}});
      if (!ok) ready = false;
    };
    if (IsRedis(url)) {
      RedisReady(options, url, add);
      if (!ready) all_ready = false;
      dbs.push_back({{"database", DatabaseLabel(url)}, {"ready", ready}, {"checks", checks}});
      continue;
    }
    const auto start = Clock::now();
    auto m = OpenBounded(options, url);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    if (!m.ok()) {
      add("connect", false, m.status().ToString());
    } else {
      add("connect", true,
          fmt::format("connected in {} ms (bound {} ms)", ms, options.connect_bound.count()));
      auto health =
          Bounded<HealthReport>(options.connect_bound * 4, [mig = *m] { return mig->Health(); });
      if (!health.ok()) {
        add("health", false, health.status().ToString());
      } else {
        for (const HealthReport::Check& c : health->checks) {
          if (c.name == "connect") continue;
          add(c.name, c.ok, c.detail);
        }
      }
    }
    if (!ready) all_ready = false;
    dbs.push_back({{"database", DatabaseLabel(url)}, {"ready", ready}, {"checks", checks}});
  }
  return {{"ready", all_ready}, {"databases", dbs}};
}

Result<std::string> MetricsText(const StateOptions& options) {
  FERRY_ASSIGN_OR_RETURN(const ObservePlugin* plugin, LoadObservePlugin());
  return plugin->state_metrics_text(StatusJson(options).dump(), JobsJson(options).dump());
}

}  // namespace ferry::serve
