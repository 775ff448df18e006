// Trust: secrets never leave ferry, the command line hides them, the history
// cannot be fooled, status leaves the server log clean, and file names cannot
// forge output. The built `ferry` binary against real PostgreSQL and SQLite.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/url.h"
#include "drivers/registry.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The secret: '#', '/', '?' and a space, with five fragments no other text
// holds, so a leak of any part of it (e.g. the tail after an escaped space)
// is found.
constexpr const char* kSecret = "Zq7#Hk2/Xv9?Wm4 Jp5";
constexpr const char* kSecretUrlEncoded = "Zq7%23Hk2%2FXv9%3FWm4%20Jp5";
const std::vector<std::string> kFragments = {"Zq7", "Hk2", "Xv9", "Wm4", "Jp5"};

// "" when `text` holds no fragment of the secret, else which and where.
std::string Leak(const std::string& text, const std::string& where) {
  for (const std::string& f : kFragments) {
    size_t at = text.find(f);
    if (at != std::string::npos) {
      size_t from = at < 60 ? 0 : at - 60;
      return where + " holds '" + f + "': ..." + text.substr(from, 140) + "...";
    }
  }
  return "";
}

std::string PgHostPort(const std::string& admin_url, std::string* port) {
  auto url = Url::Parse(admin_url);
  EXPECT_TRUE(url.ok());
  *port = std::to_string(url->port());
  return url->host();
}

// Every form a PostgreSQL URL can carry the secret in. The test server
// trusts `postgres` on 127.0.0.1, so the password is sent where the server
// asks for none: what matters here is where ferry puts it.
std::vector<std::string> SecretUrlForms(const std::string& db_url) {
  auto u = Url::Parse(db_url);
  EXPECT_TRUE(u.ok());
  std::string hp = u->host() + ":" + std::to_string(u->port());
  std::string kv = "host=" + u->host() + " port=" + std::to_string(u->port()) +
                   " dbname=" + u->database() + " user=postgres ";
  return {
      "postgres://postgres:" + std::string(kSecretUrlEncoded) + "@" + hp + "/" + u->database(),
      // raw '#' and '?' in the userinfo, as libpq reads them
      "postgresql://postgres:Zq7#Hk2%2FXv9?Wm4%20Jp5@" + hp + "/" + u->database() +
          "?sslmode=disable",
      "postgres://postgres@" + hp + "/" + u->database() + "?password=" + kSecretUrlEncoded +
          "&application_name=trust",
      kv + "password=Zq7#Hk2/Xv9?Wm4\\ Jp5 sslmode=disable",
      kv + "password='" + kSecret + "' sslpassword='Zq7 Jp5'",
  };
}

class TrustSecretTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    dir_.Write("migrations/1_create_t.sql",
               "-- ferry:up\nCREATE TABLE t (id int PRIMARY KEY, v text);\n"
               "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g;\n"
               "-- ferry:down\nDROP TABLE t;\n");
    dir_.Write("src_migrations/1_src.sql",
               "-- ferry:up\nCREATE TABLE s (id integer PRIMARY KEY, v text);\n"
               "INSERT INTO s VALUES (1, 'a'), (2, 'b'), (3, 'c');\n-- ferry:down\nDROP TABLE s;\n");
    std::filesystem::create_directories(dir_.File("home"));
  }

  // Runs ferry in the work dir with its caches inside it; checks both
  // output streams for the secret.
  RunResult Ferry(const std::vector<std::string>& args) {
    RunResult r = RunFerry(args, {"HOME=" + dir_.File("home"), "XDG_CACHE_HOME=" + dir_.File("cache")},
                           dir_.path());
    std::string what;
    for (const auto& a : args) what += (what.empty() ? "" : " ") + a;
    EXPECT_EQ(Leak(r.out, "stdout of a command"), "") << Leak(r.out, "") << " ran: " << what;
    EXPECT_EQ(Leak(r.err, "stderr of a command"), "") << " ran: " << what;
    return r;
  }

  void ExpectNoSecretInFiles() {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_.path())) {
      if (!entry.is_regular_file()) continue;
      std::string text = ReadFile(entry.path().string());
      EXPECT_EQ(Leak(text, entry.path().string()), "");
    }
  }

  void ExpectNoSecretInTables() {
    auto conn = OpenConnection(db_.url());
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    auto tables = (*conn)->Query(
        "SELECT quote_ident(table_name) FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name LIKE 'ferry%'");
    ASSERT_TRUE(tables.ok()) << tables.status().ToString();
    EXPECT_GE(tables->rows.size(), 4u) << "history, meta, jobs and chunks tables expected";
    for (const auto& row : tables->rows) {
      auto all = (*conn)->Query("SELECT string_agg(x::text, E'\\n') FROM " + *row[0] + " x");
      ASSERT_TRUE(all.ok()) << all.status().ToString();
      EXPECT_EQ(Leak(all->Text(0, 0), "table " + *row[0]), "");
    }
  }

  FreshPgDatabase db_;
  TempDir dir_;
};

