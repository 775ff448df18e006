// Canonical text of column values, so that `ferry verify` can compare a
// PostgreSQL value with the same value stored in SQLite (or in another
// PostgreSQL table of a slightly different type).
//
// The canonical form of a value is what PostgreSQL's output function prints
// for it under ferry's verify session settings (TimeZone=UTC,
// DateStyle='ISO, YMD', IntervalStyle=postgres, extra_float_digits=1,
// bytea_output=hex), except numeric, whose trailing fractional zeros are
// removed (trim_scale). On PostgreSQL the canonical text is therefore built
// inside the server (PgCanonicalExpr); on SQLite, where a value may be stored
// as INTEGER, REAL, TEXT or BLOB, Canonicalize() rebuilds the same text from
// whatever is stored, guided by the column's PostgreSQL type (CanonKind).
// docs/verify.md lists every form.
//
// A row's canonical text is PostgreSQL's record output of its canonical
// values ("(1,\"a b\",,t)"), and its hash the first 8 bytes of the MD5 of that
// text read as a big-endian signed 64-bit integer:
//   ('x' || left(md5(ROW(...)::text), 16))::bit(64)::bigint
// Range hashes XOR the row hashes (order-independent; keys are unique, so no
// row can cancel itself out).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

struct ColumnInfo;

enum class CanonKind {
  kAny,          // SQLite on both sides: by storage class (integer, real, text, blob)
  kText,         // as stored (text, varchar, char(n), enums, arrays, json, others)
  kInteger,      // smallint, integer, bigint, oid
  kNumeric,      // numeric/decimal: trailing fractional zeros removed; NaN, Infinity
  kFloat4,       // real: shortest round-trip text; -0, Infinity, NaN
  kFloat8,       // double precision
  kBool,         // t / f
  kBytea,        // \x + lower-case hex
  kDate,         // YYYY-MM-DD [BC], infinity
  kTime,         // HH:MM:SS[.ffffff]
  kTimestamp,    // YYYY-MM-DD HH:MM:SS[.ffffff] [BC]
  kTimestamptz,  // the same in UTC with "+00"
  kInterval,     // PostgreSQL style: "1 year 2 mons 3 days 04:05:06.5"
  kUuid,         // lower-case 8-4-4-4-12
  kJsonb,        // jsonb's own output: keys by length then bytes, ", " and ": "
};

// "numeric", "float8" ... (the names the SQLite functions take), and back.
std::string_view CanonKindName(CanonKind kind);
std::optional<CanonKind> CanonKindFromName(std::string_view name);

// The kind for a PostgreSQL column (domains by their base type; arrays and
// enums are kText).
CanonKind CanonKindForPg(const ColumnInfo& column);

// The SQL expression that yields the column's canonical value on PostgreSQL
// (its output function prints the canonical text): "\"c\"" for most types,
// "trim_scale(\"c\")" for numeric.
std::string PgCanonicalExpr(const ColumnInfo& column);

// A value as SQLite holds it.
struct StoredValue {
  enum class Storage { kNull, kInteger, kReal, kText, kBlob };
  Storage storage = Storage::kNull;
  int64_t integer = 0;
  double real = 0;
  std::string_view bytes;  // text or blob
};

// The canonical text of `value` for a column of `kind`; nullopt for NULL.
// Text that cannot be read as the kind is returned unchanged (so it compares
// unequal and is reported, rather than failing the whole verify).
std::optional<std::string> Canonicalize(CanonKind kind, const StoredValue& value);

// Pieces of Canonicalize, exposed for tests.
std::string CanonicalFloat(double value, bool float4);
std::optional<std::string> CanonicalNumeric(std::string_view text, bool trim);
std::optional<std::string> CanonicalInterval(std::string_view text);
std::optional<std::string> CanonicalTimestamp(std::string_view text, bool with_zone);
std::optional<std::string> CanonicalJsonb(std::string_view text);

// Appends one field of PostgreSQL's record output: nothing for NULL, the text
// in double quotes (with " and \ doubled) when it is empty or contains
// " \ ( ) , or white space. Call with first=true for the first field.
void AppendRecordField(std::string& out, const std::optional<std::string>& value, bool first);

// The first 8 bytes of MD5(text) as a big-endian signed 64-bit integer.
int64_t RowHash(std::string_view record_text);

}  // namespace ferry
