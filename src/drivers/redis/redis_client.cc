#include "drivers/redis/redis_client.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <thread>

namespace ferry::redis {

// Where one command goes this round: a node, and whether ASKING comes first.
struct RedisClient::Route {
  std::string host;
  int port = 0;
  bool asking = false;
  bool done = false;
};

Result<std::unique_ptr<RedisClient>> RedisClient::Open(const Url& url) {
  if (url.scheme() != "redis") {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("'{}' is not a Redis URL: use redis://host:port/db or "
                              "redis+cluster://h1:p1,h2:p2",
                              url.Redacted()));
  }
  FERRY_ASSIGN_OR_RETURN(TlsOptions tls, TlsOptionsFromUrl(url));
  if (tls.insecure) {
    std::fprintf(stderr,
                 "ferry: warning: %s: TLS certificate verification is off (tls_insecure): anyone "
                 "on the network path can pose as the server; give its CA with tls_ca=PATH\n",
                 url.Redacted().c_str());
  }
  std::unique_ptr<RedisClient> client(new RedisClient());
  client->credentials_ = CredentialsFromUrl(url);
  client->redacted_url_ = url.Redacted();
  FERRY_ASSIGN_OR_RETURN(client->seeds_, HostsFromUrl(url));
  client->cluster_ = url.redis_cluster();
  if (!client->cluster_) {
    auto& [host, port] = client->seeds_.front();
    FERRY_ASSIGN_OR_RETURN(RedisNode * node, client->Node(host, port));
    FERRY_ASSIGN_OR_RETURN(auto info, node->Info("cluster"));
    client->cluster_ = InfoValue(info, "cluster_enabled") == "1";
    if (!client->cluster_) {
      ClusterNode self;
      self.host = host;
      self.port = port;
      self.master = true;
      client->masters_.push_back(self);
      return client;
    }
  }
  if (client->credentials_.database != 0) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("'{}': a Redis Cluster has only database 0", url.Redacted()));
  }
  FERRY_RETURN_IF_ERROR(client->LoadSlots());
  return client;
}

Result<RedisNode*> RedisClient::Node(const std::string& host, int port) {
  std::string address = fmt::format("{}:{}", host, port);
  auto it = nodes_.find(address);
  if (it != nodes_.end() && it->second != nullptr) return it->second.get();
  Credentials c = credentials_;
  if (cluster_) c.database = 0;
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<RedisNode> node, RedisNode::Connect(host, port, c));
  RedisNode* raw = node.get();
  nodes_[address] = std::move(node);
  return raw;
}

Result<RedisNode*> RedisClient::NodeForKey(std::string_view key) {
  if (!cluster_) return Node(masters_.front());
  int owner = slots_.Owner(KeySlot(key));
  if (owner < 0) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("{}: no master serves slot {}", redacted_url_, KeySlot(key)));
  }
  return Node(slots_.nodes()[owner]);
}

Result<SlotMap> RedisClient::AskSlotMap(RedisNode& node) {
  FERRY_ASSIGN_OR_RETURN(RedisReply shards, node.Run({"CLUSTER", "SHARDS"}));
  Result<SlotMap> map = Status(StatusCode::kInternal, "no slot map");
  if (!shards.is_error()) {
    map = SlotMap::FromShards(shards);
  } else {
    FERRY_ASSIGN_OR_RETURN(RedisReply slots, node.RunOk({"CLUSTER", "SLOTS"}));
    map = SlotMap::FromSlots(slots);
  }
  if (map.ok()) map->FillUnknownHosts(node.host());
  return map;
}

Status RedisClient::LoadSlots() {
  Status last;
  std::vector<std::pair<std::string, int>> candidates = seeds_;
  for (const ClusterNode& m : masters_) candidates.emplace_back(m.host, m.port);
  for (const auto& [host, port] : candidates) {
    auto node = Node(host, port);
    if (!node.ok()) {
      last = node.status();
      if (last.code() == StatusCode::kPermissionDenied) return last;
      continue;
    }
    auto map = AskSlotMap(**node);
    if (!map.ok()) {
      last = map.status();
      continue;
    }
    slots_ = std::move(*map);
    masters_ = slots_.Masters();
    return Status::Ok();
  }
  return std::move(last).Prefix(
      fmt::format("{}: no seed node returned the cluster's slot map", redacted_url_));
}

