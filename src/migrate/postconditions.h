// A migration's post-conditions (sqitch calls them verify steps): queries
// that must return no rows, or a single true, after its up script ran. From
// a `-- ferry:verify` section, a golang-migrate VERSION_name.verify.sql or a
// diesel verify.sql. Not to be confused with `ferry verify` (move/verify.h),
// which compares the rows of two databases.
#pragma once

#include "drivers/connection.h"
#include "ferry/status.h"
#include "migrate/source.h"

namespace ferry {

// Runs every statement of `verify` on `conn` (inside the caller's
// transaction when one is open, so a failure can roll the migration back).
// Ok when each returns no rows, or exactly one row with one true value.
// Otherwise kFailedPrecondition naming file:line, the query and the first
// offending rows (context: file, line, statement, verify=failed). A query
// the server rejects keeps its own code, with file:line added.
Status CheckPostconditions(Connection& conn, const Script& verify);

}  // namespace ferry
