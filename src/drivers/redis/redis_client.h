// A Redis deployment, standalone or Redis Cluster, behind one object.
//
// RedisClient::Open reads a redis:// or redis+cluster:// URL. A redis:// URL
// that names a node with cluster_enabled:1 is treated as a cluster too. For a
// cluster the slot map comes from CLUSTER SHARDS (CLUSTER SLOTS on servers
// before 7.0), asked of the seed nodes in turn.
//
// Pipeline() routes each command by the hash slot of its key (argument
// `key_index`), sends one pipeline per master, reads the replies, and
// follows redirections: MOVED patches the slot map, resends to the new owner
// and refreshes the whole map once the round is done; ASK resends to the
// named node preceded by ASKING (the map is left alone); TRYAGAIN waits a
// little and resends; from the third round on it waits a little more each
// round (masters disagree for a moment while a slot changes owner). After
// kMaxRedirects rounds the last error reply is returned as the command's
// reply. Replies come back in command order.
//
// Connections are opened lazily, one per node, and reused. A RedisClient
// is used by one thread at a time; open one per worker.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/url.h"
#include "drivers/redis/redis_node.h"
#include "drivers/redis/redis_slots.h"
#include "ferry/status.h"

namespace ferry::redis {

class RedisClient {
 public:
  static constexpr int kMaxRedirects = 8;

  static Result<std::unique_ptr<RedisClient>> Open(const Url& url);

  bool cluster() const { return cluster_; }
  const std::string& redacted_url() const { return redacted_url_; }
  // The masters: every master serving slots, or the one standalone server.
  const std::vector<ClusterNode>& masters() const { return masters_; }
  const SlotMap& slot_map() const { return slots_; }

  // The connection to host:port (opened on first use).
  Result<RedisNode*> Node(const std::string& host, int port);
  Result<RedisNode*> Node(const ClusterNode& node) { return Node(node.host, node.port); }
  // The master serving `key`.
  Result<RedisNode*> NodeForKey(std::string_view key);

  // Runs the commands, each routed by commands[i][key_index]; see above.
  Result<std::vector<RedisReply>> Pipeline(const std::vector<Command>& commands,
                                           size_t key_index = 1);
  // Reloads the slot map (a no-op for a standalone server).
  Status RefreshSlots();

  // How many MOVED and ASK redirects Pipeline() followed so far.
  int64_t moved_count() const { return moved_; }
  int64_t ask_count() const { return ask_; }

 private:
  RedisClient() = default;
  Status LoadSlots();
  Result<SlotMap> AskSlotMap(RedisNode& node);
  struct Route;
  Status RunRound(const std::vector<Command>& commands,
                  std::vector<Route>& routes, std::vector<RedisReply>& replies, bool* moved);

  Credentials credentials_;
  std::vector<std::pair<std::string, int>> seeds_;
  std::string redacted_url_;
  bool cluster_ = false;
  SlotMap slots_;
  std::vector<ClusterNode> masters_;
  std::map<std::string, std::unique_ptr<RedisNode>> nodes_;
  int64_t moved_ = 0;
  int64_t ask_ = 0;
};

}  // namespace ferry::redis
