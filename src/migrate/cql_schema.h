// Schema drift on CQL (seed 003: "schema validation failed: missing table
// partition_stats"). CQL has no schema record table: what the applied
// migrations made is read from their up scripts, in order (CREATE TABLE,
// ALTER TABLE ADD / DROP / RENAME, DROP TABLE, DROP KEYSPACE), and compared
// with system_schema: a table or column they made that the live schema
// lacks is drift. Objects made by hand are not judged.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "migrate/schema_record.h"

namespace ferry {

struct CqlAppliedScript {
  std::string version;
  std::string text;  // the up script as applied
};

struct CqlExpectedTable {
  std::string made_by;                         // version that created it
  std::map<std::string, std::string> columns;  // column -> version that added it
};

// "keyspace.table" -> what it should hold; unqualified names are in `keyspace`.
std::map<std::string, CqlExpectedTable> ExpectedCqlSchema(
    const std::vector<CqlAppliedScript>& applied, const std::string& keyspace);

// The tables and columns of `expected` missing from system_schema.
Result<std::vector<SchemaDrift>> CompareCqlSchema(
    Connection& conn, const std::map<std::string, CqlExpectedTable>& expected);

}  // namespace ferry
