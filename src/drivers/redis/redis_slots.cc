#include "drivers/redis/redis_slots.h"

#include <charconv>

namespace ferry::redis {
namespace {

// CRC16/XMODEM table, computed at compile time from the polynomial.
constexpr std::array<uint16_t, 256> MakeCrcTable() {
  std::array<uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
    table[i] = crc;
  }
  return table;
}
constexpr std::array<uint16_t, 256> kCrcTable = MakeCrcTable();

int64_t AsInt(const RedisReply& r) {
  if (r.type == RedisReply::Type::kInteger) return r.integer;
  int64_t v = -1;
  std::from_chars(r.str.data(), r.str.data() + r.str.size(), v);
  return v;
}

Status BadReply(std::string_view what) {
  return Status(StatusCode::kInvalidArgument, std::string("unexpected ") + std::string(what) +
                                                  " reply shape");
}

// Field NAME of a flat [name, value, name, value...] array, or nullptr.
const RedisReply* Field(const RedisReply& map, std::string_view name) {
  if (map.type != RedisReply::Type::kArray) return nullptr;
  for (size_t i = 0; i + 1 < map.elements.size(); i += 2) {
    if (map.elements[i].str == name) return &map.elements[i + 1];
  }
  return nullptr;
}

}  // namespace

uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char c : data) {
    crc = static_cast<uint16_t>((crc << 8) ^ kCrcTable[((crc >> 8) ^ c) & 0xff]);
  }
  return crc;
}

int KeySlot(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & (kSlotCount - 1);
}

int SlotMap::AddNode(ClusterNode node) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].host == node.host && nodes_[i].port == node.port) {
      if (!node.id.empty()) nodes_[i].id = node.id;
      nodes_[i].master = nodes_[i].master || node.master;
      return static_cast<int>(i);
    }
  }
  nodes_.push_back(std::move(node));
  return static_cast<int>(nodes_.size() - 1);
}

Result<SlotMap> SlotMap::FromShards(const RedisReply& reply) {
  if (reply.type != RedisReply::Type::kArray) return BadReply("CLUSTER SHARDS");
  SlotMap map;
  for (const RedisReply& shard : reply.elements) {
    const RedisReply* slots = Field(shard, "slots");
    const RedisReply* nodes = Field(shard, "nodes");
    if (slots == nullptr || nodes == nullptr) return BadReply("CLUSTER SHARDS");
    int master = -1;
    for (const RedisReply& n : nodes->elements) {
      ClusterNode node;
      const RedisReply* id = Field(n, "id");
      const RedisReply* ip = Field(n, "ip");
      const RedisReply* endpoint = Field(n, "endpoint");
      const RedisReply* port = Field(n, "port");
      const RedisReply* role = Field(n, "role");
      const RedisReply* health = Field(n, "health");
      if (port == nullptr || (ip == nullptr && endpoint == nullptr)) return BadReply("CLUSTER SHARDS");
      node.id = id != nullptr ? id->str : "";
      node.host = ip != nullptr && !ip->str.empty() ? ip->str : endpoint->str;
      node.port = static_cast<int>(AsInt(*port));
      node.master = role != nullptr && role->str == "master";
      node.healthy = health == nullptr || health->str == "online";
      int index = map.AddNode(node);
      if (node.master) master = index;
    }
    if (master < 0) continue;
    for (size_t i = 0; i + 1 < slots->elements.size(); i += 2) {
      int64_t start = AsInt(slots->elements[i]);
      int64_t end = AsInt(slots->elements[i + 1]);
      if (start < 0 || end >= kSlotCount || start > end) return BadReply("CLUSTER SHARDS");
      for (int64_t s = start; s <= end; ++s) map.owner_[s] = static_cast<int16_t>(master);
    }
  }
  return map;
}

Result<SlotMap> SlotMap::FromSlots(const RedisReply& reply) {
  if (reply.type != RedisReply::Type::kArray) return BadReply("CLUSTER SLOTS");
  SlotMap map;
  for (const RedisReply& range : reply.elements) {
    if (range.elements.size() < 3) return BadReply("CLUSTER SLOTS");
    int64_t start = AsInt(range.elements[0]);
    int64_t end = AsInt(range.elements[1]);
    if (start < 0 || end >= kSlotCount || start > end) return BadReply("CLUSTER SLOTS");
    int master = -1;
    for (size_t i = 2; i < range.elements.size(); ++i) {
      const RedisReply& n = range.elements[i];
      if (n.elements.size() < 2) return BadReply("CLUSTER SLOTS");
      ClusterNode node;
      node.host = n.elements[0].str;
      node.port = static_cast<int>(AsInt(n.elements[1]));
      node.id = n.elements.size() > 2 ? n.elements[2].str : "";
      node.master = i == 2;
      int index = map.AddNode(node);
      if (i == 2) master = index;
    }
    for (int64_t s = start; s <= end; ++s) map.owner_[s] = static_cast<int16_t>(master);
  }
  return map;
}

void SlotMap::FillUnknownHosts(const std::string& host) {
  for (ClusterNode& n : nodes_) {
    if (n.host.empty() || n.host == "?") n.host = host;
  }
}

std::vector<ClusterNode> SlotMap::Masters() const {
  std::vector<bool> serves(nodes_.size(), false);
  for (int16_t o : owner_) {
    if (o >= 0) serves[o] = true;
  }
  std::vector<ClusterNode> out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (serves[i]) out.push_back(nodes_[i]);
  }
  return out;
}

int SlotMap::UnassignedSlots() const {
  int n = 0;
  for (int16_t o : owner_) n += o < 0 ? 1 : 0;
  return n;
}

void SlotMap::Move(int slot, const std::string& host, int port) {
  ClusterNode node;
  node.host = host;
  node.port = port;
  node.master = true;
  owner_[slot] = static_cast<int16_t>(AddNode(std::move(node)));
}

std::vector<std::pair<int, int>> SlotMap::RangesOf(int node_index) const {
  std::vector<std::pair<int, int>> ranges;
  for (int s = 0; s < kSlotCount; ++s) {
    if (owner_[s] != node_index) continue;
    if (!ranges.empty() && ranges.back().second == s - 1) {
      ranges.back().second = s;
    } else {
      ranges.emplace_back(s, s);
    }
  }
  return ranges;
}

bool ParseRedirect(std::string_view error, int* slot, std::string* host, int* port) {
  size_t sp1 = error.find(' ');
  if (sp1 == std::string_view::npos) return false;
  std::string_view rest = error.substr(sp1 + 1);
  size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) return false;
  std::string_view slot_text = rest.substr(0, sp2);
  std::string_view addr = rest.substr(sp2 + 1);
  size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos) return false;
  auto r1 = std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), *slot);
  std::string_view port_text = addr.substr(colon + 1);
  auto r2 = std::from_chars(port_text.data(), port_text.data() + port_text.size(), *port);
  if (r1.ec != std::errc() || r2.ec != std::errc() || *slot < 0 || *slot >= kSlotCount) {
    return false;
  }
  *host = std::string(addr.substr(0, colon));
  return true;
}

}  // namespace ferry::redis
