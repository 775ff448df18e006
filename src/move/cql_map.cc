// Mapping of relational tables onto CQL tables: parsing the [[copy.map]]
// entries and resolving them against a source table (keys, column order,
// DDL, INSERT). Value conversion is in cql_values.cc.
#include "move/cql_map.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <toml++/toml.h>

#include "move/copy_types.h"

namespace ferry {
namespace {

constexpr const char* kDefaultReplication = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
constexpr int64_t kMaxTtl = 630720000;  // 20 years: the servers' limit

Status Bad(std::string_view file, int line, std::string message) {
  return Status(StatusCode::kInvalidArgument, fmt::format("{}:{}: {}", file, line, message))
      .With("file", std::string(file))
      .With("line", std::to_string(line));
}

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

Result<std::vector<std::string>> Strings(const toml::node* node, std::string_view key,
                                         std::string_view file, int line) {
  std::vector<std::string> out;
  if (node == nullptr) return out;
  const toml::array* list = node->as_array();
  if (list == nullptr) {
    return Bad(file, line, fmt::format("'{}' must be a list of strings, e.g. {} = [\"a\", \"b\"]", key, key));
  }
  for (const toml::node& item : *list) {
    auto v = item.value<std::string>();
    if (!v) return Bad(file, line, fmt::format("'{}' must list strings", key));
    out.push_back(*v);
  }
  return out;
}

Result<CqlTableMap> ParseEntry(const toml::table& t, std::string_view file) {
  CqlTableMap m;
  m.file = std::string(file);
  m.line = static_cast<int>(t.source().begin.line);
  static const std::set<std::string> kKeys = {"source", "target", "partition_key", "clustering",
                                              "ttl", "write_timestamp", "replication", "columns"};
  for (const auto& [k, node] : t) {
    if (!kKeys.count(std::string(k.str()))) {
      return Bad(file, static_cast<int>(node.source().begin.line),
                 fmt::format("unknown key '{}' in [[copy.map]]; known: source, target, "
                             "partition_key, clustering, ttl, write_timestamp, replication, columns",
                             k.str()));
    }
  }
  auto source = t["source"].value<std::string>();
  if (!source || source->empty()) {
    return Bad(file, m.line, "[[copy.map]] needs source = \"schema.table\" (the PostgreSQL table)");
  }
  m.source = *source;
  if (auto target = t["target"].value<std::string>()) {
    auto [ks, table] = SplitTableName(*target);
    m.keyspace = ks;
    m.table = table;
  } else if (t.contains("target")) {
    return Bad(file, m.line, "target must be a string: \"keyspace.table\"");
  }
  FERRY_ASSIGN_OR_RETURN(m.partition_key, Strings(t.get("partition_key"), "partition_key", file, m.line));
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> clustering,
                         Strings(t.get("clustering"), "clustering", file, m.line));
  for (const auto& c : clustering) {
    std::string s = Trim(c);
    CqlOrder order = CqlOrder::kAsc;
    size_t space = s.find_last_of(" \t");
    if (space != std::string::npos) {
      std::string word = Lower(s.substr(space + 1));
      if (word != "asc" && word != "desc") {
        return Bad(file, m.line, fmt::format("clustering entry '{}': write \"column\", \"column ASC\" "
                                             "or \"column DESC\"",
                                             c));
      }
      order = word == "desc" ? CqlOrder::kDesc : CqlOrder::kAsc;
      s = Trim(s.substr(0, space));
    }
    m.clustering.emplace_back(s, order);
  }
  if (const toml::node* ttl = t.get("ttl")) {
    auto v = ttl->value<int64_t>();
    if (!v || *v <= 0 || *v > kMaxTtl) {
      return Bad(file, static_cast<int>(ttl->source().begin.line),
                 fmt::format("ttl must be a number of seconds from 1 to {} (20 years)", kMaxTtl));
    }
    m.ttl = *v;
  }
  if (const toml::node* ts = t.get("write_timestamp")) {
    auto v = ts->value<std::string>();
    if (!v) return Bad(file, m.line, "write_timestamp must name a source column, e.g. \"updated_at\"");
    m.write_timestamp = *v;
  }
  if (const toml::node* r = t.get("replication")) {
    auto v = r->value<std::string>();
    std::string s = v ? Trim(*v) : "";
    if (s.size() < 2 || s.front() != '{' || s.back() != '}' || s.find(';') != std::string::npos) {
      return Bad(file, static_cast<int>(r->source().begin.line),
                 "replication must be a CQL map, e.g. \"{'class': 'NetworkTopologyStrategy', "
                 "'dc1': 3}\"");
    }
    m.replication = s;
  }
  if (const toml::node* cols = t.get("columns")) {
    const toml::table* ct = cols->as_table();
    if (ct == nullptr) return Bad(file, m.line, "columns must be a table: [copy.map.columns]");
    std::vector<std::tuple<int, std::string, std::string>> items;
    for (const auto& [k, node] : *ct) {
      int line = static_cast<int>(node.source().begin.line);
      auto v = node.value<std::string>();
      if (!v) {
        return Bad(file, line, fmt::format("column {} must be a string: the source column or an "
                                           "expression such as \"day(created_at)\"",
                                           k.str()));
      }
      items.emplace_back(line, std::string(k.str()), *v);
    }
    std::sort(items.begin(), items.end());
    for (auto& [line, target, expr] : items) {
      m.columns.emplace_back(target, expr);
      m.column_lines.push_back(line);
    }
  }
  return m;
}

struct Expr {
  CqlExpr kind = CqlExpr::kColumn;
  std::string column;
};

Result<Expr> ParseExpr(std::string_view text, std::string_view file, int line) {
  std::string s = Trim(text);
  Expr e;
  size_t open = s.find('(');
  if (open == std::string::npos) {
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
    if (s.empty()) return Bad(file, line, "empty expression: name a source column");
    e.column = s;
    return e;
  }
  std::string fn = Lower(Trim(s.substr(0, open)));
  if (s.back() != ')') return Bad(file, line, fmt::format("expression '{}' lacks its ')'", s));
  e.column = Trim(s.substr(open + 1, s.size() - open - 2));
  if (fn == "day") e.kind = CqlExpr::kDay;
  else if (fn == "month") e.kind = CqlExpr::kMonth;
  else if (fn == "hour") e.kind = CqlExpr::kHour;
  else if (fn == "text") e.kind = CqlExpr::kText;
  else {
    return Bad(file, line, fmt::format("unknown function '{}' in '{}': use day(col), month(col), "
                                       "hour(col) or text(col)",
                                       fn, s));
  }
  if (e.column.empty()) return Bad(file, line, fmt::format("'{}' names no column", s));
  return e;
}

bool IsTimeLike(const ColumnInfo& c) {
  std::string base = StripTypmod(c.base_type);
  return !c.is_array && (base == "date" || base == "timestamp without time zone" ||
                         base == "timestamp with time zone");
}

std::string SourceColumns(const TableInfo& t) {
  std::string out;
  for (const auto& c : t.columns) out += (out.empty() ? "" : ", ") + c.name;
  return out;
}

Result<CqlColumn> DerivedColumn(const Expr& e, const ColumnInfo& src, const std::string& target,
                                const std::string& file, int line, bool allow_lossy,
                                const std::string& table) {
  CqlColumn c;
  c.name = target;
  c.expr = e.kind;
  c.source = src.name;
  std::string q = QuoteIdent(src.name);
  if (e.kind == CqlExpr::kColumn) {
    FERRY_ASSIGN_OR_RETURN(CqlColumn base, CqlColumnFor(src, table, allow_lossy));
    base.name = target;
    return base;
  }
  if (e.kind == CqlExpr::kText) {
    c.cql_type = "text";
    c.select = fmt::format("({})::text", q);
    return c;
  }
  if (!IsTimeLike(src)) {
    return Bad(file, line, fmt::format("{}() needs a date or timestamp column; {}.{} is {}",
                                       e.kind == CqlExpr::kDay ? "day" : e.kind == CqlExpr::kMonth ? "month" : "hour",
                                       table, src.name, src.type));
  }
  // The source session runs with TimeZone UTC: casts cut UTC days.
  if (e.kind == CqlExpr::kDay) {
    c.cql_type = "date";
    c.kind = CqlValueKind::kDate;
    c.select = fmt::format("({})::date", q);
  } else if (e.kind == CqlExpr::kMonth) {
    c.cql_type = "date";
    c.kind = CqlValueKind::kDate;
    c.select = fmt::format("date_trunc('month', {})::date", q);
  } else {
    c.cql_type = "timestamp";
    c.kind = CqlValueKind::kTimestamp;
    c.select = fmt::format("date_trunc('hour', {})::timestamp", q);
  }
  return c;
}

}  // namespace

