// A keyspace's schema as CQL text, built from system_schema (like cqlsh's
// DESCRIBE KEYSPACE): the keyspace with its replication, user-defined types
// (each after the types it uses), tables (columns, primary key, clustering
// order, options), secondary indexes and materialized views. Every name is
// quoted and qualified with the keyspace, so replacing "<keyspace>" in the
// text re-creates the schema under another name. `ferry up --backup` writes
// it before migrating.
#pragma once

#include <string>

#include "drivers/connection.h"
#include "ferry/status.h"

namespace ferry::cql {

Result<std::string> DescribeKeyspace(Connection& conn, const std::string& keyspace);

}  // namespace ferry::cql
