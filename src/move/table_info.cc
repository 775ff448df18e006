// Table introspection for both engines, and primary-key ranges.
#include "move/table_info.h"
#include "core/numbers.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace ferry {
namespace {

bool IsPostgres(const Connection& conn) { return conn.engine() == Engine::kPostgres; }

bool ToBool(const Value& v) { return v && (*v == "t" || *v == "true" || *v == "1"); }

// Splits "schema.table" at the first dot that is not inside double quotes;
// strips the quotes of each part ("\"My\"\"T\"" -> My"T).
std::pair<std::string, std::string> SplitName(std::string_view name) {
  auto unquote = [](std::string_view part) {
    std::string out;
    if (part.size() >= 2 && part.front() == '"' && part.back() == '"') {
      part = part.substr(1, part.size() - 2);
      for (size_t i = 0; i < part.size(); ++i) {
        out += part[i];
        if (part[i] == '"' && i + 1 < part.size() && part[i + 1] == '"') ++i;
      }
      return out;
    }
    return std::string(part);
  };
  bool quoted = false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '"') quoted = !quoted;
    if (name[i] == '.' && !quoted) return {unquote(name.substr(0, i)), unquote(name.substr(i + 1))};
  }
  return {"", unquote(name)};
}

Status TableNotFound(Connection& conn, std::string_view name) {
  Status s(StatusCode::kNotFound, fmt::format("table {} does not exist in {}", name, conn.redacted_url()));
  s.Add("table", std::string(name));
  auto all = ListTables(conn);
  if (all.ok()) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    std::string near;
    for (const auto& t : *all) {
      std::string tl = t;
      std::transform(tl.begin(), tl.end(), tl.begin(), ::tolower);
      std::string bare = tl.substr(tl.find('.') == std::string::npos ? 0 : tl.find('.') + 1);
      if (tl.find(lower) != std::string::npos || lower.find(bare) != std::string::npos) {
        near += near.empty() ? t : ", " + t;
      }
    }
    if (!near.empty()) s.Add("hint", "did you mean: " + near);
    else s.Add("hint", "check the name and the schema (ferry lists tables as schema.table)");
  }
  return s;
}

constexpr const char* kPgFindTable = R"sql(
SELECT c.oid::bigint, n.nspname, c.relname, c.reltuples::bigint,
       pg_total_relation_size(c.oid), c.relkind = 'p'
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND (($1::text <> '' AND n.nspname = $1 AND c.relname = $2)
     OR ($1::text = '' AND c.relname = $2 AND n.nspname = ANY (current_schemas(false))))
 ORDER BY array_position(current_schemas(false), n.nspname::text) NULLS LAST
 LIMIT 1)sql";

constexpr const char* kPgRegclass = R"sql(
SELECT c.oid::bigint, n.nspname, c.relname, c.reltuples::bigint,
       pg_total_relation_size(c.oid), c.relkind = 'p'
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p'))sql";

constexpr const char* kPgColumns = R"sql(
SELECT a.attname,
       format_type(a.atttypid, a.atttypmod),
       a.atttypid::bigint,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
            ELSE format_type(a.atttypid, a.atttypmod) END,
       bt.oid::bigint,
       CASE WHEN bt.typcategory = 'A' THEN et.typtype ELSE bt.typtype END,
       bt.typcategory = 'A',
       a.attnotnull,
       a.attgenerated <> '',
       a.attidentity,
       pg_get_expr(d.adbin, d.adrelid),
       coalesce(array_position(string_to_array(i.indkey::text, ' ')::int2[], a.attnum), 0)
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
  LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
 WHERE a.attrelid = $1::bigint::oid AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum)sql";

