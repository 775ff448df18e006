// The shape of a CQL table beyond its column names, read from CREATE TABLE /
// ALTER TABLE text and from system_schema, for schema drift (cql_schema.h):
// column types, the primary key (partition columns, clustering columns and
// their order) and the table options migrations set (default_time_to_live,
// gc_grace_seconds, compaction class).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "migrate/cql_tokens.h"

namespace ferry {

struct CqlTableShape {
  std::vector<std::string> partition_key;
  std::vector<std::pair<std::string, std::string>> clustering;  // column, "asc" | "desc"
};

// A type as system_schema.columns.type writes it: lower case, no spaces,
// varchar as text ("MAP<TEXT, INT>" -> "map<text,int>").
std::string NormalizeCqlType(const std::string& type);

// The primary key of CREATE TABLE's column list opening at token `open`
// (inline `c type PRIMARY KEY` or `PRIMARY KEY ((a, b), c)`), with the
// clustering order of a later WITH CLUSTERING ORDER BY.
CqlTableShape ReadTableShape(const cql_tokens::Tokens& t, size_t open);

// The options of a WITH clause from token `from` that drift compares:
// default_time_to_live, gc_grace_seconds (the number) and compaction (its
// class, short name: "LeveledCompactionStrategy").
std::map<std::string, std::string> ReadTableOptions(const cql_tokens::Tokens& t, size_t from);

// `ADD c type` / `ADD (c1 t1, c2 t2)` from token i: column -> normalized type.
std::map<std::string, std::string> ReadAddedColumns(const cql_tokens::Tokens& t, size_t i);

// The short class name in a compaction map as the driver prints it.
std::string CompactionClass(const std::string& text);

}  // namespace ferry
