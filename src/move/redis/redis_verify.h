// ferry redis verify: do the target's keys match the source's?
//
// For every source key matching --match/--type (or a deterministic sample
// of them: a key is in the sample when a hash of its name falls in the
// first PERCENT of the hash space, so runs agree): the key exists on the
// target, has the same type, an expiry within `ttl_tolerance_ms` (or none
// on both sides), and the same value. Values compare by DUMP payload when
// both sides run the same Redis version and the payloads are equal; else
// by a per-type digest of the contents (GET, HGETALL, LRANGE, SMEMBERS,
// ZRANGE WITHSCORES, XRANGE; members sorted where order is not part of
// the value), so encodings that differ (listpack vs hashtable) never count
// as a change. Without sampling, target keys missing on the source are
// reported as extra. Reads only; nothing is written on either side.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "observe/event.h"

namespace ferry::redis {

struct RedisVerifyOptions {
  std::string from;
  std::string to;
  std::string match;                 // SCAN MATCH ("" = every key)
  std::string type;                  // SCAN TYPE
  double sample_percent = 100;       // (0, 100]
  int64_t ttl_tolerance_ms = 2000;
  int max_report = 100;              // differences listed (counts stay complete)
  int scan_count = 1000;
  // Receives one kVerify "table_done" event for the keys (table "keys" or
  // "keys matching <pattern>") at the end: verify's metrics (may be null).
  EventBus* bus = nullptr;
};

struct RedisKeyDifference {
  enum class Kind { kMissing, kExtra, kChanged };
  Kind kind = Kind::kChanged;
  std::string key;     // as bytes; render with care (binary keys)
  std::string detail;  // "type hash vs string", "ttl ...", "value differs"
};
std::string_view RedisDifferenceKindName(RedisKeyDifference::Kind kind);

struct RedisVerifyReport {
  int64_t checked = 0;  // source keys compared
  int64_t missing = 0, extra = 0, changed = 0;
  int64_t compared_by_dump = 0, compared_by_digest = 0;
  bool sampled = false;
  bool same_version = false;
  double seconds = 0;
  std::vector<RedisKeyDifference> differences;  // at most max_report
  bool identical() const { return missing == 0 && extra == 0 && changed == 0; }
};

Result<RedisVerifyReport> RedisVerify(const RedisVerifyOptions& options);

}  // namespace ferry::redis
