// ferry verify: runs move/verify and renders its report as text or JSON.
#include "cli/verify_command.h"

#include <fmt/format.h>

#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/log.h"
#include "move/verify.h"
#include "observe/event.h"

namespace ferry::cli {
namespace {

nlohmann::json KeyJson(const std::vector<std::string>& columns, const KeyTuple& key) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < columns.size() && i < key.size(); ++i) j[columns[i]] = key[i];
  return j;
}

nlohmann::json ValueJson(const Value& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

nlohmann::json FirstPassJson(const FirstPassInfo& f) {
  return {{"split", f.split}, {"grouping", f.grouping}, {"queries", f.queries}};
}

std::string ValueText(const Value& v) { return v ? fmt::format("{:?}", *v) : "NULL"; }

std::string KeyText(const std::vector<std::string>& columns, const KeyTuple& key) {
  std::string out;
  for (size_t i = 0; i < columns.size() && i < key.size(); ++i) {
    if (i) out += ", ";
    out += columns[i] + "=" + key[i];
  }
  return out;
}

std::string Bytes(int64_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  if (n < 1024 * 1024) return fmt::format("{:.1f} KB", static_cast<double>(n) / 1024);
  if (n < 1024LL * 1024 * 1024) return fmt::format("{:.1f} MB", static_cast<double>(n) / 1048576);
  return fmt::format("{:.2f} GB", static_cast<double>(n) / 1073741824);
}

nlohmann::json ReportJson(const VerifyReport& r, const VerifyArgs& args) {
  nlohmann::json tables = nlohmann::json::array();
  for (const auto& t : r.tables) {
    nlohmann::json diffs = nlohmann::json::array();
    for (const auto& d : t.differences) {
      nlohmann::json j = {{"kind", std::string(RowDifferenceKindName(d.kind))},
                          {"key", KeyJson(t.key_columns, d.key)}};
      if (d.kind == RowDifference::Kind::kChanged) {
        nlohmann::json cols = nlohmann::json::array();
        for (const auto& c : d.columns) {
          cols.push_back({{"column", c.column}, {"source", ValueJson(c.source)},
                          {"target", ValueJson(c.target)}});
        }
        j["columns"] = cols;
      }
      diffs.push_back(std::move(j));
    }
    tables.push_back({{"table", t.table},
                      {"identical", t.identical()},
                      {"key_columns", t.key_columns},
                      {"source_rows", t.source_rows},
                      {"target_rows", t.target_rows},
                      {"missing", t.missing},
                      {"extra", t.extra},
                      {"changed", t.changed},
                      {"ranges_hashed", t.ranges_hashed},
                      {"ranges_compared_by_row", t.ranges_compared_by_row},
                      {"rows_fetched", t.rows_fetched},
                      {"first_pass", {{"source", FirstPassJson(t.source_first_pass)},
                                      {"target", FirstPassJson(t.target_first_pass)}}},
                      {"differences", diffs}});
  }
  nlohmann::json summary = {{"tables", r.tables.size()},
                            {"missing", r.total_missing()},
                            {"extra", r.total_extra()},
                            {"changed", r.total_changed()},
                            {"listed", r.listed},
                            {"truncated", r.truncated},
                            {"max_report", args.max_report},
                            {"hash_in_db", r.hash_in_db},
                            {"bytes_transferred", r.bytes_transferred},
                            {"source_table_bytes", r.source_table_bytes},
                            {"seconds", r.seconds}};
  if (r.source_table_bytes > 0) {
    summary["transfer_ratio"] =
        static_cast<double>(r.bytes_transferred) / static_cast<double>(r.source_table_bytes);
  }
  return {{"ok", true}, {"identical", r.identical()}, {"tables", tables}, {"summary", summary}};
}

std::string ReportText(const VerifyReport& r, const VerifyArgs& args) {
  std::string out;
  int64_t rows = 0;
  size_t differing = 0;
  for (const auto& t : r.tables) {
    rows += t.source_rows;
    if (t.identical()) {
      out += fmt::format("{}: identical ({} rows)\n", t.table, t.source_rows);
      continue;
    }
    ++differing;
    out += fmt::format(
        "{}: {} missing on target, {} extra on target, {} changed ({} source rows, {} target rows)\n",
        t.table, t.missing, t.extra, t.changed, t.source_rows, t.target_rows);
    for (const auto& d : t.differences) {
      out += fmt::format("  {:<8} {}", RowDifferenceKindName(d.kind), KeyText(t.key_columns, d.key));
      for (size_t i = 0; i < d.columns.size(); ++i) {
        const auto& c = d.columns[i];
        out += fmt::format("{}{}: {} -> {}", i == 0 ? "  " : "; ", c.column, ValueText(c.source),
                           ValueText(c.target));
      }
      out += '\n';
    }
  }
  std::string transfer = fmt::format("{} over the links", Bytes(r.bytes_transferred));
  if (r.source_table_bytes > 0) {
    transfer += fmt::format(" ({:.2f}% of the source tables' {})",
                            100.0 * static_cast<double>(r.bytes_transferred) /
                                static_cast<double>(r.source_table_bytes),
                            Bytes(r.source_table_bytes));
  }
  if (r.identical()) {
    out += fmt::format("verify: identical: {} table{}, {} rows; {}; {:.2f} s\n", r.tables.size(),
                       r.tables.size() == 1 ? "" : "s", rows, transfer, r.seconds);
  } else {
    out += fmt::format("verify: DIFFERENT: {} missing, {} extra, {} changed in {} of {} table{}; "
                       "listed {}{}; {}; {:.2f} s\n",
                       r.total_missing(), r.total_extra(), r.total_changed(), differing,
                       r.tables.size(), r.tables.size() == 1 ? "" : "s", r.listed,
                       r.truncated ? fmt::format(" (more not listed: --max-report {})", args.max_report)
                                   : "",
                       transfer, r.seconds);
  }
  return out;
}

}  // namespace

