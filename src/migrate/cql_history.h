// The history store for engines whose tables are not SQL
// (Feature::kSqlTables absent: CQL). History (history.h) hands its calls
// here; the rows and their meaning are the same as on SQL engines.
//
// Tables, in the connection's keyspace unless the name is qualified:
//   <table> (part text, id bigint, version text, ... every HistoryRow field,
//            PRIMARY KEY ((part), id)): all rows in one partition
//            (part = 'history'), clustered by id, so Load() is one ordered
//            partition read. CQL has no generated keys: a new row's id is
//            the highest id plus one, read and written under the migration
//            lease (nothing else writes the history).
//   <table>_meta (key text PRIMARY KEY, value text): format_version and
//            checksum_algorithm, written IF NOT EXISTS (a lightweight
//            transaction: never overwrites what a newer ferry wrote).
// After each CREATE TABLE the store waits for schema agreement
// (EngineTraits::SettleSchema). Every value is bound, never spliced.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"

namespace ferry {

struct HistoryRow;

class CqlHistory {
 public:
  // `table` unquoted, "table" or "keyspace.table".
  CqlHistory(Connection* conn, std::string table);

  Result<bool> Exists();
  Status Ensure();
  Status CheckFormat();
  Result<std::vector<HistoryRow>> Load();
  Result<int64_t> Save(const HistoryRow& row);
  Status MarkProgress(int64_t id, int statements_done, int64_t rows_affected);

 private:
  Result<int64_t> NextId();

  Connection* conn_;
  std::string table_;
  std::string quoted_;
  std::string meta_quoted_;
  std::chrono::milliseconds agreement_timeout_{60'000};
};

}  // namespace ferry
