// Expand/contract, verify steps and declared backfills end to end: the built
// `ferry` binary against a fresh PostgreSQL database, with writer threads
// (each on its own connection) running while ferry expands, backfills,
// completes or aborts. Every row is checked against the mapping afterwards.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "drivers/registry.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;

std::string Describe(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout:\n" + r.out + "--- stderr:\n" + r.err;
}

int64_t Rows() {
  const char* env = std::getenv("FERRY_TEST_EXPAND_ROWS");
  return env != nullptr ? std::atoll(env) : 20000;
}

// A writer thread on its own connection: runs `step` until stopped,
// counting statements and failures (lock timeouts included).
class Writer {
 public:
  Writer(const std::string& url, std::function<Status(Connection&, std::mt19937&)> step)
      : step_(std::move(step)) {
    auto c = OpenConnection(url);
    if (!c.ok()) {
      ADD_FAILURE() << c.status().ToString();
      return;
    }
    conn_ = std::move(c).value();
    // A writer never waits on a lock longer than this: a wait that long
    // fails the statement and the test.
    (void)conn_->Exec("SET lock_timeout = '5s'");
    thread_ = std::thread([this] {
      std::mt19937 random(static_cast<unsigned>(std::hash<std::thread::id>()(std::this_thread::get_id())));
      while (!stop_) {
        Status s = step_(*conn_, random);
        ++statements_;
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          errors_.push_back(s.ToString());
        }
      }
    });
  }
  ~Writer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int64_t statements() const { return statements_; }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

 private:
  std::function<Status(Connection&, std::mt19937&)> step_;
  std::unique_ptr<Connection> conn_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> statements_{0};
  std::mutex mu_;
  std::vector<std::string> errors_;
};

class ExpandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<FreshPgDatabase>();
    if (IsSkipped()) return;
    ASSERT_TRUE(db_->ok()) << "could not create a fresh PostgreSQL database";
    url_ = db_->url();
    auto c = OpenConnection(url_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    conn_ = std::move(c).value();
  }
  RunResult Ferry(std::vector<std::string> args) {
    args.insert(args.end(), {"--database", url_, "--dir", dir_.File("migrations")});
    return RunFerry(args, {"FERRY_CACHE_DIR=off"});
  }
  void Migration(const std::string& name, const std::string& text) {
    std::filesystem::create_directories(dir_.File("migrations"));
    dir_.Write("migrations/" + name, text);
  }
  std::string One(const std::string& sql) {
    auto r = conn_->Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() && !r->rows.empty() ? r->Text(0, 0) : "<error>";
  }
  bool HasColumn(const std::string& table, const std::string& column) {
    return One("SELECT count(*) FROM information_schema.columns WHERE table_name = '" + table +
               "' AND column_name = '" + column + "'") == "1";
  }

  TempDir dir_;
  std::unique_ptr<FreshPgDatabase> db_;
  std::string url_;
  std::unique_ptr<Connection> conn_;
};

