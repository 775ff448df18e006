#include "move/redis/redis_cluster_scale.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <thread>

#include "core/hash.h"
#include "core/url.h"
#include "drivers/redis/redis_client.h"
#include "move/redis/redis_checkpoint.h"
#include "move/redis/redis_cluster_nodes.h"
#include "move/redis/redis_cluster_ops.h"

namespace ferry::redis {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Result<std::pair<std::string, int>> HostPort(const std::string& address) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon != std::string::npos && colon > 0) {
    port = std::atoi(address.c_str() + colon + 1);
  }
  if (port <= 0 || port > 65535) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("node '{}': give host:port, e.g. 10.0.0.7:7000", address));
  }
  return std::make_pair(address.substr(0, colon), port);
}

// The new node: cluster mode on, knows only itself, holds no keys.
Result<std::string> CheckNewNode(RedisNode& node) {
  FERRY_ASSIGN_OR_RETURN(auto info, node.Info("cluster"));
  if (InfoValue(info, "cluster_enabled") != "1") {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} does not run in cluster mode: start it with cluster-enabled yes",
                              node.address()));
  }
  FERRY_ASSIGN_OR_RETURN(RedisReply nodes, node.RunOk({"CLUSTER", "NODES"}));
  std::vector<NodeLine> lines = ParseClusterNodes(nodes.str);
  FERRY_ASSIGN_OR_RETURN(RedisReply size, node.RunOk({"DBSIZE"}));
  if (lines.size() != 1 || size.integer != 0) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} already knows {} other node(s) and holds {} key(s): only an "
                              "empty node that is in no cluster can be added",
                              node.address(), lines.empty() ? 0 : lines.size() - 1,
                              size.integer))
        .With("hint", "CLUSTER RESET HARD on it (this deletes its keys) or use another server");
  }
  FERRY_ASSIGN_OR_RETURN(RedisReply id, node.RunOk({"CLUSTER", "MYID"}));
  return id.str;
}

// Whether every master of the cluster lists `id` as connected (and, with
// `as_replica`, as a replica).
Result<bool> EveryMasterKnows(RedisClient& client, const std::vector<NodeLine>& masters,
                              const std::string& id, bool as_replica = false) {
  for (const NodeLine& m : masters) {
    FERRY_ASSIGN_OR_RETURN(RedisNode * node, client.Node(m.host(), m.port()));
    FERRY_ASSIGN_OR_RETURN(RedisReply r, node->RunOk({"CLUSTER", "NODES"}));
    bool seen = false;
    for (const NodeLine& line : ParseClusterNodes(r.str)) {
      if (line.id == id && line.flags.find("handshake") == std::string::npos &&
          line.flags.find("noaddr") == std::string::npos &&
          (!as_replica || line.flags.find("slave") != std::string::npos)) {
        seen = true;
      }
    }
    if (!seen) return false;
  }
  return true;
}

