#include "drivers/cql/cql_types.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>

namespace ferry::cql {
namespace {

constexpr std::string_view kDurationClass = "org.apache.cassandra.db.marshal.DurationType";

Status BadValue(const CqlType& type, std::string_view why) {
  return Status(StatusCode::kInternal,
                fmt::format("CQL protocol error: malformed {} value: {}", TypeName(type), why));
}

uint64_t LoadBig(std::string_view b) {
  uint64_t v = 0;
  for (char c : b) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

// Days since 1970-01-01 <-> civil date (proleptic Gregorian).
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

std::string FormatDate(int64_t days) {
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  return fmt::format("{:04}-{:02}-{:02}", y, m, d);
}

bool IsQuotedInLiteral(TypeId id) {
  switch (id) {
    case TypeId::kAscii:
    case TypeId::kVarchar:
    case TypeId::kInet:
    case TypeId::kDate:
    case TypeId::kTime:
    case TypeId::kTimestamp:
    case TypeId::kCustom:
      return true;
    default:
      return false;
  }
}

std::string QuoteLiteral(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

Result<std::string> DecodeNested(const CqlType& type, std::optional<std::string_view> bytes) {
  if (!bytes) return std::string("null");
  FERRY_ASSIGN_OR_RETURN(std::string text, DecodeValue(type, *bytes));
  return IsQuotedInLiteral(type.id) ? QuoteLiteral(text) : text;
}

Result<std::string> DecodeCollection(const CqlType& type, std::string_view bytes) {
  WireReader r(bytes);
  FERRY_ASSIGN_OR_RETURN(int32_t n, r.Int());
  if (n < 0) return BadValue(type, "negative element count");
  const bool is_map = type.id == TypeId::kMap;
  std::string out = type.id == TypeId::kList ? "[" : "{";
  for (int32_t i = 0; i < n; ++i) {
    if (i > 0) out += ", ";
    FERRY_ASSIGN_OR_RETURN(auto elem, r.Bytes());
    FERRY_ASSIGN_OR_RETURN(std::string text, DecodeNested(type.params.at(0), elem));
    out += text;
    if (is_map) {
      FERRY_ASSIGN_OR_RETURN(auto value, r.Bytes());
      FERRY_ASSIGN_OR_RETURN(std::string vtext, DecodeNested(type.params.at(1), value));
      out += ": " + vtext;
    }
  }
  out += type.id == TypeId::kList ? "]" : "}";
  return out;
}

// Tuples and UDTs: one [bytes] per field; a UDT value may stop early.
Result<std::string> DecodeFields(const CqlType& type, std::string_view bytes) {
  WireReader r(bytes);
  const bool udt = type.id == TypeId::kUdt;
  std::string out = udt ? "{" : "(";
  for (size_t i = 0; i < type.params.size(); ++i) {
    std::optional<std::string_view> field;
    if (r.remaining() > 0) {
      FERRY_ASSIGN_OR_RETURN(field, r.Bytes());
    }
    if (i > 0) out += ", ";
    if (udt) out += type.field_names.at(i) + ": ";
    FERRY_ASSIGN_OR_RETURN(std::string text, DecodeNested(type.params[i], field));
    out += text;
  }
  out += udt ? "}" : ")";
  return out;
}

std::string FormatDuration(int64_t months, int64_t days, int64_t nanos) {
  if (months == 0 && days == 0 && nanos == 0) return "0s";
  std::string out = (months < 0 || days < 0 || nanos < 0) ? "-" : "";
  auto abs = [](int64_t v) { return v < 0 ? static_cast<uint64_t>(-(v + 1)) + 1 : static_cast<uint64_t>(v); };
  uint64_t mo = abs(months), d = abs(days), ns = abs(nanos);
  auto part = [&out](uint64_t v, std::string_view unit) {
    if (v != 0) out += fmt::format("{}{}", v, unit);
  };
  part(mo / 12, "y");
  part(mo % 12, "mo");
  part(d, "d");
  constexpr uint64_t kUs = 1000, kMs = 1000 * kUs, kS = 1000 * kMs, kM = 60 * kS, kH = 60 * kM;
  part(ns / kH, "h");
  part(ns % kH / kM, "m");
  part(ns % kM / kS, "s");
  part(ns % kS / kMs, "ms");
  part(ns % kMs / kUs, "us");
  part(ns % kUs, "ns");
  return out;
}

Result<std::string> DecodeDuration(const CqlType& type, std::string_view bytes) {
  size_t pos = 0;
  FERRY_ASSIGN_OR_RETURN(int64_t months, GetSignedVint(bytes, &pos));
  FERRY_ASSIGN_OR_RETURN(int64_t days, GetSignedVint(bytes, &pos));
  FERRY_ASSIGN_OR_RETURN(int64_t nanos, GetSignedVint(bytes, &pos));
  if (pos != bytes.size()) return BadValue(type, "trailing bytes");
  return FormatDuration(months, days, nanos);
}

std::string FormatUuid(std::string_view b) {
  std::string hex;
  for (size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) hex += '-';
    hex += fmt::format("{:02x}", static_cast<uint8_t>(b[i]));
  }
  return hex;
}

std::string FormatDecimal(int32_t scale, std::string_view unscaled) {
  std::string digits = VarintToDecimal(unscaled);
  bool negative = !digits.empty() && digits[0] == '-';
  if (negative) digits.erase(0, 1);
  if (scale <= 0) {
    if (digits != "0") digits.append(static_cast<size_t>(-static_cast<int64_t>(scale)), '0');
  } else {
    auto s = static_cast<size_t>(scale);
    if (digits.size() <= s) digits.insert(0, s - digits.size() + 1, '0');
    digits.insert(digits.size() - s, ".");
  }
  return (negative ? "-" : "") + digits;
}

Result<std::string> DecodeFixed(const CqlType& type, std::string_view b, size_t size) {
  if (b.size() != size) {
    return BadValue(type, fmt::format("{} bytes, expected {}", b.size(), size));
  }
  uint64_t u = LoadBig(b);
  switch (type.id) {
    case TypeId::kBigint:
    case TypeId::kCounter: return fmt::format("{}", static_cast<int64_t>(u));
    case TypeId::kInt: return fmt::format("{}", static_cast<int32_t>(static_cast<uint32_t>(u)));
    case TypeId::kSmallint: return fmt::format("{}", static_cast<int16_t>(static_cast<uint16_t>(u)));
    case TypeId::kTinyint: return fmt::format("{}", static_cast<int8_t>(static_cast<uint8_t>(u)));
    case TypeId::kBoolean: return std::string(u != 0 ? "true" : "false");
    case TypeId::kDouble: return fmt::format("{}", std::bit_cast<double>(u));
    case TypeId::kFloat: return fmt::format("{}", std::bit_cast<float>(static_cast<uint32_t>(u)));
    case TypeId::kTimestamp: return FormatTimestampMillis(static_cast<int64_t>(u));
    case TypeId::kDate: return FormatDate(static_cast<int64_t>(u) - (int64_t{1} << 31));
    case TypeId::kTime: {
      auto ns = static_cast<int64_t>(u);
      int64_t s = ns / 1000000000;
      return fmt::format("{:02}:{:02}:{:02}.{:09}", s / 3600, s / 60 % 60, s % 60, ns % 1000000000);
    }
    case TypeId::kUuid:
    case TypeId::kTimeuuid: return FormatUuid(b);
    default: return BadValue(type, "not a fixed-size type");
  }
}

}  // namespace

Result<CqlType> ReadType(WireReader& reader) {
  CqlType t;
  FERRY_ASSIGN_OR_RETURN(uint16_t id, reader.Short());
  t.id = static_cast<TypeId>(id);
  switch (t.id) {
    case TypeId::kCustom: {
      FERRY_ASSIGN_OR_RETURN(t.custom_class, reader.String());
      if (t.custom_class == kDurationClass) t.id = TypeId::kDuration;
      return t;
    }
    case TypeId::kList:
    case TypeId::kSet: {
      FERRY_ASSIGN_OR_RETURN(CqlType elem, ReadType(reader));
      t.params.push_back(std::move(elem));
      return t;
    }
    case TypeId::kMap: {
      for (int i = 0; i < 2; ++i) {
        FERRY_ASSIGN_OR_RETURN(CqlType p, ReadType(reader));
        t.params.push_back(std::move(p));
      }
      return t;
    }
    case TypeId::kUdt: {
      FERRY_ASSIGN_OR_RETURN(t.udt_keyspace, reader.String());
      FERRY_ASSIGN_OR_RETURN(t.udt_name, reader.String());
      FERRY_ASSIGN_OR_RETURN(uint16_t n, reader.Short());
      for (uint16_t i = 0; i < n; ++i) {
        FERRY_ASSIGN_OR_RETURN(std::string name, reader.String());
        FERRY_ASSIGN_OR_RETURN(CqlType p, ReadType(reader));
        t.field_names.push_back(std::move(name));
        t.params.push_back(std::move(p));
      }
      return t;
    }
    case TypeId::kTuple: {
      FERRY_ASSIGN_OR_RETURN(uint16_t n, reader.Short());
      for (uint16_t i = 0; i < n; ++i) {
        FERRY_ASSIGN_OR_RETURN(CqlType p, ReadType(reader));
        t.params.push_back(std::move(p));
      }
      return t;
    }
    default:
      if (id > 0x0015 || id == 0x000A) {
        return Status(StatusCode::kInternal,
                      fmt::format("CQL protocol error: unknown type id 0x{:04x}", id));
      }
      return t;
  }
}

std::string TypeName(const CqlType& t) {
  auto join = [&t]() {
    std::string out;
    for (size_t i = 0; i < t.params.size(); ++i) out += (i ? ", " : "") + TypeName(t.params[i]);
    return out;
  };
  switch (t.id) {
    case TypeId::kCustom: return "'" + t.custom_class + "'";
    case TypeId::kAscii: return "ascii";
    case TypeId::kBigint: return "bigint";
    case TypeId::kBlob: return "blob";
    case TypeId::kBoolean: return "boolean";
    case TypeId::kCounter: return "counter";
    case TypeId::kDecimal: return "decimal";
    case TypeId::kDouble: return "double";
    case TypeId::kFloat: return "float";
    case TypeId::kInt: return "int";
    case TypeId::kTimestamp: return "timestamp";
    case TypeId::kUuid: return "uuid";
    case TypeId::kVarchar: return "text";
    case TypeId::kVarint: return "varint";
    case TypeId::kTimeuuid: return "timeuuid";
    case TypeId::kInet: return "inet";
    case TypeId::kDate: return "date";
    case TypeId::kTime: return "time";
    case TypeId::kSmallint: return "smallint";
    case TypeId::kTinyint: return "tinyint";
    case TypeId::kDuration: return "duration";
    case TypeId::kList: return "list<" + join() + ">";
    case TypeId::kSet: return "set<" + join() + ">";
    case TypeId::kMap: return "map<" + join() + ">";
    case TypeId::kTuple: return "tuple<" + join() + ">";
    case TypeId::kUdt: return t.udt_name;
  }
  return "unknown";
}

Result<std::string> DecodeValue(const CqlType& type, std::string_view b) {
  switch (type.id) {
    case TypeId::kAscii:
    case TypeId::kVarchar:
    case TypeId::kCustom: return std::string(b);
    case TypeId::kBlob: {
      std::string out = "0x";
      for (char c : b) out += fmt::format("{:02x}", static_cast<uint8_t>(c));
      return out;
    }
    case TypeId::kBigint:
    case TypeId::kCounter:
    case TypeId::kDouble:
    case TypeId::kTimestamp:
    case TypeId::kTime: return DecodeFixed(type, b, 8);
    case TypeId::kInt:
    case TypeId::kFloat:
    case TypeId::kDate: return DecodeFixed(type, b, 4);
    case TypeId::kSmallint: return DecodeFixed(type, b, 2);
    case TypeId::kTinyint:
    case TypeId::kBoolean: return DecodeFixed(type, b, 1);
    case TypeId::kUuid:
    case TypeId::kTimeuuid: return DecodeFixed(type, b, 16);
    case TypeId::kVarint:
      if (b.empty()) return BadValue(type, "empty");
      return VarintToDecimal(b);
    case TypeId::kDecimal: {
      if (b.size() < 5) return BadValue(type, "shorter than 5 bytes");
      auto scale = static_cast<int32_t>(static_cast<uint32_t>(LoadBig(b.substr(0, 4))));
      return FormatDecimal(scale, b.substr(4));
    }
    case TypeId::kInet: {
      char buf[INET6_ADDRSTRLEN] = {};
      if (b.size() != 4 && b.size() != 16) return BadValue(type, "not 4 or 16 bytes");
      inet_ntop(b.size() == 4 ? AF_INET : AF_INET6, b.data(), buf, sizeof(buf));
      return std::string(buf);
    }
    case TypeId::kDuration: return DecodeDuration(type, b);
    case TypeId::kList:
    case TypeId::kSet:
    case TypeId::kMap: return DecodeCollection(type, b);
    case TypeId::kTuple:
    case TypeId::kUdt: return DecodeFields(type, b);
  }
  return BadValue(type, "unknown type");
}

std::string VarintToDecimal(std::string_view b) {
  if (b.empty()) return "0";
  std::vector<uint8_t> mag(b.begin(), b.end());
  const bool negative = (mag[0] & 0x80) != 0;
  if (negative) {  // two's complement -> magnitude
    for (auto& x : mag) x = static_cast<uint8_t>(~x);
    for (size_t i = mag.size(); i-- > 0;) {
      if (++mag[i] != 0) break;
    }
  }
  std::string digits;
  while (std::any_of(mag.begin(), mag.end(), [](uint8_t x) { return x != 0; })) {
    unsigned rem = 0;
    for (auto& x : mag) {
      unsigned cur = (rem << 8) | x;
      x = static_cast<uint8_t>(cur / 10);
      rem = cur % 10;
    }
    digits.push_back(static_cast<char>('0' + rem));
  }
  if (digits.empty()) digits = "0";
  if (negative) digits.push_back('-');
  std::reverse(digits.begin(), digits.end());
  return digits;
}

Result<std::string> DecimalToVarint(std::string_view text) {
  bool negative = !text.empty() && text[0] == '-';
  std::string_view digits = text.substr(negative || (!text.empty() && text[0] == '+') ? 1 : 0);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(),
                                     [](char c) { return c >= '0' && c <= '9'; })) {
    return Status(StatusCode::kInvalidArgument, fmt::format("'{}' is not an integer", text));
  }
  std::vector<uint8_t> mag{0};  // big-endian magnitude
  for (char c : digits) {
    unsigned carry = static_cast<unsigned>(c - '0');
    for (size_t i = mag.size(); i-- > 0;) {
      unsigned cur = mag[i] * 10u + carry;
      mag[i] = static_cast<uint8_t>(cur & 0xFF);
      carry = cur >> 8;
    }
    if (carry) mag.insert(mag.begin(), static_cast<uint8_t>(carry));
  }
  if (mag[0] & 0x80) mag.insert(mag.begin(), 0);  // room for the sign bit
  if (negative) {
    for (auto& x : mag) x = static_cast<uint8_t>(~x);
    for (size_t i = mag.size(); i-- > 0;) {
      if (++mag[i] != 0) break;
    }
  }
  // Shortest form: drop redundant leading sign bytes.
  size_t start = 0;
  while (start + 1 < mag.size() &&
         ((mag[start] == 0 && !(mag[start + 1] & 0x80)) ||
          (mag[start] == 0xFF && (mag[start + 1] & 0x80)))) {
    ++start;
  }
  return std::string(mag.begin() + static_cast<std::ptrdiff_t>(start), mag.end());
}

