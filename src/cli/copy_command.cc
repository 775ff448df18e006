// ferry copy: runs or plans a copy job and renders progress (a redrawn
// block of lines on a terminal, JSON events with --json), or prints a job's
// status from the target's control tables.
#include "cli/copy_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/config.h"
#include "core/url.h"
#include "move/copy.h"
#ifdef FERRY_WITH_CQL
#include "move/copy_cql.h"
#endif
#include <filesystem>

namespace ferry::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_copy_cancel{false};

// First SIGINT/SIGTERM: stop after the chunks in flight. A second one: the
// default action (the leases of a dead local process are reclaimed at once
// by the next run).
extern "C" void OnCopySignal(int sig) {
  if (g_copy_cancel.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

// A shell word: bare when it is safe, else in single quotes.
std::string ShellWord(const std::string& w) {
  bool plain = !w.empty();
  for (char c : w) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::strchr("@%+=:,./_-", c) != nullptr)) {
      plain = false;
    }
  }
  if (plain) return w;
  std::string out = "'";
  for (char c : w) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string RedactedOrEmpty(const std::string& url) {
  auto parsed = Url::Parse(url);
  return parsed.ok() ? parsed->Redacted() : std::string();
}

// The command that resumes a stopped job (URLs redacted: put the password
// back, or let the environment or ~/.pgpass supply it).
std::string ResumeCommand(const CopyArgs& args, const std::string& from, const std::string& job) {
  std::string cmd = "ferry copy --from " + ShellWord(RedactedOrEmpty(from)) + " --to " +
                    ShellWord(RedactedOrEmpty(args.to));
  if (args.all) cmd += " --all";
  for (const auto& t : args.tables) cmd += " --table " + ShellWord(t);
  if (!args.where.empty()) cmd += " --where " + ShellWord(args.where);
  if (!args.map.empty()) cmd += " --map " + ShellWord(args.map);
  if (!args.control.empty()) cmd += " --control " + ShellWord(RedactedOrEmpty(args.control));
  if (args.max_rate > 0) cmd += fmt::format(" --max-rate {}", args.max_rate);
  if (args.allow_lossy) cmd += " --allow-lossy";
  cmd += fmt::format(" --workers {} --job {}", args.workers, ShellWord(job));
  return cmd;
}

