// What verify's stages share (private to src/move/verify*.cc): one side's
// connections (Side), how one table is read on a side (TableSide), the runs
// of adjacent key ranges hashed together, and the hashing stage's entry
// points (verify_hash.cc). verify.cc drives the levels and the row compare.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/numbers.h"
#include "drivers/registry.h"
#include "move/canonical.h"
#include "move/table_info.h"
#include "move/verify.h"

namespace ferry::verify_internal {

// Session settings under which PostgreSQL's output functions print the
// canonical forms (canonical.h).
inline constexpr const char* kPgSessionSetup =
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
    "SET extra_float_digits = 1; SET bytea_output = 'hex'; "
    "SET default_transaction_read_only = on; "
    // Verify runs its own parallel connections; short range queries gain
    // nothing from JIT or parallel workers, and the bucket query must not
    // sort (width_bucket groups are few; the planner cannot know).
    "SET jit = off; SET max_parallel_workers_per_gather = 0; SET enable_sort = off";

struct RangeHash {
  int64_t count = 0;
  int64_t hash = 0;
  bool operator==(const RangeHash&) const = default;
};

// One database: a few connections used in parallel, and a byte counter.
class Side {
 public:
  const char* role = "source";  // "source" or "target"
  std::string url;
  std::vector<std::unique_ptr<Connection>> conns;
  std::atomic<int64_t> bytes{0};

  bool pg() const { return conns.front()->engine() == Engine::kPostgres; }
  Connection& first() { return *conns.front(); }

  Status Open(const std::string& u, int workers) {
    url = u;
    ConnectOptions options;
    options.application_name = "ferry verify";
    options.read_only = true;  // verify reads both sides; a SQLite file is never created
    for (int i = 0; i < std::max(1, workers); ++i) {
      auto c = OpenConnection(u, options);
      if (!c.ok()) return std::move(c).TakeStatus().Prefix(std::string(role) + " database");
      if ((*c)->engine() == Engine::kPostgres) {
        auto r = (*c)->Exec(kPgSessionSetup);
        if (!r.ok()) return std::move(r).TakeStatus();
      }
      conns.push_back(std::move(*c));
    }
    return Status();
  }

  // Runs fn(conn, i) for i in [0, n) on all connections in parallel.
  Status ForEach(size_t n, const std::function<Status(Connection&, size_t)>& fn) {
    if (n == 0) return Status();
    std::atomic<size_t> next{0};
    std::mutex mu;
    Status first_error;
    auto work = [&](Connection& conn) {
      for (size_t i = next++; i < n; i = next++) {
        Status s = fn(conn, i);
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.ok()) first_error = std::move(s);
          next = n;
        }
      }
    };
    const size_t threads = std::min(conns.size(), n);
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(work, std::ref(*conns[t]));
    work(*conns[0]);
    for (auto& t : pool) t.join();
    return first_error;
  }

  void CountQuery(std::string_view sql, const Params& params) {
    int64_t n = static_cast<int64_t>(sql.size());
    for (const auto& p : params) n += p ? static_cast<int64_t>(p->size()) + 4 : 4;
    bytes += n;
  }
  void CountRow(const std::vector<Value>& row) {
    int64_t n = 0;
    for (const auto& v : row) n += v ? static_cast<int64_t>(v->size()) + 4 : 4;
    bytes += n;
  }
  Result<QueryResult> Query(Connection& conn, std::string_view sql, const Params& params) {
    CountQuery(sql, params);
    FERRY_ASSIGN_OR_RETURN(QueryResult r, conn.Query(sql, params));
    for (const auto& row : r.rows) CountRow(row);
    return r;
  }
};

// Runs a(), b() at the same time (one per side); returns the first error.
inline Status Both(const std::function<Status()>& a, const std::function<Status()>& b) {
  Status sa;
  std::thread t([&] { sa = a(); });
  Status sb = b();
  t.join();
  if (!sa.ok()) return sa;
  return sb;
}

// How one side of one table is read.
struct TableSide {
  TableInfo info;
  std::vector<size_t> columns;  // compared columns, indexes into info.columns (source order)
  std::vector<CanonKind> kinds;  // SQLite: kind per compared column
  std::string hash_expr;         // per-row hash (SQL)
  std::string value_list;        // canonical values of the compared columns (SQL)
  std::string where;             // "" or the user's filter
  // Pages of a PostgreSQL (14+) plain table of at least
  // VerifyOptions::min_pages_to_split pages, for the first pass's split by
  // pages; -1 when the split is by key (SQLite, older servers, partitioned
  // or small tables).
  int64_t pages = -1;

  std::string Filter(const KeyRange& range, Params& params) const {
    std::string pred = RangePredicate(info, range, params);
    if (!where.empty()) pred = fmt::format("({}) AND ({})", pred, where);
    return pred;
  }
};

inline std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}


// A run of adjacent ranges (each one's upper is the next one's lower) hashed
// together, and the results of both sides.
struct Run {
  std::vector<KeyRange> ranges;
  std::vector<RangeHash> source, target;
};

// Fills side.value_list and side.hash_expr for the engines on both sides.
void BuildReads(TableSide& side, bool pg, bool both_pg);

// Hashes every run on both sides at once; for the first level, says in
// `info` how each side did it.
Status HashRuns(Side& src, Side& tgt, const TableSide& ts, const TableSide& tt,
                std::vector<Run>& runs, bool first, bool hash_in_db, FirstPassInfo* src_info,
                FirstPassInfo* tgt_info);

}  // namespace ferry::verify_internal
