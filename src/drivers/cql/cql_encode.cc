// Text form -> binary CQL values (EncodeValue in cql_types.h), with a small
// parser for the CQL literals of collections, tuples and user-defined types.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "drivers/cql/cql_types.h"

namespace ferry::cql {
namespace {

Status Bad(const CqlType& type, std::string_view text, std::string_view why = "") {
  return Status(StatusCode::kInvalidArgument,
                fmt::format("'{}' is not a valid {} value{}{}", text, TypeName(type),
                            why.empty() ? "" : ": ", why));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Big(uint64_t v, int size) {
  std::string out(static_cast<size_t>(size), '\0');
  for (int i = size - 1; i >= 0; --i, v >>= 8) out[static_cast<size_t>(i)] = static_cast<char>(v & 0xFF);
  return out;
}

template <typename T>
Result<T> ParseInt(const CqlType& type, std::string_view text) {
  T v{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range) return Bad(type, text, "out of range");
  if (ec != std::errc() || ptr != text.data() + text.size()) return Bad(type, text);
  return v;
}

Result<double> ParseFloating(const CqlType& type, std::string_view text) {
  std::string s(text);
  if (s.empty()) return Bad(type, text);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return Bad(type, text);
  return v;
}

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// Reads exactly `n` digits at *pos.
bool Digits(std::string_view s, size_t* pos, size_t n, int64_t* out) {
  if (*pos + n > s.size()) return false;
  int64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

Result<int64_t> ParseDateDays(const CqlType& type, std::string_view s, size_t* pos) {
  int64_t y, m, d;
  if (!Digits(s, pos, 4, &y) || *pos >= s.size() || s[(*pos)++] != '-' || !Digits(s, pos, 2, &m) ||
      *pos >= s.size() || s[(*pos)++] != '-' || !Digits(s, pos, 2, &d) || m < 1 || m > 12 ||
      d < 1 || d > 31) {
    return Bad(type, s, "expected YYYY-MM-DD");
  }
  return DaysFromCivil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
}

// HH:MM[:SS[.fraction]] -> nanoseconds since midnight.
Result<int64_t> ParseTimeOfDay(const CqlType& type, std::string_view s, size_t* pos) {
  int64_t h, m, sec = 0, frac = 0;
  if (!Digits(s, pos, 2, &h) || *pos >= s.size() || s[(*pos)++] != ':' || !Digits(s, pos, 2, &m) ||
      h > 23 || m > 59) {
    return Bad(type, s, "expected HH:MM:SS");
  }
  if (*pos < s.size() && s[*pos] == ':') {
    ++*pos;
    if (!Digits(s, pos, 2, &sec) || sec > 59) return Bad(type, s, "expected HH:MM:SS");
    if (*pos < s.size() && s[*pos] == '.') {
      ++*pos;
      size_t n = 0;
      while (*pos < s.size() && std::isdigit(static_cast<unsigned char>(s[*pos])) && n < 9) {
        frac = frac * 10 + (s[(*pos)++] - '0');
        ++n;
      }
      if (n == 0) return Bad(type, s, "expected digits after '.'");
      for (; n < 9; ++n) frac *= 10;
    }
  }
  return ((h * 60 + m) * 60 + sec) * 1000000000 + frac;
}

Result<std::string> EncodeDuration(const CqlType& type, std::string_view text) {
  std::string_view s = text;
  bool negative = !s.empty() && s[0] == '-';
  if (negative) s.remove_prefix(1);
  if (s.empty()) return Bad(type, text);
  int64_t months = 0, days = 0, nanos = 0;
  while (!s.empty()) {
    size_t n = 0;
    while (n < s.size() && std::isdigit(static_cast<unsigned char>(s[n]))) ++n;
    size_t u = n;
    while (u < s.size() && !std::isdigit(static_cast<unsigned char>(s[u]))) ++u;
    if (n == 0 || u == n) return Bad(type, text, "expected e.g. 1y2mo3w4d5h6m7s8ms9us10ns");
    int64_t v = 0;
    std::from_chars(s.data(), s.data() + n, v);
    std::string unit(s.substr(n, u - n));
    std::transform(unit.begin(), unit.end(), unit.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (unit == "y") months += 12 * v;
    else if (unit == "mo") months += v;
    else if (unit == "w") days += 7 * v;
    else if (unit == "d") days += v;
    else if (unit == "h") nanos += v * 3600000000000;
    else if (unit == "m") nanos += v * 60000000000;
    else if (unit == "s") nanos += v * 1000000000;
    else if (unit == "ms") nanos += v * 1000000;
    else if (unit == "us" || unit == "\xc2\xb5s") nanos += v * 1000;
    else if (unit == "ns") nanos += v;
    else return Bad(type, text, "unknown unit '" + unit + "'");
    s.remove_prefix(u);
  }
  if (negative) months = -months, days = -days, nanos = -nanos;
  std::string out;
  PutSignedVint(months, &out);
  PutSignedVint(days, &out);
  PutSignedVint(nanos, &out);
  return out;
}

Result<std::string> EncodeDecimal(const CqlType& type, std::string_view text) {
  std::string digits;
  int64_t scale = 0;
  size_t i = 0;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
    if (text[i] == '-') digits += '-';
    ++i;
  }
  bool seen_point = false, any = false;
  for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
    if (text[i] == '.' && !seen_point) {
      seen_point = true;
    } else if (std::isdigit(static_cast<unsigned char>(text[i]))) {
      digits += text[i];
      any = true;
      if (seen_point) ++scale;
    } else {
      return Bad(type, text);
    }
  }
  if (!any) return Bad(type, text);
  if (i < text.size()) {
    FERRY_ASSIGN_OR_RETURN(int64_t exp, ParseInt<int64_t>(type, text.substr(i + 1)));
    scale -= exp;
  }
  FERRY_ASSIGN_OR_RETURN(std::string unscaled, DecimalToVarint(digits));
  return Big(static_cast<uint32_t>(static_cast<int32_t>(scale)), 4) + unscaled;
}

Result<std::string> EncodeUuid(const CqlType& type, std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '-') continue;
    if (i + 1 >= text.size() || !std::isxdigit(static_cast<unsigned char>(text[i])) ||
        !std::isxdigit(static_cast<unsigned char>(text[i + 1]))) {
      return Bad(type, text);
    }
    out += static_cast<char>(std::stoi(std::string(text.substr(i, 2)), nullptr, 16));
    ++i;
  }
  if (out.size() != 16) return Bad(type, text, "expected 32 hex digits");
  return out;
}

Result<std::string> EncodeBlob(const CqlType& type, std::string_view text) {
  if (text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) text.remove_prefix(2);
  if (text.size() % 2 != 0) return Bad(type, text, "odd number of hex digits");
  std::string out;
  for (size_t i = 0; i < text.size(); i += 2) {
    if (!std::isxdigit(static_cast<unsigned char>(text[i])) ||
        !std::isxdigit(static_cast<unsigned char>(text[i + 1]))) {
      return Bad(type, text, "expected hex digits");
    }
    out += static_cast<char>(std::stoi(std::string(text.substr(i, 2)), nullptr, 16));
  }
  return out;
}

Result<std::string> EncodeScalar(const CqlType& type, std::string_view text);

// Parses CQL literals of collections, tuples and UDTs.
class LiteralParser {
 public:
  explicit LiteralParser(std::string_view text) : s_(text) {}

