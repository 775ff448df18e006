// ferry serve: flags and entry point (serve_command.cc).
#pragma once

#include <string>
#include <vector>

#include "cli/context.h"

namespace ferry::cli {

struct ServeArgs {
  std::string listen = "127.0.0.1:9187";  // --listen HOST:PORT
  std::vector<std::string> databases;     // --database URL (repeatable; default: DATABASE_URL)
  std::string token;                      // --token (or FERRY_SERVE_TOKEN)
  std::string connect_bound = "2s";       // --ready-timeout
};

// Serves until SIGINT/SIGTERM: exit 0 then; an error's exit code when the
// service cannot start (port in use, bad flags).
int RunServeCommand(const Context& ctx, const ServeArgs& args);

}  // namespace ferry::cli
