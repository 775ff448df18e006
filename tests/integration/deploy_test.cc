// deploy/: the Prometheus alert rules pass `promtool check rules` and their
// own rule tests (alerts fire and stay silent), and every metric name the
// rules and the Grafana dashboard use is one ferry exports: read from a
// live `ferry serve` /metrics and from the --metrics-file of real runs.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "drivers/registry.h"
#include "serve_util.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

const std::string kDeploy = std::string(FERRY_SOURCE_DIR) + "/deploy";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Names after "# TYPE " in Prometheus text.
void AddExported(const std::string& text, std::set<std::string>* names) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) names->insert(line.substr(7, line.find(' ', 7) - 7));
  }
}

// Metric names in a PromQL expression: ferry's own prefixes; histogram
// suffixes map to their family.
std::set<std::string> NamesIn(const std::string& expr) {
  std::set<std::string> out;
  static const std::regex kName(R"(\b((?:migration|schema_version|ferry)_[a-z_]+)\b)");
  for (std::sregex_iterator it(expr.begin(), expr.end(), kName), end; it != end; ++it) {
    std::string n = (*it)[1];
    for (const char* suffix : {"_bucket", "_count", "_sum"}) {
      if (n.size() > std::strlen(suffix) && n.ends_with(suffix))
        n.resize(n.size() - std::strlen(suffix));
    }
    out.insert(n);
  }
  return out;
}

TEST(Deploy, AlertRulesPassPromtoolAndTheirTests) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/promtool"))
      << "promtool is needed: apt-get install prometheus (scripts/install-deps.sh)";
  RunResult check =
      RunBinary("/usr/bin/promtool", {"check", "rules", "alerts.yml"}, {}, kDeploy + "/prometheus");
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("SUCCESS: 11 rules found"), std::string::npos) << check.out;
  RunResult test = RunBinary("/usr/bin/promtool", {"test", "rules", "alerts_test.yml"}, {},
                             kDeploy + "/prometheus");
  EXPECT_EQ(test.exit_code, 0) << test.out << test.err;
  // Every rule has a runbook line.
  std::string rules = Slurp(kDeploy + "/prometheus/alerts.yml");
  size_t alerts = 0, runbooks = 0;
  for (size_t at = 0; (at = rules.find("- alert:", at)) != std::string::npos; ++at) ++alerts;
  for (size_t at = 0; (at = rules.find("runbook:", at)) != std::string::npos; ++at) ++runbooks;
  EXPECT_EQ(alerts, 11u);
  EXPECT_EQ(runbooks, alerts);
}

TEST(Deploy, EveryMetricInRulesAndDashboardIsExported) {
  FERRY_REQUIRE_PG(admin);
  FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  TempDir dir;
  dir.Write("migrations/1_t.sql",
            "-- ferry:up\nCREATE TABLE t (id bigint PRIMARY KEY, v int);\n"
            "INSERT INTO t SELECT g, NULL FROM generate_series(1, 50) g;\n");
  std::set<std::string> exported;
  const std::string prom = dir.File("run.prom");
  RunResult up = RunFerry(
      {"--database", db.url(), "--dir", dir.File("migrations"), "up", "--metrics-file", prom});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  AddExported(ReadFile(prom), &exported);
  ServeProcess server({"serve", "-d", db.url(), "--dir", dir.File("migrations")});
  ASSERT_TRUE(server.ok()) << server.log();
  auto metrics = server.Get("/metrics");
  ASSERT_TRUE(metrics);
  ASSERT_EQ(metrics->status, 200);
  AddExported(metrics->body, &exported);
  ASSERT_GT(exported.size(), 20u);

  std::set<std::string> used;
  auto dash = nlohmann::json::parse(Slurp(kDeploy + "/grafana/ferry.json"));
  ASSERT_GT(dash["panels"].size(), 10u);
  for (const auto& panel : dash["panels"]) {
    ASSERT_FALSE(panel["targets"].empty()) << panel["title"];
    for (const auto& target : panel["targets"]) {
      auto names = NamesIn(target["expr"].get<std::string>());
      EXPECT_FALSE(names.empty()) << target["expr"];
      used.insert(names.begin(), names.end());
    }
  }
  std::string rules = Slurp(kDeploy + "/prometheus/alerts.yml");
  std::istringstream in(rules);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("expr:") == std::string::npos && line.find("/ clamp_min") == std::string::npos &&
        line.find("sum by") == std::string::npos) {
      continue;
    }
    auto names = NamesIn(line);
    used.insert(names.begin(), names.end());
  }
  ASSERT_GT(used.size(), 15u);
  for (const std::string& name : used) {
    EXPECT_TRUE(exported.count(name)) << name << " is used in deploy/ but ferry does not export it";
  }
}