Status RedisClient::RefreshSlots() { return cluster_ ? LoadSlots() : Status::Ok(); }

Status RedisClient::RunRound(const std::vector<Command>& commands,
                             std::vector<Route>& routes, std::vector<RedisReply>& replies,
                             bool* moved) {
  // Group the open commands by node, keeping their order within a node.
  std::map<std::string, std::vector<size_t>> groups;
  for (size_t i = 0; i < commands.size(); ++i) {
    if (!routes[i].done) groups[fmt::format("{}:{}", routes[i].host, routes[i].port)].push_back(i);
  }
  // Send to every node first, then read: the nodes work in parallel.
  std::vector<std::pair<RedisNode*, std::vector<size_t>>> sent;
  for (auto& [address, indexes] : groups) {
    const Route& r = routes[indexes.front()];
    FERRY_ASSIGN_OR_RETURN(RedisNode * node, Node(r.host, r.port));
    std::vector<Command> batch;
    batch.reserve(indexes.size());
    for (size_t i : indexes) {
      if (routes[i].asking) batch.push_back({"ASKING"});
      batch.push_back(commands[i]);
    }
    FERRY_RETURN_IF_ERROR(node->Send(batch));
    sent.emplace_back(node, std::move(indexes));
  }
  bool try_again = false;
  for (auto& [node, indexes] : sent) {
    size_t expected = indexes.size();
    for (size_t i : indexes) expected += routes[i].asking ? 1 : 0;
    FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> got, node->Receive(expected));
    size_t at = 0;
    for (size_t i : indexes) {
      if (routes[i].asking) ++at;  // ASKING's +OK
      RedisReply& reply = got[at++];
      std::string_view prefix = reply.ErrorPrefix();
      int slot = 0;
      std::string host;
      int port = 0;
      if ((prefix == "MOVED" || prefix == "ASK") && ParseRedirect(reply.str, &slot, &host, &port)) {
        routes[i] = Route{host, port, prefix == "ASK", false};
        if (prefix == "MOVED") {
          slots_.Move(slot, host, port);
          *moved = true;
          ++moved_;
        } else {
          ++ask_;
        }
      } else if (prefix == "TRYAGAIN") {
        try_again = true;  // a multi-key command during a slot move: resend later
      } else {
        routes[i].done = true;
      }
      replies[i] = std::move(reply);
    }
  }
  if (try_again) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return Status::Ok();
}

Result<std::vector<RedisReply>> RedisClient::Pipeline(const std::vector<Command>& commands,
                                                      size_t key_index) {
  std::vector<RedisReply> replies(commands.size());
  std::vector<Route> routes(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    const ClusterNode* target = &masters_.front();
    if (cluster_ && key_index < commands[i].size()) {
      int owner = slots_.Owner(KeySlot(commands[i][key_index]));
      if (owner < 0) {
        return Status(StatusCode::kUnavailable,
                      fmt::format("{}: no master serves slot {} (cluster_state not ok?)",
                                  redacted_url_, KeySlot(commands[i][key_index])));
      }
      target = &slots_.nodes()[owner];
    }
    routes[i] = Route{target->host, target->port, false, false};
  }
  bool moved_any = false;
  for (int round = 0; round < kMaxRedirects; ++round) {
    bool moved = false;
    FERRY_RETURN_IF_ERROR(RunRound(commands, routes, replies, &moved));
    moved_any = moved_any || moved;
    bool open = false;
    for (const Route& r : routes) open = open || !r.done;
    if (!open) break;
    if (round >= 2) {
      // Redirected again and again: the masters disagree while a slot
      // changes owner. Wait a little; the routes keep what the last
      // MOVED/ASK said (a reloaded map may be staler than that).
      std::this_thread::sleep_for(std::chrono::milliseconds(5 * round));
    }
  }
  if (moved_any) {
    FERRY_RETURN_IF_ERROR(RefreshSlots());
  }
  return replies;
}

}  // namespace ferry::redis
