// Plan of a copy from CQL to PostgreSQL (see copy_from_cql.h): reads each
// CQL table's columns and key from system_schema, maps the types
// (copy_from_cql_types.h), and checks the PostgreSQL target: an existing
// table must have the same primary key and accepting column types; a table
// with rows is refused unless the job resumes or --truncate/--restart says
// to empty it. Writes nothing, on either side.
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "core/url.h"
#include "drivers/registry.h"
#include "move/copy_from_cql.h"
#include "move/copy_from_cql_internal.h"
#include "move/cql_map.h"
#include "move/table_info.h"

namespace ferry {

bool IsCqlToPostgres(const CopyOptions& options) {
  auto from = Url::Parse(options.from_url);
  auto to = Url::Parse(options.to_url);
  if (!from.ok() || !to.ok()) return false;
  auto fe = EngineFromName(from->scheme());
  auto te = EngineFromName(to->scheme());
  return fe.ok() && te.ok() && *fe == Engine::kCql && *te == Engine::kPostgres;
}

namespace cqlback {
namespace {

std::string Names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string ColumnList(const std::vector<CqlBackColumn>& cols, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) out += (i ? ", " : "") + QuoteIdent(cols[i].name);
  return out;
}

// Columns of one CQL table in key order: partition key, clustering, others.
Result<BackTable> ReadCqlTable(Connection& cql, const std::string& keyspace, const std::string& table) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      cql.Query("SELECT column_name, kind, position, type FROM system_schema.columns "
                "WHERE keyspace_name = ? AND table_name = ?",
                {keyspace, table}));
  if (r.rows.empty()) {
    return Status(StatusCode::kNotFound,
                  fmt::format("CQL table {}.{} does not exist; check --table and the keyspace in "
                              "the --from URL",
                              keyspace, table));
  }
  struct Col {
    int group;  // 0 partition, 1 clustering, 2 other
    int position;
    std::string name, type;
  };
  std::vector<Col> cols;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const std::string& kind = r.Text(i, 1);
    int group = kind == "partition_key" ? 0 : kind == "clustering" ? 1 : 2;
    cols.push_back({group, std::atoi(r.Text(i, 2).c_str()), r.Text(i, 0), r.Text(i, 3)});
  }
  std::sort(cols.begin(), cols.end(), [](const Col& a, const Col& b) {
    if (a.group != b.group) return a.group < b.group;
    if (a.group < 2) return a.position < b.position;
    return a.name < b.name;
  });
  BackTable t;
  t.keyspace = keyspace;
  t.table = table;
  t.target = table;
  for (const Col& c : cols) {
    FERRY_ASSIGN_OR_RETURN(CqlBackColumn bc, PgColumnForCql(keyspace + "." + table, c.name, c.type));
    t.columns.push_back(std::move(bc));
    if (c.group == 0) ++t.partition_count;
    if (c.group < 2) ++t.key_count;
  }
  return t;
}

std::string CreateTableSql(const BackTable& t) {
  std::string sql = "CREATE TABLE " + QuoteIdent(t.target) + " (";
  for (size_t i = 0; i < t.columns.size(); ++i) {
    sql += fmt::format("{}\n  {} {}{}", i ? "," : "", QuoteIdent(t.columns[i].name), t.columns[i].pg_type,
                       i < t.key_count ? " NOT NULL" : "");
  }
  sql += fmt::format(",\n  PRIMARY KEY ({})\n)", ColumnList(t.columns, t.key_count));
  return sql;
}

