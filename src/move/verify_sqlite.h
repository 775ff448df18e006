// SQLite functions for verify (ferry_canon, ferry_row_hash, ferry_xor); see
// verify_sqlite.cc.
#pragma once

namespace ferry {

// Makes every SQLite connection opened from now on carry verify's SQL
// functions. Idempotent and thread-safe; call before opening connections.
void RegisterSqliteVerifyFunctions();

}  // namespace ferry
