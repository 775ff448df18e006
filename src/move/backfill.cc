// Batched backfills: the job row and its checkpoint, workers over disjoint
// key ranges, adaptive batches, retries, replica throttling, and the run
// (key ranges here, page ranges in backfill_pages.cc; validation and checks
// in backfill_plan.cc). See backfill.h for the contract and
// docs/backfill.md for the user's view.
#include "move/backfill.h"
#include "core/backoff.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "core/hash.h"
#include "core/log.h"
#include "drivers/registry.h"
#include "move/backfill_internal.h"
#include "move/control.h"
#include "move/sql_fragment.h"
#include "move/table_info.h"

namespace ferry {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kCheckpointFormat = 1;

int64_t MillisSince(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
}

using backfill_detail::CheckOptionValues;
using backfill_detail::DefaultJobId;
using backfill_detail::KeyCompare;
using backfill_detail::KeyOrder;
using backfill_detail::MakePlan;
using backfill_detail::PageCheckpoint;
using backfill_detail::Plan;
using backfill_detail::ReportFor;
using backfill_detail::RetryableBatchError;
using backfill_detail::RetryReason;
using backfill_detail::RunChecks;
using backfill_detail::ScanMode;
using backfill_detail::ShowScan;
using backfill_detail::UpdateSql;

// ---- Checkpoint ----

struct RangeState {
  KeyRange range;
  std::optional<KeyTuple> last;  // last key done (exclusive lower bound next)
  bool done = false;
  int64_t rows = 0;
  int64_t scanned = 0;
};

json TupleJson(const std::optional<KeyTuple>& t) { return t ? json(*t) : json(nullptr); }

std::string EncodeCheckpoint(const std::vector<RangeState>& ranges) {
  json j;
  j["format"] = kCheckpointFormat;
  j["ranges"] = json::array();
  for (const RangeState& r : ranges) {
    j["ranges"].push_back({{"range", json::parse(r.range.Encode())},
                           {"last", TupleJson(r.last)},
                           {"done", r.done},
                           {"rows", r.rows},
                           {"scanned", r.scanned}});
  }
  return j.dump();
}

Result<std::vector<RangeState>> DecodeCheckpoint(const std::string& job_id, const std::string& text) {
  auto bad = [&] {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("the checkpoint of backfill job {} is unreadable", job_id))
        .With("hint", "start over with --restart (rows already backfilled are skipped by --where)");
  };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", 0) != kCheckpointFormat ||
      !j.contains("ranges") || !j["ranges"].is_array()) {
    return bad();
  }
  std::vector<RangeState> out;
  for (const json& r : j["ranges"]) {
    if (!r.is_object() || !r.contains("range")) return bad();
    RangeState s;
    auto range = KeyRange::Decode(r["range"].dump());
    if (!range.ok()) return bad();
    s.range = std::move(*range);
    if (r.contains("last") && r["last"].is_array()) {
      KeyTuple t;
      for (const json& v : r["last"]) {
        if (!v.is_string()) return bad();
        t.push_back(v.get<std::string>());
      }
      s.last = std::move(t);
    }
    s.done = r.value("done", false);
    s.rows = r.value("rows", int64_t{0});
    s.scanned = r.value("scanned", int64_t{0});
    out.push_back(std::move(s));
  }
  return out;
}

