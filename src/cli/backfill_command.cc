// ferry backfill: flags -> BackfillOptions -> RunBackfill, with a progress
// line on a terminal (stderr), one JSON event per line with --json, Ctrl-C
// stopping after the current batches (the checkpoint keeps the work).
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/context.h"
#include "core/numbers.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/config.h"
#include "core/url.h"
#include "move/backfill.h"

namespace ferry::cli {
namespace {

std::atomic<bool> g_cancel{false};

extern "C" void OnInterrupt(int) { g_cancel.store(true); }

void Err(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}


std::string Eta(double seconds) {
  if (seconds < 0) return "?";
  auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

Result<std::chrono::milliseconds> Millis(std::string_view flag, const std::string& text) {
  auto ms = ParseDurationMs(text);
  if (!ms.ok()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} {:?}: {}", flag, text, ms.status().message()))
        .With("hint", "write a duration such as 200ms, 2s, 1min, or a number of milliseconds");
  }
  return std::chrono::milliseconds(*ms);
}

nlohmann::json EventJson(const BackfillProgress& e) {
  nlohmann::json j = {{"event", std::string(BackfillProgressName(e.kind))},
                      {"rows_updated", e.rows_updated},
                      {"rows_scanned", e.rows_scanned},
                      {"estimated_rows", e.estimated_rows}};
  if (e.kind == BackfillProgress::Kind::kBatch || e.kind == BackfillProgress::Kind::kRetry) {
    j["worker"] = e.worker;
    j["batch_limit"] = e.batch_limit;
  }
  if (e.kind == BackfillProgress::Kind::kBatch) {
    j["batch_rows"] = e.batch_rows;
    j["batch_ms"] = e.batch_ms;
    j["rows_per_second"] = static_cast<int64_t>(e.rows_per_second);
    if (e.eta_seconds >= 0) j["eta_seconds"] = static_cast<int64_t>(e.eta_seconds);
  }
  if (e.kind == BackfillProgress::Kind::kRetry) j["attempt"] = e.attempt;
  if (e.kind == BackfillProgress::Kind::kStarted) j["resumed"] = e.resumed;
  if (!e.message.empty()) j["message"] = e.message;
  return j;
}

nlohmann::json ReportJson(const BackfillReport& r) {
  nlohmann::json check_rows = nlohmann::json::array();
  for (const auto& row : r.check_rows) {
    nlohmann::json obj = nlohmann::json::object();
    for (size_t i = 0; i < row.size(); ++i) {
      std::string name = i < r.check_columns.size() ? r.check_columns[i] : std::to_string(i);
      obj[name] = row[i] ? nlohmann::json(*row[i]) : nlohmann::json(nullptr);
    }
    check_rows.push_back(std::move(obj));
  }
  return {{"job_id", r.job_id},
          {"table", r.table},
          {"dry_run", r.dry_run},
          {"resumed", r.resumed},
          {"workers", r.workers},
          {"scan", r.scan},
          {"estimated_rows", r.estimated_rows},
          {"rows_updated", r.rows_updated},
          {"rows_scanned", r.rows_scanned},
          {"batches", r.batches},
          {"retries", r.retries},
          {"longest_batch_ms", r.longest_batch_ms},
          {"final_batch_rows", r.final_batch_rows},
          {"throttled_ms", r.throttled_ms},
          {"elapsed_seconds", r.elapsed_seconds},
          {"rows_per_second", static_cast<int64_t>(r.rows_per_second)},
          {"remaining", r.remaining},
          {"remaining_condition", r.remaining_condition},
          {"check_rows", check_rows},
          {"checks_passed", r.checks_passed()},
          {"update_sql", r.update_sql}};
}

// Redraws one status line on stderr at most ten times a second.
class ProgressLine {
 public:
  void Update(const BackfillProgress& e) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const int64_t total = std::max<int64_t>(e.estimated_rows, 1);
    const double fraction = std::min(1.0, static_cast<double>(e.rows_scanned) / static_cast<double>(total));
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    Err(fmt::format("\r[{}] {:5.1f}%  {} rows updated  {} keys/s  ETA {}  batch {} rows/{} ms   ",
                    bar, fraction * 100, Grouped(e.rows_updated),
                    Grouped(static_cast<int64_t>(e.rows_per_second)), Eta(e.eta_seconds),
                    Grouped(e.batch_limit), e.batch_ms));
    drawn_ = true;
  }
  void Finish() {
    if (drawn_) Err("\n");
    drawn_ = false;
  }

