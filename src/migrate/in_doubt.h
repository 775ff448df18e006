// The statement in doubt after a killed run (no-transaction migrations).
//
// A run killed in the middle of a migration leaves its history row
// "running" with statements_done counting the statements confirmed
// before it died. The next statement may or may not have reached the
// server. On resume that one statement runs again; when it is a schema
// statement the server refuses with AlreadyExists, the killed run had
// applied it, and ferry counts it as done instead of failing. Any other
// error stays an error (a data statement in doubt cannot be told apart,
// which docs/cql.md says).
#pragma once

#include <string>
#include <string_view>

#include "ferry/status.h"

namespace ferry {

// True when `error`, from re-running the first statement after an
// interrupted run, means that run had applied it.
bool AppliedByInterruptedRun(const Status& error);

// The progress line for it: "statement N (line L) had been applied by the
// interrupted run (server: ...); counted as done".
std::string InDoubtMessage(const Status& error, int statement, int line);

}  // namespace ferry