const CqlTableMap* CqlMapping::Find(std::string_view schema, std::string_view name) const {
  for (const auto& t : tables) {
    auto [s, n] = SplitTableName(t.source);
    if (n != name) continue;
    if (s.empty() || s == schema) return &t;
  }
  return nullptr;
}

Result<CqlMapping> ParseCqlMapping(std::string_view text, std::string_view file) {
  int line = 1;
  for (char c : text) {
    if (c == '\n') ++line;
    if (static_cast<unsigned char>(c) >= 0x80) {
      return Bad(file, line, "a character outside ASCII: write names and expressions in ASCII");
    }
  }
  toml::table root;
  try {
    root = toml::parse(text, std::string(file));
  } catch (const toml::parse_error& err) {
    return Bad(file, static_cast<int>(err.source().begin.line), std::string(err.description()));
  }
  CqlMapping out;
  const toml::table* copy = root["copy"].as_table();
  if (copy == nullptr) return out;
  const toml::node* map = copy->get("map");
  if (map == nullptr) return out;
  if (!map->is_array_of_tables()) {
    return Bad(file, static_cast<int>(map->source().begin.line),
               "write each mapping as a [[copy.map]] entry (double brackets): docs/copy.md");
  }
  std::set<std::string> seen;
  for (const toml::node& entry : *map->as_array()) {
    FERRY_ASSIGN_OR_RETURN(CqlTableMap m, ParseEntry(*entry.as_table(), file));
    if (!seen.insert(m.source).second) {
      return Bad(file, m.line, fmt::format("source {} is mapped twice", m.source));
    }
    out.tables.push_back(std::move(m));
  }
  return out;
}