// Moves one range's entry in the job row, atomically on the server (other
// workers update other entries of the same row concurrently). $1 job id,
// $2 range index, $3 last key (JSON), $4 keys walked, $5 range done.
// `rows` is the SQL for the rows this batch updated.
std::string CheckpointSql(std::string_view rows) {
  return fmt::format(R"sql(UPDATE ferry_jobs SET checkpoint = jsonb_set(jsonb_set(jsonb_set(jsonb_set(
    checkpoint::jsonb,
    ARRAY['ranges', $2, 'last'], $3::jsonb),
    ARRAY['ranges', $2, 'rows'],
    to_jsonb(COALESCE((checkpoint::jsonb #>> ARRAY['ranges', $2, 'rows'])::bigint, 0) + {0})),
    ARRAY['ranges', $2, 'scanned'],
    to_jsonb(COALESCE((checkpoint::jsonb #>> ARRAY['ranges', $2, 'scanned'])::bigint, 0) + $4::bigint)),
    ARRAY['ranges', $2, 'done'], to_jsonb($5::boolean))::text,
  rows_done = rows_done + {0}, updated_at = now()
WHERE job_id = $1
RETURNING {0})sql",
                     rows);
}

// ---- The run ----

class Runner {
 public:
  Runner(std::string url, const BackfillOptions& options, const Plan& plan,
         EventBus* bus, std::string job_id)
      : url_(std::move(url)), options_(options), plan_(plan), bus_(bus),
        job_id_(std::move(job_id)) {}

  // Runs workers over `ranges` until every range is done, a worker fails
  // or the run is cancelled.
  Status Run(std::vector<RangeState> ranges, BackfillReport& report) {
    ranges_ = std::move(ranges);
    for (const RangeState& r : ranges_) {
      prior_rows_ += r.rows;
      prior_scanned_ += r.scanned;
      if (!r.done) pending_.push_back(&r - ranges_.data());
    }
    estimated_ = std::max<int64_t>(report.estimated_rows, prior_scanned_);
    resumed_ = report.resumed;
    start_ = Clock::now();
    const int n = std::max(1, std::min<int>(options_.workers, static_cast<int>(pending_.size())));
    std::vector<std::thread> threads;
    for (int w = 0; w < n; ++w) threads.emplace_back([this, w] { Work(w); });
    for (std::thread& t : threads) t.join();

    report.rows_updated = prior_rows_ + rows_;
    report.rows_scanned = scanned_;
    report.batches = batches_;
    report.retries = retries_;
    report.longest_batch_ms = longest_ms_;
    report.final_batch_rows = final_batch_rows_;
    report.throttled_ms = throttled_ms_;
    report.workers = n;
    report.elapsed_seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    report.rows_per_second =
        report.elapsed_seconds > 0 ? static_cast<double>(rows_) / report.elapsed_seconds : 0;
    return first_error_;
  }

 private:
  bool Stopping() const {
    return stop_.load() || (options_.cancel != nullptr && options_.cancel->load());
  }

  void Fail(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (first_error_.ok()) first_error_ = std::move(s);
    stop_ = true;
  }

  void Emit(BackfillProgress e, std::string error_type = "") {
    if (bus_ == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    e.rows_updated = prior_rows_ + rows_;
    e.rows_scanned = prior_scanned_ + scanned_;
    e.estimated_rows = std::max(estimated_, e.rows_scanned);
    e.resumed = resumed_;
    double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    backfill_detail::PublishProgress(*bus_, job_id_, options_, url_, std::move(e), scanned_, secs,
                                     std::move(error_type));
  }

  std::optional<size_t> NextRange() {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.empty()) return std::nullopt;
    size_t i = pending_.front();
    pending_.erase(pending_.begin());
    return i;
  }

  // A worker's own session. Its lock and statement timeouts are set for the
  // session: every batch is one statement, hence one transaction, so this is
  // the same as SET LOCAL in each batch, without the extra round trips.
  Result<std::unique_ptr<Connection>> Connect(int worker) {
    ConnectOptions co;
    co.application_name = fmt::format("ferry backfill w{}", worker);
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, OpenConnection(url_, co));
    FERRY_RETURN_IF_ERROR(
        c->Query(fmt::format("SELECT set_config('lock_timeout', '{}ms', false), "
                             "set_config('statement_timeout', '{}ms', false)",
                             options_.lock_timeout.count(), options_.statement_timeout.count()))
            .status());
    return c;
  }

  // Waits while a replica lags more than the limit (checked at most once a
  // second per worker).
  Status Throttle(Connection& conn, Clock::time_point& last_check, int worker) {
    if (options_.max_replication_lag.count() <= 0) return Status();
    if (Clock::now() - last_check < std::chrono::seconds(1)) return Status();
    while (!Stopping()) {
      last_check = Clock::now();
      FERRY_ASSIGN_OR_RETURN(
          QueryResult r,
          conn.Query("SELECT COALESCE(max(EXTRACT(EPOCH FROM replay_lag) * 1000), 0)::bigint, "
                     "count(*) FROM pg_stat_replication"));
      int64_t lag = std::stoll(r.Text(0, 0));
      if (lag <= options_.max_replication_lag.count()) return Status();
      BackfillProgress e;
      e.kind = BackfillProgress::Kind::kThrottled;
      e.worker = worker;
      e.message = fmt::format("replica replay lag {} ms > {} ms: pausing", lag,
                              options_.max_replication_lag.count());
      Emit(e);
      std::this_thread::sleep_for(std::chrono::seconds(1));
      std::lock_guard<std::mutex> lock(mu_);
      throttled_ms_ += 1000;
    }
    return Status();
  }

  // After a lost connection: reopens the session with backoff until
  // `reconnect_for` has passed (the server may be restarting), then reads
  // this range's last key back from the job's checkpoint, since the batch
  // in flight may or may not have committed.
  Status Reconnect(int worker, std::unique_ptr<Connection>& c, size_t index) {
    const Clock::time_point deadline = Clock::now() + options_.reconnect_for;
    Status last;
    for (int attempt = 1; !Stopping(); ++attempt) {
      auto conn = Connect(worker);
      if (conn.ok()) {
        c = std::move(*conn);
        return ReloadLast(*c, index);
      }
      last = std::move(conn).TakeStatus();
      if (last.code() != StatusCode::kUnavailable || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(RetryDelay(milliseconds(100), attempt, milliseconds(2000)));
    }
    if (last.ok()) return Status();  // stopping: the run ends without an error
    return std::move(last).Prefix(fmt::format("worker {}: reconnecting: ", worker));
  }

  Status ReloadLast(Connection& c, size_t index) {
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r,
        c.Query("SELECT checkpoint::jsonb #> ARRAY['ranges', $2, 'last'] FROM ferry_jobs "
                "WHERE job_id = $1",
                {job_id_, std::to_string(index)}));
    RangeState& range = ranges_[index];
    range.last.reset();
    if (r.empty() || !r.rows[0][0]) return Status();
    json last = json::parse(*r.rows[0][0], nullptr, false);
    if (!last.is_array()) return Status();
    KeyTuple t;
    for (const json& v : last) t.push_back(v.is_string() ? v.get<std::string>() : v.dump());
    range.last = std::move(t);
    return Status();
  }

  int64_t FirstWindow() const {
    if (!options_.adaptive) return options_.batch_rows;
    return std::min(options_.batch_rows, std::max(options_.min_batch_rows, kProbeBatchRows));
  }

  void Work(int worker) {
    auto conn = Connect(worker);
    if (!conn.ok()) return Fail(std::move(conn).TakeStatus().Prefix(fmt::format("worker {}: ", worker)));
    std::unique_ptr<Connection> c = std::move(*conn);
    int64_t window = FirstWindow();
    Clock::time_point last_lag_check{};
    while (!Stopping()) {
      std::optional<size_t> index = NextRange();
      if (!index) break;
      Status s = WorkRange(worker, c, *index, window, last_lag_check);
      if (!s.ok()) return Fail(std::move(s));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (worker == 0 || final_batch_rows_ == 0) final_batch_rows_ = window;
  }

  // A committed batch: checkpoint, totals, event, and the next window's size
  // toward half the ceiling (full windows only; x4 at most far under it).
  void BatchDone(int worker, RangeState& range, const KeyTuple& upper, int64_t updated,
                 int64_t walked, int64_t ms, bool last_window, int64_t& window) {
    range.last = upper;
    range.rows += updated;
    range.scanned += walked;
    {
      std::lock_guard<std::mutex> lock(mu_);
      rows_ += updated;
      scanned_ += walked;
      ++batches_;
      longest_ms_ = std::max(longest_ms_, ms);
    }
    BackfillProgress e;
    e.kind = BackfillProgress::Kind::kBatch;
    e.worker = worker;
    e.batch_rows = updated;
    e.batch_limit = window;
    e.batch_ms = ms;
    Emit(e);
    const int64_t target_ms = std::max<int64_t>(options_.max_batch.count() / 2, 1);
    if (options_.adaptive && !last_window) {
      double ratio = static_cast<double>(target_ms) / static_cast<double>(std::max<int64_t>(ms, 1));
      ratio = std::clamp(ratio, 0.5, ms * 4 < target_ms ? 4.0 : 2.0);
      window = std::clamp(static_cast<int64_t>(std::llround(static_cast<double>(window) * ratio)),
                          options_.min_batch_rows, options_.max_batch_rows);
    }
  }

  // A failed attempt: the error for good, or a retry counted, announced and
  // waited for (a timeout halves the window).
  Status BatchFailed(int worker, const RangeState& range, const KeyTuple& upper, const Status& s,
                     int attempt, int timeouts_in_a_row, bool timed_out, int64_t& window) {
    const TableInfo& t = plan_.table;
    if (!RetryableBatchError(s) || attempt >= options_.max_attempts ||
        timeouts_in_a_row >= options_.max_attempts) {
      return Status(s)
          .Prefix(fmt::format("batch [{} .. ({})] failed after {} attempt(s): ",
                              range.last ? fmt::format("after ({})", fmt::join(*range.last, ", "))
                                         : range.range.ToString(),
                              fmt::join(upper, ", "), attempt))
          .With("table", t.schema + "." + t.name);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++retries_;
    }
    if (timed_out) window = std::max(options_.min_batch_rows, window / 2);
    BackfillProgress e;
    e.kind = BackfillProgress::Kind::kRetry;
    e.worker = worker;
    e.attempt = attempt;
    e.batch_limit = window;
    e.message = RetryReason(s);
    Emit(e, ErrorTypeOf(s));
    std::this_thread::sleep_for(RetryDelay(milliseconds(50), attempt, milliseconds(5000)));
    return Status();
  }

  // Walks one key range window by window until it is done or the run stops.
  Status WorkRange(int worker, std::unique_ptr<Connection>& c, size_t index, int64_t& window,
                   Clock::time_point& last_lag_check) {
    const TableInfo& t = plan_.table;
    RangeState& range = ranges_[index];  // owned by this worker now
    const std::string batch_rows_sql = "(SELECT count(*) FROM ferry_batch)";

    // "(pk) > (last)", or ">= (range start)" before the first batch.
    auto lower_bound = [&](Params& params) {
      if (range.last) return KeyCompare(t, *range.last, ">", params);
      if (range.range.lower) return KeyCompare(t, *range.range.lower, ">=", params);
      return std::string("TRUE");
    };

    int timeouts_in_a_row = 0;
    while (!Stopping()) {
      Status throttled = Throttle(*c, last_lag_check, worker);
      if (throttled.code() == StatusCode::kUnavailable) {
        FERRY_RETURN_IF_ERROR(Reconnect(worker, c, index));
        continue;
      }
      FERRY_RETURN_IF_ERROR(throttled);
      if (Stopping()) break;

      // The next window: its upper key and size, read from the primary-key
      // index only.
      Params wparams;
      std::string bounded = lower_bound(wparams);
      if (range.range.upper) bounded += " AND " + KeyCompare(t, *range.range.upper, "<", wparams);
      wparams.push_back(std::to_string(window));
      const std::string wsql = fmt::format(
          "WITH w AS (SELECT {keys} FROM {table} WHERE {pred} ORDER BY {asc} LIMIT ${n}) "
          "SELECT {keys}, (SELECT count(*) FROM w) FROM w ORDER BY {desc} LIMIT 1",
          fmt::arg("keys", t.KeyColumnList()), fmt::arg("table", t.QualifiedName()),
          fmt::arg("pred", bounded), fmt::arg("asc", KeyOrder(t, false)),
          fmt::arg("desc", KeyOrder(t, true)), fmt::arg("n", wparams.size()));
      auto wr = c->Query(wsql, wparams);
      if (!wr.ok()) {
        Status s = std::move(wr).TakeStatus();
        if (!RetryableBatchError(s)) return std::move(s).Prefix("reading the next key window: ");
        if (s.code() == StatusCode::kUnavailable) {
          FERRY_RETURN_IF_ERROR(Reconnect(worker, c, index));
        }
        continue;
      }
      if (wr->empty()) {
        // Nothing left in this range: record it done.
        Params p{job_id_, std::to_string(index), TupleJson(range.last).dump(), "0", "true"};
        Status marked = c->Query(CheckpointSql("0"), p).status();
        if (marked.code() == StatusCode::kUnavailable) {
          FERRY_RETURN_IF_ERROR(Reconnect(worker, c, index));
          continue;
        }
        FERRY_RETURN_IF_ERROR(marked);
        range.done = true;
        return Status();
      }
      KeyTuple upper;
      for (size_t i = 0; i < t.primary_key.size(); ++i) upper.push_back(wr->Text(0, i));
      const int64_t walked = std::stoll(wr->Text(0, t.primary_key.size()));
      const bool last_window = walked < window;

      // One batch, one statement, one transaction: the UPDATE of the window
      // and the checkpoint move commit together.
      Params params{job_id_, std::to_string(index), json(upper).dump(), std::to_string(walked),
                    last_window ? "true" : "false"};
      std::string pred = lower_bound(params);
      pred += " AND " + KeyCompare(t, upper, "<=", params);
      const std::string sql = fmt::format("WITH ferry_batch AS (\n{}\nRETURNING 1)\n{}",
                                          UpdateSql(plan_, pred), CheckpointSql(batch_rows_sql));
      bool reread = false;
      for (int attempt = 1;; ++attempt) {
        Clock::time_point t0 = Clock::now();
        auto done = c->Query(sql, params);
        const int64_t ms = MillisSince(t0);
        if (done.ok()) {
          if (done->empty()) {
            return Status(StatusCode::kFailedPrecondition,
                          fmt::format("backfill job {} vanished from ferry_jobs during the run",
                                      job_id_));
          }
          timeouts_in_a_row = 0;
          BatchDone(worker, range, upper, std::stoll(done->Text(0, 0)), walked, ms, last_window,
                    window);
          break;
        }
        Status s = std::move(done).TakeStatus();
        if (s.code() != StatusCode::kUnavailable && c->InTransaction()) (void)c->Exec("ROLLBACK");
        const bool timed_out = s.Get("sqlstate") == "57014";
        if (timed_out) ++timeouts_in_a_row;
        FERRY_RETURN_IF_ERROR(
            BatchFailed(worker, range, upper, s, attempt, timeouts_in_a_row, timed_out, window));
        if (s.code() == StatusCode::kUnavailable) {
          // The batch may have committed before the connection broke: the
          // checkpoint, read back, says where to go on.
          FERRY_RETURN_IF_ERROR(Reconnect(worker, c, index));
          reread = true;
          break;
        }
        if (timed_out) {
          reread = true;  // a smaller window needs a new upper key
          break;
        }
        if (Stopping()) return Status();
      }
      if (reread) continue;
      if (last_window) {
        range.done = true;
        return Status();
      }
      if (options_.sleep.count() > 0) std::this_thread::sleep_for(options_.sleep);
    }
    return Status();
  }

  const std::string url_;
  const BackfillOptions& options_;
  const Plan& plan_;
  EventBus* bus_;
  const std::string job_id_;

  std::vector<RangeState> ranges_;
  std::vector<size_t> pending_;
  std::mutex mu_;
  std::atomic<bool> stop_{false};
  Status first_error_;
  Clock::time_point start_;
  bool resumed_ = false;
  int64_t estimated_ = 0;
  int64_t prior_rows_ = 0, prior_scanned_ = 0;
  int64_t rows_ = 0, scanned_ = 0, batches_ = 0, retries_ = 0, longest_ms_ = 0;
  int64_t final_batch_rows_ = 0, throttled_ms_ = 0;
};

}  // namespace

// Opens a new coordinator session after the old one was lost, with backoff
// for up to `patience` (the server may still be starting), and takes the
// job's advisory lock again.
Result<std::unique_ptr<Connection>> ReopenLocked(const std::string& url, const ConnectOptions& co,
                                                 int64_t lock_key, milliseconds patience,
                                                 const std::string& job_id) {
  const Clock::time_point deadline = Clock::now() + patience;
  for (int attempt = 1;; ++attempt) {
    auto conn = OpenConnection(url, co);
    if (conn.ok()) {
      FERRY_ASSIGN_OR_RETURN(bool locked, (*conn)->TryLock(lock_key));
      if (!locked) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("backfill job {}: after reconnecting, another ferry process "
                                  "holds the job",
                                  job_id));
      }
      return std::move(*conn);
    }
    if (conn.status().code() != StatusCode::kUnavailable || Clock::now() >= deadline) {
      return std::move(conn).TakeStatus();
    }
    std::this_thread::sleep_for(RetryDelay(milliseconds(100), attempt, milliseconds(2000)));
  }
}

