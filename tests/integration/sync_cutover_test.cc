// ferry cutover end to end on the real PostgreSQL server: a fresh source
// and target database per test, a sync job filled by the built binary, then
// the cut-over run as a child process and both sides inspected afterwards.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/url.h"
#include "drivers/registry.h"
#include "integration/sync_test_util.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CutoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(src_db_.ok() && dst_db_.ok()) << "set FERRY_TEST_PG_URL (source /tmp/srv/env)";
    static std::atomic<int> counter{0};
    job_ = "c" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    slot_ = "ferry_sync_" + job_;
    src_ = Connect(src_db_.url());
    dst_ = Connect(dst_db_.url());
    ASSERT_TRUE(src_ && dst_);
    // A serial key, so the cut-over has a sequence to move.
    Sql(*src_,
        "CREATE TABLE items (id serial PRIMARY KEY, name text);"
        "INSERT INTO items (name) SELECT 'item ' || i FROM generate_series(1, 200) i");
    RunResult first = RunFerry({"sync", "--from", src_db_.url(), "--to", dst_db_.url(), "--job",
                                job_, "--tables", "items", "--create-tables",
                                "--until-lag-zero"});
    ASSERT_EQ(first.exit_code, 0) << Show(first);
  }

  void TearDown() override { DropSlotsIn({src_db_.name(), dst_db_.name()}); }

  std::vector<std::string> Cutover(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"cutover", job_, "--from", src_db_.url(), "--to",
                                     dst_db_.url()};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  int Guards() {
    return std::stoi(One(*src_, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE "
                                "'ferry\\_cutover\\_guard%'"));
  }

  // The source takes a write (and the row is removed again).
  bool SourceWritable() {
    auto r = src_->Exec("INSERT INTO items (id, name) VALUES (-1, 'probe'); DELETE FROM items "
                        "WHERE id = -1");
    return r.ok();
  }

  FreshPgDatabase src_db_, dst_db_;
  std::unique_ptr<Connection> src_, dst_;
  std::string job_, slot_;
};

