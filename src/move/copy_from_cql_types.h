// Types and values for ferry copy from CQL (Cassandra, ScyllaDB) to
// PostgreSQL: which PostgreSQL type holds each CQL type, and how a value in
// the CQL driver's text form (drivers/cql/cql_types.h) becomes one field of
// PostgreSQL's COPY text format. Pure logic (no connection); unit-tested in
// tests/unit/copy_from_cql_types_test.cc. The table is in docs/copy.md
// ("Back from CQL").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry {

// How a CQL value's text becomes PostgreSQL input text.
enum class CqlBackKind {
  kPlain,     // the same text: numbers, text, uuid, inet, date, timestamp, boolean
  kBlob,      // 0x0aff -> \x0aff (bytea hex input)
  kTime,      // 10:20:30.123456789 -> 10:20:30.123456 (nanoseconds must be 0)
  kDuration,  // 1y2mo3d4h -> PostgreSQL interval text (nanoseconds must be 0)
  kArray,     // list/set literal ['a', 'b'] -> PostgreSQL array {"a","b"}
  kJsonMap,   // map literal {'k': 1} -> jsonb {"k": 1}
};

// A CQL type as system_schema.columns spells it, parsed:
// "frozen<map<text, int>>" -> {map, [{text}, {int}]} (frozen is dropped).
struct CqlTypeExpr {
  std::string name;                 // lower case: "int", "list", "map", "tuple", ...
  std::vector<CqlTypeExpr> params;  // collection/tuple arguments
};
// kInvalidArgument when the text is not a type (unbalanced <>).
Result<CqlTypeExpr> ParseCqlTypeExpr(std::string_view text);

// One CQL column and the PostgreSQL column that receives it.
struct CqlBackColumn {
  std::string name;      // same name on both sides
  std::string cql_type;  // as system_schema writes it
  std::string pg_type;   // "integer", "text[]", "jsonb", ... (format_type spelling)
  CqlBackKind kind = CqlBackKind::kPlain;
  CqlBackKind element_kind = CqlBackKind::kPlain;  // kArray: the elements'
  bool map_value_number = false;                   // kJsonMap: values are JSON numbers/booleans
};

// The PostgreSQL column for a CQL column. kInvalidArgument naming the table,
// column and type, and what to do, for a type with no PostgreSQL form here:
// tuples, user-defined types, vectors, custom types, nested collections, and
// collections of durations.
Result<CqlBackColumn> PgColumnForCql(std::string_view table, std::string_view column,
                                     std::string_view cql_type);

// True when an existing PostgreSQL column of type `pg_type` (format_type
// spelling) takes the values of `column` unchanged: the same type, or
// varchar/json/numeric(p,s) for text/jsonb/numeric.
bool PgTypeAccepts(const CqlBackColumn& column, std::string_view pg_type);

// Appends `text` escaped for COPY text format: backslash, tab, newline and
// carriage return as \\, \t, \n, \r.
void AppendCopyEscaped(std::string_view text, std::string* out);

// Appends one COPY text field for a CQL value (nullopt: \N); the caller
// writes the tab and newline separators. kInvalidArgument naming the column
// for a value PostgreSQL cannot hold exactly (nanoseconds in a time or
// duration) or a literal that does not parse.
Status AppendCopyField(const CqlBackColumn& column, std::optional<std::string_view> value,
                       std::string* out);

// The PostgreSQL input text of one value (before COPY escaping); exposed
// for tests.
Result<std::string> PgTextForCql(const CqlBackColumn& column, std::string_view value);

}  // namespace ferry
