// The target's memory during a Redis copy (seed 002's "memory optimization
// during migration", done without its risk).
//
// MemoryGuard: before each page is written, the copy asks the guard. It
// reads INFO memory of every target master that has a maxmemory (at most
// every 250 ms while far from the limit, before every page once close), and
//   - at or above `slow_at` of maxmemory, slows the copy (a pause per page),
//   - at or above `stop_at`, stops it with kFailedPrecondition naming the
//     node and the figures, before the target would evict keys or refuse
//     writes. The copy's checkpoints stay: free memory or raise maxmemory,
//     then the same command resumes.
// Masters without maxmemory are not judged.
//
// PreparedTarget (`--prepare-target`): sets the lazy-freeing settings seed
// 002 recommends (lazyfree-lazy-eviction, -lazy-expire, -lazy-server-del =
// yes) on every target master and puts each master's previous values back
// in Restore(), which the copy calls at the end, also after an error. The
// seed's `maxmemory-policy allkeys-lru` is deliberately NOT applied: on a
// target being filled it would evict copied keys (data loss); the guard
// stops the copy instead.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "drivers/redis/redis_client.h"
#include "ferry/status.h"

namespace ferry::redis {

struct MemoryLimits {
  double slow_at = 0.85;  // fraction of maxmemory
  double stop_at = 0.95;
  std::chrono::milliseconds pause{100};  // per page while slowed
};

class MemoryGuard {
 public:
  explicit MemoryGuard(MemoryLimits limits) : limits_(limits) {}

  // Called by a worker before it writes a page to `target` (its own client).
  Status BeforePage(RedisClient& target);
  // How many pages were slowed so far (for the report).
  int64_t slowed_pages() const;

 private:
  // Reads the highest used/maxmemory of the target's masters; sets node_.
  Result<double> HighestRatio(RedisClient& target);

  MemoryLimits limits_;
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point last_{};
  double ratio_ = 0;
  std::string node_;       // the fullest master, "host:port"
  int64_t used_ = 0, max_ = 0;
  int64_t slowed_ = 0;
};

class PreparedTarget {
 public:
  // Applies the lazy-freeing settings; nothing is changed when a master
  // refuses CONFIG (its error is returned and the masters already changed
  // are put back).
  static Result<PreparedTarget> Apply(RedisClient& target);
  // Puts every changed setting back. Safe to call twice.
  Status Restore();

  PreparedTarget() = default;
  PreparedTarget(PreparedTarget&&) = default;
  PreparedTarget& operator=(PreparedTarget&&) = default;

  // What was changed: (node, setting, previous value).
  struct Change {
    std::string node;
    std::string setting;
    std::string previous;
  };
  const std::vector<Change>& changes() const { return changes_; }

 private:
  RedisClient* target_ = nullptr;
  std::vector<Change> changes_;
};

}  // namespace ferry::redis
