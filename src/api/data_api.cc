// The public data API (include/ferry/copy.h, verify.h, backfill.h): each call
// turns its request into the engine's options, runs it without an event bus,
// and keeps only what an application needs from the report.
#include <fmt/format.h>

#include <exception>

#include "ferry/backfill.h"
#include "ferry/copy.h"
#include "ferry/verify.h"
#include "move/backfill.h"
#include "move/copy.h"
#include "move/verify.h"

namespace ferry {
namespace {

// The engines do not throw; an exception from a library they use (bad_alloc,
// a standard container) becomes kInternal here rather than crossing the API.
template <typename Fn>
auto Guard(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, fmt::format("unexpected exception: {}", e.what()));
  }
}

std::string KeyText(const KeyTuple& key) { return fmt::format("({})", fmt::join(key, ", ")); }

std::string Listed(const RowDifference& d) {
  std::string out = fmt::format("{} {}", RowDifferenceKindName(d.kind), KeyText(d.key));
  for (size_t i = 0; i < d.columns.size(); ++i) {
    out += (i == 0 ? ": " : ", ") + d.columns[i].column;
  }
  return out;
}

}  // namespace

Result<CopyOutcome> CopyTables(const CopyRequest& request) {
  return Guard([&]() -> Result<CopyOutcome> {
    CopyOptions o;
    o.from_url = request.from_url;
    o.to_url = request.to_url;
    o.tables = request.tables;
    o.all = request.all_tables;
    o.where = request.where;
    o.workers = request.workers;
    o.create_tables = request.create_tables;
    o.truncate = request.truncate;
    o.restart = request.restart;
    o.job_id = request.job_id;
    o.map_file = request.map_file;
    o.control_url = request.control_url;
    FERRY_ASSIGN_OR_RETURN(CopySummary s, RunCopy(o, nullptr, nullptr));
    CopyOutcome out;
    out.job_id = s.job_id;
    out.resumed = s.resumed;
    out.already_done = s.already_done;
    out.rows_copied = s.rows_copied;
    out.rows_failed = s.rows_failed;
    out.bytes_copied = s.bytes_copied;
    out.chunks_done = s.chunks_done;
    out.chunks_total = s.chunks_total;
    out.seconds = s.seconds;
    return out;
  });
}

Result<VerifyOutcome> CompareTables(const VerifyRequest& request) {
  return Guard([&]() -> Result<VerifyOutcome> {
    VerifyOptions o;
    o.from_url = request.from_url;
    o.to_url = request.to_url;
    o.tables = request.tables;
    o.all = request.all_tables;
    o.where = request.where;
    o.workers = request.workers;
    o.sample_percent = request.sample_percent;
    o.max_report = request.max_listed;
    FERRY_ASSIGN_OR_RETURN(VerifyReport r, Verify(o));
    VerifyOutcome out;
    out.seconds = r.seconds;
    for (const TableVerifyResult& t : r.tables) {
      TableComparison c;
      c.table = t.table;
      c.source_rows = t.source_rows;
      c.target_rows = t.target_rows;
      c.missing = t.missing;
      c.extra = t.extra;
      c.changed = t.changed;
      for (const RowDifference& d : t.differences) c.listed.push_back(Listed(d));
      out.tables.push_back(std::move(c));
    }
    return out;
  });
}

Result<BackfillOutcome> BackfillTable(const BackfillRequest& request) {
  return Guard([&]() -> Result<BackfillOutcome> {
    BackfillOptions o;
    o.table = request.table;
    o.set = request.set;
    o.where = request.where;
    o.check_query = request.check_query;
    o.workers = request.workers;
    o.batch_rows = request.batch_rows;
    o.max_batch = request.max_batch;
    o.job_id = request.job_id;
    FERRY_ASSIGN_OR_RETURN(BackfillReport r, RunBackfill(request.url, o));
    FERRY_RETURN_IF_ERROR(r.CheckStatus());
    BackfillOutcome out;
    out.job_id = r.job_id;
    out.rows_updated = r.rows_updated;
    out.batches = r.batches;
    out.retries = r.retries;
    out.seconds = r.elapsed_seconds;
    out.resumed = r.resumed;
    return out;
  });
}

}  // namespace ferry