namespace {

// The job to run: an unfinished one resumed from its checkpoint (in the
// mode it was started in), or a new one in `chosen` mode.
struct JobSetup {
  JobRow job;
  ScanMode mode = ScanMode::kKey;
  std::vector<RangeState> ranges;  // key mode
  PageCheckpoint pages;            // page mode
};

// The `started` event: where the job starts (or resumes) and how it walks.
BackfillProgress StartedEvent(const JobSetup& setup, const BackfillReport& report, int workers) {
  BackfillProgress e;
  e.kind = BackfillProgress::Kind::kStarted;
  e.estimated_rows = report.estimated_rows;
  e.resumed = report.resumed;
  for (const RangeState& r : setup.ranges) {
    e.rows_updated += r.rows;
    e.rows_scanned += r.scanned;
  }
  if (setup.mode == ScanMode::kPages) {
    e.rows_updated = setup.pages.rows;
    e.message = fmt::format("page ranges (ctid), pages {}..{} of the pass, 1 worker",
                            setup.pages.next_page, setup.pages.end_page);
  } else {
    e.message = fmt::format("{} range(s), {} worker(s)", setup.ranges.size(), workers);
  }
  return e;
}

Status ModeMismatch(const std::string& job_id, std::string_view job_mode) {
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("unfinished backfill job {} walks the table by {}; --by asks otherwise",
                            job_id, job_mode))
      .With("hint", "drop --by to resume it, or --restart to start over in the other mode (rows "
                    "already done no longer match --where and are skipped)");
}

