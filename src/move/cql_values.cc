// PostgreSQL -> CQL types and values for ferry copy (cql_map.h): the type
// table of docs/copy.md, and the conversion of each value from PostgreSQL's
// text form (the copy's source session: ISO dates in UTC, hex bytea) to the
// CQL driver's text form.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "move/copy_types.h"
#include "move/cql_map.h"

namespace ferry {
namespace {

Status Invalid(std::string message) { return Status(StatusCode::kInvalidArgument, std::move(message)); }

struct Scalar {
  const char* cql;
  CqlValueKind kind;
};

// PostgreSQL base type (without typmod) -> CQL; nullptr when none.
const Scalar* ScalarFor(std::string_view base) {
  static const std::vector<std::pair<std::string_view, Scalar>> kTable = {
      {"smallint", {"smallint", CqlValueKind::kPlain}},
      {"integer", {"int", CqlValueKind::kPlain}},
      {"bigint", {"bigint", CqlValueKind::kPlain}},
      {"oid", {"bigint", CqlValueKind::kPlain}},
      {"numeric", {"decimal", CqlValueKind::kNumeric}},
      {"money", {"decimal", CqlValueKind::kNumeric}},
      {"real", {"float", CqlValueKind::kFloat}},
      {"double precision", {"double", CqlValueKind::kFloat}},
      {"boolean", {"boolean", CqlValueKind::kBool}},
      {"text", {"text", CqlValueKind::kPlain}},
      {"character varying", {"text", CqlValueKind::kPlain}},
      {"character", {"text", CqlValueKind::kPlain}},
      {"\"char\"", {"text", CqlValueKind::kPlain}},
      {"name", {"text", CqlValueKind::kPlain}},
      {"citext", {"text", CqlValueKind::kPlain}},
      {"json", {"text", CqlValueKind::kPlain}},
      {"jsonb", {"text", CqlValueKind::kPlain}},
      {"xml", {"text", CqlValueKind::kPlain}},
      {"cidr", {"text", CqlValueKind::kPlain}},
      {"macaddr", {"text", CqlValueKind::kPlain}},
      {"macaddr8", {"text", CqlValueKind::kPlain}},
      {"bit", {"text", CqlValueKind::kPlain}},
      {"bit varying", {"text", CqlValueKind::kPlain}},
      {"bytea", {"blob", CqlValueKind::kBytea}},
      {"uuid", {"uuid", CqlValueKind::kPlain}},
      {"timestamp with time zone", {"timestamp", CqlValueKind::kTimestamp}},
      {"timestamp without time zone", {"timestamp", CqlValueKind::kTimestamp}},
      {"date", {"date", CqlValueKind::kDate}},
      {"time without time zone", {"time", CqlValueKind::kPlain}},
      {"time with time zone", {"time", CqlValueKind::kPlain}},
      {"interval", {"duration", CqlValueKind::kInterval}},
      {"inet", {"inet", CqlValueKind::kInet}},
  };
  for (const auto& [name, s] : kTable) {
    if (name == base) return &s;
  }
  return nullptr;
}

std::string ElementSelect(std::string_view base, const std::string& q) {
  if (base == "time with time zone") return fmt::format("(({}) AT TIME ZONE 'UTC')::time", q);
  if (base == "money") return fmt::format("({})::numeric", q);
  if (base == "interval") {
    return fmt::format(
        "CASE WHEN {0} IS NULL THEN NULL ELSE concat_ws(',', (extract(year from {0}) * 12 + "
        "extract(month from {0}))::bigint, extract(day from {0})::bigint, (extract(hour from {0}) "
        "* 3600000000 + extract(minute from {0}) * 60000000 + extract(microseconds from "
        "{0}))::bigint) END",
        q);
  }
  return q;
}

// "integer[]" -> "integer"; "character varying[]" -> "character varying".
std::string ElementType(std::string_view array_type) {
  std::string s = StripTypmod(array_type);
  while (s.ends_with("[]")) s.resize(s.size() - 2);
  return s;
}

// Sub-millisecond digits of "...:SS.ffffff" (after the seconds) are zero?
bool MillisExact(std::string_view frac_digits) {
  for (size_t i = 3; i < frac_digits.size(); ++i) {
    if (frac_digits[i] != '0') return false;
  }
  return true;
}

Result<std::string> ConvertTimestamp(std::string_view s, bool allow_lossy) {
  if (s == "infinity" || s == "-infinity" || s.ends_with(" BC")) {
    return Invalid(fmt::format("timestamp '{}' has no CQL form (CQL timestamps are finite, AD)", s));
  }
  // "2024-05-01 10:20:30.123456+00" or without offset (timestamp: taken as UTC).
  size_t space = s.find(' ');
  if (space == std::string_view::npos || s.size() < space + 9) {
    return Invalid(fmt::format("timestamp '{}' is not in ISO form", s));
  }
  std::string out(s.substr(0, space));
  out += 'T';
  std::string_view rest = s.substr(space + 1);
  size_t zone = rest.find_first_of("+-", 8);
  std::string_view offset = zone == std::string_view::npos ? "" : rest.substr(zone);
  std::string_view clock = rest.substr(0, zone);
  size_t dot = clock.find('.');
  std::string_view frac = dot == std::string_view::npos ? "" : clock.substr(dot + 1);
  if (!MillisExact(frac) && !allow_lossy) {
    return Invalid(fmt::format("timestamp '{}' has microseconds; CQL keeps milliseconds (run with "
                               "--allow-lossy to cut them)",
                               s));
  }
  out += clock.substr(0, dot);
  std::string ms(frac.substr(0, std::min<size_t>(3, frac.size())));
  while (ms.size() < 3) ms += '0';
  out += "." + ms;
  if (offset.empty() || offset == "+00") return out + "Z";
  return out + std::string(offset) + (offset.size() == 3 ? ":00" : "");
}

Result<std::string> ConvertInterval(std::string_view s) {
  int64_t v[3] = {0, 0, 0};
  size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    size_t comma = s.find(',', pos);
    std::string_view part = s.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v[i]);
    if (ec != std::errc() || p != part.data() + part.size()) {
      return Invalid(fmt::format("interval parts '{}' are not three integers", s));
    }
    pos = comma == std::string_view::npos ? s.size() : comma + 1;
  }
  bool neg = v[0] < 0 || v[1] < 0 || v[2] < 0;
  bool pos_any = v[0] > 0 || v[1] > 0 || v[2] > 0;
  if (neg && pos_any) {
    return Invalid(fmt::format("interval with mixed signs (months {}, days {}, microseconds {}) has "
                               "no CQL duration form",
                               v[0], v[1], v[2]));
  }
  return fmt::format("{}{}mo{}d{}us", neg ? "-" : "", std::abs(v[0]), std::abs(v[1]), std::abs(v[2]));
}

