// Copy: moves tables between two databases (PostgreSQL -> PostgreSQL,
// PostgreSQL <-> SQLite, SQLite -> SQLite) in chunks that resume.
//
// In:     CopyOptions (source and target URLs, tables, filter, workers).
// Out:    the target's tables hold exactly the source rows (of the filter);
//         events on the caller's bus; a CopySummary.
// Resume: the job (ferry_jobs) and its chunks (ferry_chunks) live on the
//         target. Each chunk's rows and its "done" mark are committed in one
//         target transaction, so a run killed at any point resumes from the
//         finished chunks with no duplicates and no gaps.
//
// Paths: PostgreSQL -> PostgreSQL streams COPY ... TO STDOUT (FORMAT binary)
// into COPY ... FROM STDIN (FORMAT binary) without decoding rows; other pairs
// stream rows (Stream) and write them with COPY text format (PostgreSQL
// target) or multi-row prepared INSERTs (SQLite target). The reader's
// callback writes straight into the target, so memory is bounded by one
// buffer per worker, never by table size. All reads of a PostgreSQL source
// in one run share one exported snapshot (pg_export_snapshot).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "observe/event.h"

namespace ferry {

struct CopyOptions {
  std::string from_url;
  std::string to_url;
  std::vector<std::string> tables;  // "t" or "schema.t"; empty with all = true
  bool all = false;                 // every user table of the source
  std::string where;                // SQL filter on the source ("" for all rows)
  int workers = 2;
  int64_t batch_rows = 250000;      // rows per chunk
  // How tables are cut into chunks: "key" (primary-key ranges; an integer
  // key from min/max, others by one pass over the key index), "pages"
  // (PostgreSQL source: ctid page ranges read by TID Range Scans), or "auto"
  // (key when there is a primary key, else pages on PostgreSQL, else one
  // chunk). A resumed job keeps the split it started with. See docs/copy.md.
  std::string split = "auto";
  bool dry_run = false;             // plan only: no write anywhere
  bool create_tables = false;       // create missing target tables
  bool truncate = false;            // empty non-empty target tables first
  bool append = false;              // add to non-empty target tables
  bool restart = false;             // drop the job's progress and copied rows
  std::string job_id;               // "" derives one from the tables
  int max_attempts = 5;             // per chunk, for retryable errors
  std::chrono::seconds lease{300};  // chunk lease (others may take it after)
  // lock_timeout of every TRUNCATE and CREATE ferry runs on a PostgreSQL
  // target: a table locked by another session fails the copy (kDeadlineExceeded,
  // nothing written) instead of waiting for ever.
  std::chrono::milliseconds lock_timeout{10000};
  // Set from another thread (a SIGINT/SIGTERM handler): workers lease no new
  // chunk, the chunk in flight finishes (rows and done mark commit together)
  // or, when it is between attempts, goes back to pending; every lease of
  // this run is released and RunCopy returns kCancelled. A later run with
  // the same options resumes.
  const std::atomic<bool>* cancel = nullptr;
  // PostgreSQL source: read in this exported snapshot (e.g. the one a
  // logical replication slot exported when it was created, for ferry sync)
  // with SET TRANSACTION SNAPSHOT instead of exporting one of its own. The
  // session that exported it must stay open, idle, until RunCopy returns.
  std::string snapshot;

  // CQL targets (cql://, scylla://, cassandra://; docs/copy.md "To
  // Cassandra/ScyllaDB"):
  std::string map_file;     // [[copy.map]] entries (a --map file or ferry.toml); "" for 1:1
  std::string control_url;  // where ferry_jobs/ferry_chunks live; "" for
                            // sqlite:.ferry/copy-control.db in the working directory
  double max_rate = 0;      // rows per second over all workers; 0 for no limit
  bool allow_lossy = false; // copy values CQL cannot hold exactly (cut, see docs)
  int in_flight = 128;      // CQL writes in flight per worker
};

// One planned table.
struct CopyTablePlan {
  std::string source_name;   // as the source qualifies it ("public.t", "t")
  std::string target_name;   // the name on the target
  std::string split;         // "primary key", "ctid pages", "single chunk"
  int64_t estimated_rows = -1;
  int64_t chunks = 0;
  bool target_exists = false;
  bool target_has_rows = false;
  std::vector<std::string> ddl;  // statements --create-tables runs (types, table)
  // How a partitioned source or target is handled ("" when neither is).
  std::string partition_note;
};

struct CopyPlan {
  std::string job_id;
  std::string source;  // redacted URLs
  std::string target;
  bool resumes = false;  // an unfinished job of this id exists on the target
  std::vector<CopyTablePlan> tables;
};

struct CopyFailure {
  std::string table;
  std::string range;
  std::string error;
};

struct CopySummary {
  std::string job_id;
  bool resumed = false;
  bool already_done = false;  // the job had finished before this run
  int64_t rows_copied = 0;    // by all runs of the job
  int64_t rows_failed = 0;    // estimated rows of failed chunks
  int64_t bytes_copied = 0;
  int64_t chunks_done = 0, chunks_failed = 0, chunks_total = 0;
  double seconds = 0;         // this run
  std::vector<CopyFailure> failures;
};

// Checks everything (tables exist, columns compatible, types mappable,
// --where is one condition, the target is not the source table itself,
// target empty or --truncate/--append) and returns the plan without writing
// anything on either side (a SQLite target file that does not exist is not
// created). RunCopy makes the same checks before its first write: a copy
// that fails them leaves both sides as they were (no control tables, no
// new file).
Result<CopyPlan> PlanCopy(const CopyOptions& options);

// Runs (or resumes) the job. Bad input fails before any row is written.
// Returns kFailedPrecondition (with the summary's figures in the message) when
// chunks failed for good; the caller gets the summary via `summary` then.
// Progress goes to `bus` (may be null), published from worker threads: kind
// kCopy, type "job_started", "chunk_started", "chunk_done", "chunk_failed",
// "chunk_retry", "table_done", "job_done", detail CopyProgress.
Result<CopySummary> RunCopy(const CopyOptions& options, EventBus* bus,
                            CopySummary* partial = nullptr);

// Progress of a job read from the control tables on `target_url`.
struct CopyStatusTable {
  std::string table;
  int64_t chunks_total = 0, chunks_done = 0, chunks_failed = 0, chunks_leased = 0;
  int64_t rows = 0, bytes = 0;
};
struct CopyStatus {
  std::string job_id, state, created_at, updated_at, finished_at, owner, error, spec;
  int64_t rows_done = 0, rows_failed = 0, bytes_done = 0;
  std::vector<CopyStatusTable> tables;
  std::vector<CopyFailure> failures;
};
Result<CopyStatus> ReadCopyStatus(const std::string& target_url, const std::string& job_id);

// The job id derived from the tables: "copy:" + sorted names, or
// "copy:all"; names longer than 100 characters are shortened with a hash.
std::string DefaultCopyJobId(const CopyOptions& options);

}  // namespace ferry
