// ferry cutover: flags -> one library call (move/sync/sync.h RunCutover or
// UndoCutoverGuard) -> text on stderr, or one --json object.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/command_table.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/config.h"
#include "move/sync/sync.h"
#include "observe/event.h"

namespace ferry::cli {
namespace {

struct CutoverArgs {
  std::string job, from, to, max_lag = "16MB", max_pause = "5s", catch_up_timeout = "5m",
                            lock_timeout = "5s", hook_timeout = "60s", switch_hook;
  std::string watch, watch_interval = "10s", rollback_if, prometheus, rollback_if_cmd,
      rollback_hook;
  bool verify = false, undo_guard = false, reverse = false;
  int64_t sequence_margin = 1000;
};
CutoverArgs g_args;
std::atomic<bool> g_cutover_cancel{false};

void OnCutoverSignal(int sig) {
  if (g_cutover_cancel.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

void Err(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stderr); }

// "16MB", "512kB", "1GB", "4096" (bytes; units are powers of 1024).
Result<int64_t> ParseBytes(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  std::string unit;
  for (char c : text.substr(i)) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int64_t mult = unit.empty() || unit == "b" ? 1
                 : unit == "kb"              ? 1024
                 : unit == "mb"              ? 1024 * 1024
                 : unit == "gb"              ? 1024 * 1024 * 1024
                                             : 0;
  if (i == 0 || i > 12 || mult == 0) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--max-lag {:?}: write a size such as 16MB, 512kB or 1048576", text));
  }
  return std::stoll(text.substr(0, i)) * mult;
}

Result<std::chrono::milliseconds> Duration(const std::string& flag, const std::string& text) {
  auto ms = ParseDurationMs(text);
  if (!ms.ok() || *ms < 1) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} {:?}: write a duration such as 500ms, 5s or 2m", flag, text));
  }
  return std::chrono::milliseconds(*ms);
}

Result<CutoverOptions> OptionsOf(const CutoverArgs& a) {
  CutoverOptions o;
  o.from_url = a.from;
  o.to_url = a.to;
  o.job = a.job;
  FERRY_ASSIGN_OR_RETURN(o.max_lag_bytes, ParseBytes(a.max_lag));
  FERRY_ASSIGN_OR_RETURN(o.max_pause, Duration("--max-pause", a.max_pause));
  FERRY_ASSIGN_OR_RETURN(o.catch_up_timeout, Duration("--catch-up-timeout", a.catch_up_timeout));
  FERRY_ASSIGN_OR_RETURN(o.lock_timeout, Duration("--lock-timeout", a.lock_timeout));
  FERRY_ASSIGN_OR_RETURN(o.hook_timeout, Duration("--hook-timeout", a.hook_timeout));
  o.verify = a.verify;
  o.switch_hook = a.switch_hook;
  o.sequence_margin = a.sequence_margin;
  o.reverse = a.reverse;
  if (!a.watch.empty()) {
    FERRY_ASSIGN_OR_RETURN(o.watch.duration, Duration("--watch", a.watch));
    FERRY_ASSIGN_OR_RETURN(o.watch.interval, Duration("--watch-interval", a.watch_interval));
  }
  o.watch.query = a.rollback_if;
  o.watch.prometheus_url = a.prometheus;
  o.watch.check_command = a.rollback_if_cmd;
  o.watch.rollback_hook = a.rollback_hook;
  return o;
}

nlohmann::json WatchJson(const WatchReport& w) {
  if (!w.enabled) return nullptr;
  return {{"duration_s", w.duration_s},       {"checks", w.checks},
          {"condition_held", w.condition_held}, {"value", w.value},
          {"reason", w.reason},               {"rolled_back", w.rolled_back},
          {"rollback_pause_ms", w.rollback_pause_ms}};
}

nlohmann::json ReportJson(const CutoverReport& r) {
  const nlohmann::json seqs = r.sequences;
  const nlohmann::json tables = r.tables;
  nlohmann::json hook = nullptr;
  if (r.hook_exit_code >= 0) hook = {{"command", r.hook_command}, {"exit_code", r.hook_exit_code}};
  return {{"ok", true},          {"job", r.job},
          {"lag_before_bytes", r.lag_before_bytes}, {"drain_lsn", r.drain_lsn},
          {"pause_ms", r.pause_ms}, {"sequences", seqs},
          {"tables", tables},    {"hook", hook},
          {"verified", r.verified}, {"guard_installed", r.guard_installed},
          {"guard_trigger", r.guard_trigger},
          {"reverse", r.reverse_job.empty()
                          ? nlohmann::json(nullptr)
                          : nlohmann::json{{"job", r.reverse_job},
                                           {"start_lsn", r.reverse_start_lsn}}},
          {"watch", WatchJson(r.watch)}};
}

