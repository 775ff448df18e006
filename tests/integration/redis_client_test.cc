// The Redis client against the real servers of scripts/test-servers.sh:
// login with an ACL user, database index, pipelines, and cluster routing
// with MOVED and ASK redirects made by real slot moves.
#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "drivers/redis/redis_client.h"
#include "integration/redis_test_env.h"
#include "test_util.h"

namespace ferry::redis {
namespace {

using ::ferry::testing::Redis2Url;
using ::ferry::testing::RedisAclUrl;
using ::ferry::testing::RedisClusterUrl;

std::unique_ptr<RedisClient> OpenOrDie(const std::string& text) {
  auto url = Url::Parse(text);
  EXPECT_TRUE(url.ok()) << url.status().ToString();
  if (!url.ok()) return nullptr;
  auto client = RedisClient::Open(*url);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(*client) : nullptr;
}

// The URL with the password replaced.
std::string WithPassword(const std::string& url, const std::string& password) {
  size_t colon = url.find(':', url.find("://") + 3);
  size_t at = url.find('@');
  return url.substr(0, colon + 1) + password + url.substr(at);
}

TEST(RedisClientTest, AclUserLogsInAndWrongPasswordIsRefusedWithoutEchoingIt) {
  std::string acl = RedisAclUrl();
  if (acl.empty()) return;
  auto client = OpenOrDie(acl);
  ASSERT_NE(client, nullptr);
  ASSERT_OK_AND_ASSIGN(RedisNode * node, client->Node(client->masters().front()));
  ASSERT_OK_AND_ASSIGN(RedisReply who, node->RunOk({"ACL", "WHOAMI"}));
  EXPECT_EQ(who.str, "ferry_acl");

  auto bad_url = Url::Parse(WithPassword(acl, "not-the-secret-9f3"));
  ASSERT_TRUE(bad_url.ok());
  auto bad = RedisClient::Open(*bad_url);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kPermissionDenied) << bad.status().ToString();
  EXPECT_THAT(bad.status().ToString(), ::testing::Not(::testing::HasSubstr("not-the-secret-9f3")));
  EXPECT_THAT(bad.status().ToString(), ::testing::HasSubstr("ferry_acl"));
}

TEST(RedisClientTest, DatabaseIndexFromTheUrlIsSelected) {
  std::string base = Redis2Url();
  if (base.empty()) return;
  std::string db5 = base.substr(0, base.rfind('/')) + "/5";
  auto in5 = OpenOrDie(db5);
  auto in0 = OpenOrDie(base);
  ASSERT_TRUE(in5 && in0);
  ASSERT_OK_AND_ASSIGN(auto set, in5->Pipeline({{"SET", "dbtest:k", "five"}}));
  ASSERT_FALSE(set[0].is_error()) << set[0].str;
  ASSERT_OK_AND_ASSIGN(auto get5, in5->Pipeline({{"GET", "dbtest:k"}}));
  ASSERT_OK_AND_ASSIGN(auto get0, in0->Pipeline({{"GET", "dbtest:k"}}));
  EXPECT_EQ(get5[0].str, "five");
  EXPECT_TRUE(get0[0].is_nil());
  ASSERT_OK(in5->Pipeline({{"DEL", "dbtest:k"}}).status());
}

TEST(RedisClientTest, UnreachableServerIsUnavailable) {
  auto url = Url::Parse("redis://127.0.0.1:1/0");
  ASSERT_TRUE(url.ok());
  auto client = RedisClient::Open(*url);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kUnavailable) << client.status().ToString();
}

TEST(RedisClientTest, ClusterPipelineIsSplitPerMasterAndRoutedBySlot) {
  std::string url = RedisClusterUrl();
  if (url.empty()) return;
  auto client = OpenOrDie(url);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->cluster());
  ASSERT_EQ(client->masters().size(), 3u);
  std::vector<Command> sets, gets;
  for (int i = 0; i < 3000; ++i) {
    sets.push_back({"SET", fmt::format("route:{}", i), std::to_string(i)});
    gets.push_back({"GET", fmt::format("route:{}", i)});
  }
  ASSERT_OK_AND_ASSIGN(auto set_replies, client->Pipeline(sets));
  for (const auto& r : set_replies) ASSERT_FALSE(r.is_error()) << r.str;
  ASSERT_OK_AND_ASSIGN(auto got, client->Pipeline(gets));
  for (int i = 0; i < 3000; ++i) ASSERT_EQ(got[i].str, std::to_string(i));
  EXPECT_EQ(client->moved_count(), 0);
  // Each master holds exactly the keys of its own slots.
  int64_t on_nodes = 0;
  for (const ClusterNode& m : client->masters()) {
    ASSERT_OK_AND_ASSIGN(RedisNode * node, client->Node(m));
    ASSERT_OK_AND_ASSIGN(RedisReply n, node->RunOk({"EVAL",
        "local n=0 for _,k in ipairs(redis.call('KEYS','route:*')) do n=n+1 end return n", "0"}));
    on_nodes += n.integer;
    EXPECT_GT(n.integer, 500) << m.address();
  }
  EXPECT_EQ(on_nodes, 3000);
  std::vector<Command> dels;
  for (int i = 0; i < 3000; ++i) dels.push_back({"DEL", fmt::format("route:{}", i)});
  ASSERT_OK(client->Pipeline(dels).status());
}