// Old writers write `amount`, new writers write `amount_cents`, while ferry
// expands and backfills; then only new writers run while ferry completes.
TEST_F(ExpandTest, RenameAndRetypeWithConcurrentWritersThenComplete) {
  FERRY_REQUIRE_PG(admin);
  const int64_t n = Rows();
  ASSERT_OK(conn_->Exec("CREATE TABLE accounts (id bigint PRIMARY KEY, amount integer, note text)")
                .status());
  ASSERT_OK(conn_->Exec("INSERT INTO accounts SELECT g, g % 1000, 'x' FROM generate_series(1, " +
                        std::to_string(n) + ") g")
                .status());
  Migration("0001_amount_in_cents.sql",
            "-- ferry:up\n"
            "-- ferry:expand accounts\n"
            "--   rename amount to amount_cents type bigint\n"
            "--   up   amount_cents = amount * 100\n"
            "--   down amount = amount_cents / 100\n"
            "--   not null amount_cents\n"
            "--   batch_rows 2000\n");

  // Expected values per row, written by the writers (disjoint id sets).
  std::mutex mu;
  std::map<int64_t, int64_t> expected_cents;  // id -> cents
  auto old_writer = [&](Connection& c, std::mt19937& r) -> Status {
    int64_t id = 1 + 2 * static_cast<int64_t>(r() % static_cast<uint64_t>(n / 2));  // odd ids
    int64_t v = r() % 100000;
    auto q = c.Query("UPDATE accounts SET amount = $1 WHERE id = $2", {std::to_string(v), std::to_string(id)});
    if (q.ok()) {
      std::lock_guard<std::mutex> l(mu);
      expected_cents[id] = v * 100;
    }
    return q.status();
  };
  std::atomic<int64_t> next_id{n + 1};
  auto new_writer = [&](Connection& c, std::mt19937& r) -> Status {
    int64_t cents = static_cast<int64_t>(r() % 100000) * 100;
    if (r() % 4 == 0) {  // a new row, written only through the new column
      int64_t id = next_id++;
      auto q = c.Query("INSERT INTO accounts (id, amount_cents, note) VALUES ($1, $2, 'new')",
                       {std::to_string(id), std::to_string(cents)});
      if (q.ok()) {
        std::lock_guard<std::mutex> l(mu);
        expected_cents[id] = cents;
      }
      return q.status();
    }
    int64_t id = 2 + 2 * static_cast<int64_t>(r() % static_cast<uint64_t>(n / 2 - 1));  // even ids
    auto q = c.Query("UPDATE accounts SET amount_cents = $1 WHERE id = $2",
                     {std::to_string(cents), std::to_string(id)});
    if (q.ok()) {
      std::lock_guard<std::mutex> l(mu);
      expected_cents[id] = cents;
    }
    return q.status();
  };

  auto old1 = std::make_unique<Writer>(url_, old_writer);
  RunResult up = Ferry({"up"});
  ASSERT_EQ(up.exit_code, 0) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("expanded"));
  // The new application version starts during the window.
  auto new1 = std::make_unique<Writer>(url_, new_writer);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));

  RunResult status = Ferry({"status"});
  EXPECT_THAT(status.out, HasSubstr("expanded, awaiting 'ferry complete'")) << Describe(status);
  RunResult status_json = Ferry({"status", "--json"});
  auto sj = nlohmann::json::parse(status_json.out);
  ASSERT_EQ(sj["expand"].size(), 1u);
  EXPECT_EQ(sj["expand"][0]["phase"], "expanded");

  old1->Stop();  // the old version is retired before complete
  EXPECT_GT(old1->statements(), 0);
  EXPECT_TRUE(old1->errors().empty()) << old1->errors().front();
  // Both sides agree on every row while the window is open.
  EXPECT_EQ(One("SELECT count(*) FROM accounts WHERE amount_cents IS DISTINCT FROM amount::bigint * 100"),
            "0");

  RunResult complete = Ferry({"complete"});
  ASSERT_EQ(complete.exit_code, 0) << Describe(complete);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  new1->Stop();
  EXPECT_GT(new1->statements(), 0);
  EXPECT_TRUE(new1->errors().empty()) << new1->errors().front();

  EXPECT_FALSE(HasColumn("accounts", "amount"));
  EXPECT_TRUE(HasColumn("accounts", "amount_cents"));
  EXPECT_EQ(One("SELECT is_nullable FROM information_schema.columns WHERE table_name = 'accounts' "
                "AND column_name = 'amount_cents'"),
            "NO");
  // The contract phase is part of the schema record: no drift afterwards.
  RunResult validate = Ferry({"validate"});
  EXPECT_EQ(validate.exit_code, 0) << Describe(validate);
  EXPECT_EQ(One("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'accounts'::regclass AND NOT "
                "tgisinternal"),
            "0");
  // Row by row: untouched rows hold the mapped value, written rows the last write.
  EXPECT_EQ(One("SELECT count(*) FROM accounts WHERE id <= " + std::to_string(n)), std::to_string(n));
  auto rows = conn_->Query("SELECT id, amount_cents FROM accounts ORDER BY id");
  ASSERT_TRUE(rows.ok());
  int64_t checked = 0;
  for (size_t i = 0; i < rows->rows.size(); ++i) {
    int64_t id = std::atoll(rows->Text(i, 0).c_str());
    int64_t cents = std::atoll(rows->Text(i, 1).c_str());
    auto it = expected_cents.find(id);
    int64_t want = it != expected_cents.end() ? it->second : (id % 1000) * 100;
    ASSERT_EQ(cents, want) << "row " << id;
    ++checked;
  }
  EXPECT_EQ(checked, next_id - 1);
  RunResult history = Ferry({"history", "--json"});
  EXPECT_THAT(history.out, HasSubstr("completed by"));
}

