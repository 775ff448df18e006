#include "move/copy_types.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace ferry {
namespace {

std::string Upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsPgIntegerType(std::string_view t) {
  return t == "smallint" || t == "integer" || t == "bigint";
}

}  // namespace

std::string_view SqliteAffinity(std::string_view declared_type) {
  std::string t = Upper(declared_type);
  if (Contains(t, "INT")) return "INTEGER";
  if (Contains(t, "CHAR") || Contains(t, "CLOB") || Contains(t, "TEXT")) return "TEXT";
  if (t.empty() || Contains(t, "BLOB")) return "BLOB";
  if (Contains(t, "REAL") || Contains(t, "FLOA") || Contains(t, "DOUB")) return "REAL";
  return "NUMERIC";
}

std::string StripTypmod(std::string_view pg_type) {
  std::string out;
  int depth = 0;
  for (char c : pg_type) {
    if (c == '(') ++depth;
    if (depth == 0) out += c;
    if (c == ')' && depth > 0) --depth;
  }
  // "timestamp(3) with time zone" -> "timestamp with time zone" (drop the
  // space left before the removed modifier only when doubled).
  std::string cleaned;
  for (char c : out) {
    if (c == ' ' && !cleaned.empty() && cleaned.back() == ' ') continue;
    cleaned += c;
  }
  while (!cleaned.empty() && cleaned.back() == ' ') cleaned.pop_back();
  return cleaned;
}

Result<std::string> SqliteTypeFor(const ColumnInfo& c, std::string_view table) {
  if (c.kind == 'c' || c.kind == 'p') {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("column {}.{} has type {}, a {} type with no lossless SQLite form; "
                              "copy a view that splits it into columns, or leave it out",
                              table, c.name, c.type, c.kind == 'c' ? "composite" : "pseudo"))
        .With("table", std::string(table))
        .With("column", c.name);
  }
  if (c.is_array) return std::string("TEXT");  // PostgreSQL array literal
  std::string base = StripTypmod(c.base_type);
  if (base == "smallint") return std::string("SMALLINT");
  if (base == "integer") return std::string("INTEGER");
  if (base == "bigint") return std::string("BIGINT");
  if (base == "boolean") return std::string("BOOLEAN");
  if (base == "real" || base == "double precision") return std::string("REAL");
  if (base == "bytea") return std::string("BLOB");
  // numeric (exact, also NaN), text kinds, dates and times (ISO text; with
  // zone as "+00"), interval, uuid, json, jsonb, enums, ranges, network
  // types ...: their PostgreSQL text form, which PostgreSQL reads back.
  return std::string("TEXT");
}

std::string PgTypeForSqlite(std::string_view declared_type) {
  std::string t = Upper(declared_type);
  if (t == "BOOLEAN" || t == "BOOL") return "boolean";
  if (t == "SMALLINT" || t == "INT2") return "smallint";
  if (t == "INT4") return "integer";
  if (t == "DATE") return "date";
  if (t == "DATETIME" || t == "TIMESTAMP") return "timestamp";
  if (t == "TIMESTAMPTZ") return "timestamp with time zone";
  if (t == "JSON") return "json";
  if (t == "JSONB") return "jsonb";
  if (t == "UUID") return "uuid";
  std::string_view affinity = SqliteAffinity(declared_type);
  if (affinity == "INTEGER") return "bigint";
  if (affinity == "TEXT") return "text";
  if (affinity == "REAL") return "double precision";
  if (affinity == "BLOB") return t.empty() ? "text" : "bytea";
  return "numeric";
}

std::string IncompatibleReason(const ColumnInfo& source, Engine source_engine,
                               const ColumnInfo& target, Engine target_engine) {
  if (target.generated) {
    return fmt::format("the target column {} is generated and cannot be written", target.name);
  }
  if (source_engine == Engine::kPostgres && target_engine == Engine::kPostgres) {
    // Binary COPY needs the same type (domains count as their base type;
    // type modifiers may differ: the target checks them on input).
    std::string s = StripTypmod(source.base_type), t = StripTypmod(target.base_type);
    if (s == t) return "";
    return fmt::format(
        "column {} is {} on the source and {} on the target; binary COPY needs the same type "
        "(ALTER the target column's type, or copy into a table that matches)",
        source.name, source.type, target.type);
  }
  if (source_engine == Engine::kPostgres) {
    // PostgreSQL -> SQLite: the target's affinity must keep the value.
    auto expected = SqliteTypeFor(source, "");
    if (!expected.ok()) return expected.status().message();
    std::string_view want = SqliteAffinity(*expected);
    std::string_view have = SqliteAffinity(target.type);
    if (want == have || have == "BLOB") return "";
    if (want == "INTEGER") return "";  // whole numbers keep their value in any affinity
    if (want == "REAL" && have == "NUMERIC") return "";
    return fmt::format(
        "column {} is {} on the source, stored by ferry as SQLite {}; the target column is "
        "declared {} ({} affinity), which would change its values (e.g. numeric text read as a "
        "rounded number)",
        source.name, source.type, want, target.type.empty() ? "without a type" : target.type,
        have);
  }
  if (target_engine == Engine::kPostgres) {
    // SQLite -> PostgreSQL: refuse the pairs that can never work; the server
    // checks each value.
    std::string_view have = SqliteAffinity(source.type);
    std::string t = StripTypmod(target.base_type);
    if (have == "BLOB" && !source.type.empty() && t != "bytea" && t != "text") {
      return fmt::format("column {} is declared {} in SQLite (binary data) but {} on the target",
                         source.name, source.type, target.type);
    }
    if (have == "REAL" && IsPgIntegerType(t)) {
      return fmt::format("column {} is declared {} in SQLite (floating point) but {} on the target",
                         source.name, source.type, target.type);
    }
    if (t == "bytea" && have != "BLOB") {
      return fmt::format("column {} is declared {} in SQLite but bytea on the target",
                         source.name, source.type.empty() ? "without a type" : source.type);
    }
    return "";
  }
  return "";  // SQLite -> SQLite: dynamic typing keeps every value
}

bool DecodePgHexBytea(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) return false;
  out->reserve((text.size() - 2) / 2);
  for (size_t i = 2; i < text.size(); i += 2) {
    int hi = HexDigit(text[i]), lo = HexDigit(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

void AppendCopyText(std::string_view value, std::string* out) {
  size_t start = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    const char* esc = nullptr;
    switch (c) {
      case '\\': esc = "\\\\"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      default: continue;
    }
    out->append(value.data() + start, i - start);
    out->append(esc);
    start = i + 1;
  }
  out->append(value.data() + start, value.size() - start);
}

}  // namespace ferry