Result<CqlMapping> LoadCqlMapping(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(StatusCode::kNotFound, fmt::format("mapping file '{}' does not exist or cannot "
                                                     "be read",
                                                     path));
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ParseCqlMapping(text, path);
}

std::string QuoteCql(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

Result<CqlTarget> ResolveCqlTarget(const TableInfo& source, const CqlTableMap* map,
                                   std::string_view default_keyspace, bool allow_lossy) {
  CqlTarget t;
  t.allow_lossy = allow_lossy;
  const std::string table_name = TableNameFor(source.schema, source.name);
  const std::string file = map ? map->file : "";
  const int line = map ? map->line : 0;
  t.keyspace = map && !map->keyspace.empty() ? map->keyspace : std::string(default_keyspace);
  t.table = map && !map->table.empty() ? map->table : source.name;
  if (t.keyspace.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("table {}: no CQL keyspace: put one in the URL path "
                              "(cql://host:9042/keyspace) or map it (target = \"ks.table\")",
                              table_name));
  }
  t.replication = map && !map->replication.empty() ? map->replication : kDefaultReplication;
  t.ttl = map ? map->ttl : std::nullopt;

  std::vector<CqlColumn> cols;
  if (map && !map->columns.empty()) {
    std::set<std::string> names;
    for (size_t i = 0; i < map->columns.size(); ++i) {
      const auto& [target, text] = map->columns[i];
      int l = map->column_lines[i];
      FERRY_ASSIGN_OR_RETURN(Expr e, ParseExpr(text, file, l));
      const ColumnInfo* src = source.Find(e.column);
      if (src == nullptr) {
        return Bad(file, l, fmt::format("column {} reads '{}', which table {} does not have "
                                        "(its columns: {})",
                                        target, e.column, table_name, SourceColumns(source)));
      }
      auto c = DerivedColumn(e, *src, target, file, l, allow_lossy, table_name);
      if (!c.ok()) return std::move(c).TakeStatus().Prefix(fmt::format("{}:{}", file, l));
      cols.push_back(std::move(*c));
      names.insert(target);
    }
  } else {
    for (const auto& c : source.columns) {
      FERRY_ASSIGN_OR_RETURN(CqlColumn cc, CqlColumnFor(c, table_name, allow_lossy));
      cols.push_back(std::move(cc));
    }
  }

  // Keys: declared, or the source's primary key.
  std::vector<std::string> partition;
  std::vector<std::pair<std::string, CqlOrder>> clustering;
  if (map && !map->partition_key.empty()) {
    partition = map->partition_key;
    clustering = map->clustering;
  } else {
    if (!source.has_primary_key()) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("table {} has no primary key, so its CQL key cannot be derived: "
                                "declare partition_key (and clustering) in a [[copy.map]] entry "
                                "for it (docs/copy.md)",
                                table_name))
          .With("table", table_name);
    }
    if (map && !map->clustering.empty()) {
      return Bad(file, line, "clustering is given without partition_key: declare both");
    }
    for (size_t i = 0; i < source.primary_key.size(); ++i) {
      const std::string& n = source.columns[source.primary_key[i]].name;
      if (i == 0) partition.push_back(n);
      else clustering.emplace_back(n, CqlOrder::kAsc);
    }
  }
  std::vector<CqlColumn> ordered;
  std::set<std::string> used;
  auto take = [&](const std::string& name, std::string_view role) -> Status {
    auto it = std::find_if(cols.begin(), cols.end(), [&](const CqlColumn& c) { return c.name == name; });
    if (it == cols.end()) {
      std::string where = map ? fmt::format("{}:{}: ", file, line) : fmt::format("table {}: ", table_name);
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("{}{} column '{}' is not among the target columns; map it under "
                                "[copy.map.columns] (e.g. {} = \"day(created_at)\" or {} = \"{}\")",
                                where, role, name, name, name, name))
          .With("column", name);
    }
    if (!used.insert(name).second) {
      return Bad(file, line, fmt::format("column '{}' appears twice in the primary key", name));
    }
    if (it->cql_type == "duration" || it->cql_type.starts_with("list<")) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("table {}: {} column '{}' has CQL type {}, which CQL does not allow "
                                "in a primary key; map it with text({})",
                                table_name, role, name, it->cql_type, it->source));
    }
    ordered.push_back(*it);
    return Status();
  };
  for (const auto& p : partition) FERRY_RETURN_IF_ERROR(take(p, "partition key"));
  for (const auto& [c, order] : clustering) {
    FERRY_RETURN_IF_ERROR(take(c, "clustering"));
    t.clustering_order.push_back(order);
  }
  t.partition_count = partition.size();
  t.clustering_count = clustering.size();
  for (auto& c : cols) {
    if (!used.count(c.name)) ordered.push_back(std::move(c));
  }
  t.columns = std::move(ordered);

  if (map && !map->write_timestamp.empty()) {
    const ColumnInfo* ts = source.Find(map->write_timestamp);
    if (ts == nullptr) {
      return Bad(file, line, fmt::format("write_timestamp names '{}', which table {} does not have "
                                         "(its columns: {})",
                                         map->write_timestamp, table_name, SourceColumns(source)));
    }
    std::string base = StripTypmod(ts->base_type);
    if (ts->is_array || (base != "timestamp with time zone" && base != "timestamp without time zone")) {
      return Bad(file, line, fmt::format("write_timestamp column {} is {}; it must be a timestamp "
                                         "(with or without time zone)",
                                         ts->name, ts->type));
    }
    t.write_timestamp = ts->name;
  }
  return t;
}

