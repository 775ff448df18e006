// The page-range (ctid) batch mode of the backfill: one worker walks the
// heap's pages in order with TID range scans (PostgreSQL 14+), so each
// batch reads its pages sequentially instead of following the primary-key
// index. Contract in backfill_pages.h; the user's view in docs/backfill.md.
#include "move/backfill_internal.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/backoff.h"
#include "drivers/registry.h"

namespace ferry::backfill_detail {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kPageCheckpointFormat = 1;
constexpr int kMinPagesServer = 140000;  // TID range scans: PostgreSQL 14

// Line pointers per 8 kB heap page at most (MaxHeapTuplesPerPage): a
// batch within one page closes the page past this offset.
constexpr int64_t kMaxTuplesPerPage = 291;

std::string Tid(int64_t page, int64_t offset) { return fmt::format("({},{})", page, offset); }

struct TidBound {
  int64_t page = 0, offset = 0;
};

// Rows still matching --where at the end of a pass are caught up by their
// ctid when there are at most this many, else by a sweep over every page.
constexpr int64_t kCatchUpRows = 100000;

constexpr std::string_view kPageRange = "ctid >= $4::tid AND ctid < $5::tid";
constexpr std::string_view kTidList = "ctid = ANY($4::tid[])";

// The batch: the UPDATE of the rows `bounds` selects and the checkpoint move
// in one statement; returns the rows updated and how many of them still
// match --where. $1 job id, $2 next page, $3 next line pointer (0: whole
// page), then the bounds' own parameters.
std::string PageBatchSql(const Plan& plan, std::string_view bounds) {
  const std::string update = UpdateSql(plan, std::string(bounds));
  return fmt::format(R"sql(WITH ferry_batch AS (
{}
RETURNING (
{}
) IS TRUE AS ferry_again),
ferry_n AS (SELECT count(*) AS n, count(*) FILTER (WHERE ferry_again) AS again FROM ferry_batch)
UPDATE ferry_jobs SET checkpoint = jsonb_set(jsonb_set(jsonb_set(checkpoint::jsonb,
    '{{next_page}}', to_jsonb($2::bigint)), '{{next_offset}}', to_jsonb($3::bigint)),
    '{{rows}}', to_jsonb(COALESCE((checkpoint::jsonb ->> 'rows')::bigint, 0) + ferry_n.n))::text,
  rows_done = rows_done + ferry_n.n, updated_at = now()
FROM ferry_n
WHERE job_id = $1
RETURNING ferry_n.n, ferry_n.again)sql",
                     update, plan.where);
}

enum class BatchOutcome { kCommitted, kFailed, kFallBack };

class PageRunner {
 public:
  PageRunner(const std::string& url, const BackfillOptions& options, const Plan& plan,
             EventBus* bus, const std::string& job_id)
      : url_(url), options_(options), plan_(plan), bus_(bus), job_id_(job_id),
        batch_sql_(PageBatchSql(plan, kPageRange)), list_sql_(PageBatchSql(plan, kTidList)) {}

  Result<PagesResult> Run(const PageCheckpoint& start, BackfillReport& report) {
    cp_ = start;
    prior_rows_ = start.rows;
    estimated_ = std::max<int64_t>(report.estimated_rows, 0);
    rows_per_page_ = std::max(1.0, static_cast<double>(estimated_) /
                                       static_cast<double>(std::max<int64_t>(start.start_pages, 1)));
    resumed_ = report.resumed;
    start_time_ = Clock::now();
    PagesResult result;
    Result<PagesOutcome> walked = Walk(result);
    report.rows_updated = prior_rows_ + rows_;
    report.rows_scanned = Scanned();
    report.batches = batches_;
    report.retries = retries_;
    report.longest_batch_ms = longest_ms_;
    report.final_batch_rows = window_;
    report.throttled_ms = throttled_ms_;
    report.workers = 1;
    report.elapsed_seconds = std::chrono::duration<double>(Clock::now() - start_time_).count();
    report.rows_per_second =
        report.elapsed_seconds > 0 ? static_cast<double>(rows_) / report.elapsed_seconds : 0;
    if (!walked.ok()) return std::move(walked).TakeStatus();
    result.outcome = *walked;
    return result;
  }

 private:
  bool Stopping() const { return options_.cancel != nullptr && options_.cancel->load(); }
  int64_t Scanned() const { return std::llround(static_cast<double>(pages_walked_) * rows_per_page_); }

