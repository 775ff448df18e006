// Type mapping between PostgreSQL and SQLite for ferry copy: what a column
// becomes on the other engine, how its values travel, and whether an
// existing target column can take the source's values. Pure logic (no
// connection), unit-tested in tests/unit/copy_types_test.cc; the table is
// documented in docs/copy.md.
#pragma once

#include <string>
#include <string_view>

#include "ferry/status.h"
#include "move/table_info.h"

namespace ferry {

// SQLite column affinity of a declared type, by SQLite's own rules
// (https://sqlite.org/datatype3.html section 3.1): "INTEGER", "TEXT", "BLOB",
// "REAL" or "NUMERIC".
std::string_view SqliteAffinity(std::string_view declared_type);

// The SQLite declared type for a PostgreSQL column (ColumnInfo from a
// PostgreSQL DescribeTable). kInvalidArgument naming table and column for a
// type with no lossless SQLite form (composite types).
Result<std::string> SqliteTypeFor(const ColumnInfo& pg_column, std::string_view table);

// The PostgreSQL type for a SQLite column's declared type.
std::string PgTypeForSqlite(std::string_view declared_type);

// Whether the existing target column can take the source column's values;
// "" when it can, else why not (for an error naming table and column).
std::string IncompatibleReason(const ColumnInfo& source, Engine source_engine,
                               const ColumnInfo& target, Engine target_engine);

// "numeric(20,4)" -> "numeric", "character varying(10)[]" -> "character varying[]".
std::string StripTypmod(std::string_view pg_type);

// Decodes PostgreSQL's hex bytea text ("\x0aff") into `out`; false when the
// text is not in that form.
bool DecodePgHexBytea(std::string_view text, std::string* out);

// Appends `value` escaped for COPY text format (\\, \t, \n, \r) to `out`.
void AppendCopyText(std::string_view value, std::string* out);

}  // namespace ferry
