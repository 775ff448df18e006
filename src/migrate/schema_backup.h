// `ferry up --backup PATH` (and EnsureReady's backup option): before
// migrating, the schema is written as statements that re-create it
// (EngineTraits::DescribeSchema; CQL: the keyspace, built from
// system_schema). PATH is a file, or an existing directory that gets
// <scope>-<UTC time>.cql. The path is returned to be printed and reported.
#pragma once

#include <string>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "migrate/migrator.h"

namespace ferry {

// "" when options.backup is empty or it is a dry run.
Result<std::string> BackupBeforeUp(Connection& conn, const std::string& scope,
                                   const MigratorOptions& options);

}  // namespace ferry
