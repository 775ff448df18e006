// CQL native protocol v4 on the wire: frame headers, the notation's
// primitive types ([int], [string], [bytes], ...), opcodes, consistency
// levels and LZ4 body compression. Written from the protocol specification
// (native_protocol_v4.spec); see docs/cql.md.
//
// Nothing here does I/O: WireWriter appends to a buffer, WireReader reads a
// received body and reports a truncated or malformed one as kInternal
// ("protocol error") rather than reading past its end.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry::cql {

inline constexpr uint8_t kProtocolV4 = 0x04;
inline constexpr size_t kHeaderSize = 9;
inline constexpr uint32_t kMaxBodySize = 256u << 20;  // the server's own limit is lower

enum class Opcode : uint8_t {
  kError = 0x00,
  kStartup = 0x01,
  kReady = 0x02,
  kAuthenticate = 0x03,
  kOptions = 0x05,
  kSupported = 0x06,
  kQuery = 0x07,
  kResult = 0x08,
  kPrepare = 0x09,
  kExecute = 0x0A,
  kRegister = 0x0B,
  kEvent = 0x0C,
  kBatch = 0x0D,
  kAuthChallenge = 0x0E,
  kAuthResponse = 0x0F,
  kAuthSuccess = 0x10,
};
std::string_view OpcodeName(Opcode op);

// Frame header flags.
inline constexpr uint8_t kFlagCompression = 0x01;
inline constexpr uint8_t kFlagTracing = 0x02;
inline constexpr uint8_t kFlagCustomPayload = 0x04;
inline constexpr uint8_t kFlagWarning = 0x08;

struct FrameHeader {
  uint8_t version = kProtocolV4;  // high bit set on responses
  uint8_t flags = 0;
  int16_t stream = 0;
  Opcode opcode = Opcode::kError;
  uint32_t length = 0;
};
void EncodeHeader(const FrameHeader& header, std::string* out);
// Parses 9 bytes; kUnavailable when the server speaks another protocol version.
Result<FrameHeader> DecodeHeader(std::string_view bytes);

enum class Consistency : uint16_t {
  kAny = 0x0000,
  kOne = 0x0001,
  kTwo = 0x0002,
  kThree = 0x0003,
  kQuorum = 0x0004,
  kAll = 0x0005,
  kLocalQuorum = 0x0006,
  kEachQuorum = 0x0007,
  kSerial = 0x0008,
  kLocalSerial = 0x0009,
  kLocalOne = 0x000A,
};
// "LOCAL_QUORUM" (any case) -> kLocalQuorum; kInvalidArgument listing the names.
Result<Consistency> ParseConsistency(std::string_view name);
std::string_view ConsistencyName(Consistency c);

// Appends protocol primitives (big-endian).
class WireWriter {
 public:
  void Byte(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void Short(uint16_t v);
  void Int(int32_t v);
  void Long(int64_t v);
  void String(std::string_view s);      // [string]: short length
  void LongString(std::string_view s);  // [long string]: int length
  void ShortBytes(std::string_view b);  // [short bytes]
  void Bytes(const std::optional<std::string>& b);  // [bytes]: -1 for null
  void StringMap(const std::map<std::string, std::string>& m);
  void Raw(std::string_view b) { out_.append(b); }

  std::string& buffer() { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads protocol primitives from one body; every read checks the bounds.
class WireReader {
 public:
  explicit WireReader(std::string_view body) : data_(body) {}

  Result<uint8_t> Byte();
  Result<uint16_t> Short();
  Result<int32_t> Int();
  Result<int64_t> Long();
  Result<std::string> String();
  Result<std::string> LongString();
  Result<std::string> ShortBytes();
  // nullopt for a negative length (null value).
  Result<std::optional<std::string_view>> Bytes();
  Result<std::vector<std::string>> StringList();
  Result<std::map<std::string, std::vector<std::string>>> StringMultimap();
  Result<std::string_view> Raw(size_t n);

  size_t remaining() const { return data_.size() - pos_; }

 private:
  Status Truncated(std::string_view what) const;
  std::string_view data_;
  size_t pos_ = 0;
};

// LZ4 as the protocol uses it: [int uncompressed length] + one LZ4 block.
std::string Lz4Compress(std::string_view body);
Result<std::string> Lz4Decompress(std::string_view compressed);

}  // namespace ferry::cql
