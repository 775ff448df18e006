// Renderings of a LintReport: text for people, JSON for scripts, SARIF 2.1.0
// for code-scanning tools (GitHub code scanning, GitLab, IDEs).
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "core/printable.h"
#include "migrate/lint.h"

namespace ferry {
namespace {

using nlohmann::json;

std::string Indent(const std::string& text, std::string_view pad) {
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '\n') out += pad;
  }
  return out;
}

std::string Plural(int n, std::string_view word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace

std::string LintReportText(const LintReport& report) {
  std::string out;
  for (const LintFinding& f : report.findings) {
    out += fmt::format("{}:{}:{}: {} [{}] {}\n", Printable(f.file), f.line, f.column,
                       LintSeverityName(f.severity), f.rule, f.message);
    if (!f.lock.empty()) out += fmt::format("  lock:    {}\n", f.lock);
    if (!f.blocks.empty()) out += fmt::format("  blocks:  {}\n", f.blocks);
    if (!f.safe_sql.empty()) out += fmt::format("  instead: {}\n", Indent(f.safe_sql, "           "));
  }
  if (!report.findings.empty()) out += "\n";
  out += fmt::format("{}, {}: {}, {}, {}", Plural(report.files, "file"),
                     Plural(report.statements, "statement"),
                     Plural(report.Count(LintSeverity::kError), "error"),
                     Plural(report.Count(LintSeverity::kWarning), "warning"),
                     Plural(report.Count(LintSeverity::kNote), "note"));
  if (report.sizes_known) out += " (severity graded by live table sizes)";
  out += "\n";
  return out;
}

std::string LintReportJson(const LintReport& report) {
  json findings = json::array();
  for (const LintFinding& f : report.findings) {
    findings.push_back({{"file", f.file},
                        {"line", f.line},
                        {"column", f.column},
                        {"rule", f.rule},
                        {"severity", std::string(LintSeverityName(f.severity))},
                        {"message", f.message},
                        {"lock", f.lock},
                        {"blocks", f.blocks},
                        {"safe_sql", f.safe_sql},
                        {"table", f.table},
                        {"table_rows", f.table_rows >= 0 ? json(f.table_rows) : json(nullptr)}});
  }
  json j = {{"ok", !report.has_errors()},
            {"summary",
             {{"files", report.files},
              {"statements", report.statements},
              {"errors", report.Count(LintSeverity::kError)},
              {"warnings", report.Count(LintSeverity::kWarning)},
              {"notes", report.Count(LintSeverity::kNote)}}},
            {"server_version_num",
             report.server_version_num > 0 ? json(report.server_version_num) : json(nullptr)},
            {"table_sizes_known", report.sizes_known},
            {"findings", findings}};
  return Dump(j);
}

std::string LintReportSarif(const LintReport& report) {
  json rules = json::array();
  std::map<std::string, size_t> index;
  for (const LintRuleInfo& r : LintRules()) {
    index[std::string(r.id)] = rules.size();
    rules.push_back({{"id", std::string(r.id)},
                     {"name", std::string(r.id)},
                     {"shortDescription", {{"text", std::string(r.summary)}}},
                     {"defaultConfiguration",
                      {{"level", std::string(LintSeverityName(r.severity))}}}});
  }
  json results = json::array();
  for (const LintFinding& f : report.findings) {
    std::string text = f.message;
    if (!f.lock.empty()) text += "\nLock: " + f.lock;
    if (!f.blocks.empty()) text += "\nBlocks: " + f.blocks;
    if (!f.safe_sql.empty()) text += "\nInstead:\n" + f.safe_sql;
    json properties = json::object();
    if (!f.lock.empty()) properties["lock"] = f.lock;
    if (!f.blocks.empty()) properties["blocks"] = f.blocks;
    if (!f.safe_sql.empty()) properties["safe_sql"] = f.safe_sql;
    if (f.table_rows >= 0) properties["table_rows"] = f.table_rows;
    json result = {{"ruleId", f.rule},
                   {"level", std::string(LintSeverityName(f.severity))},
                   {"message", {{"text", text}}},
                   {"locations",
                    json::array({{{"physicalLocation",
                                   {{"artifactLocation", {{"uri", f.file}}},
                                    {"region",
                                     {{"startLine", std::max(f.line, 1)},
                                      {"startColumn", std::max(f.column, 1)}}}}}}})},
                   {"properties", properties}};
    if (auto it = index.find(f.rule); it != index.end()) result["ruleIndex"] = it->second;
    results.push_back(std::move(result));
  }
  json sarif = {
      {"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
      {"version", "2.1.0"},
      {"runs", json::array({{{"tool",
                              {{"driver",
                                {{"name", "ferry lint"},
                                 {"version", FERRY_VERSION},
                                 {"rules", rules}}}}},
                             {"results", results}}})}};
  return Dump(sarif);
}

}  // namespace ferry
