// Control tables on PostgreSQL or SQLite. The SQL differs only where the
// engines do: timestamps (timestamptz vs ISO-8601 text), leasing (one
// UPDATE ... FOR UPDATE SKIP LOCKED vs a BEGIN IMMEDIATE transaction) and
// the lock that makes Ensure() safe to race.
#include "move/control.h"
#include "core/numbers.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>

namespace ferry {
namespace {

constexpr int kFormatVersion = 1;
constexpr const char* kMetaJobId = "_ferry_control_format";
// pg_advisory_xact_lock key for Ensure(): "ferryctl" in ASCII.
constexpr const char* kEnsureLockKey = "7306880802567975020";

constexpr const char* kPgDdl = R"(
CREATE TABLE IF NOT EXISTS ferry_jobs (
  job_id text PRIMARY KEY,
  kind text NOT NULL,
  spec text NOT NULL DEFAULT '',
  state text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  owner text NOT NULL DEFAULT '',
  rows_done bigint NOT NULL DEFAULT 0,
  rows_failed bigint NOT NULL DEFAULT 0,
  bytes_done bigint NOT NULL DEFAULT 0,
  checkpoint text NOT NULL DEFAULT '',
  error text NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS ferry_chunks (
  job_id text NOT NULL,
  chunk_id bigint NOT NULL,
  table_name text NOT NULL,
  range_spec text NOT NULL,
  state text NOT NULL,
  lease_owner text NOT NULL DEFAULT '',
  lease_expires_at timestamptz,
  attempts integer NOT NULL DEFAULT 0,
  "rows" bigint NOT NULL DEFAULT 0,
  bytes bigint NOT NULL DEFAULT 0,
  hash text NOT NULL DEFAULT '',
  error text NOT NULL DEFAULT '',
  started_at timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (job_id, chunk_id)
);
CREATE INDEX IF NOT EXISTS ferry_chunks_lease ON ferry_chunks (job_id, state, chunk_id);
)";

constexpr const char* kSqliteDdl = R"(
CREATE TABLE IF NOT EXISTS ferry_jobs (
  job_id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  spec TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  finished_at TEXT,
  owner TEXT NOT NULL DEFAULT '',
  rows_done INTEGER NOT NULL DEFAULT 0,
  rows_failed INTEGER NOT NULL DEFAULT 0,
  bytes_done INTEGER NOT NULL DEFAULT 0,
  checkpoint TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS ferry_chunks (
  job_id TEXT NOT NULL,
  chunk_id INTEGER NOT NULL,
  table_name TEXT NOT NULL,
  range_spec TEXT NOT NULL,
  state TEXT NOT NULL,
  lease_owner TEXT NOT NULL DEFAULT '',
  lease_expires_at TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  "rows" INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  hash TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  started_at TEXT,
  finished_at TEXT,
  PRIMARY KEY (job_id, chunk_id)
);
CREATE INDEX IF NOT EXISTS ferry_chunks_lease ON ferry_chunks (job_id, state, chunk_id);
)";

// SQL expressions per engine.

std::string Str(const Value& v) { return v ? *v : std::string(); }

Result<JobState> ParseJobState(std::string_view s) {
  for (JobState st : {JobState::kPlanned, JobState::kRunning, JobState::kDone, JobState::kFailed,
                      JobState::kCancelled}) {
    if (JobStateName(st) == s) return st;
  }
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("ferry_jobs holds an unknown job state '{}'", s));
}

Result<ChunkState> ParseChunkState(std::string_view s) {
  for (ChunkState st :
       {ChunkState::kPending, ChunkState::kLeased, ChunkState::kDone, ChunkState::kFailed}) {
    if (ChunkStateName(st) == s) return st;
  }
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("ferry_chunks holds an unknown chunk state '{}'", s));
}

std::string JobSelect(const EngineTraits& d) {
  return fmt::format(
      "SELECT job_id, kind, spec, state, {}, {}, {}, owner, rows_done, rows_failed, bytes_done, "
      "checkpoint, error FROM ferry_jobs",
      d.IsoTimestamp("created_at"), d.IsoTimestamp("updated_at"), d.IsoTimestamp("finished_at"));
}

