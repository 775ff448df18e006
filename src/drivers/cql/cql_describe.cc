#include "drivers/cql/cql_describe.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <tuple>
#include <vector>

namespace ferry::cql {
namespace {

std::string Quote(const std::string& name) {
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string Literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// The quoted members of a list/set literal as the driver prints it:
// ['a', 'b'] -> {a, b}.
std::vector<std::string> Members(const std::string& text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\'') continue;
    std::string m;
    for (++i; i < text.size(); ++i) {
      if (text[i] == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        m += '\'';
        ++i;
      } else if (text[i] == '\'') {
        break;
      } else {
        m += text[i];
      }
    }
    out.push_back(m);
  }
  return out;
}

// The value of `key` in a map<text, text> literal ("" when absent).
std::string MapValue(const std::string& text, const std::string& key) {
  std::vector<std::string> m = Members(text);
  for (size_t i = 0; i + 1 < m.size(); i += 2) {
    if (m[i] == key) return m[i + 1];
  }
  return "";
}

struct Column {
  std::string name, type, kind, order;
  int position = 0;
};

using Columns = std::map<std::string, std::vector<Column>>;  // table or view -> columns

Result<Columns> LoadColumns(Connection& conn, const std::string& ks) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query("SELECT table_name, column_name, type, kind, position, clustering_order "
                 "FROM system_schema.columns WHERE keyspace_name = ?",
                 {ks}));
  Columns out;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    out[r.Text(i, 0)].push_back(
        {r.Text(i, 1), r.Text(i, 2), r.Text(i, 3), r.Text(i, 5), std::atoi(r.Text(i, 4).c_str())});
  }
  for (auto& [name, cols] : out) {
    auto rank = [](const Column& c) {
      return c.kind == "partition_key" ? 0 : c.kind == "clustering" ? 1 : 2;
    };
    std::sort(cols.begin(), cols.end(), [&](const Column& a, const Column& b) {
      return std::make_tuple(rank(a), a.position, a.name) < std::make_tuple(rank(b), b.position, b.name);
    });
  }
  return out;
}

// PRIMARY KEY ((p1, p2), c1, c2) and WITH CLUSTERING ORDER BY (c1 DESC, ...).
std::pair<std::string, std::string> KeyAndOrder(const std::vector<Column>& cols) {
  std::vector<std::string> partition, clustering, order;
  for (const Column& c : cols) {
    if (c.kind == "partition_key") partition.push_back(Quote(c.name));
    if (c.kind == "clustering") {
      clustering.push_back(Quote(c.name));
      order.push_back(Quote(c.name) + (c.order == "desc" ? " DESC" : " ASC"));
    }
  }
  std::string key = fmt::format("PRIMARY KEY (({})", fmt::join(partition, ", "));
  for (const std::string& c : clustering) key += ", " + c;
  key += ")";
  return {key, order.empty() ? "" : fmt::format("CLUSTERING ORDER BY ({})", fmt::join(order, ", "))};
}

// The table options cqlsh prints, from a system_schema.tables/views row.
std::string Options(const QueryResult& r, size_t row, size_t first) {
  const char* names[] = {"bloom_filter_fp_chance", "caching", "comment", "compaction",
                         "compression", "crc_check_chance", "default_time_to_live",
                         "gc_grace_seconds", "speculative_retry"};
  std::vector<std::string> out;
  for (size_t k = 0; k < std::size(names); ++k) {
    const Value& v = r.rows.at(row).at(first + k);
    if (!v) continue;
    const std::string name = names[k];
    const bool text = name == "comment" || name == "speculative_retry";
    out.push_back(fmt::format("{} = {}", name, text ? Literal(*v) : *v));
  }
  return fmt::format("{}", fmt::join(out, "\n    AND "));
}

constexpr const char* kOptionColumns =
    "bloom_filter_fp_chance, caching, comment, compaction, compression, crc_check_chance, "
    "default_time_to_live, gc_grace_seconds, speculative_retry";

Status DescribeTypes(Connection& conn, const std::string& ks, std::string* out) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r, conn.Query("SELECT type_name, field_names, field_types FROM system_schema.types "
                                "WHERE keyspace_name = ?",
                                {ks}));
  std::set<std::string> pending, done;
  for (size_t i = 0; i < r.rows.size(); ++i) pending.insert(r.Text(i, 0));
  while (!pending.empty()) {  // each type after the types its fields use
    const size_t before = pending.size();
    for (size_t i = 0; i < r.rows.size(); ++i) {
      const std::string name = r.Text(i, 0);
      if (!pending.count(name)) continue;
      const std::vector<std::string> names = Members(r.Text(i, 1)), types = Members(r.Text(i, 2));
      bool ready = true;
      for (const std::string& t : types) {
        for (const std::string& p : pending) {
          if (p != name && t.find(p) != std::string::npos) ready = false;
        }
      }
      if (!ready && pending.size() > 1) continue;
      std::vector<std::string> fields;
      for (size_t k = 0; k < names.size() && k < types.size(); ++k) {
        fields.push_back(Quote(names[k]) + " " + types[k]);
      }
      *out += fmt::format("CREATE TYPE {}.{} (\n    {}\n);\n\n", Quote(ks), Quote(name),
                          fmt::join(fields, ",\n    "));
      pending.erase(name);
      done.insert(name);
    }
    if (pending.size() == before) pending.erase(pending.begin());  // a cycle cannot exist
  }
  return Status();
}

