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
#include "move/verify_sqlite.h"

namespace ferry {
namespace {

// Session settings under which PostgreSQL's output functions print the
// canonical forms (canonical.h).
constexpr const char* kPgSessionSetup =
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
Status Both(const std::function<Status()>& a, const std::function<Status()>& b) {
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

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

// PostgreSQL's own extended (seeded, 64-bit) hash function of a base type
// whose hash sees exactly the values verify compares, and an untyped literal
// of that type that stands in for NULL (coalesce()); nullopt for types
// hashed through their text. (bytea's and date's hash functions cannot be
// called from SQL; timestamptz is hashed as the timestamp AT TIME ZONE
// INTERVAL '00:00' gives, the same microseconds, whatever the session's time
// zone.) Arrays go through their text, the canonical form the last
// row-by-row step compares: one output call per array is cheaper than
// hash_array_extended plus the calls that would add its bounds, and values
// that print differently ({1.5} and {1.50}) are not hidden. Not enums: their
// hash is of the label's OID, which differs between databases.
struct PgHashFn {
  const char* fn;
  const char* null_literal;
  // The function's argument as a format of the value ("({})::integer"): a
  // cheap, exact conversion; nullptr when the value is passed as it is.
  const char* convert = nullptr;
};
std::optional<PgHashFn> PgHashFor(const ColumnInfo& c) {
  if (c.kind != 'b' || c.is_array) return std::nullopt;
  switch (c.base_oid) {
    case 16: return PgHashFn{"hashint4extended", "f", "({})::integer"};
    case 19: return PgHashFn{"hashnameextended", ""};
    case 20: return PgHashFn{"hashint8extended", "0"};
    case 21: return PgHashFn{"hashint2extended", "0"};
    case 23: return PgHashFn{"hashint4extended", "0"};
    case 25: case 1043: return PgHashFn{"hashtextextended", ""};
    case 26: return PgHashFn{"hashoidextended", "0"};
    case 700: return PgHashFn{"hashfloat4extended", "0"};
    case 701: return PgHashFn{"hashfloat8extended", "0"};
    case 1042: return PgHashFn{"hashbpcharextended", ""};
    case 1083: return PgHashFn{"time_hash_extended", "allballs"};
    case 1114: return PgHashFn{"timestamp_hash_extended", "epoch"};
    case 1184:
      return PgHashFn{"timestamp_hash_extended", "epoch", "({}) AT TIME ZONE INTERVAL '00:00'"};
    case 1186: return PgHashFn{"interval_hash_extended", "0"};
    case 1700: return PgHashFn{"hash_numeric_extended", "0"};
    case 2950: return PgHashFn{"uuid_hash_extended", "00000000-0000-0000-0000-000000000000"};
    case 3802: return PgHashFn{"jsonb_hash_extended", "null"};
    default: return std::nullopt;
  }
}

// The row hash when both sides are PostgreSQL: a chain of the columns' own
// seeded hash functions, each column's hash seeded with the hash of the
// columns before it (so a value is bound to its row and its place: values
// swapped between rows or columns change the hashes), no record built and no
// value printed. A NULL hashes as the type's stand-in value under a flipped
// seed, so NULL and '' (or 0) differ. jsonb is hashed alone and chained
// through the text of its hash (its hash function drops the seed for an
// empty value); bigint also hashes its upper half
// (hashint8extended folds the halves into 32 bits). A final step mixes the
// last column's hash. Known blind spots (PostgreSQL's functions): numeric
// NaN/Infinity/-Infinity hash alike; timestamp, time and interval fold 64
// bits into 32 as bigint does.
std::string PgChainHash(const TableSide& side) {
  std::string h = "7046029254386353131";  // any constant start
  int64_t step = 0;
  for (size_t idx : side.columns) {
    const ColumnInfo& c = side.info.columns[idx];
    ++step;
    const auto fn = PgHashFor(c);
    // Domains: the base type, so the stand-in literal need not pass the domain's checks.
    const std::string col = QuoteIdent(c.name);
    std::string v = col;
    if (fn && c.type_oid != c.base_oid) v = fmt::format("{}::{}", v, c.base_type);
    if (!fn) v += "::text";
    // The seed: the chain so far XOR a constant per column (some hash
    // functions return the seed itself for 0 or NaN; the constant keeps such
    // a value's column apart), another one when the value is NULL.
    const auto place = static_cast<int64_t>(0x5bd1e9955bd1e995LL ^ (step * 2 + 1));
    const auto null_flip = static_cast<int64_t>(0x2545f4914f6cdd1dLL ^ (step * 2 + 1));
    std::string seed = fmt::format("({} # {})", h, place);
    std::string arg = v;
    if (!c.not_null) {
      seed = fmt::format("({} # CASE WHEN {} IS NULL THEN {} ELSE {} END)", h, col, null_flip,
                         place);
      arg = fmt::format("coalesce({}, '{}')", v, fn ? fn->null_literal : "");
    }
    if (fn && fn->convert != nullptr) arg = fmt::format(fmt::runtime(fn->convert), arg);
    if (fn && c.base_oid == 3802) {
      // jsonb_hash_extended drops the seed for an empty value: hash the
      // value alone, then chain that 64-bit value through its text.
      h = fmt::format("hashtextextended(({}({}, 0))::text, {})", fn->fn, arg, seed);
      continue;
    }
    h = fmt::format("{}({}, {})", fn ? fn->fn : "hashtextextended", arg, seed);
    if (fn && c.base_oid == 20) {
      h = fmt::format("hashint4extended(({} >> 32)::integer, {})",
                      c.not_null ? v : fmt::format("coalesce({}, 0)", v), h);
    }
  }
  return fmt::format("hashint8extended({}, {})", step, h);
}

void BuildReads(TableSide& side, bool pg, bool both_pg) {
  std::vector<std::string> values, kinds;
  for (size_t k = 0; k < side.columns.size(); ++k) {
    const ColumnInfo& c = side.info.columns[side.columns[k]];
    if (pg) {
      values.push_back(PgCanonicalExpr(c));
    } else {
      values.push_back(fmt::format("ferry_canon({}, '{}')", QuoteIdent(c.name),
                                   CanonKindName(side.kinds[k])));
      kinds.emplace_back(CanonKindName(side.kinds[k]));
    }
  }
  side.value_list = Join(values, ", ");
  if (pg && both_pg) {
    // Both sides PostgreSQL: the types' own binary hash functions, several
    // times cheaper than printing every value (0 and -0, 1.5 and 1.50 hash
    // alike, as the types compare them).
    side.hash_expr = PgChainHash(side);
  } else if (pg) {
    side.hash_expr = fmt::format("('x' || left(md5(ROW({})::text), 16))::bit(64)::bigint",
                                 side.value_list);
  } else {
    std::vector<std::string> raw;
    for (size_t idx : side.columns) raw.push_back(QuoteIdent(side.info.columns[idx].name));
    side.hash_expr = fmt::format("ferry_row_hash('{}', {})", Join(kinds, ","), Join(raw, ", "));
  }
}

// Array literal of key values for width_bucket: {"a","b"} with " and \ escaped.
std::string ArrayLiteral(const std::vector<const KeyTuple*>& bounds) {
  std::string out = "{";
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : (*bounds[i])[0]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

int64_t ParseInt(const Value& v) {
  if (!v || v->empty()) return 0;
  return std::stoll(*v);
}

// A run of adjacent ranges (each one's upper is the next one's lower) hashed
// together, and the results of both sides.
struct Run {
  std::vector<KeyRange> ranges;
  std::vector<RangeHash> source, target;
};

// The rows one query hashes: ranges [begin, end) of a run, and, when
// `paged`, only those on the table's pages [page_lo, page_hi) (-1: open),
// so that the workers share one pass over a large table by pages while the
// hashes stay per key range (a range's count and XOR are sums over the
// slices, whatever pages its rows sit on).
struct Slice {
  size_t run = 0;
  size_t begin = 0, end = 0;
  bool paged = false;
  int64_t page_lo = -1, page_hi = -1;
};

// Interior bounds of ranges [begin, end) that step evenly through bigint
// values, as integer division can bucket them: first bound, last bound,
// step. nullopt when they do not, or when last - first does not fit a
// bigint (the division could overflow; width_bucket then).
struct EvenBounds {
  int64_t first = 0, last = 0, step = 1;
};
std::optional<EvenBounds> EvenIntegerBounds(const std::vector<KeyRange>& ranges, size_t begin,
                                            size_t end) {
  if (end - begin < 2) return std::nullopt;
  EvenBounds e;
  uint64_t step = 0;
  int64_t prev = 0;
  for (size_t i = begin + 1; i < end; ++i) {
    const std::string& text = (*ranges[i].lower)[0];
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
    if (i == begin + 1) {
      e.first = v;
    } else {
      if (v <= prev) return std::nullopt;
      const uint64_t d = static_cast<uint64_t>(v) - static_cast<uint64_t>(prev);  // exact: v > prev
      if (step == 0) step = d;
      if (d != step) return std::nullopt;
    }
    prev = v;
  }
  e.last = prev;
  if (static_cast<uint64_t>(e.last) - static_cast<uint64_t>(e.first) >
      static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return std::nullopt;
  }
  e.step = step == 0 ? 1 : static_cast<int64_t>(step);
  return e;
}

// Hashes of one slice on one connection, added into `out` (one entry per
// range of the slice). PostgreSQL with a one-column key: one query that
// groups the rows by range (integer division for an integer key whose
// bounds step evenly, else width_bucket over the bounds); otherwise one
// query per range.
// `grouping` tells how (FirstPassInfo::grouping).
Status HashSlice(Side& side, Connection& conn, const TableSide& t, const Run& run,
                 const Slice& slice, bool hash_in_db, std::vector<RangeHash>& out,
                 const char*& grouping) {
  const size_t n = slice.end - slice.begin;
  out.assign(n, RangeHash{});
  grouping = "per range";
  const std::string table = t.info.QualifiedName();
  auto range = [&](size_t i) -> const KeyRange& { return run.ranges[slice.begin + i]; };
  if (!hash_in_db) {
    // The rows travel; ferry hashes them.
    grouping = "rows read";
    for (size_t i = 0; i < n; ++i) {
      Params params;
      std::string sql = fmt::format("SELECT {} FROM {} WHERE {}", t.value_list, table,
                                    t.Filter(range(i), params));
      side.CountQuery(sql, params);
      RangeHash h;
      std::string record;
      FERRY_RETURN_IF_ERROR(conn.Stream(sql, params, [&](const RowView& row) -> Status {
        record = "(";
        int64_t bytes = 0;
        for (size_t c = 0; c < row.fields.size(); ++c) {
          const auto& f = row.fields[c];
          AppendRecordField(record, f ? Value(std::string(*f)) : Value(), c == 0);
          bytes += f ? static_cast<int64_t>(f->size()) + 4 : 4;
        }
        record += ')';
        side.bytes += bytes;
        h.count++;
        h.hash ^= RowHash(record);
        return Status();
      }));
      out[i] = h;
    }
    return Status();
  }
  const bool bucketed = side.pg() && t.info.primary_key.size() == 1 && n > 1;
  if (bucketed) {
    Params params;
    const KeyRange span{range(0).lower, range(n - 1).upper};
    std::string bucket;
    const ColumnInfo& key = t.info.columns[t.info.primary_key[0]];
    const std::string k = QuoteIdent(key.name);
    std::optional<EvenBounds> even;
    if (HasIntegerKey(t.info)) even = EvenIntegerBounds(run.ranges, slice.begin, slice.end);
    if (even) {
      // Bucket i - 1 for rows in range i: -1 below the first bound, then
      // (key - first) / step, capped at the last bound. No overflow: the
      // subtraction runs only for keys >= first, and last - first fits.
      params = {std::to_string(even->first), std::to_string(even->last),
                std::to_string(even->step)};
      grouping = "integer division";
      bucket = fmt::format(
          "CASE WHEN {k}::bigint < $1::bigint THEN -1 "
          "ELSE (least({k}::bigint, $2::bigint) - $1::bigint) / $3::bigint END",
          fmt::arg("k", k));
    } else {
      std::vector<const KeyTuple*> bounds;
      for (size_t i = 1; i < n; ++i) bounds.push_back(&*range(i).lower);
      params.push_back(ArrayLiteral(bounds));
      grouping = "width_bucket";
      bucket = fmt::format("width_bucket({}, $1::{}[]) - 1", k, key.type);
    }
    std::string pred = t.Filter(span, params);
    if (slice.paged) {
      // Page numbers are integers ferry computed from the table's size.
      if (slice.page_lo >= 0) pred += fmt::format(" AND ctid >= '({},0)'::tid", slice.page_lo);
      if (slice.page_hi >= 0) pred += fmt::format(" AND ctid < '({},0)'::tid", slice.page_hi);
    }
    std::string sql = fmt::format(
        "SELECT {bucket} AS b, count(*), bit_xor({hash}) FROM {table} WHERE {pred} GROUP BY 1",
        fmt::arg("bucket", bucket), fmt::arg("hash", t.hash_expr), fmt::arg("table", table),
        fmt::arg("pred", pred));
    FERRY_ASSIGN_OR_RETURN(QueryResult r, side.Query(conn, sql, params));
    for (const auto& row : r.rows) {
      const int64_t b = ParseInt(row[0]) + 1;
      if (b < 0 || b >= static_cast<int64_t>(n)) continue;
      out[static_cast<size_t>(b)] = RangeHash{ParseInt(row[1]), ParseInt(row[2])};
    }
    return Status();
  }
  const char* agg = side.pg() ? "bit_xor" : "ferry_xor";
  for (size_t i = 0; i < n; ++i) {
    Params params;
    std::string sql = fmt::format("SELECT count(*), {}({}) FROM {} WHERE {}", agg, t.hash_expr,
                                  table, t.Filter(range(i), params));
    FERRY_ASSIGN_OR_RETURN(QueryResult r, side.Query(conn, sql, params));
    out[i] = RangeHash{ParseInt(r.rows[0][0]), ParseInt(r.rows[0][1])};
  }
  return Status();
}

// How one side shares the work of one level among its connections. The
// first level (`first`) is one long run, or a few: a large PostgreSQL table
// (PostgreSQL 14+, TID range scans) is cut by pages, one to four slices per
// connection, each grouping its pages' rows by all the ranges; otherwise
// each run is cut into one piece of adjacent ranges per connection. Deeper
// levels: one slice per run.
std::vector<Slice> PlanSlices(const Side& side, const TableSide& t, const std::vector<Run>& runs,
                              bool first, bool hash_in_db) {
  std::vector<Slice> slices;
  const auto workers = static_cast<int64_t>(std::max<size_t>(1, side.conns.size()));
  const bool by_pages = first && workers > 1 && hash_in_db && runs.size() == 1 &&
                        runs[0].ranges.size() > 1 && t.info.primary_key.size() == 1 && t.pages > 0;
  for (size_t r = 0; r < runs.size(); ++r) {
    const size_t n = runs[r].ranges.size();
    if (by_pages) {
      // Up to 4 slices per connection (of at least 256 pages, 2 MB), taken
      // in turn, so that a worker slowed down by others on its machine
      // leaves less to wait for at the end.
      const int64_t count = std::clamp<int64_t>(t.pages / 256, workers, workers * 4);
      for (int64_t w = 0; w < count; ++w) {
        Slice s{r, 0, n, true, -1, -1};
        if (w > 0) s.page_lo = t.pages * w / count;
        if (w + 1 < count) s.page_hi = t.pages * (w + 1) / count;
        slices.push_back(s);
      }
      continue;
    }
    const size_t pieces = first ? std::min<size_t>(static_cast<size_t>(workers), n) : 1;
    for (size_t p = 0; p < pieces; ++p) {
      slices.push_back(Slice{r, n * p / pieces, n * (p + 1) / pieces});
    }
  }
  return slices;
}

// Hashes every run on both sides at once; for the first level, says in
// `info` how each side did it.
Status HashRuns(Side& src, Side& tgt, const TableSide& ts, const TableSide& tt,
                std::vector<Run>& runs, bool first, bool hash_in_db, FirstPassInfo* src_info,
                FirstPassInfo* tgt_info) {
  auto one_side = [&](Side& side, const TableSide& t, bool target) -> Status {
    const std::vector<Slice> slices = PlanSlices(side, t, runs, first, hash_in_db);
    std::vector<std::vector<RangeHash>> parts(slices.size());
    std::vector<const char*> groupings(slices.size(), "");
    FERRY_RETURN_IF_ERROR(side.ForEach(slices.size(), [&](Connection& c, size_t i) {
      return HashSlice(side, c, t, runs[slices[i].run], slices[i], hash_in_db, parts[i],
                       groupings[i]);
    }));
    FirstPassInfo* info = target ? tgt_info : src_info;
    if (info != nullptr && !slices.empty()) {
      info->split = slices[0].paged ? "pages" : "key ranges";
      info->queries = static_cast<int64_t>(slices.size());
      info->grouping = groupings[0];
    }
    for (auto& run : runs) {
      (target ? run.target : run.source).assign(run.ranges.size(), RangeHash{});
    }
    for (size_t i = 0; i < slices.size(); ++i) {
      Run& run = runs[slices[i].run];
      std::vector<RangeHash>& out = target ? run.target : run.source;
      for (size_t j = 0; j < parts[i].size(); ++j) {
        out[slices[i].begin + j].count += parts[i][j].count;
        out[slices[i].begin + j].hash ^= parts[i][j].hash;
      }
    }
    return Status();
  };
  return Both([&] { return one_side(src, ts, false); }, [&] { return one_side(tgt, tt, true); });
}

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
    if (!r.rows.empty()) t.pages = ParseInt(r.rows[0][0]);
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
      rows = ParseInt(r.rows[0][0]);
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
                                    ParseInt(size->rows[0][0]);
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
