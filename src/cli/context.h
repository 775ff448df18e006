// What every command receives after the command line is parsed.
#pragma once

#include <string>

#include "core/config.h"

namespace ferry::cli {

struct Context {
  Config config;       // flags > environment > ferry.toml > defaults
  bool json = false;   // machine-readable output on stdout
  bool quiet = false;  // no progress or chatter, results only
};

// Each returns the process exit code (cli/exit_codes.h).
int RunDoctor(const Context& ctx, const std::string& url);

}  // namespace ferry::cli
