// `ferry serve` end to end: the built binary serves real PostgreSQL and
// SQLite databases (and one that is down); every answer is checked against
// docs/openapi.yaml and for what it must say.
#include <httplib.h>
#include <signal.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/url.h"
#include "drivers/registry.h"
#include "integration/redis_test_env.h"
#include "serve_util.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- the OpenAPI check: status codes and required fields, recursively ----

YAML::Node Resolve(const YAML::Node& root, YAML::Node node) {
  while (node.IsMap() && node["$ref"]) {
    std::string ref = node["$ref"].as<std::string>();  // "#/components/schemas/X"
    YAML::Node at = root;
    size_t start = 2;
    while (start < ref.size()) {
      size_t slash = ref.find('/', start);
      std::string part =
          ref.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      at = at[part];
      start = slash == std::string::npos ? ref.size() : slash + 1;
    }
    node = at;
  }
  return node;
}

void CheckValue(const YAML::Node& root, YAML::Node schema, const json& value,
                const std::string& where, std::vector<std::string>* problems) {
  schema = Resolve(root, schema);
  if (value.is_null()) {
    if (!(schema["nullable"] && schema["nullable"].as<bool>())) {
      problems->push_back(where + ": null but not nullable");
    }
    return;
  }
  const std::string type = schema["type"] ? schema["type"].as<std::string>() : "";
  if (schema["enum"] && value.is_string()) {
    bool found = false;
    for (const auto& e : schema["enum"]) found |= e.as<std::string>() == value.get<std::string>();
    if (!found) problems->push_back(where + ": " + value.dump() + " not in enum");
  }
  if (type == "object") {
    if (!value.is_object()) {
      problems->push_back(where + ": not an object");
      return;
    }
    for (const auto& r : schema["required"]) {
      if (!value.contains(r.as<std::string>())) {
        problems->push_back(where + ": missing required " + r.as<std::string>());
      }
    }
    for (const auto& p : schema["properties"]) {
      const std::string name = p.first.as<std::string>();
      if (value.contains(name))
        CheckValue(root, p.second, value[name], where + "." + name, problems);
    }
  } else if (type == "array") {
    if (!value.is_array()) {
      problems->push_back(where + ": not an array");
      return;
    }
    for (size_t i = 0; i < value.size(); ++i) {
      CheckValue(root, schema["items"], value[i], where + "[" + std::to_string(i) + "]", problems);
    }
  } else if (type == "string" && !value.is_string()) {
    problems->push_back(where + ": not a string");
  } else if (type == "integer" && !value.is_number_integer()) {
    problems->push_back(where + ": not an integer");
  } else if (type == "number" && !value.is_number()) {
    problems->push_back(where + ": not a number");
  } else if (type == "boolean" && !value.is_boolean()) {
    problems->push_back(where + ": not a boolean");
  }
}

// GETs every documented path and checks the status code is documented and
// the JSON body has every required field. Returns the problems.
std::vector<std::string> CheckAgainstOpenApi(ServeProcess& server, const std::string& token) {
  YAML::Node root = YAML::LoadFile(std::string(FERRY_SOURCE_DIR) + "/docs/openapi.yaml");
  std::vector<std::string> problems;
  int paths = 0;
  for (const auto& p : root["paths"]) {
    const std::string path = p.first.as<std::string>();
    ++paths;
    auto res = server.Get(path, token);
    if (!res) {
      problems.push_back(path + ": no answer");
      continue;
    }
    YAML::Node response = p.second["get"]["responses"][std::to_string(res->status)];
    if (!response) {
      problems.push_back(path + ": status " + std::to_string(res->status) + " not documented");
      continue;
    }
    response = Resolve(root, response);
    YAML::Node media = response["content"]["application/json"];
    if (!media) {
      if (res->get_header_value("Content-Type").find("text/plain") != 0) {
        problems.push_back(path + ": expected text/plain");
      }
      continue;
    }
    json body = json::parse(res->body, nullptr, false);
    if (body.is_discarded()) {
      problems.push_back(path + ": body is not JSON");
      continue;
    }
    CheckValue(root, media["schema"], body, path, &problems);
  }
  if (paths < 7) problems.push_back("openapi.yaml lists only " + std::to_string(paths) + " paths");
  return problems;
}

