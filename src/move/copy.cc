// Copy engine: plan (validate, split), then workers lease chunks from the
// target's control tables and move each chunk in one target transaction.
//
// In:     CopyOptions.
// Out:    rows in the target tables; events on a bus; a CopySummary.
// Resume: ferry_jobs/ferry_chunks on the target. A chunk's rows and its
//         FinishChunk() commit together; a re-run leases only chunks that
//         are not done (dead local owners' leases are reclaimed at once,
//         other owners' when their lease expires).
#include "move/copy.h"
#include "move/copy_internal.h"
#include "core/backoff.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include <unistd.h>

#include "core/log.h"
#include "core/url.h"
#include "drivers/registry.h"
#include "move/block_pipe.h"
#include "move/control.h"
#include "move/copy_checks.h"
#include "move/copy_indexes.h"
#include "move/copy_progress.h"
#include "move/copy_cql.h"
#include "move/copy_from_cql.h"
#include "move/copy_types.h"
#include "move/table_info.h"
namespace ferry {

using namespace copy_internal;  // NOLINT: the stages' shared types

std::string DefaultCopyJobId(const CopyOptions& o) {
  if (o.all) return "copy:all";
  std::vector<std::string> names = o.tables;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string joined;
  for (const auto& n : names) joined += (joined.empty() ? "" : ",") + n;
  if (joined.size() > 100) {
    uint64_t h = XXH3_64bits(joined.data(), joined.size());
    joined = fmt::format("{}...{:016x}", joined.substr(0, 80), h);
  }
  return "copy:" + joined;
}

Result<CopyPlan> PlanCopy(const CopyOptions& options) {
#ifdef FERRY_WITH_CQL
  if (IsCqlToPostgres(options)) return PlanCopyFromCql(options);
  if (IsCqlTarget(options.to_url)) return PlanCopyToCql(options);
#endif
  FERRY_ASSIGN_OR_RETURN(Prepared p, Prepare(options, /*for_run=*/false));
  CopyPlan plan;
  plan.job_id = p.job_id;
  plan.source = p.src->redacted_url();
  plan.target = p.target_display;
  plan.resumes = p.existing.has_value() && !options.restart &&
                 p.existing->state != JobState::kDone;
  std::map<std::string, int64_t> existing_chunks;
  if (p.existing && !options.restart) {
    ControlTables ctl(*p.dst);
    FERRY_ASSIGN_OR_RETURN(std::vector<ChunkRow> chunks, ctl.ListChunks(p.job_id));
    for (const auto& c : chunks) existing_chunks[c.table_name]++;
  }
  for (const TableJob& t : p.tables) {
    CopyTablePlan tp;
    tp.source_name = t.source_name;
    tp.target_name = t.target_name;
    tp.split = std::string(SplitName(t.split));
    tp.estimated_rows = t.estimated_rows;
    tp.chunks = t.ranges.empty() ? existing_chunks[t.target_name]
                                 : static_cast<int64_t>(t.ranges.size());
    tp.target_exists = t.target_exists;
    tp.target_has_rows = t.target_has_rows;
    tp.ddl = t.ddl;
    for (const auto& a : t.after) tp.ddl.push_back("-- after the data:\n" + a);
    tp.partition_note = t.partition_note;
    plan.tables.push_back(std::move(tp));
  }
  return plan;
}

namespace {

// --restart: empties the tables the old job copied and forgets its progress,
// in one target transaction.
Status RestartJob(const CopyOptions& o) {
  bool placeholder = false;
  FERRY_ASSIGN_OR_RETURN(ConnPtr dst, OpenTargetForPlan(o.to_url, &placeholder));
  ControlTables ctl(*dst);
  std::string job_id = o.job_id.empty() ? DefaultCopyJobId(o) : o.job_id;
  FERRY_ASSIGN_OR_RETURN(std::optional<JobRow> job, FindJob(*dst, job_id));
  if (job) {
    nlohmann::json spec = nlohmann::json::parse(job->spec, nullptr, false);
    if (!spec.is_discarded() && spec.value("mode", "") == "append" && !o.truncate) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("job '{}' appended to tables that had rows; --restart would "
                                "empty them. Add --truncate to accept that, or remove the "
                                "copied rows yourself and delete the job",
                                job_id));
    }
    FERRY_RETURN_IF_ERROR(dst->Begin());
    Status s = SetLockTimeout(*dst, o.lock_timeout);
    if (s.ok() && !spec.is_discarded() && spec.contains("tables")) {
      for (const auto& t : spec["tables"]) {
        std::string name = t.value("target", "");
        auto info = DescribeTable(*dst, name);
        if (!info.ok()) continue;  // dropped since: nothing to empty
        s = ExecUnderLockTimeout(
            *dst, (IsPg(*dst) ? "TRUNCATE " : "DELETE FROM ") + info->QualifiedName(), name);
        if (!s.ok()) break;
      }
    }
    if (s.ok()) s = ctl.DeleteJob(job_id);
    if (!s.ok()) {
      (void)dst->Rollback();
      return s;
    }
    FERRY_RETURN_IF_ERROR(dst->Commit());
  }
  return Status();
}

