// ferry partition status / maintain: options from ferry.toml and flags, one
// library call, text or --json.
#include "cli/partition_command.h"

#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli/ddl_progress_json.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/config.h"
#include "core/printable.h"
#include "observe/ddl_progress.h"
#include "ops/partition/partition_ops.h"

namespace ferry::cli {
namespace {

using nlohmann::json;
using partition::PartitionAction;
using partition::TableStatus;

void Out(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }

Result<partition::PartitionOptions> OptionsFrom(const Context& ctx, const PartitionArgs& args) {
  partition::PartitionOptions o;
  o.url = ctx.config.Get("database");
  o.history_table = ctx.config.Get("history_table");
  o.config_file = ctx.config.file_path();
  o.table = args.table;
  o.dry_run = args.dry_run;
  o.force = args.force;
  if (!args.now.empty()) {
    FERRY_ASSIGN_OR_RETURN(o.now, partition::ParseNow(args.now));
  }
  FERRY_ASSIGN_OR_RETURN(int64_t lock_timeout, ParseDurationMs(ctx.config.Get("lock_timeout")));
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

json RangeJson(const partition::MissingPartition& m) {
  return {{"partition", m.name}, {"from", m.lower}, {"to", m.upper}};
}

json StatusJson(const TableStatus& s) {
  json parts = json::array();
  for (const partition::PartitionRow& p : s.partitions) {
    parts.push_back({{"partition", p.name},
                     {"from", p.lower},
                     {"to", p.upper},
                     {"estimated_rows", p.estimated_rows},
                     {"bytes", p.bytes},
                     {"past_retention", p.past_retention},
                     {"detach_pending", p.detach_pending}});
  }
  json gaps = json::array(), overlaps = json::array(), missing = json::array();
  for (const auto& g : s.gaps) gaps.push_back(RangeJson(g));
  for (const auto& g : s.overlaps) overlaps.push_back(RangeJson(g));
  for (const auto& g : s.missing) missing.push_back(RangeJson(g));
  return {{"table", s.table},
          {"column", s.column},
          {"column_type", s.column_type},
          {"interval", s.interval},
          {"retention", s.retention},
          {"archive", s.archive},
          {"declared_at", s.origin},
          {"partitions", parts},
          {"default_partition",
           s.default_partition.empty() ? json(nullptr) : json(s.default_partition)},
          {"default_rows", s.default_rows},
          {"default_partition_missing", s.default_wanted_missing},
          {"gaps", gaps},
          {"overlaps", overlaps},
          {"missing", missing},
          {"past_retention", s.past_retention}};
}

std::string StatusText(const TableStatus& s) {
  std::string out =
      fmt::format("{}  RANGE ({} {})  interval {}  retention {}  archive {}  ({})\n", s.table,
                  s.column, s.column_type, s.interval, s.retention, s.archive, s.origin);
  out += fmt::format("  {:<40} {:<26} {:<26} {:>12} {:>12}\n", "PARTITION", "FROM", "TO",
                     "ROWS (EST)", "BYTES");
  for (const partition::PartitionRow& p : s.partitions) {
    out += fmt::format("  {:<40} {:<26} {:<26} {:>12} {:>12}{}{}\n", p.name, p.lower, p.upper,
                       p.estimated_rows < 0 ? std::string("?") : std::to_string(p.estimated_rows),
                       p.bytes, p.past_retention ? "  past retention" : "",
                       p.detach_pending ? "  detach pending" : "");
  }
  if (!s.default_partition.empty()) {
    out += fmt::format("  default {}: {} row(s)\n", s.default_partition, s.default_rows);
  } else if (s.default_wanted_missing) {
    out += "  default partition declared but missing: run 'ferry partition maintain'\n";
  }
  for (const auto& g : s.gaps)
    out += fmt::format("  gap: no partition FROM {} TO {}\n", g.lower, g.upper);
  for (const auto& g : s.overlaps) {
    out += fmt::format("  overlap: {} both cover FROM {} TO {}\n", g.name, g.lower, g.upper);
  }
  for (const auto& m : s.missing) {
    out += fmt::format("  missing: {} FROM {} TO {}\n", m.name, m.lower, m.upper);
  }
  if (s.missing.empty() && s.past_retention.empty() && !s.default_wanted_missing) {
    out += "  as declared: nothing to do\n";
  } else {
    out += "  run 'ferry partition maintain' to bring it to its declaration\n";
  }
  return out;
}

json ActionJson(const PartitionAction& a) {
  return {{"action", partition::ActionName(a.kind)},
          {"table", a.table},
          {"partition", a.partition},
          {"from", a.lower},
          {"to", a.upper},
          {"rows", a.rows},
          {"attempts", a.attempts},
          {"sql", a.sql}};
}

std::string ActionText(const PartitionAction& a) {
  std::string out = fmt::format("{:<14} {}", partition::ActionName(a.kind), a.partition);
  if (!a.lower.empty()) out += fmt::format("  FROM {} TO {}", a.lower, a.upper);
  if (a.rows > 0) out += fmt::format("  ({} row(s))", a.rows);
  return out + "\n";
}

}  // namespace

int RunPartitionStatus(const Context& ctx, const PartitionArgs& args) {
  auto options = OptionsFrom(ctx, args);
  if (!options.ok()) return ReportError(options.status(), ctx.json);
  auto tables = partition::PartitionStatus(*options);
  if (!tables.ok()) return ReportError(tables.status(), ctx.json);
  if (ctx.json) {
    json arr = json::array();
    for (const TableStatus& s : *tables) arr.push_back(StatusJson(s));
    PrintJson({{"ok", true}, {"tables", arr}});
    return kExitOk;
  }
  std::string out;
  for (const TableStatus& s : *tables) out += (out.empty() ? "" : "\n") + StatusText(s);
  Out(out);
  return kExitOk;
}

int RunPartitionMaintain(const Context& ctx, const PartitionArgs& args) {
  auto options = OptionsFrom(ctx, args);
  if (!options.ok()) return ReportError(options.status(), ctx.json);
  if (!ctx.json && !ctx.quiet) {
    options->on_lock_wait = [](const std::string& who) {
      std::fprintf(stderr, "waiting for ferry's migration lock, held by %s\n", who.c_str());
    };
    if (!args.dry_run) {
      options->on_action = [](const PartitionAction& a) { Out(ActionText(a)); };
    }
  }
  // Long statements' progress: a throttled line on stderr, or a JSON line
  // before the result with --json; metrics see the events on the bus.
  options->bus = ctx.bus;
  auto throttle = std::make_shared<DdlProgressThrottle>();
  ScopedSubscription progress_printer(*ctx.bus, [&ctx, throttle](const Event& e) {
    std::optional<DdlProgress> progress = DdlProgressOf(e);
    if (!progress || !e.migration) return;
    if (ctx.json) {
      PrintJson({{"event", e.type},
                 {"partition", e.job},
                 {"script", e.migration->script},
                 {"statement", e.migration->statement},
                 {"message", e.migration->message},
                 {"progress", DdlProgressJson(*progress)}});
    } else if (!ctx.quiet && throttle->Due(*progress, DdlProgressThrottle::Clock::now())) {
      std::fprintf(stderr, "ferry: %s: %s\n", Printable(e.migration->script).c_str(),
                   Printable(e.migration->message).c_str());
    }
  });
  auto report = partition::MaintainPartitions(*options);
  if (!report.ok()) return ReportError(report.status(), ctx.json);
  if (ctx.json) {
    json arr = json::array();
    for (const PartitionAction& a : report->actions) arr.push_back(ActionJson(a));
    PrintJson({{"ok", true}, {"dry_run", report->dry_run}, {"actions", arr}});
    return kExitOk;
  }
  std::string out;
  if (report->dry_run) {
    for (const PartitionAction& a : report->actions) {
      out += "-- " + ActionText(a);
      for (const std::string& s : a.sql) out += s + ";\n";
    }
    out += report->actions.empty() ? "nothing to do: every declared table is as declared\n"
                                   : "-- dry run: nothing was changed\n";
  } else if (report->actions.empty()) {
    out = "nothing to do: every declared table is as declared\n";
  } else if (ctx.quiet) {
    for (const PartitionAction& a : report->actions) out += ActionText(a);
  } else {
    out = fmt::format("{} action(s) done, recorded in the history ('ferry history')\n",
                      report->actions.size());
  }
  Out(out);
  return kExitOk;
}

}  // namespace ferry::cli