// ---- fixtures ----

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = std::make_unique<FreshPgDatabase>();
    if (IsSkipped()) return;
    ASSERT_TRUE(pg_->ok());
    dir_.Write("migrations/1_items.sql",
               "-- ferry:up\nCREATE TABLE items (id bigint PRIMARY KEY, name text);\n"
               "INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 500) g;\n"
               "-- ferry:down\nDROP TABLE items;\n");
    dir_.Write("migrations/2_more.sql", "-- ferry:up\nALTER TABLE items ADD COLUMN note text;\n");
    RunResult up = RunFerry({"--database", pg_->url(), "--dir", dir_.File("migrations"), "up"});
    ASSERT_EQ(up.exit_code, 0) << up.err;
    dir_.Write("migrations/3_pending.sql",
               "-- ferry:up\nCREATE INDEX items_name ON items (name);\n");
    lite_ = "sqlite:" + dir_.File("copy.db");
    RunResult copy = RunFerry({"copy", "--from", pg_->url(), "--to", lite_, "--table", "items",
                               "--create-tables", "--batch-rows", "100", "--job", "items-job"});
    ASSERT_EQ(copy.exit_code, 0) << copy.err;
  }

  std::vector<std::string> ServeArgs() const {
    return {"serve", "--dir",  dir_.File("migrations"), "-d", pg_->url(), "-d", lite_,
            "-d",    kDownUrl, "--ready-timeout",       "5s"};
  }

  // A database nobody listens for (port 1), with a password that must
  // never appear in any answer.
  static constexpr const char* kDownUrl = "postgres://app:hunter2secret@127.0.0.1:1/gone";

  TempDir dir_;
  std::unique_ptr<FreshPgDatabase> pg_;
  std::string lite_;
};

std::string Label(const std::string& url) {
  auto u = Url::Parse(url);
  return u.ok() ? u->host() + ":" + std::to_string(u->port()) + "/" + u->database() : "";
}