Result<JobSetup> StartOrResumeJob(Connection& conn, ControlTables& control,
                                  const BackfillOptions& options, const Plan& plan,
                                  ScanMode chosen, BackfillReport& report) {
  JobSetup setup;
  setup.mode = chosen;
  // Resume an unfinished job, or start a new one.
  json spec = {{"table", report.table}, {"set", plan.set}, {"where", plan.where},
               {"done_check", options.done_check}, {"check", plan.check_query}};
  FERRY_ASSIGN_OR_RETURN(std::optional<JobRow> existing, control.GetJob(report.job_id));
  const bool unfinished = existing && existing->state != JobState::kDone;
  if (existing && existing->kind != "backfill") {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("job {} exists and is a {} job, not a backfill", report.job_id,
                              existing->kind))
        .With("hint", "choose another --job-id");
  }
  if (options.resume && !unfinished) {
    return Status(StatusCode::kNotFound,
                  fmt::format("--resume: there is no unfinished backfill job {}", report.job_id))
        .With("hint", "run without --resume to start one (ferry resumes automatically when an "
                      "unfinished job with the same table, --set and --where exists)");
  }
  std::vector<RangeState>& ranges = setup.ranges;
  JobRow& job = setup.job;
  if (unfinished && !options.restart) {
    json old = json::parse(existing->spec, nullptr, false);
    if (old.is_discarded() || old.value("set", "") != plan.set ||
        old.value("where", "") != plan.where || old.value("table", "") != report.table) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("unfinished backfill job {} was started with another table, --set "
                                "or --where",
                                report.job_id))
          .With("hint", "use another --job-id, or --restart to discard that job's checkpoint");
    }
    if (auto pages = backfill_detail::DecodePageCheckpoint(existing->checkpoint)) {
      if (options.by == BackfillScan::kKey) return ModeMismatch(report.job_id, "page ranges (ctid)");
      setup.mode = ScanMode::kPages;
      setup.pages = *pages;
    } else {
      if (options.by == BackfillScan::kPages) return ModeMismatch(report.job_id, "key ranges");
      setup.mode = ScanMode::kKey;
      FERRY_ASSIGN_OR_RETURN(ranges, DecodeCheckpoint(report.job_id, existing->checkpoint));
    }
    job = std::move(*existing);
    report.resumed = true;
  } else {
    if (existing) FERRY_RETURN_IF_ERROR(control.DeleteJob(report.job_id));
    int64_t rows = plan.table.estimated_rows;
    if (rows < 0) {
      FERRY_ASSIGN_OR_RETURN(QueryResult r, conn.Query(fmt::format(
                                                "SELECT count(*) FROM {}", plan.table.QualifiedName())));
      rows = std::stoll(r.Text(0, 0));
      report.estimated_rows = rows;
    }
    std::vector<KeyRange> split{KeyRange{}};
    if (chosen == ScanMode::kPages) {
      FERRY_ASSIGN_OR_RETURN(int64_t pages, backfill_detail::RelationPages(conn, plan.table));
      setup.pages.end_page = pages;
      setup.pages.start_pages = pages;
    } else if (options.workers > 1 && rows > options.workers) {
      FERRY_ASSIGN_OR_RETURN(split, SplitByKey(conn, plan.table, KeyRange{}, "",
                                               (rows + options.workers - 1) / options.workers,
                                               static_cast<size_t>(options.workers)));
    }
    if (chosen == ScanMode::kKey) {
      for (KeyRange& r : split) ranges.push_back(RangeState{std::move(r), std::nullopt, false, 0, 0});
    }
    job.job_id = report.job_id;
    job.kind = "backfill";
    job.spec = spec.dump();
    job.state = JobState::kRunning;
    job.owner = ThisWorkerName();
    job.checkpoint = chosen == ScanMode::kPages ? backfill_detail::EncodePageCheckpoint(setup.pages)
                                                : EncodeCheckpoint(ranges);
    FERRY_RETURN_IF_ERROR(control.CreateJob(job));
  }
  if (report.resumed) {
    job.state = JobState::kRunning;
    job.owner = ThisWorkerName();
    job.error.clear();
    FERRY_RETURN_IF_ERROR(control.UpdateJob(job));
  }
  return setup;
}