Result<TableInfo> DescribePostgres(Connection& conn, std::string_view name) {
  auto [schema, table] = SplitName(name);
  FERRY_ASSIGN_OR_RETURN(QueryResult found, conn.Query(kPgFindTable, {schema, table}));
  if (found.empty()) {
    // Fall back to the server's own name resolution (case folding, quoting);
    // a name it cannot read ("public.Mixed Case") is simply not there.
    auto resolved = conn.Query(kPgRegclass, {std::string(name)});
    if (!resolved.ok() && resolved.status().Get("sqlstate") != "42602") {
      return std::move(resolved).TakeStatus();
    }
    if (resolved.ok()) found = std::move(*resolved);
  }
  if (found.empty()) return TableNotFound(conn, name);
  TableInfo info;
  info.engine = Engine::kPostgres;
  info.schema = found.Text(0, 1);
  info.name = found.Text(0, 2);
  info.estimated_rows = ColumnInt64(found.rows[0][3], -1);
  info.estimated_bytes = ColumnInt64(found.rows[0][4], -1);
  info.partitioned = ToBool(found.rows[0][5]);
  FERRY_ASSIGN_OR_RETURN(QueryResult cols, conn.Query(kPgColumns, {found.Text(0, 0)}));
  std::vector<std::pair<int, size_t>> pk;
  for (auto& row : cols.rows) {
    ColumnInfo c;
    c.name = std::move(*row[0]);
    c.type = std::move(*row[1]);
    c.type_oid = static_cast<uint32_t>(ColumnInt64(row[2]));
    c.base_type = std::move(*row[3]);
    c.base_oid = static_cast<uint32_t>(ColumnInt64(row[4]));
    c.kind = row[5] && !row[5]->empty() ? (*row[5])[0] : 'b';
    c.is_array = ToBool(row[6]);
    c.not_null = ToBool(row[7]);
    c.generated = ToBool(row[8]);
    c.identity = row[9] && !row[9]->empty() ? (*row[9])[0] : 0;
    c.default_expr = std::move(row[10]);
    c.pk_position = static_cast<int>(ColumnInt64(row[11]));
    if (c.pk_position > 0) pk.emplace_back(c.pk_position, info.columns.size());
    info.columns.push_back(std::move(c));
  }
  std::sort(pk.begin(), pk.end());
  for (auto& [pos, index] : pk) info.primary_key.push_back(index);
  return info;
}

Result<TableInfo> DescribeSqlite(Connection& conn, std::string_view name) {
  auto [schema, table] = SplitName(name);
  if (!schema.empty() && schema != "main") {
    // SQLite has one schema: "a.b" is the table named a.b when it exists.
    auto whole = conn.Query("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = $1",
                            {std::string(name)});
    if (whole.ok() && !whole->empty()) {
      schema.clear();
      table = std::string(name);
    }
  }
  if (!schema.empty() && schema != "main") {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("SQLite table {}: only the main schema is supported", name))
        .With("table", std::string(name));
  }
  FERRY_ASSIGN_OR_RETURN(
      QueryResult found,
      conn.Query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name = $1 COLLATE NOCASE "
                 "ORDER BY name = $1 DESC LIMIT 1",
                 {table}));
  if (found.empty()) return TableNotFound(conn, name);
  TableInfo info;
  info.engine = Engine::kSqlite;
  info.schema = "main";
  info.name = found.Text(0, 0);
  FERRY_ASSIGN_OR_RETURN(
      QueryResult cols,
      conn.Query("SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo($1) "
                 "ORDER BY cid",
                 {info.name}));
  std::vector<std::pair<int, size_t>> pk;
  for (auto& row : cols.rows) {
    ColumnInfo c;
    c.name = std::move(*row[0]);
    c.type = row[1] ? std::move(*row[1]) : "";
    c.base_type = c.type;
    c.not_null = ToBool(row[2]);
    c.default_expr = std::move(row[3]);
    c.pk_position = static_cast<int>(ColumnInt64(row[4]));
    int64_t hidden = ColumnInt64(row[5]);
    if (hidden == 1) continue;  // hidden column of a virtual table
    c.generated = hidden == 2 || hidden == 3;
    if (c.pk_position > 0) {
      c.not_null = true;  // keys are compared as NOT NULL
      pk.emplace_back(c.pk_position, info.columns.size());
    }
    info.columns.push_back(std::move(c));
  }
  std::sort(pk.begin(), pk.end());
  for (auto& [pos, index] : pk) info.primary_key.push_back(index);
  return info;
}

}  // namespace

std::string TableInfo::QualifiedName() const {
  if (engine == Engine::kPostgres) return QuoteIdent(schema) + "." + QuoteIdent(name);
  return QuoteIdent(name);
}

const ColumnInfo* TableInfo::Find(std::string_view column) const {
  for (const auto& c : columns) {
    if (c.name == column) return &c;
  }
  return nullptr;
}

std::string TableInfo::KeyColumnList() const {
  std::string out;
  for (size_t i : primary_key) {
    if (!out.empty()) out += ", ";
    out += QuoteIdent(columns[i].name);
  }
  return out;
}

std::string TableInfo::WritableColumnList() const {
  std::string out;
  for (const auto& c : columns) {
    if (c.generated) continue;
    if (!out.empty()) out += ", ";
    out += QuoteIdent(c.name);
  }
  return out;
}

std::pair<std::string, std::string> SplitTableName(std::string_view name) {
  return SplitName(name);
}

std::string TableNameFor(std::string_view schema, std::string_view name) {
  auto part = [](std::string_view p) {
    bool plain = !p.empty();
    for (char c : p) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ' ' || c == '\t')) {
        plain = false;
      }
    }
    if (plain) return std::string(p);
    std::string out = "\"";
    for (char c : p) {
      out += c;
      if (c == '"') out += '"';
    }
    return out + "\"";
  };
  return schema.empty() ? part(name) : part(schema) + "." + part(name);
}

