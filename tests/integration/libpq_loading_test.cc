// libpq is loaded on first use (src/drivers/postgres/libpq_api.h): commands
// that never reach PostgreSQL run without it, and a PostgreSQL command
// without a usable libpq fails with a message saying what to install.
//
// The binary is run with LD_LIBRARY_PATH pointing at a directory whose
// libpq.so.5 is unusable. The loader searches that directory first, so a
// ferry that linked libpq would not even start.
#include <filesystem>

#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A URL that would need libpq; nothing listens on port 1 and no connection
// is tried before libpq is loaded. The password must never be printed.
constexpr const char* kPgUrl = "postgres://app:s3cret-pw@127.0.0.1:1/app";

class LibpqLoadingTest : public ::testing::Test {
 protected:
  // Runs ferry with `libs` searched first for shared libraries.
  RunResult FerryWithLibs(const std::string& libs, const std::vector<std::string>& args) {
    return RunFerry(args, {"LD_LIBRARY_PATH=" + libs}, dir_.path());  // init writes ferry.toml in the cwd
  }

  // Runs `init` then `status` on a SQLite database; both must succeed.
  void ExpectSqliteWorks(const std::string& libs) {
    std::string db = "sqlite:" + dir_.File("app.db");
    std::string migrations = dir_.File("migrations");
    RunResult init = FerryWithLibs(libs, {"init", "--database", db, "--dir", migrations});
    ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
    dir_.Write("migrations/1_create_users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY);\n");
    RunResult up = FerryWithLibs(libs, {"up", "--database", db, "--dir", migrations});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    RunResult status =
        FerryWithLibs(libs, {"status", "--database", db, "--dir", migrations, "--json"});
    ASSERT_EQ(status.exit_code, 0) << status.out << status.err;
    EXPECT_THAT(status.out, HasSubstr("\"applied\""));
    EXPECT_THAT(status.out, HasSubstr("create_users"));
  }

  TempDir dir_;
  TempDir libs_;
};

TEST_F(LibpqLoadingTest, SqliteCommandsRunWithABrokenLibpq) {
  libs_.Write("libpq.so.5", "this is not a shared object\n");
  ExpectSqliteWorks(libs_.path());
}

TEST_F(LibpqLoadingTest, SqliteCommandsRunWithAnEmptyLibpq) {
  libs_.Write("libpq.so.5", "");
  ExpectSqliteWorks(libs_.path());
}

TEST_F(LibpqLoadingTest, PostgresCommandWithoutLibpqSaysWhatToInstall) {
  libs_.Write("libpq.so.5", "this is not a shared object\n");
  std::string migrations = dir_.File("migrations");
  std::filesystem::create_directories(migrations);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"up", "--database", kPgUrl, "--dir", migrations},
           {"doctor", kPgUrl},
       }) {
    SCOPED_TRACE(args.front());
    RunResult r = FerryWithLibs(libs_.path(), args);
    // kFailedPrecondition: a human must act; not a crash (>= 128) and not
    // "cannot reach the database" (5), which callers retry.
    EXPECT_EQ(r.exit_code, 9) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("PostgreSQL support needs the libpq client library (libpq.so.5), "
                                 "which could not be loaded: "));
    EXPECT_THAT(r.err, HasSubstr("libpq.so.5"));
    EXPECT_THAT(r.err, HasSubstr("install it with: apt-get install libpq5"));
    EXPECT_THAT(r.out + r.err, Not(HasSubstr("s3cret-pw")));
  }

  // --json carries the same error as a document.
  RunResult json = FerryWithLibs(libs_.path(), {"doctor", kPgUrl, "--json"});
  EXPECT_EQ(json.exit_code, 9) << json.out << json.err;
  EXPECT_THAT(json.out + json.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(json.out + json.err, HasSubstr("apt-get install libpq5"));
  EXPECT_THAT(json.out + json.err, Not(HasSubstr("s3cret-pw")));
}

TEST_F(LibpqLoadingTest, LibpqWithoutItsFunctionsIsNamed) {
  // FERRY_OLD_LIBPQ_DIR holds a real shared object named libpq.so.5 that
  // defines none of the functions ferry calls.
  RunResult r = FerryWithLibs(FERRY_OLD_LIBPQ_DIR, {"doctor", kPgUrl});
  EXPECT_EQ(r.exit_code, 9) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("PostgreSQL support needs the libpq client library (libpq.so.5)"));
  EXPECT_THAT(r.err, HasSubstr(std::string(FERRY_OLD_LIBPQ_DIR) + "/libpq.so.5"));
  // The first function of the table, in its order.
  EXPECT_THAT(r.err, HasSubstr("lacks the function PQbackendPID"));
  EXPECT_THAT(r.err, HasSubstr("PostgreSQL 14 or later"));
  EXPECT_THAT(r.err, Not(HasSubstr("s3cret-pw")));

  // SQLite is unaffected by it.
  ExpectSqliteWorks(FERRY_OLD_LIBPQ_DIR);
}

}  // namespace
}  // namespace ferry::testing
