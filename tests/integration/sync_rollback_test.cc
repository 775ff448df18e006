// ferry cutover --watch end to end on the real PostgreSQL server: a fresh
// source and target database per test, a sync job filled by the built
// binary, a --reverse cut-over watched against a fake Prometheus (a tiny
// HTTP server in this process: a stand-in for the monitoring system, not
// for a database), and both sides inspected afterwards.
#include <httplib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "drivers/registry.h"
#include "integration/sync_test_util.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;

// A fake Prometheus: /api/v1/query answers an instant vector whose one
// sample is what `answer` returns for the n-th query (0-based).
class FakePrometheus {
 public:
  explicit FakePrometheus(std::function<std::string(int)> answer) : answer_(std::move(answer)) {
    server_.Get("/api/v1/query", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      queries_.push_back(req.get_param_value("query"));
      std::string value = answer_(static_cast<int>(queries_.size()) - 1);
      nlohmann::json body = {
          {"status", "success"},
          {"data",
           {{"resultType", "vector"},
            {"result", nlohmann::json::array({{{"metric", nlohmann::json::object()},
                                               {"value", {1700000000.0, value}}}})}}}};
      res.set_content(body.dump(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() only ends a server that runs: wait until the loop is in accept.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakePrometheus() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> queries() {
    std::lock_guard<std::mutex> lock(mu_);
    return queries_;
  }

 private:
  std::function<std::string(int)> answer_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<std::string> queries_;
};

class RollbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(src_db_.ok() && dst_db_.ok()) << "set FERRY_TEST_PG_URL (source /tmp/srv/env)";
    static std::atomic<int> counter{0};
    job_ = "rb" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    src_ = Connect(src_db_.url());
    dst_ = Connect(dst_db_.url());
    ASSERT_TRUE(src_ && dst_);
    Sql(*src_,
        "CREATE TABLE items (id serial PRIMARY KEY, name text);"
        "INSERT INTO items (name) SELECT 'item ' || i FROM generate_series(1, 50) i");
    RunResult first = RunFerry({"sync", "--from", src_db_.url(), "--to", dst_db_.url(), "--job",
                                job_, "--tables", "items", "--create-tables",
                                "--until-lag-zero"});
    ASSERT_EQ(first.exit_code, 0) << Show(first);
  }

  void TearDown() override { DropSlotsIn({src_db_.name(), dst_db_.name()}); }

  std::vector<std::string> Cutover(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"cutover", job_, "--from", src_db_.url(), "--to",
                                     dst_db_.url(), "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  static bool Writable(Connection& c) {
    auto r = c.Exec("INSERT INTO items (id, name) VALUES (-1, 'probe'); DELETE FROM items "
                    "WHERE id = -1");
    return r.ok();
  }

  std::string Phase() {
    RunResult status = RunFerry({"sync", "--status", job_, "--to", dst_db_.url(), "--json"});
    EXPECT_EQ(status.exit_code, 0) << Show(status);
    auto s = nlohmann::json::parse(status.out, nullptr, false);
    return s.is_object() ? s.value("phase", "") : "";
  }

  FreshPgDatabase src_db_, dst_db_;
  std::unique_ptr<Connection> src_, dst_;
  std::string job_;
};

TEST_F(RollbackTest, ConditionHoldsRollsBackThroughTheReverseJob) {
  // The first check answers 0 and, before it does, a row is written on the
  // new primary; every later check answers 1.
  auto writer = Connect(dst_db_.url());
  ASSERT_TRUE(writer);
  std::atomic<bool> wrote{false};
  FakePrometheus prom([&](int n) -> std::string {
    if (n == 0) {
      wrote = writer->Exec("INSERT INTO items (name) VALUES ('during watch')").ok();
      return "0";
    }
    return "1";
  });
  TempDir dir;
  const std::string query = "sum(rate(http_errors_total[1m])) > 5";
  RunResult r = RunFerry(Cutover({"--reverse", "--watch", "10m", "--watch-interval", "300ms",
                                  "--rollback-if", query, "--prometheus", prom.url(),
                                  "--rollback-hook",
                                  "echo \"back $FERRY_CUTOVER_JOB\" > " + dir.File("hook")}));
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  ASSERT_TRUE(wrote);
  nlohmann::json j = nlohmann::json::parse(r.out);
  const auto& w = j["watch"];
  EXPECT_EQ(w["condition_held"], true);
  EXPECT_EQ(w["rolled_back"], true);
  EXPECT_EQ(w["value"], "1");
  EXPECT_EQ(w["checks"], 2);
  EXPECT_GE(w["rollback_pause_ms"].get<int64_t>(), 0);
  EXPECT_THAT(w["reason"].get<std::string>(), HasSubstr(query));
  EXPECT_THAT(w["reason"].get<std::string>(), HasSubstr("gave 1 at "));
  ASSERT_EQ(prom.queries().size(), 2u);
  EXPECT_EQ(prom.queries()[0], query);

  // The row written on the new primary during the watch is on the old one.
  EXPECT_EQ(One(*src_, "SELECT count(*) FROM items WHERE name = 'during watch'"), "1");
  const std::string rows =
      "SELECT count(*) || ':' || md5(string_agg(x::text, '|' ORDER BY id)) FROM items x";
  EXPECT_EQ(One(*src_, rows), One(*dst_, rows));
  // Writes go to the old primary again; the new one refuses them.
  EXPECT_TRUE(Writable(*src_));
  auto refused = dst_->Exec("INSERT INTO items (name) VALUES ('too late')");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("ferry cutover " + job_ + "_reverse"));
  // The rollback hook ran, with the reverse job's name.
  EXPECT_EQ(ReadFile(dir.File("hook")), "back " + job_ + "_reverse\n");
  EXPECT_EQ(Phase(), "rolled_back");
}

TEST_F(RollbackTest, ConditionNeverHoldsTheCutoverStands) {
  FakePrometheus prom([](int) -> std::string { return "0"; });
  RunResult r = RunFerry(Cutover({"--reverse", "--watch", "3s", "--watch-interval", "1s",
                                  "--rollback-if", "up == 0", "--prometheus", prom.url()}));
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["watch"]["condition_held"], false);
  EXPECT_EQ(j["watch"]["rolled_back"], false);
  EXPECT_GE(j["watch"]["checks"].get<int>(), 1);
  EXPECT_EQ(static_cast<size_t>(j["watch"]["checks"].get<int>()), prom.queries().size());
  EXPECT_THAT(r.err, HasSubstr("condition never held; the cut-over stands"));
  EXPECT_FALSE(Writable(*src_));
  EXPECT_TRUE(Writable(*dst_));
  EXPECT_EQ(Phase(), "cut_over");
}

