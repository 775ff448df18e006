// Canonical value text for verify; see canonical.h and docs/verify.md.
// jsonb: canonical_jsonb.cc.
#include "move/canonical.h"

#include <fmt/format.h>
#include <nettle/md5.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "drivers/connection.h"
#include "move/table_info.h"

namespace ferry {
namespace {

constexpr std::array<std::pair<CanonKind, std::string_view>, 15> kKindNames = {{
    {CanonKind::kAny, "any"},
    {CanonKind::kText, "text"},
    {CanonKind::kInteger, "integer"},
    {CanonKind::kNumeric, "numeric"},
    {CanonKind::kFloat4, "float4"},
    {CanonKind::kFloat8, "float8"},
    {CanonKind::kBool, "bool"},
    {CanonKind::kBytea, "bytea"},
    {CanonKind::kDate, "date"},
    {CanonKind::kTime, "time"},
    {CanonKind::kTimestamp, "timestamp"},
    {CanonKind::kTimestamptz, "timestamptz"},
    {CanonKind::kInterval, "interval"},
    {CanonKind::kUuid, "uuid"},
    {CanonKind::kJsonb, "jsonb"},
}};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string Hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// Reads an unsigned run of digits at s[*i]; false when there is none.
bool ReadDigits(std::string_view s, size_t* i, int64_t* out, size_t* count = nullptr) {
  size_t start = *i;
  int64_t v = 0;
  while (*i < s.size() && IsDigit(s[*i])) {
    if (v > (INT64_MAX - 9) / 10) return false;
    v = v * 10 + (s[*i] - '0');
    ++*i;
  }
  if (count != nullptr) *count = *i - start;
  *out = v;
  return *i > start;
}

// ---- numbers ----

std::optional<double> ParseDouble(std::string_view text) {
  text = Trim(text);
  std::string l = Lower(text);
  if (l == "nan") return std::nan("");
  if (l == "infinity" || l == "inf" || l == "+infinity" || l == "+inf") return HUGE_VAL;
  if (l == "-infinity" || l == "-inf") return -HUGE_VAL;
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

// ---- dates and times ----

// Days since 1970-01-01 of a proleptic Gregorian (astronomical) date.
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, int64_t* m, int64_t* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp + (mp < 10 ? 3 : -9);
  *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

struct DateTime {
  int64_t year = 0;  // astronomical (1 BC = 0)
  int64_t month = 1, day = 1;
  int64_t micros = 0;  // of the day
  bool has_time = false;
  bool has_zone = false;
  int64_t zone_seconds = 0;  // east of UTC
};

// "HH:MM[:SS[.ffffff]]" at s[*i] -> microseconds of the day.
bool ParseClock(std::string_view s, size_t* i, int64_t* micros) {
  int64_t h = 0, mi = 0, sec = 0;
  if (!ReadDigits(s, i, &h) || *i >= s.size() || s[*i] != ':') return false;
  ++*i;
  if (!ReadDigits(s, i, &mi)) return false;
  int64_t frac = 0;
  if (*i < s.size() && s[*i] == ':') {
    ++*i;
    if (!ReadDigits(s, i, &sec)) return false;
    if (*i < s.size() && s[*i] == '.') {
      ++*i;
      int digits = 0;
      bool round_up = false;
      while (*i < s.size() && IsDigit(s[*i])) {
        if (digits < 6) {
          frac = frac * 10 + (s[*i] - '0');
        } else if (digits == 6) {
          round_up = s[*i] >= '5';
        }
        ++digits;
        ++*i;
      }
      for (int k = digits; k < 6; ++k) frac *= 10;
      if (round_up) ++frac;
    }
  }
  *micros = ((h * 60 + mi) * 60 + sec) * 1000000 + frac;
  return true;
}

// Date, optional time, optional zone, optional " BC".
std::optional<DateTime> ParseDateTime(std::string_view s) {
  s = Trim(s);
  DateTime dt;
  bool bc = false;
  if (s.size() > 3 && Lower(s.substr(s.size() - 3)) == " bc") {
    bc = true;
    s = Trim(s.substr(0, s.size() - 3));
  }
  size_t i = 0;
  int64_t y = 0;
  if (!ReadDigits(s, &i, &y) || i >= s.size() || s[i] != '-') return std::nullopt;
  ++i;
  if (!ReadDigits(s, &i, &dt.month) || i >= s.size() || s[i] != '-') return std::nullopt;
  ++i;
  if (!ReadDigits(s, &i, &dt.day)) return std::nullopt;
  if (dt.month < 1 || dt.month > 12 || dt.day < 1 || dt.day > 31) return std::nullopt;
  dt.year = bc ? 1 - y : y;
  if (i < s.size() && (s[i] == ' ' || s[i] == 'T' || s[i] == 't')) {
    ++i;
    if (!ParseClock(s, &i, &dt.micros)) return std::nullopt;
    dt.has_time = true;
  }
  while (i < s.size() && s[i] == ' ') ++i;
  if (i < s.size()) {
    if (s[i] == 'Z' || s[i] == 'z') {
      dt.has_zone = true;
      ++i;
    } else if (s[i] == '+' || s[i] == '-') {
      int sign = s[i] == '-' ? -1 : 1;
      ++i;
      int64_t hh = 0, mm = 0, ss = 0;
      size_t n = 0;
      if (!ReadDigits(s, &i, &hh, &n)) return std::nullopt;
      if (n == 4) {  // +HHMM
        mm = hh % 100;
        hh /= 100;
      } else {
        if (i < s.size() && s[i] == ':') {
          ++i;
          if (!ReadDigits(s, &i, &mm)) return std::nullopt;
          if (i < s.size() && s[i] == ':') {
            ++i;
            if (!ReadDigits(s, &i, &ss)) return std::nullopt;
          }
        }
      }
      dt.has_zone = true;
      dt.zone_seconds = sign * (hh * 3600 + mm * 60 + ss);
    }
  }
  if (i != s.size()) return std::nullopt;
  return dt;
}

void AppendFraction(std::string& out, int64_t micros) {
  if (micros == 0) return;
  std::string f = fmt::format("{:06d}", micros);
  while (!f.empty() && f.back() == '0') f.pop_back();
  out += '.';
  out += f;
}

std::string FormatDate(int64_t year, int64_t month, int64_t day, bool* bc) {
  *bc = year <= 0;
  return fmt::format("{:04d}-{:02d}-{:02d}", *bc ? 1 - year : year, month, day);
}

std::string FormatClock(int64_t micros) {
  std::string out = fmt::format("{:02d}:{:02d}:{:02d}", micros / 3600000000, micros / 60000000 % 60,
                                micros / 1000000 % 60);
  AppendFraction(out, micros % 1000000);
  return out;
}

std::optional<std::string> Infinity(std::string_view text) {
  std::string l = Lower(Trim(text));
  if (l == "infinity" || l == "+infinity") return std::string("infinity");
  if (l == "-infinity") return std::string("-infinity");
  return std::nullopt;
}

// ---- intervals ----

struct IntervalParts {
  int64_t months = 0, days = 0, micros = 0;
};

// "[-]H+:MM[:SS[.f]]" -> signed microseconds.
bool ParseSignedClock(std::string_view tok, int64_t* micros) {
  int sign = 1;
  if (!tok.empty() && (tok[0] == '-' || tok[0] == '+')) {
    sign = tok[0] == '-' ? -1 : 1;
    tok.remove_prefix(1);
  }
  size_t i = 0;
  int64_t v = 0;
  if (!ParseClock(tok, &i, &v) || i != tok.size()) return false;
  *micros = sign * v;
  return true;
}

// Seconds with an optional fraction, signed, -> microseconds.
bool ParseSeconds(std::string_view tok, int64_t* micros) {
  int sign = 1;
  if (!tok.empty() && (tok[0] == '-' || tok[0] == '+')) {
    sign = tok[0] == '-' ? -1 : 1;
    tok.remove_prefix(1);
  }
  size_t i = 0;
  int64_t whole = 0;
  if (!ReadDigits(tok, &i, &whole)) return false;
  int64_t frac = 0;
  int digits = 0;
  if (i < tok.size() && tok[i] == '.') {
    ++i;
    while (i < tok.size() && IsDigit(tok[i])) {
      if (digits < 6) frac = frac * 10 + (tok[i] - '0');
      ++digits;
      ++i;
    }
  }
  if (i != tok.size()) return false;
  for (int k = std::min(digits, 6); k < 6; ++k) frac *= 10;
  *micros = sign * (whole * 1000000 + frac);
  return true;
}

std::optional<IntervalParts> ParseIso8601Interval(std::string_view s) {
  IntervalParts p;
  size_t i = 1;  // after 'P'
  bool in_time = false;
  while (i < s.size()) {
    if (s[i] == 'T' || s[i] == 't') {
      in_time = true;
      ++i;
      continue;
    }
    size_t start = i;
    if (s[i] == '-' || s[i] == '+') ++i;
    while (i < s.size() && (IsDigit(s[i]) || s[i] == '.')) ++i;
    if (i >= s.size() || i == start) return std::nullopt;
    std::string_view num = s.substr(start, i - start);
    char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(s[i++])));
    if (in_time && unit == 'S') {
      int64_t us = 0;
      if (!ParseSeconds(num, &us)) return std::nullopt;
      p.micros += us;
      continue;
    }
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (ec != std::errc() || ptr != num.data() + num.size()) return std::nullopt;
    if (!in_time && unit == 'Y') {
      p.months += 12 * v;
    } else if (!in_time && unit == 'M') {
      p.months += v;
    } else if (!in_time && unit == 'W') {
      p.days += 7 * v;
    } else if (!in_time && unit == 'D') {
      p.days += v;
    } else if (in_time && unit == 'H') {
      p.micros += v * 3600000000;
    } else if (in_time && unit == 'M') {
      p.micros += v * 60000000;
    } else {
      return std::nullopt;
    }
  }
  return p;
}

std::optional<IntervalParts> ParsePostgresInterval(std::string_view s) {
  IntervalParts p;
  std::vector<std::string_view> toks;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ') ++i;
    if (i > start) toks.push_back(s.substr(start, i - start));
  }
  if (toks.empty()) return std::nullopt;
  size_t t = 0;
  if (toks[0] == "@") ++t;  // postgres_verbose
  bool ago = false;
  for (; t < toks.size(); ++t) {
    std::string_view tok = toks[t];
    if (tok == "ago") {
      ago = true;
      continue;
    }
    if (tok.find(':') != std::string_view::npos) {
      int64_t us = 0;
      if (!ParseSignedClock(tok, &us)) return std::nullopt;
      p.micros += us;
      continue;
    }
    if (t + 1 >= toks.size()) return std::nullopt;
    std::string unit = Lower(toks[++t]);
    if (unit.starts_with("sec")) {
      int64_t us = 0;
      if (!ParseSeconds(tok, &us)) return std::nullopt;
      p.micros += us;
      continue;
    }
    if (!tok.empty() && tok[0] == '+') tok.remove_prefix(1);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (ec != std::errc() || ptr != tok.data() + tok.size()) return std::nullopt;
    if (unit.starts_with("year")) {
      p.months += 12 * v;
    } else if (unit.starts_with("mon")) {
      p.months += v;
    } else if (unit.starts_with("week")) {
      p.days += 7 * v;
    } else if (unit.starts_with("day")) {
      p.days += v;
    } else if (unit.starts_with("hour")) {
      p.micros += v * 3600000000;
    } else if (unit.starts_with("min")) {
      p.micros += v * 60000000;
    } else {
      return std::nullopt;
    }
  }
  if (ago) p = {-p.months, -p.days, -p.micros};
  return p;
}

