// ferry verify: range hashes computed in each database, bisection of the
// ranges that differ, row-by-row comparison of the last small ranges.
//
// In:     VerifyOptions (two URLs, tables or --all or a copy job).
// Out:    VerifyReport with complete counts and at most max_report rows listed.
// Resume: none needed: verify writes nothing; a rerun starts over.
#include "move/verify.h"
#include "move/verify_cql.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "drivers/registry.h"
#include "move/canonical.h"
#include "move/control.h"
#include "move/verify_internal.h"
#include "move/verify_sqlite.h"

namespace ferry {
namespace {

using namespace verify_internal;  // NOLINT: the stages' shared types

struct Row {
  KeyTuple key;
  std::vector<Value> values;
};

// Rows of `range` in key order, canonical values of the compared columns.
Status FetchRows(Side& side, Connection& conn, const TableSide& t, const KeyRange& range,
                 const std::vector<size_t>& key_positions, std::vector<Row>& out) {
  Params params;
  std::string sql = fmt::format("SELECT {} FROM {} WHERE {} ORDER BY {}", t.value_list,
                                t.info.QualifiedName(), t.Filter(range, params),
                                t.info.KeyColumnList());
  FERRY_ASSIGN_OR_RETURN(QueryResult r, side.Query(conn, sql, params));
  out.clear();
  out.reserve(r.rows.size());
  for (auto& values : r.rows) {
    Row row;
    for (size_t k : key_positions) row.key.push_back(values[k].value_or(""));
    row.values = std::move(values);
    out.push_back(std::move(row));
  }
  return Status();
}

std::string KeyText(const KeyTuple& key) { return Join(key, std::string_view("\x1f", 1)); }

// Key order for the report: integer key columns by value, others by bytes.
struct KeyLess {
  std::vector<bool> numeric;
  bool operator()(const KeyTuple& a, const KeyTuple& b) const {
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (a[i] == b[i]) continue;
      if (i < numeric.size() && numeric[i]) {
        long double x = std::strtold(a[i].c_str(), nullptr), y = std::strtold(b[i].c_str(), nullptr);
        if (x != y) return x < y;
      }
      return a[i] < b[i];
    }
    return a.size() < b.size();
  }
};

class TableVerifier {
 public:
  TableVerifier(const VerifyOptions& options, Side& src, Side& tgt)
      : options_(options), src_(src), tgt_(tgt) {}

  Result<TableVerifyResult> Run(const std::string& name, const std::vector<KeyRange>* job_ranges) {
    result_ = TableVerifyResult{};
    result_.table = name;
    started_ = std::chrono::steady_clock::now();
    FERRY_RETURN_IF_ERROR(Prepare(name));
    std::vector<KeyRange> first;
    if (job_ranges != nullptr && !job_ranges->empty()) {
      first = *job_ranges;
    } else {
      FERRY_ASSIGN_OR_RETURN(first, InitialRanges());
    }
    // Level by level: hash, keep what differs, cut it again or read its rows.
    std::vector<struct Run> runs = GroupRuns(std::move(first));
    std::vector<KeyRange> leaves;
    bool top = true;
    int level = 0;
    while (!runs.empty()) {
      FERRY_RETURN_IF_ERROR(HashRuns(src_, tgt_, ts_, tt_, runs, top, options_.hash_in_db,
                                     top ? &result_.source_first_pass : nullptr,
                                     top ? &result_.target_first_pass : nullptr));
      std::vector<std::pair<KeyRange, int64_t>> differing;  // range, larger count
      std::vector<bool> split_on_target;
      size_t hashed = 0;
      for (auto& run : runs) {
        for (size_t i = 0; i < run.ranges.size(); ++i) {
          ++hashed;
          if (top) {
            result_.source_rows += run.source[i].count;
            result_.target_rows += run.target[i].count;
          }
          if (run.source[i] == run.target[i]) continue;
          const int64_t most = std::max(run.source[i].count, run.target[i].count);
          differing.emplace_back(std::move(run.ranges[i]), most);
          split_on_target.push_back(run.target[i].count > run.source[i].count);
        }
      }
      result_.ranges_hashed += static_cast<int64_t>(hashed);
      Progress(fmt::format("{}: level {}: {} ranges hashed, {} differ", result_.table, level,
                           hashed, differing.size()));
      top = false;
      ++level;
      // Cut the large differing ranges (in parallel, on the side with more rows).
      std::vector<std::vector<KeyRange>> pieces(differing.size());
      std::vector<size_t> to_split;
      for (size_t i = 0; i < differing.size(); ++i) {
        if (differing[i].second > options_.leaf_rows) to_split.push_back(i);
      }
      auto split = [&](Side& side, const TableSide& t, bool on_target) {
        return side.ForEach(to_split.size(), [&](Connection& c, size_t j) -> Status {
          const size_t i = to_split[j];
          if (split_on_target[i] != on_target) return Status();
          const int64_t per = (differing[i].second + options_.fanout - 1) / options_.fanout;
          FERRY_ASSIGN_OR_RETURN(pieces[i], SplitByKey(c, t.info, differing[i].first, t.where,
                                                       std::max<int64_t>(per, 1)));
          return Status();
        });
      };
      FERRY_RETURN_IF_ERROR(Both([&] { return split(src_, ts_, false); },
                                 [&] { return split(tgt_, tt_, true); }));
      std::vector<struct Run> next;
      for (size_t i = 0; i < differing.size(); ++i) {
        if (pieces[i].size() <= 1) {
          leaves.push_back(std::move(differing[i].first));
        } else {
          struct Run run;
          run.ranges = std::move(pieces[i]);
          next.push_back(std::move(run));
        }
      }
      runs = std::move(next);
    }
    Progress(fmt::format("{}: reading {} small ranges row by row", result_.table, leaves.size()));
    FERRY_RETURN_IF_ERROR(CompareLeaves(leaves));
    Progress(fmt::format("{}: done", result_.table));
    return std::move(result_);
  }

