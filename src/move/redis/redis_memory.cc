#include "move/redis/redis_memory.h"

#include <fmt/format.h>

#include <thread>

namespace ferry::redis {
namespace {

constexpr const char* kLazySettings[] = {"lazyfree-lazy-eviction", "lazyfree-lazy-expire",
                                         "lazyfree-lazy-server-del"};

Result<RedisNode*> NodeAt(RedisClient& client, const std::string& address) {
  for (const ClusterNode& m : client.masters()) {
    if (m.address() == address) return client.Node(m);
  }
  return Status(StatusCode::kNotFound, fmt::format("{} is no longer a master", address));
}

}  // namespace

Result<double> MemoryGuard::HighestRatio(RedisClient& target) {
  double highest = 0;
  for (const ClusterNode& m : target.masters()) {
    FERRY_ASSIGN_OR_RETURN(RedisNode * node, target.Node(m));
    FERRY_ASSIGN_OR_RETURN(auto info, node->Info("memory"));
    const int64_t max = InfoNumber(info, "maxmemory");
    if (max <= 0) continue;  // no limit on this master
    const int64_t used = InfoNumber(info, "used_memory");
    const double ratio = static_cast<double>(used) / static_cast<double>(max);
    if (ratio >= highest) {
      highest = ratio;
      node_ = m.address();
      used_ = used;
      max_ = max;
    }
  }
  return highest;
}

Status MemoryGuard::BeforePage(RedisClient& target) {
  bool slow = false;
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    // Far from the limit a reading stays good for 250 ms; close to it,
    // every page reads again.
    if (ratio_ >= limits_.slow_at || now - last_ >= std::chrono::milliseconds(250)) {
      FERRY_ASSIGN_OR_RETURN(ratio_, HighestRatio(target));
      last_ = now;
    }
    if (ratio_ >= limits_.stop_at) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("the target's memory is at {:.0f}% of maxmemory on {} ({} of {} "
                                "bytes): the copy stopped before the target would evict keys or "
                                "refuse writes",
                                ratio_ * 100, node_, used_, max_))
          .With("hint",
                "free memory or raise maxmemory on the target, then run the same command: it "
                "resumes from its checkpoints");
    }
    slow = ratio_ >= limits_.slow_at;
    if (slow) ++slowed_;
  }
  if (slow) std::this_thread::sleep_for(limits_.pause);
  return Status::Ok();
}

int64_t MemoryGuard::slowed_pages() const {
  std::lock_guard lock(mu_);
  return slowed_;
}

Result<PreparedTarget> PreparedTarget::Apply(RedisClient& target) {
  PreparedTarget prepared;
  prepared.target_ = &target;
  for (const ClusterNode& m : target.masters()) {
    auto node = target.Node(m);
    if (!node.ok()) {
      (void)prepared.Restore();
      return std::move(node).TakeStatus();
    }
    for (const char* setting : kLazySettings) {
      auto got = (*node)->RunOk({"CONFIG", "GET", setting});
      Status s = got.status();
      if (s.ok() && got->elements.size() == 2) {
        std::string previous = got->elements[1].str;
        if (previous == "yes") continue;
        s = (*node)->RunOk({"CONFIG", "SET", setting, "yes"}).status();
        if (s.ok()) prepared.changes_.push_back({m.address(), setting, previous});
      }
      if (!s.ok()) {
        (void)prepared.Restore();
        return std::move(s).Prefix(
            fmt::format("--prepare-target: CONFIG {} on {}", setting, m.address()));
      }
    }
  }
  return prepared;
}

Status PreparedTarget::Restore() {
  Status first;
  for (const Change& c : changes_) {
    Status s = [&]() -> Status {
      FERRY_ASSIGN_OR_RETURN(RedisNode * node, NodeAt(*target_, c.node));
      return node->RunOk({"CONFIG", "SET", c.setting, c.previous}).status();
    }();
    if (!s.ok() && first.ok()) {
      first = std::move(s).Prefix(fmt::format("restoring {} = {} on {}", c.setting, c.previous,
                                              c.node));
    }
  }
  changes_.clear();
  return first;
}

}  // namespace ferry::redis