// Creates the job (target DDL, TRUNCATE, job and chunk rows in one target
// transaction), or takes over an unfinished one (dead leases reclaimed,
// failed chunks pending again).
Result<JobRow> StartOrResumeJob(const CopyOptions& o, Prepared& p, ControlTables& ctl,
                                bool resuming) {
  JobRow job;
  if (!resuming) {
    // Everything is checked; now the target changes, in one transaction.
    job.job_id = p.job_id;
    job.kind = "copy";
    job.spec = SpecJson(o, *p.src, *p.dst, p.tables).dump();
    job.state = JobState::kRunning;
    job.owner = ThisWorkerName();
    std::vector<ChunkRow> chunks;
    for (const TableJob& t : p.tables) {
      for (const KeyRange& r : t.ranges) {
        ChunkRow c;
        c.job_id = p.job_id;
        c.chunk_id = static_cast<int64_t>(chunks.size()) + 1;
        c.table_name = t.target_name;
        c.range_spec = r.Encode();
        chunks.push_back(std::move(c));
      }
    }
    FERRY_RETURN_IF_ERROR(ctl.Ensure());
    FERRY_RETURN_IF_ERROR(p.dst->Begin());
    Status s = SetLockTimeout(*p.dst, o.lock_timeout);
    for (TableJob& t : p.tables) {
      if (!s.ok()) break;
      for (const std::string& ddl : t.ddl) {
        s = ExecUnderLockTimeout(*p.dst, ddl, t.target_name);
        if (!s.ok()) {
          s = WithTable(std::move(s).Prefix("creating the target table"), t.target_name);
          break;
        }
      }
      if (s.ok() && o.truncate && t.target_exists && t.target_has_rows) {
        s = ExecUnderLockTimeout(
            *p.dst, (IsPg(*p.dst) ? "TRUNCATE " : "DELETE FROM ") + t.dst.QualifiedName(),
            t.target_name);
      }
    }
    if (s.ok()) s = ctl.CreateJob(job);
    if (s.ok()) s = ctl.AddChunks(chunks);
    if (!s.ok()) {
      (void)p.dst->Rollback();
      return s;
    }
    FERRY_RETURN_IF_ERROR(p.dst->Commit());
  } else {
    job = *p.existing;
    FERRY_ASSIGN_OR_RETURN(int64_t reclaimed, ctl.ReclaimDeadLeases(p.job_id));
    if (reclaimed > 0) FERRY_LOG_INFO("copy: reclaimed {} chunks of dead workers", reclaimed);
    FERRY_RETURN_IF_ERROR(ctl.ResetFailedChunks(p.job_id));
    job.state = JobState::kRunning;
    job.owner = ThisWorkerName();
    job.error.clear();
    FERRY_RETURN_IF_ERROR(ctl.UpdateJob(job));
  }
  return job;
}

// The job's state after this run's workers stopped.
void SetFinalState(JobRow& job, const CopySummary& summary, const Status& fatal, bool cancelled,
                   bool all_done) {
  if (cancelled && fatal.ok()) {
    job.state = JobState::kCancelled;
    job.error = "cancelled";
  } else if (!fatal.ok()) {
    job.state = JobState::kFailed;
    job.error = fatal.ToString();
  } else if (summary.chunks_failed > 0) {
    job.state = JobState::kFailed;
    job.error = fmt::format("{} chunks failed", summary.chunks_failed);
  } else {
    job.state = all_done ? JobState::kDone : JobState::kRunning;  // others still at work
    job.error.clear();
  }
}

