#include "move/redis/redis_cluster_nodes.h"

#include <fmt/format.h>

#include <charconv>

#include "core/url.h"

namespace ferry::redis {

int NodeLine::port() const {
  int p = 0;
  std::string_view s(address);
  s = s.substr(s.rfind(':') + 1);
  std::from_chars(s.data(), s.data() + s.size(), p);
  return p;
}

std::vector<NodeLine> ParseClusterNodes(std::string_view text) {
  std::vector<NodeLine> out;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    std::vector<std::string_view> f;
    while (!line.empty()) {
      size_t sp = line.find(' ');
      if (sp != 0) f.push_back(line.substr(0, sp));
      line.remove_prefix(sp == std::string_view::npos ? line.size() : sp + 1);
    }
    if (f.size() < 8) continue;
    NodeLine n;
    n.id = f[0];
    n.address = std::string(f[1].substr(0, f[1].find('@')));
    n.flags = f[2];
    n.master_id = f[3];
    for (size_t i = 8; i < f.size(); ++i) {
      std::string_view s = f[i];
      int a = 0, b = 0;
      if (s.front() == '[') {
        size_t arrow = s.find("->-");
        size_t back = s.find("-<-");
        std::from_chars(s.data() + 1, s.data() + s.size(), a);
        if (arrow != std::string_view::npos) {
          n.migrating.emplace_back(a, std::string(s.substr(arrow + 3, s.size() - arrow - 4)));
        } else if (back != std::string_view::npos) {
          n.importing.emplace_back(a, std::string(s.substr(back + 3, s.size() - back - 4)));
        }
        continue;
      }
      auto r = std::from_chars(s.data(), s.data() + s.size(), a);
      b = a;
      if (r.ptr < s.data() + s.size() && *r.ptr == '-') {
        std::from_chars(r.ptr + 1, s.data() + s.size(), b);
      }
      n.ranges.emplace_back(a, b);
    }
    out.push_back(std::move(n));
  }
  return out;
}

Result<std::vector<NodeLine>> ReadNodes(RedisClient& client) {
  FERRY_ASSIGN_OR_RETURN(RedisNode * node, client.Node(client.masters().front()));
  FERRY_ASSIGN_OR_RETURN(RedisReply r, node->RunOk({"CLUSTER", "NODES"}));
  std::vector<NodeLine> nodes = ParseClusterNodes(r.str);
  // A node that has met no other yet does not know its own IP (":port").
  for (NodeLine& n : nodes) {
    if (!n.address.empty() && n.address.front() == ':') n.address = node->host() + n.address;
  }
  return nodes;
}

Result<std::unique_ptr<RedisClient>> OpenCluster(const std::string& text) {
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(text));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> client, RedisClient::Open(url));
  if (!client->cluster()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} is not a Redis Cluster (cluster_enabled:0)", url.Redacted()));
  }
  return client;
}

Result<const NodeLine*> FindMaster(const std::vector<NodeLine>& nodes, const std::string& name) {
  const NodeLine* found = nullptr;
  for (const NodeLine& n : nodes) {
    if (!n.master()) continue;
    if (n.address == name || (name.size() >= 4 && n.id.starts_with(name))) {
      if (found != nullptr) {
        return Status(StatusCode::kInvalidArgument, "node '" + name + "' is ambiguous");
      }
      found = &n;
    }
  }
  if (found == nullptr) {
    return Status(StatusCode::kNotFound,
                  fmt::format("no master '{}' in the cluster: give a node id (or a prefix of at "
                              "least 4 characters) or host:port from 'ferry redis cluster status'",
                              name));
  }
  return found;
}

int CountSlots(const std::vector<std::pair<int, int>>& ranges) {
  int n = 0;
  for (auto [a, b] : ranges) n += b - a + 1;
  return n;
}

}  // namespace ferry::redis
