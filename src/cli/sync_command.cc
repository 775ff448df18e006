// ferry sync: flags -> one library call (move/sync/sync.h) -> text or --json.
#include "cli/sync_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <optional>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/command_table.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/config.h"
#include "core/url.h"
#include "move/sync/sync.h"
#include "observe/event.h"

namespace ferry::cli {
namespace {

struct SyncArgs {
  std::string from, to, job = "sync", status, drop, stop_after;
  std::vector<std::string> tables;
  bool all = false, create_tables = false, resume = false, until_lag_zero = false;
  int workers = 2;
};
SyncArgs g_args;
std::atomic<bool> g_sync_cancel{false};

// First SIGINT/SIGTERM: stop at the next message boundary. A second: now.
void OnSyncSignal(int sig) {
  if (g_sync_cancel.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

void Print(const std::string& text, FILE* to = stdout) { std::fwrite(text.data(), 1, text.size(), to); }

int PrintStatus(const Context& ctx, const SyncArgs& a) {
  auto st = ReadSyncStatus(a.from, a.to, a.status);
  if (!st.ok()) return ReportError(st.status(), ctx.json);
  const SyncStatus& s = *st;
  if (ctx.json) {
    PrintJson({{"ok", true},
               {"job", s.job},
               {"phase", s.phase},
               {"slot", s.slot},
               {"slot_exists", s.slot_exists},
               {"slot_active", s.slot_active},
               {"publication", s.publication},
               {"source", s.source},
               {"tables", s.tables},
               {"applied_lsn", s.applied_lsn},
               {"last_commit_at", s.last_commit_at},
               {"updated_at", s.updated_at},
               {"lag_bytes", s.lag_bytes},
               {"lag_seconds", s.lag_seconds},
               {"rows_applied", s.rows_applied},
               {"transactions", s.transactions},
               {"apply_rate", s.apply_rate},
               {"error", s.error},
               {"warnings", s.warnings},
               {"cutover", s.cutover.empty() ? nlohmann::json(nullptr)
                                             : nlohmann::json::parse(s.cutover, nullptr, false)}});
    return kExitOk;
  }
  std::string out = fmt::format(
      "sync job {}: {}{}\n  slot {} ({}), publication {}\n  source {}\n  tables {}\n"
      "  applied {} (source commit {}), {} transactions, {} rows\n"
      "  lag {} bytes, {:.1f}s; apply rate {:.0f} rows/s\n",
      s.job, s.phase, s.slot_active ? " (running)" : "", s.slot,
      s.slot_exists ? (s.slot_active ? "active" : "inactive") : "missing", s.publication,
      s.source, fmt::join(s.tables, ", "), s.applied_lsn,
      s.last_commit_at.empty() ? "-" : s.last_commit_at, s.transactions, s.rows_applied,
      s.lag_bytes, s.lag_seconds, s.apply_rate);
  if (!s.error.empty()) out += "  stopped on: " + s.error + "\n";
  if (!s.cutover.empty()) out += "  cut over: " + s.cutover + "\n";
  for (const auto& w : s.warnings) out += "  warning: " + w + "\n";
  Print(out);
  return kExitOk;
}

int Drop(const Context& ctx, const SyncArgs& a) {
  auto r = DropSync(a.from, a.to, a.drop);
  if (!r.ok()) return ReportError(r.status(), ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", true},
               {"job", a.drop},
               {"slot_dropped", r->slot_dropped},
               {"publication_dropped", r->publication_dropped},
               {"job_dropped", r->job_dropped}});
  } else {
    Print(fmt::format("sync job {}: slot {}, publication {}, job rows {}\n", a.drop,
                      r->slot_dropped ? "dropped" : "not found",
                      r->publication_dropped ? "dropped" : "not found",
                      r->job_dropped ? "dropped" : "not found"));
  }
  return kExitOk;
}

}  // namespace

CLI::App* AddSyncCommand(CLI::App& app) {
  SyncArgs& a = g_args;
  CLI::App* c = app.add_subcommand(
      "sync", "follow a PostgreSQL database with logical replication: copy, then stream changes");
  c->add_option("--from", a.from, "source URL (default: --database)");
  c->add_option("--to", a.to, "target URL (PostgreSQL)");
  c->add_option("--tables", a.tables, "tables to sync: a,b or schema.t")->delimiter(',');
  c->add_flag("--all", a.all, "every user table of the source");
  c->add_option("--job", a.job, "job name; the slot and publication are ferry_sync_<job> (default sync)");
  c->add_flag("--create-tables", a.create_tables, "create missing target tables like ferry copy");
  c->add_flag("--resume", a.resume, "require an existing job of this name and continue it");
  c->add_flag("--until-lag-zero", a.until_lag_zero,
              "stop once every change committed before the stream started is applied");
  c->add_option("--stop-after", a.stop_after, "stop after streaming this long (30s, 10m)");
  c->add_option("--workers", a.workers, "connections of the initial copy (default 2)");
  c->add_option("--status", a.status, "show the job's phase, lag and apply rate")->option_text("JOB");
  c->add_option("--drop", a.drop, "remove the job's slot, publication and control rows")
      ->option_text("JOB");
  c->footer(
      "Examples:\n"
      "  ferry sync --from postgres://app@old/app --to postgres://app@new/app --tables users,orders\n"
      "  ferry sync --from $SRC --to $DST --all --create-tables --job move1\n"
      "  ferry sync --from $SRC --to $DST --job move1 --until-lag-zero   # catch up and stop\n"
      "  ferry sync --status move1 --to $DST --json\n"
      "  ferry sync --drop move1 --from $SRC --to $DST\n"
      "A new job creates publication and slot ferry_sync_<job> on the source, copies the\n"
      "tables from the slot's snapshot, then applies every committed change in commit\n"
      "order. The applied position is stored on the target with the changes: after a\n"
      "crash or Ctrl-C, the same command resumes with nothing lost or applied twice.\n"
      "A DDL change on the source stops it (exit 9): change the target alike, run again.\n"
      "Guide: docs/sync.md.");
  return c;
}

int RunSyncCommand(const Context& ctx) {
  SyncArgs a = g_args;
  if (a.to.empty()) {
    return ReportError(Status(StatusCode::kInvalidArgument,
                              "ferry sync needs --to URL: the target PostgreSQL database"),
                       ctx.json);
  }
  if (!a.status.empty()) return PrintStatus(ctx, a);
  if (!a.drop.empty()) return Drop(ctx, a);
  // --status and --drop fall back to the source stored in the job.
  if (a.from.empty()) a.from = ctx.config.Get("database");
  SyncOptions o;
  o.from_url = a.from;
  o.to_url = a.to;
  o.tables = a.tables;
  o.all = a.all;
  o.job = a.job;
  o.create_tables = a.create_tables;
  o.resume = a.resume;
  o.until_lag_zero = a.until_lag_zero;
  o.copy_workers = a.workers;
  if (!a.stop_after.empty()) {
    auto ms = ParseDurationMs(a.stop_after);
    if (!ms.ok() || *ms < 1) {
      return ReportError(Status(StatusCode::kInvalidArgument,
                                fmt::format("--stop-after {:?}: write a duration such as 30s or "
                                            "10m",
                                            a.stop_after)),
                         ctx.json);
    }
    o.stop_after = std::chrono::milliseconds(*ms);
  }
  ScopedSubscription printer(*ctx.bus, [&](const Event& e) {
    if (e.kind != EventKind::kSync || !e.sync) return;
    const SyncProgress& p = *e.sync;
    if (ctx.json) {
      PrintJson({{"event", e.type},
                 {"job", e.job},
                 {"phase", p.phase},
                 {"applied_lsn", p.applied_lsn},
                 {"rows_applied", p.rows_applied},
                 {"transactions", p.transactions},
                 {"lag_bytes", p.lag_bytes},
                 {"lag_seconds", p.lag_seconds},
                 {"rows_per_second", p.rows_per_second}});
    } else if (!ctx.quiet && e.type != "sync_progress") {
      Print(fmt::format("ferry: sync {} {}: applied {} ({} rows, {} transactions), lag {} bytes\n",
                        e.job, e.type.substr(5), p.applied_lsn, p.rows_applied, p.transactions,
                        p.lag_bytes),
            stderr);
    }
  });
  g_sync_cancel = false;
  o.cancel = &g_sync_cancel;
  auto previous_int = std::signal(SIGINT, OnSyncSignal);
  auto previous_term = std::signal(SIGTERM, OnSyncSignal);
  auto summary = RunSync(o, ctx.bus);
  std::signal(SIGINT, previous_int);
  std::signal(SIGTERM, previous_term);
  if (!summary.ok()) return ReportError(summary.status(), ctx.json);
  const SyncSummary& s = *summary;
  if (ctx.json) {
    PrintJson({{"event", "summary"},
               {"ok", true},
               {"job", s.job},
               {"slot", s.slot},
               {"resumed", s.resumed},
               {"rows_copied", s.rows_copied},
               {"rows_applied", s.rows_applied},
               {"transactions", s.transactions},
               {"skipped_transactions", s.skipped_transactions},
               {"applied_lsn", s.applied_lsn},
               {"seconds", s.seconds},
               {"stop_reason", s.stop_reason}});
  } else if (!ctx.quiet) {
    Print(fmt::format("sync job {}{}: {} rows copied, {} rows applied in {} transactions, at {}; "
                      "stopped: {} ({:.1f}s)\n",
                      s.job, s.resumed ? " (resumed)" : "", s.rows_copied, s.rows_applied,
                      s.transactions, s.applied_lsn, s.stop_reason, s.seconds));
  }
  return kExitOk;
}

Runner AddSyncFamily(CLI::App& app, const Want& want) {
  if (!want("sync")) return nullptr;
  CLI::App* cmd = AddSyncCommand(app);
  return [cmd](const Context& ctx) -> std::optional<int> {
    if (!cmd->parsed()) return std::nullopt;
    return RunSyncCommand(ctx);
  };
}

}  // namespace ferry::cli
