// Delays between retries: exponential, capped, jittered.
#pragma once

#include <chrono>

namespace ferry {

// The wait before retry number `attempt` (1-based): base * 2^(attempt-1),
// at most `cap`, then scaled by a random factor in [0.5, 1.5) so that
// processes that failed together do not retry together. Thread-safe.
std::chrono::milliseconds RetryDelay(std::chrono::milliseconds base, int attempt,
                                     std::chrono::milliseconds cap);

}  // namespace ferry
