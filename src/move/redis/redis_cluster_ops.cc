#include "move/redis/redis_cluster_ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <set>

#include "core/hash.h"
#include "drivers/redis/redis_client.h"
#include "move/redis/redis_checkpoint.h"
#include "move/redis/redis_cluster_nodes.h"

namespace ferry::redis {

Result<ClusterStatusReport> ClusterStatus(const std::string& url) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> client, OpenCluster(url));
  FERRY_ASSIGN_OR_RETURN(std::vector<NodeLine> nodes, ReadNodes(*client));
  ClusterStatusReport report;
  FERRY_ASSIGN_OR_RETURN(RedisNode * any, client->Node(client->masters().front()));
  FERRY_ASSIGN_OR_RETURN(RedisReply info, any->RunOk({"CLUSTER", "INFO"}));
  size_t at = info.str.find("cluster_state:");
  if (at != std::string::npos) {
    report.state = info.str.substr(at + 14, info.str.find_first_of("\r\n", at) - at - 14);
  }
  for (const NodeLine& n : nodes) {
    if (!n.master()) continue;
    ClusterMasterStatus m;
    m.id = n.id;
    m.address = n.address;
    m.flags = n.flags;
    m.ranges = n.ranges;
    m.slots = CountSlots(n.ranges);
    report.slots_assigned += m.slots;
    for (const NodeLine& r : nodes) m.replicas += r.master_id == n.id ? 1 : 0;
    if (n.flags.find("fail") == std::string::npos) {
      auto node = client->Node(n.host(), n.port());
      if (node.ok()) {
        auto size = (*node)->RunOk({"DBSIZE"});
        if (size.ok()) m.keys = size->integer;
        // Its own MIGRATING/IMPORTING slots show only in its "myself" line.
        auto own = (*node)->RunOk({"CLUSTER", "NODES"});
        for (const NodeLine& line : own.ok() ? ParseClusterNodes(own->str) : std::vector<NodeLine>{}) {
          if (line.id != n.id) continue;
          for (const auto& [s, id] : line.migrating) m.migrating.push_back(fmt::format("{}->{}", s, id));
          for (const auto& [s, id] : line.importing) m.importing.push_back(fmt::format("{}<-{}", s, id));
        }
      }
    }
    report.migrating_slots += static_cast<int>(m.migrating.size());
    report.masters.push_back(std::move(m));
  }
  return report;
}

namespace {

class SlotMover {
 public:
  SlotMover(RedisClient& client, const MoveSlotsOptions& options, const NodeLine& from,
            const NodeLine& to, std::vector<NodeLine> nodes, Credentials credentials)
      : client_(client), options_(options), from_(from), to_(to), nodes_(std::move(nodes)),
        credentials_(std::move(credentials)) {}

  // Moves `slots` together; `already_owned`: slots the target owns already
  // (a killed run stopped after step 4 on the target).
  Status MoveGroup(const std::vector<int>& slots, const std::set<int>& already_owned);
  int64_t keys_moved() const { return keys_; }

 private:
  Status PipelineOk(const NodeLine& node, const std::vector<Command>& commands, std::string_view what);
  Status MigrateKeys(std::vector<int> slots);

  RedisClient& client_;
  const MoveSlotsOptions& options_;
  const NodeLine& from_;
  const NodeLine& to_;
  std::vector<NodeLine> nodes_;
  Credentials credentials_;
  int64_t keys_ = 0;
};

Status SlotMover::PipelineOk(const NodeLine& node, const std::vector<Command>& commands,
                             std::string_view what) {
  if (commands.empty()) return Status::Ok();
  FERRY_ASSIGN_OR_RETURN(RedisNode * n, client_.Node(node.host(), node.port()));
  FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> replies, n->Pipeline(commands));
  for (size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].is_error()) {
      return ReplyError(replies[i], fmt::format("{} (slot {})", what, commands[i][2]), node.address);
    }
  }
  return Status::Ok();
}