TEST_F(CutoverTest, MovesWritesGuardsSourceAndUndoes) {
  // Written after the last sync: the cut-over drains them.
  Sql(*src_, "INSERT INTO items (name) SELECT 'late ' || i FROM generate_series(1, 30) i;"
             "UPDATE items SET name = 'changed' WHERE id = 7; DELETE FROM items WHERE id = 8");
  TempDir dir;
  const std::string hook =
      "echo \"$FERRY_CUTOVER_JOB|$FERRY_CUTOVER_FROM|$FERRY_CUTOVER_TO\" > " + dir.File("env");
  RunResult r = RunFerry(Cutover({"--switch-hook", hook, "--json"}));
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["job"], job_);
  EXPECT_GE(j["pause_ms"].get<int64_t>(), 0);
  EXPECT_EQ(j["guard_installed"], true);
  EXPECT_EQ(j["hook"]["exit_code"], 0);
  ASSERT_EQ(j["tables"].size(), 1u);
  EXPECT_EQ(j["tables"][0]["source_rows"], 229);
  EXPECT_EQ(j["tables"][0]["target_rows"], 229);
  ASSERT_EQ(j["sequences"].size(), 1u);
  EXPECT_EQ(j["sequences"][0]["name"], "public.items_id_seq");
  EXPECT_GT(j["sequences"][0]["target"].get<int64_t>(), 230);

  // Every row, changes included, is on the target.
  const std::string rows =
      "SELECT count(*) || ':' || md5(string_agg(x::text, '|' ORDER BY id)) FROM items x";
  EXPECT_EQ(One(*dst_, rows), One(*src_, rows));
  // The target's sequence is past the source's: a new row does not collide.
  EXPECT_GT(std::stoll(One(*dst_, "INSERT INTO items (name) VALUES ('on new') RETURNING id")),
            std::stoll(One(*src_, "SELECT max(id) FROM items")));

  // The hook saw the job and both URLs, without the password.
  std::string env = ReadFile(dir.File("env"));
  EXPECT_THAT(env, HasSubstr(job_ + "|"));
  EXPECT_THAT(env, HasSubstr(dst_db_.name()));
  auto url = Url::Parse(src_db_.url());
  ASSERT_TRUE(url.ok());
  if (!url->password().empty()) {
    EXPECT_THAT(env, Not(HasSubstr(":" + url->password().Reveal() + "@")));
  }

  // The source refuses writes to the moved table, saying why and how to undo.
  auto refused = src_->Exec("INSERT INTO items (name) VALUES ('too late')");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("moved by ferry cutover " + job_));
  EXPECT_THAT(refused.status().message(), HasSubstr("--undo-guard"));
  EXPECT_FALSE(src_->Exec("TRUNCATE items").ok());

  RunResult status = RunFerry({"sync", "--status", job_, "--to", dst_db_.url(), "--json"});
  ASSERT_EQ(status.exit_code, 0) << Show(status);
  nlohmann::json s = nlohmann::json::parse(status.out);
  EXPECT_EQ(s["phase"], "cut_over");
  EXPECT_EQ(s["cutover"]["pause_ms"], j["pause_ms"]);

  // A second cut-over of the same job is refused.
  RunResult again = RunFerry(Cutover({}));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.err, HasSubstr("cut over already"));
  // So is resuming the sync of a job whose target is the primary now.
  RunResult resume = RunFerry({"sync", "--from", src_db_.url(), "--to", dst_db_.url(), "--job",
                               job_, "--until-lag-zero"});
  EXPECT_NE(resume.exit_code, 0);
  EXPECT_THAT(resume.err, HasSubstr("was cut over"));

  RunResult undo = RunFerry({"cutover", job_, "--undo-guard", "--from", src_db_.url(), "--json"});
  ASSERT_EQ(undo.exit_code, 0) << Show(undo);
  EXPECT_EQ(Guards(), 0);
  EXPECT_TRUE(SourceWritable());
  EXPECT_EQ(One(*src_, "SELECT count(*) FROM pg_proc WHERE proname = 'ferry_cutover_guard'"), "0");
}

TEST_F(CutoverTest, FailingHookRollsBackAndSourceStaysWritable) {
  Sql(*src_, "INSERT INTO items (name) VALUES ('late')");
  RunResult r = RunFerry(Cutover({"--switch-hook", "echo flag service down >&2; exit 3"}));
  EXPECT_NE(r.exit_code, 0) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("exit code 3"));
  EXPECT_THAT(r.err, HasSubstr("flag service down"));
  EXPECT_THAT(r.err, HasSubstr("writes resumed on the source"));
  EXPECT_EQ(Guards(), 0);
  EXPECT_TRUE(SourceWritable());
  EXPECT_NE(One(*dst_, "SELECT phase FROM ferry_sync_jobs WHERE job = '" + job_ + "'"),
            "cut_over");
}