// Split with a down expression: writes through the new columns during the
// window survive abort in the old column.
TEST_F(ExpandTest, SplitThenAbortKeepsEveryWrite) {
  FERRY_REQUIRE_PG(admin);
  const int64_t n = Rows() / 4;
  ASSERT_OK(conn_->Exec("CREATE TABLE people (id int PRIMARY KEY, full_name text NOT NULL)").status());
  ASSERT_OK(conn_->Exec("INSERT INTO people SELECT g, 'first' || g || ' last' || g FROM "
                        "generate_series(1, " + std::to_string(n) + ") g")
                .status());
  Migration("0001_split_name.sql",
            "-- ferry:up\n"
            "-- ferry:expand people\n"
            "--   split full_name into first_name text, last_name text\n"
            "--   up first_name = split_part(full_name, ' ', 1)\n"
            "--   up last_name = substr(full_name, strpos(full_name, ' ') + 1)\n"
            "--   down full_name = first_name || ' ' || last_name\n");
  std::mutex mu;
  std::map<int64_t, std::string> expected;
  auto new_writer = [&](Connection& c, std::mt19937& r) -> Status {
    int64_t id = 1 + static_cast<int64_t>(r() % static_cast<uint64_t>(n));
    std::string first = "F" + std::to_string(r() % 1000);
    std::string last = "L" + std::to_string(r() % 1000);
    auto q = c.Query("UPDATE people SET first_name = $1, last_name = $2 WHERE id = $3",
                     {first, last, std::to_string(id)});
    if (q.ok()) {
      std::lock_guard<std::mutex> l(mu);
      expected[id] = first + " " + last;
    }
    return q.status();
  };
  RunResult up = Ferry({"up"});
  ASSERT_EQ(up.exit_code, 0) << Describe(up);
  EXPECT_EQ(One("SELECT count(*) FROM people WHERE first_name IS NULL OR last_name IS NULL"), "0");
  {
    Writer w(url_, new_writer);
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    w.Stop();
    EXPECT_GT(w.statements(), 0);
    EXPECT_TRUE(w.errors().empty()) << w.errors().front();
  }
  // Old writers keep running during abort: a new row through the old column.
  auto old_writer = [&](Connection& c, std::mt19937& r) -> Status {
    int64_t id = n + 1 + static_cast<int64_t>(r() % 1000);
    return c.Query("INSERT INTO people (id, full_name) VALUES ($1, 'a b') ON CONFLICT (id) DO "
                   "UPDATE SET full_name = 'a b'",
                   {std::to_string(id)})
        .status();
  };
  Writer old_app(url_, old_writer);
  RunResult abort = Ferry({"abort"});
  ASSERT_EQ(abort.exit_code, 0) << Describe(abort);
  old_app.Stop();
  EXPECT_TRUE(old_app.errors().empty()) << old_app.errors().front();
  EXPECT_FALSE(HasColumn("people", "first_name"));
  EXPECT_FALSE(HasColumn("people", "last_name"));
  ASSERT_FALSE(expected.empty());
  for (const auto& [id, name] : expected) {
    ASSERT_EQ(One("SELECT full_name FROM people WHERE id = " + std::to_string(id)), name);
  }
  EXPECT_EQ(One("SELECT phase FROM ferry_expand_state"), "aborted");
  // Applying again re-expands from the current data.
  RunResult again = Ferry({"up"});
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_EQ(One("SELECT count(*) FROM people WHERE first_name || ' ' || last_name IS DISTINCT "
                "FROM full_name"),
            "0");
}

TEST_F(ExpandTest, ExpressionThatDoesNotTypeCheckIsRefusedBeforeAnythingChanges) {
  FERRY_REQUIRE_PG(admin);
  ASSERT_OK(conn_->Exec("CREATE TABLE t (id int PRIMARY KEY, a integer); INSERT INTO t VALUES (1, 1)")
                .status());
  Migration("0001_bad.sql",
            "-- ferry:up\n"
            "-- ferry:expand t\n"
            "--   change a type numeric(12,2)\n"
            "--   up a = a + 'not a number'::text\n");
  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 8) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("0001_bad.sql:2"));
  EXPECT_THAT(up.err, HasSubstr("up expression for a"));
  EXPECT_THAT(up.err, HasSubstr("nothing was changed"));
  EXPECT_FALSE(HasColumn("t", "_ferry_new_a"));
  EXPECT_EQ(One("SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass AND NOT tgisinternal"),
            "0");
  EXPECT_EQ(One("SELECT count(*) FROM ferry_schema_history WHERE status = 'success' AND kind = 'versioned'"), "0");
}

