#include "ops/recommend.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "core/url.h"
#include "drivers/registry.h"
#include "observe/event.h"
#include "ops/recommend_internal.h"

namespace ferry {

namespace recommend_internal {

int64_t Int(const QueryResult& r, size_t row, size_t col) {
  const std::string& t = r.Text(row, col);
  return t.empty() ? 0 : std::stoll(t);
}

double Dbl(const QueryResult& r, size_t row, size_t col) {
  const std::string& t = r.Text(row, col);
  return t.empty() ? 0 : std::stod(t);
}

}  // namespace recommend_internal

namespace {

std::string QuoteIdent(const std::string& name) {
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string Qualified(const std::string& schema, const std::string& name) {
  return QuoteIdent(schema) + "." + QuoteIdent(name);
}

using recommend_internal::Dbl;
using recommend_internal::Int;

std::string Bytes(int64_t b) {
  if (b >= (1LL << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(b) / (1LL << 30));
  if (b >= (1LL << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1LL << 20));
  return fmt::format("{} kB", b / 1024);
}

class Analyzer {
 public:
  Analyzer(Connection& conn, const RecommendOptions& o, RecommendReport& report)
      : conn_(conn), o_(o), r_(report) {}

  // Runs `sql`; on failure records the check as skipped.
  bool Run(const std::string& check, const std::string& sql, QueryResult* out) {
    auto q = conn_.Query(sql);
    if (!q.ok()) {
      r_.skipped.push_back(check + ": " + RedactSecrets(q.status().message()));
      return false;
    }
    *out = std::move(*q);
    return true;
  }

  void Add(int priority, std::string check, std::string subject, std::string finding,
           std::string action, std::string command) {
    r_.recommendations.push_back({priority, std::move(check), std::move(subject),
                                  std::move(finding), std::move(action), std::move(command)});
  }

  void Int4Keys() {
    QueryResult q;
    if (!Run("int4_exhaustion",
             "SELECT s.schemaname, s.sequencename, COALESCE(s.last_value, 0), "
             "       tn.nspname, t.relname, a.attname "
             "FROM pg_sequences s "
             "JOIN pg_class sc ON sc.relname = s.sequencename "
             "JOIN pg_namespace sn ON sn.oid = sc.relnamespace AND sn.nspname = s.schemaname "
             "JOIN pg_depend d ON d.objid = sc.oid AND d.refobjsubid > 0 "
             "JOIN pg_class t ON t.oid = d.refobjid "
             "JOIN pg_namespace tn ON tn.oid = t.relnamespace "
             "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
             "WHERE a.atttypid = 'int4'::regtype",
             &q)) {
      return;
    }
    for (size_t i = 0; i < q.rows.size(); ++i) {
      const double used = static_cast<double>(Int(q, i, 2)) / 2147483647.0;
      if (used < o_.int4_warn_ratio) continue;
      const std::string table = Qualified(q.Text(i, 3), q.Text(i, 4));
      Add(used >= 0.8 ? 1 : 2, "int4_exhaustion",
          q.Text(i, 3) + "." + q.Text(i, 4) + "." + q.Text(i, 5),
          fmt::format("integer key {} has used {:.0f}% of its 2^31 range (sequence at {})",
                      q.Text(i, 5), used * 100, q.Text(i, 2)),
          "widen the column to bigint online (expand/contract) before the sequence runs out",
          fmt::format("-- ferry:expand\n-- change {} column {} type bigint", table,
                      QuoteIdent(q.Text(i, 5))));
    }
  }

  void NoPrimaryKey() {
    QueryResult q;
    if (!Run("no_primary_key",
             "SELECT n.nspname, c.relname, GREATEST(c.reltuples, 0)::bigint "
             "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
             "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', "
             "'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
             "AND c.relname NOT LIKE 'ferry\\_%' "
             "AND NOT EXISTS (SELECT 1 FROM pg_constraint p WHERE p.conrelid = c.oid "
             "AND p.contype = 'p') ORDER BY 1, 2",
             &q)) {
      return;
    }
    for (size_t i = 0; i < q.rows.size(); ++i) {
      Add(2, "no_primary_key", q.Text(i, 0) + "." + q.Text(i, 1),
          fmt::format("no primary key (about {} rows)", q.Text(i, 2)),
          "add a primary key: ferry copy and verify cut tables by key (without one, copy "
          "falls back to page ranges and verify refuses the table)",
          fmt::format("ALTER TABLE {} ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY "
                      "PRIMARY KEY;  -- or ADD PRIMARY KEY (existing unique columns)",
                      Qualified(q.Text(i, 0), q.Text(i, 1))));
    }
  }

  void Indexes() {
    QueryResult q;
    if (Run("unused_index",
            "SELECT s.schemaname, s.indexrelname, s.relname, pg_relation_size(s.indexrelid) "
            "FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid "
            "WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary "
            "AND pg_relation_size(s.indexrelid) >= " +
                std::to_string(o_.unused_index_min_bytes) + " ORDER BY 4 DESC",
            &q)) {
      for (size_t i = 0; i < q.rows.size(); ++i) {
        Add(4, "unused_index", q.Text(i, 0) + "." + q.Text(i, 1),
            fmt::format("never scanned since statistics were reset; {} on {}", Bytes(Int(q, i, 3)),
                        q.Text(i, 2)),
            "drop it if no rare job needs it (check replicas too): every write pays for it",
            fmt::format("DROP INDEX CONCURRENTLY {};", Qualified(q.Text(i, 0), q.Text(i, 1))));
      }
    }
    if (Run("duplicate_index",
            "SELECT n.nspname, min(ic.relname), max(ic.relname), t.relname "
            "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "GROUP BY n.nspname, t.relname, i.indrelid, i.indkey::text, i.indclass::text, "
            "COALESCE(pg_get_expr(i.indexprs, i.indrelid), ''), "
            "COALESCE(pg_get_expr(i.indpred, i.indrelid), '') HAVING count(*) > 1",
            &q)) {
      for (size_t i = 0; i < q.rows.size(); ++i) {
        Add(3, "duplicate_index", q.Text(i, 0) + "." + q.Text(i, 2),
            fmt::format("same columns, operator classes and predicate as {} on {}", q.Text(i, 1),
                        q.Text(i, 3)),
            "drop the duplicate (keep the one a constraint uses)",
            fmt::format("DROP INDEX CONCURRENTLY {};", Qualified(q.Text(i, 0), q.Text(i, 2))));
      }
    }
  }

  void BloatAndSize() {
    QueryResult q;
    if (!Run("table_stats",
             "SELECT s.schemaname, s.relname, s.n_live_tup, s.n_dead_tup, "
             "pg_total_relation_size(s.relid), "
             "(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = s.relid AND a.attnum > 0 "
             " AND NOT a.attisdropped AND a.atttypid IN ('timestamptz'::regtype, "
             " 'timestamp'::regtype, 'date'::regtype) ORDER BY a.attnum LIMIT 1) "
             "FROM pg_stat_user_tables s WHERE s.relname NOT LIKE 'ferry\\_%' ORDER BY 5 DESC",
             &q)) {
      return;
    }
    for (size_t i = 0; i < q.rows.size(); ++i) {
      const std::string name = q.Text(i, 0) + "." + q.Text(i, 1);
      const int64_t live = Int(q, i, 2), dead = Int(q, i, 3), bytes = Int(q, i, 4);
      if (dead >= 10'000 && dead * 5 > live) {
        Add(3, "bloat", name,
            fmt::format("{} dead rows for {} live ({:.0f}%)", dead, live,
                        100.0 * static_cast<double>(dead) / static_cast<double>(live + dead)),
            "vacuum it, and check autovacuum settings for this table",
            fmt::format("VACUUM (ANALYZE) {};", Qualified(q.Text(i, 0), q.Text(i, 1))));
      }
      if (bytes >= o_.large_table_bytes && !q.Text(i, 5).empty()) {
        Add(3, "partition_candidate", name,
            fmt::format("{} with time column {}", Bytes(bytes), q.Text(i, 5)),
            "partition by range of the time column, then copy the history into the partitions",
            fmt::format("CREATE TABLE {}_p (LIKE {} INCLUDING ALL) PARTITION BY RANGE ({});",
                        q.Text(i, 1), Qualified(q.Text(i, 0), q.Text(i, 1)),
                        QuoteIdent(q.Text(i, 5))));
      }
    }
  }

  void LongTransactions() {
    QueryResult q;
    if (!Run("long_transaction",
             fmt::format("SELECT pid, COALESCE(usename, ''), COALESCE(application_name, ''), "
                         "EXTRACT(EPOCH FROM now() - xact_start)::bigint, state "
                         "FROM pg_stat_activity WHERE xact_start IS NOT NULL "
                         "AND pid <> pg_backend_pid() AND now() - xact_start > interval '{} s' "
                         "ORDER BY 4 DESC",
                         o_.long_transaction.count()),
             &q)) {
      return;
    }
    for (size_t i = 0; i < q.rows.size(); ++i) {
      Add(2, "long_transaction", "pid " + q.Text(i, 0),
          fmt::format("transaction open for {} s ({}, {}, {})", q.Text(i, 3), q.Text(i, 1),
                      q.Text(i, 2), q.Text(i, 4)),
          "it holds back vacuum and blocks DDL (migrations queue behind it); end it or fix the "
          "application",
          fmt::format("SELECT pg_cancel_backend({});  -- pg_terminate_backend to end the session",
                      q.Text(i, 0)));
    }
  }

  void History() {
    QueryResult q;
    if (!Run("history", "SELECT to_regclass(" + PgText(o_.history_table) + ") IS NOT NULL", &q) ||
        q.Text(0, 0) != "t") {
      return;
    }
    if (!Run("history",
             fmt::format("SELECT version, script, status, COALESCE(duration_ms, 0), "
                         "COALESCE(error_message, '') FROM {} WHERE status = 'failed' OR "
                         "(status = 'success' AND duration_ms >= {}) ORDER BY id DESC LIMIT 20",
                         o_.history_table, o_.slow_migration_ms),
             &q)) {
      return;
    }
    for (size_t i = 0; i < q.rows.size(); ++i) {
      if (q.Text(i, 2) == "failed") {
        Add(1, "failed_migration", q.Text(i, 1),
            "migration " + q.Text(i, 0) + " failed: " + RedactSecrets(q.Text(i, 4)).substr(0, 200),
            "fix the file or the data, then run it again (or accept it after a manual fix)",
            "ferry status && ferry up   # or: ferry repair --reason \"...\"");
      } else {
        Add(4, "slow_migration", q.Text(i, 1),
            fmt::format("migration {} took {} s", q.Text(i, 0), Int(q, i, 3) / 1000),
            "split long data changes into batched backfills (-- ferry:backfill) and check lint",
            "ferry lint " + q.Text(i, 1));
      }
    }
  }

  void SlowStatements(double* mean_ms) {
    QueryResult q;
    if (!Run("pg_stat_statements",
             "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'", &q) ||
        q.Text(0, 0) == "0") {
      r_.skipped.push_back("slow_statements: pg_stat_statements is not installed");
      return;
    }
    if (!Run("slow_statements",
             "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 120), calls, mean_exec_time, "
             "sum(total_exec_time) OVER () / NULLIF(sum(calls) OVER (), 0) "
             "FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 5",
             &q)) {
      return;
    }
    for (size_t i = 0; i < q.rows.size(); ++i) {
      *mean_ms = Dbl(q, i, 3);
      if (Dbl(q, i, 2) < 100) continue;
      Add(3, "slow_statement", q.Text(i, 0),
          fmt::format("{:.0f} ms mean over {} calls", Dbl(q, i, 2), q.Text(i, 1)),
          "look at its plan; an index or a rewrite usually helps",
          "EXPLAIN (ANALYZE, BUFFERS) " + q.Text(i, 0));
    }
  }

  void Matrix(double mean_ms) {
    QueryResult q;
    double size = -1, commits = -1;
    if (Run("decision_matrix",
            "SELECT pg_database_size(current_database()), xact_commit, "
            "EXTRACT(EPOCH FROM now() - COALESCE(stats_reset, pg_postmaster_start_time())) "
            "FROM pg_stat_database WHERE datname = current_database()",
            &q) &&
        !q.empty()) {
      size = Dbl(q, 0, 0);
      const double secs = Dbl(q, 0, 2);
      commits = secs > 0 ? Dbl(q, 0, 1) / secs : -1;
    }
    auto figure = [&](std::string name, double value, double threshold) {
      r_.matrix.push_back({std::move(name), value, threshold, value >= 0 && value > threshold});
    };
    figure("database_size_bytes", size, static_cast<double>(o_.matrix_database_bytes));
    figure("commits_per_second", commits, o_.matrix_commits_per_second);
    figure("mean_statement_ms", mean_ms, o_.matrix_mean_statement_ms);
    int exceeded = 0;
    for (const MatrixFigure& f : r_.matrix) exceeded += f.exceeded ? 1 : 0;
    r_.move_indicated = exceeded >= 2;
    r_.matrix_verdict =
        r_.move_indicated
            ? fmt::format(
                  "{} of 3 thresholds exceeded: a move of the high-volume tables to a "
                  "wide-column store (ScyllaDB) is indicated; plan it with ferry copy "
                  "and verify",
                  exceeded)
            : fmt::format(
                  "{} of 3 thresholds exceeded: stay on PostgreSQL (tune, partition, "
                  "add replicas first)",
                  exceeded);
  }

 private:
  static std::string PgText(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
  }

  Connection& conn_;
  const RecommendOptions& o_;
  RecommendReport& r_;
};

}  // namespace

Result<RecommendReport> Recommend(const RecommendOptions& options) {
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(options.url));
  ConnectOptions co;
  co.application_name = "ferry recommend";
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenConnection(url, co));
  RecommendReport report;
  report.database = DatabaseLabel(options.url);
  if (conn->engine() == Engine::kCql) {
    FERRY_RETURN_IF_ERROR(
        recommend_internal::RecommendCql(*conn, options, url.database(), report));
    std::stable_sort(
        report.recommendations.begin(), report.recommendations.end(),
        [](const Recommendation& x, const Recommendation& y) { return x.priority < y.priority; });
    return report;
  }
  if (!conn->traits().Has(Feature::kTableStatistics)) {
    return Status(StatusCode::kUnimplemented,
                  "ferry recommend analyses PostgreSQL and CQL databases (catalog and "
                  "statistics), not " + std::string(conn->traits().name()));
  }
  Analyzer a(*conn, options, report);
  a.Int4Keys();
  a.NoPrimaryKey();
  a.Indexes();
  a.BloatAndSize();
  a.LongTransactions();
  a.History();
  double mean_ms = -1;
  a.SlowStatements(&mean_ms);
  a.Matrix(mean_ms);
  std::stable_sort(
      report.recommendations.begin(), report.recommendations.end(),
      [](const Recommendation& x, const Recommendation& y) { return x.priority < y.priority; });
  return report;
}

}  // namespace ferry
