// `redis copy --follow`: keyspace notifications from each source master, so
// that keys written or deleted while the copy scans (and after it) are
// copied again, and the target stays in step until the copy is stopped.
//
// KeyspaceFeed subscribes to one master's `__keyspace@DB__:*` channel on a
// connection of its own, BEFORE the scan starts, so no change made during
// the scan is missed. Notifications are turned on only for --follow: when
// the master's notify-keyspace-events lacks K (keyspace) or A (every event
// class), they are added, and Stop() puts the previous value back (also
// after an error). A reader thread collects the changed key names (deduped);
// Drain() hands them to the copy, which reads each key's current state and
// writes it (or deletes it on the target when it is gone at the source).
// Redis delivers notifications at most once and drops them when the
// subscriber's output buffer overflows; ferry's final `redis verify` is the
// proof, as docs/redis.md says.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "drivers/redis/redis_client.h"
#include "ferry/status.h"

namespace ferry::redis {

class KeyspaceFeed {
 public:
  // Connects to `master` with `credentials`, turns notifications on when
  // needed and subscribes. kPermissionDenied when CONFIG is refused.
  static Result<std::unique_ptr<KeyspaceFeed>> Start(const ClusterNode& master,
                                                     const Credentials& credentials);
  ~KeyspaceFeed();
  KeyspaceFeed(const KeyspaceFeed&) = delete;
  KeyspaceFeed& operator=(const KeyspaceFeed&) = delete;

  const ClusterNode& master() const { return master_; }
  // The keys changed since the last Drain (each once).
  std::vector<std::string> Drain();
  // Keys waiting to be drained.
  size_t pending() const;
  // The reader's error when the subscription broke (notifications lost).
  Status health() const;
  // Ends the subscription and restores notify-keyspace-events.
  Status Stop();
  // Whether this feed turned notifications on (and will restore them).
  bool changed_setting() const { return previous_ != current_; }

 private:
  KeyspaceFeed() = default;
  void Read();

  ClusterNode master_;
  Credentials credentials_;
  std::unique_ptr<RedisNode> subscriber_;
  std::string prefix_;               // "__keyspace@0__:"
  std::string previous_, current_;  // notify-keyspace-events
  mutable std::mutex mu_;
  std::set<std::string> dirty_;
  Status error_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::thread reader_;
};

}  // namespace ferry::redis
