// The token of a partition key under Cassandra's Murmur3Partitioner (also
// ScyllaDB's default), for token-aware routing.
//
// The partitioner hashes the serialized partition key with MurmurHash3
// x64_128 (seed 0) and uses the first 64-bit half as a signed token, with one
// quirk: bytes of the tail (the last len % 16) are sign-extended before they
// are shifted in, because the reference implementation reads them as Java's
// signed bytes. The lowest token, INT64_MIN, is reserved and maps to INT64_MAX.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::cql {

int64_t Murmur3Token(std::string_view key);

// The routing key of a partition key: the single component as is, or for a
// composite key each component as [short length][bytes][0x00].
std::string RoutingKey(const std::vector<std::string>& components);

}  // namespace ferry::cql