// PostgreSQL's IntervalStyle=postgres output.
std::string FormatPostgresInterval(const IntervalParts& p) {
  std::string out;
  bool is_zero = true, is_before = false;
  auto part = [&](int64_t value, const char* unit) {
    if (value == 0) return;
    out += fmt::format("{}{}{} {}{}", is_zero ? "" : " ", is_before && value > 0 ? "+" : "", value,
                       unit, value != 1 ? "s" : "");
    is_before = value < 0;
    is_zero = false;
  };
  part(p.months / 12, "year");
  part(p.months % 12, "mon");
  part(p.days, "day");
  int64_t t = p.micros;
  if (is_zero || t != 0) {
    const int64_t hour = t / 3600000000;
    t -= hour * 3600000000;
    const int64_t min = t / 60000000;
    t -= min * 60000000;
    const int64_t sec = t / 1000000;
    const int64_t fsec = t - sec * 1000000;
    const bool minus = hour < 0 || min < 0 || sec < 0 || fsec < 0;
    out += fmt::format("{}{}{:02d}:{:02d}:{:02d}", is_zero ? "" : " ",
                       minus ? "-" : (is_before ? "+" : ""), std::abs(hour), std::abs(min),
                       std::abs(sec));
    AppendFraction(out, std::abs(fsec));
  }
  return out;
}

