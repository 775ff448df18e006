// Run of a copy from CQL to PostgreSQL (see copy_from_cql.h).
//
// In:     the checked setup (copy_from_cql_plan.cc).
// Out:    rows in the PostgreSQL tables; kCopy events.
// Resume: ferry_copy_ranges on the target lists each table's token ranges
//         with their state. A range's rows and its `done` mark commit in one
//         PostgreSQL transaction, which also holds the range's row lock
//         (FOR UPDATE SKIP LOCKED) while it runs: a process killed mid-range
//         leaves nothing of it (the server rolls the transaction back), so
//         the next run copies it again from scratch with no duplicate, and
//         several processes never copy the same range at once.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "drivers/registry.h"
#include "move/copy_from_cql.h"
#include "move/copy_from_cql_internal.h"
#include "move/copy_progress.h"

namespace ferry {
namespace cqlback {
namespace {

using Clock = std::chrono::steady_clock;

enum class RangeState { kPending, kDone, kFailed };

std::string_view StateName(RangeState s) {
  switch (s) {
    case RangeState::kPending: return "pending";
    case RangeState::kDone: return "done";
    case RangeState::kFailed: return "failed";
  }
  return "pending";
}

constexpr size_t kFlushBytes = 256 * 1024;

constexpr const char* kCreateRanges =
    "CREATE TABLE IF NOT EXISTS ferry_copy_ranges (\n"
    "  job_id text NOT NULL,\n"
    "  table_name text NOT NULL,\n"
    "  range_start bigint NOT NULL,\n"
    "  range_end bigint NOT NULL,\n"
    "  source text NOT NULL,\n"
    "  state text NOT NULL DEFAULT 'pending',\n"
    "  rows bigint NOT NULL DEFAULT 0,\n"
    "  bytes bigint NOT NULL DEFAULT 0,\n"
    "  error text,\n"
    "  finished_at timestamptz,\n"
    "  PRIMARY KEY (job_id, table_name, range_start)\n"
    ")";

bool Retryable(StatusCode code) {
  return code == StatusCode::kUnavailable || code == StatusCode::kAborted ||
         code == StatusCode::kDeadlineExceeded;
}

// Rows per second over all workers (0: no limit).
class RateLimit {
 public:
  explicit RateLimit(double rate) : rate_(rate), start_(Clock::now()) {}
  bool Limited() const { return rate_ > 0; }
  void Take(int64_t rows) {
    if (rate_ <= 0) return;
    int64_t total = taken_ += rows;
    auto due = start_ + std::chrono::duration<double>(static_cast<double>(total) / rate_);
    if (due > Clock::now()) std::this_thread::sleep_until(due);
  }