std::string WatchText(const CutoverReport& r) {
  const WatchReport& w = r.watch;
  if (!w.enabled) return "";
  if (w.rolled_back) {
    return fmt::format(
        "  ROLLED BACK after watching {:.1f}s ({} checks): {}\n  writes are back on the old "
        "primary; pause {} ms; the new primary refuses writes (ferry cutover {} --undo-guard "
        "--from NEW removes that guard)\n",
        w.duration_s, w.checks, w.reason, w.rollback_pause_ms, r.reverse_job);
  }
  return fmt::format(
      "  watched {:.1f}s ({} checks), condition never held; the cut-over stands\n  going back "
      "later: ferry cutover {} --from NEW --to OLD --switch-hook '...', then ferry cutover {} "
      "--undo-guard --from OLD\n",
      w.duration_s, w.checks, r.reverse_job, r.job);
}

int UndoGuard(const Context& ctx, const CutoverArgs& a) {
  auto r = UndoCutoverGuard(a.from, a.job);
  if (!r.ok()) return ReportError(r.status(), ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", true}, {"job", a.job}, {"unguarded_tables", *r}});
  } else {
    std::printf("%s", fmt::format("cutover {}: guard removed from {}; the source takes writes again\n",
                                  a.job, fmt::join(*r, ", "))
                          .c_str());
  }
  return kExitOk;
}

