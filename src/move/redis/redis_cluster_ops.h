// Redis Cluster operations: status and moving slots between masters.
//
// ClusterStatus reads CLUSTER NODES from a master: every master's slots
// (count and ranges), keys (DBSIZE), replicas, failure flags, and slots left
// MIGRATING or IMPORTING (the seed's `cluster nodes | grep migrating`).
//
// MoveSlots moves N slots from one master to another, in the order the
// cluster specification documents, for a group of slots at a time
// (pipelined):
//   1. target: CLUSTER SETSLOT s IMPORTING <source-id>
//   2. source: CLUSTER SETSLOT s MIGRATING <target-id>
//   3. source: CLUSTER GETKEYSINSLOT s n, then MIGRATE host port "" 0 t KEYS ...
//      until the slot is empty (MIGRATE moves, the source copy is removed by
//      Redis itself as part of the move: keys change owner, none is lost)
//   4. CLUSTER SETSLOT s NODE <target-id> on the target, the source, then
//      the other masters.
// Resume: slots a killed run left MIGRATING on the source or IMPORTING on the
// target are found from CLUSTER NODES and finished first; the source's slot
// count when the job started is kept in the same SQLite state file as
// `redis copy` (table ferry_redis_copy, node "slots"), so re-running the
// same command moves exactly the slots still missing to make N.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "observe/event.h"

namespace ferry::redis {

struct ClusterMasterStatus {
  std::string id, address;
  int slots = 0;
  std::vector<std::pair<int, int>> ranges;
  int64_t keys = 0;
  int replicas = 0;
  std::string flags;  // "master", "master,fail?" ...
  std::vector<std::string> migrating;  // "slot->target-id"
  std::vector<std::string> importing;  // "slot<-source-id"
};

struct ClusterStatusReport {
  std::string state;  // cluster_state
  int slots_assigned = 0;
  std::vector<ClusterMasterStatus> masters;
  int migrating_slots = 0;
};

Result<ClusterStatusReport> ClusterStatus(const std::string& url);

struct MoveSlotsOptions {
  std::string url;    // the cluster
  std::string from;   // node id (or unique prefix) or host:port
  std::string to;
  int slots = 0;      // how many
  int keys_per_migrate = 1000;
  int slots_per_round = 16;  // slots moved together, pipelined
  int migrate_timeout_ms = 60000;
  std::string state_path = "ferry-redis-state.db";
  // Receives "redis_move_progress" after each group of slots and
  // "redis_move_done" at the end (may be null).
  EventBus* bus = nullptr;
};

struct MoveSlotsReport {
  int slots_moved = 0;
  int slots_finished_from_before = 0;  // left MIGRATING/IMPORTING by a killed run
  int64_t keys_moved = 0;
  double seconds = 0;
  std::string from_address, to_address;
};

Result<MoveSlotsReport> MoveSlots(const MoveSlotsOptions& options);

}  // namespace ferry::redis