  void Emit(BackfillProgress e, std::string error_type = "") {
    if (bus_ == nullptr) return;
    e.rows_updated = prior_rows_ + rows_;
    e.rows_scanned = Scanned();
    e.estimated_rows = std::max(estimated_, e.rows_scanned);
    e.resumed = resumed_;
    const double secs = std::chrono::duration<double>(Clock::now() - start_time_).count();
    const int64_t scanned = e.rows_scanned;
    PublishProgress(*bus_, job_id_, options_, url_, std::move(e), scanned, secs,
                    std::move(error_type));
  }

  // The worker's session, with the batch timeouts for the session (every
  // batch statement is short; the end-of-pass count lifts them locally).
  Result<std::unique_ptr<Connection>> Connect() {
    ConnectOptions co;
    co.application_name = "ferry backfill w0";
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, OpenConnection(url_, co));
    FERRY_RETURN_IF_ERROR(
        c->Query(fmt::format("SELECT set_config('lock_timeout', '{}ms', false), "
                             "set_config('statement_timeout', '{}ms', false)",
                             options_.lock_timeout.count(), options_.statement_timeout.count()))
            .status());
    return c;
  }

  // After a lost connection: reopen with backoff for up to reconnect_for,
  // then read the checkpoint back (the batch in flight may have committed).
  Status Reconnect(std::unique_ptr<Connection>& c) {
    const Clock::time_point deadline = Clock::now() + options_.reconnect_for;
    Status last;
    for (int attempt = 1; !Stopping(); ++attempt) {
      auto conn = Connect();
      if (conn.ok()) {
        c = std::move(*conn);
        return Reload(*c);
      }
      last = std::move(conn).TakeStatus();
      if (last.code() != StatusCode::kUnavailable || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(RetryDelay(milliseconds(100), attempt, milliseconds(2000)));
    }
    if (last.ok()) return Status();
    return std::move(last).Prefix("reconnecting: ");
  }

  Status Reload(Connection& c) {
    FERRY_ASSIGN_OR_RETURN(QueryResult r,
                           c.Query("SELECT checkpoint FROM ferry_jobs WHERE job_id = $1", {job_id_}));
    std::optional<PageCheckpoint> cp =
        r.empty() || !r.rows[0][0] ? std::nullopt : DecodePageCheckpoint(*r.rows[0][0]);
    if (!cp) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("backfill job {}: its page checkpoint vanished during the run", job_id_));
    }
    cp_ = *cp;
    return Status();
  }

  Status SaveCheckpoint(Connection& c) {
    return c.Query("UPDATE ferry_jobs SET checkpoint = $2, updated_at = now() WHERE job_id = $1",
                   {job_id_, EncodePageCheckpoint(cp_)})
        .status();
  }

  // Waits while a replica lags more than the limit (checked at most once a
  // second).
  Status Throttle(Connection& c) {
    if (options_.max_replication_lag.count() <= 0) return Status();
    if (Clock::now() - last_lag_check_ < std::chrono::seconds(1)) return Status();
    while (!Stopping()) {
      last_lag_check_ = Clock::now();
      FERRY_ASSIGN_OR_RETURN(
          QueryResult r,
          c.Query("SELECT COALESCE(max(EXTRACT(EPOCH FROM replay_lag) * 1000), 0)::bigint "
                  "FROM pg_stat_replication"));
      const int64_t lag = std::stoll(r.Text(0, 0));
      if (lag <= options_.max_replication_lag.count()) return Status();
      BackfillProgress e;
      e.kind = BackfillProgress::Kind::kThrottled;
      e.message = fmt::format("replica replay lag {} ms > {} ms: pausing", lag,
                              options_.max_replication_lag.count());
      Emit(e);
      std::this_thread::sleep_for(std::chrono::seconds(1));
      throttled_ms_ += 1000;
    }
    return Status();
  }

  // The ctids of rows still matching --where (at most `limit`), in a
  // read-only transaction without the batch statement timeout.
  Result<std::vector<std::string>> MatchingTids(Connection& c, int64_t limit) {
    FERRY_RETURN_IF_ERROR(c.Begin());
    Result<QueryResult> r = c.Query("SET TRANSACTION READ ONLY");
    if (r.ok()) r = c.Query("SELECT set_config('statement_timeout', '0', true)");
    if (r.ok()) {
      r = c.Query(fmt::format("SELECT ctid::text FROM {} WHERE (\n{}\n) LIMIT $1",
                              plan_.table.QualifiedName(), plan_.where),
                  {std::to_string(limit)});
    }
    Status end = r.ok() ? c.Commit() : (c.InTransaction() ? c.Rollback() : Status());
    if (!r.ok()) return std::move(r).TakeStatus();
    FERRY_RETURN_IF_ERROR(end);
    std::vector<std::string> tids;
    for (size_t i = 0; i < r->rows.size(); ++i) tids.push_back(r->Text(i, 0));
    return tids;
  }

  // The pass reached its bound: find what still matches --where; finish,
  // or catch those rows up by ctid (or, when there are very many, sweep
  // every page the table has now).
  Result<bool> EndOfPass(Connection& c, PagesResult& result) {
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> tids, MatchingTids(c, kCatchUpRows + 1));
    const auto left = static_cast<int64_t>(tids.size());
    if (left == 0 || cp_.sweep >= kMaxSweeps) {
      cp_.done = true;
      result.remaining = left > kCatchUpRows ? -1 : left;  // -1: the check counts them
      FERRY_RETURN_IF_ERROR(SaveCheckpoint(c));
      return true;
    }
    cp_.sweep += 1;
    std::string how;
    if (left > kCatchUpRows) {
      FERRY_ASSIGN_OR_RETURN(int64_t pages, RelationPages(c, plan_.table));
      cp_.next_page = 0;
      cp_.next_offset = 0;
      cp_.end_page = pages;
      how = fmt::format("more than {} row(s) still match --where: sweeping all {} pages", kCatchUpRows,
                        pages);
    } else {
      pending_tids_ = std::move(tids);
      how = fmt::format("{} row(s) still match --where: updating them by ctid", left);
    }
    FERRY_RETURN_IF_ERROR(SaveCheckpoint(c));
    BackfillProgress e;
    e.kind = BackfillProgress::Kind::kStarted;
    e.message = fmt::format("catch-up {} of at most {} (rows written or moved behind the pass "
                            "during the run): {}",
                            cp_.sweep, kMaxSweeps, how);
    Emit(e);
    return false;
  }

  // "{\"(1,2)\",\"(3,4)\"}": the first n pending ctids as an array.
  std::string TidArray(size_t n) const {
    std::string out = "{";
    for (size_t i = 0; i < n; ++i) out += (i ? ",\"" : "\"") + pending_tids_[i] + "\"";
    return out + "}";
  }

  // One batch in its own transaction: pages [next, upper), or (catch-up,
  // `tids` > 0) the first `tids` pending ctids.
  Result<BatchOutcome> Batch(Connection& c, TidBound upper, size_t tids, Status& failure,
                             std::string& why) {
    Params params{job_id_, std::to_string(upper.page), std::to_string(upper.offset)};
    if (tids > 0) {
      params.push_back(TidArray(tids));
    } else {
      params.push_back(Tid(cp_.next_page, cp_.next_offset));
      params.push_back(Tid(upper.page, upper.offset));
    }
    const Clock::time_point t0 = Clock::now();
    if (Status s = c.Begin(); !s.ok()) {
      failure = std::move(s);
      return BatchOutcome::kFailed;
    }
    Result<QueryResult> done = c.Query(tids > 0 ? list_sql_ : batch_sql_, params);
    if (done.ok() && done->empty()) {
      (void)c.Rollback();
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("backfill job {} vanished from ferry_jobs during the run", job_id_));
    }
    if (done.ok() && std::stoll(done->Text(0, 1)) > 0) {
      why = fmt::format("{} row(s) of ctid [{}, {}) still match --where after the --set, so a "
                        "row moved to a later page by its update could be updated again",
                        done->Text(0, 1), Tid(cp_.next_page, cp_.next_offset),
                        Tid(upper.page, upper.offset));
      FERRY_RETURN_IF_ERROR(c.Rollback());
      return BatchOutcome::kFallBack;
    }
    Status committed = done.ok() ? c.Commit() : std::move(done).TakeStatus();
    if (!committed.ok()) {
      if (committed.code() != StatusCode::kUnavailable && c.InTransaction()) (void)c.Rollback();
      failure = std::move(committed);
      return BatchOutcome::kFailed;
    }
    const int64_t ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
    const int64_t updated = std::stoll(done->Text(0, 0));
    pages_walked_ += upper.page - cp_.next_page;
    cp_.next_page = upper.page;
    cp_.next_offset = upper.offset;
    cp_.rows += updated;
    rows_ += updated;
    pending_tids_.erase(pending_tids_.begin(), pending_tids_.begin() + static_cast<std::ptrdiff_t>(tids));
    ++batches_;
    longest_ms_ = std::max(longest_ms_, ms);
    BackfillProgress e;
    e.kind = BackfillProgress::Kind::kBatch;
    e.batch_rows = updated;
    e.batch_limit = window_;
    e.batch_ms = ms;
    Emit(e);
    Adapt(ms, tids > 0 || upper.page >= cp_.end_page);
    return BatchOutcome::kCommitted;
  }

  // Toward half the ceiling, like the key mode; the window counts rows (as
  // estimated per page) so that --batch-rows and the probe mean the same.
  void Adapt(int64_t ms, bool last_of_pass) {
    if (!options_.adaptive || last_of_pass) return;
    const int64_t target_ms = std::max<int64_t>(options_.max_batch.count() / 2, 1);
    double ratio = static_cast<double>(target_ms) / static_cast<double>(std::max<int64_t>(ms, 1));
    ratio = std::clamp(ratio, 0.5, ms * 4 < target_ms ? 4.0 : 2.0);
    window_ = std::clamp(static_cast<int64_t>(std::llround(static_cast<double>(window_) * ratio)),
                         options_.min_batch_rows, options_.max_batch_rows);
  }

  // The next batch's upper bound for a window of `rows`: whole pages, or
  // line pointers within one page while the window is under a page (the
  // probe), so that the first batch stays small on a table of small rows.
  TidBound UpperFor(int64_t rows) const {
    if (cp_.next_offset > 0 || static_cast<double>(rows) < rows_per_page_) {
      const int64_t offset = std::max<int64_t>(cp_.next_offset, 1) + rows;
      if (offset <= kMaxTuplesPerPage) return TidBound{cp_.next_page, offset};
      return TidBound{cp_.next_page + 1, 0};
    }
    const auto pages = static_cast<int64_t>(std::ceil(static_cast<double>(rows) / rows_per_page_));
    return TidBound{cp_.next_page + std::clamp<int64_t>(pages, 1, cp_.end_page - cp_.next_page), 0};
  }

  Result<PagesOutcome> Walk(PagesResult& result);

  const std::string& url_;
  const BackfillOptions& options_;
  const Plan& plan_;
  EventBus* bus_;
  const std::string& job_id_;
  const std::string batch_sql_, list_sql_;
  std::vector<std::string> pending_tids_;  // catch-up: rows still to do, by ctid

  PageCheckpoint cp_;
  int64_t window_ = 0;
  double rows_per_page_ = 1;
  bool resumed_ = false;
  Clock::time_point start_time_, last_lag_check_{};
  int64_t estimated_ = 0, prior_rows_ = 0, rows_ = 0, pages_walked_ = 0;
  int64_t batches_ = 0, retries_ = 0, longest_ms_ = 0, throttled_ms_ = 0;
};

