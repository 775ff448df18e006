// Pre-checks of a copy that need more than one table's description: is the
// target the very database (and table) of the source, is --where one
// condition, how is a partitioned table copied.
//
// In:     open connections (read only: nothing here writes), option text.
// Out:    Status (kInvalidArgument for a copy onto itself or a --where that
//         is not one condition) or facts for the plan.
#pragma once

#include <string>
#include <string_view>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "move/table_info.h"

namespace ferry {

// Identity of the database behind a connection: PostgreSQL
// "postgres:<system identifier>:<database>" (pg_control_system(); when the
// role may not call it, the postmaster's start time and port stand in),
// SQLite "sqlite:<device>:<inode>" of the main file (so two spellings of one
// path, or a hard link, are the same), "" for an in-memory database.
Result<std::string> DatabaseIdentity(Connection& conn);

// Refuses a copy of `src` onto `dst` when both are the same table of the
// same database (same_database: the identities above are equal).
Status CheckNotSelfCopy(bool same_database, const TableInfo& src, const TableInfo& dst,
                        const std::string& source_name);

// --where must be one condition in the source's dialect: parsed as a WHERE
// clause with libpg_query on PostgreSQL, balanced parentheses outside
// quotes and comments and no ';' on SQLite (sql_fragment.h).
Status CheckWhereShape(const std::string& where, Engine source_engine);

// Pages of the largest partition of a partitioned PostgreSQL table (each
// partition has its own ctid space; ctid page ranges cut every partition),
// or of the table itself.
Result<int64_t> PagesToSplit(Connection& src, const TableInfo& t);

// What the plan says about a partitioned source or target ("" when neither
// is partitioned).
std::string PartitionNote(const TableInfo& src, bool target_exists, const TableInfo& dst);

}  // namespace ferry