Result<TableInfo> DescribeTable(Connection& conn, std::string_view name) {
  if (name.empty()) return Status(StatusCode::kInvalidArgument, "empty table name");
  return IsPostgres(conn) ? DescribePostgres(conn, name) : DescribeSqlite(conn, name);
}

Result<std::vector<std::string>> ListTables(Connection& conn) {
  std::vector<std::string> out;
  if (IsPostgres(conn)) {
    FERRY_ASSIGN_OR_RETURN(QueryResult r, conn.Query(R"sql(
SELECT n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
   AND c.relname NOT LIKE 'ferry\_%'
 ORDER BY n.nspname, c.relname)sql"));
    for (auto& row : r.rows) out.push_back(TableNameFor(*row[0], *row[1]));
  } else {
    FERRY_ASSIGN_OR_RETURN(QueryResult r, conn.Query(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "AND name NOT LIKE 'ferry\\_%' ESCAPE '\\' ORDER BY name"));
    for (auto& row : r.rows) out.push_back(TableNameFor("", *row[0]));
  }
  return out;
}

// ---- KeyRange ----

std::string KeyRange::ToString() const {
  auto tuple = [](const KeyTuple& t) {
    std::string s = "(";
    for (size_t i = 0; i < t.size(); ++i) s += (i ? ", " : "") + t[i];
    return s + ")";
  };
  return fmt::format("[{}, {})", lower ? tuple(*lower) : "-inf", upper ? tuple(*upper) : "+inf");
}

std::string KeyRange::Encode() const {
  nlohmann::json j = nlohmann::json::array();
  j.push_back(lower ? nlohmann::json(*lower) : nlohmann::json(nullptr));
  j.push_back(upper ? nlohmann::json(*upper) : nlohmann::json(nullptr));
  return j.dump();
}

Result<KeyRange> KeyRange::Decode(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&] {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("bad key range {:?}: expected [lower, upper], each null or an array of strings",
                              std::string(text.substr(0, 200))));
  };
  if (j.is_discarded() || !j.is_array() || j.size() != 2) return bad();
  KeyRange range;
  for (int side = 0; side < 2; ++side) {
    const auto& b = j[static_cast<size_t>(side)];
    if (b.is_null()) continue;
    if (!b.is_array() || b.empty()) return bad();
    KeyTuple t;
    for (const auto& v : b) {
      if (!v.is_string()) return bad();
      t.push_back(v.get<std::string>());
    }
    (side == 0 ? range.lower : range.upper) = std::move(t);
  }
  return range;
}

std::string RangePredicate(const TableInfo& table, const KeyRange& range, Params& params) {
  if (range.unbounded()) return "TRUE";
  const bool pg = table.engine == Engine::kPostgres;
  auto side = [&](const KeyTuple& t, const char* op) {
    std::string cols = "(", vals = "(";
    for (size_t i = 0; i < table.primary_key.size() && i < t.size(); ++i) {
      const ColumnInfo& c = table.columns[table.primary_key[i]];
      if (i) cols += ", ", vals += ", ";
      cols += QuoteIdent(c.name);
      params.push_back(t[i]);
      vals += fmt::format("${}", params.size());
      if (pg) vals += "::" + c.type;
    }
    return cols + ") " + op + " " + vals + ")";
  };
  std::string out;
  if (range.lower) out = side(*range.lower, ">=");
  if (range.upper) {
    if (!out.empty()) out += " AND ";
    out += side(*range.upper, "<");
  }
  return out;
}

