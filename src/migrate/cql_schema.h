// Schema drift on CQL (seed 003: "schema validation failed: missing table
// partition_stats"). CQL has no schema record table: what the applied
// migrations made is read from their up scripts, in order (CREATE TABLE,
// ALTER TABLE ADD / DROP / RENAME / WITH, DROP TABLE, DROP KEYSPACE), and
// compared with system_schema: a table or column they made that the live
// schema lacks, a column of another type (frozen<> aside), a primary key
// with other partition/clustering columns or clustering order, and a table
// option they set (default_time_to_live, gc_grace_seconds, compaction class)
// with another value are drift. Objects made by hand are not judged.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "migrate/cql_schema_shape.h"
#include "migrate/schema_record.h"

namespace ferry {

struct CqlAppliedScript {
  std::string version;
  std::string text;  // the up script as applied
};

struct CqlExpectedTable {
  std::string made_by;                         // version that created it
  std::map<std::string, std::string> columns;  // column -> version that added it
  std::map<std::string, std::string> types;    // column -> NormalizeCqlType
  CqlTableShape key;                           // partition and clustering columns
  // default_time_to_live, gc_grace_seconds, compaction (class short name)
  // -> {value, version that set it}; only those a migration set.
  std::map<std::string, std::pair<std::string, std::string>> options;
};

// "keyspace.table" -> what it should hold; unqualified names are in `keyspace`.
std::map<std::string, CqlExpectedTable> ExpectedCqlSchema(
    const std::vector<CqlAppliedScript>& applied, const std::string& keyspace);

// The tables and columns of `expected` missing from system_schema, and
// those whose types, keys or options differ.
Result<std::vector<SchemaDrift>> CompareCqlSchema(
    Connection& conn, const std::map<std::string, CqlExpectedTable>& expected);

}  // namespace ferry
