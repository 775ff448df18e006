// Table introspection and primary-key ranges: what copy, verify and backfill
// share.
//
// DescribeTable() reads a table's columns, types and primary key from the
// catalog of either engine (PostgreSQL: pg_catalog; SQLite: pragma
// table_xinfo). KeyRange is a half-open interval of primary-key tuples,
// rendered as a row-value comparison with bound parameters so that the
// database walks the primary-key index (keyset, never OFFSET).
// SplitByKey() cuts a table (or a range of it) into ranges of about N rows.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <string_view>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"

namespace ferry {

struct ColumnInfo {
  std::string name;
  // The type as the engine spells it: PostgreSQL format_type()
  // ("numeric(20,4)", "timestamp with time zone", "integer[]", "mood"),
  // SQLite the declared type ("INTEGER", "TEXT", "" when none).
  std::string type;
  // PostgreSQL: the type OID, and for domains the base type's name and OID;
  // 0 / "" on SQLite.
  uint32_t type_oid = 0;
  std::string base_type;   // domain's base type (format_type), else == type
  uint32_t base_oid = 0;   // domain's base OID, else == type_oid
  // PostgreSQL typtype of the base type: 'b' base, 'e' enum, 'c' composite,
  // 'r' range, 'm' multirange; 'b' on SQLite. Arrays have is_array = true.
  char kind = 'b';
  bool is_array = false;
  bool not_null = false;
  bool generated = false;  // GENERATED ALWAYS AS (...) STORED: never written
  // PostgreSQL identity column: 'a' (GENERATED ALWAYS: inserts of explicit
  // values need OVERRIDING SYSTEM VALUE), 'd' (BY DEFAULT), 0 when not.
  char identity = 0;
  std::optional<std::string> default_expr;  // as the catalog prints it
  int pk_position = 0;     // 1-based position in the primary key, 0 if not in it
};

struct TableInfo {
  Engine engine = Engine::kSqlite;
  std::string schema;  // "public" (PostgreSQL), "main" (SQLite)
  std::string name;
  std::vector<ColumnInfo> columns;  // in attribute order
  std::vector<size_t> primary_key;  // indexes into columns, in key order
  // Planner's estimate (pg_class.reltuples; -1 when never analyzed) and size
  // on disk (pg_total_relation_size); SQLite: -1 / -1 (count when needed).
  int64_t estimated_rows = -1;
  int64_t estimated_bytes = -1;
  // PostgreSQL: a partitioned table (relkind 'p'): it holds no rows itself,
  // COPY t TO fails on it (COPY (SELECT ...) works) and its partitions hold
  // the pages.
  bool partitioned = false;

  bool has_primary_key() const { return !primary_key.empty(); }
  // "\"schema\".\"name\"" on PostgreSQL, "\"name\"" on SQLite.
  std::string QualifiedName() const;
  // Column by name, or nullptr.
  const ColumnInfo* Find(std::string_view column) const;
  // Quoted primary-key column list: "\"a\", \"b\"".
  std::string KeyColumnList() const;
  // Quoted list of all columns that can be written (not generated).
  std::string WritableColumnList() const;
};

// `name` is "table" or "schema.table" (PostgreSQL: unqualified names follow
// search_path, like the server does). kNotFound names the table and lists
// near matches when there are some.
Result<TableInfo> DescribeTable(Connection& conn, std::string_view name);

// `schema.name` (or `name` when schema is empty) as DescribeTable reads it
// back: a part holding '.', '"' or a character outside [A-Za-z0-9_ \t] is
// double-quoted ("a.b" -> "\"a.b\"").
std::string TableNameFor(std::string_view schema, std::string_view name);

// Splits such a name at the first dot outside double quotes and unquotes
// each part: {"", "t"}, {"public", "a.b"}.
std::pair<std::string, std::string> SplitTableName(std::string_view name);

// User tables: PostgreSQL schemas other than pg_catalog/information_schema/
// pg_toast, as "schema.table" (TableNameFor); SQLite tables other than sqlite_*. Tables whose
// name starts with "ferry_" (history, control tables) are left out.
Result<std::vector<std::string>> ListTables(Connection& conn);

// One primary-key tuple, in text form (nullopt never appears: keys are NOT NULL).
using KeyTuple = std::vector<std::string>;

// Half-open range [lower, upper) of primary-key tuples; an absent bound is
// open (minus or plus infinity).
struct KeyRange {
  std::optional<KeyTuple> lower;  // inclusive
  std::optional<KeyTuple> upper;  // exclusive

  bool unbounded() const { return !lower && !upper; }
  // Text for humans and JSON: "[(1), (5001))", "[-inf, +inf)".
  std::string ToString() const;
  // Encodes/decodes for the control tables (JSON arrays of strings or null).
  std::string Encode() const;
  static Result<KeyRange> Decode(std::string_view text);
};

// SQL predicate for `range` over the table's primary key, appending the bound
// values to `params` ($N numbering continues from params.size()+1).
// "TRUE" when unbounded. Uses row-value comparison "(a, b) >= ($1, $2)", with
// each parameter cast to its column's type on PostgreSQL ("$1::integer").
std::string RangePredicate(const TableInfo& table, const KeyRange& range, Params& params);

// Splits the rows of `table` inside `within` that match `where` (SQL, "" for
// all rows) into consecutive ranges of about `rows_per_range` rows each,
// covering `within` entirely (the first range starts at within.lower, the
// last ends at within.upper). Reads only the primary-key index. Requires a
// primary key (kFailedPrecondition naming the table otherwise).
// `max_ranges` caps the count (boundaries are then spread further apart).
Result<std::vector<KeyRange>> SplitByKey(Connection& conn, const TableInfo& table,
                                         const KeyRange& within, std::string_view where,
                                         int64_t rows_per_range, size_t max_ranges = 100000);

// True when the table's primary key is one integer column (PostgreSQL
// smallint/integer/bigint, or a domain over one; SQLite a declared type
// containing "INT"), the case SplitIntegerKeyRange() handles.
bool HasIntegerKey(const TableInfo& table);

// Cheap split for an integer key: reads min and max of the key among the rows
// matching `where` (two index probes, no pass over the index) and cuts
// [min, max] into ranges of equal width (bound i is min + i * step, one
// integer step, so a key's range is found by integer division), about
// `expected_rows / rows_per_range` of them (at most `max_ranges`). The first range is open
// below and the last open above, so together they cover every key, also keys
// added later. Ranges hold about equal rows when keys are dense; gaps in the
// key space make some ranges smaller (never incorrect). `expected_rows` < 0:
// counted. kFailedPrecondition when !HasIntegerKey(table) or a key value is
// not an integer (SQLite's loose typing).
Result<std::vector<KeyRange>> SplitIntegerKeyRange(Connection& conn, const TableInfo& table,
                                                   std::string_view where, int64_t expected_rows,
                                                   int64_t rows_per_range,
                                                   size_t max_ranges = 100000);

}  // namespace ferry
