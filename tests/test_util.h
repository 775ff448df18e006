// Helpers shared by the integration tests: real servers, fresh databases,
// running the built binary.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    const ::ferry::Status ferry_s_ = (expr);              \
    ASSERT_TRUE(ferry_s_.ok()) << ferry_s_.ToString();    \
  } while (false)
#define EXPECT_OK(expr)                                   \
  do {                                                    \
    const ::ferry::Status ferry_s_ = (expr);              \
    EXPECT_TRUE(ferry_s_.ok()) << ferry_s_.ToString();    \
  } while (false)

#define FERRY_TEST_CONCAT_INNER_(a, b) a##b
#define FERRY_TEST_CONCAT_(a, b) FERRY_TEST_CONCAT_INNER_(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                                  \
  auto FERRY_TEST_CONCAT_(ferry_r_, __LINE__) = (expr);                                  \
  ASSERT_TRUE(FERRY_TEST_CONCAT_(ferry_r_, __LINE__).ok())                               \
      << FERRY_TEST_CONCAT_(ferry_r_, __LINE__).status().ToString();                     \
  lhs = std::move(FERRY_TEST_CONCAT_(ferry_r_, __LINE__)).value()

namespace ferry::testing {

// URL of the throw-away PostgreSQL server (FERRY_TEST_PG_URL), or "" after
// marking the test skipped. When FERRY_TEST_REQUIRE_SERVERS=1 (the README
// test command sets it) a missing server fails the test instead of skipping.
std::string PgAdminUrl();
std::string RedisUrl();
// The throw-away Cassandra node: FERRY_TEST_CQL_URL (superuser role, keyspace
// ferry_test) and FERRY_TEST_CQL_RO_URL (may only SELECT in ferry_test).
std::string CqlUrl();
std::string CqlReadOnlyUrl();

// Calls GTEST_SKIP/FAIL via the helpers above; use as:
//   std::string url = PgAdminUrl(); if (url.empty()) return;
#define FERRY_REQUIRE_PG(var)                 \
  std::string var = ::ferry::testing::PgAdminUrl(); \
  if (var.empty()) return

// A database created for one test and dropped afterwards.
class FreshPgDatabase {
 public:
  FreshPgDatabase();  // check ok() after construction
  ~FreshPgDatabase();
  bool ok() const { return !url_.empty(); }
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

// A temporary directory removed afterwards.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  void Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs the built ferry binary with `args` (no shell), optional extra
// environment "K=V" entries, in `cwd` (or the current directory).
RunResult RunFerry(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                   const std::string& cwd = "");
// The same for any program.
RunResult RunBinary(const std::string& binary, const std::vector<std::string>& args,
                    const std::vector<std::string>& env = {}, const std::string& cwd = "");

// Starts the built ferry binary in the background with stdout and stderr
// going to `out_file` and `out_file + ".err"`. Returns the child's pid.
int StartFerry(const std::vector<std::string>& args, const std::string& out_file,
               const std::vector<std::string>& env = {});
// Waits for a child started by StartFerry; returns its exit code
// (128 + signal when killed).
int WaitFerry(int pid);
std::string ReadFile(const std::string& path);

// Replaces the database name in a postgres:// URL.
std::string WithDatabase(const std::string& url, const std::string& dbname);

}  // namespace ferry::testing