// The error a run that did not finish every chunk returns.
Status UnfinishedError(const std::string& job_id, const CopySummary& summary, bool cancelled) {
  if (cancelled) {
    return Status(StatusCode::kCancelled,
                  fmt::format("copy job {} stopped by a signal: {} of {} chunks done, no chunk "
                              "left leased; run the same command again to resume",
                              job_id, summary.chunks_done, summary.chunks_total))
        .With("job", job_id);
  }
  if (summary.chunks_failed > 0) {
    Status s(StatusCode::kFailedPrecondition,
             fmt::format("{} of {} chunks failed ({} rows); the first: table {} range {}: {}. "
                         "Fix the cause and run the same command again to retry them",
                         summary.chunks_failed, summary.chunks_total, summary.rows_failed,
                         summary.failures[0].table, summary.failures[0].range,
                         summary.failures[0].error));
    return std::move(s).With("table", summary.failures[0].table);
  }
  return Status();
}

}  // namespace

Result<CopySummary> RunCopy(const CopyOptions& options, EventBus* bus,
                            CopySummary* partial) {
#ifdef FERRY_WITH_CQL
  if (IsCqlToPostgres(options)) return RunCopyFromCql(options, bus, partial);
  if (IsCqlTarget(options.to_url)) return RunCopyToCql(options, bus, partial);
#endif
  auto started = Clock::now();
  CopyOptions o = options;
  if (o.dry_run) {
    return Status(StatusCode::kInvalidArgument, "RunCopy with dry_run: call PlanCopy instead");
  }
  if (o.restart) {
    FERRY_RETURN_IF_ERROR(RestartJob(o));
    o.restart = false;
  }

  FERRY_ASSIGN_OR_RETURN(Prepared p, Prepare(o, /*for_run=*/true));
  ControlTables ctl(*p.dst);
  const bool resuming = p.existing.has_value();
  if (resuming && p.existing->state == JobState::kDone) {
    FERRY_ASSIGN_OR_RETURN(CopySummary s, Tally(*p.dst, p.job_id, p.tables));
    s.already_done = true;
    s.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return s;
  }
  FERRY_ASSIGN_OR_RETURN(JobRow job, StartOrResumeJob(o, p, ctl, resuming));
  // Created tables are described now, for the SQL.
  for (TableJob& t : p.tables) {
    if (!t.target_exists) {
      FERRY_ASSIGN_OR_RETURN(t.dst, DescribeTable(*p.dst, t.target_name));
      t.target_exists = true;
    }
    BuildSql(t, p.dst->engine());
  }

  // Progress starts from what earlier runs finished.
  Progress progress(p.job_id, DatabaseLabel(options.to_url), bus);
  FERRY_ASSIGN_OR_RETURN(std::vector<ChunkRow> chunks, ctl.ListChunks(p.job_id));
  std::map<std::string, int64_t> per_table;
  for (const auto& c : chunks) per_table[c.table_name]++;
  for (const TableJob& t : p.tables) {
    progress.AddTable(t.target_name, t.estimated_rows, per_table[t.target_name]);
  }
  for (const auto& c : chunks) {
    if (c.state == ChunkState::kDone) progress.AddDone(c.table_name, c.rows, c.bytes);
  }
  progress.EmitJob("job_started");

  int workers = o.workers;
  if (!IsPg(*p.dst) && workers > 1) {
    FERRY_LOG_INFO("copy: SQLite takes one writer at a time; using 1 worker");
    workers = 1;
  }
  Status fatal = RunWorkers(o, p.tables, p.job_id, p.snapshot, workers, progress);
  if (IsPg(*p.src)) (void)p.src->Rollback();  // releases the snapshot

  // The coordinator's target session may have died with a server restart.
  if (!p.dst->Query("SELECT 1").ok()) {
    FERRY_ASSIGN_OR_RETURN(p.dst, Open(o.to_url, "target"));
  }
  // No lease of this run outlives it (a worker that failed mid-chunk).
  FERRY_RETURN_IF_ERROR(ReleaseOwnLeases(*p.dst, p.job_id));
  FERRY_ASSIGN_OR_RETURN(CopySummary summary, Tally(*p.dst, p.job_id, p.tables));
  summary.resumed = resuming;
  summary.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  ControlTables ctl2(*p.dst);
  job.rows_done = summary.rows_copied;
  job.rows_failed = summary.rows_failed;
  job.bytes_done = summary.bytes_copied;
  const bool all_done = summary.chunks_done == summary.chunks_total;
  const bool cancelled = o.cancel != nullptr && o.cancel->load() && !all_done;
  if (all_done && fatal.ok()) {
    // Every row is in: build the keys deferred by --create-tables.
    std::vector<DeferredDdl> todo;
    for (const TableJob& t : p.tables) {
      if (!t.after.empty()) todo.push_back({t.target_name, t.after});
    }
    fatal = BuildDeferred(o.to_url, todo, o.workers, o.lock_timeout.count());
  }
  SetFinalState(job, summary, fatal, cancelled, all_done);
  Status upd = ctl2.UpdateJob(job);
  if (!upd.ok()) FERRY_LOG_WARN("copy: recording the job's state: {}", upd.ToString());
  progress.EmitJob("job_done");
  if (partial != nullptr) *partial = summary;
  if (!fatal.ok()) return fatal;
  FERRY_RETURN_IF_ERROR(UnfinishedError(p.job_id, summary, cancelled));
  return summary;
}