 private:
  double rate_;
  Clock::time_point start_;
  std::atomic<int64_t> taken_{0};
};

// Everything the workers share.
struct Run {
  const CopyOptions* options = nullptr;
  const BackSetup* setup = nullptr;
  Progress* progress = nullptr;
  RateLimit* rate = nullptr;
  std::atomic<bool> cancelled{false};
};

// The job's ranges, the tables created or emptied, in one transaction.
Status SetUpJob(Connection& pg, const CopyOptions& o, const BackSetup& s) {
  FERRY_RETURN_IF_ERROR(pg.Begin());
  auto body = [&]() -> Status {
    FERRY_RETURN_IF_ERROR(
        pg.Exec(fmt::format("SET LOCAL lock_timeout = {}", o.lock_timeout.count())).status());
    FERRY_RETURN_IF_ERROR(pg.Exec(kCreateRanges).status());
    if (o.restart) {
      FERRY_RETURN_IF_ERROR(
          pg.Query("DELETE FROM ferry_copy_ranges WHERE job_id = $1", {s.job_id}).status());
    }
    for (const BackTable& t : s.tables) {
      if (!t.create_sql.empty()) FERRY_RETURN_IF_ERROR(pg.Exec(t.create_sql).status());
      if (t.target_exists && t.target_has_rows && (o.restart || (!s.resumes && o.truncate))) {
        FERRY_RETURN_IF_ERROR(pg.Exec("TRUNCATE " + QuoteIdent(t.target)).status());
      }
      if (s.resumes) continue;
      for (const auto& [lo, hi] : TokenRanges(s.ranges_per_table)) {
        FERRY_RETURN_IF_ERROR(pg.Query("INSERT INTO ferry_copy_ranges (job_id, table_name, range_start, "
                                       "range_end, source) VALUES ($1, $2, $3, $4, $5)",
                                       {s.job_id, t.target, std::to_string(lo), std::to_string(hi),
                                        t.keyspace + "." + t.table})
                                  .status());
      }
    }
    // A new run retries the ranges that failed before.
    return pg.Query("UPDATE ferry_copy_ranges SET state = 'pending', error = NULL "
                    "WHERE job_id = $1 AND state = 'failed'",
                    {s.job_id})
        .status();
  };
  Status st = body();
  if (!st.ok()) {
    (void)pg.Rollback();
    return st;
  }
  return pg.Commit();
}

// The key columns of a row, for an error message.
std::string KeyText(const BackTable& t, const RowView& row) {
  std::string out;
  for (size_t i = 0; i < t.key_count; ++i) {
    out += fmt::format("{}{}={}", i ? ", " : "", t.columns[i].name,
                       row.fields[i] ? std::string(*row.fields[i]) : "null");
  }
  return out;
}

// Streams one token range from CQL into an open COPY FROM STDIN.
Status CopyRange(Connection& cql, CopyWriter& writer, const BackTable& t, int64_t lo, int64_t hi,
                 RateLimit& rate, int64_t* rows, int64_t* bytes) {
  std::string buf;
  int64_t pending_rows = 0;
  auto flush = [&]() -> Status {
    *bytes += static_cast<int64_t>(buf.size());
    Status s = writer.Write(buf);
    buf.clear();
    rate.Take(pending_rows);
    pending_rows = 0;
    return s;
  };
  Status s = cql.Stream(t.SelectCql(), {std::to_string(lo), std::to_string(hi)}, [&](const RowView& row) {
    for (size_t i = 0; i < t.columns.size(); ++i) {
      if (i > 0) buf += '\t';
      Status f = AppendCopyField(t.columns[i], row.fields[i], &buf);
      if (!f.ok()) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("row ({}) of {}.{}: {}", KeyText(t, row), t.keyspace, t.table, f.message()));
      }
    }
    buf += '\n';
    ++*rows;
    ++pending_rows;
    if (buf.size() >= kFlushBytes || (pending_rows >= 100 && rate.Limited())) return flush();
    return Status();
  });
  if (s.ok() && !buf.empty()) s = flush();
  if (!s.ok()) {
    (void)writer.Abort(s.message());
    return s;
  }
  return writer.Finish().status();
}

// One leased range.
struct Lease {
  std::string table;
  int64_t lo = 0, hi = 0;
};

// The next pending range, locked by this worker's open transaction; nullopt
// (and no transaction) when none is left.
Result<std::optional<Lease>> LeaseRange(Connection& pg, const std::string& job_id) {
  FERRY_RETURN_IF_ERROR(pg.Begin());
  auto r = pg.Query("SELECT table_name, range_start, range_end FROM ferry_copy_ranges "
                    "WHERE job_id = $1 AND state = 'pending' ORDER BY table_name, range_start "
                    "LIMIT 1 FOR UPDATE SKIP LOCKED",
                    {job_id});
  if (!r.ok() || r->empty()) {
    (void)pg.Rollback();
    if (!r.ok()) return r.status();
    return std::optional<Lease>();
  }
  return std::optional<Lease>(Lease{r->Text(0, 0), std::stoll(r->Text(0, 1)), std::stoll(r->Text(0, 2))});
}

// Copies the leased range and marks it done, then commits; on failure
// rolls back (nothing of the range stays).
Status CopyLeased(Connection& pg, Connection& cql, const BackTable& t, const Lease& l, const BackSetup& s,
                  RateLimit& rate, int64_t* rows, int64_t* bytes) {
  auto body = [&]() -> Status {
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<CopyWriter> writer, pg.CopyIn(t.CopySql()));
    FERRY_RETURN_IF_ERROR(CopyRange(cql, *writer, t, l.lo, l.hi, rate, rows, bytes));
    return pg.Query("UPDATE ferry_copy_ranges SET state = $4, rows = $5, bytes = $6, error = NULL, "
                    "finished_at = now() WHERE job_id = $1 AND table_name = $2 AND range_start = $3",
                    {s.job_id, l.table, std::to_string(l.lo), std::string(StateName(RangeState::kDone)),
                     std::to_string(*rows), std::to_string(*bytes)})
        .status();
  };
  Status st = body();
  if (!st.ok()) {
    (void)pg.Rollback();
    return st;
  }
  return pg.Commit();
}

