// CQL -> PostgreSQL types and COPY text fields (see copy_from_cql_types.h).
#include "move/copy_from_cql_types.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdint>
#include <utility>

namespace ferry {
namespace {

Status Bad(std::string message) { return Status(StatusCode::kInvalidArgument, std::move(message)); }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits "a, map<b, c>, d" at top-level commas.
std::vector<std::string_view> SplitTopLevel(std::string_view s) {
  std::vector<std::string_view> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') ++depth;
    if (s[i] == '>') --depth;
    if (s[i] == ',' && depth == 0) {
      out.push_back(Trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  out.push_back(Trim(s.substr(start)));
  return out;
}

// A scalar CQL type's PostgreSQL type and value kind; nullopt when none.
struct Scalar {
  std::string_view pg;
  CqlBackKind kind;
  bool json_number;  // a JSON number or boolean as a map value
};
std::optional<Scalar> ScalarFor(std::string_view cql) {
  static constexpr std::pair<std::string_view, Scalar> kTable[] = {
      {"ascii", {"text", CqlBackKind::kPlain, false}},
      {"text", {"text", CqlBackKind::kPlain, false}},
      {"varchar", {"text", CqlBackKind::kPlain, false}},
      {"tinyint", {"smallint", CqlBackKind::kPlain, true}},
      {"smallint", {"smallint", CqlBackKind::kPlain, true}},
      {"int", {"integer", CqlBackKind::kPlain, true}},
      {"bigint", {"bigint", CqlBackKind::kPlain, true}},
      {"counter", {"bigint", CqlBackKind::kPlain, true}},
      {"varint", {"numeric", CqlBackKind::kPlain, true}},
      {"decimal", {"numeric", CqlBackKind::kPlain, true}},
      {"float", {"real", CqlBackKind::kPlain, true}},
      {"double", {"double precision", CqlBackKind::kPlain, true}},
      {"boolean", {"boolean", CqlBackKind::kPlain, true}},
      {"blob", {"bytea", CqlBackKind::kBlob, false}},
      {"uuid", {"uuid", CqlBackKind::kPlain, false}},
      {"timeuuid", {"uuid", CqlBackKind::kPlain, false}},
      {"inet", {"inet", CqlBackKind::kPlain, false}},
      {"date", {"date", CqlBackKind::kPlain, false}},
      {"time", {"time without time zone", CqlBackKind::kTime, false}},
      {"timestamp", {"timestamp with time zone", CqlBackKind::kPlain, false}},
      {"duration", {"interval", CqlBackKind::kDuration, false}},
  };
  for (const auto& [name, scalar] : kTable) {
    if (name == cql) return scalar;
  }
  return std::nullopt;
}

// One member of a collection literal: its text and whether it was quoted.
struct Member {
  std::string text;
  bool quoted = false;
};

// Reads one member at `*pos` of a literal (a '...' string with '' for a
// quote, or a bare word up to ',', ':' or the closing bracket).
Result<Member> ReadMember(std::string_view s, size_t* pos) {
  size_t i = *pos;
  while (i < s.size() && s[i] == ' ') ++i;
  Member m;
  if (i < s.size() && s[i] == '\'') {
    m.quoted = true;
    for (++i;; ++i) {
      if (i >= s.size()) return Bad("unterminated string in collection literal");
      if (s[i] == '\'') {
        if (i + 1 < s.size() && s[i + 1] == '\'') {
          m.text += '\'';
          ++i;
          continue;
        }
        ++i;
        break;
      }
      m.text += s[i];
    }
  } else {
    size_t start = i;
    while (i < s.size() && s[i] != ',' && s[i] != ':' && s[i] != ']' && s[i] != '}') ++i;
    m.text = std::string(Trim(s.substr(start, i - start)));
    if (m.text.empty()) return Bad("empty member in collection literal");
  }
  while (i < s.size() && s[i] == ' ') ++i;
  *pos = i;
  return m;
}

// "[a, b]" / "{a, b}" -> members; for maps "{k: v}" -> k, v, k, v ...
Result<std::vector<Member>> ParseLiteral(std::string_view s, bool is_map) {
  s = Trim(s);
  if (s.size() < 2 || !((s.front() == '[' && s.back() == ']') || (s.front() == '{' && s.back() == '}'))) {
    return Bad(fmt::format("not a collection literal: {:.40}", s));
  }
  std::vector<Member> out;
  std::string_view body = s.substr(1, s.size() - 2);
  if (Trim(body).empty()) return out;
  size_t pos = 0;
  while (true) {
    FERRY_ASSIGN_OR_RETURN(Member key, ReadMember(body, &pos));
    out.push_back(std::move(key));
    if (is_map) {
      if (pos >= body.size() || body[pos] != ':') return Bad("map literal without ':'");
      ++pos;
      FERRY_ASSIGN_OR_RETURN(Member value, ReadMember(body, &pos));
      out.push_back(std::move(value));
    }
    if (pos >= body.size()) break;
    if (body[pos] != ',') return Bad(fmt::format("unexpected '{}' in collection literal", body[pos]));
    ++pos;
  }
  return out;
}

// 10:20:30.123456789 -> 10:20:30.123456; refuses non-zero nanoseconds.
Result<std::string> TimeText(std::string_view v) {
  size_t dot = v.find('.');
  if (dot == std::string_view::npos || v.size() - dot - 1 <= 6) return std::string(v);
  std::string_view extra = v.substr(dot + 7);
  for (char c : extra) {
    if (c != '0') {
      return Bad(fmt::format("time {} has nanoseconds; PostgreSQL keeps microseconds", v));
    }
  }
  return std::string(v.substr(0, dot + 7));
}

// 1y2mo3d4h5m6s7ms8us -> "1 years 2 mons 3 days 4 hours 5 mins 6.007008 secs".
Result<std::string> DurationText(std::string_view v) {
  bool negative = !v.empty() && v.front() == '-';
  if (negative) v.remove_prefix(1);
  int64_t months = 0, days = 0, micros = 0;
  size_t i = 0;
  while (i < v.size()) {
    size_t start = i;
    while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) ++i;
    if (start == i) return Bad(fmt::format("duration {} does not parse", v));
    int64_t n = std::stoll(std::string(v.substr(start, i - start)));
    size_t ustart = i;
    while (i < v.size() && !std::isdigit(static_cast<unsigned char>(v[i]))) ++i;
    std::string_view unit = v.substr(ustart, i - ustart);
    if (unit == "y") months += 12 * n;
    else if (unit == "mo") months += n;
    else if (unit == "w") days += 7 * n;
    else if (unit == "d") days += n;
    else if (unit == "h") micros += n * 3600000000LL;
    else if (unit == "m") micros += n * 60000000LL;
    else if (unit == "s") micros += n * 1000000LL;
    else if (unit == "ms") micros += n * 1000LL;
    else if (unit == "us" || unit == "\xC2\xB5s") micros += n;
    else if (unit == "ns" && n % 1000 == 0) micros += n / 1000;
    else if (unit == "ns") return Bad(fmt::format("duration {} has nanoseconds; PostgreSQL keeps microseconds", v));
    else return Bad(fmt::format("duration {} has an unknown unit '{}'", v, unit));
  }
  const char* sign = negative ? "-" : "";
  int64_t hours = micros / 3600000000LL, rest = micros % 3600000000LL;
  return fmt::format("{0}{1} years {0}{2} mons {0}{3} days {0}{4} hours {0}{5} mins {0}{6}.{7:06} secs",
                     sign, months / 12, months % 12, days, hours, rest / 60000000LL,
                     rest % 60000000LL / 1000000LL, rest % 1000000LL);
}

Result<std::string> ScalarText(CqlBackKind kind, std::string_view v) {
  switch (kind) {
    case CqlBackKind::kBlob:
      if (v.size() >= 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) return "\\x" + std::string(v.substr(2));
      return "\\x" + std::string(v);
    case CqlBackKind::kTime: return TimeText(v);
    case CqlBackKind::kDuration: return DurationText(v);
    default: return std::string(v);
  }
}

void AppendJsonString(std::string_view s, std::string* out) {
  *out += '"';
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      *out += '\\';
      *out += c;
    } else if (u < 0x20) {
      *out += fmt::format("\\u{:04x}", u);
    } else {
      *out += c;
    }
  }
  *out += '"';
}

bool IsJsonNumber(std::string_view s) {
  // NaN and Infinity have no JSON form: they become strings.
  return !s.empty() && s != "NaN" && s.find("Infinity") == std::string_view::npos;
}

}  // namespace

