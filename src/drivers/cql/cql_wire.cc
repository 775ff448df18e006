#include "drivers/cql/cql_wire.h"

#include <fmt/format.h>
#include <lz4.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace ferry::cql {
namespace {

Status ProtocolError(std::string message) {
  return Status(StatusCode::kInternal, "CQL protocol error: " + std::move(message));
}

uint64_t LoadBig(std::string_view b) {
  uint64_t v = 0;
  for (char c : b) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

struct ConsistencyEntry {
  std::string_view name;
  Consistency value;
};
constexpr ConsistencyEntry kConsistencies[] = {
    {"ANY", Consistency::kAny},
    {"ONE", Consistency::kOne},
    {"TWO", Consistency::kTwo},
    {"THREE", Consistency::kThree},
    {"QUORUM", Consistency::kQuorum},
    {"ALL", Consistency::kAll},
    {"LOCAL_QUORUM", Consistency::kLocalQuorum},
    {"EACH_QUORUM", Consistency::kEachQuorum},
    {"SERIAL", Consistency::kSerial},
    {"LOCAL_SERIAL", Consistency::kLocalSerial},
    {"LOCAL_ONE", Consistency::kLocalOne},
};

}  // namespace

std::string_view OpcodeName(Opcode op) {
  switch (op) {
    case Opcode::kError: return "ERROR";
    case Opcode::kStartup: return "STARTUP";
    case Opcode::kReady: return "READY";
    case Opcode::kAuthenticate: return "AUTHENTICATE";
    case Opcode::kOptions: return "OPTIONS";
    case Opcode::kSupported: return "SUPPORTED";
    case Opcode::kQuery: return "QUERY";
    case Opcode::kResult: return "RESULT";
    case Opcode::kPrepare: return "PREPARE";
    case Opcode::kExecute: return "EXECUTE";
    case Opcode::kRegister: return "REGISTER";
    case Opcode::kEvent: return "EVENT";
    case Opcode::kBatch: return "BATCH";
    case Opcode::kAuthChallenge: return "AUTH_CHALLENGE";
    case Opcode::kAuthResponse: return "AUTH_RESPONSE";
    case Opcode::kAuthSuccess: return "AUTH_SUCCESS";
  }
  return "UNKNOWN";
}

void EncodeHeader(const FrameHeader& header, std::string* out) {
  out->push_back(static_cast<char>(header.version));
  out->push_back(static_cast<char>(header.flags));
  out->push_back(static_cast<char>((static_cast<uint16_t>(header.stream) >> 8) & 0xFF));
  out->push_back(static_cast<char>(static_cast<uint16_t>(header.stream) & 0xFF));
  out->push_back(static_cast<char>(header.opcode));
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((header.length >> shift) & 0xFF));
  }
}

Result<FrameHeader> DecodeHeader(std::string_view bytes) {
  if (bytes.size() < kHeaderSize) return ProtocolError("short frame header");
  FrameHeader h;
  h.version = static_cast<uint8_t>(bytes[0]);
  if ((h.version & 0x7F) != kProtocolV4) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("the server answered with CQL protocol version {}; ferry speaks "
                              "version 4 (Cassandra 2.2+, ScyllaDB)",
                              h.version & 0x7F));
  }
  h.flags = static_cast<uint8_t>(bytes[1]);
  h.stream = static_cast<int16_t>(LoadBig(bytes.substr(2, 2)));
  h.opcode = static_cast<Opcode>(static_cast<uint8_t>(bytes[4]));
  h.length = static_cast<uint32_t>(LoadBig(bytes.substr(5, 4)));
  if (h.length > kMaxBodySize) {
    return ProtocolError(fmt::format("frame body of {} bytes is larger than {}", h.length,
                                     kMaxBodySize));
  }
  return h;
}

Result<Consistency> ParseConsistency(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  std::string known;
  for (const auto& e : kConsistencies) {
    if (e.name == upper) return e.value;
    known += known.empty() ? "" : ", ";
    known += e.name;
  }
  return Status(StatusCode::kInvalidArgument,
                fmt::format("unknown consistency level '{}' (use one of {})", name, known));
}

std::string_view ConsistencyName(Consistency c) {
  for (const auto& e : kConsistencies) {
    if (e.value == c) return e.name;
  }
  return "UNKNOWN";
}

void WireWriter::Short(uint16_t v) {
  Byte(static_cast<uint8_t>(v >> 8));
  Byte(static_cast<uint8_t>(v & 0xFF));
}

void WireWriter::Int(int32_t v) {
  auto u = static_cast<uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8) Byte(static_cast<uint8_t>((u >> shift) & 0xFF));
}

void WireWriter::Long(int64_t v) {
  auto u = static_cast<uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8) Byte(static_cast<uint8_t>((u >> shift) & 0xFF));
}

void WireWriter::String(std::string_view s) {
  Short(static_cast<uint16_t>(s.size()));
  out_.append(s);
}