std::string FormatUuid(std::string_view hex32) {
  return fmt::format("{}-{}-{}-{}-{}", hex32.substr(0, 8), hex32.substr(8, 4), hex32.substr(12, 4),
                     hex32.substr(16, 4), hex32.substr(20, 12));
}

std::string StoredText(const StoredValue& v) {
  switch (v.storage) {
    case StoredValue::Storage::kInteger: return std::to_string(v.integer);
    case StoredValue::Storage::kReal: return CanonicalFloat(v.real, false);
    case StoredValue::Storage::kBlob: return "\\x" + Hex(v.bytes);
    default: return std::string(v.bytes);
  }
}

}  // namespace

std::string_view CanonKindName(CanonKind kind) {
  for (const auto& [k, name] : kKindNames) {
    if (k == kind) return name;
  }
  return "text";
}

std::optional<CanonKind> CanonKindFromName(std::string_view name) {
  for (const auto& [k, n] : kKindNames) {
    if (n == name) return k;
  }
  return std::nullopt;
}

CanonKind CanonKindForPg(const ColumnInfo& column) {
  if (column.is_array || column.kind != 'b') return CanonKind::kText;
  switch (column.base_oid) {
    case 20: case 21: case 23: case 26: return CanonKind::kInteger;  // int8 int2 int4 oid
    case 1700: return CanonKind::kNumeric;
    case 700: return CanonKind::kFloat4;
    case 701: return CanonKind::kFloat8;
    case 16: return CanonKind::kBool;
    case 17: return CanonKind::kBytea;
    case 1082: return CanonKind::kDate;
    case 1083: return CanonKind::kTime;
    case 1114: return CanonKind::kTimestamp;
    case 1184: return CanonKind::kTimestamptz;
    case 1186: return CanonKind::kInterval;
    case 2950: return CanonKind::kUuid;
    case 3802: return CanonKind::kJsonb;
    default: return CanonKind::kText;
  }
}