Result<CqlTypeExpr> ParseCqlTypeExpr(std::string_view text) {
  text = Trim(text);
  CqlTypeExpr out;
  size_t lt = text.find('<');
  if (lt == std::string_view::npos) {
    if (text.empty() || text.find('>') != std::string_view::npos) return Bad(fmt::format("bad CQL type '{}'", text));
    out.name = Lower(text);
    return out;
  }
  if (text.back() != '>') return Bad(fmt::format("bad CQL type '{}'", text));
  out.name = Lower(Trim(text.substr(0, lt)));
  std::string_view inner = text.substr(lt + 1, text.size() - lt - 2);
  for (std::string_view part : SplitTopLevel(inner)) {
    FERRY_ASSIGN_OR_RETURN(CqlTypeExpr p, ParseCqlTypeExpr(part));
    out.params.push_back(std::move(p));
  }
  if (out.name == "frozen" && out.params.size() == 1) return CqlTypeExpr(out.params[0]);
  return out;
}

Result<CqlBackColumn> PgColumnForCql(std::string_view table, std::string_view column,
                                     std::string_view cql_type) {
  CqlBackColumn c;
  c.name = std::string(column);
  c.cql_type = std::string(cql_type);
  auto refuse = [&](std::string_view why) {
    return Bad(fmt::format("table {} column {}: CQL type {} cannot be copied to PostgreSQL ({}); "
                           "leave the table out, or copy a table without this column",
                           table, column, cql_type, why));
  };
  auto parsed = ParseCqlTypeExpr(cql_type);
  if (!parsed.ok()) return refuse("unknown type");
  const CqlTypeExpr& t = *parsed;
  if (auto s = ScalarFor(t.name); s && t.params.empty()) {
    c.pg_type = std::string(s->pg);
    c.kind = s->kind;
    return c;
  }
  auto scalar_param = [&](const CqlTypeExpr& p) -> std::optional<Scalar> {
    if (!p.params.empty() || p.name == "duration") return std::nullopt;
    return ScalarFor(p.name);
  };
  if ((t.name == "list" || t.name == "set") && t.params.size() == 1) {
    auto e = scalar_param(t.params[0]);
    if (!e) return refuse("a collection of collections, tuples, durations or user-defined types");
    c.pg_type = std::string(e->pg) + "[]";
    c.kind = CqlBackKind::kArray;
    c.element_kind = e->kind;
    return c;
  }
  if (t.name == "map" && t.params.size() == 2) {
    auto k = scalar_param(t.params[0]);
    auto v = scalar_param(t.params[1]);
    if (!k || !v) return refuse("a map of collections, tuples, durations or user-defined types");
    c.pg_type = "jsonb";
    c.kind = CqlBackKind::kJsonMap;
    c.element_kind = v->kind;
    c.map_value_number = v->json_number;
    return c;
  }
  if (t.name == "tuple") return refuse("tuples have no PostgreSQL counterpart here");
  if (t.name == "vector") return refuse("vectors have no PostgreSQL counterpart here");
  if (t.name.find('.') != std::string::npos || t.name.find('\'') != std::string::npos) {
    return refuse("a custom type");
  }
  return refuse("a user-defined type or a type ferry does not know");
}

