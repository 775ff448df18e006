// `ferry redis cluster status` and `move-slots` on the real 3-master cluster
// of scripts/test-servers.sh: a move killed with kill -9 and resumed, with a
// cluster-aware writer running during the move.
#include <fmt/format.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "drivers/redis/redis_client.h"
#include "integration/redis_test_env.h"
#include "test_util.h"

namespace ferry::redis {
namespace {

using ::ferry::testing::RedisClusterUrl;
using ::ferry::testing::RunFerry;
using ::ferry::testing::RunResult;
using ::ferry::testing::TempDir;

std::unique_ptr<RedisClient> Open(const std::string& text) {
  auto url = Url::Parse(text);
  if (!url.ok()) return nullptr;
  auto client = RedisClient::Open(*url);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(*client) : nullptr;
}

nlohmann::json Status(const std::string& url) {
  RunResult r = RunFerry({"redis", "cluster", "status", url, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

int SlotsOf(const nlohmann::json& status, const std::string& address) {
  for (const auto& m : status["masters"]) {
    if (m["address"] == address) return m["slots"].get<int>();
  }
  return -1;
}

TEST(RedisClusterTest, MoveSlotsKilledAndResumedMovesExactlyNWithoutLosingWrites) {
  std::string url = RedisClusterUrl();
  if (url.empty()) return;
  auto client = Open(url);
  ASSERT_NE(client, nullptr);
  for (const ClusterNode& m : client->masters()) {
    auto n = client->Node(m);
    ASSERT_TRUE(n.ok());
    ASSERT_TRUE((*n)->RunOk({"FLUSHALL"}).ok());
  }
  std::vector<Command> seed;
  for (int i = 0; i < 20000; ++i) seed.push_back({"SET", fmt::format("slotkey:{}", i), std::to_string(i)});
  ASSERT_TRUE(client->Pipeline(seed).ok());

  nlohmann::json before = Status(url);
  ASSERT_EQ(before["state"], "ok");
  ASSERT_EQ(before["migrating_slots"], 0);
  std::string from = before["masters"][0]["address"], to = before["masters"][1]["address"];
  int from_slots = SlotsOf(before, from), to_slots = SlotsOf(before, to);
  constexpr int kMove = 1500;

  // A cluster-aware writer (ferry's own client: MOVED/ASK) during the move.
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    auto w = Open(url);
    if (w == nullptr) return;
    while (!stop) {
      int i = written;
      // A steady trickle, bounded so the move's work stays the same size.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (i >= 10000) continue;
      std::vector<Command> batch;
      for (int j = 0; j < 50; ++j) batch.push_back({"SET", fmt::format("during:{}", i + j), "w"});
      auto r = w->Pipeline(batch);
      if (!r.ok()) {
        ADD_FAILURE() << r.status().ToString();
        return;
      }
      for (const auto& reply : *r) {
        if (reply.is_error()) {
          ADD_FAILURE() << reply.str;
          return;
        }
      }
      written += 50;
    }
  });

  struct JoinWriter {  // also when an assertion returns early
    std::atomic<bool>& stop;
    std::thread& t;
    ~JoinWriter() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join_writer{stop, writer};

  TempDir dir;
  std::vector<std::string> args{"redis", "cluster", "move-slots", url, "--from", from, "--to", to,
                                "--slots", std::to_string(kMove), "--slots-per-round", "1",
                                "--keys-per-migrate", "1", "--state", dir.File("state.db")};
  int pid = ::ferry::testing::StartFerry(args, dir.File("first.out"));
  for (int i = 0; i < 400; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    int now = SlotsOf(Status(url), to);
    if (now >= to_slots + 100) break;
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(::ferry::testing::WaitFerry(pid), 128 + SIGKILL);
  nlohmann::json mid = Status(url);
  int moved_first = SlotsOf(mid, to) - to_slots;
  ASSERT_GT(moved_first, 0);
  ASSERT_LT(moved_first, kMove);

  RunResult second = RunFerry(args);
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  stop = true;
  writer.join();
  ASSERT_GT(written.load(), 0);

  nlohmann::json after = Status(url);
  EXPECT_EQ(after["state"], "ok");
  EXPECT_EQ(after["migrating_slots"], 0);
  EXPECT_EQ(after["slots_assigned"], 16384);
  EXPECT_EQ(SlotsOf(after, from), from_slots - kMove);
  EXPECT_EQ(SlotsOf(after, to), to_slots + kMove);
  // Every key, old and written during the move, is there with its value.
  auto fresh = Open(url);
  ASSERT_NE(fresh, nullptr);
  std::vector<Command> gets;
  for (int i = 0; i < 20000; ++i) gets.push_back({"GET", fmt::format("slotkey:{}", i)});
  for (int i = 0; i < written; ++i) gets.push_back({"GET", fmt::format("during:{}", i)});
  auto got = fresh->Pipeline(gets);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  for (int i = 0; i < 20000; ++i) ASSERT_EQ((*got)[i].str, std::to_string(i)) << i;
  for (size_t i = 20000; i < got->size(); ++i) ASSERT_EQ((*got)[i].str, "w") << i;
  int64_t total = 0;
  for (const auto& m : after["masters"]) total += m["keys"].get<int64_t>();
  EXPECT_EQ(total, 20000 + written);

  // And back, so the cluster is balanced for later tests.
  RunResult back = RunFerry({"redis", "cluster", "move-slots", url, "--from", to, "--to", from,
                             "--slots", std::to_string(kMove), "--state", dir.File("state.db")});
  EXPECT_EQ(back.exit_code, 0) << back.err;
}

TEST(RedisClusterTest, MoveSlotsRefusesUnknownNodesAndAStandaloneUrl) {
  std::string url = RedisClusterUrl();
  if (url.empty()) return;
  TempDir dir;
  RunResult unknown = RunFerry({"redis", "cluster", "move-slots", url, "--from", "127.0.0.1:1",
                                "--to", "127.0.0.1:2", "--slots", "1", "--state",
                                dir.File("s.db")});
  EXPECT_EQ(unknown.exit_code, 7) << unknown.err;
  std::string standalone = ::ferry::testing::RedisEnvUrl("FERRY_TEST_REDIS_URL");
  RunResult plain = RunFerry({"redis", "cluster", "status", standalone});
  EXPECT_EQ(plain.exit_code, 8) << plain.err;
}

}  // namespace
}  // namespace ferry::redis