// An existing target: same primary key, every CQL column present with a
// type that takes its values, other columns nullable or defaulted.
Status CheckTarget(const BackTable& t, const TableInfo& pg) {
  std::vector<std::string> cql_key, pg_key;
  for (size_t i = 0; i < t.key_count; ++i) cql_key.push_back(t.columns[i].name);
  for (size_t i : pg.primary_key) pg_key.push_back(pg.columns[i].name);
  if (cql_key != pg_key) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("PostgreSQL table {} has primary key ({}), but CQL table {}.{} has ({}): "
                              "rows would not match one to one; drop the table and use "
                              "--create-tables, or give it the CQL key",
                              pg.QualifiedName(), Names(pg_key), t.keyspace, t.table, Names(cql_key)));
  }
  for (const auto& c : t.columns) {
    const ColumnInfo* pc = pg.Find(c.name);
    if (pc == nullptr) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("PostgreSQL table {} has no column {} (CQL {} {}); add it as {}",
                                pg.QualifiedName(), c.name, t.table, c.cql_type, c.pg_type));
    }
    if (!PgTypeAccepts(c, pc->base_type)) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("PostgreSQL column {}.{} is {}, but CQL {} becomes {}; change the "
                                "column's type or drop the table and use --create-tables",
                                pg.QualifiedName(), c.name, pc->base_type, c.cql_type, c.pg_type));
    }
  }
  for (const auto& pc : pg.columns) {
    bool copied = std::any_of(t.columns.begin(), t.columns.end(),
                              [&](const CqlBackColumn& c) { return c.name == pc.name; });
    if (!copied && pc.not_null && !pc.default_expr && !pc.identity && !pc.generated) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("PostgreSQL column {}.{} is NOT NULL without a default and the CQL "
                                "table has no such column",
                                pg.QualifiedName(), pc.name));
    }
  }
  return Status();
}

Result<std::vector<std::string>> TableNames(const CopyOptions& o, Connection& cql,
                                            const std::string& keyspace) {
  if (!o.all) return o.tables;
  FERRY_ASSIGN_OR_RETURN(QueryResult r, cql.Query("SELECT table_name FROM system_schema.tables "
                                                  "WHERE keyspace_name = ?",
                                                  {keyspace}));
  std::vector<std::string> names;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    if (!r.Text(i, 0).starts_with("ferry_")) names.push_back(r.Text(i, 0));
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status CheckOptions(const CopyOptions& o) {
  auto bad = [](std::string m) { return Status(StatusCode::kInvalidArgument, std::move(m)); };
  if (!o.all && o.tables.empty()) return bad("name the CQL tables to copy with --table, or use --all");
  if (!o.where.empty()) return bad("--where is not available when copying from CQL: copy the whole table");
  if (o.append) return bad("--append is not available when copying from CQL: use an empty table or --truncate");
  if (o.workers < 1) return bad("--workers must be at least 1");
  return Status();
}

}  // namespace

std::string BackTable::SelectCql() const {
  std::string token = "token(" + ColumnList(columns, partition_count) + ")";
  return fmt::format("SELECT {} FROM {}.{} WHERE {} >= ? AND {} <= ?", ColumnList(columns, columns.size()),
                     QuoteIdent(keyspace), QuoteIdent(table), token, token);
}

std::string BackTable::CopySql() const {
  return fmt::format("COPY {} ({}) FROM STDIN", QuoteIdent(target), ColumnList(columns, columns.size()));
}

std::vector<std::pair<int64_t, int64_t>> TokenRanges(int n) {
  std::vector<std::pair<int64_t, int64_t>> out;
  const uint64_t width = std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(n);
  const uint64_t bias = uint64_t{1} << 63;
  for (int i = 0; i < n; ++i) {
    uint64_t a = width * static_cast<uint64_t>(i);
    uint64_t b = i == n - 1 ? std::numeric_limits<uint64_t>::max() : a + width - 1;
    out.emplace_back(static_cast<int64_t>(a - bias), static_cast<int64_t>(b - bias));
  }
  return out;
}

Result<int64_t> CountJobRanges(Connection& pg, const std::string& job_id) {
  FERRY_ASSIGN_OR_RETURN(QueryResult r, pg.Query("SELECT to_regclass('ferry_copy_ranges') IS NOT NULL"));
  if (r.empty() || r.Text(0, 0) != "t") return 0;
  FERRY_ASSIGN_OR_RETURN(QueryResult c,
                         pg.Query("SELECT count(*) FROM ferry_copy_ranges WHERE job_id = $1", {job_id}));
  return std::stoll(c.Text(0, 0));
}