TEST_F(ServeTest, AnswersMatchOpenApiAndSayWhatIsWrong) {
  if (IsSkipped()) return;
  ServeProcess server(ServeArgs());
  ASSERT_TRUE(server.ok()) << server.log();

  std::vector<std::string> problems = CheckAgainstOpenApi(server, "");
  EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems);

  auto health = server.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  // The database that is down makes the service unready, and says why; the
  // others pass every check.
  auto ready = server.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  json r = json::parse(ready->body);
  EXPECT_FALSE(r["ready"].get<bool>());
  ASSERT_EQ(r["databases"].size(), 3u);
  EXPECT_TRUE(r["databases"][0]["ready"].get<bool>()) << r.dump(2);
  EXPECT_FALSE(r["databases"][2]["ready"].get<bool>());
  EXPECT_EQ(r["databases"][2]["checks"][0]["name"], "connect");
  EXPECT_FALSE(r["databases"][2]["checks"][0]["ok"].get<bool>());
  EXPECT_EQ(r["databases"][2]["database"], "127.0.0.1:1/gone");

  json status = json::parse(server.Get("/api/status")->body);
  const json& a = status["databases"][0];
  EXPECT_EQ(a["database"], Label(pg_->url()));
  EXPECT_EQ(a["current_version"], "2");
  EXPECT_EQ(a["pending"], 1);
  EXPECT_EQ(a["pending_versions"], json::array({"3"}));
  EXPECT_EQ(a["failed"], 0);
  EXPECT_TRUE(a["lock_holder"].is_null());
  EXPECT_FALSE(status["databases"][2]["reachable"].get<bool>());

  json history = json::parse(server.Get("/api/history?limit=1")->body);
  ASSERT_EQ(history["databases"][0]["rows"].size(), 1u);
  EXPECT_EQ(history["databases"][0]["rows"][0]["version"], "2");
  EXPECT_EQ(server.Get("/api/history?limit=x")->status, 400);

  json jobs = json::parse(server.Get("/api/jobs")->body);
  ASSERT_EQ(jobs["jobs"].size(), 1u) << jobs.dump(2);
  const json& job = jobs["jobs"][0];
  EXPECT_EQ(job["job_id"], "items-job");
  EXPECT_EQ(job["kind"], "copy");
  EXPECT_EQ(job["state"], "done");
  EXPECT_EQ(job["chunks_total"], 5);
  EXPECT_EQ(job["chunks_done"], 5);
  EXPECT_EQ(job["rows_done"], 500);
  EXPECT_EQ(job["progress"], 1.0);
  EXPECT_EQ(jobs["errors"].size(), 1u);

  json lint = json::parse(server.Get("/api/lint")->body);
  EXPECT_EQ(lint["databases"][0]["files"], 1);
  bool found = false;
  for (const json& f : lint["databases"][0]["findings"])
    found |= f["file"].get<std::string>().find("3_pending") != std::string::npos;
  EXPECT_TRUE(found) << lint.dump(2);  // CREATE INDEX without CONCURRENTLY

  std::string metrics = server.Get("/metrics")->body;
  EXPECT_THAT(metrics, HasSubstr("schema_version_info{database=\"" + Label(pg_->url()) +
                                 "\",version=\"2\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("ferry_database_up{database=\"127.0.0.1:1/gone\"} 0"));
  EXPECT_THAT(metrics, HasSubstr("ferry_job_chunks{database=\"copy.db\",job=\"items-job\","
                                 "kind=\"copy\",state=\"done\"} 5"));

  // Read-only, and no password anywhere.
  httplib::Client c("127.0.0.1", server.port());
  auto post = c.Post("/api/status", "", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  for (const char* path :
       {"/", "/readyz", "/api/status", "/api/history", "/api/jobs", "/api/lint", "/metrics"}) {
    auto res = server.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_THAT(res->body, Not(HasSubstr("hunter2secret"))) << path;
  }
  EXPECT_THAT(server.log(), Not(HasSubstr("hunter2secret")));
}

TEST_F(ServeTest, TokenGuardsEveryPathButHealthz) {
  if (IsSkipped()) return;
  std::vector<std::string> args = ServeArgs();
  args.insert(args.end(), {"--token", "s3cr3t-token"});
  ServeProcess server(args);
  ASSERT_TRUE(server.ok()) << server.log();
  EXPECT_EQ(server.Get("/healthz")->status, 200);
  for (const char* path : {"/", "/api/status", "/api/jobs", "/metrics"}) {
    EXPECT_EQ(server.Get(path)->status, 401) << path;
    EXPECT_EQ(server.Get(path, "wrong")->status, 401) << path;
  }
  // /readyz answers a probe without the token with its verdict only.
  for (const char* token : {"", "wrong"}) {
    auto ready = server.Get("/readyz", token);
    ASSERT_TRUE(ready);
    EXPECT_TRUE(ready->status == 200 || ready->status == 503) << ready->status;
    EXPECT_EQ(json::parse(ready->body), json({{"ready", ready->status == 200}})) << ready->body;
  }
  auto detailed = server.Get("/readyz", "s3cr3t-token");
  ASSERT_TRUE(detailed);
  EXPECT_TRUE(json::parse(detailed->body).contains("databases")) << detailed->body;
  EXPECT_EQ(server.Get("/api/status", "s3cr3t-token")->status, 200);
  std::vector<std::string> problems = CheckAgainstOpenApi(server, "s3cr3t-token");
  EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems);
}

// Redis servers and clusters are watched too: reachable, keys, memory, a
// readiness verdict, metrics; no password anywhere (the ACL user's URL).
TEST(RedisServeTest, WatchesRedisServersAndClustersReadOnly) {
  const std::string plain = ::ferry::testing::RedisAclUrl();
  const std::string cluster = ::ferry::testing::RedisClusterUrl();
  if (plain.empty() || cluster.empty()) return;
  ServeProcess server({"serve", "-d", plain, "-d", cluster});
  ASSERT_TRUE(server.ok()) << server.log();
  auto status = json::parse(server.Get("/api/status")->body);
  ASSERT_EQ(status["databases"].size(), 2u) << status.dump();
  for (const auto& db : status["databases"]) {
    EXPECT_EQ(db["reachable"], true) << db.dump();
    EXPECT_EQ(db["engine"], "redis") << db.dump();
    EXPECT_GT(db["used_memory_bytes"].get<int64_t>(), 0) << db.dump();
  }
  EXPECT_EQ(status["databases"][0]["mode"], "standalone");
  EXPECT_EQ(status["databases"][1]["mode"], "cluster");
  EXPECT_EQ(status["databases"][1]["masters"], 3);
  EXPECT_EQ(status["databases"][1]["database"].get<std::string>().find(":6379"),
            std::string::npos);
  auto ready = server.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto checks = json::parse(ready->body)["databases"][1]["checks"];
  ASSERT_EQ(checks.size(), 2u) << ready->body;
  EXPECT_EQ(checks[0]["name"], "connect");
  EXPECT_EQ(checks[1]["name"], "memory");
  auto metrics = server.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("ferry_redis_db_keys{"));
  EXPECT_THAT(metrics->body, HasSubstr("ferry_redis_memory_bytes{"));
  for (const char* path : {"/", "/api/status", "/readyz", "/api/history", "/api/jobs", "/metrics"}) {
    auto res = server.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->body.find("ferry_acl_secret"), std::string::npos) << path;
  }
  EXPECT_EQ(server.log().find("ferry_acl_secret"), std::string::npos);
}

