// ferry partition status / maintain against a real PostgreSQL server: each
// test declares a table in ferry.toml, runs the built binary, and checks the
// catalog, the rows and the history.
#include <atomic>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "drivers/registry.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr const char* kNow = "2026-12-05";

// A fresh database, a connection to it and a ferry.toml.
class PartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = PgAdminUrl();
    if (url_.empty()) return;
    db_ = std::make_unique<FreshPgDatabase>();
    ASSERT_TRUE(db_->ok());
    auto c = OpenConnection(db_->url());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    conn_ = std::move(c).value();
  }

  void Sql(const std::string& sql) {
    auto r = conn_->Exec(sql);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::string One(const std::string& sql) {
    auto r = conn_->Query(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || r->empty()) return "";
    return r->Text(0, 0);
  }
  // Partitions of `table`, by name.
  std::vector<std::string> Partitions(const std::string& table) {
    auto r = conn_->Query(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = $1::regclass ORDER BY 1",
        {table});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> out;
    for (size_t i = 0; r.ok() && i < r->rows.size(); ++i) out.push_back(r->Text(i, 0));
    return out;
  }
  void Toml(const std::string& body) { dir_.Write("ferry.toml", body); }
  std::vector<std::string> Args(std::vector<std::string> rest) {
    std::vector<std::string> a = {"--database", db_->url(), "--config", dir_.File("ferry.toml")};
    a.insert(a.end(), rest.begin(), rest.end());
    return a;
  }
  RunResult Ferry(std::vector<std::string> rest) { return RunFerry(Args(std::move(rest))); }
  // History rows of kind partition: "action partition" scripts.
  std::vector<std::string> PartitionHistory() {
    RunResult r = Ferry({"history", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> out;
    json doc = json::parse(r.out);  // kept: a range-for over a temporary's member dangles
    for (const json& row : doc["history"]) {
      if (row["kind"] == "partition") {
        EXPECT_EQ(row["status"], "success") << row.dump();
        out.push_back(row["script"].get<std::string>());
      }
    }
    return out;
  }

  std::string url_;
  std::unique_ptr<FreshPgDatabase> db_;
  std::unique_ptr<Connection> conn_;
  TempDir dir_;
};

constexpr const char* kMessages =
    "CREATE TABLE messages (id bigint NOT NULL, created_at timestamptz NOT NULL, body text, "
    "PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);"
    "CREATE INDEX messages_body ON messages (body);"
    "CREATE TABLE messages_p2026_11 PARTITION OF messages "
    "FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00');";

TEST_F(PartitionTest, MaintainPremakesMonthsWithIndexesAndIsIdempotent) {
  if (url_.empty()) return;
  Sql(kMessages);
  Toml(
      "[[partitions]]\ntable = \"public.messages\"\ncolumn = \"created_at\"\n"
      "interval = \"month\"\npremake = 3\n");

  RunResult dry = Ferry({"partition", "maintain", "--dry-run", "--now", kNow});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_THAT(dry.out, HasSubstr("ATTACH PARTITION \"public\".\"messages_p2027_01\" FOR VALUES "
                                 "FROM ('2027-01-01 00:00:00+00'::timestamptz)"));
  EXPECT_EQ(Partitions("messages").size(), 1u) << "dry run changed nothing";

  RunResult r = Ferry({"partition", "maintain", "--now", kNow});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(Partitions("messages"),
            (std::vector<std::string>{"messages_p2026_11", "messages_p2026_12", "messages_p2027_01",
                                      "messages_p2027_02", "messages_p2027_03"}));
  // The parent's indexes (primary key, body) are on the new partition, and
  // the temporary CHECK is gone.
  EXPECT_EQ(One("SELECT count(*) FROM pg_indexes WHERE tablename = 'messages_p2027_03'"), "2");
  EXPECT_EQ(One("SELECT count(*) FROM pg_constraint WHERE conname LIKE '%ferry_bound'"), "0");
  Sql("INSERT INTO messages VALUES (1, '2027-03-31 23:59:59+00', 'x')");
  EXPECT_EQ(One("SELECT count(*) FROM messages_p2027_03"), "1");

  std::vector<std::string> history = PartitionHistory();
  ASSERT_EQ(history.size(), 8u);
  EXPECT_EQ(history[0], "partition premake public.messages_p2026_12");
  EXPECT_EQ(history[1], "partition attach public.messages_p2026_12");

  RunResult again = Ferry({"partition", "maintain", "--now", kNow, "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(json::parse(again.out)["actions"].empty()) << again.out;
  EXPECT_EQ(PartitionHistory().size(), 8u);

  RunResult status = Ferry({"partition", "status", "--now", kNow, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  json t = json::parse(status.out)["tables"][0];
  EXPECT_EQ(t["table"], "public.messages");
  EXPECT_EQ(t["partitions"].size(), 5u);
  EXPECT_EQ(t["partitions"][4]["from"], "2027-03-01 00:00:00+00");
  EXPECT_EQ(t["partitions"][4]["to"], "2027-04-01 00:00:00+00");
  EXPECT_TRUE(t["missing"].empty());
  EXPECT_TRUE(t["gaps"].empty());
  // A month later one more is missing; text status says so.
  RunResult later = Ferry({"partition", "status", "--now", "2027-01-10"});
  ASSERT_EQ(later.exit_code, 0) << later.err;
  EXPECT_THAT(later.out, HasSubstr("missing: public.messages_p2027_04"));
}

TEST_F(PartitionTest, AChildLeftByAnInterruptedPremakeIsAttached) {
  if (url_.empty()) return;
  Sql(kMessages);
  // What a maintain killed between CREATE TABLE and ATTACH leaves behind.
  Sql("CREATE TABLE messages_p2026_12 (LIKE messages INCLUDING ALL);"
      "INSERT INTO messages_p2026_12 VALUES (7, '2026-12-24 18:00:00+00', 'eve')");
  Toml(
      "[[partitions]]\ntable = \"messages\"\ncolumn = \"created_at\"\ninterval = \"month\"\n"
      "premake = 0\n");
  RunResult r = Ferry({"partition", "maintain", "--now", kNow});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(Partitions("messages"),
            (std::vector<std::string>{"messages_p2026_11", "messages_p2026_12"}));
  EXPECT_EQ(One("SELECT body FROM messages WHERE id = 7"), "eve");
}

TEST_F(PartitionTest, RowsInTheDefaultPartitionMoveIntoTheNewPartition) {
  if (url_.empty()) return;
  Sql(kMessages);
  Sql("CREATE TABLE messages_default PARTITION OF messages DEFAULT;"
      "INSERT INTO messages SELECT g, '2027-01-01 00:00:00+00'::timestamptz + g * interval '1 "
      "hour', 'jan' FROM generate_series(0, 99) g;"
      "INSERT INTO messages VALUES (1000, '2027-06-15 00:00:00+00', 'june');"
      "INSERT INTO messages VALUES (1001, '2026-11-15 00:00:00+00', 'nov');");
  Toml(
      "[[partitions]]\ntable = \"messages\"\ncolumn = \"created_at\"\ninterval = \"month\"\n"
      "premake = 2\ndefault_partition = true\n");

  RunResult before = Ferry({"partition", "status", "--now", kNow, "--json"});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(json::parse(before.out)["tables"][0]["default_rows"], 101);

  RunResult r = Ferry({"partition", "maintain", "--now", kNow, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  json actions = json::parse(r.out)["actions"];
  bool moved = false;
  for (const json& a : actions) {
    if (a["action"] == "attach" && a["partition"] == "public.messages_p2027_01") {
      EXPECT_EQ(a["rows"], 100);
      moved = true;
    }
  }
  EXPECT_TRUE(moved) << actions.dump(2);
  EXPECT_EQ(One("SELECT count(*) FROM messages"), "102");
  EXPECT_EQ(One("SELECT count(*) FROM messages_p2027_01"), "100");
  EXPECT_EQ(One("SELECT string_agg(body, ',') FROM messages_default"), "june");
  EXPECT_EQ(One("SELECT count(*) FROM messages_p2026_11"), "1");
}

TEST_F(PartitionTest, PruneArchivesToASchemaAndKeepsTheRows) {
  if (url_.empty()) return;
  Sql("CREATE TABLE events (at date NOT NULL, v int) PARTITION BY RANGE (at);"
      "CREATE TABLE events_p2024_01 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO "
      "('2024-02-01');"
      "CREATE TABLE events_p2024_02 PARTITION OF events FOR VALUES FROM ('2024-02-01') TO "
      "('2024-03-01');"
      "CREATE TABLE events_p2026_12 PARTITION OF events FOR VALUES FROM ('2026-12-01') TO "
      "('2027-01-01');"
      "INSERT INTO events SELECT '2024-01-01'::date + g, g FROM generate_series(0, 49) g;"
      "INSERT INTO events SELECT '2026-12-01'::date + g % 28, g FROM generate_series(0, 9) g;");
  Toml(
      "[[partitions]]\ntable = \"events\"\ncolumn = \"at\"\ninterval = \"month\"\npremake = 0\n"
      "retention = \"12 months\"\narchive = \"schema:archive\"\n");

  // Without the archive schema nothing is detached.
  RunResult missing = Ferry({"partition", "maintain", "--now", kNow});
  EXPECT_EQ(missing.exit_code, 9) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("CREATE SCHEMA \"archive\""));
  EXPECT_EQ(Partitions("events").size(), 3u);

  Sql("CREATE SCHEMA archive");
  RunResult status = Ferry({"partition", "status", "--now", kNow, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(json::parse(status.out)["tables"][0]["past_retention"],
            json({"public.events_p2024_01", "public.events_p2024_02"}));

  RunResult r = Ferry({"partition", "maintain", "--now", kNow});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(Partitions("events"), (std::vector<std::string>{"events_p2026_12"}));
  EXPECT_EQ(One("SELECT count(*) FROM events"), "10");
  EXPECT_EQ(One("SELECT count(*) FROM archive.events_p2024_01") + "+" +
                One("SELECT count(*) FROM archive.events_p2024_02"),
            "31+19");
  std::vector<std::string> history = PartitionHistory();
  EXPECT_EQ(history, (std::vector<std::string>{"partition detach public.events_p2024_01",
                                               "partition archive public.events_p2024_01",
                                               "partition detach public.events_p2024_02",
                                               "partition archive public.events_p2024_02"}));
}

TEST_F(PartitionTest, RetentionThatWouldDropEverythingIsRefusedWithoutForce) {
  if (url_.empty()) return;
  Sql("CREATE TABLE old (at timestamp NOT NULL) PARTITION BY RANGE (at);"
      "CREATE TABLE old_p2020 PARTITION OF old FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');"
      "INSERT INTO old VALUES ('2020-05-05');");
  Toml(
      "[[partitions]]\ntable = \"old\"\ncolumn = \"at\"\ninterval = \"year\"\npremake = 1\n"
      "retention = \"2 years\"\narchive = \"none\"\n");
  RunResult refused = Ferry({"partition", "maintain", "--now", kNow});
  EXPECT_EQ(refused.exit_code, 9) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("--force"));
  EXPECT_EQ(Partitions("old"), (std::vector<std::string>{"old_p2020"}));
  EXPECT_TRUE(PartitionHistory().empty());

  RunResult forced = Ferry({"partition", "maintain", "--now", kNow, "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(Partitions("old"), (std::vector<std::string>{"old_p2026", "old_p2027"}));
  EXPECT_EQ(One("SELECT to_regclass('old_p2020') IS NULL"), "t");
}

TEST_F(PartitionTest, TwoMaintainersAtOnceEndWithOneCorrectSet) {
  if (url_.empty()) return;
  Sql("CREATE TABLE weekly (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at)");
  Toml(
      "[[partitions]]\ntable = \"weekly\"\ncolumn = \"at\"\ninterval = \"week\"\n"
      "premake = 6\n");
  std::vector<std::string> args = Args({"partition", "maintain", "--now", kNow});
  int a = StartFerry(args, dir_.File("a.out"));
  int b = StartFerry(args, dir_.File("b.out"));
  EXPECT_EQ(WaitFerry(a), 0) << ReadFile(dir_.File("a.out.err"));
  EXPECT_EQ(WaitFerry(b), 0) << ReadFile(dir_.File("b.out.err"));
  std::vector<std::string> parts = Partitions("weekly");
  ASSERT_EQ(parts.size(), 7u);
  EXPECT_EQ(parts[0], "weekly_p2026_11_30");
  EXPECT_EQ(parts[6], "weekly_p2027_01_11");
  // Each partition was made and attached once: the second maintainer waited
  // for the lock and found nothing to do.
  EXPECT_EQ(PartitionHistory().size(), 14u);
  std::string outputs = ReadFile(dir_.File("a.out")) + ReadFile(dir_.File("b.out"));
  EXPECT_THAT(outputs, HasSubstr("nothing to do"));
}

TEST_F(PartitionTest, AConcurrentWriterLosesNoRow) {
  if (url_.empty()) return;
  Sql(kMessages);
  Sql("CREATE TABLE messages_default PARTITION OF messages DEFAULT");
  Toml(
      "[[partitions]]\ntable = \"messages\"\ncolumn = \"created_at\"\ninterval = \"day\"\n"
      "premake = 20\n");
  std::atomic<bool> stop{false};
  std::atomic<int64_t> committed{0};
  std::string writer_error;
  std::thread writer([&] {
    auto c = OpenConnection(db_->url());
    if (!c.ok()) {
      writer_error = c.status().ToString();
      return;
    }
    int64_t id = 0;
    int failures_in_a_row = 0;
    // Keeps writing until maintain is done and a last 200 rows went in.
    for (int after_stop = 0; after_stop < 200 && failures_in_a_row < 1000;) {
      std::string day = std::to_string(id % 21);
      auto r = (*c)->Query(
          "INSERT INTO messages VALUES ($1::bigint, '2026-12-05 12:00:00+00'::timestamptz + "
          "$2::int * interval '1 day', 'w')",
          {std::to_string(id), day});
      if (r.ok()) {
        committed.fetch_add(1);
        ++id;
        failures_in_a_row = 0;
        if (stop.load()) ++after_stop;
      } else {
        // A row routed to DEFAULT while its range was being attached is
        // refused by PostgreSQL; the writer retries it.
        ++failures_in_a_row;
        writer_error = r.status().ToString();
      }
    }
  });
  RunResult r = Ferry({"partition", "maintain", "--now", kNow});
  stop.store(true);
  writer.join();
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  ASSERT_GT(committed.load(), 200) << writer_error;
  EXPECT_EQ(One("SELECT count(*) FROM messages"), std::to_string(committed.load()));
  EXPECT_EQ(One("SELECT count(*) FROM messages_default"), "0");
  EXPECT_EQ(Partitions("messages").size(), 23u);  // Nov, 21 days, default
}

TEST_F(PartitionTest, ALockHeldTooLongStopsWithAClearErrorAfterTheRetries) {
  if (url_.empty()) return;
  Sql(kMessages);
  Toml(
      "[[partitions]]\ntable = \"messages\"\ncolumn = \"created_at\"\ninterval = \"month\"\n"
      "premake = 1\n");
  Sql("BEGIN; LOCK TABLE ONLY messages IN ACCESS EXCLUSIVE MODE");
  std::vector<std::string> env = {"FERRY_LOCK_TIMEOUT=50ms", "FERRY_LOCK_RETRIES=2",
                                  "FERRY_LOCK_RETRY_DELAY=10ms"};
  RunResult blocked = RunFerry(Args({"partition", "maintain", "--now", kNow}), env);
  Sql("ROLLBACK");
  EXPECT_EQ(blocked.exit_code, 4) << blocked.err;
  EXPECT_THAT(blocked.err, HasSubstr("premake public.messages_p2026_12: no lock after 3 tries"));
  RunResult history = Ferry({"history", "--json"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  json rows = json::parse(history.out)["history"];
  ASSERT_EQ(rows.size(), 1u) << rows.dump(2);
  EXPECT_EQ(rows[0]["status"], "failed");
  EXPECT_EQ(rows[0]["attempts"], 3);

  // Once the lock is gone the same command finishes the work.
  RunResult r = RunFerry(Args({"partition", "maintain", "--now", kNow}), env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Partitions("messages").size(), 3u);
}

TEST_F(PartitionTest, BadDeclarationsNameTheLineAndTheFix) {
  if (url_.empty()) return;
  Sql(kMessages);
  Sql("CREATE TABLE ids (id bigint NOT NULL) PARTITION BY RANGE (id);"
      "CREATE TABLE plain (id bigint)");
  auto run = [&](const std::string& toml) {
    Toml(toml);
    return Ferry({"partition", "maintain", "--now", kNow});
  };
  RunResult column =
      run("# partitions\n[[partitions]]\ntable = \"messages\"\ncolumn = \"sent_at\"\n"
          "interval = \"month\"\n");
  EXPECT_EQ(column.exit_code, 8);
  EXPECT_THAT(column.err, HasSubstr("ferry.toml:2: column 'sent_at' does not exist"));
  EXPECT_THAT(column.err, HasSubstr("set column = \"created_at\""));

  RunResult type = run("[[partitions]]\ntable = \"ids\"\ncolumn = \"id\"\ninterval = \"month\"\n");
  EXPECT_EQ(type.exit_code, 8);
  EXPECT_THAT(type.err, HasSubstr("column id is bigint"));
  EXPECT_THAT(type.err, HasSubstr("write an integer step"));

  RunResult plain = run("[[partitions]]\ntable = \"plain\"\ncolumn = \"id\"\ninterval = 1000\n");
  EXPECT_EQ(plain.exit_code, 8);
  EXPECT_THAT(plain.err, HasSubstr("is not partitioned"));

  RunResult nothing = run("[[partitions]]\ntable = \"nope\"\ncolumn = \"id\"\ninterval = 1000\n");
  EXPECT_EQ(nothing.exit_code, 7);
  EXPECT_THAT(nothing.err, HasSubstr("table nope does not exist"));

  RunResult interval =
      run("[[partitions]]\ntable = \"ids\"\ncolumn = \"id\"\ninterval = \"hour\"\n");
  EXPECT_EQ(interval.exit_code, 8);
  EXPECT_THAT(interval.err, HasSubstr("ferry.toml:4: interval 'hour' is unknown"));
  EXPECT_EQ(Partitions("messages").size(), 1u);

  // An integer declaration that is right works: partitions around the largest id.
  Sql("CREATE TABLE ids_p0 PARTITION OF ids FOR VALUES FROM (0) TO (1000);"
      "INSERT INTO ids VALUES (999)");
  RunResult ok =
      run("[[partitions]]\ntable = \"ids\"\ncolumn = \"id\"\ninterval = 1000\npremake = 2\n");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(Partitions("ids"), (std::vector<std::string>{"ids_p0", "ids_p1000", "ids_p2000"}));
}

}  // namespace
}  // namespace ferry::testing
