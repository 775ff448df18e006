// ferry verify, the hashing stage: per-row hash expressions for each engine
// (PostgreSQL's own typed hash functions when both sides are PostgreSQL),
// and the range hashes of a level computed inside each database, in
// parallel over a side's connections, by key ranges or by page slices.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "move/verify_internal.h"

namespace ferry::verify_internal {
namespace {

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

}  // namespace

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

namespace {

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
      const int64_t b = ColumnInt64(row[0]) + 1;
      if (b < 0 || b >= static_cast<int64_t>(n)) continue;
      out[static_cast<size_t>(b)] = RangeHash{ColumnInt64(row[1]), ColumnInt64(row[2])};
    }
    return Status();
  }
  const char* agg = side.pg() ? "bit_xor" : "ferry_xor";
  for (size_t i = 0; i < n; ++i) {
    Params params;
    std::string sql = fmt::format("SELECT count(*), {}({}) FROM {} WHERE {}", agg, t.hash_expr,
                                  table, t.Filter(range(i), params));
    FERRY_ASSIGN_OR_RETURN(QueryResult r, side.Query(conn, sql, params));
    out[i] = RangeHash{ColumnInt64(r.rows[0][0]), ColumnInt64(r.rows[0][1])};
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

}  // namespace

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

}  // namespace ferry::verify_internal
