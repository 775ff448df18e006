// Batched backfills in PostgreSQL: `UPDATE t SET <set> WHERE <where>` run in
// small primary-key keyset batches instead of one long statement (or, for
// one worker on PostgreSQL 14+, in heap page ranges by ctid: see
// BackfillScan, move/backfill_internal.h and docs/backfill.md; what follows
// describes key ranges).
//
// In:     a table with a primary key, a SET list ("b = a * 2, c = lower(d)"),
//         an optional condition selecting the rows still to do ("b IS NULL").
// Out:    every row of the table matching the condition updated, batch by
//         batch: each batch is
//           BEGIN; SET LOCAL lock_timeout/statement_timeout;
//           UPDATE t SET <set> WHERE (pk) > (last) AND (pk) <= (upper)
//                                AND (<where>);
//           UPDATE ferry_jobs SET checkpoint = ... ; COMMIT
//         where `upper` is the key found by a keyset read of the primary-key
//         index (`SELECT pk ... WHERE (pk) > (last) ORDER BY pk LIMIT n`),
//         never OFFSET. Lock timeouts, serialization failures and deadlocks
//         are retried with jittered exponential backoff. The batch size
//         adapts so that a batch takes about half of `max_batch`.
// Resume: the job (kind "backfill" in ferry_jobs, in the same database)
//         keeps the last key of each worker range in its checkpoint, written
//         in the same transaction as the batch, so a killed backfill resumes
//         exactly where it stopped: automatically when an unfinished job with
//         the same id exists, or required with `resume`.
// Check:  at the end, rows still matching `where` must be 0 (or `done_check`
//         when given), and `check_query` (when given) must return no rows.
//
// Threading: RunBackfill opens one connection per worker (plus one for the
// job row and the checks); events (kind kBackfill, detail BackfillProgress
// in observe/event.h) are published from worker threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "observe/event.h"

namespace ferry {

// How batches walk the table. kKey: primary-key ranges (any server, any
// number of workers). kPages: heap page ranges by ctid (TID range scans,
// PostgreSQL 14+; one worker; needs a `where` that excludes done rows),
// which reads each batch's pages in order instead of following the index.
// kAuto: kPages when it applies (one worker, PostgreSQL 14+, `where` given,
// a plain table), else kKey. See docs/backfill.md.
enum class BackfillScan { kAuto, kKey, kPages };

struct BackfillOptions {
  // "table" or "schema.table" (unqualified follows search_path).
  std::string table;
  // SET list of the UPDATE, as SQL: "b = a * 2, c = coalesce(d, '')".
  std::string set;
  // Rows still to do (SQL boolean expression over the table's columns);
  // "" means every row. Also the default integrity check: after the run no
  // row may match it.
  std::string where;
  // Overrides the integrity condition: rows matching it are "not done"
  // (e.g. "b IS DISTINCT FROM a * 2"). "" = use `where`; when both are
  // empty no count check is made.
  std::string done_check;
  // A query that must return no rows after the backfill ("" = none).
  std::string check_query;

  // Rows per batch; adapted between min and max when `adaptive` (so that
  // each batch takes about max_batch / 2). An adaptive worker's first batch
  // is a probe of min(batch_rows, max(min_batch_rows, kProbeBatchRows))
  // rows, so that it too stays under max_batch on a slow table; the size
  // then grows from the probe's measured time (up to x4 a step while far
  // under the target, x2 otherwise) until batch_rows is only a ceiling of
  // the start, not of the adaptation.
  int64_t batch_rows = 10000;
  int64_t min_batch_rows = 100;
  int64_t max_batch_rows = 200000;
  bool adaptive = true;
  std::chrono::milliseconds max_batch{200};
  // Pause after each batch (per worker), to leave room for the application.
  std::chrono::milliseconds sleep{0};

  // Parallel workers on disjoint primary-key ranges (1..64).
  int workers = 1;
  // Key or page (ctid) batches; see BackfillScan.
  BackfillScan by = BackfillScan::kAuto;

