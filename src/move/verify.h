// ferry verify: do two tables (PostgreSQL or SQLite, any pair) hold the same
// rows? Compares by primary key and reports rows missing on the target,
// extra on the target and changed (with the differing columns).
//
// In:     two database URLs, tables (or all), an optional row filter, or the
//         job id of a finished copy whose chunk ranges seed the comparison.
// How:    each table is cut into primary-key ranges (SplitByKey); each
//         database computes a count and a hash per range (hash = XOR of
//         row hashes over canonical row text, canonical.h), in one query
//         per run of adjacent ranges; ranges whose count or hash differ are
//         cut again (bisection, `fanout` pieces), down to ranges of at most
//         `leaf_rows` rows, whose rows are then read from both sides in key
//         order and compared column by column. Only counts and hashes cross
//         the link until the final small ranges.
// Out:    VerifyReport. A difference is a finding, not an error: Verify()
//         fails only when it cannot finish comparing (connection, missing
//         table, incompatible schemas).
// Consistency: each query sees its own snapshot; verify data that is not
//         being written (a finished copy, a paused replica).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "move/table_info.h"

namespace ferry {

struct VerifyOptions {
  std::string from_url;              // the source (reference) side
  std::string to_url;                // the target (checked) side
  std::vector<std::string> tables;   // "t" or "schema.t"; empty with all=true
  bool all = false;                  // every user table of the source
  std::string where;                 // SQL row filter applied on both sides ("" = all rows)
  std::string job_id;                // verify a copy job: its chunks on the target seed the ranges
  size_t max_report = 100;           // rows listed in the report (counts stay complete)
  int workers = 2;                   // connections per side
  bool hash_in_db = true;            // false: rows travel, ferry hashes them
  int64_t leaf_rows = 256;           // ranges this small are compared row by row
  int64_t fanout = 16;               // pieces a differing range is cut into
  int64_t max_initial_ranges = 4096; // first cut of a table
  // PostgreSQL 14+ tables of at least this many pages are shared among the
  // workers by pages in the first pass (TID range scans: each worker reads
  // its share of the table once, whatever order the keys are stored in);
  // smaller ones by key ranges.
  int64_t min_pages_to_split = 1024;
  // With a CQL side (verify_cql.h): compare only this percentage of the
  // relational side's rows, each looked up by key on the CQL side (0 = all).
  double sample_percent = 0;
  // Progress lines for humans ("public.t: 4096 ranges hashed, 3 differ").
  std::function<void(const std::string&)> progress;
};

struct ColumnDifference {
  std::string column;
  Value source;  // canonical text; nullopt is NULL
  Value target;
};

struct RowDifference {
  enum class Kind { kMissing, kExtra, kChanged };
  Kind kind = Kind::kMissing;
  KeyTuple key;                           // canonical text per key column
  std::vector<ColumnDifference> columns;  // kChanged only
};
std::string_view RowDifferenceKindName(RowDifference::Kind kind);  // "missing", "extra", "changed"

// How one side computed the first level's hashes (for --json and tuning).
struct FirstPassInfo {
  // "pages": each worker read a share of the table's pages (PostgreSQL 14+
  // plain tables of at least `min_pages_to_split` pages); "key ranges":
  // each worker read its own key ranges.
  std::string split;
  // "integer division" or "width_bucket" (PostgreSQL, one-column key: one
  // query groups its rows by range), "per range" (one query per range),
  // "rows read" (--no-hash-in-db).
  std::string grouping;
  int64_t queries = 0;  // first-level slices on this side (one query each when grouped)
};

struct TableVerifyResult {
  std::string table;                     // as given (or listed with --all)
  std::vector<std::string> key_columns;
  int64_t source_rows = 0, target_rows = 0;  // rows compared on each side
  int64_t missing = 0, extra = 0, changed = 0;  // complete counts
  int64_t ranges_hashed = 0;             // range hashes computed per side
  int64_t ranges_compared_by_row = 0;    // leaf ranges read row by row
  int64_t rows_fetched = 0;              // rows read from both sides in leaf ranges
  FirstPassInfo source_first_pass, target_first_pass;
  std::vector<RowDifference> differences;  // key order; truncated to the report's budget

  bool identical() const { return missing == 0 && extra == 0 && changed == 0; }
};

struct VerifyReport {
  std::vector<TableVerifyResult> tables;
  int64_t bytes_transferred = 0;  // payload both ways over both links (SQL, parameters, results)
  int64_t source_table_bytes = -1;  // on-disk size of the source tables (PostgreSQL), -1 unknown
  bool hash_in_db = true;
  size_t listed = 0;               // differences listed over all tables
  bool truncated = false;          // more differences exist than were listed
  double seconds = 0;

  bool identical() const;
  int64_t total_missing() const;
  int64_t total_extra() const;
  int64_t total_changed() const;
};

// Runs a whole verify. Errors: kInvalidArgument (bad URL, --where that does
// not parse, schemas that cannot be compared: the message names table and
// column), kNotFound (table or job missing), kFailedPrecondition (no primary
// key), connection codes.
Result<VerifyReport> Verify(const VerifyOptions& options);

}  // namespace ferry
