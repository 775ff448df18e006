// A source and a target Redis, opened and checked before a copy or verify
// writes or compares anything.
//
// OpenRedisPair connects to every master of both sides (unreachable node:
// kUnavailable; refused login: kPermissionDenied) and refuses, before any key
// is touched:
//   - a cluster whose cluster_state is not ok or whose slots are not all
//     served (kFailedPrecondition: "cluster with failed slots");
//   - a target (standalone) that is a replica (kFailedPrecondition);
//   - a source and target that are the same server (same run_id) and
//     database (kInvalidArgument).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "drivers/redis/redis_client.h"
#include "ferry/status.h"

namespace ferry::redis {

// What INFO says about one master.
struct NodeFacts {
  std::string address;
  std::string run_id;
  std::string version;   // redis_version
  int version_major = 0;
  int64_t keys = 0;       // DBSIZE
  int64_t used_memory = 0;
  int64_t used_memory_dataset = 0;
  int64_t maxmemory = 0;  // 0 = no limit
  std::string role;       // master / slave
};

struct RedisSide {
  std::unique_ptr<RedisClient> client;
  std::vector<NodeFacts> masters;  // same order as client->masters()
  int64_t TotalKeys() const;
  int64_t TotalDataset() const;
};

struct RedisPair {
  RedisSide source;
  RedisSide target;
  // Same redis_version on every master of both sides: DUMP payloads compare.
  bool same_version = false;
};

// Opens and checks one side ("source" or "target" in messages).
Result<RedisSide> OpenRedisSide(const std::string& url, std::string_view role);
// Opens both and applies the checks above.
Result<RedisPair> OpenRedisPair(const std::string& from, const std::string& to);

// INFO server/memory/replication and DBSIZE of one node.
Result<NodeFacts> ReadNodeFacts(RedisNode& node);

}  // namespace ferry::redis
