// `ferry redis cluster add-node` and `rebalance` (seed 002's cluster
// scaling) on a cluster of this test's own: real redis-server processes in
// cluster mode on free loopback ports, so the shared test cluster keeps its
// shape. Keys and their TTLs must all survive the moves.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/url.h"
#include "drivers/redis/redis_client.h"
#include "test_util.h"

namespace ferry::redis {
namespace {

using ::ferry::testing::RunBinary;
using ::ferry::testing::RunFerry;
using ::ferry::testing::RunResult;
using ::ferry::testing::TempDir;
using ::testing::HasSubstr;

bool PortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// A cluster-mode redis-server of the test's own; shut down at the end.
class ClusterModeServer {
 public:
  explicit ClusterModeServer(const TempDir& dir) {
    static std::mt19937 random(std::random_device{}());
    for (int attempt = 0; attempt < 50 && port_ == 0; ++attempt) {
      int p = 20000 + static_cast<int>(random() % 20000);
      if (!PortFree(p) || !PortFree(p + 10000)) continue;  // + the cluster bus port
      const std::string d = dir.File(std::to_string(p));
      std::filesystem::create_directories(d);
      RunResult r = RunBinary("/usr/bin/redis-server",
                              {"--port", std::to_string(p), "--bind", "127.0.0.1",
                               "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                               "--dir", d, "--save", "", "--appendonly", "no", "--daemonize",
                               "yes", "--logfile", d + "/redis.log"});
      if (r.exit_code == 0 && WaitForPing(p)) port_ = p;
    }
  }
  ~ClusterModeServer() {
    if (port_ != 0) RunBinary("/usr/bin/redis-cli", {"-p", std::to_string(port_), "SHUTDOWN", "NOSAVE"});
  }
  int port() const { return port_; }
  std::string address() const { return fmt::format("127.0.0.1:{}", port_); }
  std::string Cli(const std::vector<std::string>& args) const {
    std::vector<std::string> all = {"-p", std::to_string(port_)};
    all.insert(all.end(), args.begin(), args.end());
    return RunBinary("/usr/bin/redis-cli", all).out;
  }

 private:
  static bool WaitForPing(int port) {
    for (int i = 0; i < 100; ++i) {
      if (RunBinary("/usr/bin/redis-cli", {"-p", std::to_string(port), "PING"}).out.find("PONG") !=
          std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  int port_ = 0;
};

int SlotsOf(const nlohmann::json& status, const std::string& address) {
  for (const auto& m : status["masters"]) {
    if (m["address"] == address) return m["slots"].get<int>();
  }
  return -1;
}

TEST(RedisScaleTest, AddNodesThenRebalanceKeepsEveryKeyAndTtl) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/redis-server"))
      << "redis-server is needed: scripts/install-deps.sh";
  TempDir dir;
  ClusterModeServer a(dir), b(dir), c(dir);
  ASSERT_TRUE(a.port() && b.port() && c.port()) << "could not start three redis-server";
  // A one-master cluster holding every slot.
  ASSERT_THAT(a.Cli({"CLUSTER", "ADDSLOTSRANGE", "0", "16383"}), HasSubstr("OK"));
  for (int i = 0; i < 100 && a.Cli({"CLUSTER", "INFO"}).find("cluster_state:ok") ==
                                 std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string url = "redis+cluster://" + a.address();
  auto parsed = Url::Parse(url);
  ASSERT_TRUE(parsed.ok());
  auto client = RedisClient::Open(*parsed);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  for (int i = 0; i < 3000; ++i) {
    Command set = {"SET", fmt::format("key:{}", i), fmt::format("value-{}", i)};
    if (i % 3 == 0) set.insert(set.end(), {"PX", "3600000"});
    auto node = (*client)->NodeForKey(set[1]);
    ASSERT_TRUE(node.ok());
    ASSERT_TRUE((*node)->RunOk(set).ok());
  }

  RunResult added = RunFerry({"redis", "cluster", "add-node", url, b.address(), "--json"});
  ASSERT_EQ(added.exit_code, 0) << added.out << added.err;
  EXPECT_EQ(nlohmann::json::parse(added.out)["role"], "master");
  RunResult replica = RunFerry({"redis", "cluster", "add-node", url, c.address(), "--replica-of",
                                a.address(), "--json"});
  ASSERT_EQ(replica.exit_code, 0) << replica.out << replica.err;
  EXPECT_EQ(nlohmann::json::parse(replica.out)["role"], "replica");
  // A node already in a cluster is refused, nothing sent.
  RunResult again = RunFerry({"redis", "cluster", "add-node", url, b.address()});
  EXPECT_EQ(again.exit_code, 9) << again.out << again.err;
  EXPECT_THAT(again.err, HasSubstr("only an empty node that is in no cluster can be added"));

  // Without --use-empty-masters the new master is no part of the share.
  RunResult plain = RunFerry({"redis", "cluster", "rebalance", url, "--state", dir.File("s.db")});
  EXPECT_EQ(plain.exit_code, 0) << plain.out << plain.err;
  EXPECT_THAT(plain.out, HasSubstr("nothing to move"));
  RunResult dry = RunFerry({"redis", "cluster", "rebalance", url, "--use-empty-masters",
                            "--dry-run", "--json", "--state", dir.File("s.db")});
  ASSERT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  auto plan = nlohmann::json::parse(dry.out)["moves"];
  ASSERT_EQ(plan.size(), 1u) << dry.out;
  EXPECT_EQ(plan[0]["slots"], 8192);
  auto status = nlohmann::json::parse(RunFerry({"redis", "cluster", "status", url, "--json"}).out);
  EXPECT_EQ(SlotsOf(status, a.address()), 16384) << "the dry run moved nothing";

  RunResult moved = RunFerry({"redis", "cluster", "rebalance", url, "--use-empty-masters",
                              "--json", "--state", dir.File("s.db")});
  ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;
  status = nlohmann::json::parse(RunFerry({"redis", "cluster", "status", url, "--json"}).out);
  EXPECT_EQ(SlotsOf(status, a.address()), 8192) << status.dump();
  EXPECT_EQ(SlotsOf(status, b.address()), 8192) << status.dump();
  EXPECT_EQ(std::stoll(a.Cli({"DBSIZE"})) + std::stoll(b.Cli({"DBSIZE"})), 3000);
  EXPECT_GT(std::stoll(b.Cli({"DBSIZE"})), 0);

  // Every key readable through a fresh cluster client, TTLs kept.
  auto fresh = RedisClient::Open(*parsed);
  ASSERT_TRUE(fresh.ok());
  for (int i = 0; i < 3000; i += 7) {
    const std::string key = fmt::format("key:{}", i);
    auto node = (*fresh)->NodeForKey(key);
    ASSERT_TRUE(node.ok());
    auto got = (*node)->Pipeline({{"GET", key}, {"PTTL", key}});
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ((*got)[0].str, fmt::format("value-{}", i)) << key;
    if (i % 3 == 0) {
      EXPECT_GT((*got)[1].integer, 0) << key;
    } else {
      EXPECT_EQ((*got)[1].integer, -1) << key;
    }
  }
  RunResult balanced = RunFerry({"redis", "cluster", "rebalance", url, "--use-empty-masters",
                                 "--state", dir.File("s.db")});
  EXPECT_EQ(balanced.exit_code, 0) << balanced.out << balanced.err;
  EXPECT_THAT(balanced.out, HasSubstr("nothing to move"));
}

}  // namespace
}  // namespace ferry::redis
