// Redis Cluster key slots and the slot map, written in ferry (Debian packages
// no cluster client; docs/dependencies.md).
//
// KeySlot follows the cluster specification: CRC16 (XMODEM: polynomial
// 0x1021, initial value 0) of the key, or of its hash tag (the bytes between
// the first '{' and the next '}' when non-empty), modulo 16384.
//
// SlotMap says which master serves each slot; it is read from CLUSTER SHARDS
// (Redis 7) or CLUSTER SLOTS (older) replies and patched by MOVED redirects.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/redis/redis_node.h"
#include "ferry/status.h"

namespace ferry::redis {

inline constexpr int kSlotCount = 16384;

uint16_t Crc16(std::string_view data);
// The hash slot of a key (0..16383).
int KeySlot(std::string_view key);

struct ClusterNode {
  std::string id;
  std::string host;
  int port = 0;
  bool master = false;
  bool healthy = true;  // CLUSTER SHARDS "health" (online) or not marked fail
  std::string address() const { return host + ":" + std::to_string(port); }
};

class SlotMap {
 public:
  SlotMap() { owner_.fill(-1); }

  // From a CLUSTER SHARDS reply; kInvalidArgument for a reply of another shape.
  static Result<SlotMap> FromShards(const RedisReply& reply);
  // From a CLUSTER SLOTS reply.
  static Result<SlotMap> FromSlots(const RedisReply& reply);

  // Index into nodes() of the master serving `slot`, or -1 when unassigned.
  int Owner(int slot) const { return owner_[slot]; }
  const std::vector<ClusterNode>& nodes() const { return nodes_; }
  // The masters that serve at least one slot.
  std::vector<ClusterNode> Masters() const;
  // Slots no master serves.
  int UnassignedSlots() const;
  // Nodes whose address the answering node did not know ("" or "?", e.g. a
  // single-node cluster before any MEET) are reached at `host`: the cluster
  // specification's "same endpoint as the one asked".
  void FillUnknownHosts(const std::string& host);
  // Points `slot` at host:port (a MOVED redirect), adding the node if new.
  void Move(int slot, const std::string& host, int port);
  // Slots served by each master, as "start-end" ranges.
  std::vector<std::pair<int, int>> RangesOf(int node_index) const;

 private:
  int AddNode(ClusterNode node);

  std::array<int16_t, kSlotCount> owner_{};
  std::vector<ClusterNode> nodes_;
};

// Parses "SLOT HOST:PORT" of a MOVED/ASK error ("MOVED 3999 127.0.0.1:6381").
bool ParseRedirect(std::string_view error, int* slot, std::string* host, int* port);

}  // namespace ferry::redis
