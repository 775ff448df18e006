// Fragment checks: libpg_query for PostgreSQL, a small lexer for SQLite.
// See sql_fragment.h for the contracts.
#include "move/sql_fragment.h"

#include <fmt/format.h>
#include <pg_query.h>

#include "drivers/connection.h"

namespace ferry {

using json = nlohmann::json;

Result<json> ParseSqlFragment(const std::string& sql, std::string_view what,
                              std::string_view fragment) {
  PgQueryParseResult parsed = pg_query_parse(sql.c_str());
  json tree;
  Status error;
  if (parsed.error != nullptr) {
    error = Status(StatusCode::kInvalidArgument,
                   fmt::format("{} does not parse: {}", what, parsed.error->message))
                .With("fragment", Excerpt(fragment))
                .With("hint", "write it as you would inside an UPDATE statement; quote "
                              "identifiers with \"...\" and strings with '...'");
  } else {
    tree = json::parse(parsed.parse_tree, nullptr, false);
  }
  pg_query_free_parse_result(parsed);
  if (!error.ok()) return error;
  const json* stmts = tree.is_object() && tree.contains("stmts") ? &tree["stmts"] : nullptr;
  if (stmts == nullptr || !stmts->is_array() || stmts->size() != 1) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} must be one expression, not several statements", what))
        .With("fragment", Excerpt(fragment));
  }
  return (*stmts)[0]["stmt"];
}

Status CheckPgCondition(std::string_view flag, const std::string& cond) {
  if (cond.empty()) return Status();
  // The line break keeps a trailing "-- comment" from swallowing nothing
  // but itself, as in the statements ferry builds.
  auto stmt = ParseSqlFragment("SELECT 1 WHERE " + cond + "\n", flag, cond);
  if (!stmt.ok()) return std::move(stmt).TakeStatus();
  const json& select = (*stmt).contains("SelectStmt") ? (*stmt)["SelectStmt"] : json();
  for (const char* clause : {"groupClause", "havingClause", "sortClause", "limitCount",
                             "limitOffset", "lockingClause", "windowClause"}) {
    if (select.is_object() && select.contains(clause)) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("{} must be a boolean condition only (no ORDER BY, LIMIT, ...)",
                                flag))
          .With("fragment", Excerpt(cond));
    }
  }
  return Status();
}

namespace {

Status Unbalanced(std::string_view flag, const std::string& cond, std::string_view why) {
  return Status(StatusCode::kInvalidArgument,
                fmt::format("{} is not one condition: {}; it must stand alone as one "
                            "expression (ferry puts it in parentheses after the chunk's bounds)",
                            flag, why))
      .With("fragment", Excerpt(cond));
}

// The first key of `node` (recursively) that names a statement or clause a
// read-only query must not hold, or "".
std::string FindWriting(const json& node) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (key == "InsertStmt" || key == "UpdateStmt" || key == "DeleteStmt" ||
          key == "MergeStmt" || key == "intoClause" || key == "lockingClause") {
        return key;
      }
      std::string inner = FindWriting(value);
      if (!inner.empty()) return inner;
    }
  } else if (node.is_array()) {
    for (const json& v : node) {
      std::string inner = FindWriting(v);
      if (!inner.empty()) return inner;
    }
  }
  return "";
}

}  // namespace

Status CheckSqliteCondition(std::string_view flag, const std::string& cond) {
  if (cond.empty()) return Status();
  int depth = 0;
  for (size_t i = 0; i < cond.size(); ++i) {
    const char c = cond[i];
    if (c == '\'' || c == '"' || c == '`' || c == '[') {
      const char close = c == '[' ? ']' : c;
      size_t j = i + 1;
      for (; j < cond.size(); ++j) {
        if (cond[j] != close) continue;
        // A doubled quote is an escaped quote inside the string.
        if (close != ']' && j + 1 < cond.size() && cond[j + 1] == close) {
          ++j;
          continue;
        }
        break;
      }
      if (j >= cond.size()) return Unbalanced(flag, cond, "a quote is not closed");
      i = j;
    } else if (c == '-' && i + 1 < cond.size() && cond[i + 1] == '-') {
      while (i < cond.size() && cond[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < cond.size() && cond[i + 1] == '*') {
      size_t end = cond.find("*/", i + 2);
      if (end == std::string::npos) return Unbalanced(flag, cond, "a /* comment is not closed");
      i = end + 1;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth < 0) return Unbalanced(flag, cond, "a ')' closes a parenthesis it did not open");
    } else if (c == ';') {
      return Unbalanced(flag, cond, "';' ends a statement");
    }
  }
  if (depth != 0) return Unbalanced(flag, cond, "a '(' is not closed");
  return Status();
}

Status CheckReadOnlyQuery(std::string_view flag, const std::string& query) {
  if (query.empty()) return Status();
  FERRY_ASSIGN_OR_RETURN(json stmt, ParseSqlFragment(query, flag, query));
  if (!stmt.contains("SelectStmt")) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} must be one SELECT query that returns the offending rows (no "
                              "rows means the check passed)",
                              flag))
        .With("fragment", Excerpt(query));
  }
  const std::string writing = FindWriting(stmt);
  if (!writing.empty()) {
    std::string what = writing == "intoClause"      ? "SELECT INTO creates a table"
                       : writing == "lockingClause" ? "FOR UPDATE/SHARE locks rows"
                                                    : "it holds a data-modifying statement (" +
                                                          writing.substr(0, writing.size() - 4) +
                                                          " in a WITH)";
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} must be a read-only SELECT: {}; nothing was changed", flag, what))
        .With("fragment", Excerpt(query));
  }
  return Status();
}

}  // namespace ferry