Result<JobRow> JobFrom(const std::vector<Value>& r) {
  JobRow job;
  job.job_id = Str(r[0]);
  job.kind = Str(r[1]);
  job.spec = Str(r[2]);
  FERRY_ASSIGN_OR_RETURN(job.state, ParseJobState(Str(r[3])));
  job.created_at = Str(r[4]);
  job.updated_at = Str(r[5]);
  job.finished_at = Str(r[6]);
  job.owner = Str(r[7]);
  job.rows_done = ColumnInt64(r[8]);
  job.rows_failed = ColumnInt64(r[9]);
  job.bytes_done = ColumnInt64(r[10]);
  job.checkpoint = Str(r[11]);
  job.error = Str(r[12]);
  return job;
}

constexpr const char* kChunkColumns =
    "job_id, chunk_id, table_name, range_spec, state, lease_owner, attempts, \"rows\", bytes, "
    "hash, error";

Result<ChunkRow> ChunkFrom(const std::vector<Value>& r) {
  ChunkRow c;
  c.job_id = Str(r[0]);
  c.chunk_id = ColumnInt64(r[1]);
  c.table_name = Str(r[2]);
  c.range_spec = Str(r[3]);
  FERRY_ASSIGN_OR_RETURN(c.state, ParseChunkState(Str(r[4])));
  c.lease_owner = Str(r[5]);
  c.attempts = static_cast<int>(ColumnInt64(r[6]));
  c.rows = ColumnInt64(r[7]);
  c.bytes = ColumnInt64(r[8]);
  c.hash = Str(r[9]);
  c.error = Str(r[10]);
  return c;
}

std::string_view Terminal(JobState s) {
  return s == JobState::kDone || s == JobState::kFailed || s == JobState::kCancelled ? "1" : "0";
}

// The local host name ("" when unknown).
std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

}  // namespace

std::string_view JobStateName(JobState s) {
  switch (s) {
    case JobState::kPlanned: return "planned";
    case JobState::kRunning: return "running";
    case JobState::kDone: return "done";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::string_view ChunkStateName(ChunkState s) {
  switch (s) {
    case ChunkState::kPending: return "pending";
    case ChunkState::kLeased: return "leased";
    case ChunkState::kDone: return "done";
    case ChunkState::kFailed: return "failed";
  }
  return "unknown";
}

std::string ThisWorkerName() { return fmt::format("{}:{}", HostName(), getpid()); }

Status ControlTables::Ensure() {
  const bool pg = conn_.engine() == Engine::kPostgres;
  const bool outer = conn_.InTransaction();
  if (!outer) FERRY_RETURN_IF_ERROR(conn_.Begin());
  auto body = [&]() -> Status {
    if (pg) {
      // Two processes creating the tables at once would otherwise collide
      // on the catalog's unique indexes.
      FERRY_RETURN_IF_ERROR(
          conn_.Query(fmt::format("SELECT pg_advisory_xact_lock({})", kEnsureLockKey)).status());
    }
    FERRY_RETURN_IF_ERROR(conn_.Exec(pg ? kPgDdl : kSqliteDdl).status());
    FERRY_ASSIGN_OR_RETURN(
        QueryResult meta,
        conn_.Query("SELECT spec FROM ferry_jobs WHERE job_id = $1", {std::string(kMetaJobId)}));
    if (meta.empty()) {
      const EngineTraits& d = conn_.traits();
      return conn_
          .Query(fmt::format("INSERT INTO ferry_jobs (job_id, kind, spec, state, created_at, "
                             "updated_at) VALUES ($1, 'meta', $2, 'done', {0}, {0})",
                             d.Now()),
                 {std::string(kMetaJobId), fmt::format("{{\"format\":{}}}", kFormatVersion)})
          .status();
    }
    // {"format":N}
    const std::string& spec = meta.Text(0, 0);
    int format = 0;
    size_t colon = spec.find(':');
    if (colon != std::string::npos) {
      std::from_chars(spec.data() + colon + 1, spec.data() + spec.size(), format);
    }
    if (format > kFormatVersion) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("the control tables ferry_jobs/ferry_chunks on {} have format {}, "
                                "newer than this ferry understands ({}); upgrade ferry",
                                conn_.redacted_url(), format, kFormatVersion));
    }
    return Status();
  };
  Status s = body();
  if (outer) return s;
  if (!s.ok()) {
    (void)conn_.Rollback();
    return s;
  }
  return conn_.Commit();
}

