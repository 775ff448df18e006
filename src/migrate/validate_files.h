// `ferry validate` without a database: the files alone, judged by the rules
// of one engine (PostgreSQL's parser, or SQLite's), with nothing opened or
// created. What needs a database (applied checksums, history, live schema)
// is not checked; the caller says so.
#pragma once

#include <string>
#include <vector>

#include "ferry/status.h"
#include "migrate/migrator.h"

namespace ferry {

// Scans options.dir and plans every up and down script for `engine`
// ("postgres" or "sqlite"): the problems found (parse, source, compat),
// empty when the files are fine. kInvalidArgument for another engine name.
Result<std::vector<ValidationProblem>> ValidateFiles(const MigratorOptions& options,
                                                     const std::string& engine);

}  // namespace ferry