Result<PagesOutcome> PageRunner::Walk(PagesResult& result) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, Connect());
  window_ = options_.adaptive
                ? std::min(options_.batch_rows, std::max(options_.min_batch_rows, kProbeBatchRows))
                : options_.batch_rows;
  int attempt = 0, timeouts_in_a_row = 0;
  while (!Stopping()) {
    Status throttled = Throttle(*c);
    if (throttled.code() == StatusCode::kUnavailable) {
      FERRY_RETURN_IF_ERROR(Reconnect(c));
      continue;
    }
    FERRY_RETURN_IF_ERROR(throttled);
    if (Stopping()) break;
    if (pending_tids_.empty() && cp_.next_page >= cp_.end_page) {
      Result<bool> finished = EndOfPass(*c, result);
      if (finished.ok() && *finished) return PagesOutcome::kDone;
      if (finished.ok()) continue;
      if (finished.status().code() != StatusCode::kUnavailable) {
        return std::move(finished).TakeStatus().Prefix("end of a page pass: ");
      }
      FERRY_RETURN_IF_ERROR(Reconnect(c));
      continue;
    }
    // Catch-up batches keep the checkpoint's page where it is.
    const size_t tids = std::min(pending_tids_.size(), static_cast<size_t>(window_));
    const TidBound upper = tids > 0 ? TidBound{cp_.next_page, cp_.next_offset} : UpperFor(window_);
    Status failure;
    FERRY_ASSIGN_OR_RETURN(BatchOutcome outcome, Batch(*c, upper, tids, failure, result.message));
    if (outcome == BatchOutcome::kFallBack) return PagesOutcome::kFallBackToKey;
    if (outcome == BatchOutcome::kCommitted) {
      attempt = 0;
      timeouts_in_a_row = 0;
      if (options_.sleep.count() > 0) std::this_thread::sleep_for(options_.sleep);
      continue;
    }
    ++attempt;
    const bool timed_out = failure.Get("sqlstate") == "57014";
    if (timed_out) ++timeouts_in_a_row;
    if (!RetryableBatchError(failure) || attempt >= options_.max_attempts ||
        timeouts_in_a_row >= options_.max_attempts) {
      return std::move(failure)
          .Prefix(fmt::format("batch of ctid [{}, {}) failed after {} attempt(s): ",
                              Tid(cp_.next_page, cp_.next_offset), Tid(upper.page, upper.offset),
                              attempt))
          .With("table", plan_.table.schema + "." + plan_.table.name);
    }
    ++retries_;
    if (timed_out) window_ = std::max(options_.min_batch_rows, window_ / 2);
    BackfillProgress e;
    e.kind = BackfillProgress::Kind::kRetry;
    e.attempt = attempt;
    e.batch_limit = window_;
    e.message = RetryReason(failure);
    Emit(e, ErrorTypeOf(failure));
    std::this_thread::sleep_for(RetryDelay(milliseconds(50), attempt, milliseconds(5000)));
    if (failure.code() == StatusCode::kUnavailable) FERRY_RETURN_IF_ERROR(Reconnect(c));
  }
  return PagesOutcome::kStopped;
}

}  // namespace