  // Per batch transaction (SET LOCAL). 0 = no limit.
  std::chrono::milliseconds lock_timeout{2000};
  std::chrono::milliseconds statement_timeout{30000};
  // Attempts per batch on lock timeout, serialization failure, deadlock or
  // statement timeout (a statement timeout also halves the batch).
  int max_attempts = 8;
  // A lost connection (server restart, failover) is reopened with backoff
  // for up to this long before the run gives up (exit 5); the batch in
  // flight is re-read from the job's checkpoint, so nothing is done twice.
  std::chrono::milliseconds reconnect_for{120000};

  // Pause batches while a streaming replica lags more than this
  // (pg_stat_replication.replay_lag); 0 = do not watch replicas.
  std::chrono::milliseconds max_replication_lag{10000};

  // Job identity: "" derives "backfill:<schema.table>:<hash of set/where>",
  // so running the same command again resumes an unfinished run.
  std::string job_id;
  // true: an unfinished job with this id must exist (kNotFound otherwise).
  bool resume = false;
  // true: discard an unfinished job's checkpoint and start over.
  bool restart = false;

  // Validate and plan only (type-checks the UPDATE with EXPLAIN inside a
  // rolled-back transaction); changes nothing, creates no job.
  bool dry_run = false;

  // Set to true from another thread (e.g. a SIGINT handler) to stop after
  // the current batches; the checkpoint stays for a later resume and
  // RunBackfill returns kCancelled.
  const std::atomic<bool>* cancel = nullptr;
};

// Rows of an adaptive worker's first (probe) batch; see batch_rows.
inline constexpr int64_t kProbeBatchRows = 100;

struct BackfillReport {
  std::string job_id;
  std::string table;            // schema-qualified
  std::string update_sql;       // the batch UPDATE with its $N placeholders
  bool dry_run = false;
  bool resumed = false;
  std::string scan = "key";     // how batches walked: "key" or "ctid" (page ranges)
  int workers = 1;
  int64_t estimated_rows = 0;   // planner estimate of the table's rows
  int64_t rows_updated = 0;     // this run plus resumed progress
  int64_t rows_scanned = 0;     // keys walked by this run
  int64_t batches = 0;          // committed batches of this run
  int64_t retries = 0;          // retried batch attempts
  int64_t longest_batch_ms = 0;
  int64_t final_batch_rows = 0; // window size at the end (after adaptation)
  int64_t throttled_ms = 0;     // time spent waiting for replicas
  double elapsed_seconds = 0;
  double rows_per_second = 0;   // rows_updated by this run / elapsed

  // Integrity: rows still matching the not-done condition (-1 = no count
  // check was made), the first rows returned by check_query (empty = passed).
  int64_t remaining = -1;
  std::string remaining_condition;
  std::vector<std::vector<Value>> check_rows;
  std::vector<std::string> check_columns;

  bool checks_passed() const { return remaining <= 0 && check_rows.empty(); }
  // Ok, or kFailedPrecondition saying which check failed and what to do.
  Status CheckStatus() const;
};

// Validates `options` against the database (table, primary key, SET list and
// conditions type-checked with EXPLAIN in a rolled-back transaction, check
// query prepared) without changing anything. kNotFound: missing table or
// column; kFailedPrecondition: no primary key; kInvalidArgument: an
// expression that does not parse or type-check (the server's message and
// position are kept).
Result<BackfillReport> PlanBackfill(Connection& conn, const BackfillOptions& options);

// Runs the backfill on the PostgreSQL database at `url` (workers open their
// own connections). Returns the report whether or not the integrity checks
// passed: call report.CheckStatus() to fail on them. Errors: as
// PlanBackfill, plus kFailedPrecondition when another process runs the same
// job, kNotFound for `resume` without a job, kCancelled when `cancel` was
// set, and a batch's own error after max_attempts (the checkpoint keeps all
// committed batches).
Result<BackfillReport> RunBackfill(const std::string& url, const BackfillOptions& options,
                                   EventBus* bus = nullptr);

}  // namespace ferry