Status ControlTables::CreateJob(const JobRow& job) {
  const EngineTraits& d = conn_.traits();
  auto r = conn_.Query(
      fmt::format("INSERT INTO ferry_jobs (job_id, kind, spec, state, created_at, updated_at, "
                  "owner, rows_done, rows_failed, bytes_done, checkpoint, error) "
                  "VALUES ($1, $2, $3, $4, {0}, {0}, $5, $6, $7, $8, $9, $10)",
                  d.Now()),
      {job.job_id, job.kind, job.spec, std::string(JobStateName(job.state)), job.owner,
       std::to_string(job.rows_done), std::to_string(job.rows_failed),
       std::to_string(job.bytes_done), job.checkpoint, job.error});
  if (!r.ok()) {
    Status s = std::move(r).TakeStatus();
    if (s.Get("sqlstate") == "23505" || s.message().find("UNIQUE") != std::string::npos) {
      return Status(StatusCode::kAlreadyExists,
                    fmt::format("job '{}' exists already in ferry_jobs", job.job_id));
    }
    return s;
  }
  return Status();
}

Result<std::optional<JobRow>> ControlTables::GetJob(const std::string& job_id) {
  const EngineTraits& d = conn_.traits();
  FERRY_ASSIGN_OR_RETURN(QueryResult r,
                         conn_.Query(JobSelect(d) + " WHERE job_id = $1 AND kind <> 'meta'",
                                     {job_id}));
  if (r.empty()) return std::optional<JobRow>();
  FERRY_ASSIGN_OR_RETURN(JobRow job, JobFrom(r.rows[0]));
  return std::optional<JobRow>(std::move(job));
}

