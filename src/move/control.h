// Control tables for long jobs (copy, verify, backfill): job specs, chunk
// leases, progress and per-chunk results, kept in a database (the copy's
// target, the backfill's own database) so that a killed job resumes, any
// machine can read its progress, and several workers share one job.
//
//   ferry_jobs   (job_id text PK, kind text, spec text (JSON), state text,
//                 created_at, updated_at, finished_at, owner text,
//                 rows_done bigint, rows_failed bigint, bytes_done bigint,
//                 checkpoint text (JSON; e.g. a backfill's last key),
//                 error text)
//   ferry_chunks (job_id text, chunk_id bigint, table_name text,
//                 range_spec text (KeyRange::Encode), state text,
//                 lease_owner text, lease_expires_at, attempts int,
//                 rows bigint, bytes bigint, hash text, error text,
//                 started_at, finished_at, PRIMARY KEY (job_id, chunk_id))
//
// Both engines: PostgreSQL (timestamptz, leases taken with
// FOR UPDATE SKIP LOCKED) and SQLite (ISO-8601 text, leases taken in a
// BEGIN IMMEDIATE transaction). A meta row records the format version.
//
// Exactly-once writes: a worker writes a chunk's rows and calls
// FinishChunk() on the same target connection inside one transaction, so a
// chunk is either done with its rows or not done without them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"

namespace ferry {

enum class JobState { kPlanned, kRunning, kDone, kFailed, kCancelled };
enum class ChunkState { kPending, kLeased, kDone, kFailed };
std::string_view JobStateName(JobState s);
std::string_view ChunkStateName(ChunkState s);

struct JobRow {
  std::string job_id;
  std::string kind;  // "copy", "verify", "backfill"
  std::string spec;  // JSON: what the job does (never a password: URLs redacted)
  JobState state = JobState::kPlanned;
  std::string created_at, updated_at, finished_at;  // ISO-8601 UTC
  std::string owner;                                // host:pid of the last runner
  int64_t rows_done = 0, rows_failed = 0, bytes_done = 0;
  std::string checkpoint;  // JSON, kind-specific
  std::string error;
};

struct ChunkRow {
  std::string job_id;
  int64_t chunk_id = 0;
  std::string table_name;
  std::string range_spec;  // KeyRange::Encode()
  ChunkState state = ChunkState::kPending;
  std::string lease_owner;
  int attempts = 0;
  int64_t rows = 0, bytes = 0;
  std::string hash;  // filled when the job computed one ("" otherwise)
  std::string error;
};

class ControlTables {
 public:
  explicit ControlTables(Connection& conn) : conn_(conn) {}

  // Creates the tables when missing (idempotent, safe to race).
  Status Ensure();

  Status CreateJob(const JobRow& job);
  Result<std::optional<JobRow>> GetJob(const std::string& job_id);
  Result<std::vector<JobRow>> ListJobs(const std::string& kind = "");
  Status UpdateJob(const JobRow& job);  // state, counts, checkpoint, error, owner
  Status DeleteJob(const std::string& job_id);  // and its chunks

  Status AddChunks(const std::vector<ChunkRow>& chunks);  // one transaction
  // Leases up to one pending chunk (or a leased one whose lease expired, or
  // a failed one with attempts < max_attempts) for `owner`; nullopt when none
  // is left.
  Result<std::optional<ChunkRow>> LeaseChunk(const std::string& job_id, const std::string& owner,
                                             std::chrono::seconds lease, int max_attempts);
  Status RenewLease(const std::string& job_id, int64_t chunk_id, const std::string& owner,
                    std::chrono::seconds lease);
  // state done/failed + rows, bytes, hash, error, attempts (a failed chunk
  // with attempts >= max_attempts is not leased again until the job resumes).
  Status FinishChunk(const ChunkRow& chunk);
  Result<std::vector<ChunkRow>> ListChunks(const std::string& job_id);

  // Extensions (copy helper):
  // Puts a chunk leased by `owner` back to pending (a worker giving up on it
  // without counting a failure, e.g. when the job is cancelled).
  Status ReleaseLease(const std::string& job_id, int64_t chunk_id, const std::string& owner);
  // Chunks of `job_id` leased by a process of THIS host that no longer runs
  // (owner "host:pid" or "host:pid/worker" with a dead pid) go back to
  // pending at once, so a re-run after kill -9 need not wait for the lease to
  // expire. Returns how many were released.
  Result<int64_t> ReclaimDeadLeases(const std::string& job_id);
  // Failed chunks of the job back to pending with attempts 0, so a re-run
  // retries them (done chunks are kept).
  Status ResetFailedChunks(const std::string& job_id);

 private:
  Connection& conn_;
};

// "host:pid" of this process, for lease owners.
std::string ThisWorkerName();

}  // namespace ferry
