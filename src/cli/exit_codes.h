// Exit codes of the ferry program. Stable: scripts depend on them.
// docs/exit-codes.md lists the same table; keep both in step.
#pragma once

#include "ferry/status.h"

namespace ferry::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,        // the operation failed (SQL error, failed migration, other)
  kExitUsage = 2,          // bad command line: unknown flag, missing argument
  kExitPending = 3,        // status/validate --exit-code: pending migrations or drift found
  kExitLockTimeout = 4,    // the migration lock (or a DDL lock) was not obtained in time
  kExitUnavailable = 5,    // cannot reach the database: refused, unreachable, timed out
  kExitPermission = 6,     // authentication or privilege failure
  kExitNotFound = 7,       // database, file or directory does not exist
  kExitInvalidInput = 8,   // bad URL, config, migration file or SQL: fix the input
  kExitNeedsHuman = 9,     // state needs a decision: failed migration, future database
  kExitDifferences = 10,   // verify found differences
  kExitUnsafe = 11,        // lint: error-level findings remain (lint; up without --allow-unsafe)
  kExitInternal = 70,      // a bug in ferry: please report it
};

// The exit code for a failed Status (kExitOk for ok).
int ExitCodeFor(const Status& status);

}  // namespace ferry::cli
