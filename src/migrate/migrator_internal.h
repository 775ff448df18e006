// Private declarations shared by the migrator's stage files (migrator.cc,
// migrator_lock.cc, migrator_plan.cc, migrator_up.cc, apply_one.cc,
// undo_one.cc, migrator_validate.cc). Not part of the library's API.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "ferry/status.h"
#include "migrate/migrator.h"

namespace ferry::migrator_internal {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point start);

// "repeatable" or "versioned", as history rows spell it.
HistoryKind KindOf(const Migration& m);

// Orders two version texts as versions (as text when one does not parse):
// -1, 0 or 1.
int CompareVersionText(const std::string& a, const std::string& b);

// Adds file:line and the statement to a server error (apply_one.cc); the
// statement is number `index` (0-based) of `total`.
Status StatementError(Status s, const Script& script, const Statement& stmt, int index, int total);

}  // namespace ferry::migrator_internal
