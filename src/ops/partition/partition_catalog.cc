#include "ops/partition/partition_catalog.h"

#include "core/numbers.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "drivers/registry.h"

namespace ferry::partition {
namespace {

// "FOR VALUES FROM ('a') TO ('b')" -> the range; kInvalidArgument for other
// shapes (multi-column keys, LIST or HASH bounds).
Result<Range> ParseRangeBound(KeyKind kind, const std::string& bound) {
  const std::string from = "FOR VALUES FROM (";
  const std::string to = ") TO (";
  size_t mid = bound.find(to);
  if (!bound.starts_with(from) || mid == std::string::npos || !bound.ends_with(")")) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("partition bound '{}' is not a one-column range", bound));
  }
  std::string lo = bound.substr(from.size(), mid - from.size());
  std::string hi = bound.substr(mid + to.size(), bound.size() - 1 - mid - to.size());
  FERRY_ASSIGN_OR_RETURN(int64_t lower, ParseBound(kind, lo));
  FERRY_ASSIGN_OR_RETURN(int64_t upper, ParseBound(kind, hi));
  return Range{lower, upper};
}

// Whether a key of type `kind` suits `interval`; the fix otherwise.
std::string TypeMismatch(const PartitionSpec& spec, const std::string& type, KeyKind kind) {
  if (spec.interval.is_time() && kind == KeyKind::kInteger) {
    return fmt::format(
        "{}: column {} is {}, but interval = \"{}\" needs a timestamp, timestamptz "
        "or date key: write an integer step (e.g. interval = \"100000\") for an "
        "integer key",
        spec.origin, spec.column, type, IntervalText(spec.interval));
  }
  if (!spec.interval.is_time() && kind != KeyKind::kInteger) {
    return fmt::format(
        "{}: column {} is {}, but interval = \"{}\" is an integer step: write "
        "interval = \"day\", \"week\", \"month\" or \"year\" for a time key",
        spec.origin, spec.column, type, IntervalText(spec.interval));
  }
  return "";
}

Status ReadChildren(Connection& conn, ParentTable* parent) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query("SELECT n.nspname, c.relname, pg_get_expr(c.relpartbound, c.oid), "
                 "i.inhdetachpending, c.reltuples::bigint, pg_total_relation_size(c.oid) "
                 "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                 "JOIN pg_namespace n ON n.oid = c.relnamespace "
                 "WHERE i.inhparent = $1::oid ORDER BY c.relname",
                 {std::to_string(parent->oid)}));
  for (size_t i = 0; i < r.rows.size(); ++i) {
    ChildPartition c;
    c.schema = r.Text(i, 0);
    c.name = r.Text(i, 1);
    c.bound = r.Text(i, 2);
    c.detach_pending = r.Text(i, 3) == "t";
    c.estimated_rows = LeadingInt64(r.Text(i, 4), -1);
    c.bytes = LeadingInt64(r.Text(i, 5), 0);
    if (c.bound == "DEFAULT") {
      c.is_default = true;
      parent->default_child = c;
      continue;
    }
    auto range = ParseRangeBound(parent->key, c.bound);
    if (!range.ok()) {
      Status s = range.status();
      return std::move(s).With("partition", c.Qualified());
    }
    c.range = *range;
    parent->children.push_back(std::move(c));
  }
  std::sort(parent->children.begin(), parent->children.end(),
            [](const ChildPartition& a, const ChildPartition& b) {
              return a.range.lower < b.range.lower;
            });
  return Status();
}

}  // namespace

std::string ChildPartition::Qualified() const {
  return QuoteIdent(schema) + "." + QuoteIdent(name);
}
std::string ParentTable::Qualified() const { return QuoteIdent(schema) + "." + QuoteIdent(name); }

Result<std::unique_ptr<Connection>> OpenPartitionSession(const std::string& url,
                                                         std::chrono::milliseconds lock_timeout) {
  ConnectOptions options;
  options.application_name = "ferry partition";
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenConnection(url, options));
  if (!conn->traits().Has(Feature::kDeclarativePartitions)) {
    return Status(StatusCode::kUnimplemented,
                  fmt::format("{} has no declarative partitions: ferry partition works on "
                              "PostgreSQL",
                              conn->redacted_url()));
  }
  FERRY_RETURN_IF_ERROR(conn->Exec(fmt::format("SET TimeZone = 'UTC'; SET lock_timeout = '{}ms'",
                                               lock_timeout.count()))
                            .status());
  return conn;
}