Result<std::vector<JobRow>> ControlTables::ListJobs(const std::string& kind) {
  const EngineTraits& d = conn_.traits();
  Params params;
  std::string sql = JobSelect(d) + " WHERE kind <> 'meta'";
  if (!kind.empty()) {
    sql += " AND kind = $1";
    params.push_back(kind);
  }
  sql += " ORDER BY created_at, job_id";
  FERRY_ASSIGN_OR_RETURN(QueryResult r, conn_.Query(sql, params));
  std::vector<JobRow> jobs;
  jobs.reserve(r.rows.size());
  for (const auto& row : r.rows) {
    FERRY_ASSIGN_OR_RETURN(JobRow job, JobFrom(row));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

Status ControlTables::UpdateJob(const JobRow& job) {
  const EngineTraits& d = conn_.traits();
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn_.Query(fmt::format("UPDATE ferry_jobs SET state = $2, owner = $3, rows_done = $4, "
                              "rows_failed = $5, bytes_done = $6, checkpoint = $7, error = $8, "
                              "updated_at = {0}, finished_at = CASE WHEN $9 = '1' THEN {0} ELSE "
                              "NULL END WHERE job_id = $1 AND kind <> 'meta'",
                              d.Now()),
                  {job.job_id, std::string(JobStateName(job.state)), job.owner,
                   std::to_string(job.rows_done), std::to_string(job.rows_failed),
                   std::to_string(job.bytes_done), job.checkpoint, job.error,
                   std::string(Terminal(job.state))}));
  if (r.rows_affected == 0) {
    return Status(StatusCode::kNotFound,
                  fmt::format("job '{}' is not in ferry_jobs (deleted by another run?)",
                              job.job_id));
  }
  return Status();
}

Status ControlTables::DeleteJob(const std::string& job_id) {
  const bool outer = conn_.InTransaction();
  if (!outer) FERRY_RETURN_IF_ERROR(conn_.Begin());
  Status s = conn_.Query("DELETE FROM ferry_chunks WHERE job_id = $1", {job_id}).status();
  if (s.ok()) {
    s = conn_.Query("DELETE FROM ferry_jobs WHERE job_id = $1 AND kind <> 'meta'", {job_id})
            .status();
  }
  if (outer) return s;
  if (!s.ok()) {
    (void)conn_.Rollback();
    return s;
  }
  return conn_.Commit();
}

Status ControlTables::AddChunks(const std::vector<ChunkRow>& chunks) {
  if (chunks.empty()) return Status();
  const bool outer = conn_.InTransaction();
  if (!outer) FERRY_RETURN_IF_ERROR(conn_.Begin());
  // Multi-row INSERTs of up to 500 chunks (8 parameters each).
  constexpr size_t kPerStatement = 500;
  Status s;
  for (size_t start = 0; start < chunks.size() && s.ok(); start += kPerStatement) {
    size_t end = std::min(chunks.size(), start + kPerStatement);
    std::string sql =
        "INSERT INTO ferry_chunks (job_id, chunk_id, table_name, range_spec, state, attempts, "
        "\"rows\", bytes) VALUES ";
    Params params;
    params.reserve((end - start) * 8);
    for (size_t i = start; i < end; ++i) {
      const ChunkRow& c = chunks[i];
      size_t b = params.size();
      sql += fmt::format("{}(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})", i == start ? "" : ", ",
                         b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8);
      params.push_back(c.job_id);
      params.push_back(std::to_string(c.chunk_id));
      params.push_back(c.table_name);
      params.push_back(c.range_spec);
      params.push_back(std::string(ChunkStateName(c.state)));
      params.push_back(std::to_string(c.attempts));
      params.push_back(std::to_string(c.rows));
      params.push_back(std::to_string(c.bytes));
    }
    s = conn_.Query(sql, params).status();
  }
  if (outer) return s;
  if (!s.ok()) {
    (void)conn_.Rollback();
    return s;
  }
  return conn_.Commit();
}

Result<std::optional<ChunkRow>> ControlTables::LeaseChunk(const std::string& job_id,
                                                          const std::string& owner,
                                                          std::chrono::seconds lease,
                                                          int max_attempts) {
  const bool pg = conn_.engine() == Engine::kPostgres;
  const EngineTraits& d = conn_.traits();
  const std::string eligible = fmt::format(
      "job_id = $1 AND (state = 'pending' OR (state = 'leased' AND lease_expires_at < {}) OR "
      "(state = 'failed' AND attempts < $4))",
      d.Now());
  Params params{job_id, owner, std::to_string(lease.count()), std::to_string(max_attempts)};
  if (pg) {
    std::string cols;
    for (std::string_view c : {"job_id", "chunk_id", "table_name", "range_spec", "state",
                               "lease_owner", "attempts", "\"rows\"", "bytes", "hash", "error"}) {
      cols += fmt::format("{}c.{}", cols.empty() ? "" : ", ", c);
    }
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r,
        conn_.Query(
            fmt::format("UPDATE ferry_chunks c SET state = 'leased', lease_owner = $2, "
                        "lease_expires_at = {}, attempts = c.attempts + 1, "
                        "started_at = coalesce(c.started_at, now()) "
                        "FROM (SELECT job_id, chunk_id FROM ferry_chunks WHERE {} "
                        "ORDER BY chunk_id LIMIT 1 FOR UPDATE SKIP LOCKED) s "
                        "WHERE c.job_id = s.job_id AND c.chunk_id = s.chunk_id RETURNING {}",
                        d.NowPlusSeconds(3), eligible, cols),
            params));
    if (r.empty()) return std::optional<ChunkRow>();
    FERRY_ASSIGN_OR_RETURN(ChunkRow c, ChunkFrom(r.rows[0]));
    return std::optional<ChunkRow>(std::move(c));
  }
  // SQLite: one writer at a time, so select-then-update under BEGIN IMMEDIATE.
  const bool outer = conn_.InTransaction();
  if (!outer) FERRY_RETURN_IF_ERROR(conn_.Begin());
  auto body = [&]() -> Result<std::optional<ChunkRow>> {
    FERRY_ASSIGN_OR_RETURN(
        QueryResult pick,
        conn_.Query(fmt::format("SELECT chunk_id FROM ferry_chunks WHERE {} ORDER BY chunk_id "
                                "LIMIT 1",
                                eligible),
                    params));
    if (pick.empty()) return std::optional<ChunkRow>();
    std::string chunk_id = pick.Text(0, 0);
    FERRY_RETURN_IF_ERROR(
        conn_
            .Query(fmt::format("UPDATE ferry_chunks SET state = 'leased', lease_owner = $2, "
                               "lease_expires_at = {}, attempts = attempts + 1, "
                               "started_at = coalesce(started_at, {}) "
                               "WHERE job_id = $1 AND chunk_id = $4",
                               d.NowPlusSeconds(3), d.Now()),
                   {job_id, owner, std::to_string(lease.count()), chunk_id})
            .status());
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r,
        conn_.Query(fmt::format("SELECT {} FROM ferry_chunks WHERE job_id = $1 AND chunk_id = $2",
                                kChunkColumns),
                    {job_id, chunk_id}));
    if (r.empty()) return Status(StatusCode::kInternal, "leased chunk vanished");
    FERRY_ASSIGN_OR_RETURN(ChunkRow c, ChunkFrom(r.rows[0]));
    return std::optional<ChunkRow>(std::move(c));
  };
  auto result = body();
  if (outer) return result;
  if (!result.ok()) {
    (void)conn_.Rollback();
    return result;
  }
  FERRY_RETURN_IF_ERROR(conn_.Commit());
  return result;
}