Status SlotMover::MigrateKeys(std::vector<int> slots) {
  FERRY_ASSIGN_OR_RETURN(RedisNode * src, client_.Node(from_.host(), from_.port()));
  while (!slots.empty()) {
    std::vector<Command> gets;
    for (int s : slots) {
      gets.push_back({"CLUSTER", "GETKEYSINSLOT", std::to_string(s),
                      std::to_string(options_.keys_per_migrate)});
    }
    FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> keys, src->Pipeline(gets));
    std::vector<Command> migrates;
    std::vector<int64_t> counts;
    std::vector<int> still;
    for (size_t i = 0; i < slots.size(); ++i) {
      if (keys[i].is_error()) return ReplyError(keys[i], "CLUSTER GETKEYSINSLOT", from_.address);
      if (keys[i].elements.empty()) continue;
      Command m{"MIGRATE", to_.host(), std::to_string(to_.port()), "", "0",
                std::to_string(options_.migrate_timeout_ms)};
      if (!credentials_.password.empty()) {
        if (credentials_.user.empty()) {
          m.insert(m.end(), {"AUTH", credentials_.password});
        } else {
          m.insert(m.end(), {"AUTH2", credentials_.user, credentials_.password});
        }
      }
      m.push_back("KEYS");
      counts.push_back(static_cast<int64_t>(keys[i].elements.size()));
      for (RedisReply& k : keys[i].elements) m.push_back(std::move(k.str));
      migrates.push_back(std::move(m));
      still.push_back(slots[i]);
    }
    FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> done, src->Pipeline(migrates));
    for (size_t i = 0; i < done.size(); ++i) {
      if (done[i].is_error() && done[i].str != "NOKEY") {
        // The reply may echo the MIGRATE line: never show it (AUTH password).
        return Status(StatusCode::kUnknown,
                      fmt::format("MIGRATE of slot {} from {} to {} failed: {}", still[i],
                                  from_.address, to_.address,
                                  RedactSecrets(done[i].str.substr(0, 200))))
            .With("hint", "fix the cause and run the same command again: the slot is left "
                          "MIGRATING and is finished first");
      }
      keys_ += counts[i];
    }
    slots = std::move(still);
  }
  return Status::Ok();
}

Status SlotMover::MoveGroup(const std::vector<int>& slots, const std::set<int>& already_owned) {
  std::vector<int> open;
  for (int s : slots) {
    if (!already_owned.contains(s)) open.push_back(s);
  }
  std::vector<Command> importing, migrating;
  for (int s : open) {
    importing.push_back({"CLUSTER", "SETSLOT", std::to_string(s), "IMPORTING", from_.id});
    migrating.push_back({"CLUSTER", "SETSLOT", std::to_string(s), "MIGRATING", to_.id});
  }
  FERRY_RETURN_IF_ERROR(PipelineOk(to_, importing, "CLUSTER SETSLOT IMPORTING"));
  FERRY_RETURN_IF_ERROR(PipelineOk(from_, migrating, "CLUSTER SETSLOT MIGRATING"));
  FERRY_RETURN_IF_ERROR(MigrateKeys(open));
  std::vector<Command> owner, to_target;
  for (int s : slots) owner.push_back({"CLUSTER", "SETSLOT", std::to_string(s), "NODE", to_.id});
  for (int s : open) to_target.push_back({"CLUSTER", "SETSLOT", std::to_string(s), "NODE", to_.id});
  // The target first (it bumps its epoch and owns the slot), then the source
  // (which stops redirecting with ASK), then every other master.
  FERRY_RETURN_IF_ERROR(PipelineOk(to_, to_target, "CLUSTER SETSLOT NODE"));
  FERRY_RETURN_IF_ERROR(PipelineOk(from_, owner, "CLUSTER SETSLOT NODE"));
  for (const NodeLine& n : nodes_) {
    if (!n.master() || n.id == from_.id || n.id == to_.id || n.flags.find("fail") != std::string::npos) {
      continue;
    }
    FERRY_RETURN_IF_ERROR(PipelineOk(n, owner, "CLUSTER SETSLOT NODE"));
  }
  return Status::Ok();
}

std::string MoveJob(const MoveSlotsOptions& o, const NodeLine& from, const NodeLine& to) {
  auto url = Url::Parse(o.url);
  std::string spec = fmt::format("{}\n{}\n{}\n{}", url.ok() ? url->Redacted() : "", from.id,
                                 to.id, o.slots);
  return "redis-slots-" + Sha256Hex(spec).substr(0, 16);
}

// A slot move's figures for its events.
RedisProgress MoveProgress(int64_t slots_done, int slots, const SlotMover& mover,
                           std::chrono::steady_clock::time_point start) {
  RedisProgress p;
  p.slots_done = static_cast<int>(slots_done);
  p.slots = slots;
  p.copied = mover.keys_moved();
  p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return p;
}

}  // namespace