TEST_F(ExpandTest, TableWithoutPrimaryKeyIsRefused) {
  FERRY_REQUIRE_PG(admin);
  ASSERT_OK(conn_->Exec("CREATE TABLE nokey (a integer)").status());
  Migration("0001_nokey.sql", "-- ferry:up\n-- ferry:expand nokey\n--   change a type bigint\n");
  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 9) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("has no primary key"));
  EXPECT_THAT(up.err, HasSubstr("ADD PRIMARY KEY"));
  EXPECT_FALSE(HasColumn("nokey", "_ferry_new_a"));
}

TEST_F(ExpandTest, AbortWithoutDownExpressionIsRefused) {
  FERRY_REQUIRE_PG(admin);
  ASSERT_OK(conn_->Exec("CREATE TABLE u (id int PRIMARY KEY, first text, last text); INSERT INTO u "
                        "VALUES (1, 'a', 'b')")
                .status());
  Migration("0001_merge.sql",
            "-- ferry:up\n-- ferry:expand u\n--   merge first, last into full text\n"
            "--   up full = first || ' ' || last\n");
  ASSERT_EQ(Ferry({"up"}).exit_code, 0);
  RunResult abort = Ferry({"abort"});
  EXPECT_EQ(abort.exit_code, 9) << Describe(abort);
  EXPECT_THAT(abort.err, HasSubstr("has no down expression"));
  EXPECT_THAT(abort.err, HasSubstr("ferry complete"));
  EXPECT_TRUE(HasColumn("u", "full"));
  EXPECT_EQ(One("SELECT \"full\" FROM u"), "a b");  // a reserved word: ferry quotes it
  RunResult forced = Ferry({"abort", "--discard-new-writes"});
  EXPECT_EQ(forced.exit_code, 0) << Describe(forced);
  EXPECT_FALSE(HasColumn("u", "full"));
}

TEST_F(ExpandTest, UnreadableClauseNamesFileAndLine) {
  FERRY_REQUIRE_PG(admin);
  ASSERT_OK(conn_->Exec("CREATE TABLE t (id int PRIMARY KEY, a integer)").status());
  Migration("0001_typo.sql", "-- ferry:up\n-- ferry:expand t\n--   chnage a type bigint\n");
  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 8) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("0001_typo.sql:3"));
  EXPECT_THAT(up.err, HasSubstr("unknown clause"));
}

TEST_F(ExpandTest, FailingVerifyRollsTheMigrationBack) {
  FERRY_REQUIRE_PG(admin);
  Migration("0001_orders.sql",
            "-- ferry:up\n"
            "CREATE TABLE orders (id int PRIMARY KEY, total int);\n"
            "INSERT INTO orders VALUES (1, 10), (2, -5);\n"
            "-- ferry:verify\n"
            "SELECT count(*) = 2 FROM orders;\n"
            "SELECT id, total FROM orders WHERE total < 0;\n");
  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 9) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("0001_orders.sql:6"));
  EXPECT_THAT(up.err, HasSubstr("verify query 2 of 2"));
  EXPECT_THAT(up.err, HasSubstr("2 | -5"));
  EXPECT_THAT(up.err, HasSubstr("rolled back"));
  EXPECT_EQ(One("SELECT to_regclass('orders') IS NULL"), "t");
  // Fixed data: the same file passes.
  Migration("0001_orders.sql",
            "-- ferry:up\n"
            "CREATE TABLE orders (id int PRIMARY KEY, total int);\n"
            "INSERT INTO orders VALUES (1, 10), (2, 5);\n"
            "-- ferry:verify\n"
            "SELECT count(*) = 2 FROM orders;\n"
            "SELECT id, total FROM orders WHERE total < 0;\n");
  RunResult again = Ferry({"up"});
  EXPECT_EQ(again.exit_code, 0) << Describe(again);
}

TEST_F(ExpandTest, VerifyFileInGolangLayout) {
  FERRY_REQUIRE_PG(admin);
  Migration("0001_t.up.sql", "CREATE TABLE t (id int PRIMARY KEY);\n");
  Migration("0001_t.down.sql", "DROP TABLE t;\n");
  Migration("0001_t.verify.sql", "SELECT false;\n");
  RunResult up = Ferry({"up"});
  EXPECT_EQ(up.exit_code, 9) << Describe(up);
  EXPECT_THAT(up.err, HasSubstr("0001_t.verify.sql:1"));
  EXPECT_THAT(up.err, HasSubstr("returned false"));
}