Status MarkFailed(Connection& pg, const std::string& job_id, const Lease& l, const Status& why) {
  return pg.Query("UPDATE ferry_copy_ranges SET state = $4, error = $5 "
                  "WHERE job_id = $1 AND table_name = $2 AND range_start = $3",
                  {job_id, l.table, std::to_string(l.lo), std::string(StateName(RangeState::kFailed)),
                   why.ToString()})
      .status();
}

// A worker: its own PostgreSQL and CQL connections; takes ranges until none
// is left or the run is cancelled. Retryable errors reconnect and retry the
// range (max_attempts); others mark it failed and go on.
Status Worker(Run& run) {
  const CopyOptions& o = *run.options;
  const BackSetup& s = *run.setup;
  std::unique_ptr<Connection> pg, cql;
  std::map<std::pair<std::string, int64_t>, int> attempts;
  int64_t chunk_id = 0;
  while (!(o.cancel != nullptr && o.cancel->load())) {
    if (!pg) {
      FERRY_ASSIGN_OR_RETURN(pg, OpenConnection(o.to_url));
    }
    if (!cql) {
      FERRY_ASSIGN_OR_RETURN(cql, OpenConnection(o.from_url, {.read_only = true}));
    }
    FERRY_ASSIGN_OR_RETURN(std::optional<Lease> lease, LeaseRange(*pg, s.job_id));
    if (!lease) {
      // Ranges still pending are locked by another session: a live process
      // sharing the job, or one that died (its lock goes when the server
      // notices). Wait for them rather than end with rows missing.
      FERRY_ASSIGN_OR_RETURN(QueryResult left, pg->Query("SELECT count(*) FROM ferry_copy_ranges "
                                                         "WHERE job_id = $1 AND state = 'pending'",
                                                         {s.job_id}));
      if (left.Text(0, 0) == "0") return Status();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    auto it = std::find_if(s.tables.begin(), s.tables.end(),
                           [&](const BackTable& t) { return t.target == lease->table; });
    if (it == s.tables.end()) {  // a range of a table this run does not know
      (void)pg->Rollback();
      return Status(StatusCode::kInternal, "ferry_copy_ranges names table " + lease->table +
                                               " that is not in this job");
    }
    CopyProgress ev;
    ev.table = lease->table;
    ev.chunk_id = ++chunk_id;
    ev.range = fmt::format("token [{}, {}]", lease->lo, lease->hi);
    ev.attempt = ++attempts[{lease->table, lease->lo}];
    run.progress->Emit("chunk_started", ev, false, false);
    int64_t rows = 0, bytes = 0;
    Status st = CopyLeased(*pg, *cql, *it, *lease, s, *run.rate, &rows, &bytes);
    ev.rows = rows;
    ev.bytes = bytes;
    if (st.ok()) {
      run.progress->Emit("chunk_done", ev, true, false);
      continue;
    }
    ev.error = st.ToString();
    if (Retryable(st.code()) && ev.attempt < o.max_attempts) {
      run.progress->Emit("chunk_retry", ev, false, false, "retryable");
      std::this_thread::sleep_for(std::chrono::milliseconds(500 << std::min(ev.attempt - 1, 4)));
      pg.reset();
      cql.reset();
      continue;
    }
    if (Retryable(st.code())) pg.reset();
    if (!pg) {
      FERRY_ASSIGN_OR_RETURN(pg, OpenConnection(o.to_url));
    }
    FERRY_RETURN_IF_ERROR(MarkFailed(*pg, s.job_id, *lease, st));
    run.progress->Emit("chunk_failed", ev, false, true, "range_failed");
  }
  run.cancelled = true;
  return Status();
}

// Totals and failures of the job, from ferry_copy_ranges.
Status ReadSummary(Connection& pg, const std::string& job_id, CopySummary* out) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      pg.Query("SELECT count(*), count(*) FILTER (WHERE state = 'done'), "
               "count(*) FILTER (WHERE state = 'failed'), "
               "coalesce(sum(rows) FILTER (WHERE state = 'done'), 0), "
               "coalesce(sum(bytes) FILTER (WHERE state = 'done'), 0) "
               "FROM ferry_copy_ranges WHERE job_id = $1",
               {job_id}));
  out->chunks_total = std::stoll(r.Text(0, 0));
  out->chunks_done = std::stoll(r.Text(0, 1));
  out->chunks_failed = std::stoll(r.Text(0, 2));
  out->rows_copied = std::stoll(r.Text(0, 3));
  out->bytes_copied = std::stoll(r.Text(0, 4));
  FERRY_ASSIGN_OR_RETURN(QueryResult f,
                         pg.Query("SELECT table_name, range_start, range_end, error FROM ferry_copy_ranges "
                                  "WHERE job_id = $1 AND state = 'failed' ORDER BY 1, 2 LIMIT 20",
                                  {job_id}));
  out->failures.clear();
  for (size_t i = 0; i < f.rows.size(); ++i) {
    out->failures.push_back(
        {f.Text(i, 0), fmt::format("token [{}, {}]", f.Text(i, 1), f.Text(i, 2)), f.Text(i, 3)});
  }
  return Status();
}

