// ferry sync end to end on the real PostgreSQL server: a fresh source and
// target database per test, the built binary run as a child process, and
// the rows of both sides compared in full afterwards.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
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

// Count and md5 of every row's text in key order.
std::string Rows(Connection& c, const std::string& table, const std::string& order) {
  return One(c, "SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY " +
                    order + ")), '') FROM " + table + " x");
}

class SyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(src_db_.ok() && dst_db_.ok()) << "set FERRY_TEST_PG_URL (source /tmp/srv/env)";
    static std::atomic<int> counter{0};
    job_ = "t" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    slot_ = "ferry_sync_" + job_;
    src_ = Connect(src_db_.url());
    dst_ = Connect(dst_db_.url());
    ASSERT_TRUE(src_ && dst_);
  }

  // A logical slot keeps its database from being dropped.
  void TearDown() override { DropSlotsIn({src_db_.name()}); }

  std::vector<std::string> Sync(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"sync", "--from", src_db_.url(), "--to", dst_db_.url(),
                                     "--job", job_};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  int SlotCount() {
    return std::stoi(One(*src_, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" +
                                    slot_ + "'"));
  }

  // Waits until the slot has no reader (a killed child's walsender exits).
  void WaitSlotIdle() {
    for (int i = 0; i < 600; ++i) {
      if (One(*src_, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot_ +
                         "' AND active") == "0") {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  FreshPgDatabase src_db_, dst_db_;
  std::unique_ptr<Connection> src_, dst_;
  std::string job_, slot_;
};

TEST_F(SyncTest, CopiesThenStreamsInsertUpdateDeleteTruncate) {
  Sql(*src_,
      "CREATE TABLE items (id int PRIMARY KEY, name text, qty int, tags text[], at timestamptz);"
      "CREATE TABLE other (k text PRIMARY KEY, v jsonb);"
      "CREATE TABLE loose (a int, b text); ALTER TABLE loose REPLICA IDENTITY FULL;"
      "INSERT INTO items SELECT i, 'item ' || i, i * 2, ARRAY['a', 'b'], '2026-01-01'::timestamptz "
      "+ i * interval '1 minute' FROM generate_series(1, 500) i;"
      "INSERT INTO other VALUES ('x', '{\"a\": 1}'), ('y', NULL);"
      "INSERT INTO loose VALUES (1, 'one'), (1, 'one'), (2, 'two')");
  RunResult first =
      RunFerry(Sync({"--tables", "items,other,loose", "--create-tables", "--until-lag-zero"}));
  ASSERT_EQ(first.exit_code, 0) << Show(first);
  EXPECT_EQ(Rows(*dst_, "items", "id"), Rows(*src_, "items", "id"));
  EXPECT_EQ(Rows(*dst_, "other", "k"), Rows(*src_, "other", "k"));

  Sql(*src_,
      "INSERT INTO items VALUES (1001, 'new', 1, NULL, NULL), (1002, 'it''s \\ odd', NULL, "
      "'{}', now());"
      "UPDATE items SET qty = qty + 1, name = upper(name) WHERE id % 7 = 0;"
      "UPDATE items SET id = 2000 WHERE id = 3;"  // key change
      "DELETE FROM items WHERE id BETWEEN 100 AND 150;"
      "TRUNCATE other; INSERT INTO other VALUES ('z', '[1, 2]');"
      "UPDATE loose SET b = 'uno' WHERE ctid = (SELECT min(ctid) FROM loose WHERE a = 1);"
      "DELETE FROM loose WHERE a = 2");
  Sql(*src_, "BEGIN; UPDATE items SET qty = -1 WHERE id = 1; DELETE FROM items WHERE id = 2; COMMIT");
  RunResult second = RunFerry(Sync({"--until-lag-zero", "--json"}));
  ASSERT_EQ(second.exit_code, 0) << Show(second);
  EXPECT_THAT(second.out, HasSubstr("\"stop_reason\":\"caught up\""));
  EXPECT_EQ(Rows(*dst_, "items", "id"), Rows(*src_, "items", "id"));
  EXPECT_EQ(Rows(*dst_, "other", "k"), Rows(*src_, "other", "k"));
  EXPECT_EQ(Rows(*dst_, "loose", "a, b"), Rows(*src_, "loose", "a, b"));
  EXPECT_EQ(One(*dst_, "SELECT count(*) FROM items WHERE id = 3"), "0");
}

TEST_F(SyncTest, UnchangedToastValueSurvivesAnUpdateOfAnotherColumn) {
  // md5 text does not compress well: the value is stored out of line.
  Sql(*src_,
      "CREATE TABLE docs (id int PRIMARY KEY, body text, n int);"
      "ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;"
      "INSERT INTO docs SELECT 1, string_agg(md5(i::text), '') FROM generate_series(1, 20000) i");
  RunResult first = RunFerry(Sync({"--tables", "docs", "--create-tables", "--until-lag-zero"}));
  ASSERT_EQ(first.exit_code, 0) << Show(first);
  Sql(*src_, "UPDATE docs SET n = 42 WHERE id = 1");
  RunResult second = RunFerry(Sync({"--until-lag-zero"}));
  ASSERT_EQ(second.exit_code, 0) << Show(second);
  EXPECT_EQ(One(*dst_, "SELECT n FROM docs WHERE id = 1"), "42");
  EXPECT_EQ(One(*dst_, "SELECT length(body) FROM docs"), "640000");
  EXPECT_EQ(Rows(*dst_, "docs", "id"), Rows(*src_, "docs", "id"));
}

TEST_F(SyncTest, KilledDuringStreamingResumesWithNothingLostOrAppliedTwice) {
  Sql(*src_,
      "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL);"
      "CREATE TABLE log (i int PRIMARY KEY);"
      "INSERT INTO counter VALUES (1, 0)");
  RunResult first =
      RunFerry(Sync({"--tables", "counter,log", "--create-tables", "--until-lag-zero"}));
  ASSERT_EQ(first.exit_code, 0) << Show(first);
  // 400 transactions, each bumping the counter and logging its number.
  for (int i = 1; i <= 400; ++i) {
    Sql(*src_, "BEGIN; UPDATE counter SET n = n + 1; INSERT INTO log VALUES (" +
                   std::to_string(i) + "); COMMIT");
  }
  TempDir dir;
  int pid = StartFerry(Sync({}), dir.File("run.out"));
  // Kill it once it is streaming: some, not necessarily all, applied.
  for (int i = 0; i < 1200; ++i) {
    if (One(*dst_, "SELECT n FROM counter") != "0") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(WaitFerry(pid), 128 + SIGKILL);
  EXPECT_NE(One(*dst_, "SELECT n FROM counter"), "0") << ReadFile(dir.File("run.out.err"));
  WaitSlotIdle();

  RunResult again = RunFerry(Sync({"--until-lag-zero", "--json"}));
  ASSERT_EQ(again.exit_code, 0) << Show(again);
  EXPECT_EQ(One(*dst_, "SELECT n FROM counter"), "400");
  EXPECT_EQ(One(*dst_, "SELECT count(*) || '/' || sum(i) FROM log"), "400/80200");
  EXPECT_EQ(Rows(*dst_, "log", "i"), Rows(*src_, "log", "i"));
  EXPECT_EQ(One(*dst_, "SELECT transactions FROM ferry_sync_jobs WHERE job = '" + job_ + "'"),
            "400");
}

TEST_F(SyncTest, DdlOnSourceStopsWithMessageAndResumesAfterTargetMatches) {
  Sql(*src_, "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a')");
  RunResult first = RunFerry(Sync({"--tables", "items", "--create-tables", "--until-lag-zero"}));
  ASSERT_EQ(first.exit_code, 0) << Show(first);
  Sql(*src_, "ALTER TABLE items ADD COLUMN extra int; INSERT INTO items VALUES (2, 'b', 7)");
  RunResult stopped = RunFerry(Sync({"--until-lag-zero"}));
  EXPECT_EQ(stopped.exit_code, 9) << Show(stopped);
  EXPECT_THAT(stopped.err, HasSubstr("changed on the source"));
  EXPECT_THAT(stopped.err, HasSubstr("\"extra\""));
  EXPECT_THAT(stopped.err, HasSubstr("run the same ferry sync command again"));
  EXPECT_EQ(One(*dst_, "SELECT count(*) FROM items"), "1");

  Sql(*dst_, "ALTER TABLE items ADD COLUMN extra int");
  RunResult resumed = RunFerry(Sync({"--until-lag-zero"}));
  ASSERT_EQ(resumed.exit_code, 0) << Show(resumed);
  EXPECT_EQ(Rows(*dst_, "items", "id"), Rows(*src_, "items", "id"));
}

TEST_F(SyncTest, RefusesTableWithoutPrimaryKeyAndCreatesNothing) {
  Sql(*src_, "CREATE TABLE nokey (a int, b text)");
  RunResult r = RunFerry(Sync({"--tables", "nokey", "--create-tables"}));
  EXPECT_EQ(r.exit_code, 9) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("no primary key"));
  EXPECT_THAT(r.err, HasSubstr("REPLICA IDENTITY FULL"));
  EXPECT_EQ(SlotCount(), 0);
  EXPECT_EQ(One(*src_, "SELECT count(*) FROM pg_publication"), "0");
  EXPECT_EQ(One(*dst_, "SELECT to_regclass('nokey') IS NULL"), "t");
}

TEST_F(SyncTest, RefusesSlotThatIsNotThisJobsAndKeepsIt) {
  Sql(*src_, "CREATE TABLE items (id int PRIMARY KEY)");
  One(*src_, "SELECT pg_create_logical_replication_slot('" + slot_ + "', 'pgoutput')");
  RunResult r = RunFerry(Sync({"--tables", "items", "--create-tables"}));
  EXPECT_EQ(r.exit_code, 9) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("already exists"));
  EXPECT_THAT(r.err, HasSubstr("--drop " + job_));
  EXPECT_EQ(SlotCount(), 1);
}

TEST_F(SyncTest, RefusesRoleWithoutReplication) {
  const std::string role = "ferry_norepl_" + std::to_string(getpid());
  auto admin = Connect(PgAdminUrl());
  ASSERT_TRUE(admin);
  (void)admin->Exec("DROP ROLE IF EXISTS " + role);
  Sql(*admin, "CREATE ROLE " + role + " LOGIN NOREPLICATION");
  Sql(*src_, "CREATE TABLE items (id int PRIMARY KEY); GRANT SELECT ON items TO " + role);
  std::string url = src_db_.url();
  url.replace(url.find("postgres@"), 9, role + "@");
  RunResult r = RunFerry({"sync", "--from", url, "--to", dst_db_.url(), "--job", job_, "--tables",
                          "items", "--create-tables"});
  EXPECT_EQ(r.exit_code, 6) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("ALTER ROLE \"" + role + "\" REPLICATION"));
  EXPECT_EQ(SlotCount(), 0);
  (void)admin->Exec("DROP OWNED BY " + role);
  Sql(*src_, "REVOKE ALL ON items FROM " + role);
  (void)admin->Exec("DROP ROLE IF EXISTS " + role);
}