 private:
  void Progress(const std::string& line) {
    if (!options_.progress) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    options_.progress(fmt::format("[{:.1f}s] {}", s, line));
  }

  Status Prepare(const std::string& name) {
    auto si = DescribeTable(src_.first(), name);
    if (!si.ok()) return std::move(si).TakeStatus().Prefix("source");
    auto ti = DescribeTable(tgt_.first(), name);
    if (!ti.ok()) return std::move(ti).TakeStatus().Prefix("target");
    ts_ = TableSide{std::move(*si), {}, {}, {}, {}, options_.where};
    tt_ = TableSide{std::move(*ti), {}, {}, {}, {}, options_.where};
    const TableInfo& s = ts_.info;
    const TableInfo& t = tt_.info;
    auto no_key = [&](const char* role) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("table {} on the {} has no primary key; verify compares rows by "
                                "primary key",
                                name, role))
          .With("table", name)
          .With("hint", "add a primary key (or verify a view of the table that has one)")
          .With("database", role == std::string("source") ? src_.first().redacted_url()
                                                          : tgt_.first().redacted_url());
    };
    if (!s.has_primary_key()) return no_key("source");
    if (!t.has_primary_key()) return no_key("target");
    std::vector<std::string> sk, tk;
    for (size_t i : s.primary_key) sk.push_back(s.columns[i].name);
    for (size_t i : t.primary_key) tk.push_back(t.columns[i].name);
    if (sk != tk) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("table {}: primary keys differ: source ({}), target ({})", name,
                                Join(sk, ", "), Join(tk, ", ")))
          .With("table", name)
          .With("hint", "verify compares rows by primary key; both tables need the same key columns");
    }
    std::vector<std::string> missing_on_target, missing_on_source;
    for (const auto& c : s.columns) {
      if (t.Find(c.name) == nullptr) missing_on_target.push_back(c.name);
    }
    for (const auto& c : t.columns) {
      if (s.Find(c.name) == nullptr) missing_on_source.push_back(c.name);
    }
    if (!missing_on_target.empty() || !missing_on_source.empty()) {
      std::string msg = fmt::format("table {}: columns differ:", name);
      if (!missing_on_target.empty()) {
        msg += fmt::format(" {} missing on the target", Join(missing_on_target, ", "));
      }
      if (!missing_on_source.empty()) {
        msg += fmt::format("{} {} missing on the source", missing_on_target.empty() ? "" : ";",
                           Join(missing_on_source, ", "));
      }
      return Status(StatusCode::kInvalidArgument, msg)
          .With("table", name)
          .With("column", !missing_on_target.empty() ? missing_on_target[0] : missing_on_source[0])
          .With("hint", "add the column, or verify a view that selects the common columns");
    }
    if (!options_.where.empty()) {
      // A filter that does not parse fails here, naming itself, not deep in a range query.
      for (auto* side : {&ts_, &tt_}) {
        Side& db = side == &ts_ ? src_ : tgt_;
        std::string sql = fmt::format("SELECT 1 FROM {} WHERE ({}) LIMIT 0",
                                      side->info.QualifiedName(), options_.where);
        auto r = db.first().Query(sql);
        if (!r.ok()) {
          return std::move(r).TakeStatus()
              .Prefix(fmt::format("--where {:?} on the {} table {}", options_.where, db.role, name))
              .With("table", name);
        }
      }
    }
    // Compared columns in source order; each side's canonical kind. A
    // SQLite side takes the PostgreSQL side's type.
    const bool spg = src_.pg(), tpg = tgt_.pg();
    for (size_t i = 0; i < s.columns.size(); ++i) {
      const ColumnInfo& sc = s.columns[i];
      const ColumnInfo* tc = t.Find(sc.name);
      ts_.columns.push_back(i);
      tt_.columns.push_back(static_cast<size_t>(tc - t.columns.data()));
      CanonKind kind = spg ? CanonKindForPg(sc) : tpg ? CanonKindForPg(*tc) : CanonKind::kAny;
      ts_.kinds.push_back(kind);
      tt_.kinds.push_back(kind);
    }
    BuildReads(ts_, spg, spg && tpg);
    BuildReads(tt_, tpg, spg && tpg);
    FERRY_RETURN_IF_ERROR(CountPages(src_, ts_, options_.min_pages_to_split));
    FERRY_RETURN_IF_ERROR(CountPages(tgt_, tt_, options_.min_pages_to_split));
    result_.key_columns = sk;
    key_positions_.clear();
    key_less_.numeric.clear();
    for (size_t i : s.primary_key) {
      key_positions_.push_back(i);
      const CanonKind k = ts_.kinds[i];
      std::string declared = s.columns[i].type;
      for (char& ch : declared) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      key_less_.numeric.push_back(k == CanonKind::kInteger || k == CanonKind::kNumeric ||
                                  k == CanonKind::kFloat4 || k == CanonKind::kFloat8 ||
                                  (k == CanonKind::kAny && declared.find("INT") != std::string::npos));
    }
    return Status();
  }

  // A PostgreSQL 14+ plain table's size in pages (TableSide::pages).
  static Status CountPages(Side& side, TableSide& t, int64_t min_pages) {
    t.pages = -1;
    if (!side.pg()) return Status();
    Params params{t.info.QualifiedName()};
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r,
        side.Query(side.first(),
                   "SELECT CASE WHEN c.relkind = 'r' AND "
                   "current_setting('server_version_num')::int >= 140000 "
                   "THEN pg_relation_size(c.oid) / current_setting('block_size')::bigint "
                   "ELSE -1 END FROM pg_class c WHERE c.oid = $1::regclass",
                   params));
    if (!r.rows.empty()) t.pages = ColumnInt64(r.rows[0][0]);
    if (t.pages < std::max<int64_t>(1, min_pages)) t.pages = -1;
    return Status();
  }

  Result<std::vector<KeyRange>> InitialRanges() {
    int64_t rows = ts_.info.estimated_rows;
    if (rows < 0 || !options_.where.empty()) {
      Params params;
      std::string sql = fmt::format("SELECT count(*) FROM {} WHERE {}", ts_.info.QualifiedName(),
                                    ts_.Filter(KeyRange{}, params));
      FERRY_ASSIGN_OR_RETURN(QueryResult r, src_.Query(src_.first(), sql, params));
      rows = ColumnInt64(r.rows[0][0]);
    }
    const int64_t max_ranges = std::max<int64_t>(1, options_.max_initial_ranges);
    const int64_t per = std::max<int64_t>(options_.leaf_rows * 4, (rows + max_ranges - 1) / max_ranges);
    if (rows <= per) return std::vector<KeyRange>{KeyRange{}};
    if (HasIntegerKey(ts_.info)) {
      // An integer key: equal-width ranges from min and max (two index
      // probes) instead of walking the whole index; bisection evens out
      // ranges that hold more rows. Their bounds step evenly, so the first
      // pass groups rows by integer division. kFailedPrecondition (SQLite
      // keys that are not all integers): walk the index instead.
      auto ranges = SplitIntegerKeyRange(src_.first(), ts_.info, options_.where, rows, per,
                                         static_cast<size_t>(max_ranges));
      if (ranges.ok()) {
        Progress(
            fmt::format("{}: about {} rows in {} key ranges", result_.table, rows, ranges->size()));
        return std::move(*ranges);
      }
      if (ranges.status().code() != StatusCode::kFailedPrecondition) {
        return std::move(ranges).TakeStatus();
      }
    }
    FERRY_ASSIGN_OR_RETURN(std::vector<KeyRange> ranges,
                           SplitByKey(src_.first(), ts_.info, KeyRange{}, options_.where, per,
                                      static_cast<size_t>(max_ranges)));
    Progress(fmt::format("{}: {} rows in {} ranges", result_.table, rows, ranges.size()));
    return ranges;
  }

  // Groups adjacent ranges into runs (PlanSlices shares them among the workers).
  static std::vector<struct Run> GroupRuns(std::vector<KeyRange> ranges) {
    std::vector<struct Run> runs;
    for (auto& r : ranges) {
      const bool adjacent = !runs.empty() && runs.back().ranges.back().upper && r.lower &&
                            *runs.back().ranges.back().upper == *r.lower;
      if (!adjacent) runs.emplace_back();
      runs.back().ranges.push_back(std::move(r));
    }
    return runs;
  }

  Status CompareLeaves(const std::vector<KeyRange>& leaves) {
    result_.ranges_compared_by_row = static_cast<int64_t>(leaves.size());
    std::vector<std::vector<Row>> src_rows(leaves.size()), tgt_rows(leaves.size());
    FERRY_RETURN_IF_ERROR(Both(
        [&] {
          return src_.ForEach(leaves.size(), [&](Connection& c, size_t i) {
            return FetchRows(src_, c, ts_, leaves[i], key_positions_, src_rows[i]);
          });
        },
        [&] {
          return tgt_.ForEach(leaves.size(), [&](Connection& c, size_t i) {
            return FetchRows(tgt_, c, tt_, leaves[i], key_positions_, tgt_rows[i]);
          });
        }));
    // Match by key over all leaves together: should the engines order some
    // key differently (collations), a row may sit in different ranges.
    std::map<std::string, Row> only_source, only_target;
    std::vector<std::pair<Row, Row>> both;
    for (size_t i = 0; i < leaves.size(); ++i) {
      result_.rows_fetched += static_cast<int64_t>(src_rows[i].size() + tgt_rows[i].size());
      for (auto& r : src_rows[i]) {
        std::string k = KeyText(r.key);
        only_source.emplace(std::move(k), std::move(r));
      }
      src_rows[i].clear();
      for (auto& r : tgt_rows[i]) {
        std::string k = KeyText(r.key);
        auto it = only_source.find(k);
        if (it != only_source.end()) {
          both.emplace_back(std::move(it->second), std::move(r));
          only_source.erase(it);
        } else {
          only_target.emplace(std::move(k), std::move(r));
        }
      }
      tgt_rows[i].clear();
    }
    std::vector<RowDifference> diffs;
    for (auto& [k, r] : only_source) {
      diffs.push_back(RowDifference{RowDifference::Kind::kMissing, std::move(r.key), {}});
    }
    for (auto& [k, r] : only_target) {
      diffs.push_back(RowDifference{RowDifference::Kind::kExtra, std::move(r.key), {}});
    }
    for (auto& [s, t] : both) {
      RowDifference d{RowDifference::Kind::kChanged, s.key, {}};
      for (size_t c = 0; c < s.values.size(); ++c) {
        if (s.values[c] == t.values[c]) continue;
        d.columns.push_back(ColumnDifference{ts_.info.columns[ts_.columns[c]].name,
                                             std::move(s.values[c]), std::move(t.values[c])});
      }
      if (!d.columns.empty()) diffs.push_back(std::move(d));
    }
    for (const auto& d : diffs) {
      switch (d.kind) {
        case RowDifference::Kind::kMissing: ++result_.missing; break;
        case RowDifference::Kind::kExtra: ++result_.extra; break;
        case RowDifference::Kind::kChanged: ++result_.changed; break;
      }
    }
    std::sort(diffs.begin(), diffs.end(), [this](const RowDifference& a, const RowDifference& b) {
      if (key_less_(a.key, b.key)) return true;
      if (key_less_(b.key, a.key)) return false;
      return a.kind < b.kind;
    });
    result_.differences = std::move(diffs);
    return Status();
  }

  const VerifyOptions& options_;
  Side& src_;
  Side& tgt_;
  TableSide ts_, tt_;
  std::vector<size_t> key_positions_;
  KeyLess key_less_;
  TableVerifyResult result_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// The job's chunk ranges per table, from the control tables on the target.