// Progress counters of ranges done by earlier runs.
Status SeedProgress(Connection& pg, const BackSetup& s, Progress& progress) {
  for (const BackTable& t : s.tables) {
    FERRY_ASSIGN_OR_RETURN(QueryResult r, pg.Query("SELECT count(*), rows, bytes, state FROM ferry_copy_ranges "
                                                   "WHERE job_id = $1 AND table_name = $2 "
                                                   "GROUP BY rows, bytes, state",
                                                   {s.job_id, t.target}));
    int64_t total = 0;
    for (size_t i = 0; i < r.rows.size(); ++i) total += std::stoll(r.Text(i, 0));
    progress.AddTable(t.target, -1, total);
    for (size_t i = 0; i < r.rows.size(); ++i) {
      if (r.Text(i, 3) != StateName(RangeState::kDone)) continue;
      for (int64_t n = std::stoll(r.Text(i, 0)); n > 0; --n) {
        progress.AddDone(t.target, std::stoll(r.Text(i, 1)), std::stoll(r.Text(i, 2)));
      }
    }
  }
  return Status();
}

}  // namespace
}  // namespace cqlback

Result<std::optional<CopyStatus>> ReadCopyFromCqlStatus(Connection& pg, const std::string& job_id) {
  FERRY_ASSIGN_OR_RETURN(int64_t ranges, cqlback::CountJobRanges(pg, job_id));
  if (ranges == 0) return std::optional<CopyStatus>();
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      pg.Query("SELECT table_name, count(*), count(*) FILTER (WHERE state = 'done'), "
               "count(*) FILTER (WHERE state = 'failed'), "
               "coalesce(sum(rows) FILTER (WHERE state = 'done'), 0), "
               "coalesce(sum(bytes) FILTER (WHERE state = 'done'), 0), "
               "coalesce(max(finished_at)::text, '') "
               "FROM ferry_copy_ranges WHERE job_id = $1 GROUP BY table_name ORDER BY table_name",
               {job_id}));
  CopyStatus st;
  st.job_id = job_id;
  int64_t total = 0, done = 0, failed = 0;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    CopyStatusTable t{r.Text(i, 0)};
    t.chunks_total = std::stoll(r.Text(i, 1));
    t.chunks_done = std::stoll(r.Text(i, 2));
    t.chunks_failed = std::stoll(r.Text(i, 3));
    t.rows = std::stoll(r.Text(i, 4));
    t.bytes = std::stoll(r.Text(i, 5));
    total += t.chunks_total;
    done += t.chunks_done;
    failed += t.chunks_failed;
    st.rows_done += t.rows;
    st.bytes_done += t.bytes;
    st.updated_at = std::max(st.updated_at, r.Text(i, 6));
    st.tables.push_back(std::move(t));
  }
  st.state = done == total ? "done" : failed > 0 ? "failed" : "pending";
  if (st.state == "done") st.finished_at = st.updated_at;
  CopySummary failures;
  FERRY_RETURN_IF_ERROR(cqlback::ReadSummary(pg, job_id, &failures));
  st.failures = std::move(failures.failures);
  return std::optional<CopyStatus>(std::move(st));
}