std::string PgCanonicalExpr(const ColumnInfo& column) {
  std::string c = QuoteIdent(column.name);
  if (!column.is_array && column.base_oid == 1700) {
    // A domain over numeric is cast to its base first.
    return column.type_oid == column.base_oid ? "trim_scale(" + c + ")"
                                              : "trim_scale(" + c + "::numeric)";
  }
  return c;
}

std::string CanonicalFloat(double value, bool float4) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  if (value == 0) return std::signbit(value) ? "-0" : "0";
  // Shortest round-trip digits, then PostgreSQL's layout: fixed notation
  // when the decimal exponent is in [-4, 15) (float4: [-4, 6)), else
  // d.ddde+XX.
  char buf[64];
  std::to_chars_result r = float4 ? std::to_chars(buf, buf + sizeof buf, static_cast<float>(value),
                                                  std::chars_format::scientific)
                                  : std::to_chars(buf, buf + sizeof buf, value,
                                                  std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  std::string out;
  if (sci.front() == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exp = 0;
  std::string_view es = sci.substr(e + 1);
  if (es.front() == '+') es.remove_prefix(1);
  std::from_chars(es.data(), es.data() + es.size(), exp);
  const int limit = float4 ? 6 : 15;
  const int n = static_cast<int>(digits.size());
  if (exp >= -4 && exp < limit) {
    if (exp < 0) {
      out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (n <= exp + 1) {
      out += digits + std::string(static_cast<size_t>(exp + 1 - n), '0');
    } else {
      out += digits.substr(0, static_cast<size_t>(exp + 1)) + "." +
             digits.substr(static_cast<size_t>(exp + 1));
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (n > 1) out += "." + digits.substr(1);
  out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
  return out;
}

std::optional<std::string> CanonicalNumeric(std::string_view text, bool trim) {
  text = Trim(text);
  std::string l = Lower(text);
  if (l == "nan") return std::string("NaN");
  if (l == "infinity" || l == "inf" || l == "+infinity" || l == "+inf") return std::string("Infinity");
  if (l == "-infinity" || l == "-inf") return std::string("-Infinity");
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
  std::string int_digits, frac_digits;
  while (i < text.size() && IsDigit(text[i])) int_digits += text[i++];
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && IsDigit(text[i])) frac_digits += text[i++];
  }
  if (int_digits.empty() && frac_digits.empty()) return std::nullopt;
  int64_t exp = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    int sign = 1;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) sign = text[i++] == '-' ? -1 : 1;
    if (!ReadDigits(text, &i, &exp) || exp > 100000) return std::nullopt;
    exp *= sign;
  }
  if (i != text.size()) return std::nullopt;
  // numeric_in: the value is digits x 10^(exp - len(frac)), shown with
  // max(0, len(frac) - exp) fractional digits.
  std::string digits = int_digits + frac_digits;
  const int64_t point = static_cast<int64_t>(int_digits.size()) + exp;  // decimal point index
  const int64_t scale = std::max<int64_t>(0, static_cast<int64_t>(frac_digits.size()) - exp);
  std::string ip, fp;
  if (point <= 0) {
    ip = "0";
    fp = std::string(static_cast<size_t>(-point), '0') + digits;
  } else if (point >= static_cast<int64_t>(digits.size())) {
    ip = digits + std::string(static_cast<size_t>(point - static_cast<int64_t>(digits.size())), '0');
  } else {
    ip = digits.substr(0, static_cast<size_t>(point));
    fp = digits.substr(static_cast<size_t>(point));
  }
  if (static_cast<int64_t>(fp.size()) < scale) fp += std::string(static_cast<size_t>(scale) - fp.size(), '0');
  if (static_cast<int64_t>(fp.size()) > scale) fp.resize(static_cast<size_t>(scale));  // only zeros
  size_t nz = ip.find_first_not_of('0');
  ip = nz == std::string::npos ? "0" : ip.substr(nz);
  if (trim) {
    while (!fp.empty() && fp.back() == '0') fp.pop_back();
  }
  const bool zero = ip == "0" && fp.find_first_not_of('0') == std::string::npos;
  std::string out = (negative && !zero) ? "-" : "";
  out += ip;
  if (!fp.empty()) out += "." + fp;
  return out;
}

