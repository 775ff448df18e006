// Comparing tables in two databases from an application: the library face
// of `ferry verify` (PostgreSQL, SQLite, CQL). Nothing is written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ferry/status.h"

namespace ferry {

struct VerifyRequest {
  std::string from_url;             // the reference side
  std::string to_url;               // the side checked against it
  std::vector<std::string> tables;  // "t" or "schema.t"
  bool all_tables = false;
  std::string where;                // one SQL condition applied on both sides
  int workers = 2;                  // connections per side
  double sample_percent = 0;        // with a CQL side: check this share of rows (0 = all)
  size_t max_listed = 100;          // differing rows listed (counts stay complete)
};

struct TableComparison {
  std::string table;
  int64_t source_rows = 0, target_rows = 0;
  int64_t missing = 0, extra = 0, changed = 0;  // complete counts
  // The first differing rows: "missing (5)", "changed (7): note", ...
  std::vector<std::string> listed;
  bool identical() const { return missing == 0 && extra == 0 && changed == 0; }
};

struct VerifyOutcome {
  std::vector<TableComparison> tables;
  double seconds = 0;
  bool identical() const {
    for (const auto& t : tables) {
      if (!t.identical()) return false;
    }
    return true;
  }
};

// Compares; differences are an ok() outcome that is not identical().
Result<VerifyOutcome> CompareTables(const VerifyRequest& request);

}  // namespace ferry
