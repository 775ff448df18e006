// Hashes: SHA-256 for migration checksums (stable, versioned), XXH3 for
// fast chunk and row hashes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// 64-bit XXH3 of `data`.
uint64_t Xxh3(std::string_view data, uint64_t seed = 0);

}  // namespace ferry