  Result<std::string> Top(const CqlType& type) {
    FERRY_ASSIGN_OR_RETURN(std::optional<std::string> v, Value(type));
    SkipSpace();
    if (pos_ != s_.size()) return Bad(type, s_, fmt::format("unexpected text at offset {}", pos_));
    if (!v) return Bad(type, s_, "null at the top level: pass NULL as a null parameter");
    return *v;
  }

 private:
  void SkipSpace() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool Eat(char c) {
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  Status Expect(const CqlType& type, char c) {
    if (Eat(c)) return Status();
    return Bad(type, s_, fmt::format("expected '{}' at offset {}", c, pos_));
  }

  // A quoted string ('it''s') or a bare token up to , : ] } ) or space.
  Result<std::string> Token(const CqlType& type) {
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == '\'') {
      std::string out;
      for (++pos_; pos_ < s_.size(); ++pos_) {
        if (s_[pos_] == '\'') {
          if (pos_ + 1 < s_.size() && s_[pos_ + 1] == '\'') {
            out += '\'';
            ++pos_;
            continue;
          }
          ++pos_;
          return out;
        }
        out += s_[pos_];
      }
      return Bad(type, s_, "unterminated quoted string");
    }
    size_t start = pos_;
    while (pos_ < s_.size() && std::string_view(",:]})").find(s_[pos_]) == std::string_view::npos &&
           !std::isspace(static_cast<unsigned char>(s_[pos_]))) {
      ++pos_;
    }
    if (pos_ == start) return Bad(type, s_, fmt::format("expected a value at offset {}", pos_));
    return std::string(s_.substr(start, pos_ - start));
  }

  bool NullKeyword() {
    SkipSpace();
    if (s_.substr(pos_, 4) == "null" || s_.substr(pos_, 4) == "NULL") {
      size_t after = pos_ + 4;
      if (after == s_.size() || std::string_view(",:]}) ").find(s_[after]) != std::string_view::npos) {
        pos_ = after;
        return true;
      }
    }
    return false;
  }

