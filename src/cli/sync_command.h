// ferry sync: flags and entry point (sync_command.cc).
#pragma once

#include "cli/context.h"

namespace CLI {
class App;
}

namespace ferry::cli {

// Registers `ferry sync` and its flags on `app`; the values live in
// sync_command.cc until RunSyncCommand reads them.
CLI::App* AddSyncCommand(CLI::App& app);

// Runs the sync, or --status / --drop. Exit 0 when it stopped as asked
// (caught up, --stop-after, Ctrl-C); an error's exit code otherwise
// (9 for a DDL change or a state that needs a human).
int RunSyncCommand(const Context& ctx);

}  // namespace ferry::cli
