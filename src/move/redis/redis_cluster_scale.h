// Scaling a Redis Cluster (seed 002): add a node, then rebalance slots.
//
// AddNode joins an empty cluster-mode server to the cluster: it must run
// with cluster-enabled yes, know only itself and hold no keys (else it is
// refused, nothing sent). An existing master sends CLUSTER MEET; ferry waits
// until every master lists the new node as connected, then, with
// `replica_of`, makes it a replica of that master (CLUSTER REPLICATE).
// A new master owns no slots: `rebalance --use-empty-masters` gives it some.
//
// Rebalance computes each master's fair share of the 16384 slots (masters
// without slots count only with `use_empty_masters`), then moves slots from
// masters above their share to masters below it with MoveSlots
// (redis_cluster_ops.h), the largest surplus first. Masters within
// `threshold_percent` of their share are left alone. Every move is
// MoveSlots' own resumable job, so after kill -9 running the same command
// finishes the half-moved slots and recomputes what is left.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "observe/event.h"

namespace ferry::redis {

struct AddNodeOptions {
  std::string url;         // the cluster
  std::string node;        // host:port of the server to add
  std::string replica_of;  // master id (prefix) or host:port; "" = a new master
  std::chrono::milliseconds wait{30000};  // for the cluster to see the node
};

struct AddNodeReport {
  std::string id, address;
  std::string role;  // "master" or "replica"
  std::string master_id;  // replicas: their master
  double seconds = 0;
};

Result<AddNodeReport> AddNode(const AddNodeOptions& options);

struct RebalanceOptions {
  std::string url;
  bool use_empty_masters = false;
  double threshold_percent = 2;  // leave masters this close to their share
  bool dry_run = false;
  int keys_per_migrate = 1000;
  int slots_per_round = 16;
  std::string state_path = "ferry-redis-state.db";
  EventBus* bus = nullptr;  // each move's events (redis_cluster_ops.h)
};

struct RebalanceMove {
  std::string from, to;  // host:port
  int slots = 0;
};

struct RebalanceReport {
  std::vector<RebalanceMove> moves;  // planned (dry run) or done
  int masters = 0;
  int64_t keys_moved = 0;
  double seconds = 0;
  bool dry_run = false;
};

// The moves that bring `slots` (per master, in order) to a fair share:
// pure, for tests. `counted[i]` false leaves master i out of the share
// (an empty master without use_empty_masters).
struct SlotPlanMove {
  size_t from, to;
  int slots;
};
std::vector<SlotPlanMove> PlanRebalance(const std::vector<int>& slots,
                                        const std::vector<bool>& counted,
                                        double threshold_percent);

Result<RebalanceReport> Rebalance(const RebalanceOptions& options);

}  // namespace ferry::redis
