#include "migrate/cql_schema.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <tuple>

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
    e = CqlExpectedTable{};
    e.made_by = version;
    for (const auto& [column, type] : types) {
      e.columns[column] = version;
      e.types[column] = NormalizeCqlType(type);
    }
    if (t.Is(after, "(")) e.key = ReadTableShape(t, after);
    for (const auto& [option, value] : ReadTableOptions(t, after)) e.options[option] = {value, version};
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
    auto& types = it->second.types;
    if (t.Is(after, "ADD")) {
      for (const std::string& c : ColumnList(t, after + 1, true)) columns[c] = version;
      for (const auto& [c, type] : ReadAddedColumns(t, after + 1)) types[c] = type;
    } else if (t.Is(after, "DROP")) {
      for (const std::string& c : ColumnList(t, after + 1, false)) {
        columns.erase(c);
        types.erase(c);
      }
    } else if (t.Is(after, "WITH")) {
      for (const auto& [option, value] : ReadTableOptions(t, after)) {
        it->second.options[option] = {value, version};
      }
    } else if (t.Is(after, "RENAME")) {
      // RENAME a TO b [AND c TO d ...]
      for (size_t k = after + 1; t.Is(k + 1, "TO"); k += 4) {
        const std::string from = t.at(k).name, to = t.at(k + 2).name;
        auto col = columns.find(from);
        if (col != columns.end()) {
          columns[to] = col->second;
          columns.erase(from);
        }
        if (auto ty = types.find(from); ty != types.end()) {
          types[to] = ty->second;
          types.erase(ty);
        }
        for (std::string& kc : it->second.key.partition_key) kc = kc == from ? to : kc;
        for (auto& [kc, order] : it->second.key.clustering) kc = kc == from ? to : kc;
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

namespace {

// What system_schema says of one table.
struct LiveTable {
  std::map<std::string, std::string> types;  // column -> NormalizeCqlType
  std::vector<std::pair<int, std::string>> partition;
  std::vector<std::tuple<int, std::string, std::string>> clustering;  // position, name, order
  std::map<std::string, std::string> options;
};

// frozen<...> dropped: whether a collection is frozen is not compared.
std::string Unfrozen(std::string type) {
  for (size_t p; (p = type.find("frozen<")) != std::string::npos;) {
    int depth = 0;
    for (size_t i = p + 6; i < type.size(); ++i) {
      if (type[i] == '<') ++depth;
      if (type[i] == '>' && --depth == 0) {
        type.erase(i, 1);
        break;
      }
    }
    type.erase(p, 7);
  }
  return type;
}

Status LoadLive(Connection& conn, const std::string& ks, std::map<std::string, LiveTable>* live) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult cols,
      conn.Query("SELECT table_name, column_name, type, kind, position, clustering_order "
                 "FROM system_schema.columns WHERE keyspace_name = ?",
                 {ks}));
  for (size_t i = 0; i < cols.rows.size(); ++i) {
    LiveTable& t = (*live)[ks + "." + cols.Text(i, 0)];
    const std::string column = cols.Text(i, 1);
    t.types[column] = NormalizeCqlType(cols.Text(i, 2));
    const int position = std::atoi(cols.Text(i, 4).c_str());
    if (cols.Text(i, 3) == "partition_key") t.partition.push_back({position, column});
    if (cols.Text(i, 3) == "clustering") t.clustering.push_back({position, column, cols.Text(i, 5)});
  }
  FERRY_ASSIGN_OR_RETURN(
      QueryResult tables,
      conn.Query("SELECT table_name, default_time_to_live, gc_grace_seconds, compaction "
                 "FROM system_schema.tables WHERE keyspace_name = ?",
                 {ks}));
  for (size_t i = 0; i < tables.rows.size(); ++i) {
    auto found = live->find(ks + "." + tables.Text(i, 0));
    if (found == live->end()) continue;
    found->second.options["default_time_to_live"] = tables.Text(i, 1);
    found->second.options["gc_grace_seconds"] = tables.Text(i, 2);
    found->second.options["compaction"] = CompactionClass(tables.Text(i, 3));
  }
  for (auto& [name, t] : *live) {
    std::sort(t.partition.begin(), t.partition.end());
    std::sort(t.clustering.begin(), t.clustering.end());
  }
  return Status();
}

std::string KeyText(const CqlTableShape& key) {
  std::string out = "((" + fmt::format("{}", fmt::join(key.partition_key, ", ")) + ")";
  for (const auto& [column, order] : key.clustering) out += fmt::format(", {} {}", column, order);
  return out + ")";
}

CqlTableShape LiveKey(const LiveTable& t) {
  CqlTableShape key;
  for (const auto& [pos, column] : t.partition) key.partition_key.push_back(column);
  for (const auto& [pos, column, order] : t.clustering) key.clustering.push_back({column, order});
  return key;
}

void CompareTable(const std::string& table, const CqlExpectedTable& e, const LiveTable& live,
                  std::vector<SchemaDrift>* drift) {
  for (const auto& [column, by] : e.columns) {
    auto type = live.types.find(column);
    if (type == live.types.end()) {
      drift->push_back({"column", table + "." + column, "missing",
                        fmt::format("missing column {}.{} (added by {})", table, column, by)});
      continue;
    }
    auto want = e.types.find(column);
    if (want == e.types.end() || Unfrozen(want->second) == Unfrozen(type->second)) continue;
    drift->push_back({"column", table + "." + column, "changed",
                      fmt::format("column {}.{} is {}, not {} as {} made it", table, column,
                                  type->second, want->second, by)});
  }
  if (!e.key.partition_key.empty()) {
    const std::string want = KeyText(e.key), have = KeyText(LiveKey(live));
    if (want != have) {
      drift->push_back({"primary key", table, "changed",
                        fmt::format("primary key of {} is {}, not {} as {} made it", table, have,
                                    want, e.made_by)});
    }
  }
  for (const auto& [option, set] : e.options) {
    auto have = live.options.find(option);
    if (have == live.options.end() || have->second == set.first) continue;
    drift->push_back({"table option", table + " " + option, "changed",
                      fmt::format("table {} has {} = {}, not {} as {} set it", table, option,
                                  have->second, set.first, set.second)});
  }
}

}  // namespace

Result<std::vector<SchemaDrift>> CompareCqlSchema(Connection& conn, const Expected& expected) {
  std::map<std::string, LiveTable> live;  // "ks.table"
  std::set<std::string> keyspaces;
  for (const auto& [table, e] : expected) keyspaces.insert(table.substr(0, table.find('.')));
  for (const std::string& ks : keyspaces) FERRY_RETURN_IF_ERROR(LoadLive(conn, ks, &live));
  std::vector<SchemaDrift> drift;
  for (const auto& [table, e] : expected) {
    auto found = live.find(table);
    if (found == live.end()) {
      drift.push_back({"table", table, "missing",
                       fmt::format("missing table {} (made by {})", table, e.made_by)});
      continue;
    }
    CompareTable(table, e, found->second, &drift);
  }
  return drift;
}

}  // namespace ferry