// A `ferry sync` job's target: /api/jobs shows the job as kind "sync" with
// its streaming side (phase, position, lag), /metrics its lag, both as the
// OpenAPI file says.
TEST(SyncServeTest, SyncJobShowsItsStreamAndLag) {
  FreshPgDatabase src, dst;
  if (IsSkipped()) return;
  ASSERT_TRUE(src.ok() && dst.ok());
  const std::string job = "serve" + std::to_string(getpid());
  struct DropSync {  // the slot would keep its database from being dropped
    std::vector<std::string> args;
    ~DropSync() { RunFerry(args); }
  } drop{{"sync", "--drop", job, "--from", src.url(), "--to", dst.url()}};
  auto conn = OpenConnection(src.url());
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  ASSERT_OK((*conn)->Exec("CREATE TABLE items (id int PRIMARY KEY, v text);"
                          "INSERT INTO items SELECT g, 'v' FROM generate_series(1, 3) g")
                .status());
  RunResult sync = RunFerry({"sync", "--from", src.url(), "--to", dst.url(), "--job", job,
                             "--tables", "items", "--create-tables", "--until-lag-zero"});
  ASSERT_EQ(sync.exit_code, 0) << sync.err;

  ServeProcess server({"serve", "-d", dst.url()});
  ASSERT_TRUE(server.ok()) << server.log();
  std::vector<std::string> problems = CheckAgainstOpenApi(server, "");
  EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems);
  json jobs = json::parse(server.Get("/api/jobs")->body);
  ASSERT_EQ(jobs["jobs"].size(), 1u) << jobs.dump(2);
  const json& j = jobs["jobs"][0];
  EXPECT_EQ(j["job_id"], "sync:" + job);
  EXPECT_EQ(j["kind"], "sync");
  EXPECT_EQ(j["rows_done"], 3);  // the initial copy
  ASSERT_TRUE(j["sync"].is_object()) << j.dump(2);
  EXPECT_EQ(j["sync"]["phase"], "stopped");
  EXPECT_EQ(j["sync"]["caught_up"], true);
  EXPECT_EQ(j["sync"]["lag_seconds"], 0.0);
  EXPECT_TRUE(j["sync"]["applied_lsn"].is_string());
  std::string metrics = server.Get("/metrics")->body;
  EXPECT_THAT(metrics, HasSubstr("ferry_sync_lag_seconds{database=\"" + Label(dst.url()) +
                                 "\",job=\"sync:" + job + "\"} 0"));
}

// Kubernetes stops a pod with SIGTERM: the service stops cleanly, exit 0.
TEST(ServeStop, SigtermAndSigintEndTheServiceWithExitZero) {
  TempDir dir;
  const std::string db = "sqlite:" + dir.File("a.db");
  for (int sig : {SIGTERM, SIGINT}) {
    ServeProcess server({"serve", "-d", db});
    ASSERT_TRUE(server.ok()) << server.log();
    ASSERT_EQ(server.Get("/healthz")->status, 200);
    EXPECT_EQ(server.StopWith(sig), 0) << "signal " << sig << "\n" << server.log();
  }
}

TEST(ServeRefusals, NonLoopbackWithoutTokenAndPortInUse) {
  TempDir dir;
  const std::string db = "sqlite:" + dir.File("a.db");
  RunResult open = RunFerry({"serve", "--listen", "0.0.0.0:0", "-d", db});
  EXPECT_NE(open.exit_code, 0);
  EXPECT_THAT(open.err, HasSubstr("without --token")) << open.err;

  ServeProcess first({"serve", "-d", db});
  ASSERT_TRUE(first.ok()) << first.log();
  RunResult second =
      RunFerry({"serve", "--listen", "127.0.0.1:" + std::to_string(first.port()), "-d", db});
  EXPECT_NE(second.exit_code, 0);
  EXPECT_THAT(second.err, HasSubstr("address already in use")) << second.err;
  EXPECT_EQ(first.Get("/healthz")->status, 200);  // the first one is unharmed
}

}  // namespace
}  // namespace ferry::testing