std::string FormatTimestampMillis(int64_t millis) {
  int64_t days = FloorDiv(millis, 86400000);
  int64_t ms_of_day = millis - days * 86400000;
  int64_t s = ms_of_day / 1000;
  return fmt::format("{}T{:02}:{:02}:{:02}.{:03}Z", FormatDate(days), s / 3600, s / 60 % 60,
                     s % 60, ms_of_day % 1000);
}

void PutSignedVint(int64_t v, std::string* out) {
  uint64_t u = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  int bits = 64 - std::countl_zero(u | 1);
  int size = bits <= 7 ? 1 : std::min(9, (bits - 1) / 7 + 1);
  int extra = size - 1;
  std::string bytes(static_cast<size_t>(size), '\0');
  for (int i = size - 1, shift = 0; i >= 0; --i, shift += 8) {
    bytes[static_cast<size_t>(i)] = static_cast<char>(shift < 64 ? (u >> shift) & 0xFF : 0);
  }
  if (extra > 0) bytes[0] = static_cast<char>(static_cast<uint8_t>(bytes[0]) | static_cast<uint8_t>(0xFF << (8 - extra)));
  out->append(bytes);
}

Result<int64_t> GetSignedVint(std::string_view b, size_t* pos) {
  if (*pos >= b.size()) return Status(StatusCode::kInternal, "CQL protocol error: truncated vint");
  auto first = static_cast<uint8_t>(b[(*pos)++]);
  int extra = std::countl_one(first);
  if (*pos + static_cast<size_t>(extra) > b.size()) {
    return Status(StatusCode::kInternal, "CQL protocol error: truncated vint");
  }
  uint64_t u = extra >= 8 ? 0 : (first & (0xFFu >> extra));
  for (int i = 0; i < extra; ++i) u = (u << 8) | static_cast<uint8_t>(b[(*pos)++]);
  return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
}

}  // namespace ferry::cql
