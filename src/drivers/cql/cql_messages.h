// Request bodies (QUERY, PREPARE, EXECUTE, BATCH) and RESULT bodies of the
// CQL native protocol v4 (sections 4.1.4-4.1.7 and 4.2.5).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/cql/cql_types.h"
#include "drivers/cql/cql_wire.h"
#include "ferry/status.h"

namespace ferry::cql {

struct ColumnSpec {
  std::string keyspace;
  std::string table;
  std::string name;
  CqlType type;
};

using RawValue = std::optional<std::string>;  // nullopt is null
using RawRow = std::vector<RawValue>;

enum class ResultKind : int32_t {
  kVoid = 1,
  kRows = 2,
  kSetKeyspace = 3,
  kPrepared = 4,
  kSchemaChange = 5,
};

struct ResultMessage {
  ResultKind kind = ResultKind::kVoid;
  // kRows
  std::vector<ColumnSpec> columns;  // empty when the request skipped metadata
  std::vector<RawRow> rows;
  std::optional<std::string> paging_state;  // more pages follow when set
  // kPrepared
  std::string prepared_id;
  std::vector<ColumnSpec> bind_columns;
  std::vector<uint16_t> pk_indexes;  // bind positions of the partition key, in key order
  // kSetKeyspace
  std::string keyspace;
  // kSchemaChange: "CREATED" / "UPDATED" / "DROPPED", "KEYSPACE" / "TABLE" / ...
  std::string change_type, change_target, change_keyspace, change_name;
};

Result<ResultMessage> ParseResult(std::string_view body);

struct QueryParams {
  Consistency consistency = Consistency::kLocalQuorum;
  std::vector<RawValue> values;
  bool skip_metadata = false;
  int32_t page_size = 5000;  // <= 0: no paging
  std::optional<std::string> paging_state;
  std::optional<Consistency> serial_consistency;
  std::optional<int64_t> timestamp;  // microseconds since the epoch
};

std::string QueryBody(std::string_view cql, const QueryParams& params);
std::string PrepareBody(std::string_view cql);
std::string ExecuteBody(std::string_view prepared_id, const QueryParams& params);

enum class BatchType : uint8_t { kLogged = 0, kUnlogged = 1, kCounter = 2 };
struct BatchStatement {
  std::string query_or_id;  // CQL text, or a prepared id when `prepared`
  bool prepared = false;
  std::vector<RawValue> values;
};
std::string BatchBody(BatchType type, const std::vector<BatchStatement>& statements,
                      Consistency consistency, std::optional<Consistency> serial);

}  // namespace ferry::cql
