// CLUSTER NODES as data, shared by the cluster operations
// (redis_cluster_ops.cc, redis_cluster_scale.cc). Internal to src/move/redis.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "drivers/redis/redis_client.h"
#include "ferry/status.h"

namespace ferry::redis {

// One line of CLUSTER NODES.
struct NodeLine {
  std::string id, address, flags, master_id;
  std::vector<std::pair<int, int>> ranges;
  std::vector<std::pair<int, std::string>> migrating;  // slot -> target id
  std::vector<std::pair<int, std::string>> importing;  // slot <- source id
  bool master() const { return flags.find("master") != std::string::npos; }
  std::string host() const { return address.substr(0, address.rfind(':')); }
  int port() const;
};

std::vector<NodeLine> ParseClusterNodes(std::string_view text);
// CLUSTER NODES as seen by the client's first master.
Result<std::vector<NodeLine>> ReadNodes(RedisClient& client);
// A client for a redis+cluster:// (or redis://) URL of a cluster;
// kInvalidArgument when the server is not in cluster mode.
Result<std::unique_ptr<RedisClient>> OpenCluster(const std::string& text);
// The master named by id (or a prefix of 4+ characters) or host:port.
Result<const NodeLine*> FindMaster(const std::vector<NodeLine>& nodes, const std::string& name);
int CountSlots(const std::vector<std::pair<int, int>>& ranges);

}  // namespace ferry::redis
