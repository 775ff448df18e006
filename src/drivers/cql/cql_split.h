// Splits a CQL script into statements at top-level semicolons.
//
// Understood: '...' strings ('' escapes), "..." identifiers, $$...$$ strings
// (function bodies), -- and // line comments, /* */ comments, and
// BEGIN [UNLOGGED|COUNTER] BATCH ... APPLY BATCH, whose inner semicolons do
// not end the statement.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry::cql {

struct CqlStatement {
  std::string text;   // without leading comments/space and the final ';'
  size_t offset = 0;  // byte offset of `text` in the script
  int line = 1;       // line of its first token (first_line based)
  int column = 1;     // 1-based column of its first token
};

// kInvalidArgument for an unterminated string, identifier or comment,
// naming its line.
Result<std::vector<CqlStatement>> SplitCql(std::string_view script, int first_line = 1);

// The leading keywords of a statement in upper case ("CREATE TABLE",
// "ALTER KEYSPACE", "INSERT"), up to `max_words` words.
std::string LeadingKeywords(std::string_view statement, int max_words = 2);
// CREATE/ALTER/DROP of a keyspace, table, type, index, view, function,
// aggregate or trigger: after it ferry waits for schema agreement.
bool IsSchemaChange(std::string_view statement);

}  // namespace ferry::cql