Result<BackSetup> Prepare(const CopyOptions& o, Connection& cql, Connection& pg) {
  FERRY_RETURN_IF_ERROR(CheckOptions(o));
  FERRY_ASSIGN_OR_RETURN(Url from, Url::Parse(o.from_url));
  const std::string default_ks = from.database();
  BackSetup s;
  s.job_id = o.job_id.empty() ? DefaultCopyJobId(o) : o.job_id;
  s.source_display = from.Redacted();
  s.target_display = pg.redacted_url();
  s.ranges_per_table = o.workers * kRangesPerWorker;
  FERRY_ASSIGN_OR_RETURN(int64_t existing, CountJobRanges(pg, s.job_id));
  s.resumes = existing > 0 && !o.restart;
  std::optional<CqlMapping> mapping;
  if (!o.map_file.empty()) {
    FERRY_ASSIGN_OR_RETURN(mapping, LoadCqlMapping(o.map_file));
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> names, TableNames(o, cql, default_ks));
  if (names.empty()) {
    return Status(StatusCode::kNotFound, fmt::format("keyspace {} has no tables to copy", default_ks));
  }
  for (const std::string& name : names) {
    auto [ks, table] = SplitTableName(name);
    if (ks.empty()) ks = default_ks;
    if (ks.empty()) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("table {}: no keyspace; write keyspace.table or put the keyspace in "
                                "the --from URL's path",
                                name));
    }
    if (mapping) {
      for (const CqlTableMap& m : mapping->tables) {
        if (m.table == table && (m.keyspace.empty() || m.keyspace == ks)) {
          return Status(StatusCode::kInvalidArgument,
                        fmt::format("{}:{}: CQL table {}.{} was filled through a [[copy.map]] entry "
                                    "(source {}); copying back through a mapping is not supported "
                                    "yet: tables copy back one to one. Run without that entry to "
                                    "copy {} as it is in CQL",
                                    m.file, m.line, ks, table, m.source, table));
        }
      }
    }
    FERRY_ASSIGN_OR_RETURN(BackTable t, ReadCqlTable(cql, ks, table));
    auto info = DescribeTable(pg, t.target);
    if (info.ok()) {
      t.target_exists = true;
      FERRY_RETURN_IF_ERROR(CheckTarget(t, *info));
      FERRY_ASSIGN_OR_RETURN(QueryResult rows,
                             pg.Query("SELECT EXISTS (SELECT 1 FROM " + info->QualifiedName() + ")"));
      t.target_has_rows = !rows.empty() && rows.Text(0, 0) == "t";
      if (t.target_has_rows && !s.resumes && !o.truncate && !o.restart) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("PostgreSQL table {} already has rows; empty it, or add --truncate",
                                  info->QualifiedName()));
      }
    } else if (info.status().code() == StatusCode::kNotFound) {
      t.create_sql = CreateTableSql(t);
      if (!o.create_tables) {
        return Status(StatusCode::kNotFound,
                      fmt::format("PostgreSQL table {} does not exist; add --create-tables to create "
                                  "it with the CQL primary key",
                                  t.target));
      }
    } else {
      return info.status();
    }
    s.tables.push_back(std::move(t));
  }
  return s;
}

}  // namespace cqlback

Result<CopyPlan> PlanCopyFromCql(const CopyOptions& o) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> cql, OpenConnection(o.from_url, {.read_only = true}));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> pg, OpenConnection(o.to_url));
  FERRY_ASSIGN_OR_RETURN(cqlback::BackSetup s, cqlback::Prepare(o, *cql, *pg));
  CopyPlan plan;
  plan.job_id = s.job_id;
  plan.source = s.source_display;
  plan.target = s.target_display;
  plan.resumes = s.resumes;
  for (const auto& t : s.tables) {
    CopyTablePlan tp;
    tp.source_name = t.keyspace + "." + t.table;
    tp.target_name = t.target;
    tp.split = "token ranges";
    tp.chunks = s.ranges_per_table;
    tp.target_exists = t.target_exists;
    tp.target_has_rows = t.target_has_rows;
    if (!t.create_sql.empty()) tp.ddl.push_back(t.create_sql);
    tp.ddl.push_back("-- per range, paged:\n" + t.SelectCql());
    tp.ddl.push_back("-- into PostgreSQL:\n" + t.CopySql());
    plan.tables.push_back(std::move(tp));
  }
  return plan;
}

}  // namespace ferry