// PostgreSQL array text -> elements (nullopt for NULL); kInvalidArgument for
// a multi-dimensional array.
Result<std::vector<std::optional<std::string>>> SplitPgArray(std::string_view s) {
  if (!s.empty() && s.front() == '[') {  // "[0:2]={...}": explicit bounds
    size_t eq = s.find('=');
    if (eq == std::string_view::npos) return Invalid("unreadable array bounds");
    s.remove_prefix(eq + 1);
  }
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') {
    return Invalid(fmt::format("array '{}' is not in PostgreSQL's {{...}} form", s));
  }
  std::vector<std::optional<std::string>> out;
  s = s.substr(1, s.size() - 2);
  if (s.empty()) return out;
  size_t i = 0;
  while (i <= s.size()) {
    if (i < s.size() && s[i] == '{') {
      return Invalid("a multi-dimensional array has no CQL list form");
    }
    std::string item;
    bool quoted = i < s.size() && s[i] == '"';
    if (quoted) {
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        item += s[i];
      }
      ++i;  // closing quote
    } else {
      while (i < s.size() && s[i] != ',') item += s[i++];
    }
    if (!quoted && item == "NULL") out.emplace_back();
    else out.emplace_back(std::move(item));
    if (i >= s.size()) break;
    ++i;  // ','
  }
  return out;
}

std::string QuoteLiteral(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace

Result<CqlColumn> CqlColumnFor(const ColumnInfo& pg, std::string_view table, bool allow_lossy) {
  CqlColumn c;
  c.name = pg.name;
  c.source = pg.name;
  std::string base = pg.is_array ? ElementType(pg.base_type) : StripTypmod(pg.base_type);
  auto refuse = [&](std::string why) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("table {} column {} ({}): {}", table, pg.name, pg.type, why))
        .With("table", std::string(table))
        .With("column", pg.name);
  };
  const Scalar* s = nullptr;
  Scalar enum_scalar{"text", CqlValueKind::kPlain};
  if (pg.kind == 'e') {
    s = &enum_scalar;
  } else if (pg.kind == 'c' || pg.kind == 'r' || pg.kind == 'm') {
    return refuse("composite and range types have no CQL counterpart; map the column with "
                  "text(" + pg.name + ") in a [[copy.map]] entry to copy its text form");
  } else {
    s = ScalarFor(base);
  }
  if (s == nullptr) {
    return refuse("no CQL type is known for it; map the column with text(" + pg.name +
                  ") in a [[copy.map]] entry to copy its text form");
  }
  if (base == "time with time zone" && !allow_lossy) {
    return refuse("CQL time has no offset; --allow-lossy copies the UTC time of day");
  }
  std::string q = QuoteIdent(pg.name);
  if (pg.is_array) {
    if (base == "interval" || base == "time with time zone" || base == "money") {
      return refuse("arrays of this type are not converted; map the column with text(" + pg.name + ")");
    }
    c.cql_type = fmt::format("list<{}>", s->cql);
    c.kind = CqlValueKind::kArray;
    c.element_kind = s->kind;
    c.element_quoted = true;
    c.select = q;
    return c;
  }
  c.cql_type = s->cql;
  c.kind = s->kind;
  c.select = ElementSelect(base, q);
  return c;
}

