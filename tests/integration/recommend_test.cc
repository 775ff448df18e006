// ferry recommend against a real PostgreSQL database prepared with the
// problems it looks for.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "drivers/registry.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

// The first recommendation of `check` about `subject` (null when none).
json Find(const json& report, const std::string& check, const std::string& subject) {
  for (const json& r : report["recommendations"]) {
    if (r["check"] == check && r["subject"] == subject) return r;
  }
  return nullptr;
}

TEST(Recommend, FindsKeysIndexesAndFailedMigrationsWithTheSqlToAct) {
  FERRY_REQUIRE_PG(admin);
  FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  auto c = OpenConnection(db.url());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Exec("CREATE TABLE orders (id serial PRIMARY KEY, note text);"
                         "SELECT setval('orders_id_seq', 1900000000);"
                         "CREATE TABLE events (at timestamptz, payload text);"
                         "CREATE TABLE users (id bigint PRIMARY KEY, email text);"
                         "CREATE INDEX users_email_a ON users (email);"
                         "CREATE INDEX users_email_b ON users (email);")
                  .ok());
  TempDir dir;
  dir.Write("migrations/1_bad.sql", "-- ferry:up\nSELECT * FROM no_such_table;\n");
  RunResult up = RunFerry({"--database", db.url(), "--dir", dir.File("migrations"), "up"});
  ASSERT_NE(up.exit_code, 0);

  RunResult r = RunFerry({"--database", db.url(), "recommendations", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json report = json::parse(r.out);
  ASSERT_TRUE(report["ok"].get<bool>());

  json key = Find(report, "int4_exhaustion", "public.orders.id");
  ASSERT_FALSE(key.is_null()) << report.dump(2);
  EXPECT_EQ(key["priority"], "critical");  // 88% used
  EXPECT_NE(key["command"].get<std::string>().find("bigint"), std::string::npos);

  json nopk = Find(report, "no_primary_key", "public.events");
  ASSERT_FALSE(nopk.is_null()) << report.dump(2);
  EXPECT_NE(nopk["command"].get<std::string>().find("ALTER TABLE \"public\".\"events\""),
            std::string::npos);
  EXPECT_TRUE(Find(report, "no_primary_key", "public.users").is_null());

  json dup = Find(report, "duplicate_index", "public.users_email_b");
  ASSERT_FALSE(dup.is_null()) << report.dump(2);
  EXPECT_EQ(dup["command"], "DROP INDEX CONCURRENTLY \"public\".\"users_email_b\";");

  json failed = Find(report, "failed_migration", "1_bad.sql");
  ASSERT_FALSE(failed.is_null()) << report.dump(2);
  EXPECT_EQ(failed["priority"], "critical");
  // Ranked: every critical before any high, before medium, before low.
  const std::vector<std::string> order = {"critical", "high", "medium", "low"};
  size_t last = 0;
  for (const json& x : report["recommendations"]) {
    size_t p =
        std::find(order.begin(), order.end(), x["priority"].get<std::string>()) - order.begin();
    EXPECT_GE(p, last);
    last = p;
  }
  // The decision matrix with its thresholds (and a tiny test database
  // indicates no move).
  ASSERT_EQ(report["decision_matrix"]["figures"].size(), 3u);
  EXPECT_EQ(report["decision_matrix"]["figures"][0]["name"], "database_size_bytes");
  EXPECT_GT(report["decision_matrix"]["figures"][0]["value"].get<double>(), 0);
  EXPECT_FALSE(report["decision_matrix"]["move_indicated"].get<bool>());

  // Thresholds are the caller's: a 0 GiB size and 0 commits/s bound make
  // two of three exceeded.
  r = RunFerry({"--database", db.url(), "recommend", "--json", "--matrix-size-gib", "0",
                "--matrix-commits", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(json::parse(r.out)["decision_matrix"]["move_indicated"].get<bool>()) << r.out;

  RunResult lite = RunFerry({"--database", "sqlite:" + dir.File("x.db"), "recommend"});
  EXPECT_NE(lite.exit_code, 0);
  EXPECT_NE(lite.err.find("PostgreSQL"), std::string::npos) << lite.err;
}

}  // namespace
}  // namespace ferry::testing