Status ControlTables::RenewLease(const std::string& job_id, int64_t chunk_id,
                                 const std::string& owner, std::chrono::seconds lease) {
  const EngineTraits& d = conn_.traits();
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn_.Query(fmt::format("UPDATE ferry_chunks SET lease_expires_at = {} WHERE job_id = $1 "
                              "AND chunk_id = $2 AND lease_owner = $4 AND state = 'leased'",
                              d.NowPlusSeconds(3)),
                  {job_id, std::to_string(chunk_id), std::to_string(lease.count()), owner}));
  if (r.rows_affected == 0) {
    return Status(StatusCode::kAborted,
                  fmt::format("lost the lease on chunk {} of job '{}' (another worker took it)",
                              chunk_id, job_id));
  }
  return Status();
}

Status ControlTables::FinishChunk(const ChunkRow& chunk) {
  const EngineTraits& d = conn_.traits();
  // Only the lease holder may finish a chunk: a worker whose lease expired
  // and was taken over gets kAborted and must roll its rows back.
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn_.Query(fmt::format("UPDATE ferry_chunks SET state = $3, \"rows\" = $4, bytes = $5, "
                              "hash = $6, error = $7, finished_at = {}, lease_expires_at = NULL, "
                              "attempts = $9 "
                              "WHERE job_id = $1 AND chunk_id = $2 AND lease_owner = $8 AND "
                              "state = 'leased'",
                              d.Now()),
                  {chunk.job_id, std::to_string(chunk.chunk_id),
                   std::string(ChunkStateName(chunk.state)), std::to_string(chunk.rows),
                   std::to_string(chunk.bytes), chunk.hash, chunk.error, chunk.lease_owner,
                   std::to_string(chunk.attempts)}));
  if (r.rows_affected == 0) {
    return Status(StatusCode::kAborted,
                  fmt::format("chunk {} of job '{}' is no longer leased by {} (its lease expired "
                              "and another worker took it, or the job was reset)",
                              chunk.chunk_id, chunk.job_id, chunk.lease_owner));
  }
  return Status();
}

Result<std::vector<ChunkRow>> ControlTables::ListChunks(const std::string& job_id) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn_.Query(fmt::format("SELECT {} FROM ferry_chunks WHERE job_id = $1 ORDER BY chunk_id",
                              kChunkColumns),
                  {job_id}));
  std::vector<ChunkRow> chunks;
  chunks.reserve(r.rows.size());
  for (const auto& row : r.rows) {
    FERRY_ASSIGN_OR_RETURN(ChunkRow c, ChunkFrom(row));
    chunks.push_back(std::move(c));
  }
  return chunks;
}

Status ControlTables::ReleaseLease(const std::string& job_id, int64_t chunk_id,
                                   const std::string& owner) {
  return conn_
      .Query("UPDATE ferry_chunks SET state = 'pending', lease_owner = '', lease_expires_at = "
             "NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END "
             "WHERE job_id = $1 AND chunk_id = $2 AND lease_owner = $3 AND state = 'leased'",
             {job_id, std::to_string(chunk_id), owner})
      .status();
}

Result<int64_t> ControlTables::ReclaimDeadLeases(const std::string& job_id) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn_.Query("SELECT DISTINCT lease_owner FROM ferry_chunks WHERE job_id = $1 AND "
                  "state = 'leased'",
                  {job_id}));
  const std::string host = HostName();
  int64_t released = 0;
  for (const auto& row : r.rows) {
    std::string owner = Str(row[0]);
    // "host:pid" or "host:pid/worker".
    std::string_view process = std::string_view(owner).substr(0, owner.find('/'));
    size_t colon = process.rfind(':');
    if (colon == std::string_view::npos || process.substr(0, colon) != host) continue;
    int pid = 0;
    std::string_view digits = process.substr(colon + 1);
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
    if (ec != std::errc() || pid <= 0) continue;
    if (pid == getpid()) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to probe)
    FERRY_ASSIGN_OR_RETURN(
        QueryResult u,
        conn_.Query("UPDATE ferry_chunks SET state = 'pending', lease_owner = '', "
                    "lease_expires_at = NULL WHERE job_id = $1 AND lease_owner = $2 AND "
                    "state = 'leased'",
                    {job_id, owner}));
    released += u.rows_affected;
  }
  return released;
}

Status ControlTables::ResetFailedChunks(const std::string& job_id) {
  return conn_
      .Query("UPDATE ferry_chunks SET state = 'pending', attempts = 0, lease_owner = '', "
             "lease_expires_at = NULL WHERE job_id = $1 AND state = 'failed'",
             {job_id})
      .status();
}

}  // namespace ferry