int RunVerify(const Context& ctx, const VerifyArgs& args) {
  VerifyOptions options;
  options.from_url = args.from.empty() ? ctx.config.Get("database") : args.from;
  options.to_url = args.to;
  options.tables = args.tables;
  options.all = args.all;
  options.where = args.where;
  options.job_id = args.job;
  options.max_report = static_cast<size_t>(std::max(0, args.max_report));
  options.workers = std::max(1, args.workers);
  options.hash_in_db = args.hash_in_db;
  options.leaf_rows = std::max(1, args.leaf_rows);
  options.sample_percent = args.sample_percent;
  if (options.to_url.empty()) {
    return ReportError(Status(StatusCode::kInvalidArgument,
                              "ferry verify needs --to URL (the database to check)")
                           .With("hint", "ferry verify --from postgres://db1/app --to "
                                         "sqlite:copy.db --table users"),
                       ctx.json);
  }
  if (args.all && !args.tables.empty()) {
    return ReportError(Status(StatusCode::kInvalidArgument, "use either --table or --all, not both"),
                       ctx.json);
  }
  const bool show = !ctx.quiet && !ctx.json && isatty(STDERR_FILENO) == 1;
  options.progress = [show](const std::string& line) {
    if (show) {
      std::fprintf(stderr, "ferry: %s\n", line.c_str());
    } else {
      FERRY_LOG_INFO("verify: {}", line);  // -v
    }
  };
  auto report = Verify(options);
  if (!report.ok()) return ReportError(report.status(), ctx.json);
  for (const TableVerifyResult& t : report->tables) {
    Event e = VerifyTableEventOf(
        {t.table, t.source_rows, t.target_rows, t.missing, t.extra, t.changed});
    e.database = DatabaseLabel(options.to_url);
    ctx.bus->Publish(e);
  }
  if (ctx.json) {
    PrintJson(ReportJson(*report, args));
  } else {
    std::string text = ReportText(*report, args);
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  return report->identical() ? kExitOk : kExitDifferences;
}

}  // namespace ferry::cli
