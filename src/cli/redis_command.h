// ferry redis copy | verify, and doctor for redis:// URLs (redis_commands.cc).
#pragma once

#include <string>

#include "cli/context.h"

namespace ferry::cli {

struct RedisArgs {
  std::string from, to;   // --from URL, --to URL
  std::string match;      // --match PATTERN
  std::string type;       // --type TYPE
  bool skip_existing = false;
  int workers = 4;
  int64_t max_keys_per_sec = 0;
  int scan_count = 1000;
  int64_t big_key_bytes = 64LL << 20;
  bool dry_run = false;
  bool restart = false;
  double memory_slow_percent = 85;  // copy --memory-slow-percent
  double memory_stop_percent = 95;  // copy --memory-stop-percent
  bool prepare_target = false;      // copy --prepare-target
  bool follow = false;              // copy --follow
  std::string state = "ferry-redis-state.db";
  double sample = 100;          // verify --sample PERCENT
  int64_t ttl_tolerance_ms = 2000;
  int max_report = 100;
  std::string cluster_url;      // cluster status|move-slots URL
  std::string node_from, node_to;  // move-slots --from/--to NODE
  int slots = 0;                // move-slots --slots N
  int slots_per_round = 16;
  int keys_per_migrate = 1000;
  std::string new_node;         // add-node HOST:PORT
  std::string replica_of;       // add-node --replica-of NODE
  bool use_empty_masters = false;  // rebalance
  double threshold = 2;            // rebalance --threshold PERCENT
};

// `ferry redis copy`: exit 0 copied, 1 some keys failed, or the error's code.
int RunRedisCopy(const Context& ctx, const RedisArgs& args);
// `ferry redis verify`: exit 0 identical, 10 differences, or the error's code.
int RunRedisVerify(const Context& ctx, const RedisArgs& args);
// `ferry redis cluster status URL`: slots, keys, migrating slots per master.
int RunRedisClusterStatus(const Context& ctx, const RedisArgs& args);
// `ferry redis cluster move-slots URL --from NODE --to NODE --slots N`.
int RunRedisMoveSlots(const Context& ctx, const RedisArgs& args);
// `ferry redis cluster add-node URL HOST:PORT [--replica-of NODE]`.
int RunRedisAddNode(const Context& ctx, const RedisArgs& args);
// `ferry redis cluster rebalance URL [--use-empty-masters] [--dry-run]`.
int RunRedisRebalance(const Context& ctx, const RedisArgs& args);
// `ferry doctor redis://...`: version, mode, memory, keys, cluster state.
int RunRedisDoctor(const Context& ctx, const std::string& url);

}  // namespace ferry::cli