Status DescribeTables(Connection& conn, const std::string& ks, const Columns& columns,
                      std::string* out) {
  FERRY_ASSIGN_OR_RETURN(QueryResult r,
                         conn.Query(fmt::format("SELECT table_name, {} FROM system_schema.tables "
                                                "WHERE keyspace_name = ?",
                                                kOptionColumns),
                                    {ks}));
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const std::string table = r.Text(i, 0);
    auto cols = columns.find(table);
    if (cols == columns.end()) continue;
    std::vector<std::string> defs;
    for (const Column& c : cols->second) {
      defs.push_back(Quote(c.name) + " " + c.type + (c.kind == "static" ? " STATIC" : ""));
    }
    auto [key, order] = KeyAndOrder(cols->second);
    defs.push_back(key);
    std::string with = order.empty() ? "" : order + "\n    AND ";
    *out += fmt::format("CREATE TABLE {}.{} (\n    {}\n) WITH {}{};\n\n", Quote(ks), Quote(table),
                        fmt::join(defs, ",\n    "), with, Options(r, i, 1));
  }
  return Status();
}

Status DescribeIndexes(Connection& conn, const std::string& ks, std::string* out) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r, conn.Query("SELECT table_name, index_name, kind, options FROM "
                                "system_schema.indexes WHERE keyspace_name = ?",
                                {ks}));
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const std::string target = MapValue(r.Text(i, 3), "target");
    const bool custom = r.Text(i, 2) == "CUSTOM";
    *out += fmt::format("CREATE {}INDEX {} ON {}.{} ({}){};\n\n", custom ? "CUSTOM " : "",
                        Quote(r.Text(i, 1)), Quote(ks), Quote(r.Text(i, 0)), target,
                        custom ? " USING " + Literal(MapValue(r.Text(i, 3), "class_name")) : "");
  }
  return Status();
}

Status DescribeViews(Connection& conn, const std::string& ks, const Columns& columns,
                     std::string* out) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query(fmt::format("SELECT view_name, base_table_name, where_clause, {} FROM "
                             "system_schema.views WHERE keyspace_name = ?",
                             kOptionColumns),
                 {ks}));
  for (size_t i = 0; i < r.rows.size(); ++i) {
    auto cols = columns.find(r.Text(i, 0));
    if (cols == columns.end()) continue;
    std::vector<std::string> names;
    for (const Column& c : cols->second) names.push_back(Quote(c.name));
    auto [key, order] = KeyAndOrder(cols->second);
    std::string with = order.empty() ? "" : order + "\n    AND ";
    *out += fmt::format(
        "CREATE MATERIALIZED VIEW {}.{} AS\n    SELECT {}\n    FROM {}.{}\n    WHERE {}\n    {}\n"
        "    WITH {}{};\n\n",
        Quote(ks), Quote(r.Text(i, 0)), fmt::join(names, ", "), Quote(ks), Quote(r.Text(i, 1)),
        r.Text(i, 2), key, with, Options(r, i, 3));
  }
  return Status();
}

}  // namespace

Result<std::string> DescribeKeyspace(Connection& conn, const std::string& keyspace) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult ks, conn.Query("SELECT replication, durable_writes FROM system_schema.keyspaces "
                                 "WHERE keyspace_name = ?",
                                 {keyspace}));
  if (ks.empty()) {
    return Status(StatusCode::kNotFound, fmt::format("keyspace {} does not exist", keyspace));
  }
  std::string out = fmt::format(
      "-- the schema of keyspace {} (ferry, from system_schema)\n\n"
      "CREATE KEYSPACE {} WITH replication = {} AND durable_writes = {};\n\n",
      keyspace, Quote(keyspace), ks.Text(0, 0), ks.Text(0, 1));
  FERRY_ASSIGN_OR_RETURN(Columns columns, LoadColumns(conn, keyspace));
  FERRY_RETURN_IF_ERROR(DescribeTypes(conn, keyspace, &out));
  FERRY_RETURN_IF_ERROR(DescribeTables(conn, keyspace, columns, &out));
  FERRY_RETURN_IF_ERROR(DescribeIndexes(conn, keyspace, &out));
  FERRY_RETURN_IF_ERROR(DescribeViews(conn, keyspace, columns, &out));
  return out;
}

}  // namespace ferry::cql
