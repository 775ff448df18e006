// ferry recommend on CQL (issue 17 item 6) against the throw-away Cassandra
// node: a table whose reads scan many tombstones and a table whose rows
// expire under size-tiered compaction are found, with the CQL that acts;
// tables without either are not. Large partitions need flushed SSTables
// (only nodetool flushes), so that check is not exercised here.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <regex>
#include <string>

#include "core/url.h"
#include "drivers/cql/cql_connection.h"
#include "test_util.h"

namespace ferry::cql {
namespace {

using ::ferry::testing::RunFerry;
using ::ferry::testing::RunResult;
using json = nlohmann::json;

json Find(const json& report, const std::string& check, const std::string& subject) {
  for (const json& r : report["recommendations"]) {
    if (r["check"] == check && r["subject"] == subject) return r;
  }
  return nullptr;
}

TEST(CqlRecommendTest, FindsTombstoneHeavyReadsAndExpiringRowsWithoutTimeWindows) {
  const std::string base = ::ferry::testing::CqlUrl();
  ASSERT_FALSE(base.empty()) << "FERRY_TEST_CQL_URL is not set";
  auto url = Url::Parse(base);
  ASSERT_TRUE(url.ok());
  auto admin = CqlConnection::Open(*url, {});
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  const std::string ks = fmt::format("ferry_rec_{}", getpid());
  auto run = [&](const std::string& cql) { ASSERT_TRUE((*admin)->Exec(cql).ok()) << cql; };
  run("DROP KEYSPACE IF EXISTS " + ks);
  run("CREATE KEYSPACE " + ks +
      " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
  run("CREATE TABLE " + ks + ".inbox (user_id int, at int, body text, PRIMARY KEY (user_id, at))");
  run("CREATE TABLE " + ks + ".sessions (id int PRIMARY KEY, v text) WITH default_time_to_live = 3600");
  run("CREATE TABLE " + ks + ".events (id int, at int, PRIMARY KEY (id, at)) WITH "
      "default_time_to_live = 86400 AND compaction = {'class': 'TimeWindowCompactionStrategy'}");
  run("CREATE TABLE " + ks + ".quiet (id int PRIMARY KEY, v text)");
  ASSERT_TRUE((*admin)->WaitForSchemaAgreement(std::chrono::seconds(60)).ok());
  // One partition of 1,500 rows, 1,400 of them deleted one by one: every
  // read of it scans 1,400 tombstones (the server's warning is at 1,000).
  for (int i = 0; i < 1500; ++i) {
    run(fmt::format("INSERT INTO {}.inbox (user_id, at, body) VALUES (1, {}, 'm')", ks, i));
  }
  for (int i = 0; i < 1400; ++i) {
    run(fmt::format("DELETE FROM {}.inbox WHERE user_id = 1 AND at = {}", ks, i));
  }
  for (int i = 0; i < 5; ++i) run(fmt::format("SELECT * FROM {}.inbox WHERE user_id = 1", ks));
  run(fmt::format("SELECT * FROM {}.quiet WHERE id = 1", ks));

  const std::string ks_url = base.substr(0, base.rfind('/')) + "/" + ks;
  RunResult r = RunFerry({"--database", ks_url, "recommend", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json report = json::parse(r.out);
  const std::string q = "\"" + ks + "\".";
  json tomb = Find(report, "tombstone_heavy", q + "\"inbox\"");
  ASSERT_FALSE(tomb.is_null()) << report.dump(2);
  // 1,400 per read, as the server's histogram buckets it (1,400 to ~1,700).
  const std::string finding = tomb["finding"].get<std::string>();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(finding, m, std::regex("p99 ([0-9]+),.* over 5 reads"))) << finding;
  EXPECT_GE(std::stoi(m[1]), 1400) << finding;
  EXPECT_LT(std::stoi(m[1]), 2000) << finding;
  json compaction = Find(report, "compaction", q + "\"sessions\"");
  ASSERT_FALSE(compaction.is_null()) << report.dump(2);
  EXPECT_NE(compaction["command"].get<std::string>().find("TimeWindowCompactionStrategy"),
            std::string::npos);
  // Already time-windowed, or nothing wrong: not flagged.
  EXPECT_TRUE(Find(report, "compaction", q + "\"events\"").is_null()) << report.dump(2);
  EXPECT_TRUE(Find(report, "tombstone_heavy", q + "\"quiet\"").is_null());
  // The ALTER it proposes runs as printed.
  run(compaction["command"].get<std::string>());
  EXPECT_EQ(r.out.find(url->password().Reveal()), std::string::npos) << "no password in output";
  run("DROP KEYSPACE IF EXISTS " + ks);
}

}  // namespace
}  // namespace ferry::cql