// Page mode met rows that still match --where after their update: the rest
// of the run walks the primary key from the start (rows the page batches
// updated no longer match --where, so none is updated twice).
Result<std::vector<RangeState>> FallBackToKeys(Connection& conn, const BackfillReport& report,
                                               const std::string& why,
                                               const std::function<void(BackfillProgress)>& emit,
                                               EventBus* bus) {
  FERRY_LOG_WARN("backfill {}: falling back from page ranges to key ranges: {}", report.job_id, why);
  std::vector<RangeState> ranges{RangeState{KeyRange{}, std::nullopt, false, 0, 0}};
  FERRY_RETURN_IF_ERROR(
      conn.Query("UPDATE ferry_jobs SET checkpoint = $2, updated_at = now() WHERE job_id = $1",
                 {report.job_id, EncodeCheckpoint(ranges)})
          .status());
  if (bus) {
    BackfillProgress e;
    e.kind = BackfillProgress::Kind::kStarted;
    e.estimated_rows = report.estimated_rows;
    e.message = "falling back to key ranges, 1 worker: " + why;
    emit(e);
  }
  return ranges;
}

}  // namespace

Result<BackfillReport> PlanBackfill(Connection& conn, const BackfillOptions& options) {
  FERRY_ASSIGN_OR_RETURN(Plan plan, MakePlan(conn, options));
  BackfillReport report = ReportFor(plan, options);
  report.job_id = options.job_id.empty() ? DefaultJobId(plan) : options.job_id;
  FERRY_ASSIGN_OR_RETURN(ScanMode mode, backfill_detail::ChooseScan(conn, options, plan));
  ShowScan(plan, mode, report);
  return report;
}

