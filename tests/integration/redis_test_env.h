// URLs of the Redis servers scripts/test-servers.sh starts for the Redis
// tests. Like test_util.h's PgAdminUrl(): "" after skipping the test, or a
// failure when FERRY_TEST_REQUIRE_SERVERS=1 (a missing server never skips).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace ferry::testing {

inline std::string RedisEnvUrl(const char* variable) {
  const char* url = std::getenv(variable);
  if (url != nullptr && *url != '\0') return url;
  const char* require = std::getenv("FERRY_TEST_REQUIRE_SERVERS");
  if (require != nullptr && std::string(require) == "1") {
    ADD_FAILURE() << variable
                  << " is not set but FERRY_TEST_REQUIRE_SERVERS=1: start the servers with "
                     "scripts/test-servers.sh";
  } else {
    [variable]() { GTEST_SKIP() << "set " << variable << " (scripts/test-servers.sh)"; }();
  }
  return "";
}
inline std::string Redis2Url() { return RedisEnvUrl("FERRY_TEST_REDIS2_URL"); }
inline std::string RedisAclUrl() { return RedisEnvUrl("FERRY_TEST_REDIS_ACL_URL"); }
inline std::string RedisClusterUrl() { return RedisEnvUrl("FERRY_TEST_REDIS_CLUSTER_URL"); }

}  // namespace ferry::testing
