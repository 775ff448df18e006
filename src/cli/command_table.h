// The CLI's commands as one table. Each family of commands registers its
// subcommands and flags on the CLI11 app (only those the command line names,
// so a short run such as `ferry status` builds few options) and returns a
// Runner; after the parse, main.cc asks each runner in turn, and the one
// whose subcommand was chosen runs it: it only turns flags into a library
// call and prints the result.
//
// Adding a command: an Add function beside its family (cli_*.cc, the only
// files besides main.cc that include CLI11), its Run function in its own
// *_command.cc, and one row in CommandTable() (main.cc).
#pragma once

#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "cli/context.h"

namespace CLI {
class App;
}

namespace ferry::cli {

// Whether the command line may have chosen this first word ("" = all).
using Want = std::function<bool(std::string_view word)>;
// Runs the chosen subcommand and returns its exit code; nullopt when the
// command line chose none of this family's.
using Runner = std::function<std::optional<int>(const Context& ctx)>;

struct CommandFamily {
  std::vector<std::string_view> words;  // first words on the command line
  Runner (*add)(CLI::App& app, const Want& want);
};

// Every family, in the order `ferry --help` lists them (main.cc).
const std::vector<CommandFamily>& CommandTable();

Runner AddDoctorCommand(CLI::App& app, const Want& want);     // cli_ops.cc
Runner AddLintCommand(CLI::App& app, const Want& want);       // cli_ops.cc
Runner AddBackfillCommand(CLI::App& app, const Want& want);   // cli_data.cc
Runner AddVerifyCommand(CLI::App& app, const Want& want);     // cli_data.cc
Runner AddCopyCommand(CLI::App& app, const Want& want);       // cli_data.cc
Runner AddRedisFamily(CLI::App& app, const Want& want);       // cli_redis.cc
Runner AddServeCommand(CLI::App& app, const Want& want);      // cli_ops.cc
Runner AddRecommendCommand(CLI::App& app, const Want& want);  // cli_ops.cc
Runner AddPartitionCommands(CLI::App& app, const Want& want); // cli_ops.cc
Runner AddMigrateCommands(CLI::App& app, const Want& want);   // cli_migrate.cc
Runner AddSyncFamily(CLI::App& app, const Want& want);        // sync_command.cc
Runner AddCutoverCommand(CLI::App& app, const Want& want);    // cutover_command.cc
Runner AddCheckpointFamily(CLI::App& app, const Want& want);  // cli_checkpoint.cc

}  // namespace ferry::cli