  static void Append(std::string* out, const std::optional<std::string>& v) {
    WireWriter w;
    w.Bytes(v);
    out->append(w.buffer());
  }

  Result<std::optional<std::string>> Value(const CqlType& type) {
    if (NullKeyword()) return std::optional<std::string>();
    switch (type.id) {
      case TypeId::kList:
      case TypeId::kSet:
      case TypeId::kMap: return Collection(type);
      case TypeId::kTuple:
      case TypeId::kUdt: return Fields(type);
      default: {
        FERRY_ASSIGN_OR_RETURN(std::string token, Token(type));
        FERRY_ASSIGN_OR_RETURN(std::string bytes, EncodeScalar(type, token));
        return std::optional<std::string>(std::move(bytes));
      }
    }
  }

  Result<std::optional<std::string>> Collection(const CqlType& type) {
    const char open = type.id == TypeId::kList ? '[' : '{';
    const char close = type.id == TypeId::kList ? ']' : '}';
    FERRY_RETURN_IF_ERROR(Expect(type, open));
    std::string body;
    int32_t n = 0;
    if (!Eat(close)) {
      do {
        FERRY_ASSIGN_OR_RETURN(auto elem, Value(type.params.at(0)));
        Append(&body, elem);
        if (type.id == TypeId::kMap) {
          FERRY_RETURN_IF_ERROR(Expect(type, ':'));
          FERRY_ASSIGN_OR_RETURN(auto value, Value(type.params.at(1)));
          Append(&body, value);
        }
        ++n;
      } while (Eat(','));
      FERRY_RETURN_IF_ERROR(Expect(type, close));
    }
    return std::optional<std::string>(Big(static_cast<uint32_t>(n), 4) + body);
  }

  Result<std::optional<std::string>> Fields(const CqlType& type) {
    const bool udt = type.id == TypeId::kUdt;
    FERRY_RETURN_IF_ERROR(Expect(type, udt ? '{' : '('));
    std::vector<std::optional<std::string>> values(type.params.size());
    size_t next = 0;
    if (!Eat(udt ? '}' : ')')) {
      do {
        size_t index = next++;
        if (udt) {
          FERRY_ASSIGN_OR_RETURN(std::string name, Token(type));
          auto it = std::find(type.field_names.begin(), type.field_names.end(), name);
          if (it == type.field_names.end()) return Bad(type, s_, "no field named '" + name + "'");
          index = static_cast<size_t>(it - type.field_names.begin());
          FERRY_RETURN_IF_ERROR(Expect(type, ':'));
        }
        if (index >= values.size()) return Bad(type, s_, "too many fields");
        FERRY_ASSIGN_OR_RETURN(values[index], Value(type.params[index]));
      } while (Eat(','));
      FERRY_RETURN_IF_ERROR(Expect(type, udt ? '}' : ')'));
    }
    std::string body;
    for (const auto& v : values) Append(&body, v);
    return std::optional<std::string>(std::move(body));
  }