std::optional<std::string> CanonicalInterval(std::string_view text) {
  text = Trim(text);
  if (text.empty()) return std::nullopt;
  std::optional<IntervalParts> p = (text[0] == 'P' || text[0] == 'p')
                                       ? ParseIso8601Interval(text)
                                       : ParsePostgresInterval(text);
  if (!p) return std::nullopt;
  return FormatPostgresInterval(*p);
}

std::optional<std::string> CanonicalTimestamp(std::string_view text, bool with_zone) {
  if (auto inf = Infinity(text)) return inf;
  auto dt = ParseDateTime(text);
  if (!dt) return std::nullopt;
  int64_t days = DaysFromCivil(dt->year, dt->month, dt->day);
  int64_t micros = dt->micros;
  if (with_zone && dt->has_zone) {
    micros -= dt->zone_seconds * 1000000;
    int64_t shift = micros >= 0 ? micros / 86400000000 : -((-micros + 86400000000 - 1) / 86400000000);
    days += shift;
    micros -= shift * 86400000000;
  }
  int64_t y = 0, m = 0, d = 0;
  CivilFromDays(days, &y, &m, &d);
  bool bc = false;
  std::string out = FormatDate(y, m, d, &bc) + " " + FormatClock(micros);
  if (with_zone) out += "+00";
  if (bc) out += " BC";
  return out;
}

