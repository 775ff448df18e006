// Runs the built ferry binary end to end: first commands and bad input.
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(CliTest, VersionAndHelp) {
  RunResult v = RunFerry({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_THAT(v.out, HasSubstr("ferry " FERRY_VERSION));
  RunResult vj = RunFerry({"version", "--json"});
  EXPECT_EQ(nlohmann::json::parse(vj.out)["version"], FERRY_VERSION);

  RunResult help = RunFerry({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("ferry doctor postgres://"));
  EXPECT_THAT(help.out, HasSubstr("--database"));
  RunResult doctor_help = RunFerry({"doctor", "--help"});
  EXPECT_EQ(doctor_help.exit_code, 0);
  EXPECT_THAT(doctor_help.out, HasSubstr("Examples:"));
}

TEST(CliTest, UnknownFlagIsUsageError) {
  RunResult r = RunFerry({"doctor", "--no-such-flag"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("usage error"));
}

TEST(CliTest, DoctorOnSqliteFile) {
  TempDir dir;
  RunResult r = RunFerry({"doctor", "sqlite:" + dir.File("app.db")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("engine    SQLite 3."));
  EXPECT_THAT(r.out, HasSubstr("ok       wal_mode"));
  EXPECT_THAT(r.out, HasSubstr("missing  copy"));
  EXPECT_THAT(r.out, HasSubstr("hint: ferry uses batched prepared inserts"));
}

TEST(CliTest, DoctorDefaultsToFerryDbInWorkingDirectory) {
  TempDir dir;
  RunResult r = RunFerry({"doctor", "--json"}, {}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["engine"], "SQLite");
  EXPECT_EQ(j["database"], "sqlite:ferry.db");
  EXPECT_TRUE(std::filesystem::exists(dir.File("ferry.db")));
}

TEST(CliTest, DoctorUsesDatabaseUrlFromEnvironmentAndToml) {
  TempDir dir;
  dir.Write("ferry.toml", "database = \"sqlite:from_toml.db\"\n");
  RunResult from_toml = RunFerry({"doctor", "--json"}, {}, dir.path());
  ASSERT_EQ(from_toml.exit_code, 0) << from_toml.err;
  EXPECT_EQ(nlohmann::json::parse(from_toml.out)["database"], "sqlite:from_toml.db");
  RunResult from_env = RunFerry({"doctor", "--json"}, {"DATABASE_URL=sqlite:from_env.db"}, dir.path());
  ASSERT_EQ(from_env.exit_code, 0) << from_env.err;
  EXPECT_EQ(nlohmann::json::parse(from_env.out)["database"], "sqlite:from_env.db");
  RunResult from_flag = RunFerry({"doctor", "--json", "--database", "sqlite:from_flag.db"},
                                 {"DATABASE_URL=sqlite:from_env.db"}, dir.path());
  ASSERT_EQ(from_flag.exit_code, 0) << from_flag.err;
  EXPECT_EQ(nlohmann::json::parse(from_flag.out)["database"], "sqlite:from_flag.db");
}

TEST(CliTest, BadConfigFileNamesLine) {
  TempDir dir;
  dir.Write("ferry.toml", "dir = \"x\"\nbogus = 1\n");
  RunResult r = RunFerry({"doctor"}, {}, dir.path());
  EXPECT_EQ(r.exit_code, 8);
  EXPECT_THAT(r.err, HasSubstr("ferry.toml:2: unknown setting 'bogus'"));
}

TEST(CliTest, UnknownSchemeIsOneClearLineWithoutPassword) {
  RunResult r = RunFerry({"doctor", "mysql://root:topsecret@127.0.0.1/app"});
  EXPECT_EQ(r.exit_code, 8);
  EXPECT_THAT(r.err, HasSubstr("no driver for scheme 'mysql'"));
  EXPECT_THAT(r.err, HasSubstr("mysql://root:***@127.0.0.1/app"));
  EXPECT_THAT(r.err + r.out, Not(HasSubstr("topsecret")));
}

TEST(CliTest, UnreadableSqlitePaths) {
  RunResult missing_dir = RunFerry({"doctor", "sqlite:/nonexistent-dir-ferry/x.db"});
  EXPECT_EQ(missing_dir.exit_code, 7);
  EXPECT_THAT(missing_dir.err, HasSubstr("does not exist"));
  TempDir dir;
  RunResult is_dir = RunFerry({"doctor", "sqlite:" + dir.path()});
  EXPECT_EQ(is_dir.exit_code, 8);
  EXPECT_THAT(is_dir.err, HasSubstr("is a directory"));
  dir.Write("not-a-db.db", std::string(4096, 'x'));
  RunResult junk = RunFerry({"doctor", "sqlite:" + dir.File("not-a-db.db")});
  EXPECT_EQ(junk.exit_code, 8);
  EXPECT_THAT(junk.err, HasSubstr("is this a SQLite file?"));
}

TEST(CliTest, DoctorOnPostgres) {
  FERRY_REQUIRE_PG(url);
  RunResult r = RunFerry({"doctor", url});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("engine    PostgreSQL 15"));
  EXPECT_THAT(r.out, HasSubstr("transactional_ddl"));
  EXPECT_THAT(r.out, HasSubstr("advisory_locks"));
  EXPECT_THAT(r.out, HasSubstr("logical_replication"));
  RunResult j = RunFerry({"doctor", "--json", url});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["engine"], "PostgreSQL");
  EXPECT_GE(doc["version_num"].get<int>(), 150000);
}

TEST(CliTest, PostgresConnectionFailuresHaveDistinctExitCodes) {
  FERRY_REQUIRE_PG(url);
  // Refused: a port nobody listens on.
  RunResult refused = RunFerry({"doctor", "postgres://u:hunter2@127.0.0.1:1/db"});
  EXPECT_EQ(refused.exit_code, 5) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("postgres://u:***@127.0.0.1:1/db"));
  EXPECT_THAT(refused.err + refused.out, Not(HasSubstr("hunter2")));
  // Unresolvable host.
  RunResult unreachable = RunFerry({"doctor", "postgres://u@no-such-host.invalid/db"});
  EXPECT_EQ(unreachable.exit_code, 5) << unreachable.err;
  // Missing database.
  RunResult missing = RunFerry({"doctor", WithDatabase(url, "ferry_no_such_db")});
  EXPECT_EQ(missing.exit_code, 7) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("ferry_no_such_db"));
  // Wrong password (the test server requires a password for role ferry_pw).
  const char* pw_url = std::getenv("FERRY_TEST_PG_PW_URL");
  ASSERT_NE(pw_url, nullptr) << "scripts/test-servers.sh sets FERRY_TEST_PG_PW_URL";
  std::string wrong = pw_url;
  size_t at = wrong.find('@');
  size_t colon = wrong.rfind(':', at);
  wrong.replace(colon + 1, at - colon - 1, "wrong_pw_value");
  RunResult bad_pw = RunFerry({"doctor", wrong});
  EXPECT_EQ(bad_pw.exit_code, 6) << bad_pw.err;
  EXPECT_THAT(bad_pw.err + bad_pw.out, Not(HasSubstr("wrong_pw_value")));
  RunResult good_pw = RunFerry({"doctor", pw_url});
  EXPECT_EQ(good_pw.exit_code, 0) << good_pw.err;
}

}  // namespace
}  // namespace ferry::testing