bool PgTypeAccepts(const CqlBackColumn& column, std::string_view pg_type) {
  if (pg_type == column.pg_type) return true;
  if (column.pg_type == "text") return pg_type.starts_with("character varying");
  if (column.pg_type == "jsonb") return pg_type == "json";
  if (column.pg_type == "numeric") return pg_type.starts_with("numeric(");
  if (column.pg_type == "timestamp with time zone") return pg_type.starts_with("timestamp(") && pg_type.ends_with("with time zone");
  return false;
}

void AppendCopyEscaped(std::string_view text, std::string* out) {
  for (char c : text) {
    switch (c) {
      case '\\': *out += "\\\\"; break;
      case '\t': *out += "\\t"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      default: *out += c;
    }
  }
}

Result<std::string> PgTextForCql(const CqlBackColumn& column, std::string_view value) {
  if (column.kind != CqlBackKind::kArray && column.kind != CqlBackKind::kJsonMap) {
    return ScalarText(column.kind, value);
  }
  const bool is_map = column.kind == CqlBackKind::kJsonMap;
  auto members = ParseLiteral(value, is_map);
  if (!members.ok()) return Bad(fmt::format("column {}: {}", column.name, members.status().message()));
  std::string out = "{";
  for (size_t i = 0; i < members->size(); ++i) {
    const Member& m = (*members)[i];
    if (!m.quoted && m.text == "null") return Bad(fmt::format("column {}: a null member", column.name));
    if (is_map && i % 2 == 1) {
      out += ": ";
      FERRY_ASSIGN_OR_RETURN(std::string v, ScalarText(column.element_kind, m.text));
      if (column.map_value_number && !m.quoted && IsJsonNumber(v)) {
        out += v;
      } else {
        AppendJsonString(v, &out);
      }
      continue;
    }
    if (i > 0) out += is_map ? ", " : ",";
    if (is_map) {
      AppendJsonString(m.text, &out);  // JSON keys are strings
      continue;
    }
    FERRY_ASSIGN_OR_RETURN(std::string v, ScalarText(column.element_kind, m.text));
    out += '"';
    for (char ch : v) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  out += "}";
  return out;
}

Status AppendCopyField(const CqlBackColumn& column, std::optional<std::string_view> value,
                       std::string* out) {
  if (!value) {
    *out += "\\N";
    return Status();
  }
  if (column.kind == CqlBackKind::kPlain) {
    AppendCopyEscaped(*value, out);
    return Status();
  }
  auto text = PgTextForCql(column, *value);
  if (!text.ok()) {
    return Bad(fmt::format("column {}: {}", column.name, text.status().message()));
  }
  AppendCopyEscaped(*text, out);
  return Status();
}

}  // namespace ferry