Result<BackfillReport> RunBackfill(const std::string& url, const BackfillOptions& options,
                                   EventBus* bus) {
  FERRY_RETURN_IF_ERROR(CheckOptionValues(options));
  ConnectOptions co;
  co.application_name = "ferry backfill";
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenConnection(url, co));
  FERRY_ASSIGN_OR_RETURN(Plan plan, MakePlan(*conn, options));
  BackfillReport report = ReportFor(plan, options);
  report.job_id = options.job_id.empty() ? DefaultJobId(plan) : options.job_id;
  FERRY_ASSIGN_OR_RETURN(ScanMode mode, backfill_detail::ChooseScan(*conn, options, plan));
  ShowScan(plan, mode, report);
  auto emit = [&](BackfillProgress e) {
    Event event = BackfillEventOf(report.job_id, options.table, std::move(e));
    event.database = DatabaseLabel(url);
    bus->Publish(event);
  };
  if (bus) {
    BackfillProgress e;
    e.kind = BackfillProgress::Kind::kPlanned;
    e.estimated_rows = report.estimated_rows;
    e.message = report.update_sql;
    emit(e);
  }
  if (options.dry_run) return report;

  ControlTables control(*conn);
  FERRY_RETURN_IF_ERROR(control.Ensure());
  const int64_t lock_key = static_cast<int64_t>(Xxh3("ferry-backfill:" + report.job_id));
  FERRY_ASSIGN_OR_RETURN(bool locked, conn->TryLock(lock_key));
  if (!locked) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("backfill job {} is running in another ferry process", report.job_id))
        .With("hint", "wait for it to finish, or stop it; a stopped job resumes where it left off");
  }

  FERRY_ASSIGN_OR_RETURN(JobSetup setup,
                         StartOrResumeJob(*conn, control, options, plan, mode, report));
  report.scan = std::string(backfill_detail::ScanModeName(setup.mode));
  if (bus) emit(StartedEvent(setup, report, options.workers));

  // A server restart during the run also closes this session (and with it
  // the job's advisory lock): reopen it and take the lock again.
  auto ensure_session = [&]() -> Status {
    if (conn->Query("SELECT 1").ok()) return Status();
    FERRY_ASSIGN_OR_RETURN(conn, ReopenLocked(url, co, lock_key, options.reconnect_for,
                                              report.job_id));
    return Status();
  };
  int64_t known_remaining = -1;
  Status ran;
  if (setup.mode == ScanMode::kPages) {
    auto pages = backfill_detail::RunPages(url, options, plan, bus, report.job_id, setup.pages, report);
    if (!pages.ok()) {
      ran = std::move(pages).TakeStatus();
    } else if (pages->outcome == backfill_detail::PagesOutcome::kDone) {
      if (options.done_check.empty()) known_remaining = pages->remaining;
    } else if (pages->outcome == backfill_detail::PagesOutcome::kFallBackToKey) {
      FERRY_RETURN_IF_ERROR(ensure_session());
      FERRY_ASSIGN_OR_RETURN(setup.ranges, FallBackToKeys(*conn, report, pages->message, emit, bus));
      setup.mode = ScanMode::kKey;
      report.scan = "key";
    }
  }
  if (setup.mode == ScanMode::kKey) {
    const int64_t page_batches = report.batches, page_retries = report.retries;
    Runner runner(url, options, plan, bus, report.job_id);
    ran = runner.Run(std::move(setup.ranges), report);
    report.batches += page_batches;
    report.retries += page_retries;
  }
  FERRY_RETURN_IF_ERROR(ensure_session());
  ControlTables control_after(*conn);
  // The job row as the workers left it (checkpoint and counts are theirs).
  FERRY_ASSIGN_OR_RETURN(std::optional<JobRow> now, control_after.GetJob(report.job_id));
  if (!now) return Status(StatusCode::kInternal, "backfill job row vanished during the run");
  report.rows_updated = now->rows_done;
  const bool cancelled = options.cancel != nullptr && options.cancel->load();
  if (!ran.ok() || cancelled) {
    now->state = cancelled && ran.ok() ? JobState::kCancelled : JobState::kFailed;
    now->error = ran.ok() ? "cancelled" : ran.ToString();
    Status saved = control_after.UpdateJob(*now);
    if (!saved.ok()) FERRY_LOG_WARN("backfill: recording the job's state: {}", saved.ToString());
    if (!ran.ok()) return std::move(ran).With("job", report.job_id);
    return Status(StatusCode::kCancelled,
                  fmt::format("backfill job {} stopped after {} rows; run the same command "
                              "again to resume",
                              report.job_id, report.rows_updated));
  }

  if (bus) {
    BackfillProgress e;
    e.kind = BackfillProgress::Kind::kChecking;
    e.rows_updated = report.rows_updated;
    e.message = plan.not_done.empty() ? "check query" : "counting rows still matching the condition";
    emit(e);
  }
  FERRY_RETURN_IF_ERROR(RunChecks(*conn, plan, known_remaining, report));
  now->state = JobState::kDone;
  Status verdict = report.CheckStatus();
  now->error = verdict.ok() ? "" : verdict.message();
  FERRY_RETURN_IF_ERROR(control_after.UpdateJob(*now));
  (void)conn->Unlock(lock_key);
  if (bus) {
    BackfillProgress e;
    e.kind = BackfillProgress::Kind::kFinished;
    e.rows_updated = report.rows_updated;
    e.rows_scanned = report.rows_scanned;
    e.rows_per_second = report.rows_per_second;
    e.message = verdict.ok() ? "checks passed" : verdict.message();
    emit(e);
  }
  return report;
}

}  // namespace ferry
