// deploy/: the Prometheus alert rules pass `promtool check rules` and their
// own rule tests (alerts fire and stay silent), and every metric name the
// rules and the Grafana dashboard use is one ferry exports: read from a
// live `ferry serve` /metrics and from the --metrics-file of real runs.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>

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
  EXPECT_NE(check.out.find("SUCCESS: 10 rules found"), std::string::npos) << check.out;
  RunResult test = RunBinary("/usr/bin/promtool", {"test", "rules", "alerts_test.yml"}, {},
                             kDeploy + "/prometheus");
  EXPECT_EQ(test.exit_code, 0) << test.out << test.err;
  // Every rule has a runbook line.
  std::string rules = Slurp(kDeploy + "/prometheus/alerts.yml");
  size_t alerts = 0, runbooks = 0;
  for (size_t at = 0; (at = rules.find("- alert:", at)) != std::string::npos; ++at) ++alerts;
  for (size_t at = 0; (at = rules.find("runbook:", at)) != std::string::npos; ++at) ++runbooks;
  EXPECT_EQ(alerts, 10u);
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

}  // namespace
}  // namespace ferry::testing
