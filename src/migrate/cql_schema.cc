#include "migrate/cql_schema.h"

#include <fmt/format.h>

#include <set>

#include "drivers/cql/cql_split.h"
#include "migrate/cql_tokens.h"

namespace ferry {
namespace {

using cql_tokens::Tokens;
using Expected = std::map<std::string, CqlExpectedTable>;

std::string Qualified(const std::string& name, const std::string& keyspace) {
  return name.find('.') == std::string::npos ? keyspace + "." + name : name;
}

// Column names of `ADD c type`, `ADD (c1 t1, c2 t2)`, `DROP c`, `DROP (c1, c2)`
// starting at token i (just after ADD or DROP).
std::vector<std::string> ColumnList(const Tokens& t, size_t i, bool with_types) {
  std::vector<std::string> out;
  const bool list = t.Is(i, "(");
  if (!list) {
    if (!t.at(i).name.empty()) out.push_back(t.at(i).name);
    return out;
  }
  int depth = 0;
  bool expect_name = true;
  for (size_t k = i; k < t.size(); ++k) {
    const std::string& x = t.at(k).text;
    if (x == "(" || x == "<") {
      ++depth;
      continue;
    }
    if (x == ")" || x == ">") {
      if (--depth == 0) break;
      continue;
    }
    if (depth == 1 && x == ",") {
      expect_name = true;
      continue;
    }
    if (depth == 1 && expect_name && !t.at(k).name.empty()) {
      out.push_back(t.at(k).name);
      expect_name = !with_types;
    }
  }
  return out;
}

void ApplyStatement(const Tokens& t, const std::string& version, const std::string& keyspace,
                    Expected& expected) {
  size_t after = 0;
  if (t.Is(0, "CREATE") && t.Is(1, "TABLE")) {
    const size_t at = t.Is(2, "IF") ? 5 : 2;
    const std::string table = Qualified(t.QualifiedName(at, &after), keyspace);
    std::map<std::string, std::string> types;
    std::set<std::string> key;
    if (t.Is(after, "(")) cql_tokens::ReadColumns(t, after, &types, &key);
    CqlExpectedTable& e = expected[table];
    e.made_by = version;
    e.columns.clear();
    for (const auto& [column, type] : types) e.columns[column] = version;
  } else if (t.Is(0, "DROP") && t.Is(1, "TABLE")) {
    const size_t at = t.Is(2, "IF") ? 4 : 2;
    expected.erase(Qualified(t.QualifiedName(at, &after), keyspace));
  } else if (t.Is(0, "DROP") && t.Is(1, "KEYSPACE")) {
    const std::string ks = t.at(t.Is(2, "IF") ? 4 : 2).name + ".";
    std::erase_if(expected, [&](const auto& kv) { return kv.first.starts_with(ks); });
  } else if (t.Is(0, "ALTER") && t.Is(1, "TABLE")) {
    const std::string table = Qualified(t.QualifiedName(2, &after), keyspace);
    auto it = expected.find(table);
    if (it == expected.end()) return;  // not made by a migration: not judged
    auto& columns = it->second.columns;
    if (t.Is(after, "ADD")) {
      for (const std::string& c : ColumnList(t, after + 1, true)) columns[c] = version;
    } else if (t.Is(after, "DROP")) {
      for (const std::string& c : ColumnList(t, after + 1, false)) columns.erase(c);
    } else if (t.Is(after, "RENAME")) {
      // RENAME a TO b [AND c TO d ...]
      for (size_t k = after + 1; t.Is(k + 1, "TO"); k += 4) {
        const std::string from = t.at(k).name, to = t.at(k + 2).name;
        auto col = columns.find(from);
        if (col != columns.end()) {
          columns[to] = col->second;
          columns.erase(from);
        }
        if (!t.Is(k + 3, "AND")) break;
      }
    }
  }
}

}  // namespace

std::map<std::string, CqlExpectedTable> ExpectedCqlSchema(
    const std::vector<CqlAppliedScript>& applied, const std::string& keyspace) {
  Expected expected;
  for (const CqlAppliedScript& script : applied) {
    auto statements = cql::SplitCql(script.text);
    if (!statements.ok()) continue;  // validate reports unreadable files itself
    for (const cql::CqlStatement& s : *statements) {
      ApplyStatement(Tokens(cql_tokens::Tokenize(s.text)), script.version, keyspace, expected);
    }
  }
  return expected;
}

Result<std::vector<SchemaDrift>> CompareCqlSchema(Connection& conn, const Expected& expected) {
  std::map<std::string, std::set<std::string>> live;  // "ks.table" -> columns
  std::set<std::string> keyspaces;
  for (const auto& [table, e] : expected) keyspaces.insert(table.substr(0, table.find('.')));
  for (const std::string& ks : keyspaces) {
    FERRY_ASSIGN_OR_RETURN(
        QueryResult rows,
        conn.Query("SELECT table_name, column_name FROM system_schema.columns "
                   "WHERE keyspace_name = ?",
                   {ks}));
    for (size_t i = 0; i < rows.rows.size(); ++i) {
      live[ks + "." + rows.Text(i, 0)].insert(rows.Text(i, 1));
    }
  }
  std::vector<SchemaDrift> drift;
  for (const auto& [table, e] : expected) {
    auto found = live.find(table);
    if (found == live.end()) {
      drift.push_back({"table", table, "missing",
                       fmt::format("missing table {} (made by {})", table, e.made_by)});
      continue;
    }
    for (const auto& [column, by] : e.columns) {
      if (found->second.count(column)) continue;
      drift.push_back({"column", table + "." + column, "missing",
                       fmt::format("missing column {}.{} (added by {})", table, column, by)});
    }
  }
  return drift;
}

}  // namespace ferry
