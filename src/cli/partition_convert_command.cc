// ferry partition create / abort: flags, one library call, text or --json.
#include "cli/partition_convert_command.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/config.h"
#include "observe/event.h"
#include "ops/partition/partition_convert.h"

namespace ferry::cli {
namespace {

using nlohmann::json;
using partition::ConvertReport;

void Out(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }

Result<partition::ConvertOptions> OptionsFrom(const Context& ctx, const PartitionConvertArgs& a) {
  partition::ConvertOptions o;
  o.url = ctx.config.Get("database");
  o.history_table = ctx.config.Get("history_table");
  o.config_file = ctx.config.file_path();
  o.table = a.table;
  o.dry_run = a.dry_run;
  o.drop_old = a.drop_old;
  o.batch_rows = a.batch_rows;
  o.bus = ctx.bus;
  if (!a.now.empty()) {
    FERRY_ASSIGN_OR_RETURN(o.now, partition::ParseNow(a.now));
  }
  std::string timeout = a.lock_timeout.empty() ? ctx.config.Get("lock_timeout") : a.lock_timeout;
  FERRY_ASSIGN_OR_RETURN(int64_t lock_timeout, ParseDurationMs(timeout));
  FERRY_ASSIGN_OR_RETURN(int64_t delay, ParseDurationMs(ctx.config.Get("lock_retry_delay")));
  FERRY_ASSIGN_OR_RETURN(int64_t wait, ParseDurationMs(ctx.config.Get("lock_wait")));
  o.lock_timeout = std::chrono::milliseconds(lock_timeout);
  o.retry_delay = std::chrono::milliseconds(delay);
  o.lock_wait = std::chrono::milliseconds(wait);
  const std::string& retries = ctx.config.Get("lock_retries");
  try {
    o.lock_retries = std::stoi(retries);
  } catch (const std::exception&) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("lock_retries '{}' is not a number", retries));
  }
  return o;
}

json ReportJson(const ConvertReport& r) {
  return {{"ok", true},
          {"table", r.table},
          {"column", r.column},
          {"dry_run", r.dry_run},
          {"already_partitioned", r.already_partitioned},
          {"resumed", r.resumed},
          {"phase", partition::ConvertPhaseName(r.phase)},
          {"shadow", r.shadow},
          {"old_table", r.old_table.empty() ? json(nullptr) : json(r.old_table)},
          {"partitions", r.partitions},
          {"rows_copied", r.rows_copied},
          {"rows_verified", r.rows_verified},
          {"swap_attempts", r.swap_attempts},
          {"sql", r.sql}};
}

std::string ReportText(const ConvertReport& r) {
  if (r.dry_run) {
    std::string out;
    for (const std::string& s : r.sql) out += s.starts_with("--") ? s + "\n" : s + ";\n";
    return out + "-- dry run: nothing was changed\n";
  }
  if (r.already_partitioned && r.phase == partition::ConvertPhase::kNone) {
    return fmt::format("{} is already partitioned: nothing to do ('ferry partition maintain' "
                       "keeps its partitions)\n",
                       r.table);
  }
  std::string out = r.already_partitioned
                        ? fmt::format("{} was converted already: nothing to do\n", r.table)
                        : fmt::format("{} is partitioned by RANGE ({}): {} row(s) copied, {} "
                                      "verified, swapped in {} attempt(s){}\n",
                                      r.table, r.column, r.rows_copied, r.rows_verified,
                                      r.swap_attempts, r.resumed ? " (resumed)" : "");
  if (!r.old_table.empty()) {
    out += fmt::format("the original is kept as {}; when satisfied: DROP TABLE {};\n", r.old_table,
                       r.old_table);
  }
  return out;
}

int RunCreate(const Context& ctx, const PartitionConvertArgs& args) {
  auto options = OptionsFrom(ctx, args);
  if (!options.ok()) return ReportError(options.status(), ctx.json);
  ScopedSubscription printer(*ctx.bus, [&ctx](const Event& e) {
    if (e.operation != "partition_convert" || ctx.quiet) return;
    if (ctx.json) {
      PrintJson({{"event", e.type}, {"table", e.job}, {"rows", e.rows}, {"message", e.message}});
    } else if (e.type != "convert_batch") {
      std::fprintf(stderr, "%s\n", e.message.c_str());
    }
  });
  auto report = partition::ConvertToPartitioned(*options);
  if (!report.ok()) return ReportError(report.status(), ctx.json);
  if (ctx.json) {
    PrintJson(ReportJson(*report));
  } else {
    Out(ReportText(*report));
  }
  return kExitOk;
}

int RunAbort(const Context& ctx, const PartitionConvertArgs& args) {
  auto options = OptionsFrom(ctx, args);
  if (!options.ok()) return ReportError(options.status(), ctx.json);
  auto report = partition::AbortConversion(*options);
  if (!report.ok()) return ReportError(report.status(), ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", true},
               {"table", report->table},
               {"phase_found", partition::ConvertPhaseName(report->phase_found)},
               {"dropped_shadow", report->dropped_shadow}});
  } else {
    Out(fmt::format("conversion of {} aborted at phase {}: trigger and shadow dropped, the "
                    "table is untouched\n",
                    report->table, partition::ConvertPhaseName(report->phase_found)));
  }
  return kExitOk;
}

}  // namespace

PartitionConvertApps AddPartitionConvertCommands(CLI::App* partition, PartitionConvertArgs* a) {
  PartitionConvertApps apps;
  apps.create = partition->add_subcommand(
      "create", "convert an existing table to its declared RANGE partitioning, online");
  apps.create->add_option("table", a->table, "the table, declared in [[partitions]]")->required();
  apps.create->add_flag("--dry-run", a->dry_run, "print the SQL plan; change nothing");
  apps.create->add_flag("--drop-old", a->drop_old, "drop <table>_ferry_old after the swap");
  apps.create->add_option("--batch-rows", a->batch_rows, "rows per copy batch (default 5000)");
  apps.create->add_option("--lock-timeout", a->lock_timeout,
                          "longest wait for any lock on the table (default: lock_timeout)");
  apps.create->add_option("--now", a->now, "premake as if it were this date (UTC)")
      ->option_text("DATE");
  apps.create->footer(
      "Examples:\n"
      "  ferry partition create public.events --dry-run\n"
      "  ferry partition create public.events --batch-rows 10000 --lock-timeout 2s\n"
      "  ferry partition create public.events --json --drop-old\n"
      "Shadow table, triggers, batched copy, verify, swap by rename under lock_timeout\n"
      "with retries. Killed? Run it again: it resumes. Undo before the swap with\n"
      "'ferry partition abort TABLE'. Guide: docs/partitions.md.");
  apps.abort = partition->add_subcommand(
      "abort", "undo an unfinished conversion: drop its trigger and shadow table");
  apps.abort->add_option("table", a->table, "the table being converted")->required();
  apps.abort->add_option("--lock-timeout", a->lock_timeout,
                         "longest wait for the lock on the table (default: lock_timeout)");
  apps.abort->footer(
      "Examples:\n"
      "  ferry partition abort public.events\n"
      "Before the swap only; the table itself is never touched.");
  return apps;
}

int RunPartitionConvert(const Context& ctx, const PartitionConvertApps& apps,
                        const PartitionConvertArgs& args) {
  if (apps.create != nullptr && apps.create->parsed()) return RunCreate(ctx, args);
  if (apps.abort != nullptr && apps.abort->parsed()) return RunAbort(ctx, args);
  return -1;
}

}  // namespace ferry::cli