std::string_view ScanModeName(ScanMode mode) {
  return mode == ScanMode::kPages ? "ctid" : "key";
}

Result<int64_t> RelationPages(Connection& conn, const TableInfo& table) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query("SELECT pg_relation_size($1::regclass) / current_setting('block_size')::bigint",
                 {table.QualifiedName()}));
  return std::stoll(r.Text(0, 0));
}

Result<ScanMode> ChooseScan(Connection& conn, const BackfillOptions& options, const Plan& plan) {
  if (options.by == BackfillScan::kKey) return ScanMode::kKey;
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query("SELECT c.relkind::text, current_setting('server_version_num')::int "
                 "FROM pg_class c WHERE c.oid = $1::regclass",
                 {plan.table.QualifiedName()}));
  const bool plain = !r.empty() && r.Text(0, 0) == "r";
  const int version = r.empty() ? 0 : std::stoi(r.Text(0, 1));
  const bool explicit_pages = options.by == BackfillScan::kPages;
  auto refuse = [&](StatusCode code, std::string why) -> Result<ScanMode> {
    if (!explicit_pages) return ScanMode::kKey;
    return Status(code, "--by ctid: " + why).With("hint", "use --by key (primary-key ranges)");
  };
  if (options.workers > 1) {
    return refuse(StatusCode::kInvalidArgument,
                  "page ranges run one worker; --workers N splits the primary key");
  }
  if (plan.where.empty()) {
    return refuse(StatusCode::kInvalidArgument,
                  "needs a --where that excludes rows already done: an updated row may move to "
                  "a later page, and without --where the pass would update it again");
  }
  if (version < kMinPagesServer) {
    return refuse(StatusCode::kFailedPrecondition,
                  fmt::format("TID range scans need PostgreSQL 14 or later (server_version_num {})",
                              version));
  }
  if (!plain) {
    return refuse(StatusCode::kFailedPrecondition,
                  "the table is not a plain heap table (partitioned tables have no single page "
                  "range)");
  }
  return ScanMode::kPages;
}

