// The Redis test servers (two standalone servers, the cluster, the TLS
// server) are shared by every test, and many tests empty them (FLUSHALL)
// or move the cluster's slots. ctest runs tests in parallel, one process
// each, so a test of a suite named Redis* holds an exclusive flock on one
// file in the servers' folder while it runs; the others wait for it.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace ferry::testing {
namespace {

class RedisLockListener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo& info) override {
    if (std::string(info.test_suite_name()).rfind("Redis", 0) != 0) return;
    const char* dir = std::getenv("FERRY_TEST_SERVERS_DIR");
    std::string path = std::string(dir != nullptr && *dir ? dir : "/tmp") + "/redis-tests.lock";
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  void OnTestEnd(const ::testing::TestInfo&) override {
    if (fd_ < 0) return;
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Registered before main() runs the tests (gtest_main owns main).
const bool registered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new RedisLockListener);
  return true;
}();

}  // namespace
}  // namespace ferry::testing