TEST_F(SyncTest, RefusesTargetTableWithRowsUnlessResumingTheJob) {
  Sql(*src_, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1)");
  Sql(*dst_, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (99)");
  RunResult r = RunFerry(Sync({"--tables", "items"}));
  EXPECT_EQ(r.exit_code, 9) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("already has rows"));
  EXPECT_THAT(r.err, HasSubstr("TRUNCATE"));
  EXPECT_EQ(SlotCount(), 0);
  EXPECT_EQ(One(*dst_, "SELECT count(*) FROM items"), "1");

  RunResult resume = RunFerry(Sync({"--tables", "items", "--resume"}));
  EXPECT_EQ(resume.exit_code, 7) << Show(resume);
  EXPECT_THAT(resume.err, HasSubstr("no sync job"));
}

TEST_F(SyncTest, StatusJsonAndDropRemoveSlotPublicationAndJob) {
  Sql(*src_, "CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items VALUES (1, 'a')");
  RunResult first = RunFerry(Sync({"--tables", "items", "--create-tables", "--until-lag-zero"}));
  ASSERT_EQ(first.exit_code, 0) << Show(first);
  Sql(*src_, "INSERT INTO items VALUES (2, 'b'), (3, 'c')");
  RunResult second = RunFerry(Sync({"--until-lag-zero"}));
  ASSERT_EQ(second.exit_code, 0) << Show(second);
  WaitSlotIdle();  // the walsender outlives the process by a moment

  RunResult st = RunFerry({"sync", "--status", job_, "--from", src_db_.url(), "--to",
                           dst_db_.url(), "--json"});
  ASSERT_EQ(st.exit_code, 0) << Show(st);
  nlohmann::json j = nlohmann::json::parse(st.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << st.out;
  EXPECT_EQ(j["job"], job_);
  EXPECT_EQ(j["phase"], "stopped");
  EXPECT_EQ(j["slot"], slot_);
  EXPECT_EQ(j["slot_exists"], true);
  EXPECT_EQ(j["slot_active"], false);
  EXPECT_EQ(j["rows_applied"], 2);
  EXPECT_EQ(j["transactions"], 1);
  EXPECT_GE(j["lag_bytes"].get<int64_t>(), 0);
  EXPECT_GE(j["lag_seconds"].get<double>(), 0);
  EXPECT_GE(j["apply_rate"].get<double>(), 0);
  EXPECT_TRUE(j["applied_lsn"].is_string());
  EXPECT_EQ(j["tables"], nlohmann::json::array({"public.items"}));
  ASSERT_TRUE(j["warnings"].is_array());
  EXPECT_THAT(j["warnings"].dump(), HasSubstr("not in use"));
  EXPECT_THAT(st.out, ::testing::Not(HasSubstr("password")));

  RunResult drop =
      RunFerry({"sync", "--drop", job_, "--from", src_db_.url(), "--to", dst_db_.url()});
  ASSERT_EQ(drop.exit_code, 0) << Show(drop);
  EXPECT_EQ(SlotCount(), 0);
  EXPECT_EQ(One(*src_, "SELECT count(*) FROM pg_publication"), "0");
  EXPECT_EQ(One(*dst_, "SELECT count(*) FROM ferry_sync_jobs"), "0");
  EXPECT_EQ(One(*dst_, "SELECT count(*) FROM items"), "3");  // the data stays
}

// A throw-away server with wal_level=replica (initdb + pg_ctl from
// FERRY_TEST_PG_BIN on a free loopback port), stopped at the end.
TEST_F(SyncTest, RefusesSourceWithoutLogicalWalLevel) {
  const char* bin = std::getenv("FERRY_TEST_PG_BIN");
  ASSERT_NE(bin, nullptr) << "FERRY_TEST_PG_BIN is not set: source /tmp/srv/env";
  TempDir dir;
  const std::string data = dir.File("data");
  // PostgreSQL refuses to run as root: as root, run its tools as the
  // servers' own user (scripts/test-servers.sh), like the shared servers.
  auto server_tool = [&](const std::string& tool, std::vector<std::string> args) {
    if (getuid() != 0) return RunBinary(std::string(bin) + "/" + tool, args, {}, "/");
    args.insert(args.begin(), {"-u", "ferrytest", "--", std::string(bin) + "/" + tool});
    return RunBinary("/usr/sbin/runuser", args, {}, "/");
  };
  if (getuid() == 0) {
    RunResult own = RunBinary("/bin/chown", {"ferrytest", dir.path()});
    ASSERT_EQ(own.exit_code, 0) << Show(own);
  }
  RunResult init =
      server_tool("initdb", {"-D", data, "-U", "postgres", "--auth=trust", "--no-sync"});
  ASSERT_EQ(init.exit_code, 0) << Show(init);
  const int port = 20000 + static_cast<int>(getpid() % 9000);
  RunResult start = server_tool(
      "pg_ctl",
      {"-D", data, "-l", dir.File("log"), "-w", "-o",
       "-p " + std::to_string(port) + " -k " + dir.path() +
           " -c listen_addresses=127.0.0.1 -c wal_level=replica -c fsync=off",
       "start"});
  ASSERT_EQ(start.exit_code, 0) << Show(start) << ReadFile(dir.File("log"));
  const std::string url = "postgres://postgres@127.0.0.1:" + std::to_string(port) + "/postgres";
  auto plain = Connect(url);
  if (plain) (void)plain->Exec("CREATE TABLE items (id int PRIMARY KEY)");
  RunResult r = RunFerry({"sync", "--from", url, "--to", dst_db_.url(), "--job", job_,
                          "--tables", "items", "--create-tables"});
  plain.reset();
  server_tool("pg_ctl", {"-D", data, "-m", "immediate", "-w", "stop"});
  EXPECT_EQ(r.exit_code, 9) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("wal_level=replica"));
  EXPECT_THAT(r.err, HasSubstr("ALTER SYSTEM SET wal_level = logical"));
  EXPECT_EQ(One(*dst_, "SELECT to_regclass('items') IS NULL"), "t");
}

}  // namespace
}  // namespace ferry::testing