Result<CopyStatus> ReadCopyStatus(const std::string& target_url, const std::string& job_id) {
  FERRY_ASSIGN_OR_RETURN(ConnPtr dst, Open(target_url, "target"));
  ControlTables ctl(*dst);
  auto job = ctl.GetJob(job_id);
  if (!job.ok() || !*job) {
    if (!job.ok() && dst->Query("SELECT 1 FROM ferry_jobs LIMIT 0").ok()) {
      return std::move(job).TakeStatus();
    }
#ifdef FERRY_WITH_CQL
    if (dst->engine() == Engine::kPostgres) {  // a copy back from CQL keeps ferry_copy_ranges
      FERRY_ASSIGN_OR_RETURN(std::optional<CopyStatus> back, ReadCopyFromCqlStatus(*dst, job_id));
      if (back) return std::move(*back);
    }
#endif
    std::string known;
    auto jobs = ctl.ListJobs("copy");
    if (jobs.ok()) {
      for (const auto& j : *jobs) known += (known.empty() ? "" : ", ") + j.job_id;
    }
    return Status(StatusCode::kNotFound,
                  fmt::format("no copy job '{}' on {}{}", job_id, dst->redacted_url(),
                              known.empty() ? "" : "; jobs there: " + known));
  }
  CopyStatus st;
  const JobRow& j = **job;
  st.job_id = j.job_id;
  st.state = std::string(JobStateName(j.state));
  st.created_at = j.created_at;
  st.updated_at = j.updated_at;
  st.finished_at = j.finished_at;
  st.owner = j.owner;
  st.error = j.error;
  st.spec = j.spec;
  FERRY_ASSIGN_OR_RETURN(std::vector<ChunkRow> chunks, ctl.ListChunks(job_id));
  std::map<std::string, size_t> index;
  for (const ChunkRow& c : chunks) {
    auto it = index.find(c.table_name);
    if (it == index.end()) {
      it = index.emplace(c.table_name, st.tables.size()).first;
      st.tables.push_back(CopyStatusTable{c.table_name});
    }
    CopyStatusTable& t = st.tables[it->second];
    t.chunks_total++;
    if (c.state == ChunkState::kDone) {
      t.chunks_done++;
      t.rows += c.rows;
      t.bytes += c.bytes;
      st.rows_done += c.rows;
      st.bytes_done += c.bytes;
    } else if (c.state == ChunkState::kFailed) {
      t.chunks_failed++;
      st.rows_failed += c.rows;
      st.failures.push_back({c.table_name, c.range_spec, c.error});
    } else if (c.state == ChunkState::kLeased) {
      t.chunks_leased++;
    }
  }
  return st;
}

}  // namespace ferry