Result<CopySummary> RunCopyFromCql(const CopyOptions& o, EventBus* bus, CopySummary* partial) {
  using namespace cqlback;
  if (o.dry_run) return Status(StatusCode::kInvalidArgument, "RunCopy with dry_run: call PlanCopy instead");
  auto started = Clock::now();
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> cql, OpenConnection(o.from_url, {.read_only = true}));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> pg, OpenConnection(o.to_url));
  FERRY_ASSIGN_OR_RETURN(BackSetup s, Prepare(o, *cql, *pg));
  cql.reset();
  FERRY_RETURN_IF_ERROR(SetUpJob(*pg, o, s));
  CopySummary summary;
  summary.job_id = s.job_id;
  summary.resumed = s.resumes;
  FERRY_RETURN_IF_ERROR(ReadSummary(*pg, s.job_id, &summary));
  if (summary.chunks_done == summary.chunks_total) {
    summary.already_done = true;
    return summary;
  }
  Progress progress(s.job_id, s.target_display, bus);
  FERRY_RETURN_IF_ERROR(SeedProgress(*pg, s, progress));
  progress.EmitJob("job_started");
  RateLimit rate(o.max_rate);
  Run run;
  run.options = &o;
  run.setup = &s;
  run.progress = &progress;
  run.rate = &rate;
  std::vector<Status> results(static_cast<size_t>(std::max(1, o.workers)));
  std::vector<std::thread> threads;
  for (size_t w = 0; w < results.size(); ++w) {
    threads.emplace_back([&, w] { results[w] = Worker(run); });
  }
  for (auto& t : threads) t.join();
  progress.EmitJob("job_done");
  FERRY_RETURN_IF_ERROR(ReadSummary(*pg, s.job_id, &summary));
  summary.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (partial != nullptr) *partial = summary;
  for (const Status& st : results) FERRY_RETURN_IF_ERROR(st);
  if (run.cancelled && summary.chunks_done + summary.chunks_failed < summary.chunks_total) {
    return Status(StatusCode::kCancelled, fmt::format("copy {} stopped: {} of {} ranges done", s.job_id,
                                                      summary.chunks_done, summary.chunks_total))
        .With("job", s.job_id);
  }
  if (summary.chunks_failed > 0) {
    std::string first = summary.failures.empty() ? "" : summary.failures[0].error;
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("copy {}: {} of {} token ranges failed ({} rows copied); first: {}; "
                              "run the same command again to retry them",
                              s.job_id, summary.chunks_failed, summary.chunks_total, summary.rows_copied,
                              first));
  }
  return summary;
}

}  // namespace ferry