Result<std::map<std::string, std::vector<KeyRange>>> JobRanges(Connection& target,
                                                                const std::string& job_id) {
  ControlTables control(target);
  auto job = control.GetJob(job_id);
  if (!job.ok()) {
    return std::move(job).TakeStatus().Prefix(
        fmt::format("reading copy job {} from the target's ferry_jobs", job_id));
  }
  if (!job->has_value()) {
    return Status(StatusCode::kNotFound,
                  fmt::format("job {} is not in ferry_jobs on the target {}", job_id,
                              target.redacted_url()))
        .With("hint", "list jobs with 'ferry copy --status' on the target");
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<ChunkRow> chunks, control.ListChunks(job_id));
  std::map<std::string, std::vector<std::pair<int64_t, KeyRange>>> by_table;
  for (const auto& c : chunks) {
    auto range = KeyRange::Decode(c.range_spec);
    if (!range.ok()) {
      return std::move(range).TakeStatus().Prefix(
          fmt::format("job {} chunk {} ({})", job_id, c.chunk_id, c.table_name));
    }
    by_table[c.table_name].emplace_back(c.chunk_id, std::move(*range));
  }
  std::map<std::string, std::vector<KeyRange>> out;
  for (auto& [table, list] : by_table) {
    std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [id, r] : list) out[table].push_back(std::move(r));
  }
  return out;
}

}  // namespace

