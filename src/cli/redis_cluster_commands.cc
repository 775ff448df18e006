// ferry redis cluster add-node | rebalance: parse, call one library function
// (move/redis/redis_cluster_scale.h), print.
#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/exit_codes.h"
#include "cli/output.h"
#include "cli/redis_command.h"
#include "move/redis/redis_cluster_scale.h"

namespace ferry::cli {

int RunRedisAddNode(const Context& ctx, const RedisArgs& args) {
  redis::AddNodeOptions o;
  o.url = args.cluster_url;
  o.node = args.new_node;
  o.replica_of = args.replica_of;
  auto r = redis::AddNode(o);
  if (!r.ok()) return ReportError(r.status(), ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", true}, {"id", r->id}, {"address", r->address}, {"role", r->role},
               {"master_id", r->master_id}, {"seconds", r->seconds}});
  } else {
    std::printf("added %s (%s) as a %s%s in %.1fs\n", r->address.c_str(), r->id.c_str(),
                r->role.c_str(),
                r->master_id.empty() ? "" : fmt::format(" of {}", r->master_id).c_str(),
                r->seconds);
    if (r->role == "master") {
      std::printf("  it holds no slots yet: ferry redis cluster rebalance URL --use-empty-masters\n");
    }
  }
  return kExitOk;
}

int RunRedisRebalance(const Context& ctx, const RedisArgs& args) {
  redis::RebalanceOptions o;
  o.url = args.cluster_url;
  o.use_empty_masters = args.use_empty_masters;
  o.threshold_percent = args.threshold;
  o.dry_run = args.dry_run;
  o.keys_per_migrate = args.keys_per_migrate;
  o.slots_per_round = args.slots_per_round;
  o.state_path = args.state;
  o.bus = ctx.bus;
  std::optional<ScopedSubscription> printer;
  if (!ctx.quiet && !ctx.json && ctx.bus != nullptr) {
    printer.emplace(*ctx.bus, [](const Event& e) {
      if (e.type != "redis_move_progress" || !e.redis) return;
      std::fprintf(stderr, "rebalance: %d of %d slots of this move, %lld keys\n",
                   e.redis->slots_done, e.redis->slots, static_cast<long long>(e.redis->copied));
    });
  }
  auto r = redis::Rebalance(o);
  if (!r.ok()) return ReportError(r.status(), ctx.json);
  if (ctx.json) {
    nlohmann::json moves = nlohmann::json::array();
    for (const auto& m : r->moves) moves.push_back({{"from", m.from}, {"to", m.to}, {"slots", m.slots}});
    PrintJson({{"ok", true}, {"dry_run", r->dry_run}, {"masters", r->masters}, {"moves", moves},
               {"keys_moved", r->keys_moved}, {"seconds", r->seconds}});
    return kExitOk;
  }
  if (r->moves.empty()) {
    std::printf("balanced: every one of %d masters is within %.0f%% of its share; nothing to move\n",
                r->masters, args.threshold);
    return kExitOk;
  }
  for (const auto& m : r->moves) {
    std::printf("%s %d slots from %s to %s\n", r->dry_run ? "would move" : "moved", m.slots,
                m.from.c_str(), m.to.c_str());
  }
  if (r->dry_run) {
    std::printf("nothing was moved (dry run)\n");
  } else {
    std::printf("rebalanced %d masters: %lld keys moved in %.1fs\n", r->masters,
                static_cast<long long>(r->keys_moved), r->seconds);
  }
  return kExitOk;
}

}  // namespace ferry::cli