// ---- deploy/k8s and examples/ci: every ferry command line names real flags ----

// The ferry command lines in a YAML document: a sequence whose first item is
// "ferry" (a container's command, followed by its sibling args), and every
// line of a scalar that starts with "ferry " (a CI script), cut at the first
// shell operator.
void CollectCommands(const YAML::Node& node, std::vector<std::vector<std::string>>* out) {
  if (node.IsSequence()) {
    if (node.size() > 0 && node[0].IsScalar() && node[0].as<std::string>() == "ferry") {
      std::vector<std::string> cmd;
      for (const auto& item : node) cmd.push_back(item.as<std::string>());
      out->push_back(cmd);
      return;
    }
    for (const auto& item : node) CollectCommands(item, out);
  } else if (node.IsMap()) {
    for (const auto& kv : node) {
      CollectCommands(kv.second, out);
      if (kv.first.as<std::string>() == "command" && node["args"] && !out->empty() &&
          kv.second.IsSequence() && kv.second[0].as<std::string>() == "ferry") {
        for (const auto& a : node["args"]) out->back().push_back(a.as<std::string>());
      }
    }
  } else if (node.IsScalar()) {
    std::istringstream in(node.as<std::string>());
    std::string line;
    while (std::getline(in, line)) {
      line.erase(0, line.find_first_not_of(" \t"));
      if (line.rfind("ferry ", 0) != 0) continue;
      std::istringstream words(line);
      std::vector<std::string> cmd;
      for (std::string w; words >> w;) {
        if (w == ">" || w == "|" || w == "&&" || w == ";" || w == "||") break;
        cmd.push_back(w);
      }
      out->push_back(cmd);
    }
  }
}

// Whether `help` (a --help text) lists `flag` as an option.
bool HelpListsFlag(const std::string& help, const std::string& flag) {
  const std::regex re("(^|[\\s,])" + flag + "(?=[\\s,=]|$)", std::regex::multiline);
  return std::regex_search(help, re);
}

