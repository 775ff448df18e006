// Conversion catalog: reads the original table and refuses what an online
// conversion cannot carry over. Read-only.
//
// In:  a declaration ([[partitions]]) and its table.
// Out: SourceTable (columns, key, constraints and indexes to re-create,
//      sequences to re-own) and the ranges the shadow gets.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "ops/partition/partition_convert_internal.h"
#include "core/numbers.h"

namespace ferry::partition {
namespace {

Status Refuse(const std::string& table, const std::string& why) {
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("cannot convert {} online: {}; nothing was changed", table, why));
}

std::string Names(const QueryResult& r, size_t col) {
  std::string out;
  for (size_t i = 0; i < r.rows.size(); ++i) out += (out.empty() ? "" : ", ") + r.Text(i, col);
  return out;
}

// The key column's type, checked against the interval.
Status ReadKey(Connection& conn, const ResolvedTable& table, const PartitionSpec& spec,
               SourceTable* t) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r, conn.Query("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                                "attrelid = $1::oid AND attname = $2 AND attnum > 0 AND NOT "
                                "attisdropped",
                                {std::to_string(table.oid), spec.column}));
  std::string dotted = table.schema + "." + table.name;
  if (r.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}: column '{}' does not exist in {}: set column = to the column "
                              "to partition by",
                              spec.origin, spec.column, dotted));
  }
  std::optional<KeyKind> kind = KeyKindFromType(r.Text(0, 0));
  if (!kind || spec.interval.is_time() != (*kind != KeyKind::kInteger)) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}: column {} is {}, which does not suit interval = \"{}\": time "
                              "intervals need a timestamp, timestamptz or date key, an integer "
                              "step an integer key",
                              spec.origin, spec.column, r.Text(0, 0),
                              IntervalText(spec.interval)));
  }
  t->key = *kind;
  return Status();
}

Status ReadColumnsAndKey(Connection& conn, const ResolvedTable& table, SourceTable* t) {
  std::string oid = std::to_string(table.oid);
  std::string dotted = table.schema + "." + table.name;
  FERRY_ASSIGN_OR_RETURN(
      QueryResult cols,
      conn.Query("SELECT attname, attidentity <> '' FROM pg_attribute WHERE attrelid = $1::oid "
                 "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
                 {oid}));
  for (size_t i = 0; i < cols.rows.size(); ++i) {
    if (cols.Text(i, 1) == "t") {
      return Refuse(dotted, fmt::format("column {} is an identity column, which the new table "
                                        "could not continue; make it a sequence default first "
                                        "(ALTER TABLE {} ALTER COLUMN {} DROP IDENTITY, then "
                                        "CREATE SEQUENCE and SET DEFAULT nextval(...))",
                                        cols.Text(i, 0), dotted, cols.Text(i, 0)));
    }
    t->columns.push_back(cols.Text(i, 0));
  }
  FERRY_ASSIGN_OR_RETURN(
      QueryResult pk,
      conn.Query("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index i, "
                 "unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a "
                 "ON a.attrelid = $1::oid AND a.attnum = k.attnum WHERE i.indrelid = $1::oid "
                 "AND i.indisprimary ORDER BY k.ord",
                 {oid}));
  if (pk.empty()) {
    return Refuse(dotted, fmt::format("it has no primary key, which the copy walks and the "
                                      "triggers match rows by; add one that includes {} "
                                      "(ALTER TABLE {} ADD PRIMARY KEY (id, {}))",
                                      t->column, dotted, t->column));
  }
  for (size_t i = 0; i < pk.rows.size(); ++i) {
    t->pk.push_back(pk.Text(i, 0));
    t->pk_types.push_back(pk.Text(i, 1));
  }
  if (std::find(t->pk.begin(), t->pk.end(), t->column) == t->pk.end()) {
    return Refuse(dotted,
                  fmt::format("its primary key ({}) does not include the partition column {}, "
                              "and PostgreSQL requires every primary key and unique constraint "
                              "of a partitioned table to include it; widen the key first in a "
                              "migration (ALTER TABLE {} DROP CONSTRAINT <pkey>, ADD PRIMARY KEY "
                              "({}, {}))",
                              Names(pk, 0), t->column, dotted, Names(pk, 0), t->column));
  }
  return Status();
}

