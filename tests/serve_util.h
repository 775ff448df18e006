// A `ferry serve` process for tests: started on a free loopback port,
// stopped (SIGTERM) when the object goes away.
#pragma once

#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace ferry::testing {

class ServeProcess {
 public:
  // `args` start with "serve"; --listen 127.0.0.1:0 and --json are added
  // (unless args give --listen), and the port is read from the
  // {"listening": ...} line.
  explicit ServeProcess(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    bool has_listen = false;
    for (const auto& a : args) has_listen |= a == "--listen";
    if (!has_listen) args.insert(args.end(), {"--listen", "127.0.0.1:0"});
    args.push_back("--json");
    out_ = dir_.File("serve.out");
    pid_ = StartFerry(args, out_, env);
    // Bounded wait for start-up (not an assertion on speed).
    for (int i = 0; i < 1200 && port_ == 0; ++i) {
      std::istringstream lines(ReadFile(out_));
      std::string line;
      while (std::getline(lines, line)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.contains("listening")) {
          std::string url = j["listening"].get<std::string>();
          port_ = std::stoi(url.substr(url.rfind(':') + 1));
        }
      }
      if (port_ == 0) {
        if (kill(pid_, 0) != 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      WaitFerry(pid_);
    }
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // Sends `sig` and waits: the exit code (128 + signal when killed by it).
  int StopWith(int sig) {
    kill(pid_, sig);
    int code = WaitFerry(pid_);
    pid_ = -1;
    return code;
  }

  bool ok() const { return port_ != 0; }
  int port() const { return port_; }
  std::string log() const { return ReadFile(out_) + ReadFile(out_ + ".err"); }

  httplib::Result Get(const std::string& path, const std::string& token = "") {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(std::chrono::seconds(60));
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return c.Get(path, h);
  }

 private:
  TempDir dir_;
  std::string out_;
  int pid_ = -1;
  int port_ = 0;
};

}  // namespace ferry::testing