std::string HumanBytes(int64_t b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string HumanCount(int64_t n) {
  if (n >= 10'000'000) return fmt::format("{:.1f}M", static_cast<double>(n) / 1e6);
  if (n >= 100'000) return fmt::format("{:.0f}k", static_cast<double>(n) / 1e3);
  return std::to_string(n);
}

std::string Duration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "?";
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

nlohmann::json EventJson(const Event& event) {
  const CopyProgress& e = *event.copy;
  const std::string& type = event.type;
  nlohmann::json j = {{"event", type}, {"job", event.job}};
  if (!e.table.empty()) j["table"] = e.table;
  if (e.chunk_id >= 0) {
    j["chunk"] = e.chunk_id;
    j["range"] = e.range;
    j["attempt"] = e.attempt;
  }
  if (type == "chunk_done" || type == "table_done" || type == "job_done" ||
      type == "chunk_failed") {
    j["rows"] = e.rows;
    j["bytes"] = e.bytes;
  }
  if (!e.error.empty()) j["error"] = RedactSecrets(e.error);
  j["job_rows_done"] = e.job_rows_done;
  j["job_rows_estimated"] = e.job_rows_estimated;
  j["job_chunks_done"] = e.job_chunks_done;
  j["job_chunks_total"] = e.job_chunks_total;
  if (!e.table.empty()) {
    j["table_rows_done"] = e.table_rows_done;
    j["table_chunks_done"] = e.table_chunks_done;
    j["table_chunks_total"] = e.table_chunks_total;
  }
  return j;
}

// A block of lines redrawn in place on a terminal (stderr): one per table
// and a total, at most 5 times a second.
class TerminalProgress {
 public:
  void On(const Event& event) {
    const CopyProgress& e = *event.copy;
    const std::string& type = event.type;
    if (type == "job_started") start_ = Clock::now();
    if (!e.table.empty()) {
      Line& l = tables_[e.table];
      l.rows = e.table_rows_done;
      l.estimated = e.table_rows_estimated;
      l.bytes = e.table_bytes_done;
      l.chunks_done = e.table_chunks_done;
      l.chunks_total = e.table_chunks_total;
      if (type == "chunk_failed") l.failed++;
      if (type == "table_done") l.done = true;
    }
    total_ = e;
    auto now = Clock::now();
    bool final = type == "job_done";
    if (!final && now - last_draw_ < std::chrono::milliseconds(200)) return;
    last_draw_ = now;
    Draw(final);
  }

 private:
  struct Line {
    int64_t rows = 0, estimated = -1, bytes = 0, chunks_done = 0, chunks_total = 0, failed = 0;
    bool done = false;
  };

  std::string Render(std::string_view name, int64_t rows, int64_t estimated, int64_t bytes,
                     int64_t chunks_done, int64_t chunks_total, double secs) const {
    double frac = chunks_total > 0 ? static_cast<double>(chunks_done) / chunks_total : 1.0;
    if (estimated > 0) frac = std::min(1.0, std::max(frac, static_cast<double>(rows) / estimated));
    if (chunks_total > 0 && chunks_done == chunks_total) frac = 1.0;
    const int width = 20;
    int filled = static_cast<int>(frac * width);
    std::string bar = std::string(static_cast<size_t>(filled), '#') +
                      std::string(static_cast<size_t>(width - filled), '-');
    double rate = secs > 0 ? static_cast<double>(rows) / secs : 0;
    double eta = (frac > 0 && frac < 1) ? secs * (1 - frac) / frac : 0;
    return fmt::format("{:<24.24} [{}] {:>3.0f}% {:>7} rows {:>9} {:>8}/s eta {}", name, bar,
                       frac * 100, HumanCount(rows), HumanBytes(bytes), HumanCount(int64_t(rate)),
                       frac >= 1 ? "-" : Duration(eta));
  }

  void Draw(bool final) {
    double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    std::string out;
    if (drawn_ > 0) out += fmt::format("\x1b[{}F", drawn_);  // back to the block's start
    int lines = 0;
    for (const auto& [name, l] : tables_) {
      out += "\x1b[2K" + Render(name, l.rows, l.estimated, l.bytes, l.chunks_done, l.chunks_total,
                               secs);
      if (l.failed) out += fmt::format(" ({} failed)", l.failed);
      out += "\n";
      ++lines;
    }
    out += "\x1b[2K" + Render("total", total_.job_rows_done, total_.job_rows_estimated,
                              total_.job_bytes_done, total_.job_chunks_done,
                              total_.job_chunks_total, secs) +
           "\n";
    ++lines;
    drawn_ = final ? 0 : lines;
    std::fwrite(out.data(), 1, out.size(), stderr);
    std::fflush(stderr);
  }

  std::map<std::string, Line> tables_;
  CopyProgress total_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_draw_{};
  int drawn_ = 0;
};

int PrintStatus(const Context& ctx, const std::string& target, const std::string& job) {
  auto st = ReadCopyStatus(target, job);
  if (!st.ok()) return ReportError(st.status(), ctx.json);
  if (ctx.json) {
    nlohmann::json tables = nlohmann::json::array();
    for (const auto& t : st->tables) {
      tables.push_back({{"table", t.table},
                        {"chunks_total", t.chunks_total},
                        {"chunks_done", t.chunks_done},
                        {"chunks_failed", t.chunks_failed},
                        {"chunks_leased", t.chunks_leased},
                        {"rows", t.rows},
                        {"bytes", t.bytes}});
    }
    nlohmann::json failures = nlohmann::json::array();
    for (const auto& f : st->failures) {
      failures.push_back({{"table", f.table}, {"range", f.range}, {"error", RedactSecrets(f.error)}});
    }
    PrintJson({{"ok", true},
               {"job", st->job_id},
               {"state", st->state},
               {"created_at", st->created_at},
               {"updated_at", st->updated_at},
               {"finished_at", st->finished_at},
               {"owner", st->owner},
               {"rows_done", st->rows_done},
               {"rows_failed", st->rows_failed},
               {"bytes_done", st->bytes_done},
               {"error", RedactSecrets(st->error)},
               {"tables", tables},
               {"failures", failures}});
    return kExitOk;
  }
  std::string out = fmt::format("job {}: {} (started {}, updated {}{}; last run by {})\n",
                                st->job_id, st->state, st->created_at, st->updated_at,
                                st->finished_at.empty() ? "" : ", finished " + st->finished_at,
                                st->owner);
  for (const auto& t : st->tables) {
    out += fmt::format("  {:<30} {:>5}/{:<5} chunks done  {:>10} rows  {:>10}{}{}\n", t.table,
                       t.chunks_done, t.chunks_total, t.rows, HumanBytes(t.bytes),
                       t.chunks_leased ? fmt::format("  {} in progress", t.chunks_leased) : "",
                       t.chunks_failed ? fmt::format("  {} failed", t.chunks_failed) : "");
  }
  out += fmt::format("  total: {} rows copied, {} rows in failed chunks\n", st->rows_done,
                     st->rows_failed);
  for (const auto& f : st->failures) {
    out += fmt::format("  failed: table {} range {}: {}\n", f.table, f.range,
                       RedactSecrets(f.error));
  }
  if (!st->error.empty()) out += "  error: " + RedactSecrets(st->error) + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

int PrintPlan(const Context& ctx, const CopyPlan& plan) {
  if (ctx.json) {
    nlohmann::json tables = nlohmann::json::array();
    for (const auto& t : plan.tables) {
      tables.push_back({{"source", t.source_name},
                        {"target", t.target_name},
                        {"split", t.split},
                        {"estimated_rows", t.estimated_rows},
                        {"chunks", t.chunks},
                        {"target_exists", t.target_exists},
                        {"target_has_rows", t.target_has_rows},
                        {"partitioning", t.partition_note},
                        {"ddl", t.ddl}});
    }
    PrintJson({{"ok", true},
               {"dry_run", true},
               {"job", plan.job_id},
               {"from", plan.source},
               {"to", plan.target},
               {"resumes", plan.resumes},
               {"tables", tables}});
    return kExitOk;
  }
  std::string out = fmt::format("plan for job {} ({} -> {}){}; nothing was changed\n",
                                plan.job_id, plan.source, plan.target,
                                plan.resumes ? ", resuming an unfinished run" : "");
  for (const auto& t : plan.tables) {
    out += fmt::format("  {} -> {}: ~{} rows, {} chunks by {}{}\n", t.source_name, t.target_name,
                       t.estimated_rows, t.chunks, t.split,
                       !t.target_exists ? ", target will be created"
                       : t.target_has_rows ? ", target has rows"
                                           : "");
    if (!t.partition_note.empty()) out += "    note: " + t.partition_note + "\n";
    for (const auto& d : t.ddl) {
      std::string indented = "    ";
      for (char c : d) indented += c == '\n' ? std::string("\n    ") : std::string(1, c);
      out += indented + ";\n";
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

// The library's options from the flags (and ferry.toml's [[copy.map]]).
Result<CopyOptions> OptionsFromArgs(const Context& ctx, const CopyArgs& args,
                                    const std::string& from) {
  CopyOptions o;
  o.from_url = from;
  o.to_url = args.to;
  o.tables = args.tables;
  o.all = args.all;
  o.where = args.where;
  o.workers = args.workers;
  o.batch_rows = args.batch_rows;
  o.split = args.split;
  o.dry_run = args.dry_run;
  o.create_tables = args.create_tables;
  o.truncate = args.truncate;
  o.append = args.append;
  o.restart = args.restart;
  o.job_id = args.job;
  o.map_file = args.map;
  if (o.map_file.empty() && !ctx.config.file_path().empty() &&
      std::filesystem::exists(ctx.config.file_path())) {
    o.map_file = ctx.config.file_path();  // its [[copy.map]] entries, if any
  }
  o.control_url = args.control;
  o.max_rate = args.max_rate;
  o.allow_lossy = args.allow_lossy;
  o.in_flight = args.in_flight;
  auto lock_ms = ParseDurationMs(args.lock_timeout);
  if (!lock_ms.ok() || *lock_ms < 1) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--lock-timeout {:?}: write a duration such as 500ms or 10s",
                              args.lock_timeout));
  }
  o.lock_timeout = std::chrono::milliseconds(*lock_ms);
  return o;
}

// The run's summary line (text, or the --json summary event).
void PrintSummary(const Context& ctx, const CopySummary& s, bool ok) {
  double rate = s.seconds > 0 ? static_cast<double>(s.rows_copied) / s.seconds : 0;
  if (ctx.json) {
    nlohmann::json failures = nlohmann::json::array();
    for (const auto& f : s.failures) {
      failures.push_back({{"table", f.table}, {"range", f.range}, {"error", RedactSecrets(f.error)}});
    }
    PrintJson({{"event", "summary"},
               {"ok", ok},
               {"job", s.job_id},
               {"resumed", s.resumed},
               {"already_done", s.already_done},
               {"rows_migrated", s.rows_copied},
               {"rows_failed", s.rows_failed},
               {"bytes", s.bytes_copied},
               {"chunks_done", s.chunks_done},
               {"chunks_failed", s.chunks_failed},
               {"chunks_total", s.chunks_total},
               {"seconds", s.seconds},
               {"failures", failures}});
  } else if (!ctx.quiet || !ok) {
    std::string out =
        s.already_done
            ? fmt::format("job {} had already finished: {} rows migrated, {} failed (use "
                          "--restart to copy again)\n",
                          s.job_id, s.rows_copied, s.rows_failed)
            : fmt::format("job {}{}: {} rows migrated, {} rows failed, {} in {} chunks "
                          "({} failed), {:.1f}s, {} rows/s\n",
                          s.job_id, s.resumed ? " (resumed)" : "", s.rows_copied, s.rows_failed,
                          HumanBytes(s.bytes_copied), s.chunks_done, s.chunks_failed, s.seconds,
                          HumanCount(static_cast<int64_t>(rate)));
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
}

}  // namespace

int RunCopyCommand(const Context& ctx, const CopyArgs& args) {
  std::string from = args.from.empty() ? ctx.config.Get("database") : args.from;
  if (!args.status.empty()) {
    if (args.to.empty()) {
      return ReportError(Status(StatusCode::kInvalidArgument,
                                "--status JOB reads the control tables on the target: add --to URL"),
                         ctx.json);
    }
    std::string control = args.to;
#ifdef FERRY_WITH_CQL
    // A CQL target keeps no control tables: the job lives on --control.
    if (IsCqlTarget(args.to)) control = args.control.empty() ? DefaultCqlControlUrl() : args.control;
#endif
    return PrintStatus(ctx, control, args.status);
  }
  auto options = OptionsFromArgs(ctx, args, from);
  if (!options.ok()) return ReportError(options.status(), ctx.json);
  CopyOptions o = std::move(*options);
  if (o.dry_run) {
    auto plan = PlanCopy(o);
    if (!plan.ok()) return ReportError(plan.status(), ctx.json);
    return PrintPlan(ctx, *plan);
  }

  const bool tty = !ctx.json && !ctx.quiet && isatty(STDERR_FILENO) == 1;
  TerminalProgress bar;
  ScopedSubscription printer(*ctx.bus, [&](const Event& event) {
    if (!event.copy) return;
    const CopyProgress& e = *event.copy;
    if (ctx.json) {
      PrintJson(EventJson(event));
    } else if (tty) {
      bar.On(event);
    } else if (!ctx.quiet && (event.type == "table_done" || event.type == "chunk_failed")) {
      std::string line =
          event.type == "table_done"
              ? fmt::format("ferry: copied table {}: {} rows, {}\n", e.table, e.rows,
                            HumanBytes(e.bytes))
              : fmt::format("ferry: chunk {} of {} ({}) failed: {}\n", e.chunk_id, e.table,
                            e.range, RedactSecrets(e.error));
      std::fwrite(line.data(), 1, line.size(), stderr);
    }
  });
  CopySummary partial;
  g_copy_cancel = false;
  o.cancel = &g_copy_cancel;
  auto previous_int = std::signal(SIGINT, OnCopySignal);
  auto previous_term = std::signal(SIGTERM, OnCopySignal);
  auto summary = RunCopy(o, ctx.bus, &partial);
  std::signal(SIGINT, previous_int);
  std::signal(SIGTERM, previous_term);
  const CopySummary& s = summary.ok() ? *summary : partial;
  if (summary.ok() || !partial.job_id.empty()) PrintSummary(ctx, s, summary.ok());
  if (!summary.ok()) {
    // With --json the summary line already carries the failure; the error
    // line follows it for the exit code and context.
    if (summary.status().code() == StatusCode::kCancelled) {
      const std::string job = s.job_id.empty() ? summary.status().Get("job") : s.job_id;
      Status stopped = summary.status();
      stopped.Add("resume", ResumeCommand(args, from, job));
      if (!ctx.json) {
        std::string line = "ferry: to resume: " + ResumeCommand(args, from, job) + "\n";
        std::fwrite(line.data(), 1, line.size(), stderr);
      }
      return ReportError(stopped, ctx.json);
    }
    return ReportError(summary.status(), ctx.json);
  }
  return kExitOk;
}

}  // namespace ferry::cli