TEST_F(RollbackTest, PrometheusUnreachableStopsWithoutRollingBack) {
  // A port that was free a moment ago and has no listener now.
  int port = 0;
  {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
    close(fd);
  }
  RunResult r = RunFerry(Cutover({"--reverse", "--watch", "10m", "--watch-interval", "200ms",
                                  "--rollback-if", "up == 0", "--prometheus",
                                  "http://127.0.0.1:" + std::to_string(port)}));
  EXPECT_EQ(r.exit_code, 9) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("3 failed checks in a row, without rolling back"));
  EXPECT_THAT(r.err, HasSubstr("unreachable"));
  EXPECT_THAT(r.err, HasSubstr("the cut-over stands"));
  EXPECT_FALSE(Writable(*src_));
  EXPECT_TRUE(Writable(*dst_));
  EXPECT_EQ(Phase(), "cut_over");
}

TEST_F(RollbackTest, FailingRollbackHookLeavesTheCutoverInPlace) {
  // --rollback-if-cmd: exit 0 holds at the first check; the switch back's
  // hook fails, so its lock is rolled back and the cut-over stands.
  RunResult r = RunFerry(Cutover({"--reverse", "--watch", "10m", "--watch-interval", "200ms",
                                  "--rollback-if-cmd", "exit 0", "--rollback-hook",
                                  "echo config service down >&2; exit 3"}));
  EXPECT_EQ(r.exit_code, 9) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("the rollback condition held"));
  EXPECT_THAT(r.err, HasSubstr("the cut-over stands"));
  EXPECT_THAT(r.err, HasSubstr("exit code 3"));
  EXPECT_THAT(r.err, HasSubstr("config service down"));
  EXPECT_FALSE(Writable(*src_));
  EXPECT_TRUE(Writable(*dst_));
  EXPECT_EQ(Phase(), "cut_over");
}

TEST_F(RollbackTest, WatchWithoutReverseIsRefusedBeforeAnything) {
  RunResult r = RunFerry(Cutover({"--watch", "3s", "--rollback-if", "up == 0", "--prometheus",
                                  "http://127.0.0.1:9"}));
  EXPECT_EQ(r.exit_code, 8) << Show(r);  // invalid input
  EXPECT_THAT(r.err, HasSubstr("--watch needs --reverse"));
  EXPECT_TRUE(Writable(*src_));
  EXPECT_EQ(One(*src_, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'ferry\\_cutover%'"),
            "0");
  EXPECT_NE(Phase(), "cut_over");
}

}  // namespace
}  // namespace ferry::testing