std::string EncodePageCheckpoint(const PageCheckpoint& cp) {
  json j = {{"format", kPageCheckpointFormat}, {"by", "ctid"},
            {"next_page", cp.next_page},        {"next_offset", cp.next_offset},
            {"end_page", cp.end_page},
            {"start_pages", cp.start_pages},    {"sweep", cp.sweep},
            {"rows", cp.rows},                  {"done", cp.done}};
  return j.dump();
}

std::optional<PageCheckpoint> DecodePageCheckpoint(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("by", "") != "ctid" ||
      j.value("format", 0) != kPageCheckpointFormat) {
    return std::nullopt;
  }
  PageCheckpoint cp;
  for (auto [key, slot] : {std::pair{"next_page", &cp.next_page}, std::pair{"end_page", &cp.end_page},
                           std::pair{"start_pages", &cp.start_pages}, std::pair{"rows", &cp.rows}}) {
    if (!j.contains(key) || !j[key].is_number_integer()) return std::nullopt;
    *slot = j[key].get<int64_t>();
  }
  cp.next_offset = j.value("next_offset", int64_t{0});
  cp.sweep = j.value("sweep", 0);
  cp.done = j.value("done", false);
  return cp;
}

Result<PagesResult> RunPages(const std::string& url, const BackfillOptions& options,
                             const Plan& plan, EventBus* bus, const std::string& job_id,
                             const PageCheckpoint& start, BackfillReport& report) {
  PageRunner runner(url, options, plan, bus, job_id);
  return runner.Run(start, report);
}

}  // namespace ferry::backfill_detail
