// Redis Cluster hash slots and slot-map parsing (src/drivers/redis/redis_slots.h).
// Expected slots are the server's own answers (CLUSTER KEYSLOT, Redis 7.0).
#include "drivers/redis/redis_slots.h"

#include "move/redis/redis_cluster_scale.h"

#include <gtest/gtest.h>

namespace ferry::redis {
namespace {

TEST(RedisSlotsTest, Crc16MatchesTheClusterSpecVector) {
  EXPECT_EQ(Crc16("123456789"), 0x31C3);
  EXPECT_EQ(Crc16(""), 0);
}

TEST(RedisSlotsTest, KeySlotMatchesServer) {
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("bar"), 5061);
  EXPECT_EQ(KeySlot("hello"), 866);
  EXPECT_EQ(KeySlot("123456789"), 0x31C3 % 16384);
  EXPECT_EQ(KeySlot(""), 0);
}

TEST(RedisSlotsTest, HashTagsFollowTheSpec) {
  EXPECT_EQ(KeySlot("{user1000}.following"), 3443);
  EXPECT_EQ(KeySlot("{user1000}.followers"), KeySlot("{user1000}.following"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), 8363);     // empty tag: the whole key
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), 4015);  // the tag is "{bar"
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), 5061);  // the first tag only: "bar"
  EXPECT_EQ(KeySlot(std::string("a\0{bar}", 7)), 5061);  // binary keys
}

TEST(RedisSlotsTest, ParsesRedirects) {
  int slot = 0, port = 0;
  std::string host;
  ASSERT_TRUE(ParseRedirect("MOVED 3999 127.0.0.1:6381", &slot, &host, &port));
  EXPECT_EQ(slot, 3999);
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 6381);
  ASSERT_TRUE(ParseRedirect("ASK 12 ::1:7000", &slot, &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 7000);
  EXPECT_FALSE(ParseRedirect("MOVED 99999 h:1", &slot, &host, &port));
  EXPECT_FALSE(ParseRedirect("ERR nope", &slot, &host, &port));
}

RedisReply Str(std::string s) {
  RedisReply r;
  r.type = RedisReply::Type::kString;
  r.str = std::move(s);
  return r;
}
RedisReply Int(int64_t v) {
  RedisReply r;
  r.type = RedisReply::Type::kInteger;
  r.integer = v;
  return r;
}
RedisReply Arr(std::vector<RedisReply> e) {
  RedisReply r;
  r.type = RedisReply::Type::kArray;
  r.elements = std::move(e);
  return r;
}

TEST(RedisSlotsTest, SlotMapFromShards) {
  auto node = [](const char* id, int port, const char* role) {
    return Arr({Str("id"), Str(id), Str("port"), Int(port), Str("ip"), Str("127.0.0.1"),
                Str("role"), Str(role), Str("health"), Str("online")});
  };
  RedisReply shards = Arr({
      Arr({Str("slots"), Arr({Int(0), Int(5460), Int(16000), Int(16383)}), Str("nodes"),
           Arr({node("a", 7000, "master"), node("d", 7003, "replica")})}),
      Arr({Str("slots"), Arr({Int(5461), Int(15999)}), Str("nodes"),
           Arr({node("b", 7001, "master")})}),
  });
  auto map = SlotMap::FromShards(shards);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->UnassignedSlots(), 0);
  EXPECT_EQ(map->nodes()[map->Owner(0)].port, 7000);
  EXPECT_EQ(map->nodes()[map->Owner(16383)].port, 7000);
  EXPECT_EQ(map->nodes()[map->Owner(5461)].port, 7001);
  ASSERT_EQ(map->Masters().size(), 2u);
  EXPECT_EQ(map->RangesOf(map->Owner(0)).size(), 2u);
  map->Move(0, "127.0.0.1", 7001);
  EXPECT_EQ(map->nodes()[map->Owner(0)].port, 7001);
}

TEST(RedisSlotsTest, SlotMapFromSlotsAndGaps) {
  RedisReply slots = Arr({Arr({Int(0), Int(100), Arr({Str("10.0.0.1"), Int(7000), Str("a")}),
                               Arr({Str("10.0.0.2"), Int(7000), Str("b")})})});
  auto map = SlotMap::FromSlots(slots);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->UnassignedSlots(), 16384 - 101);
  EXPECT_EQ(map->Owner(200), -1);
  EXPECT_EQ(map->nodes()[map->Owner(50)].host, "10.0.0.1");
  EXPECT_FALSE(SlotMap::FromSlots(Str("x")).ok());
}

// Rebalance plans (move/redis/redis_cluster_scale.h).
int SlotsAfter(std::vector<int> slots, const std::vector<SlotPlanMove>& moves, size_t i) {
  for (const SlotPlanMove& m : moves) {
    slots[m.from] -= m.slots;
    slots[m.to] += m.slots;
  }
  return slots[i];
}

TEST(RebalancePlanTest, OneFullMasterSharesWithTwoEmptyOnes) {
  std::vector<int> slots = {16384, 0, 0};
  auto moves = PlanRebalance(slots, {true, true, true}, 2);
  ASSERT_EQ(moves.size(), 2u);
  EXPECT_EQ(SlotsAfter(slots, moves, 0), 5462);  // the remainder stays where it is
  EXPECT_EQ(SlotsAfter(slots, moves, 1), 5461);
  EXPECT_EQ(SlotsAfter(slots, moves, 2), 5461);
  for (const auto& m : moves) EXPECT_EQ(m.from, 0u);
}

TEST(RebalancePlanTest, EmptyMastersCountOnlyWhenAsked) {
  EXPECT_TRUE(PlanRebalance({8192, 8192, 0}, {true, true, false}, 2).empty());
  auto moves = PlanRebalance({8192, 8192, 0}, {true, true, true}, 2);
  int given = 0;
  for (const auto& m : moves) {
    EXPECT_EQ(m.to, 2u);
    given += m.slots;
  }
  EXPECT_EQ(given, 5461);
}

TEST(RebalancePlanTest, WithinTheThresholdNothingMoves) {
  EXPECT_TRUE(PlanRebalance({8300, 8084}, {true, true}, 2).empty());  // 1.3% off
  auto moves = PlanRebalance({10000, 6384}, {true, true}, 2);
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0].from, 0u);
  EXPECT_EQ(moves[0].to, 1u);
  EXPECT_EQ(moves[0].slots, 1808);
}

TEST(RedisSlotsTest, UnknownHostsAreTheAnsweringNodes) {
  // CLUSTER SLOTS of a single-node cluster that met no other: ip "".
  RedisReply host{RedisReply::Type::kString, "", 0, {}};
  RedisReply port{RedisReply::Type::kInteger, "", 31001, {}};
  RedisReply node{RedisReply::Type::kArray, "", 0, {host, port}};
  RedisReply start{RedisReply::Type::kInteger, "", 0, {}};
  RedisReply end{RedisReply::Type::kInteger, "", 16383, {}};
  RedisReply range{RedisReply::Type::kArray, "", 0, {start, end, node}};
  RedisReply reply{RedisReply::Type::kArray, "", 0, {range}};
  auto map = SlotMap::FromSlots(reply);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  map->FillUnknownHosts("10.1.2.3");
  ASSERT_EQ(map->Masters().size(), 1u);
  EXPECT_EQ(map->Masters()[0].host, "10.1.2.3");
  EXPECT_EQ(map->Masters()[0].port, 31001);
}

}  // namespace
}  // namespace ferry::redis