TEST_F(ExpandTest, DeclaredBackfillRunsAfterTheDdlWithConcurrentWriters) {
  FERRY_REQUIRE_PG(admin);
  const int64_t n = Rows();
  ASSERT_OK(conn_->Exec("CREATE TABLE items (id bigint PRIMARY KEY, a integer)").status());
  ASSERT_OK(conn_->Exec("INSERT INTO items SELECT g, g FROM generate_series(1, " + std::to_string(n) +
                        ") g")
                .status());
  Migration("0001_b.sql",
            "-- ferry:up\n"
            "ALTER TABLE items ADD COLUMN b bigint;\n"
            "-- ferry:backfill items\n"
            "--   set   b = a * 2\n"
            "--   where b IS NULL\n"
            "--   batch_rows 1000\n"
            "-- ferry:down\n"
            "ALTER TABLE items DROP COLUMN b;\n"
            "-- ferry:verify\n"
            "SELECT id FROM items WHERE b IS DISTINCT FROM a * 2;\n");
  // The application keeps writing other columns while the DDL and the
  // batches run; none of its statements may fail or time out on a lock.
  ASSERT_OK(conn_->Exec("ALTER TABLE items ADD COLUMN note text").status());
  Writer w(url_, [&](Connection& c, std::mt19937& r) -> Status {
    int64_t id = 1 + static_cast<int64_t>(r() % static_cast<uint64_t>(n));
    return c.Query("UPDATE items SET note = 'touched' WHERE id = $1", {std::to_string(id)}).status();
  });
  RunResult up = Ferry({"up"});
  ASSERT_EQ(up.exit_code, 0) << Describe(up);
  w.Stop();
  EXPECT_GT(w.statements(), 0);
  EXPECT_TRUE(w.errors().empty()) << w.errors().front();
  EXPECT_EQ(One("SELECT count(*) FROM items WHERE b IS DISTINCT FROM a * 2"), "0");
  RunResult history = Ferry({"history", "--json"});
  EXPECT_THAT(history.out, HasSubstr("\"success\""));
}

// examples/multi-tenancy: seed 004 as ferry migrations, applied, verified,
// rolled back to the start and applied again.
TEST_F(ExpandTest, MultiTenancyExampleAppliesVerifiesRollsBackAndReapplies) {
  FERRY_REQUIRE_PG(admin);
  std::string dir = std::string(FERRY_SOURCE_DIR) + "/examples/multi-tenancy/migrations";
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--database", url_, "--dir", dir});
    return RunFerry(args, {"FERRY_CACHE_DIR=off"});
  };
  RunResult first = run({"up", "--to", "0001"});
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  const std::string users_sql =
      "SELECT string_agg(id || ':' || cooperativa_id, ',' ORDER BY id) FROM \"Usuario\"";
  const std::string roles_sql =
      "SELECT string_agg(id || ':' || usuario_id || ':' || cooperativa_id || ':' || rol, ',' "
      "ORDER BY id) FROM \"UsuarioRol\"";
  const std::string users_before = One(users_sql);
  const std::string roles_before = One(roles_sql);

  RunResult up = run({"up"});
  ASSERT_EQ(up.exit_code, 0) << Describe(up);
  EXPECT_EQ(One("SELECT count(*) FROM \"UsuarioCooperativa\""), One("SELECT count(*) FROM \"Usuario\""));
  EXPECT_EQ(One("SELECT count(*) FROM \"UsuarioRol\" WHERE usuario_cooperativa_id IS NULL"), "0");
  EXPECT_EQ(One("SELECT count(*) FROM information_schema.columns WHERE table_name = 'Usuario' AND "
                "column_name = 'cooperativa_id'"),
            "0");

  RunResult down = run({"down", "--to", "0001"});
  ASSERT_EQ(down.exit_code, 0) << Describe(down);
  EXPECT_EQ(One("SELECT to_regclass('\"UsuarioCooperativa\"') IS NULL"), "t");
  EXPECT_EQ(One(users_sql), users_before);
  EXPECT_EQ(One(roles_sql), roles_before);

  RunResult again = run({"up"});
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_EQ(One("SELECT count(*) FROM \"UsuarioRol\" WHERE usuario_cooperativa_id IS NULL"), "0");
}

}  // namespace
}  // namespace ferry::testing