// Primary key and unique constraints, other indexes, and foreign keys out of
// the table: to re-create on the shadow. Unique ones must hold the key.
Status ReadIndexes(Connection& conn, const ResolvedTable& table, SourceTable* t) {
  std::string oid = std::to_string(table.oid);
  std::string dotted = table.schema + "." + table.name;
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query("SELECT ic.relname, i.indisunique, EXISTS (SELECT 1 FROM pg_attribute a WHERE "
                 "a.attrelid = i.indrelid AND a.attname = $2 AND "
                 "a.attnum = ANY(i.indkey::int2[])), "
                 "k.contype, pg_get_constraintdef(k.oid), pg_get_indexdef(i.indexrelid) "
                 "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
                 "LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = "
                 "i.indrelid WHERE i.indrelid = $1::oid ORDER BY ic.relname",
                 {oid, t->column}));
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const std::string& name = r.Text(i, 0);
    if (r.Text(i, 1) == "t" && r.Text(i, 2) != "t") {
      return Refuse(dotted, fmt::format("unique index {} does not include the partition column "
                                        "{}, which PostgreSQL requires on a partitioned table; "
                                        "add {} to it or drop it first",
                                        name, t->column, t->column));
    }
    const std::string& contype = r.Text(i, 3);
    if (contype == "p" || contype == "u") {
      t->constraint_defs.push_back(name + "|" + r.Text(i, 4));
    } else if (!contype.empty()) {
      return Refuse(dotted, fmt::format("constraint {} ({}) cannot be carried to a partitioned "
                                        "table by ferry; drop it first",
                                        name, r.Text(i, 4)));
    } else {
      t->index_defs.push_back(name + "|" + r.Text(i, 5));
    }
  }
  FERRY_ASSIGN_OR_RETURN(
      QueryResult fks, conn.Query("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                                  "WHERE conrelid = $1::oid AND contype = 'f' ORDER BY conname",
                                  {oid}));
  for (size_t i = 0; i < fks.rows.size(); ++i) {
    t->foreign_keys.push_back(fks.Text(i, 0) + "|" + fks.Text(i, 1));
  }
  return Status();
}

// What would point at the old table after the swap: foreign keys from other
// tables, views; and the table's own triggers, which the shadow lacks.
Status RefuseDependents(Connection& conn, const ResolvedTable& table) {
  std::string oid = std::to_string(table.oid);
  std::string dotted = table.schema + "." + table.name;
  FERRY_ASSIGN_OR_RETURN(
      QueryResult fk, conn.Query("SELECT conname || ' on ' || conrelid::regclass::text FROM "
                                 "pg_constraint WHERE confrelid = $1::oid AND contype = 'f' "
                                 "ORDER BY 1",
                                 {oid}));
  if (!fk.empty()) {
    return Refuse(dotted, fmt::format("foreign keys reference it ({}), and they would keep "
                                      "pointing at the old table after the swap; drop them "
                                      "first and re-create them afterwards against the "
                                      "partitioned table (their columns must then include the "
                                      "partition column)",
                                      Names(fk, 0)));
  }
  FERRY_ASSIGN_OR_RETURN(
      QueryResult views,
      conn.Query("SELECT DISTINCT v.oid::regclass::text FROM pg_depend d JOIN pg_rewrite w ON "
                 "w.oid = d.objid JOIN pg_class v ON v.oid = w.ev_class WHERE d.refobjid = "
                 "$1::oid AND d.classid = 'pg_rewrite'::regclass AND v.oid <> $1::oid ORDER BY 1",
                 {oid}));
  if (!views.empty()) {
    return Refuse(dotted, fmt::format("views use it ({}), and they would keep reading the old "
                                      "table after the swap; drop them first and re-create "
                                      "them afterwards",
                                      Names(views, 0)));
  }
  FERRY_ASSIGN_OR_RETURN(
      QueryResult trig,
      conn.Query("SELECT tgname FROM pg_trigger WHERE tgrelid = $1::oid AND NOT tgisinternal AND "
                 "tgname <> 'ferry_partition_sync' ORDER BY 1",
                 {oid}));
  if (!trig.empty()) {
    return Refuse(dotted, fmt::format("it has triggers of its own ({}), which the partitioned "
                                      "table would not have; drop them first and re-create them "
                                      "after the conversion",
                                      Names(trig, 0)));
  }
  return Status();
}

Status ReadSequences(Connection& conn, const ResolvedTable& table, SourceTable* t) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query("SELECT n.nspname || '.' || c.relname, a.attname FROM pg_depend d JOIN pg_class "
                 "c ON c.oid = d.objid AND c.relkind = 'S' JOIN pg_namespace n ON n.oid = "
                 "c.relnamespace JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = "
                 "d.refobjsubid WHERE d.refobjid = $1::oid AND d.classid = 'pg_class'::regclass "
                 "AND d.deptype = 'a' ORDER BY 1",
                 {std::to_string(table.oid)}));
  for (size_t i = 0; i < r.rows.size(); ++i) {
    t->sequences.push_back(r.Text(i, 0) + "|" + r.Text(i, 1));
  }
  return Status();
}

}  // namespace

Result<ResolvedTable> ResolveTable(Connection& conn, const std::string& table) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query("SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c JOIN "
                 "pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
                 {QuoteQualified(table)}));
  ResolvedTable out;
  if (r.empty()) return out;
  out.exists = true;
  out.oid = static_cast<uint32_t>(LeadingInt64(r.Text(0, 0)));
  out.schema = r.Text(0, 1);
  out.name = r.Text(0, 2);
  out.relkind = r.Text(0, 3).empty() ? 'r' : r.Text(0, 3)[0];
  return out;
}