  std::string_view s_;
  size_t pos_ = 0;
};

Result<std::string> EncodeScalar(const CqlType& type, std::string_view text) {
  switch (type.id) {
    case TypeId::kAscii:
      if (std::any_of(text.begin(), text.end(), [](char c) { return (c & 0x80) != 0; })) {
        return Bad(type, text, "not ASCII");
      }
      return std::string(text);
    case TypeId::kVarchar:
    case TypeId::kCustom: return std::string(text);
    case TypeId::kBlob: return EncodeBlob(type, text);
    case TypeId::kBoolean: {
      std::string lower(text);
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lower == "true" || lower == "t" || lower == "1") return std::string(1, '\x01');
      if (lower == "false" || lower == "f" || lower == "0") return std::string(1, '\x00');
      return Bad(type, text, "use true or false");
    }
    case TypeId::kBigint:
    case TypeId::kCounter: {
      FERRY_ASSIGN_OR_RETURN(int64_t v, ParseInt<int64_t>(type, text));
      return Big(static_cast<uint64_t>(v), 8);
    }
    case TypeId::kInt: {
      FERRY_ASSIGN_OR_RETURN(int32_t v, ParseInt<int32_t>(type, text));
      return Big(static_cast<uint32_t>(v), 4);
    }
    case TypeId::kSmallint: {
      FERRY_ASSIGN_OR_RETURN(int16_t v, ParseInt<int16_t>(type, text));
      return Big(static_cast<uint16_t>(v), 2);
    }
    case TypeId::kTinyint: {
      FERRY_ASSIGN_OR_RETURN(int8_t v, ParseInt<int8_t>(type, text));
      return Big(static_cast<uint8_t>(v), 1);
    }
    case TypeId::kVarint: {
      auto r = DecimalToVarint(text);
      if (!r.ok()) return Bad(type, text);
      return r;
    }
    case TypeId::kDecimal: return EncodeDecimal(type, text);
    case TypeId::kDouble: {
      FERRY_ASSIGN_OR_RETURN(double v, ParseFloating(type, text));
      return Big(std::bit_cast<uint64_t>(v), 8);
    }
    case TypeId::kFloat: {
      FERRY_ASSIGN_OR_RETURN(double v, ParseFloating(type, text));
      return Big(std::bit_cast<uint32_t>(static_cast<float>(v)), 4);
    }
    case TypeId::kTimestamp: {
      FERRY_ASSIGN_OR_RETURN(int64_t ms, ParseTimestampMillis(text));
      return Big(static_cast<uint64_t>(ms), 8);
    }
    case TypeId::kDate: {
      size_t pos = 0;
      int64_t days = 0;
      if (text.find('-', 1) == std::string_view::npos) {
        FERRY_ASSIGN_OR_RETURN(uint32_t raw, ParseInt<uint32_t>(type, text));
        return Big(raw, 4);
      }
      FERRY_ASSIGN_OR_RETURN(days, ParseDateDays(type, text, &pos));
      if (pos != text.size()) return Bad(type, text, "expected YYYY-MM-DD");
      return Big(static_cast<uint32_t>(days + (int64_t{1} << 31)), 4);
    }
    case TypeId::kTime: {
      size_t pos = 0;
      if (text.find(':') == std::string_view::npos) {
        FERRY_ASSIGN_OR_RETURN(int64_t raw, ParseInt<int64_t>(type, text));
        return Big(static_cast<uint64_t>(raw), 8);
      }
      FERRY_ASSIGN_OR_RETURN(int64_t ns, ParseTimeOfDay(type, text, &pos));
      if (pos != text.size()) return Bad(type, text, "expected HH:MM:SS.fffffffff");
      return Big(static_cast<uint64_t>(ns), 8);
    }
    case TypeId::kUuid:
    case TypeId::kTimeuuid: return EncodeUuid(type, text);
    case TypeId::kInet: {
      std::string s(text);
      unsigned char buf[16];
      if (inet_pton(AF_INET, s.c_str(), buf) == 1) return std::string(reinterpret_cast<char*>(buf), 4);
      if (inet_pton(AF_INET6, s.c_str(), buf) == 1) return std::string(reinterpret_cast<char*>(buf), 16);
      return Bad(type, text, "not an IPv4 or IPv6 address");
    }
    case TypeId::kDuration: return EncodeDuration(type, text);
    default: return Bad(type, text, "not a scalar type");
  }
}

}  // namespace

Result<int64_t> ParseTimestampMillis(std::string_view text) {
  static const CqlType kTs{.id = TypeId::kTimestamp};
  text = Trim(text);
  if (text.find('-', 1) == std::string_view::npos) return ParseInt<int64_t>(kTs, text);
  size_t pos = 0;
  FERRY_ASSIGN_OR_RETURN(int64_t days, ParseDateDays(kTs, text, &pos));
  int64_t ns = 0;
  if (pos < text.size() && (text[pos] == 'T' || text[pos] == ' ')) {
    ++pos;
    FERRY_ASSIGN_OR_RETURN(ns, ParseTimeOfDay(kTs, text, &pos));
  }
  int64_t offset_min = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int sign = text[pos++] == '-' ? -1 : 1;
    int64_t hh, mm = 0;
    if (!Digits(text, &pos, 2, &hh)) return Bad(kTs, text, "bad UTC offset");
    if (pos < text.size() && text[pos] == ':') ++pos;
    if (pos < text.size() && !Digits(text, &pos, 2, &mm)) return Bad(kTs, text, "bad UTC offset");
    offset_min = sign * (hh * 60 + mm);
  }
  if (pos != text.size()) return Bad(kTs, text, "expected YYYY-MM-DD[THH:MM:SS[.fff]][Z|+hh:mm]");
  return days * 86400000 + ns / 1000000 - offset_min * 60000;
}

Result<std::string> EncodeValue(const CqlType& type, std::string_view text) {
  switch (type.id) {
    case TypeId::kList:
    case TypeId::kSet:
    case TypeId::kMap:
    case TypeId::kTuple:
    case TypeId::kUdt: return LiteralParser(text).Top(type);
    case TypeId::kAscii:
    case TypeId::kVarchar:
    case TypeId::kCustom:
    case TypeId::kBlob: return EncodeScalar(type, text);
    default: return EncodeScalar(type, Trim(text));
  }
}

}  // namespace ferry::cql
