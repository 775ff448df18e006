// Mapping of relational tables onto CQL tables, for ferry copy from
// PostgreSQL to Cassandra/ScyllaDB (and for the tools that read CQL back or
// compare the two sides: they resolve the same mapping).
//
// Declared in TOML, as [[copy.map]] entries of ferry.toml or of a file given
// with --map (format and examples in docs/copy.md):
//
//   [[copy.map]]
//   source = "public.messages"            # the PostgreSQL table
//   target = "chat.messages_by_room"      # keyspace.table
//   partition_key = ["room_id", "bucket"]
//   clustering = ["created_at DESC", "message_id ASC"]
//   ttl = 2592000                         # seconds; optional
//   write_timestamp = "updated_at"        # USING TIMESTAMP from a source column
//   replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
//   [copy.map.columns]                    # target = "expression", in order
//   room_id = "room_id"
//   bucket = "day(created_at)"
//   created_at = "created_at"
//   message_id = "id"
//   body = "content"                      # renamed
//
// Expressions: a source column name, or day(col) (a CQL date: the UTC day of
// a timestamp or date column), month(col) (the date of the first day of the
// UTC month), hour(col) (a CQL timestamp cut to the UTC hour), text(col) (the
// column's PostgreSQL text form, as CQL text: the way to copy a type that
// has no CQL counterpart).
//
// A table without an entry maps one to one (ResolveCqlTarget with no map):
// keyspace from the CQL URL, same table and column names, its primary key's
// first column the partition key, the other key columns clustering columns
// (ascending), nearest CQL types (CqlTypeFor, table in docs/copy.md).
//
// Pure logic (no connection); unit-tested in tests/unit/cql_map_test.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "move/table_info.h"

namespace ferry {

enum class CqlOrder { kAsc, kDesc };

// How a target value is computed from the source row.
enum class CqlExpr { kColumn, kDay, kMonth, kHour, kText };

// How the PostgreSQL text of a value becomes the CQL text form (cql_types.h).
enum class CqlValueKind {
  kPlain,      // same text: integers, decimal, text, uuid, date, time, json
  kBool,       // t/f -> true/false
  kFloat,      // NaN/Infinity as CQL spells them
  kNumeric,    // NaN/Infinity are lossy
  kBytea,      // \x0aff -> 0x0aff
  kTimestamp,  // ISO, UTC; sub-millisecond digits are lossy
  kDate,       // infinity / BC refused
  kInet,       // a netmask is lossy
  kInterval,   // "months,days,micros" -> 1mo2d3us
  kArray,      // {a,b} -> ['a', 'b'] (elements by element_kind)
};

// One entry as declared (before the source table is known).
struct CqlTableMap {
  std::string source;  // "schema.table" or "table"
  std::string keyspace, table;
  std::vector<std::string> partition_key;
  std::vector<std::pair<std::string, CqlOrder>> clustering;
  std::vector<std::pair<std::string, std::string>> columns;  // target, expression; file order
  std::vector<int> column_lines;                             // same order
  std::optional<int64_t> ttl;
  std::string write_timestamp;  // source column ("" for the server's time)
  std::string replication;      // CQL map literal ("" for the default)
  std::string file;             // where it was declared
  int line = 0;
};

struct CqlMapping {
  std::vector<CqlTableMap> tables;
  // The entry for a source table (schema may be "" or "public"), or nullptr.
  const CqlTableMap* Find(std::string_view schema, std::string_view name) const;
};

// Parses [[copy.map]] entries from TOML text; `file` names it in errors
// ("map.toml:7: ..."). Text without a copy.map section yields no entries.
Result<CqlMapping> ParseCqlMapping(std::string_view toml_text, std::string_view file);
// Reads and parses a file (kNotFound when it does not exist).
Result<CqlMapping> LoadCqlMapping(const std::string& path);

// One target column, resolved.
struct CqlColumn {
  std::string name;       // CQL column
  std::string cql_type;   // "int", "list<text>", ...
  CqlExpr expr = CqlExpr::kColumn;
  std::string source;     // source column it reads
  std::string select;     // PostgreSQL expression that reads it (quoted identifiers)
  CqlValueKind kind = CqlValueKind::kPlain;
  CqlValueKind element_kind = CqlValueKind::kPlain;  // kArray: the elements'
  bool element_quoted = false;                       // kArray: elements are CQL string literals
};

// A source table's target: what --create-tables creates, what INSERT writes,
// and the per-row converter.
struct CqlTarget {
  std::string keyspace, table;
  std::vector<CqlColumn> columns;  // partition key, clustering, then the others
  size_t partition_count = 0, clustering_count = 0;
  std::vector<CqlOrder> clustering_order;
  std::optional<int64_t> ttl;
  std::string write_timestamp;   // source column, "" when none
  std::string replication;       // CQL map literal
  bool allow_lossy = false;

  // "\"ks\".\"t\"" and the statements.
  std::string QualifiedName() const;
  std::string CreateKeyspaceCql() const;
  std::string CreateTableCql() const;
  // INSERT INTO ... (cols) VALUES (?, ...) [USING TTL ? AND TIMESTAMP ?].
  std::string InsertCql() const;
  // The SELECT list on the source: one expression per target column, then
  // the write timestamp in microseconds (when mapped).
  std::vector<std::string> SelectList() const;

  // Source row (text of SelectList(), in that order) -> INSERT parameters.
  // A NULL key column, a value that cannot convert, or a lossy value without
  // allow_lossy is kInvalidArgument naming the column.
  Status ConvertRow(const std::vector<std::optional<std::string_view>>& row, Params* out) const;
};

// Resolves `map` (nullptr: one to one) against the source table. Every
// refusal names the map file and line (or the table and column) and what
// to do: a key column not among the columns, an unknown source column, a
// type that cannot convert, a lossy type without `allow_lossy`, a one-to-one
// table without a primary key, no keyspace.
Result<CqlTarget> ResolveCqlTarget(const TableInfo& source, const CqlTableMap* map,
                                   std::string_view default_keyspace, bool allow_lossy);

// The CQL type of a PostgreSQL column and how its values convert;
// kInvalidArgument naming table and column when there is none (composite,
// range types, multi-dimensional use of arrays is found per value), or when
// the type is always lossy (time with time zone) and !allow_lossy.
Result<CqlColumn> CqlColumnFor(const ColumnInfo& pg_column, std::string_view table,
                               bool allow_lossy);

// PostgreSQL text -> CQL text form for one scalar value (exposed for tests).
Result<std::string> ConvertCqlValue(CqlValueKind kind, std::string_view pg_text, bool allow_lossy);

// CQL identifier quoting ("a""b").
std::string QuoteCql(std::string_view name);

}  // namespace ferry
