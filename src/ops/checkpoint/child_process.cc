// Child processes for the checkpoint tools: fork/exec with an environment
// built before the fork (only async-signal-safe calls run in the child).
#include "ops/checkpoint/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

extern char** environ;

namespace ferry::checkpoint {
namespace {

constexpr size_t kMaxErr = 64 * 1024;

std::vector<std::string> ChildEnvironment(
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    bool replaced = false;
    for (const auto& [key, value] : extra) {
      if (entry.size() > key.size() && entry.starts_with(key) && entry[key.size()] == '=') {
        replaced = true;
      }
    }
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& [key, value] : extra) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Reads the child's pipes until both close.
void Drain(int out_fd, int err_fd, ChildResult* r) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_count = (out_fd >= 0 ? 1 : 0) + 1;
  if (out_fd < 0) fds[0].fd = -1;
  char buf[16384];
  while (open_count > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
        continue;
      }
      std::string& into = i == 0 ? r->out : r->err;
      into.append(buf, static_cast<size_t>(n));
      if (i == 1 && into.size() > kMaxErr) into.erase(0, into.size() - kMaxErr);
    }
  }
}

}  // namespace

Result<ChildResult> RunChild(const ChildSpec& spec) {
  if (spec.argv.empty()) return Status(StatusCode::kInternal, "RunChild: no program");
  std::vector<std::string> args = spec.argv;
  std::vector<std::string> env = ChildEnvironment(spec.env);
  std::vector<char*> argv = Pointers(args);
  std::vector<char*> envp = Pointers(env);
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  int out_file = -1;
  if (spec.stdout_file.empty()) {
    if (pipe2(out_pipe, O_CLOEXEC) != 0) {
      return Status(StatusCode::kUnavailable, fmt::format("pipe: {}", std::strerror(errno)));
    }
  } else {
    out_file = open(spec.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out_file < 0) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("cannot write {}: {}", spec.stdout_file, std::strerror(errno)));
    }
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    if (out_file >= 0) close(out_file);
    return Status(StatusCode::kUnavailable, fmt::format("pipe: {}", std::strerror(errno)));
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_file >= 0 ? out_file : out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  if (out_file >= 0) close(out_file);
  if (out_pipe[1] >= 0) close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    if (out_pipe[0] >= 0) close(out_pipe[0]);
    close(err_pipe[0]);
    return Status(StatusCode::kUnavailable,
                  fmt::format("could not start {}: {}", spec.argv[0], std::strerror(errno)));
  }
  ChildResult r;
  Drain(out_pipe[0], err_pipe[0], &r);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (r.exit_code == 127 && r.err.empty()) {
    r.err = fmt::format("{} could not be executed", spec.argv[0]);
  }
  return r;
}

Result<std::string> FindProgram(const std::string& dir, const std::string& name) {
  if (!dir.empty()) {
    std::string path = (std::filesystem::path(dir) / name).string();
    if (access(path.c_str(), X_OK) == 0) return path;
    return Status(StatusCode::kNotFound,
                  fmt::format("{} not found in {} (--pg-bin / [checkpoint] pg_bin); point it at "
                              "the bin folder of a PostgreSQL client as new as the server",
                              name, dir));
  }
  const char* path_env = std::getenv("PATH");
  std::stringstream paths(path_env != nullptr ? path_env : "/usr/bin:/bin");
  std::string entry;
  while (std::getline(paths, entry, ':')) {
    if (entry.empty()) continue;
    std::string path = (std::filesystem::path(entry) / name).string();
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return Status(StatusCode::kNotFound,
                fmt::format("{} not found on PATH; install the PostgreSQL client (Debian: "
                            "postgresql-client) or pass --pg-bin DIR / set [checkpoint] pg_bin",
                            name));
}

}  // namespace ferry::checkpoint
