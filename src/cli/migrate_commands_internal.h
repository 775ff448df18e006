// Private declarations shared by the migration commands' files
// (migrate_commands.cc, init_commands.cc). Not part of the library's API.
#pragma once

#include <string>

#include "cli/context.h"
#include "migrate/migrator.h"

namespace ferry::cli {

// The migrator's options from ferry.toml, the environment and the flags.
Result<MigratorOptions> OptionsFrom(const Context& ctx, const MigrateArgs& args);

// `ferry init`: a ferry.toml and the migrations directory.
int RunInit(const Context& ctx);
// `ferry new`: the next migration file.
int RunNew(const Context& ctx, const MigrateArgs& args);

}  // namespace ferry::cli