Result<MoveSlotsReport> MoveSlots(const MoveSlotsOptions& options) {
  if (options.slots < 1 || options.keys_per_migrate < 1 || options.slots_per_round < 1) {
    return Status(StatusCode::kInvalidArgument, "--slots and batch sizes must be at least 1");
  }
  auto start = std::chrono::steady_clock::now();
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> client, OpenCluster(options.url));
  FERRY_ASSIGN_OR_RETURN(std::vector<NodeLine> nodes, ReadNodes(*client));
  FERRY_ASSIGN_OR_RETURN(const NodeLine* from_p, FindMaster(nodes, options.from));
  FERRY_ASSIGN_OR_RETURN(const NodeLine* to_p, FindMaster(nodes, options.to));
  NodeLine from = *from_p, to = *to_p;
  // A node shows its own MIGRATING/IMPORTING slots only in its "myself"
  // line: ask the two masters themselves.
  for (NodeLine* n : {&from, &to}) {
    FERRY_ASSIGN_OR_RETURN(RedisNode * node, client->Node(n->host(), n->port()));
    FERRY_ASSIGN_OR_RETURN(RedisReply own, node->RunOk({"CLUSTER", "NODES"}));
    for (NodeLine& line : ParseClusterNodes(own.str)) {
      if (line.id != n->id) continue;
      n->migrating = std::move(line.migrating);
      n->importing = std::move(line.importing);
    }
  }
  if (from.id == to.id) {
    return Status(StatusCode::kInvalidArgument, "--from and --to name the same master");
  }
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(options.url));
  SlotMover mover(*client, options, from, to, nodes, CredentialsFromUrl(url));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointStore> store,
                         CheckpointStore::Open(options.state_path));
  std::string job = MoveJob(options, from, to);
  const std::string label = DatabaseLabel(options.url);
  FERRY_ASSIGN_OR_RETURN(NodeCheckpoint cp, store->Load(job, "slots"));
  MoveSlotsReport report;
  report.from_address = from.address;
  report.to_address = to.address;

  // 1. Slots a killed run left half moved between these two masters.
  std::set<int> pending, owned_by_target;
  for (const auto& [s, id] : from.migrating) {
    if (id == to.id) pending.insert(s);
  }
  for (const auto& [s, id] : to.importing) {
    if (id == from.id) pending.insert(s);
  }
  for (auto [a, b] : to.ranges) {
    for (int s = a; s <= b; ++s) {
      if (pending.contains(s)) owned_by_target.insert(s);
    }
  }
  // The job's goal is a slot count for the source: its count when the job
  // first ran, minus N. Kept in the state file before anything moves, so a
  // run killed anywhere (even between a group and its checkpoint) resumes
  // to exactly N slots moved.
  int from_now = CountSlots(from.ranges);
  if (!cp.found) {
    cp.found = true;
    cp.copied = from_now;  // the source's slot count at the start
    FERRY_RETURN_IF_ERROR(store->Save(job, "slots", cp));
  }
  if (!pending.empty()) {
    FERRY_RETURN_IF_ERROR(mover.MoveGroup({pending.begin(), pending.end()}, owned_by_target));
    report.slots_finished_from_before = static_cast<int>(pending.size());
    for (int s : pending) {
      for (auto [a, b] : from.ranges) from_now -= (s >= a && s <= b) ? 1 : 0;
    }
  }
  int done_before = static_cast<int>(cp.copied) - from_now;
  int want = std::max(0, options.slots - done_before);
  // 2. The rest, from the source's highest slots down, a group at a time.
  std::vector<int> candidates;
  for (auto it = from.ranges.rbegin(); it != from.ranges.rend(); ++it) {
    for (int s = it->second; s >= it->first; --s) {
      if (!pending.contains(s)) candidates.push_back(s);
    }
  }
  if (want > static_cast<int>(candidates.size())) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} serves {} slots; cannot move {}", from.address,
                              candidates.size(), want));
  }
  candidates.resize(want);
  for (size_t i = 0; i < candidates.size(); i += options.slots_per_round) {
    std::vector<int> group(candidates.begin() + i,
                           candidates.begin() + std::min(candidates.size(), i + options.slots_per_round));
    FERRY_RETURN_IF_ERROR(mover.MoveGroup(group, {}));
    report.slots_moved += static_cast<int>(group.size());
    cp.scanned = done_before + report.slots_moved;
    FERRY_RETURN_IF_ERROR(store->Save(job, "slots", cp));
    Publish(options.bus, RedisEventOf("redis_move_progress", job, label,
                                      MoveProgress(cp.scanned, options.slots, mover, start)));
  }
  FERRY_RETURN_IF_ERROR(store->Forget(job));
  report.keys_moved = mover.keys_moved();
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Publish(options.bus, RedisEventOf("redis_move_done", job, label,
                                    MoveProgress(cp.scanned, options.slots, mover, start)));
  return report;
}

}  // namespace ferry::redis