TEST_F(TrustSecretTest, NoOutputFileOrTableEverHoldsThePassword) {
  ASSERT_EQ(Ferry({"up", "-d", "sqlite:src.db", "--dir", "src_migrations"}).exit_code, 0);
  bool first = true;
  for (const std::string& url : SecretUrlForms(db_.url())) {
    SCOPED_TRACE(url);
    if (first) {
      RunResult init = Ferry({"init", "--database", url});
      EXPECT_EQ(init.exit_code, 0) << init.err;
      std::string toml = ReadFile(dir_.File("ferry.toml"));
      EXPECT_THAT(toml, HasSubstr("database = \"postgres://postgres@"));
      EXPECT_THAT(toml, HasSubstr("password left out"));
      first = false;
    }
    RunResult up = Ferry({"up", "--database=" + url});
    EXPECT_EQ(up.exit_code, 0) << up.err;
    EXPECT_EQ(Ferry({"status", "-d", url}).exit_code, 0);
    EXPECT_EQ(Ferry({"status", "-d", url}).exit_code, 0);  // the status cache's hit
    EXPECT_EQ(Ferry({"status", "--json", "-d", url}).exit_code, 0);
    EXPECT_EQ(Ferry({"history", "--json", "-d", url}).exit_code, 0);
    EXPECT_EQ(Ferry({"validate", "-d", url}).exit_code, 0);
    EXPECT_EQ(Ferry({"doctor", url}).exit_code, 0);
    EXPECT_EQ(Ferry({"doctor", "--json", url}).exit_code, 0);
    EXPECT_EQ(Ferry({"plan", "--json", "-d", url}).exit_code, 0);
    RunResult copy = Ferry({"copy", "--from", "sqlite:src.db", "--to", url, "--table", "s",
                            "--create-tables", "--truncate", "--job", "trust", "--json"});
    EXPECT_EQ(copy.exit_code, 0) << copy.err;
    EXPECT_EQ(Ferry({"copy", "--to", url, "--status", "trust"}).exit_code, 0);
    EXPECT_EQ(Ferry({"copy", "--to", url, "--status", "trust", "--json"}).exit_code, 0);
    // Failing commands: a database that does not exist, and a bad migration.
    std::string missing = url;
    size_t at = missing.find(db_.name());
    ASSERT_NE(at, std::string::npos);
    missing.replace(at, db_.name().size(), "trust_no_such_db");
    EXPECT_NE(Ferry({"status", "-d", missing}).exit_code, 0);
    EXPECT_NE(Ferry({"status", "--json", "-d", missing}).exit_code, 0);
  }
  dir_.Write("migrations/2_broken.sql", "-- ferry:up\nSELECT no_such_function();\n");
  EXPECT_NE(Ferry({"up", "-d", SecretUrlForms(db_.url())[3]}).exit_code, 0);
  EXPECT_NE(Ferry({"up", "--json", "-d", SecretUrlForms(db_.url())[0]}).exit_code, 0);
  // A raw '/' cannot be parsed: the error quotes none of the URL.
  std::string port;
  std::string host = PgHostPort(db_.url(), &port);
  RunResult raw = Ferry({"status", "-d", "postgres://postgres:" + std::string(kSecret) + "@" +
                                          host + ":" + port + "/" + db_.name()});
  EXPECT_NE(raw.exit_code, 0);
  EXPECT_THAT(raw.err, HasSubstr("%2F"));
  ExpectNoSecretInFiles();
  ExpectNoSecretInTables();
}

