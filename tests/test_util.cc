#include "test_util.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "drivers/registry.h"

namespace ferry::testing {
namespace {

bool RequireServers() {
  const char* v = std::getenv("FERRY_TEST_REQUIRE_SERVERS");
  return v != nullptr && std::string(v) == "1";
}

std::string ServerUrl(const char* variable) {
  const char* url = std::getenv(variable);
  if (url != nullptr && *url != '\0') return url;
  if (RequireServers()) {
    ADD_FAILURE() << variable
                  << " is not set but FERRY_TEST_REQUIRE_SERVERS=1: start the servers with "
                     "scripts/test-servers.sh (scripts/test.sh does it)";
  } else {
    [variable]() { GTEST_SKIP() << "set " << variable << " (scripts/test.sh starts a server)"; }();
  }
  return "";
}

// In a forked child: sets `env`, then replaces the process with `binary`.
[[noreturn]] void ExecInChild(const std::string& binary, const std::vector<std::string>& args,
                              const std::vector<std::string>& env) {
  for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
  std::vector<char*> argv;
  std::string bin = binary;
  argv.push_back(bin.data());
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(bin.c_str(), argv.data());
  _exit(127);
}

}  // namespace

std::string PgAdminUrl() { return ServerUrl("FERRY_TEST_PG_URL"); }
std::string RedisUrl() { return ServerUrl("FERRY_TEST_REDIS_URL"); }
std::string CqlUrl() { return ServerUrl("FERRY_TEST_CQL_URL"); }
std::string CqlReadOnlyUrl() { return ServerUrl("FERRY_TEST_CQL_RO_URL"); }

std::string WithDatabase(const std::string& url, const std::string& dbname) {
  size_t scheme = url.find("://");
  size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  size_t query = url.find('?');
  std::string base = url.substr(0, slash == std::string::npos ? (query == std::string::npos ? url.size() : query) : slash);
  std::string rest = query == std::string::npos ? "" : url.substr(query);
  return base + "/" + dbname + rest;
}

FreshPgDatabase::FreshPgDatabase() {
  admin_url_ = PgAdminUrl();
  if (admin_url_.empty()) return;
  static std::atomic<int> counter{0};
  name_ = "ferry_t_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  auto conn = OpenConnection(admin_url_);
  if (!conn.ok()) {
    ADD_FAILURE() << "admin connection: " << conn.status().ToString();
    return;
  }
  auto dropped = (*conn)->Exec("DROP DATABASE IF EXISTS " + QuoteIdent(name_));
  auto created = (*conn)->Exec("CREATE DATABASE " + QuoteIdent(name_));
  if (!created.ok()) {
    ADD_FAILURE() << "create database: " << created.status().ToString();
    return;
  }
  url_ = WithDatabase(admin_url_, name_);
}

FreshPgDatabase::~FreshPgDatabase() {
  if (url_.empty()) return;
  auto conn = OpenConnection(admin_url_);
  if (!conn.ok()) return;
  auto r = (*conn)->Exec("DROP DATABASE IF EXISTS " + QuoteIdent(name_) + " WITH (FORCE)");
  (void)r;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-test-XXXXXX").string();
  char* made = mkdtemp(tmpl.data());
  if (made == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return;
  }
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

void TempDir::Write(const std::string& name, const std::string& content) const {
  std::filesystem::path p = std::filesystem::path(path_) / name;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

namespace {
// ferry's caches (scan cache, status memo) go to one directory per test
// process, removed at exit, unless a test or the caller's environment sets
// FERRY_CACHE_DIR.
const std::string& TestCacheDir() {
  static const TempDir dir;
  return dir.path();
}
}  // namespace

RunResult RunFerry(const std::vector<std::string>& args, const std::vector<std::string>& env,
                   const std::string& cwd) {
  return RunBinary(FERRY_BINARY, args, env, cwd);
}

RunResult RunBinary(const std::string& binary, const std::vector<std::string>& args,
                    const std::vector<std::string>& env, const std::string& cwd) {
  const std::string cache_dir = TestCacheDir();
  RunResult result;
  int out_pipe[2];
  int err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) return result;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    close(out_pipe[0]);
    close(err_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
    if (!cache_dir.empty()) setenv("FERRY_CACHE_DIR", cache_dir.c_str(), /*overwrite=*/0);
    ExecInChild(binary, args, env);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

int StartFerry(const std::vector<std::string>& args, const std::string& out_file,
               const std::vector<std::string>& env) {
  pid_t pid = fork();
  if (pid == 0) {
    int out = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open((out_file + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int devnull = open("/dev/null", O_RDONLY);
    if (out < 0 || err < 0 || devnull < 0) _exit(127);
    dup2(out, 1);
    dup2(err, 2);
    dup2(devnull, 0);
    ExecInChild(FERRY_BINARY, args, env);
  }
  return pid;
}

int WaitFerry(int pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace ferry::testing