std::string_view RowDifferenceKindName(RowDifference::Kind kind) {
  switch (kind) {
    case RowDifference::Kind::kMissing: return "missing";
    case RowDifference::Kind::kExtra: return "extra";
    case RowDifference::Kind::kChanged: return "changed";
  }
  return "changed";
}

bool VerifyReport::identical() const {
  for (const auto& t : tables) {
    if (!t.identical()) return false;
  }
  return true;
}
int64_t VerifyReport::total_missing() const {
  int64_t n = 0;
  for (const auto& t : tables) n += t.missing;
  return n;
}
int64_t VerifyReport::total_extra() const {
  int64_t n = 0;
  for (const auto& t : tables) n += t.extra;
  return n;
}
int64_t VerifyReport::total_changed() const {
  int64_t n = 0;
  for (const auto& t : tables) n += t.changed;
  return n;
}

Result<VerifyReport> Verify(const VerifyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.from_url.empty() || options.to_url.empty()) {
    return Status(StatusCode::kInvalidArgument, "verify needs both --from URL and --to URL");
  }
  if (options.tables.empty() && !options.all && options.job_id.empty()) {
    return Status(StatusCode::kInvalidArgument, "name the tables to verify: --table T (repeatable), --all or --job JOB");
  }
  if (IsCqlUrl(options.from_url) || IsCqlUrl(options.to_url)) return VerifyWithCql(options);
  if (options.sample_percent > 0) {
    return Status(StatusCode::kInvalidArgument,
                  "--sample is for a CQL side (a quick check during dual writes); between relational "
                  "databases verify compares every row by range hashes");
  }
  RegisterSqliteVerifyFunctions();
  Side src, tgt;
  src.role = "source";
  tgt.role = "target";
  FERRY_RETURN_IF_ERROR(src.Open(options.from_url, options.workers));
  FERRY_RETURN_IF_ERROR(tgt.Open(options.to_url, options.workers));

  std::map<std::string, std::vector<KeyRange>> job_ranges;
  std::vector<std::string> tables = options.tables;
  if (!options.job_id.empty()) {
    FERRY_ASSIGN_OR_RETURN(job_ranges, JobRanges(tgt.first(), options.job_id));
    if (tables.empty()) {
      for (const auto& [t, r] : job_ranges) tables.push_back(t);
    }
  } else if (options.all) {
    FERRY_ASSIGN_OR_RETURN(tables, ListTables(src.first()));
  }

  VerifyReport report;
  report.hash_in_db = options.hash_in_db;
  TableVerifier verifier(options, src, tgt);
  size_t budget = options.max_report;
  for (const auto& name : tables) {
    auto it = job_ranges.find(name);
    auto r = verifier.Run(name, it == job_ranges.end() ? nullptr : &it->second);
    if (!r.ok()) return std::move(r).TakeStatus();
    TableVerifyResult t = std::move(*r);
    if (t.differences.size() > budget) {
      t.differences.resize(budget);
      report.truncated = true;
    }
    budget -= t.differences.size();
    report.listed += t.differences.size();
    if (src.pg()) {
      Params p{name};
      auto size = src.Query(src.first(), "SELECT pg_total_relation_size($1::regclass)", p);
      if (size.ok() && !size->rows.empty()) {
        report.source_table_bytes = std::max<int64_t>(report.source_table_bytes, 0) +
                                    ColumnInt64(size->rows[0][0]);
      }
    }
    report.tables.push_back(std::move(t));
  }
  report.bytes_transferred = src.bytes + tgt.bytes;
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace ferry
