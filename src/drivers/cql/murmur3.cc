#include "drivers/cql/murmur3.h"

#include <algorithm>
#include <bit>
#include <limits>

namespace ferry::cql {
namespace {

constexpr uint64_t kC1 = 0x87c37b91114253d5ULL;
constexpr uint64_t kC2 = 0x4cf5ad432745937fULL;

uint64_t Fmix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

uint64_t LoadLittle(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A tail byte as the reference implementation sees it: a sign-extended Java byte.
uint64_t TailByte(const unsigned char* tail, int i, int shift) {
  return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(tail[i]))) << shift;
}

}  // namespace

int64_t Murmur3Token(std::string_view key) {
  const auto* data = reinterpret_cast<const unsigned char*>(key.data());
  const size_t len = key.size();
  const size_t blocks = len / 16;
  uint64_t h1 = 0, h2 = 0;

  for (size_t i = 0; i < blocks; ++i) {
    uint64_t k1 = LoadLittle(data + i * 16);
    uint64_t k2 = LoadLittle(data + i * 16 + 8);
    k1 *= kC1;
    k1 = std::rotl(k1, 31);
    k1 *= kC2;
    h1 ^= k1;
    h1 = std::rotl(h1, 27);
    h1 += h2;
    h1 = h1 * 5 + 0x52dce729;
    k2 *= kC2;
    k2 = std::rotl(k2, 33);
    k2 *= kC1;
    h2 ^= k2;
    h2 = std::rotl(h2, 31);
    h2 += h1;
    h2 = h2 * 5 + 0x38495ab5;
  }

  const unsigned char* tail = data + blocks * 16;
  const int rest = static_cast<int>(len & 15);
  uint64_t k1 = 0, k2 = 0;
  for (int i = rest - 1; i >= 8; --i) k2 ^= TailByte(tail, i, (i - 8) * 8);
  if (rest > 8) {
    k2 *= kC2;
    k2 = std::rotl(k2, 33);
    k2 *= kC1;
    h2 ^= k2;
  }
  for (int i = std::min(rest, 8) - 1; i >= 0; --i) k1 ^= TailByte(tail, i, i * 8);
  if (rest > 0) {
    k1 *= kC1;
    k1 = std::rotl(k1, 31);
    k1 *= kC2;
    h1 ^= k1;
  }

  h1 ^= len;
  h2 ^= len;
  h1 += h2;
  h2 += h1;
  h1 = Fmix(h1);
  h2 = Fmix(h2);
  h1 += h2;

  auto token = static_cast<int64_t>(h1);
  if (token == std::numeric_limits<int64_t>::min()) return std::numeric_limits<int64_t>::max();
  return token;
}

std::string RoutingKey(const std::vector<std::string>& components) {
  if (components.size() == 1) return components[0];
  std::string out;
  for (const auto& c : components) {
    out.push_back(static_cast<char>((c.size() >> 8) & 0xFF));
    out.push_back(static_cast<char>(c.size() & 0xFF));
    out += c;
    out.push_back('\0');
  }
  return out;
}

}  // namespace ferry::cql