std::optional<std::string> Canonicalize(CanonKind kind, const StoredValue& v) {
  using S = StoredValue::Storage;
  if (v.storage == S::kNull) return std::nullopt;
  const std::string text = StoredText(v);
  switch (kind) {
    case CanonKind::kAny:
    case CanonKind::kText:
      return text;
    case CanonKind::kInteger:
      if (v.storage == S::kReal && v.real == std::trunc(v.real) && std::abs(v.real) < 9.2e18) {
        return std::to_string(static_cast<int64_t>(v.real));
      }
      return std::string(Trim(text));
    case CanonKind::kNumeric:
      if (v.storage == S::kInteger) return text;
      return CanonicalNumeric(text, true).value_or(text);
    case CanonKind::kFloat4:
    case CanonKind::kFloat8: {
      const bool f4 = kind == CanonKind::kFloat4;
      if (v.storage == S::kReal) return CanonicalFloat(v.real, f4);
      if (v.storage == S::kInteger) return CanonicalFloat(static_cast<double>(v.integer), f4);
      if (auto d = ParseDouble(text)) return CanonicalFloat(*d, f4);
      return text;
    }
    case CanonKind::kBool: {
      if (v.storage == S::kInteger) return std::string(v.integer != 0 ? "t" : "f");
      if (v.storage == S::kReal) return std::string(v.real != 0 ? "t" : "f");
      std::string l = Lower(Trim(text));
      if (l == "t" || l == "true" || l == "1" || l == "yes" || l == "y" || l == "on") return std::string("t");
      if (l == "f" || l == "false" || l == "0" || l == "no" || l == "n" || l == "off") return std::string("f");
      return text;
    }
    case CanonKind::kBytea:
      if (v.storage == S::kText) {
        if (text.size() >= 2 && text[0] == '\\' && (text[1] == 'x' || text[1] == 'X')) return Lower(text);
        return "\\x" + Hex(v.bytes);
      }
      return text;
    case CanonKind::kDate: {
      if (auto inf = Infinity(text)) return inf;
      auto dt = ParseDateTime(text);
      if (!dt || dt->has_time) return text;
      bool bc = false;
      std::string out = FormatDate(dt->year, dt->month, dt->day, &bc);
      return bc ? out + " BC" : out;
    }
    case CanonKind::kTime: {
      std::string_view t = Trim(text);
      size_t i = 0;
      int64_t micros = 0;
      if (!ParseClock(t, &i, &micros) || i != t.size()) return text;
      return FormatClock(micros);
    }
    case CanonKind::kTimestamp:
      return CanonicalTimestamp(text, false).value_or(text);
    case CanonKind::kTimestamptz:
      return CanonicalTimestamp(text, true).value_or(text);
    case CanonKind::kInterval:
      return CanonicalInterval(text).value_or(text);
    case CanonKind::kUuid: {
      if (v.storage == S::kBlob && v.bytes.size() == 16) return FormatUuid(Hex(v.bytes));
      std::string hex;
      for (char c : Lower(text)) {
        if (std::isxdigit(static_cast<unsigned char>(c))) {
          hex += c;
        } else if (c != '-' && c != '{' && c != '}') {
          return text;
        }
      }
      return hex.size() == 32 ? FormatUuid(hex) : text;
    }
    case CanonKind::kJsonb:
      return CanonicalJsonb(text).value_or(text);
  }
  return text;
}

void AppendRecordField(std::string& out, const std::optional<std::string>& value, bool first) {
  if (!first) out += ',';
  if (!value) return;
  const std::string& v = *value;
  bool quote = v.empty();
  for (char c : v) {
    if (c == '"' || c == '\\' || c == '(' || c == ')' || c == ',' ||
        std::isspace(static_cast<unsigned char>(c))) {
      quote = true;
      break;
    }
  }
  if (!quote) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += c;
    out += c;
  }
  out += '"';
}

int64_t RowHash(std::string_view record_text) {
  md5_ctx ctx;
  md5_init(&ctx);
  md5_update(&ctx, record_text.size(), reinterpret_cast<const uint8_t*>(record_text.data()));
  uint8_t digest[MD5_DIGEST_SIZE];
  md5_digest(&ctx, MD5_DIGEST_SIZE, digest);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | digest[i];
  int64_t out = 0;
  std::memcpy(&out, &v, sizeof out);
  return out;
}

}  // namespace ferry