Result<std::vector<KeyRange>> SplitByKey(Connection& conn, const TableInfo& table,
                                         const KeyRange& within, std::string_view where,
                                         int64_t rows_per_range, size_t max_ranges) {
  if (!table.has_primary_key()) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("table {}.{} has no primary key, so it cannot be split into key ranges",
                              table.schema, table.name))
        .With("table", table.name)
        .With("hint", "add a primary key (or a unique NOT NULL column made the primary key)");
  }
  rows_per_range = std::max<int64_t>(rows_per_range, 1);
  max_ranges = std::max<size_t>(max_ranges, 1);
  Params params;
  std::string predicate = RangePredicate(table, within, params);
  if (!where.empty()) predicate = fmt::format("({}) AND ({})", predicate, where);
  const std::string keys = table.KeyColumnList();
  params.push_back(std::to_string(rows_per_range));
  const std::string sql = fmt::format(
      "SELECT {keys} FROM (SELECT {keys}, row_number() OVER (ORDER BY {keys}) AS ferry_rn "
      "FROM {table} WHERE {pred}) s WHERE ferry_rn % ${n} = 1 AND ferry_rn > 1 ORDER BY ferry_rn",
      fmt::arg("keys", keys), fmt::arg("table", table.QualifiedName()), fmt::arg("pred", predicate),
      fmt::arg("n", params.size()));
  std::vector<KeyTuple> bounds;
  FERRY_RETURN_IF_ERROR(conn.Stream(sql, params, [&](const RowView& row) -> Status {
    KeyTuple t;
    t.reserve(row.fields.size());
    for (const auto& f : row.fields) t.emplace_back(f ? std::string(*f) : std::string());
    bounds.push_back(std::move(t));
    return Status();
  }));
  if (bounds.size() + 1 > max_ranges) {
    // Keep max_ranges - 1 boundaries spread evenly.
    std::vector<KeyTuple> thinned;
    const size_t keep = max_ranges - 1;
    for (size_t i = 1; i <= keep; ++i) thinned.push_back(std::move(bounds[i * bounds.size() / (keep + 1)]));
    bounds = std::move(thinned);
  }
  std::vector<KeyRange> out;
  out.reserve(bounds.size() + 1);
  std::optional<KeyTuple> lower = within.lower;
  for (auto& b : bounds) {
    out.push_back(KeyRange{lower, b});
    lower = std::move(b);
  }
  out.push_back(KeyRange{lower, within.upper});
  return out;
}

// ---- integer-key split (min/max, no index pass) ----

bool HasIntegerKey(const TableInfo& table) {
  if (table.primary_key.size() != 1) return false;
  const ColumnInfo& c = table.columns[table.primary_key[0]];
  if (c.is_array) return false;
  if (table.engine == Engine::kPostgres) {
    return c.base_type == "smallint" || c.base_type == "integer" || c.base_type == "bigint";
  }
  std::string upper;
  for (char ch : c.type) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return upper.find("INT") != std::string::npos;
}

Result<std::vector<KeyRange>> SplitIntegerKeyRange(Connection& conn, const TableInfo& table,
                                                   std::string_view where, int64_t expected_rows,
                                                   int64_t rows_per_range, size_t max_ranges) {
  if (!HasIntegerKey(table)) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("table {}.{} has no single-column integer primary key", table.schema,
                              table.name))
        .With("table", table.name);
  }
  rows_per_range = std::max<int64_t>(rows_per_range, 1);
  max_ranges = std::max<size_t>(max_ranges, 1);
  const std::string key = QuoteIdent(table.columns[table.primary_key[0]].name);
  const std::string filter = where.empty() ? "TRUE" : fmt::format("({})", where);
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query(fmt::format("SELECT min({k}), max({k}){c} FROM {t} WHERE {f}", fmt::arg("k", key),
                             fmt::arg("c", expected_rows < 0 ? ", count(*)" : ""),
                             fmt::arg("t", table.QualifiedName()), fmt::arg("f", filter))));
  if (r.rows.empty() || !r.rows[0][0] || !r.rows[0][1]) return std::vector<KeyRange>{KeyRange{}};
  if (expected_rows < 0) expected_rows = ColumnInt64(r.rows[0][2]);
  int64_t lo = 0, hi = 0;
  try {
    size_t used_lo = 0, used_hi = 0;
    lo = std::stoll(*r.rows[0][0], &used_lo);
    hi = std::stoll(*r.rows[0][1], &used_hi);
    if (used_lo != r.rows[0][0]->size() || used_hi != r.rows[0][1]->size()) throw std::invalid_argument("");
  } catch (const std::exception&) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("table {}.{}: key {} holds values that are not integers", table.schema,
                              table.name, key))
        .With("table", table.name);
  }
  const int64_t wanted = (std::max<int64_t>(expected_rows, 0) + rows_per_range - 1) / rows_per_range;
  const auto n = static_cast<int64_t>(std::min<size_t>(max_ranges, static_cast<size_t>(std::max<int64_t>(wanted, 1))));
  // Bounds lo + i * step, with one integer step for all ranges (so that a
  // reader can find a key's range by integer division), in unsigned
  // arithmetic: hi - lo may not fit a signed 64-bit value.
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);  // keys - 1
  const uint64_t step = span / static_cast<uint64_t>(n) + 1;
  std::vector<KeyRange> out;
  std::optional<KeyTuple> lower;
  for (uint64_t i = 1; i < static_cast<uint64_t>(n) && i <= span / step; ++i) {
    KeyTuple bound{std::to_string(static_cast<int64_t>(static_cast<uint64_t>(lo) + i * step))};
    out.push_back(KeyRange{lower, bound});
    lower = std::move(bound);
  }
  out.push_back(KeyRange{lower, std::nullopt});
  return out;
}

}  // namespace ferry