TEST(Deploy, ManifestsAndCiExamplesNameOnlyFlagsFerryAccepts) {
  std::vector<std::string> files;
  for (const char* dir : {"/deploy/k8s", "/examples/ci"}) {
    for (const auto& e : std::filesystem::directory_iterator(std::string(FERRY_SOURCE_DIR) + dir)) {
      const std::string ext = e.path().extension().string();
      if (ext == ".yaml" || ext == ".yml") files.push_back(e.path().string());
    }
  }
  ASSERT_GE(files.size(), 7u) << "deploy/k8s (5 manifests) and examples/ci (2 pipelines)";
  const std::string global_help = RunFerry({"--help"}).out;
  std::set<std::string> subcommands;
  size_t commands = 0;
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    std::vector<YAML::Node> docs;
    ASSERT_NO_THROW(docs = YAML::LoadAllFromFile(file));
    const std::string text = Slurp(file);
    std::vector<std::vector<std::string>> found;
    for (const auto& doc : docs) {
      if (file.find("/k8s/") != std::string::npos) {
        EXPECT_TRUE(doc["apiVersion"] && doc["kind"]) << "every manifest has apiVersion and kind";
        EXPECT_EQ(text.find("://"), std::string::npos) << "database URLs belong in a Secret";
      }
      CollectCommands(doc, &found);
    }
    EXPECT_FALSE(found.empty()) << "no ferry command found";
    for (const auto& cmd : found) {
      ASSERT_GE(cmd.size(), 2u);
      const std::string& sub = cmd[1];
      RunResult help = RunFerry({sub, "--help"});
      ASSERT_EQ(help.exit_code, 0) << "ferry " << sub << ": " << help.err;
      ASSERT_NE(help.out.find("Usage: ferry " + sub), std::string::npos) << help.out;
      subcommands.insert(sub);
      for (size_t i = 2; i < cmd.size(); ++i) {
        if (cmd[i].rfind("--", 0) != 0) continue;
        const std::string flag = cmd[i].substr(0, cmd[i].find('='));
        EXPECT_TRUE(HelpListsFlag(help.out, flag) || HelpListsFlag(global_help, flag))
            << "ferry " << sub << " does not accept " << flag;
      }
      ++commands;
    }
  }
  EXPECT_GE(commands, 10u);
  for (const char* sub : {"up", "copy", "serve", "health", "validate", "lint"}) {
    EXPECT_TRUE(subcommands.count(sub)) << sub << " is in no manifest or pipeline";
  }
  // The check itself catches a flag that does not exist.
  EXPECT_FALSE(HelpListsFlag(RunFerry({"up", "--help"}).out, "--no-such-flag"));
  EXPECT_TRUE(HelpListsFlag(RunFerry({"up", "--help"}).out, "--dry-run"));
}

// ---- a real Prometheus scrapes `ferry serve` ----

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

TEST(Deploy, PrometheusScrapesTheSeedsSeriesFromServe) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/prometheus"))
      << "prometheus is needed: apt-get install prometheus (scripts/install-deps.sh)";
  TempDir dir;
  dir.Write("migrations/1_t.sql", "-- ferry:up\nCREATE TABLE t (id integer PRIMARY KEY);\n");
  const std::string db = "sqlite:" + dir.File("app.db");
  ASSERT_EQ(RunFerry({"--database", db, "--dir", dir.File("migrations"), "up"}).exit_code, 0);
  ServeProcess server({"serve", "-d", db, "--dir", dir.File("migrations")});
  ASSERT_TRUE(server.ok()) << server.log();

  const int port = FreeLoopbackPort();
  ASSERT_NE(port, 0);
  dir.Write("prometheus.yml", "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                              "scrape_configs:\n  - job_name: ferry\n    static_configs:\n"
                              "      - targets: ['127.0.0.1:" +
                                  std::to_string(server.port()) + "']\n");
  std::vector<std::string> argv = {"/usr/bin/prometheus",
                                   "--config.file=" + dir.File("prometheus.yml"),
                                   "--storage.tsdb.path=" + dir.File("tsdb"),
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port)};
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = dir.File("prometheus.log");
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, cargv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);

  // Ask Prometheus until every series has arrived (or give up after 90 s).
  httplib::Client prom("127.0.0.1", port);
  // Seed 003's schema version and ferry's health and migration gauges.
  std::set<std::string> missing = {"schema_version_info{version=\"1\"}",
                                   "ferry_database_up == 1", "ferry_migrations"};
  for (int i = 0; i < 180 && !missing.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (auto it = missing.begin(); it != missing.end();) {
      auto res = prom.Get("/api/v1/query", httplib::Params{{"query", *it}}, httplib::Headers{});
      bool arrived = false;
      if (res && res->status == 200) {
        auto body = nlohmann::json::parse(res->body, nullptr, false);
        arrived = !body.is_discarded() && body["status"] == "success" &&
                  !body["data"]["result"].empty();
      }
      it = arrived ? missing.erase(it) : std::next(it);
    }
  }
  kill(pid, SIGTERM);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  EXPECT_TRUE(missing.empty()) << "series that never arrived in Prometheus: "
                               << ::testing::PrintToString(missing) << "\n"
                               << ReadFile(log);
}

}  // namespace
}  // namespace ferry::testing
