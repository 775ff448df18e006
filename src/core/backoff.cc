#include "core/backoff.h"

#include <algorithm>
#include <cstdint>
#include <random>

namespace ferry {

std::chrono::milliseconds RetryDelay(std::chrono::milliseconds base, int attempt,
                                     std::chrono::milliseconds cap) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const int shift = std::clamp(attempt - 1, 0, 20);
  const double ceiling = static_cast<double>(
      std::min<int64_t>(cap.count(), static_cast<int64_t>(base.count()) << shift));
  return std::chrono::milliseconds(
      static_cast<int64_t>(ceiling * std::uniform_real_distribution<double>(0.5, 1.5)(rng)));
}

}  // namespace ferry