// Moves `slot` (and its keys) from one master to another in the documented
// order, optionally stopping after the keys moved but before SETSLOT NODE
// (the slot is then MIGRATING/IMPORTING: clients get ASK).
void MoveSlot(RedisClient& admin, int slot, const ClusterNode& from, const ClusterNode& to,
              bool finish) {
  ASSERT_OK_AND_ASSIGN(RedisNode * src, admin.Node(from));
  ASSERT_OK_AND_ASSIGN(RedisNode * dst, admin.Node(to));
  ASSERT_OK(dst->RunOk({"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", from.id}).status());
  ASSERT_OK(src->RunOk({"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", to.id}).status());
  ASSERT_OK_AND_ASSIGN(RedisReply keys,
                       src->RunOk({"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "1000"}));
  if (!keys.elements.empty()) {
    Command migrate{"MIGRATE", to.host, std::to_string(to.port), "", "0", "5000", "KEYS"};
    for (const auto& k : keys.elements) migrate.push_back(k.str);
    ASSERT_OK(src->RunOk(migrate).status());
  }
  if (!finish) return;
  for (RedisNode* n : {dst, src}) {
    ASSERT_OK(n->RunOk({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to.id}).status());
  }
  // Every master learns the new owner (the cluster bus spreads it too).
  for (const ClusterNode& m : admin.masters()) {
    ASSERT_OK_AND_ASSIGN(RedisNode * n, admin.Node(m));
    ASSERT_OK(n->RunOk({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to.id}).status());
  }
}

TEST(RedisClientTest, FollowsMovedAndAskRedirectsAndRefreshesTheMap) {
  std::string url = RedisClusterUrl();
  if (url.empty()) return;
  auto admin = OpenOrDie(url);
  auto client = OpenOrDie(url);  // its map goes stale when the slot moves
  ASSERT_TRUE(admin && client);
  const std::string key = "redirect:{moved}";
  int slot = KeySlot(key);
  const SlotMap& map = admin->slot_map();
  ClusterNode owner = map.nodes()[map.Owner(slot)];
  ClusterNode other;
  for (const ClusterNode& m : admin->masters()) {
    if (m.address() != owner.address()) other = m;
  }
  ASSERT_OK(admin->Pipeline({{"SET", key, "v1"}}).status());

  // MOVED: the slot now lives on `other`; the client's map says `owner`.
  MoveSlot(*admin, slot, owner, other, /*finish=*/true);
  ASSERT_OK_AND_ASSIGN(auto got, client->Pipeline({{"GET", key}}));
  EXPECT_EQ(got[0].str, "v1");
  EXPECT_GE(client->moved_count(), 1);
  EXPECT_EQ(client->slot_map().nodes()[client->slot_map().Owner(slot)].address(), other.address());

  // ASK: moving back, keys already on `owner` while the slot is MIGRATING.
  MoveSlot(*admin, slot, other, owner, /*finish=*/false);
  ASSERT_OK_AND_ASSIGN(auto asked, client->Pipeline({{"GET", key}}));
  EXPECT_EQ(asked[0].str, "v1");
  EXPECT_GE(client->ask_count(), 1);
  // Finish the move back so the cluster is as it was.
  for (const ClusterNode& m : admin->masters()) {
    ASSERT_OK_AND_ASSIGN(RedisNode * n, admin->Node(m));
    ASSERT_OK(n->RunOk({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", owner.id}).status());
  }
  ASSERT_OK(admin->RefreshSlots());
  ASSERT_OK(admin->Pipeline({{"DEL", key}}).status());
}

TEST(RedisClientTest, StandaloneUrlToAClusterNodeIsTreatedAsCluster) {
  std::string url = RedisClusterUrl();
  if (url.empty()) return;
  std::string first = url.substr(url.find("://") + 3);
  first = first.substr(0, first.find(','));
  auto client = OpenOrDie("redis://" + first);
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->cluster());
  EXPECT_EQ(client->masters().size(), 3u);
}

}  // namespace
}  // namespace ferry::redis
