// Checks of user-written SQL fragments (--where, --set, --check) before
// ferry splices them into its own statements.
//
// In:     the fragment text and the flag it came from (for the message).
// Out:    Status: kInvalidArgument naming the flag, the parser's message and
//         an excerpt of the fragment when the fragment is not of the allowed
//         shape; OK otherwise. Nothing touches a database.
// Why:    a condition is spliced as "(<key range>) AND (\n<cond>\n)"; one
//         that closes the parenthesis (`id <= 100) OR (id <= 100`) would
//         escape the key range, so it must stand alone as one expression.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ferry/status.h"

namespace ferry {

// Parses `sql` with the PostgreSQL parser (libpg_query); the one statement's
// tree as JSON, or kInvalidArgument naming `what`.
Result<nlohmann::json> ParseSqlFragment(const std::string& sql, std::string_view what,
                                        std::string_view fragment);

// A PostgreSQL boolean condition: parses alone as "SELECT 1 WHERE <cond>"
// with no ORDER BY, LIMIT, ... after it. "" is OK (no condition).
Status CheckPgCondition(std::string_view flag, const std::string& cond);

// A SQLite condition (SQLite's own syntax, which the PostgreSQL parser does
// not take): the parentheses balance outside quotes and comments, never
// close more than they open, and there is no ';'. So "(" + cond + "\n)" is
// one parenthesized expression. "" is OK.
Status CheckSqliteCondition(std::string_view flag, const std::string& cond);

// One read-only SELECT (PostgreSQL): no data-modifying statement anywhere in
// it (INSERT/UPDATE/DELETE/MERGE in a WITH), no SELECT INTO, no FOR UPDATE.
// "" is OK.
Status CheckReadOnlyQuery(std::string_view flag, const std::string& query);

}  // namespace ferry