void WireWriter::LongString(std::string_view s) {
  Int(static_cast<int32_t>(s.size()));
  out_.append(s);
}

void WireWriter::ShortBytes(std::string_view b) { String(b); }

void WireWriter::Bytes(const std::optional<std::string>& b) {
  if (!b) {
    Int(-1);
    return;
  }
  Int(static_cast<int32_t>(b->size()));
  out_.append(*b);
}

void WireWriter::StringMap(const std::map<std::string, std::string>& m) {
  Short(static_cast<uint16_t>(m.size()));
  for (const auto& [k, v] : m) {
    String(k);
    String(v);
  }
}

Status WireReader::Truncated(std::string_view what) const {
  return ProtocolError(fmt::format("truncated {} at byte {} of {}", what, pos_, data_.size()));
}

Result<std::string_view> WireReader::Raw(size_t n) {
  if (remaining() < n) return Truncated("value");
  std::string_view out = data_.substr(pos_, n);
  pos_ += n;
  return out;
}

Result<uint8_t> WireReader::Byte() {
  if (remaining() < 1) return Truncated("[byte]");
  return static_cast<uint8_t>(data_[pos_++]);
}

Result<uint16_t> WireReader::Short() {
  if (remaining() < 2) return Truncated("[short]");
  auto v = static_cast<uint16_t>(LoadBig(data_.substr(pos_, 2)));
  pos_ += 2;
  return v;
}

Result<int32_t> WireReader::Int() {
  if (remaining() < 4) return Truncated("[int]");
  auto v = static_cast<int32_t>(static_cast<uint32_t>(LoadBig(data_.substr(pos_, 4))));
  pos_ += 4;
  return v;
}

Result<int64_t> WireReader::Long() {
  if (remaining() < 8) return Truncated("[long]");
  auto v = static_cast<int64_t>(LoadBig(data_.substr(pos_, 8)));
  pos_ += 8;
  return v;
}

Result<std::string> WireReader::String() {
  FERRY_ASSIGN_OR_RETURN(uint16_t n, Short());
  FERRY_ASSIGN_OR_RETURN(std::string_view s, Raw(n));
  return std::string(s);
}

Result<std::string> WireReader::LongString() {
  FERRY_ASSIGN_OR_RETURN(int32_t n, Int());
  if (n < 0) return ProtocolError("negative [long string] length");
  FERRY_ASSIGN_OR_RETURN(std::string_view s, Raw(static_cast<size_t>(n)));
  return std::string(s);
}

Result<std::string> WireReader::ShortBytes() { return String(); }

Result<std::optional<std::string_view>> WireReader::Bytes() {
  FERRY_ASSIGN_OR_RETURN(int32_t n, Int());
  if (n < 0) return std::optional<std::string_view>();
  FERRY_ASSIGN_OR_RETURN(std::string_view s, Raw(static_cast<size_t>(n)));
  return std::optional<std::string_view>(s);
}

Result<std::vector<std::string>> WireReader::StringList() {
  FERRY_ASSIGN_OR_RETURN(uint16_t n, Short());
  std::vector<std::string> out;
  for (uint16_t i = 0; i < n; ++i) {
    FERRY_ASSIGN_OR_RETURN(std::string s, String());
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::map<std::string, std::vector<std::string>>> WireReader::StringMultimap() {
  FERRY_ASSIGN_OR_RETURN(uint16_t n, Short());
  std::map<std::string, std::vector<std::string>> out;
  for (uint16_t i = 0; i < n; ++i) {
    FERRY_ASSIGN_OR_RETURN(std::string key, String());
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> values, StringList());
    out[key] = std::move(values);
  }
  return out;
}

std::string Lz4Compress(std::string_view body) {
  WireWriter w;
  w.Int(static_cast<int32_t>(body.size()));
  std::string out = w.Take();
  int bound = LZ4_compressBound(static_cast<int>(body.size()));
  out.resize(4 + static_cast<size_t>(bound));
  int n = LZ4_compress_default(body.data(), out.data() + 4, static_cast<int>(body.size()), bound);
  out.resize(4 + static_cast<size_t>(std::max(n, 0)));
  return out;
}

Result<std::string> Lz4Decompress(std::string_view compressed) {
  WireReader r(compressed);
  FERRY_ASSIGN_OR_RETURN(int32_t size, r.Int());
  if (size < 0 || static_cast<uint32_t>(size) > kMaxBodySize) {
    return ProtocolError(fmt::format("LZ4 body claims {} bytes", size));
  }
  std::string out(static_cast<size_t>(size), '\0');
  if (size == 0) return out;
  int n = LZ4_decompress_safe(compressed.data() + 4, out.data(),
                              static_cast<int>(compressed.size() - 4), size);
  if (n != size) return ProtocolError("LZ4 body does not decompress to its stated length");
  return out;
}

}  // namespace ferry::cql