// Waits until every node in `nodes` reports cluster_state:ok (a node just
// added learns the slot map by gossip within seconds).
Status WaitClusterOk(RedisClient& client, const std::vector<NodeLine>& nodes,
                     std::chrono::milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  for (const NodeLine& n : nodes) {
    while (true) {
      FERRY_ASSIGN_OR_RETURN(RedisNode * node, client.Node(n.host(), n.port()));
      FERRY_ASSIGN_OR_RETURN(RedisReply ci, node->RunOk({"CLUSTER", "INFO"}));
      if (ci.str.find("cluster_state:ok") != std::string::npos) break;
      if (Clock::now() >= deadline) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("{} does not report cluster_state:ok after {} ms: nothing was "
                                  "moved; check 'ferry redis cluster status' and run again",
                                  n.address, wait.count()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return Status::Ok();
}

std::vector<NodeLine> LiveMasters(const std::vector<NodeLine>& nodes) {
  std::vector<NodeLine> out;
  for (const NodeLine& n : nodes) {
    if (n.master() && n.flags.find("fail") == std::string::npos &&
        n.flags.find("handshake") == std::string::npos) {
      out.push_back(n);
    }
  }
  return out;
}

}  // namespace

Result<AddNodeReport> AddNode(const AddNodeOptions& options) {
  auto start = Clock::now();
  FERRY_ASSIGN_OR_RETURN(auto where, HostPort(options.node));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> client, OpenCluster(options.url));
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(options.url));
  auto fresh = RedisNode::Connect(where.first, where.second, CredentialsFromUrl(url));
  if (!fresh.ok()) return std::move(fresh).TakeStatus().Prefix("the node to add");
  FERRY_ASSIGN_OR_RETURN(std::string id, CheckNewNode(**fresh));
  FERRY_ASSIGN_OR_RETURN(std::vector<NodeLine> nodes, ReadNodes(*client));
  std::vector<NodeLine> masters = LiveMasters(nodes);
  const NodeLine* master = nullptr;
  if (!options.replica_of.empty()) {
    FERRY_ASSIGN_OR_RETURN(master, FindMaster(nodes, options.replica_of));
  }
  FERRY_ASSIGN_OR_RETURN(RedisNode * seed, client->Node(masters.front().host(),
                                                        masters.front().port()));
  Status met(
      seed->RunOk({"CLUSTER", "MEET", where.first, std::to_string(where.second)}).status());
  FERRY_RETURN_IF_ERROR(std::move(met).Prefix("CLUSTER MEET"));
  const auto deadline = Clock::now() + options.wait;
  while (true) {
    FERRY_ASSIGN_OR_RETURN(bool known, EveryMasterKnows(*client, masters, id));
    if (known) break;
    if (Clock::now() >= deadline) {
      return Status(StatusCode::kDeadlineExceeded,
                    fmt::format("{} was introduced (CLUSTER MEET) but not every master lists it "
                                "after {} ms: check that the masters can reach its port and its "
                                "cluster bus port (+10000)",
                                options.node, options.wait.count()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  {
    NodeLine added;
    added.address = options.node;
    FERRY_RETURN_IF_ERROR(WaitClusterOk(*client, {added}, options.wait));
  }
  AddNodeReport report{id, options.node, "master", "", 0};
  if (master != nullptr) {
    // The new node may learn of its master a moment after the others see it.
    Status replicated;
    do {
      replicated = (*fresh)->RunOk({"CLUSTER", "REPLICATE", master->id}).status();
      if (replicated.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (Clock::now() < deadline);
    FERRY_RETURN_IF_ERROR(std::move(replicated).Prefix("CLUSTER REPLICATE"));
    // Every master must see it as a replica before a rebalance counts masters.
    while (true) {
      FERRY_ASSIGN_OR_RETURN(bool known, EveryMasterKnows(*client, masters, id, true));
      if (known) break;
      if (Clock::now() >= deadline) {
        return Status(StatusCode::kDeadlineExceeded,
                      fmt::format("{} is a replica of {} but not every master knows it yet "
                                  "after {} ms",
                                  options.node, master->address, options.wait.count()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    report.role = "replica";
    report.master_id = master->id;
  }
  report.seconds = SecondsSince(start);
  return report;
}

std::vector<SlotPlanMove> PlanRebalance(const std::vector<int>& slots,
                                        const std::vector<bool>& counted,
                                        double threshold_percent) {
  std::vector<size_t> members;
  int total = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    total += slots[i];
    if (counted[i] || slots[i] > 0) members.push_back(i);
  }
  if (members.empty()) return {};
  // Fair shares; the remainder goes to the masters that hold most now.
  std::vector<int> share(slots.size(), 0);
  std::stable_sort(members.begin(), members.end(),
                   [&](size_t a, size_t b) { return slots[a] > slots[b]; });
  const int base = total / static_cast<int>(members.size());
  int extra = total % static_cast<int>(members.size());
  for (size_t i : members) share[i] = base + (extra-- > 0 ? 1 : 0);
  bool balanced = true;
  for (size_t i : members) {
    const double off = std::abs(slots[i] - share[i]) * 100.0 / std::max(1, share[i]);
    if (off > threshold_percent) balanced = false;
  }
  if (balanced) return {};
  std::vector<std::pair<size_t, int>> donors, takers;  // index, slots to give / take
  for (size_t i : members) {
    if (slots[i] > share[i]) donors.emplace_back(i, slots[i] - share[i]);
    if (slots[i] < share[i]) takers.emplace_back(i, share[i] - slots[i]);
  }
  std::vector<SlotPlanMove> moves;
  size_t d = 0, t = 0;
  while (d < donors.size() && t < takers.size()) {
    const int n = std::min(donors[d].second, takers[t].second);
    moves.push_back({donors[d].first, takers[t].first, n});
    if ((donors[d].second -= n) == 0) ++d;
    if ((takers[t].second -= n) == 0) ++t;
  }
  return moves;
}

namespace {

// The plan of a rebalance, kept in the state file so that a killed run
// resumes the same moves (each MoveSlots job is named by its slot count).
Result<std::vector<RebalanceMove>> LoadOrPlan(CheckpointStore& store, const std::string& job,
                                              const std::vector<NodeLine>& masters,
                                              const RebalanceOptions& options) {
  FERRY_ASSIGN_OR_RETURN(NodeCheckpoint head, store.Load(job, "plan"));
  std::vector<RebalanceMove> moves;
  if (head.found) {
    for (int64_t i = 0; i < head.scanned; ++i) {
      FERRY_ASSIGN_OR_RETURN(NodeCheckpoint m, store.Load(job, fmt::format("move:{}", i)));
      if (m.done) continue;
      const size_t tab = m.cursor.find('\t');
      moves.push_back({m.cursor.substr(0, tab), m.cursor.substr(tab + 1),
                       static_cast<int>(m.copied)});
    }
    return moves;
  }
  std::vector<int> slots;
  std::vector<bool> counted;
  for (const NodeLine& m : masters) {
    slots.push_back(CountSlots(m.ranges));
    counted.push_back(options.use_empty_masters || !m.ranges.empty());
  }
  for (const SlotPlanMove& p : PlanRebalance(slots, counted, options.threshold_percent)) {
    moves.push_back({masters[p.from].address, masters[p.to].address, p.slots});
  }
  return moves;
}

Status SavePlan(CheckpointStore& store, const std::string& job,
                const std::vector<RebalanceMove>& moves) {
  for (size_t i = 0; i < moves.size(); ++i) {
    NodeCheckpoint m;
    m.cursor = moves[i].from + "\t" + moves[i].to;
    m.copied = moves[i].slots;
    FERRY_RETURN_IF_ERROR(store.Save(job, fmt::format("move:{}", i), m));
  }
  NodeCheckpoint head;
  head.scanned = static_cast<int64_t>(moves.size());
  return store.Save(job, "plan", head);
}

}  // namespace

Result<RebalanceReport> Rebalance(const RebalanceOptions& options) {
  auto start = Clock::now();
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> client, OpenCluster(options.url));
  FERRY_ASSIGN_OR_RETURN(std::vector<NodeLine> nodes, ReadNodes(*client));
  std::vector<NodeLine> masters = LiveMasters(nodes);
  if (!options.dry_run) {
    FERRY_RETURN_IF_ERROR(WaitClusterOk(*client, masters, std::chrono::seconds(15)));
  }
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(options.url));
  const std::string job = "redis-rebalance-" + Sha256Hex(url.Redacted()).substr(0, 16);
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointStore> store,
                         CheckpointStore::Open(options.state_path));
  FERRY_ASSIGN_OR_RETURN(NodeCheckpoint head, store->Load(job, "plan"));
  FERRY_ASSIGN_OR_RETURN(std::vector<RebalanceMove> moves,
                         LoadOrPlan(*store, job, masters, options));
  RebalanceReport report;
  report.masters = static_cast<int>(masters.size());
  report.dry_run = options.dry_run;
  report.moves = moves;
  if (options.dry_run) return report;
  if (!head.found) FERRY_RETURN_IF_ERROR(SavePlan(*store, job, moves));
  const int64_t planned = head.found ? head.scanned : static_cast<int64_t>(moves.size());
  for (int64_t i = 0; i < planned; ++i) {
    FERRY_ASSIGN_OR_RETURN(NodeCheckpoint m, store->Load(job, fmt::format("move:{}", i)));
    if (m.done) continue;
    MoveSlotsOptions o;
    o.url = options.url;
    const size_t tab = m.cursor.find('\t');
    o.from = m.cursor.substr(0, tab);
    o.to = m.cursor.substr(tab + 1);
    o.slots = static_cast<int>(m.copied);
    o.keys_per_migrate = options.keys_per_migrate;
    o.slots_per_round = options.slots_per_round;
    o.state_path = options.state_path;
    o.bus = options.bus;
    auto moved = MoveSlots(o);
    if (!moved.ok()) {
      return std::move(moved).TakeStatus().Prefix(
          fmt::format("moving {} slots from {} to {}", o.slots, o.from, o.to));
    }
    report.keys_moved += moved->keys_moved;
    m.done = true;
    FERRY_RETURN_IF_ERROR(store->Save(job, fmt::format("move:{}", i), m));
  }
  FERRY_RETURN_IF_ERROR(store->Forget(job));
  report.seconds = SecondsSince(start);
  return report;
}

}  // namespace ferry::redis