 private:
  std::chrono::steady_clock::time_point last_{};
  bool drawn_ = false;
};

// The library's options from the flags (durations parsed).
Result<BackfillOptions> BackfillOptionsFrom(const BackfillArgs& args) {
  BackfillOptions o;
  o.table = args.table;
  o.set = args.set;
  o.where = args.where;
  o.done_check = args.done_check;
  o.check_query = args.check;
  o.batch_rows = args.batch_rows;
  o.adaptive = !args.fixed_batch;
  if (args.fixed_batch) {
    o.min_batch_rows = std::max<int64_t>(1, std::min(o.min_batch_rows, args.batch_rows));
    o.max_batch_rows = std::max(o.max_batch_rows, args.batch_rows);
  }
  o.workers = args.workers;
  o.by = args.by == "key" ? BackfillScan::kKey
         : args.by == "ctid" ? BackfillScan::kPages
                             : BackfillScan::kAuto;
  o.job_id = args.job_id;
  o.resume = args.resume;
  o.restart = args.restart;
  o.dry_run = args.dry_run;
  const std::pair<std::string_view, std::pair<const std::string*, std::chrono::milliseconds*>>
      durations[] = {{"--max-batch-ms", {&args.max_batch, &o.max_batch}},
                     {"--sleep", {&args.sleep, &o.sleep}},
                     {"--lock-timeout", {&args.lock_timeout, &o.lock_timeout}},
                     {"--statement-timeout", {&args.statement_timeout, &o.statement_timeout}},
                     {"--max-lag", {&args.max_lag, &o.max_replication_lag}}};
  for (const auto& [flag, slot] : durations) {
    auto ms = Millis(flag, *slot.first);
    if (!ms.ok()) return std::move(ms).TakeStatus();
    *slot.second = *ms;
  }
  if (args.batch_rows > o.max_batch_rows) o.max_batch_rows = args.batch_rows;
  return o;
}

// The text report of a dry run.
void PrintDryRun(const BackfillReport& r, const BackfillOptions& o) {
  std::printf("dry run: nothing changed\n");
  std::printf("table:     %s (about %s rows)\n", r.table.c_str(), Grouped(r.estimated_rows).c_str());
  std::printf("job:       %s\n", r.job_id.c_str());
  std::printf("batches:   %s rows to start, adapting to about %lld ms each, %d worker(s)\n",
              Grouped(o.batch_rows).c_str(), static_cast<long long>(o.max_batch.count() / 2),
              o.workers);
  std::printf("walk:      %s\n", r.scan == "ctid" ? "heap page ranges (ctid)" : "primary-key ranges");
  std::printf("statement: %s\n", FoldWhitespace(r.update_sql).c_str());
  std::printf("check:     %s\n",
              r.remaining_condition.empty()
                  ? (o.check_query.empty() ? "none (give --where or --check)" : "the --check query")
                  : fmt::format("no row may match ({})", FoldWhitespace(r.remaining_condition)).c_str());
}

// The text report of a finished run.
void PrintReport(const BackfillReport& r, const BackfillOptions& o) {
  std::printf("backfill %s: %s rows updated in %s batches, %.1f s (%s rows/s), %d worker(s), "
              "by %s%s\n",
              r.table.c_str(), Grouped(r.rows_updated).c_str(), Grouped(r.batches).c_str(),
              r.elapsed_seconds, Grouped(static_cast<int64_t>(r.rows_per_second)).c_str(),
              r.workers, r.scan == "ctid" ? "page ranges (ctid)" : "key ranges",
              r.resumed ? ", resumed" : "");
  std::printf("longest batch %lld ms (ceiling %lld ms), %lld retries, last batch size %s rows\n",
              static_cast<long long>(r.longest_batch_ms),
              static_cast<long long>(o.max_batch.count()), static_cast<long long>(r.retries),
              Grouped(r.final_batch_rows).c_str());
  if (r.remaining >= 0) {
    std::printf("integrity: %s row(s) still match (%s)%s\n", Grouped(r.remaining).c_str(),
                FoldWhitespace(r.remaining_condition).c_str(), r.remaining == 0 ? ": ok" : "");
  }
  if (!o.check_query.empty()) {
    std::printf("check query: %s\n",
                r.check_rows.empty() ? "no rows: ok"
                                     : fmt::format("{} row(s) returned", r.check_rows.size()).c_str());
  }
  std::printf("job %s recorded in ferry_jobs\n", r.job_id.c_str());
}

}  // namespace

