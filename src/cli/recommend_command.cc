// ferry recommend (alias recommendations): runs ops/recommend.h on the
// database and prints the ranked recommendations, text or --json.
#include "cli/recommend_command.h"

#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "cli/output.h"
#include "ops/recommend.h"

namespace ferry::cli {

namespace {

constexpr const char* kPriority[] = {"", "critical", "high", "medium", "low"};

nlohmann::json ReportJson(const RecommendReport& r) {
  nlohmann::json recs = nlohmann::json::array();
  for (const Recommendation& x : r.recommendations) {
    recs.push_back({{"priority", kPriority[x.priority]},
                    {"check", x.check},
                    {"subject", x.subject},
                    {"finding", x.finding},
                    {"action", x.action},
                    {"command", x.command}});
  }
  nlohmann::json matrix = nlohmann::json::array();
  for (const MatrixFigure& f : r.matrix) {
    matrix.push_back({{"name", f.name},
                      {"value", f.value >= 0 ? nlohmann::json(f.value) : nlohmann::json(nullptr)},
                      {"threshold", f.threshold},
                      {"exceeded", f.exceeded}});
  }
  return {
      {"ok", true},
      {"database", r.database},
      {"recommendations", recs},
      {"decision_matrix",
       {{"figures", matrix}, {"move_indicated", r.move_indicated}, {"verdict", r.matrix_verdict}}},
      {"skipped", r.skipped}};
}

}  // namespace

int RunRecommendCommand(const Context& ctx, const RecommendArgs& args) {
  RecommendOptions o;
  o.url = ctx.config.Get("database");
  o.history_table = ctx.config.Get("history_table");
  o.int4_warn_ratio = args.int4_warn_ratio;
  o.matrix_database_bytes = args.matrix_database_gib << 30;
  o.matrix_commits_per_second = args.matrix_commits_per_second;
  o.matrix_mean_statement_ms = args.matrix_mean_statement_ms;
  auto report = Recommend(o);
  if (!report.ok()) return ReportError(report.status(), ctx.json);
  const RecommendReport& r = *report;
  if (ctx.json) {
    PrintJson(ReportJson(r));
    return kExitOk;
  }
  std::string out = fmt::format("{}: {} recommendation(s)\n", r.database, r.recommendations.size());
  int n = 0;
  for (const Recommendation& x : r.recommendations) {
    out += fmt::format("\n{}. [{}] {} {}\n   {}\n   do: {}\n   {}\n", ++n, kPriority[x.priority],
                       x.check, x.subject, x.finding, x.action, x.command);
  }
  out += "\ndecision matrix (seed 000):\n";
  for (const MatrixFigure& f : r.matrix) {
    out += fmt::format("  {:<22} {:>16} threshold {:>14}{}\n", f.name,
                       f.value >= 0 ? fmt::format("{:.1f}", f.value) : std::string("unknown"),
                       fmt::format("{:.0f}", f.threshold), f.exceeded ? "  EXCEEDED" : "");
  }
  out += "  " + r.matrix_verdict + "\n";
  for (const std::string& s : r.skipped) out += "skipped " + s + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

}  // namespace ferry::cli
