// ferry recommend on a CQL database (Apache Cassandra 4.1+, ScyllaDB): the
// node's per-table statistics from its virtual tables (system_views) and the
// tables' options from system_schema. Read-only, like the PostgreSQL checks.
//
// Checks: partitions past `cql_large_partition_mib` (max_partition_size),
// reads that scan many tombstones (tombstones_per_read, p99 past
// `cql_tombstones_p99`), and tables whose rows expire (default_time_to_live)
// but whose compaction is not time-windowed. Statistics are this node's
// (the one the URL reached first); a server without system_views
// (ScyllaDB keeps them elsewhere) gets those checks listed as skipped.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ops/recommend.h"
#include "ops/recommend_internal.h"

namespace ferry {
namespace {

std::string QuoteCql(const std::string& name) {
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string Table(const QueryResult& r, size_t row) {
  return QuoteCql(r.Text(row, 0)) + "." + QuoteCql(r.Text(row, 1));
}

// The keyspaces to look at: the URL's, or every one that is not Cassandra's.
Result<std::vector<std::string>> Keyspaces(Connection& conn, const std::string& url_keyspace) {
  if (!url_keyspace.empty()) return std::vector<std::string>{url_keyspace};
  FERRY_ASSIGN_OR_RETURN(QueryResult r,
                         conn.Query("SELECT keyspace_name FROM system_schema.keyspaces"));
  std::vector<std::string> out;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const std::string& k = r.Text(i, 0);
    if (k.rfind("system", 0) == 0 || k == "ferry") continue;
    out.push_back(k);
  }
  return out;
}

bool InScope(const std::vector<std::string>& keyspaces, const std::string& k) {
  for (const auto& s : keyspaces) {
    if (s == k) return true;
  }
  return false;
}

void LargePartitions(Connection& conn, const RecommendOptions& o,
                     const std::vector<std::string>& keyspaces, RecommendReport& report) {
  auto r = conn.Query("SELECT keyspace_name, table_name, mebibytes FROM system_views.max_partition_size");
  if (!r.ok()) {
    report.skipped.push_back("large partitions: system_views.max_partition_size is not readable (" +
                             r.status().message() + "); use nodetool tablestats");
    return;
  }
  for (size_t i = 0; i < r->rows.size(); ++i) {
    if (!InScope(keyspaces, r->Text(i, 0))) continue;
    const int64_t mib = recommend_internal::Int(*r, i, 2);
    if (mib < o.cql_large_partition_mib) continue;
    report.recommendations.push_back(
        {mib >= 10 * o.cql_large_partition_mib ? 1 : 2, "large_partition", Table(*r, i),
         fmt::format("largest partition {} MiB on this node (flagged from {} MiB): reads and "
                     "compactions of it are slow, repairs stream it whole",
                     mib, o.cql_large_partition_mib),
         "add a bucket (a day or hour of the time column) to the partition key in a new table, "
         "move the rows, switch the application",
         fmt::format("-- e.g. PRIMARY KEY ((<key>, bucket), <clustering>) in a new table; then "
                     "copy with a [[copy.map]] bucket = \"day(<time column>)\" (docs/copy.md)")});
  }
}

void Tombstones(Connection& conn, const RecommendOptions& o,
                const std::vector<std::string>& keyspaces, RecommendReport& report) {
  auto r = conn.Query(
      "SELECT keyspace_name, table_name, count, p99th, max FROM system_views.tombstones_per_read");
  if (!r.ok()) {
    report.skipped.push_back("tombstones: system_views.tombstones_per_read is not readable (" +
                             r.status().message() + ")");
    return;
  }
  for (size_t i = 0; i < r->rows.size(); ++i) {
    if (!InScope(keyspaces, r->Text(i, 0))) continue;
    const int64_t reads = recommend_internal::Int(*r, i, 2);
    const double p99 = recommend_internal::Dbl(*r, i, 3);
    if (reads == 0 || p99 < o.cql_tombstones_p99) continue;
    report.recommendations.push_back(
        {2, "tombstone_heavy", Table(*r, i),
         fmt::format("reads scan many tombstones: p99 {:.0f}, max {:.0f} per read over {} reads "
                     "(flagged from {:.0f})",
                     p99, recommend_internal::Dbl(*r, i, 4), reads, o.cql_tombstones_p99),
         "stop deleting (or writing NULLs) inside hot partitions: model deletions as expiring "
         "rows (TTL) in time buckets, and drop whole buckets instead of rows",
         fmt::format("SELECT gc_grace_seconds, default_time_to_live FROM system_schema.tables "
                     "WHERE keyspace_name = '{}' AND table_name = '{}';",
                     r->Text(i, 0), r->Text(i, 1))});
  }
}

void Compaction(Connection& conn, const std::vector<std::string>& keyspaces,
                RecommendReport& report) {
  for (const std::string& ks : keyspaces) {
    auto r = conn.Query(
        "SELECT keyspace_name, table_name, default_time_to_live, compaction "
        "FROM system_schema.tables WHERE keyspace_name = ?",
        {ks});
    if (!r.ok()) {
      report.skipped.push_back("compaction: system_schema.tables of " + ks + ": " +
                               r.status().message());
      continue;
    }
    for (size_t i = 0; i < r->rows.size(); ++i) {
      const int64_t ttl = recommend_internal::Int(*r, i, 2);
      if (ttl <= 0 || r->Text(i, 3).find("TimeWindowCompactionStrategy") != std::string::npos) {
        continue;
      }
      report.recommendations.push_back(
          {3, "compaction", Table(*r, i),
           fmt::format("rows expire (default_time_to_live {} s) but compaction is not "
                       "time-windowed: expired rows linger in large SSTables",
                       ttl),
           "use TimeWindowCompactionStrategy with a window of about a tenth of the TTL",
           fmt::format("ALTER TABLE {} WITH compaction = {{'class': "
                       "'TimeWindowCompactionStrategy', 'compaction_window_unit': '{}', "
                       "'compaction_window_size': 1}};",
                       Table(*r, i), ttl >= 10 * 86400 ? "DAYS" : "HOURS")});
    }
  }
}

}  // namespace

namespace recommend_internal {

Status RecommendCql(Connection& conn, const RecommendOptions& options,
                    const std::string& url_keyspace, RecommendReport& report) {
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> keyspaces, Keyspaces(conn, url_keyspace));
  LargePartitions(conn, options, keyspaces, report);
  Tombstones(conn, options, keyspaces, report);
  Compaction(conn, keyspaces, report);
  report.matrix_verdict = "seed 000's decision matrix is for a PostgreSQL source: not evaluated";
  return Status();
}

}  // namespace recommend_internal
}  // namespace ferry