// The password given on the command line is gone from /proc/PID/cmdline
// while ferry runs (here: during a migration that sleeps).
TEST(TrustArgvTest, CommandLineHidesThePasswordWhileFerryRuns) {
  FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  auto u = Url::Parse(db.url());
  ASSERT_TRUE(u.ok());
  std::string url = "postgres://postgres:" + std::string(kSecretUrlEncoded) + "@" + u->host() +
                    ":" + std::to_string(u->port()) + "/" + u->database();
  std::string kv = "host=" + u->host() + " port=" + std::to_string(u->port()) +
                   " dbname=" + u->database() + " user=postgres password='" + kSecret + "'";
  int n = 0;
  for (const std::vector<std::string>& flag :
       {std::vector<std::string>{"-d", url}, std::vector<std::string>{"--database=" + url},
        std::vector<std::string>{"--database", kv}}) {
    TempDir dir;
    ++n;
    dir.Write("migrations/" + std::to_string(n) + "_sleep.sql",
              "-- ferry:up\nSELECT pg_sleep(2);\n-- ferry:down\n");
    std::vector<std::string> args = {"up", "--dir", dir.File("migrations")};
    args.insert(args.end(), flag.begin(), flag.end());
    int pid = StartFerry(args, dir.File("out"));
    ASSERT_GT(pid, 0);
    // Wait until the migration is running on the server (not a timing
    // assertion: the state is polled, with a generous bound).
    auto admin = OpenConnection(db.url());
    ASSERT_TRUE(admin.ok());
    bool sleeping = false;
    for (int i = 0; i < 600 && !sleeping; ++i) {
      auto r = (*admin)->Query(
          "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(2)%' "
          "AND pid <> pg_backend_pid()");
      sleeping = r.ok() && r->Text(0, 0) != "0";
      if (!sleeping) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::string cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    EXPECT_TRUE(sleeping) << "the migration never started";
    EXPECT_EQ(WaitFerry(pid), 0) << ReadFile(dir.File("out.err"));
    for (char& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    EXPECT_EQ(Leak(cmdline, "/proc/PID/cmdline"), "") << cmdline;
    EXPECT_THAT(cmdline, HasSubstr(u->database())) << "the URL is still shown without its secret";
  }
}

// History rows, format versions and meta tables ferry never wrote make
// validate fail and up refuse, naming what is wrong.
class TrustHistoryTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (std::string(GetParam()) == "postgres") {
      pg_ = std::make_unique<FreshPgDatabase>();
      ASSERT_TRUE(pg_->ok());
      url_ = pg_->url();
    } else {
      url_ = "sqlite:" + dir_.File("h.db");
    }
    dir_.Write("migrations/1_log.sql",
               "-- ferry:up\nCREATE TABLE runs (n int);\nINSERT INTO runs VALUES (1);\n"
               "-- ferry:down\nDROP TABLE runs;\n");
    RunResult up = Run({"up"});
    ASSERT_EQ(up.exit_code, 0) << up.err;
  }
  RunResult Run(std::vector<std::string> args) {
    args.insert(args.end(), {"-d", url_});
    return RunFerry(args, {"FERRY_CACHE_DIR=off"}, dir_.path());
  }
  void Exec(const std::string& sql) {
    auto conn = OpenConnection(url_);
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    auto r = (*conn)->Exec(sql);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::string Scalar(const std::string& sql) {
    auto conn = OpenConnection(url_);
    EXPECT_TRUE(conn.ok());
    auto r = (*conn)->Query(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->Text(0, 0) : "";
  }
  // validate and up both fail naming `expected`; the migration does not run again.
  void ExpectRefused(const std::string& expected) {
    RunResult validate = Run({"validate"});
    EXPECT_NE(validate.exit_code, 0) << validate.out;
    EXPECT_THAT(validate.out + validate.err, HasSubstr(expected));
    RunResult up = Run({"up"});
    EXPECT_NE(up.exit_code, 0) << up.out << up.err;
    EXPECT_THAT(up.err, HasSubstr(expected));
    EXPECT_EQ(Scalar("SELECT count(*) FROM runs"), "1") << "up ran the migration again";
  }

  TempDir dir_;
  std::unique_ptr<FreshPgDatabase> pg_;
  std::string url_;
};

TEST_P(TrustHistoryTest, StatusTypedByHandIsRefused) {
  Exec("UPDATE ferry_schema_history SET status = 'SUCCESS'");
  ExpectRefused("'SUCCESS'");
  RunResult validate = Run({"validate"});
  EXPECT_THAT(validate.out + validate.err, HasSubstr("row id 1"));
  EXPECT_NE(Run({"status"}).exit_code, 0);
}

TEST_P(TrustHistoryTest, UnknownKindIsRefused) {
  Exec("UPDATE ferry_schema_history SET kind = 'manual'");
  ExpectRefused("kind 'manual'");
}

TEST_P(TrustHistoryTest, GarbageFormatVersionIsRefused) {
  Exec("UPDATE ferry_schema_history_meta SET value = 'one' WHERE key = 'format_version'");
  ExpectRefused("format_version 'one'");
  EXPECT_NE(Run({"status"}).exit_code, 0);
}

TEST_P(TrustHistoryTest, EmptyMetaTableIsRefused) {
  Exec("DELETE FROM ferry_schema_history_meta");
  ExpectRefused("no format_version row");
}

INSTANTIATE_TEST_SUITE_P(Engines, TrustHistoryTest, ::testing::Values("sqlite", "postgres"));

// `status` on a database without history leaves no ERROR in the server log.
TEST(TrustServerLogTest, StatusWithoutHistoryLogsNoError) {
  FreshPgDatabase db;
  ASSERT_TRUE(db.ok());
  const char* servers = std::getenv("FERRY_TEST_SERVERS_DIR");
  ASSERT_NE(servers, nullptr) << "scripts/test-servers.sh sets FERRY_TEST_SERVERS_DIR";
  std::string log = std::string(servers) + "/pg.log";
  ASSERT_TRUE(std::filesystem::exists(log)) << log;
  std::mt19937_64 rng(std::random_device{}());
  std::string table = "trust_probe_" + std::to_string(rng() % 1000000000);
  TempDir dir;
  dir.Write("migrations/1_a.sql", "-- ferry:up\nSELECT 1;\n-- ferry:down\n");
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{}, std::vector<std::string>{"--json"}}) {
    std::vector<std::string> args = {"status", "-d", db.url(), "--history-table", table};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = RunFerry(args, {"XDG_CACHE_HOME=" + dir.File("cache")}, dir.path());
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  // Statements are logged with the ERROR they caused (log_min_error_statement):
  // any mention of the table is a query that failed on it.
  std::string text = ReadFile(log);
  EXPECT_THAT(text, Not(HasSubstr(table)));
}

// File names with a newline or a terminal escape are printed escaped.
TEST(TrustFileNameTest, ControlCharactersInNamesAreEscaped) {
  TempDir dir;
  std::string name = "2_evil\nFAKE LINE\x1b[2J.sql";
  dir.Write("migrations/1_fine.sql", "-- ferry:up\nSELECT 1;\n-- ferry:down\n");
  dir.Write("migrations/" + name, "-- ferry:up\nSELECT 2;\n-- ferry:down\n");
  std::string url = "sqlite:" + dir.File("f.db");
  for (const char* command : {"init", "status", "plan", "up", "status", "validate"}) {
    RunResult r = RunFerry({command, "-d", url}, {"FERRY_CACHE_DIR=off"}, dir.path());
    std::string all = r.out + r.err;
    SCOPED_TRACE(std::string(command) + ":\n" + all);
    EXPECT_EQ(all.find('\x1b'), std::string::npos);
    EXPECT_EQ(all.find("\nFAKE LINE"), std::string::npos);
    if (std::string(command) != "validate" && std::string(command) != "init") {
      EXPECT_THAT(all, HasSubstr("evil\\nFAKE LINE\\x1b[2J"));
    }
  }
  // JSON keeps the name exactly (the encoder escapes it).
  RunResult j = RunFerry({"status", "--json", "-d", url}, {"FERRY_CACHE_DIR=off"}, dir.path());
  EXPECT_EQ(j.out.find('\x1b'), std::string::npos);
  EXPECT_THAT(j.out, HasSubstr("evil\\nFAKE LINE\\u001b[2J"));
}

}  // namespace
}  // namespace ferry::testing
