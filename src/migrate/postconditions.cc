#include "migrate/postconditions.h"

#include <fmt/format.h>

#include <algorithm>

#include "migrate/sql_split.h"

namespace ferry {
namespace {

constexpr size_t kRowsShown = 5;

bool IsTrue(const Value& v) { return v && (*v == "t" || *v == "true" || *v == "1"); }

// "col | col\nval | val" for the first rows.
std::string RenderRows(const QueryResult& r) {
  std::string out;
  std::string header;
  for (const Column& c : r.columns) header += (header.empty() ? "" : " | ") + c.name;
  out += "    " + header + "\n";
  for (size_t i = 0; i < std::min(r.rows.size(), kRowsShown); ++i) {
    std::string line;
    for (size_t j = 0; j < r.rows[i].size(); ++j) {
      line += (j == 0 ? "" : " | ") + (r.rows[i][j] ? Excerpt(*r.rows[i][j], 60) : "NULL");
    }
    out += "    " + line + "\n";
  }
  if (r.rows.size() > kRowsShown) {
    out += fmt::format("    ... {} more row(s)\n", r.rows.size() - kRowsShown);
  }
  return out;
}

}  // namespace

Status CheckPostconditions(Connection& conn, const Script& verify) {
  auto split = SplitScript(conn.traits().grammar(), verify.sql, verify.first_line);
  if (!split.ok()) return std::move(split).TakeStatus().Prefix(verify.path);
  std::vector<Statement> statements = std::move(split).value();
  const size_t total = statements.size();
  for (size_t i = 0; i < total; ++i) {
    const Statement& stmt = statements[i];
    auto result = conn.Query(stmt.text);
    if (!result.ok()) {
      Status s = std::move(result).TakeStatus();
      return Status(s.code(), fmt::format("{}:{}: verify query {} of {} could not run: {}",
                                          verify.path, stmt.line, i + 1, total, s.message()))
          .With("file", verify.path)
          .With("line", std::to_string(stmt.line))
          .With("sqlstate", s.Get("sqlstate"))
          .With("statement", Excerpt(stmt.text));
    }
    const QueryResult& r = *result;
    if (r.rows.empty()) continue;
    if (r.rows.size() == 1 && r.rows[0].size() == 1 && IsTrue(r.rows[0][0])) continue;
    std::string why = r.rows.size() == 1 && r.rows[0].size() == 1
                          ? "returned false (it must return no rows, or a single true)"
                          : fmt::format("returned {} row(s) (it must return none, or a single "
                                        "true)",
                                        r.rows.size());
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{}:{}: verify query {} of {} failed: {}\n  query: {}\n  first "
                              "rows:\n{}  fix the data or the migration, then run 'ferry up' "
                              "again",
                              verify.path, stmt.line, i + 1, total, why, Excerpt(stmt.text),
                              RenderRows(r)))
        .With("file", verify.path)
        .With("line", std::to_string(stmt.line))
        .With("statement", Excerpt(stmt.text))
        .With("verify", "failed");
  }
  return Status();
}

}  // namespace ferry
