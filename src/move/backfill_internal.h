// Internal to the backfill (backfill.cc, backfill_pages.cc): the validated
// plan, and the page-range (ctid) batch mode for one worker on PostgreSQL 14+.
//
// Page mode: batches are
//   BEGIN;
//   WITH ferry_batch AS (UPDATE t SET <set>
//                        WHERE ctid >= '(p,0)' AND ctid < '(q,0)' AND (<where>)
//                        RETURNING (<where>) IS TRUE AS ferry_again)
//   UPDATE ferry_jobs SET checkpoint.next_page = q ...;
//   COMMIT (or ROLLBACK when a row still matches --where after its update)
// over pages [0, pages at start), read in order by a TID range scan. A
// batch whose updated rows still match --where is rolled back and the run
// falls back to key ranges (such rows could be met again on a later page
// after their update moved them). After the pass, the ctids of rows still
// matching --where are read; when some remain (rows the application
// inserted or moved behind the pass, or beyond the start's last page) they
// are caught up by ctid, or by a sweep over all the pages when there are
// very many (at most kMaxSweeps times). See docs/backfill.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "move/backfill.h"
#include "move/table_info.h"
#include "observe/event.h"

namespace ferry::backfill_detail {

struct Plan {
  TableInfo table;
  std::string set;
  std::string where;       // "" = every row
  std::string not_done;    // integrity condition ("" = no count check)
  std::string check_query;
};

// backfill_plan.cc: the options' values; the fragments parsed, the table
// described and the batch UPDATE type-checked on the server.
Status CheckOptionValues(const BackfillOptions& options);
Result<Plan> MakePlan(Connection& conn, const BackfillOptions& options);
BackfillReport ReportFor(const Plan& plan, const BackfillOptions& options);
std::string DefaultJobId(const Plan& plan);
// "(a, b) OP ($1::integer, $2::text)", appending the values to `params`.
std::string KeyCompare(const TableInfo& table, const KeyTuple& key, std::string_view op,
                       Params& params);
std::string KeyOrder(const TableInfo& table, bool descending);
// "UPDATE t SET\n<set>\nWHERE <bounds> AND (\n<where>\n)".
std::string UpdateSql(const Plan& plan, const std::string& bounds);
// Integrity at the end: rows still not done (`known_remaining` >= 0: just
// counted, not again) and the --check query.
Status RunChecks(Connection& conn, const Plan& plan, int64_t known_remaining,
                 BackfillReport& report);
bool RetryableBatchError(const Status& s);
// Sets the rate and ETA of `e` (rows_scanned and estimated_rows filled):
// `scanned_now` keys walked by this run in `seconds`; then publishes it on
// `bus` as the job's event with the database label and error type.
void PublishProgress(EventBus& bus, const std::string& job_id, const BackfillOptions& options,
                     const std::string& url, BackfillProgress e, int64_t scanned_now,
                     double seconds, std::string error_type);
std::string RetryReason(const Status& s);

// How the batches walk the table.
enum class ScanMode { kKey, kPages };
std::string_view ScanModeName(ScanMode mode);
// The report's mode and, in page mode, its batch statement.
void ShowScan(const Plan& plan, ScanMode mode, BackfillReport& report);  // "key", "ctid"

// Resolves options.by for this table and server: kAuto is kPages for one
// worker on PostgreSQL 14+ with a --where on a plain table, else kKey; an
// explicit kPages that cannot hold is an error saying why.
Result<ScanMode> ChooseScan(Connection& conn, const BackfillOptions& options, const Plan& plan);

// The table's size in pages now.
Result<int64_t> RelationPages(Connection& conn, const TableInfo& table);

// The job's checkpoint in page mode.
struct PageCheckpoint {
  int64_t next_page = 0;    // first page not done in this pass
  int64_t next_offset = 0;  // > 0: page next_page is done below this line pointer
  int64_t end_page = 0;     // exclusive bound of this pass
  int64_t start_pages = 0;  // the table's pages when the job started
  int sweep = 0;            // catch-ups done (0 = the main pass)
  int64_t rows = 0;         // rows updated by all passes
  bool done = false;
};
inline constexpr int kMaxSweeps = 3;

std::string EncodePageCheckpoint(const PageCheckpoint& cp);
// nullopt when `text` is not a page-mode checkpoint (a key-range one).
std::optional<PageCheckpoint> DecodePageCheckpoint(const std::string& text);

enum class PagesOutcome { kDone, kStopped, kFallBackToKey };
struct PagesResult {
  PagesOutcome outcome = PagesOutcome::kDone;
  // Rows matching --where counted after the last pass (-1: not counted).
  int64_t remaining = -1;
  std::string message;  // kFallBackToKey: why
};

// Runs (or resumes) the page walk of job `job_id` from `start`; fills the
// report's counters like the key runner.
Result<PagesResult> RunPages(const std::string& url, const BackfillOptions& options,
                             const Plan& plan, EventBus* bus, const std::string& job_id,
                             const PageCheckpoint& start, BackfillReport& report);

}  // namespace ferry::backfill_detail