TEST_F(CutoverTest, WriterBlockedDuringCutoverIsRefusedByTheGuard) {
  TempDir dir;
  // The hook runs while the tables are locked: it says so, then waits for
  // the test to let it go (after a writer is queued behind the lock).
  const std::string hook = "touch " + dir.File("locked") + "; while [ ! -e " + dir.File("go") +
                           " ]; do sleep 0.05; done";
  int pid = StartFerry(Cutover({"--switch-hook", hook, "--json"}), dir.File("run.out"));
  while (!std::filesystem::exists(dir.File("locked"))) {
    if (waitpid(pid, nullptr, WNOHANG) != 0) FAIL() << ReadFile(dir.File("run.out.err"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string writer_error = "<none>";
  std::thread writer([&] {
    auto c = OpenConnection(src_db_.url());
    if (!c.ok()) return;
    auto r = (*c)->Exec("INSERT INTO items (name) VALUES ('during the pause')");
    writer_error = r.ok() ? "" : r.status().message();
  });
  // Wait until the writer waits for the lock, then let the hook finish.
  while (One(*src_, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO items%'") == "0") {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  dir.Write("go", "");
  int code = WaitFerry(pid);
  writer.join();
  ASSERT_EQ(code, 0) << ReadFile(dir.File("run.out.err"));
  EXPECT_THAT(writer_error, HasSubstr("moved by ferry cutover " + job_));
  EXPECT_EQ(One(*src_, "SELECT count(*) FROM items WHERE name = 'during the pause'"), "0");
  EXPECT_EQ(One(*dst_, "SELECT count(*) FROM items"), One(*src_, "SELECT count(*) FROM items"));
}

TEST_F(CutoverTest, LagAboveBoundFailsBeforeAnyLock) {
  // A 1-byte bound cannot be met here: every catch-up pass ends by writing
  // the job row on the target, in the same server, so new WAL always
  // follows the applied position when the lag is measured.
  Sql(*src_, "INSERT INTO items (name) SELECT 'backlog ' || i FROM generate_series(1, 20000) i");
  RunResult r = RunFerry(Cutover({"--max-lag", "1", "--catch-up-timeout", "1s"}));
  EXPECT_NE(r.exit_code, 0) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("above --max-lag 1 bytes"));
  EXPECT_THAT(r.err, HasSubstr("writes were not stopped"));
  EXPECT_THAT(r.err, HasSubstr("--until-lag-zero"));
  EXPECT_EQ(Guards(), 0);
  EXPECT_TRUE(SourceWritable());
}

TEST_F(CutoverTest, LongWriterTransactionMakesTheLockTimeOutAndNothingChanges) {
  // An open transaction that wrote to the table holds ROW EXCLUSIVE.
  auto writer = Connect(src_db_.url());
  ASSERT_TRUE(writer);
  Sql(*writer, "BEGIN; INSERT INTO items (name) VALUES ('long transaction')");
  RunResult r = RunFerry(Cutover({"--lock-timeout", "200ms"}));
  EXPECT_NE(r.exit_code, 0) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("could not lock the synced tables"));
  EXPECT_THAT(r.err, HasSubstr("nothing changed"));
  Sql(*writer, "COMMIT");
  EXPECT_EQ(Guards(), 0);
  EXPECT_TRUE(SourceWritable());
  EXPECT_EQ(One(*src_, "SELECT count(*) FROM items WHERE name = 'long transaction'"), "1");
}

TEST_F(CutoverTest, RefusedWhileTheSyncIsRunning) {
  TempDir dir;
  int pid = StartFerry({"sync", "--from", src_db_.url(), "--to", dst_db_.url(), "--job", job_},
                       dir.File("sync.out"));
  while (One(*src_, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot_ +
                        "' AND active") == "0") {
    if (waitpid(pid, nullptr, WNOHANG) != 0) FAIL() << ReadFile(dir.File("sync.out.err"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  RunResult r = RunFerry(Cutover({}));
  kill(pid, SIGINT);
  WaitFerry(pid);
  EXPECT_NE(r.exit_code, 0) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("stop the running `ferry sync` for " + job_ + " first"));
  EXPECT_EQ(Guards(), 0);
  EXPECT_TRUE(SourceWritable());
}

TEST_F(CutoverTest, DifferingTargetRollsBack) {
  // A row changed on the target behind the sync's back: counts still agree,
  // only --verify sees it; a deleted one makes the counts differ.
  Sql(*dst_, "UPDATE items SET name = 'tampered' WHERE id = 5");
  RunResult verify = RunFerry(Cutover({"--verify"}));
  EXPECT_NE(verify.exit_code, 0) << Show(verify);
  EXPECT_THAT(verify.err, HasSubstr("--verify found differences"));
  EXPECT_THAT(verify.err, HasSubstr("1 changed"));
  EXPECT_EQ(Guards(), 0);
  EXPECT_TRUE(SourceWritable());

  Sql(*dst_, "DELETE FROM items WHERE id = 6");
  RunResult counts = RunFerry(Cutover({}));
  EXPECT_NE(counts.exit_code, 0) << Show(counts);
  EXPECT_THAT(counts.err, HasSubstr("row counts differ"));
  EXPECT_THAT(counts.err, HasSubstr("200 rows on the source, 199 on the target"));
  EXPECT_EQ(Guards(), 0);
  EXPECT_TRUE(SourceWritable());

  // Repaired, the same job cuts over, verified row by row.
  Sql(*dst_, "UPDATE items SET name = 'item 5' WHERE id = 5; INSERT INTO items VALUES (6, 'item 6')");
  RunResult ok = RunFerry(Cutover({"--verify", "--json"}));
  ASSERT_EQ(ok.exit_code, 0) << Show(ok);
  nlohmann::json j = nlohmann::json::parse(ok.out);
  EXPECT_EQ(j["verified"], true);
  EXPECT_EQ(j["tables"][0]["target_rows"], 200);
  EXPECT_EQ(Guards(), 1);
}

TEST_F(CutoverTest, ReverseSyncCarriesNewPrimaryWritesBack) {
  Sql(*src_, "INSERT INTO items (name) VALUES ('late')");
  RunResult r = RunFerry(Cutover({"--reverse", "--json"}));
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  nlohmann::json j = nlohmann::json::parse(r.out);
  const std::string reverse = job_ + "_reverse";
  EXPECT_EQ(j["reverse"]["job"], reverse);

  // The application now writes to the new primary.
  Sql(*dst_, "INSERT INTO items (name) VALUES ('on new 1'), ('on new 2');"
             "UPDATE items SET name = 'renamed on new' WHERE id = 3; DELETE FROM items WHERE id = 4");
  RunResult back = RunFerry({"sync", "--from", dst_db_.url(), "--to", src_db_.url(), "--job",
                             reverse, "--until-lag-zero"});
  ASSERT_EQ(back.exit_code, 0) << Show(back);
  const std::string rows =
      "SELECT count(*) || ':' || md5(string_agg(x::text, '|' ORDER BY id)) FROM items x";
  EXPECT_EQ(One(*src_, rows), One(*dst_, rows));
  EXPECT_EQ(One(*src_, "SELECT name FROM items WHERE id = 3"), "renamed on new");
  // The guard still refuses everyone else on the old primary.
  auto refused = src_->Exec("INSERT INTO items (name) VALUES ('direct')");
  EXPECT_FALSE(refused.ok());
}

TEST_F(CutoverTest, FailedCutoverRemovesTheReverseSlot) {
  RunResult r = RunFerry(Cutover({"--reverse", "--switch-hook", "exit 4"}));
  EXPECT_NE(r.exit_code, 0) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("exit code 4"));
  EXPECT_EQ(One(*dst_, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot_ +
                           "_reverse'"),
            "0");
  EXPECT_EQ(One(*dst_, "SELECT count(*) FROM pg_publication"), "0");
  // The reverse job's row went with the rolled-back lock transaction.
  EXPECT_EQ(One(*src_, "SELECT to_regclass('ferry_sync_jobs') IS NULL"), "t");
  EXPECT_EQ(Guards(), 0);
}

TEST_F(CutoverTest, BadFlagsNameTheFix) {
  RunResult r = RunFerry(Cutover({"--max-lag", "lots"}));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--max-lag \"lots\": write a size such as 16MB"));
  RunResult missing = RunFerry({"cutover", "nosuchjob", "--from", src_db_.url(), "--to",
                                dst_db_.url()});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("no sync job 'nosuchjob'"));
  EXPECT_EQ(Guards(), 0);
}

}  // namespace
}  // namespace ferry::testing
