// CQL data types: the [option] type descriptors of result and prepared
// metadata, and conversion of values between their binary encoding
// (protocol v4, section 6) and the text form ferry's Connection speaks.
//
// Text form:
//   - scalars at the top level are plain text: 42, 3.5, true, hello,
//     0xcafe (blob), 2024-05-01T10:20:30.123Z (timestamp), 2024-05-01 (date),
//     10:20:30.000000000 (time), 1y2mo3d4h5m6s7ms8us9ns (duration),
//     550e8400-e29b-41d4-a716-446655440000 (uuid/timeuuid), 127.0.0.1 (inet);
//   - collections, tuples and user-defined types are CQL literals with their
//     string-like members quoted: ['a', 'b'], {1: 'x'}, {'k'}, (1, 'a'),
//     {name: 'x', age: 3}; null members are written null.
// EncodeValue reads the same forms (and also accepts timestamps with a space
// or an offset, a bare integer of milliseconds, blobs without 0x).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/cql/cql_wire.h"
#include "ferry/status.h"

namespace ferry::cql {

enum class TypeId : uint16_t {
  kCustom = 0x0000,
  kAscii = 0x0001,
  kBigint = 0x0002,
  kBlob = 0x0003,
  kBoolean = 0x0004,
  kCounter = 0x0005,
  kDecimal = 0x0006,
  kDouble = 0x0007,
  kFloat = 0x0008,
  kInt = 0x0009,
  kTimestamp = 0x000B,
  kUuid = 0x000C,
  kVarchar = 0x000D,
  kVarint = 0x000E,
  kTimeuuid = 0x000F,
  kInet = 0x0010,
  kDate = 0x0011,
  kTime = 0x0012,
  kSmallint = 0x0013,
  kTinyint = 0x0014,
  kDuration = 0x0015,
  kList = 0x0020,
  kMap = 0x0021,
  kSet = 0x0022,
  kUdt = 0x0030,
  kTuple = 0x0031,
};

struct CqlType {
  TypeId id = TypeId::kBlob;
  std::string custom_class;              // kCustom: the server's Java class name
  std::vector<CqlType> params;           // list/set: 1, map: 2, tuple/UDT: one per field
  std::string udt_keyspace, udt_name;    // kUdt
  std::vector<std::string> field_names;  // kUdt, same order as params
};

// Reads one [option]. Cassandra's custom DurationType becomes kDuration.
Result<CqlType> ReadType(WireReader& reader);
// CQL spelling: "int", "map<text, int>", "frozen<tuple<int, text>>" is
// reported as "tuple<int, text>" (the wire does not say frozen).
std::string TypeName(const CqlType& type);

// Binary value -> text form (see the header comment).
Result<std::string> DecodeValue(const CqlType& type, std::string_view bytes);
// Text form -> binary value; kInvalidArgument naming the type and the text.
Result<std::string> EncodeValue(const CqlType& type, std::string_view text);

// Helpers shared with the encoder and the unit tests.
std::string VarintToDecimal(std::string_view twos_complement);
Result<std::string> DecimalToVarint(std::string_view decimal);
std::string FormatTimestampMillis(int64_t millis);
Result<int64_t> ParseTimestampMillis(std::string_view text);
// Cassandra's variable-length integers (duration fields), zig-zag signed.
void PutSignedVint(int64_t v, std::string* out);
Result<int64_t> GetSignedVint(std::string_view bytes, size_t* pos);

}  // namespace ferry::cql