Result<std::string> ConvertCqlValue(CqlValueKind kind, std::string_view v, bool allow_lossy) {
  switch (kind) {
    case CqlValueKind::kPlain:
    case CqlValueKind::kFloat:
    case CqlValueKind::kArray: return std::string(v);
    case CqlValueKind::kBool:
      if (v == "t" || v == "true") return std::string("true");
      if (v == "f" || v == "false") return std::string("false");
      return Invalid(fmt::format("'{}' is not a boolean", v));
    case CqlValueKind::kNumeric:
      if (v == "NaN" || v == "Infinity" || v == "-Infinity") {
        return Invalid(fmt::format("numeric {} has no CQL decimal form", v));
      }
      return std::string(v);
    case CqlValueKind::kBytea:
      if (!v.starts_with("\\x")) return Invalid("bytea is not in hex form");
      return "0x" + std::string(v.substr(2));
    case CqlValueKind::kTimestamp: return ConvertTimestamp(v, allow_lossy);
    case CqlValueKind::kDate:
      if (v == "infinity" || v == "-infinity" || v.ends_with(" BC")) {
        return Invalid(fmt::format("date '{}' has no CQL form", v));
      }
      return std::string(v);
    case CqlValueKind::kInet: {
      size_t slash = v.find('/');
      if (slash == std::string_view::npos) return std::string(v);
      if (!allow_lossy) {
        return Invalid(fmt::format("inet {} has a netmask, which CQL inet drops (--allow-lossy "
                                   "keeps the address)",
                                   v));
      }
      return std::string(v.substr(0, slash));
    }
    case CqlValueKind::kInterval: return ConvertInterval(v);
  }
  return Invalid("unknown value kind");
}

Status CqlTarget::ConvertRow(const std::vector<std::optional<std::string_view>>& row,
                             Params* out) const {
  out->clear();
  const size_t keys = partition_count + clustering_count;
  for (size_t i = 0; i < columns.size(); ++i) {
    const CqlColumn& c = columns[i];
    if (i >= row.size() || !row[i]) {
      if (i < keys) {
        return Invalid(fmt::format("{} column {} is NULL (from {})",
                                   i < partition_count ? "partition key" : "clustering", c.name,
                                   c.source))
            .With("column", c.name);
      }
      out->emplace_back();
      continue;
    }
    Result<std::string> v = std::string();
    if (c.kind == CqlValueKind::kArray) {
      auto items = SplitPgArray(*row[i]);
      if (!items.ok()) return std::move(items).TakeStatus().Prefix("column " + c.name).With("column", c.name);
      std::string list = "[";
      for (const auto& item : *items) {
        if (!item) return Invalid(fmt::format("column {}: a CQL list cannot hold NULL", c.name)).With("column", c.name);
        auto e = ConvertCqlValue(c.element_kind, *item, allow_lossy);
        if (!e.ok()) return std::move(e).TakeStatus().Prefix("column " + c.name).With("column", c.name);
        list += (list.size() > 1 ? ", " : "") + QuoteLiteral(*e);
      }
      v = list + "]";
    } else {
      v = ConvertCqlValue(c.kind, *row[i], allow_lossy);
    }
    if (!v.ok()) return std::move(v).TakeStatus().Prefix("column " + c.name).With("column", c.name);
    out->emplace_back(std::move(*v));
  }
  if (ttl) out->emplace_back(std::to_string(*ttl));
  if (!write_timestamp.empty()) {
    size_t at = columns.size();
    if (at >= row.size() || !row[at]) {
      return Invalid(fmt::format("write_timestamp column {} is NULL", write_timestamp))
          .With("column", write_timestamp);
    }
    out->emplace_back(std::string(*row[at]));
  }
  return Status();
}

}  // namespace ferry