std::string CqlTarget::QualifiedName() const { return QuoteCql(keyspace) + "." + QuoteCql(table); }

std::string CqlTarget::CreateKeyspaceCql() const {
  return fmt::format("CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {}", QuoteCql(keyspace),
                     replication);
}

std::string CqlTarget::CreateTableCql() const {
  std::string out = fmt::format("CREATE TABLE IF NOT EXISTS {} (\n", QualifiedName());
  for (const auto& c : columns) out += fmt::format("  {} {},\n", QuoteCql(c.name), c.cql_type);
  std::string pk;
  for (size_t i = 0; i < partition_count; ++i) pk += (i ? ", " : "") + QuoteCql(columns[i].name);
  pk = "(" + pk + ")";
  for (size_t i = 0; i < clustering_count; ++i) pk += ", " + QuoteCql(columns[partition_count + i].name);
  out += fmt::format("  PRIMARY KEY ({})\n)", pk);
  if (clustering_count > 0) {
    std::string order;
    for (size_t i = 0; i < clustering_count; ++i) {
      order += fmt::format("{}{} {}", i ? ", " : "", QuoteCql(columns[partition_count + i].name),
                           clustering_order[i] == CqlOrder::kDesc ? "DESC" : "ASC");
    }
    out += fmt::format(" WITH CLUSTERING ORDER BY ({})", order);
  }
  return out;
}

std::string CqlTarget::InsertCql() const {
  std::string names, marks;
  for (const auto& c : columns) {
    names += (names.empty() ? "" : ", ") + QuoteCql(c.name);
    marks += marks.empty() ? "?" : ", ?";
  }
  std::string out = fmt::format("INSERT INTO {} ({}) VALUES ({})", QualifiedName(), names, marks);
  if (ttl && !write_timestamp.empty()) out += " USING TTL ? AND TIMESTAMP ?";
  else if (ttl) out += " USING TTL ?";
  else if (!write_timestamp.empty()) out += " USING TIMESTAMP ?";
  return out;
}

std::vector<std::string> CqlTarget::SelectList() const {
  std::vector<std::string> out;
  for (const auto& c : columns) out.push_back(c.select);
  if (!write_timestamp.empty()) {
    // Exact microseconds: extract(epoch) is numeric on PostgreSQL 14 and later.
    out.push_back(fmt::format("floor(extract(epoch from {}) * 1000000)::bigint",
                              QuoteIdent(write_timestamp)));
  }
  return out;
}

}  // namespace ferry
