#include "move/redis/redis_pair.h"

#include "core/numbers.h"

#include <fmt/format.h>

#include <charconv>

namespace ferry::redis {
namespace {

Status CheckClusterHealthy(RedisClient& client, std::string_view role) {
  if (!client.cluster()) return Status::Ok();
  int unassigned = client.slot_map().UnassignedSlots();
  for (const ClusterNode& m : client.masters()) {
    FERRY_ASSIGN_OR_RETURN(RedisNode * node, client.Node(m));
    FERRY_ASSIGN_OR_RETURN(RedisReply ci, node->RunOk({"CLUSTER", "INFO"}));
    std::string state;
    size_t at = ci.str.find("cluster_state:");
    if (at != std::string::npos) {
      state = ci.str.substr(at + 14, ci.str.find_first_of("\r\n", at) - at - 14);
    }
    if (state != "ok") {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{} cluster {}: node {} reports cluster_state:{} (failed or "
                                "unassigned slots); nothing was written",
                                role, client.redacted_url(), m.address(), state))
          .With("hint", "repair the cluster first: redis-cli --cluster check " + m.address());
    }
  }
  if (unassigned > 0) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} cluster {}: {} slots are served by no master; nothing was "
                              "written",
                              role, client.redacted_url(), unassigned));
  }
  return Status::Ok();
}

}  // namespace

int64_t RedisSide::TotalKeys() const {
  int64_t n = 0;
  for (const NodeFacts& f : masters) n += f.keys;
  return n;
}

int64_t RedisSide::TotalDataset() const {
  int64_t n = 0;
  for (const NodeFacts& f : masters) n += f.used_memory_dataset;
  return n;
}

Result<NodeFacts> ReadNodeFacts(RedisNode& node) {
  FERRY_ASSIGN_OR_RETURN(auto info, node.Info("all"));
  NodeFacts f;
  f.address = node.address();
  f.run_id = InfoValue(info, "run_id");
  f.version = InfoValue(info, "redis_version");
  f.version_major = static_cast<int>(LeadingInt64(f.version));
  f.used_memory = InfoNumber(info, "used_memory");
  f.used_memory_dataset = InfoNumber(info, "used_memory_dataset");
  f.maxmemory = InfoNumber(info, "maxmemory");
  f.role = InfoValue(info, "role");
  FERRY_ASSIGN_OR_RETURN(RedisReply size, node.RunOk({"DBSIZE"}));
  f.keys = size.integer;
  return f;
}

Result<RedisSide> OpenRedisSide(const std::string& url_text, std::string_view role) {
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(url_text));
  auto client = RedisClient::Open(url);
  if (!client.ok()) {
    return std::move(client).TakeStatus().Prefix(fmt::format("{} {}", role, url.Redacted()));
  }
  RedisSide side;
  side.client = std::move(*client);
  FERRY_RETURN_IF_ERROR(CheckClusterHealthy(*side.client, role));
  for (const ClusterNode& m : side.client->masters()) {
    FERRY_ASSIGN_OR_RETURN(RedisNode * node, side.client->Node(m));
    FERRY_ASSIGN_OR_RETURN(NodeFacts f, ReadNodeFacts(*node));
    side.masters.push_back(std::move(f));
  }
  return side;
}

Result<RedisPair> OpenRedisPair(const std::string& from, const std::string& to) {
  RedisPair pair;
  FERRY_ASSIGN_OR_RETURN(pair.source, OpenRedisSide(from, "source"));
  FERRY_ASSIGN_OR_RETURN(pair.target, OpenRedisSide(to, "target"));
  for (const NodeFacts& t : pair.target.masters) {
    if (t.role != "master") {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("target {} is a replica (role:{}), which refuses writes; "
                                "nothing was written",
                                t.address, t.role))
          .With("hint", "point --to at the master (INFO replication: master_host)");
    }
  }
  FERRY_ASSIGN_OR_RETURN(Url fu, Url::Parse(from));
  FERRY_ASSIGN_OR_RETURN(Url tu, Url::Parse(to));
  for (const NodeFacts& s : pair.source.masters) {
    for (const NodeFacts& t : pair.target.masters) {
      if (s.run_id == t.run_id && fu.database() == tu.database()) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("source and target are the same Redis server ({}, run_id {}) "
                                  "and database {}; nothing was written",
                                  t.address, t.run_id, tu.database()));
      }
    }
  }
  pair.same_version = true;
  for (const RedisSide* side : {&pair.source, &pair.target}) {
    for (const NodeFacts& f : side->masters) {
      pair.same_version = pair.same_version && f.version == pair.source.masters.front().version;
    }
  }
  return pair;
}

}  // namespace ferry::redis