int RunCutoverCommand(const Context& ctx) {
  CutoverArgs a = g_args;
  if (a.from.empty()) a.from = ctx.config.Get("database");
  if (a.undo_guard) return UndoGuard(ctx, a);
  auto o = OptionsOf(a);
  if (!o.ok()) return ReportError(o.status(), ctx.json);
  ScopedSubscription printer(*ctx.bus, [&](const Event& e) {
    if (e.kind != EventKind::kSync || ctx.quiet || !e.type.starts_with("cutover_")) return;
    Err(fmt::format("ferry: cutover {} +{}ms {}: {}\n", e.job, e.duration_ms, e.type.substr(8),
                    e.message));
  });
  g_cutover_cancel = false;
  o->cancel = &g_cutover_cancel;
  auto previous_int = std::signal(SIGINT, OnCutoverSignal);
  auto previous_term = std::signal(SIGTERM, OnCutoverSignal);
  auto report = RunCutover(*o, ctx.bus);
  std::signal(SIGINT, previous_int);
  std::signal(SIGTERM, previous_term);
  if (!report.ok()) return ReportError(report.status(), ctx.json);
  const CutoverReport& r = *report;
  if (ctx.json) {
    PrintJson(ReportJson(r));
  } else if (!ctx.quiet) {
    std::string out = fmt::format(
        "cutover {}: writes moved to the target; pause {} ms (drained to {}), {} tables, {} "
        "sequences moved{}\n  the source tables refuse writes (trigger {}); undo with: ferry "
        "cutover {} --undo-guard --from URL\n  the job's slot still holds WAL on the source: "
        "ferry sync --drop {} --from URL --to URL removes it\n",
        r.job, r.pause_ms, r.drain_lsn, r.tables.size(), r.sequences.size(),
        r.verified ? ", verified" : "", r.guard_trigger, r.job, r.job);
    if (!r.reverse_job.empty()) {
      out += fmt::format(
          "  going back: ferry sync --from NEW --to OLD --job {} streams every write on the new "
          "primary since the pause to the old one\n",
          r.reverse_job);
    }
    out += WatchText(r);
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return kExitOk;
}

CLI::App* AddCutover(CLI::App& app) {
  CutoverArgs& a = g_args;
  CLI::App* c = app.add_subcommand(
      "cutover", "move writes from a sync job's source to its target with a short, measured pause");
  c->add_option("job", a.job, "the sync job (ferry sync --job)")->required();
  c->add_option("--from", a.from, "source URL, today's primary (default: --database)");
  c->add_option("--to", a.to, "target URL, the new primary");
  c->add_option("--max-lag", a.max_lag, "catch up without locks until the lag is at most this (16MB)");
  c->add_option("--catch-up-timeout", a.catch_up_timeout,
                "give up when the lag stays above --max-lag this long (5m)");
  c->add_option("--lock-timeout", a.lock_timeout,
                "wait at most this long for the table locks (5s)");
  c->add_option("--max-pause", a.max_pause,
                "roll back when locking + draining takes longer than this (5s)");
  c->add_flag("--verify", a.verify, "compare every row (ferry verify) instead of row counts");
  c->add_option("--switch-hook", a.switch_hook,
                "command run by /bin/sh while writes are stopped; non-zero exit aborts");
  c->add_option("--hook-timeout", a.hook_timeout, "kill the hook and abort after this long (60s)");
  c->add_option("--sequence-margin", a.sequence_margin,
                "target sequences end at max(source, target) + this (1000)");
  c->add_flag("--reverse", a.reverse,
              "also prepare sync job <JOB>_reverse from the target back to the source");
  c->add_option("--watch", a.watch,
                "after the cut-over, keep streaming the reverse job and check --rollback-if "
                "this long (needs --reverse)");
  c->add_option("--watch-interval", a.watch_interval, "time between two checks (10s)");
  c->add_option("--rollback-if", a.rollback_if,
                "PromQL: roll back when it gives any sample != 0 (with --prometheus)");
  c->add_option("--prometheus", a.prometheus, "Prometheus base URL, http://host:9090");
  c->add_option("--rollback-if-cmd", a.rollback_if_cmd,
                "instead of --rollback-if: /bin/sh command; exit 0 = roll back, 1 = not");
  c->add_option("--rollback-hook", a.rollback_hook,
                "command switching traffic back, run while the new primary's writes are stopped");
  c->add_flag("--undo-guard", a.undo_guard,
              "remove the guard triggers a cut-over left on the source (--from only)");
  c->footer(
      "Examples:\n"
      "  ferry sync --from $OLD --to $NEW --tables users,orders --job move1   # Ctrl-C later\n"
      "  ferry cutover move1 --from $OLD --to $NEW --switch-hook 'kubectl apply -f db-new.yaml'\n"
      "  ferry cutover move1 --from $OLD --to $NEW --verify --max-pause 2s --json\n"
      "  ferry cutover move1 --from $OLD --to $NEW --reverse   # then, to go back:\n"
      "  ferry sync --from $NEW --to $OLD --job move1_reverse\n"
      "  ferry cutover move1 --undo-guard --from $OLD\n"
      "  ferry cutover move1 --from $OLD --to $NEW --reverse --switch-hook ./to-new.sh \\\n"
      "    --watch 15m --rollback-if 'sum(rate(http_errors_total[1m])) > 5' \\\n"
      "    --prometheus http://prometheus:9090 --rollback-hook ./to-old.sh\n"
      "Watch: every --watch-interval the condition is checked while the reverse job keeps\n"
      "the old primary current; when it holds, the reverse job is cut over (the switch\n"
      "back, --rollback-hook) and the old guard removed. 3 failed checks in a row end the\n"
      "watch without rolling back (exit 9). Guide: docs/cutover.md#watching-and-rolling-back.\n"
      "Steps: catch up (no lock) until lag <= --max-lag; LOCK the synced source tables IN\n"
      "EXCLUSIVE MODE (reads go on, writers wait); drain to the lock's WAL position; move\n"
      "owned sequences past the source's; compare row counts (or --verify); add guard\n"
      "triggers that refuse writes on the source; run the hook (FERRY_CUTOVER_JOB,\n"
      "FERRY_CUTOVER_FROM, FERRY_CUTOVER_TO without passwords); COMMIT. Any failure before\n"
      "the commit rolls back: the source takes writes again and keeps no guard.\n"
      "Stop a running `ferry sync` for the job first. Guide: docs/sync.md#cut-over.");
  return c;
}

}  // namespace

Runner AddCutoverCommand(CLI::App& app, const Want& want) {
  if (!want("cutover")) return nullptr;
  CLI::App* cmd = AddCutover(app);
  return [cmd](const Context& ctx) -> std::optional<int> {
    if (!cmd->parsed()) return std::nullopt;
    return RunCutoverCommand(ctx);
  };
}

}  // namespace ferry::cli