int RunBackfillCommand(const Context& ctx, const BackfillArgs& args) {
  auto options = BackfillOptionsFrom(args);
  if (!options.ok()) return ReportError(options.status(), ctx.json);
  BackfillOptions& o = *options;

  const std::string& url = ctx.config.Get("database");
  if (url.rfind("postgres", 0) != 0) {
    auto parsed = Url::Parse(url);
    return ReportError(Status(StatusCode::kInvalidArgument,
                              fmt::format("backfill runs on PostgreSQL; the database is {}",
                                          parsed.ok() ? parsed->Redacted() : std::string("not a URL")))
                           .With("hint", "pass --database postgres://user@host/db or set DATABASE_URL"),
                       ctx.json);
  }

  g_cancel = false;
  o.cancel = &g_cancel;
  auto previous_int = std::signal(SIGINT, OnInterrupt);
  auto previous_term = std::signal(SIGTERM, OnInterrupt);

  const bool tty = !ctx.json && !ctx.quiet && isatty(STDERR_FILENO) == 1;
  ProgressLine progress;
  ScopedSubscription printer(*ctx.bus, [&](const Event& event) {
    if (!event.backfill) return;
    const BackfillProgress& e = *event.backfill;
    if (ctx.json) {
      if (e.kind != BackfillProgress::Kind::kPlanned || o.dry_run) PrintJson(EventJson(e));
      return;
    }
    if (ctx.quiet) return;
    switch (e.kind) {
      case BackfillProgress::Kind::kStarted:
        Err(e.resumed ? fmt::format("resuming: {} rows already updated; {}\n",
                                    Grouped(e.rows_updated), e.message)
                      : fmt::format("starting: about {} rows; {}\n", Grouped(e.estimated_rows),
                                    e.message));
        break;
      case BackfillProgress::Kind::kBatch:
        if (tty) progress.Update(e);
        break;
      case BackfillProgress::Kind::kRetry:
      case BackfillProgress::Kind::kThrottled:
        progress.Finish();
        Err(fmt::format("worker {}: {}{}\n", e.worker, e.message,
                        e.attempt > 0 ? fmt::format(" (attempt {}, retrying)", e.attempt) : ""));
        break;
      case BackfillProgress::Kind::kChecking:
        progress.Finish();
        Err(fmt::format("checking: {}\n", e.message));
        break;
      default:
        break;
    }
  });

  auto report = RunBackfill(url, o, ctx.bus);
  progress.Finish();
  std::signal(SIGINT, previous_int);
  std::signal(SIGTERM, previous_term);
  if (!report.ok()) return ReportError(report.status(), ctx.json);
  const BackfillReport& r = *report;
  Status verdict = r.CheckStatus();

  if (ctx.json) {
    nlohmann::json out = {{"ok", verdict.ok()}, {"report", ReportJson(r)}};
    if (!verdict.ok()) out["error"] = StatusJson(verdict);
    PrintJson(out);
  } else if (r.dry_run) {
    PrintDryRun(r, o);
  } else {
    PrintReport(r, o);
  }
  if (!verdict.ok()) {
    if (!ctx.json) (void)ReportError(verdict, false);
    return kExitDifferences;
  }
  return kExitOk;
}

}  // namespace ferry::cli