Result<SourceTable> ReadSource(Connection& conn, const ResolvedTable& table,
                               const PartitionSpec& spec) {
  SourceTable t;
  t.schema = table.schema;
  t.name = table.name;
  t.column = spec.column;
  std::string dotted = table.schema + "." + table.name;
  if (table.relkind != 'r') {
    return Refuse(dotted, fmt::format("it is not an ordinary table (relkind '{}')",
                                      std::string(1, table.relkind)));
  }
  FERRY_RETURN_IF_ERROR(ReadKey(conn, table, spec, &t));
  FERRY_RETURN_IF_ERROR(ReadColumnsAndKey(conn, table, &t));
  FERRY_RETURN_IF_ERROR(ReadIndexes(conn, table, &t));
  FERRY_RETURN_IF_ERROR(RefuseDependents(conn, table));
  FERRY_RETURN_IF_ERROR(ReadSequences(conn, table, &t));
  return t;
}

Result<std::vector<Range>> ShadowRanges(Connection& conn, const SourceTable& t,
                                        const PartitionSpec& spec, std::optional<int64_t> now) {
  std::string col = QuoteIdent(t.column);
  std::string as_key = t.key == KeyKind::kInteger
                           ? "{}({})::bigint"
                           : "floor(extract(epoch from {}({})))::bigint";
  std::string lo = fmt::format(fmt::runtime(as_key), "min", col);
  std::string hi = fmt::format(fmt::runtime(as_key), "max", col);
  FERRY_ASSIGN_OR_RETURN(QueryResult r,
                         conn.Query(fmt::format("SELECT {}, {} FROM {}.{}", lo, hi,
                                                QuoteIdent(t.schema), QuoteIdent(t.name))));
  bool empty = r.IsNull(0, 0);
  int64_t min_key = empty ? 0 : LeadingInt64(r.Text(0, 0));
  int64_t max_key = empty ? 0 : LeadingInt64(r.Text(0, 1));
  int64_t at = spec.interval.is_time()
                   ? now.value_or(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count())
                   : max_key;
  std::vector<Range> wanted = WantedRanges(spec.interval, at, spec.premake);
  int64_t start = wanted.front().lower;
  int64_t end = wanted.back().upper;
  if (!empty) {
    start = std::min(start, FloorTo(spec.interval, min_key));
    end = std::max(end, NextStart(spec.interval, FloorTo(spec.interval, max_key)));
  }
  std::vector<Range> out;
  for (int64_t lower = start; lower < end;) {
    int64_t upper = NextStart(spec.interval, lower);
    out.push_back(Range{lower, upper});
    lower = upper;
    if (out.size() > kMaxPartitions) {
      return Refuse(t.schema + "." + t.name,
                    fmt::format("its keys span more than {} partitions of interval \"{}\" (from "
                                "{} to {}); choose a wider interval, or delete the outlying "
                                "rows first",
                                kMaxPartitions, IntervalText(spec.interval),
                                BoundText(t.key, start), BoundText(t.key, end)));
    }
  }
  return out;
}

std::string ControlTable(const std::string& schema) {
  return QuoteIdent(schema) + ".ferry_partition_conversions";
}

Status EnsureControl(Connection& conn, const std::string& schema) {
  return conn
      .Exec(fmt::format(
          "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, column_name text NOT "
          "NULL, phase text NOT NULL CHECK (phase IN ('shadow_created', 'triggers_installed', "
          "'copying', 'verified', 'swapped', 'done', 'aborted')), last_key text[], rows_copied "
          "bigint NOT NULL DEFAULT 0, rows_verified bigint NOT NULL DEFAULT 0, started_at "
          "timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())",
          ControlTable(schema)))
      .status();
}

Result<ControlRow> ReadControl(Connection& conn, const ResolvedTable& table) {
  ControlRow row;
  FERRY_ASSIGN_OR_RETURN(QueryResult exists,
                         conn.Query("SELECT to_regclass($1) IS NOT NULL",
                                    {ControlTable(table.schema)}));
  if (exists.Text(0, 0) != "t") return row;
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query(fmt::format("SELECT phase, rows_copied, rows_verified, k.v FROM {} LEFT JOIN "
                             "LATERAL unnest(last_key) WITH ORDINALITY k(v, ord) ON true WHERE "
                             "table_name = $1 ORDER BY k.ord",
                             ControlTable(table.schema)),
                 {table.schema + "." + table.name}));
  if (r.empty()) return row;
  row.phase = ConvertPhaseFromName(r.Text(0, 0));
  row.rows_copied = LeadingInt64(r.Text(0, 1));
  row.rows_verified = LeadingInt64(r.Text(0, 2));
  for (size_t i = 0; i < r.rows.size(); ++i) {
    if (!r.IsNull(i, 3)) row.last_key.push_back(r.Text(i, 3));
  }
  return row;
}

}  // namespace ferry::partition