Result<ParentTable> ReadParent(Connection& conn, const PartitionSpec& spec) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query("SELECT c.oid, n.nspname, c.relname, pt.partstrat, pt.partnatts, "
                 "a.attname, format_type(a.atttypid, a.atttypmod), "
                 "(SELECT format_type(b.atttypid, b.atttypmod) FROM pg_attribute b "
                 "  WHERE b.attrelid = c.oid AND b.attname = $2 AND b.attnum > 0 "
                 "  AND NOT b.attisdropped) "
                 "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                 "LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid "
                 "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0] "
                 "WHERE c.oid = to_regclass($1)",
                 {QuoteQualified(spec.table), spec.column}));
  if (r.empty()) {
    return Status(StatusCode::kNotFound,
                  fmt::format("{}: table {} does not exist: create it PARTITION BY RANGE ({}) in "
                              "a migration, or correct table = in ferry.toml",
                              spec.origin, spec.table, spec.column));
  }
  ParentTable p;
  p.oid = static_cast<uint32_t>(LeadingInt64(r.Text(0, 0), 0));
  p.schema = r.Text(0, 1);
  p.name = r.Text(0, 2);
  const std::string& strategy = r.Text(0, 3);
  const std::string& key_column = r.Text(0, 5);
  const std::string& named_type = r.Text(0, 7);
  if (strategy.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}: table {} is not partitioned: create it with PARTITION BY RANGE "
                              "({}) (converting an existing table is not done by ferry yet)",
                              spec.origin, spec.table, spec.column));
  }
  if (strategy != "r" || r.Text(0, 4) != "1" || key_column.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}: table {} is not partitioned by RANGE on one column: ferry "
                              "keeps RANGE partitions on a single column only",
                              spec.origin, spec.table));
  }
  if (r.IsNull(0, 7)) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}: column '{}' does not exist in {}: the table is partitioned by "
                              "RANGE ({}); set column = \"{}\"",
                              spec.origin, spec.column, spec.table, key_column, key_column));
  }
  if (key_column != spec.column) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}: table {} is partitioned by RANGE ({}), not ({}): set column = "
                              "\"{}\"",
                              spec.origin, spec.table, key_column, spec.column, key_column));
  }
  p.column = key_column;
  p.column_type = named_type;
  std::optional<KeyKind> kind = KeyKindFromType(named_type);
  if (!kind) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}: column {} is {}: ferry keeps partitions on timestamp, "
                              "timestamptz, date, smallint, integer or bigint keys",
                              spec.origin, spec.column, named_type));
  }
  if (std::string why = TypeMismatch(spec, named_type, *kind); !why.empty()) {
    return Status(StatusCode::kInvalidArgument, why);
  }
  p.key = *kind;
  FERRY_ASSIGN_OR_RETURN(
      QueryResult cols,
      conn.Query("SELECT attname FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 "
                 "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
                 {std::to_string(p.oid)}));
  for (size_t i = 0; i < cols.rows.size(); ++i) p.columns.push_back(cols.Text(i, 0));
  FERRY_RETURN_IF_ERROR(ReadChildren(conn, &p));
  return p;
}

Result<int64_t> MaxKey(Connection& conn, const ParentTable& parent) {
  FERRY_ASSIGN_OR_RETURN(QueryResult r,
                         conn.Query(fmt::format("SELECT max({})::bigint FROM {}",
                                                QuoteIdent(parent.column), parent.Qualified())));
  return r.IsNull(0, 0) ? 0 : LeadingInt64(r.Text(0, 0), 0);
}

Result<int64_t> CountInRange(Connection& conn, const std::string& table, const ParentTable& parent,
                             const Range& range) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query(fmt::format("SELECT count(*) FROM {} WHERE {} >= $1::{} AND {} < $2::{}", table,
                             QuoteIdent(parent.column), parent.column_type,
                             QuoteIdent(parent.column), parent.column_type),
                 {BoundText(parent.key, range.lower), BoundText(parent.key, range.upper)}));
  return LeadingInt64(r.Text(0, 0), 0);
}

Result<int64_t> CountRows(Connection& conn, const std::string& table) {
  FERRY_ASSIGN_OR_RETURN(QueryResult r, conn.Query("SELECT count(*) FROM " + table));
  return LeadingInt64(r.Text(0, 0), 0);
}

Result<Relation> FindRelation(Connection& conn, const std::string& schema,
                              const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query("SELECT c.relispartition FROM pg_class c JOIN pg_namespace n ON n.oid = "
                 "c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                 {schema, name}));
  if (r.empty()) return Relation{};
  return Relation{true, r.Text(0, 0) == "t"};
}

Result<bool> SchemaExists(Connection& conn, const std::string& schema) {
  FERRY_ASSIGN_OR_RETURN(QueryResult r,
                         conn.Query("SELECT 1 FROM pg_namespace WHERE nspname = $1", {schema}));
  return !r.empty();
}

}  // namespace ferry::partition
