// Runs a program as a child process by fork/exec (no shell), with extra
// environment variables, stdout to a file or captured, stderr captured.
// Secrets handed to a child go in `env` (its environment), never in `argv`,
// which any user may read in `ps`.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ferry/status.h"

namespace ferry::checkpoint {

struct ChildSpec {
  std::vector<std::string> argv;  // argv[0] is the program's path
  // Set (or replace) in the child's environment; the rest is inherited.
  std::vector<std::pair<std::string, std::string>> env;
  std::string stdout_file;  // "" = capture stdout into ChildResult::out
};

struct ChildResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;     // stdout, when not sent to a file
  std::string err;     // stderr, at most its last 64 KiB
};

// kUnavailable when the child cannot be started; its exit code otherwise
// (a non-zero exit is not an error here: the caller names what failed).
Result<ChildResult> RunChild(const ChildSpec& spec);

// The executable `name` in `dir`, or on PATH when `dir` is empty;
// kNotFound saying where it looked and how to point ferry at it.
Result<std::string> FindProgram(const std::string& dir, const std::string& name);

}  // namespace ferry::checkpoint
