// ferry verify with a CQL side (verify_cql.h): layout checks, the two scans
// into bucket files, the sampled check, and the report.
#include "move/verify_cql.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <limits>
#include <thread>

#include "core/hash.h"
#include "core/url.h"
#include "drivers/cql/cql_connection.h"
#include "drivers/registry.h"
#include "move/table_info.h"
#include "move/verify_spill.h"

namespace ferry {
namespace {

using cql::CqlConnection;
using cql::CqlType;
using cql::TypeId;

constexpr int64_t kRowsPerBucket = 200000;
constexpr int kSlicesPerWorker = 8;

// The columns compared, in one order on both sides: the primary key first.
struct Layout {
  std::string keyspace, table;             // CQL side
  std::vector<std::string> columns;
  size_t key_columns = 0;
  std::vector<std::string> partition_key;  // CQL partition key columns
  std::vector<const ColumnInfo*> rel;      // relational column per compared column
  std::vector<CqlType> types;              // CQL type per compared column
};

Result<std::unique_ptr<CqlConnection>> OpenCql(const std::string& url) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenConnection(url));
  auto* cql = dynamic_cast<CqlConnection*>(conn.get());
  if (cql == nullptr) return Status(StatusCode::kInternal, "verify: not a CQL connection");
  conn.release();
  return std::unique_ptr<CqlConnection>(cql);
}

std::string ColumnList(const std::vector<std::string>& columns) {
  std::string out;
  for (const auto& c : columns) out += (out.empty() ? "" : ", ") + QuoteIdent(c);
  return out;
}

std::string Names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Reads the CQL table's key from system_schema and checks it against the
// relational primary key.
Status ReadCqlKey(CqlConnection& cql, const TableInfo& rel, Layout* layout) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult cols,
      cql.Query("SELECT column_name, kind, position FROM system_schema.columns "
                "WHERE keyspace_name = ? AND table_name = ?",
                {layout->keyspace, layout->table}));
  if (cols.rows.empty()) {
    return Status(StatusCode::kNotFound, "CQL table " + layout->keyspace + "." + layout->table +
                                             " does not exist (verify compares " + rel.name +
                                             " with the table of the same name in the URL's keyspace)");
  }
  std::vector<std::pair<int, std::string>> pk, ck;
  for (size_t i = 0; i < cols.rows.size(); ++i) {
    const std::string& kind = cols.Text(i, 1);
    int pos = std::atoi(cols.Text(i, 2).c_str());
    if (kind == "partition_key") pk.emplace_back(pos, cols.Text(i, 0));
    if (kind == "clustering") ck.emplace_back(pos, cols.Text(i, 0));
  }
  std::sort(pk.begin(), pk.end());
  std::sort(ck.begin(), ck.end());
  std::vector<std::string> cql_key;
  for (auto& [p, n] : pk) {
    layout->partition_key.push_back(n);
    cql_key.push_back(n);
  }
  for (auto& [p, n] : ck) cql_key.push_back(n);
  std::vector<std::string> rel_key;
  for (size_t i : rel.primary_key) rel_key.push_back(rel.columns[i].name);
  if (rel_key != cql_key) {
    return Status(StatusCode::kFailedPrecondition,
                  "table " + rel.name + ": the primary keys differ (relational (" + Names(rel_key) +
                      "), CQL (" + Names(cql_key) + ")); verify compares rows by the same key");
  }
  return Status();
}

// The compared columns and their CQL types (from a LIMIT 1 query's metadata).
Result<Layout> MakeLayout(CqlConnection& cql, const TableInfo& rel) {
  if (!rel.has_primary_key()) {
    return Status(StatusCode::kFailedPrecondition,
                  "table " + rel.name + " has no primary key: verify compares rows by key");
  }
  Layout layout;
  layout.keyspace = cql.keyspace();
  layout.table = rel.name;
  FERRY_RETURN_IF_ERROR(ReadCqlKey(cql, rel, &layout));
  for (size_t i : rel.primary_key) layout.rel.push_back(&rel.columns[i]);
  for (const auto& c : rel.columns) {
    if (c.pk_position == 0 && !c.generated) layout.rel.push_back(&c);
  }
  for (const auto* c : layout.rel) layout.columns.push_back(c->name);
  layout.key_columns = rel.primary_key.size();
  std::string probe = "SELECT " + ColumnList(layout.columns) + " FROM " +
                      QuoteIdent(layout.keyspace) + "." + QuoteIdent(layout.table) + " LIMIT 1";
  auto r = cql.Run(probe, {}, {}, false);
  if (!r.ok()) {
    return Status(StatusCode::kInvalidArgument,
                  "table " + rel.name + ": the CQL table lacks a column of the relational one (" +
                      r.status().message() + ")");
  }
  for (const auto& spec : r->columns) layout.types.push_back(spec.type);
  if (layout.types.size() != layout.columns.size()) {
    return Status(StatusCode::kInternal, "verify: CQL returned another number of columns");
  }
  return layout;
}

// A relational value's text in the form the CQL encoder reads.
std::string RelText(const CqlType& type, std::string_view v) {
  switch (type.id) {
    case TypeId::kBoolean:
      if (v == "t" || v == "1") return "true";
      if (v == "f" || v == "0") return "false";
      return std::string(v);
    case TypeId::kBlob:
      if (v.size() >= 2 && v[0] == '\\' && v[1] == 'x') return "0x" + std::string(v.substr(2));
      return std::string(v);
    default: return std::string(v);
  }
}

// Sub-millisecond digits a CQL timestamp would drop.
bool LosesMicros(std::string_view v) {
  size_t dot = v.find('.');
  if (dot == std::string_view::npos) return false;
  size_t i = dot + 1, digits = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i, ++digits) {
    if (digits >= 3 && v[i] != '0') return true;
  }
  return false;
}

// The canonical form of a relational value under the CQL column's type: the
// driver's own decoding of what it would encode; a value the type cannot
// hold exactly is marked so that it differs from every CQL value.
Value Canonical(const CqlType& type, std::optional<std::string_view> v) {
  if (!v) return std::nullopt;
  std::string text = RelText(type, *v);
  auto unfit = [&] { return "<not " + cql::TypeName(type) + ": " + text + ">"; };
  if (type.id == TypeId::kTimestamp && LosesMicros(text)) return unfit();
  auto enc = cql::EncodeValue(type, text);
  if (!enc.ok()) return unfit();
  auto dec = cql::DecodeValue(type, *enc);
  if (!dec.ok()) return unfit();
  return *dec;
}

Status ScanRelational(Connection& conn, const TableInfo& rel, const Layout& layout,
                      const std::string& sample_clause, SpillSide* out) {
  if (conn.engine() == Engine::kPostgres) FERRY_RETURN_IF_ERROR(conn.Exec("SET TimeZone = 'UTC'").status());
  std::vector<std::string> rel_cols;
  for (const auto* c : layout.rel) rel_cols.push_back(c->name);
  std::string sql = "SELECT " + ColumnList(rel_cols) + " FROM " + rel.QualifiedName() + sample_clause;
  std::vector<Value> row(layout.columns.size());
  return conn.Stream(sql, {}, [&](const RowView& view) {
    for (size_t i = 0; i < row.size(); ++i) row[i] = Canonical(layout.types[i], view.fields[i]);
    return out->Add(SpillKey(row, layout.key_columns), row);
  });
}

// Token slices of the Murmur3 ring: [lo, hi] inclusive, covering it all.
std::vector<std::pair<int64_t, int64_t>> TokenSlices(int n) {
  std::vector<std::pair<int64_t, int64_t>> out;
  // Offsets from the ring's first token, in unsigned arithmetic (the ring
  // has 2^64 tokens); converting back wraps into the signed range.
  const uint64_t width = std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(n);
  const uint64_t bias = uint64_t{1} << 63;
  for (int i = 0; i < n; ++i) {
    uint64_t a = width * static_cast<uint64_t>(i);
    uint64_t b = i == n - 1 ? std::numeric_limits<uint64_t>::max() : a + width - 1;
    out.emplace_back(static_cast<int64_t>(a - bias), static_cast<int64_t>(b - bias));
  }
  return out;
}

Status ScanCql(const std::string& url, const Layout& layout, int workers, SpillSide* out,
               int64_t* queries) {
  auto slices = TokenSlices(std::max(1, workers) * kSlicesPerWorker);
  std::string token = "token(" + ColumnList(layout.partition_key) + ")";
  std::string sql = "SELECT " + ColumnList(layout.columns) + " FROM " + QuoteIdent(layout.keyspace) +
                    "." + QuoteIdent(layout.table) + " WHERE " + token + " >= ? AND " + token + " <= ?";
  std::atomic<size_t> next{0};
  std::vector<Status> results(std::max(1, workers));
  std::vector<std::thread> threads;
  for (size_t w = 0; w < results.size(); ++w) {
    threads.emplace_back([&, w] {
      auto conn = OpenCql(url);
      if (!conn.ok()) {
        results[w] = conn.status();
        return;
      }
      std::vector<Value> row(layout.columns.size());
      for (size_t i = next++; i < slices.size(); i = next++) {
        Params p{std::to_string(slices[i].first), std::to_string(slices[i].second)};
        Status s = (*conn)->Stream(sql, p, [&](const RowView& view) {
          for (size_t c = 0; c < row.size(); ++c) {
            row[c] = view.fields[c] ? Value(std::string(*view.fields[c])) : std::nullopt;
          }
          return out->Add(SpillKey(row, layout.key_columns), row);
        });
        if (!s.ok()) {
          results[w] = s;
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  *queries = static_cast<int64_t>(slices.size());
  for (const auto& s : results) FERRY_RETURN_IF_ERROR(s);
  return Status();
}

// A private directory for the bucket files, removed with its files.
class SpillDir {
 public:
  static Result<SpillDir> Make() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ferry-verify.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      return Status(StatusCode::kInternal, "verify: cannot create a directory under " + tmpl);
    }
    return SpillDir(tmpl);
  }
  ~SpillDir() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  SpillDir(SpillDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  const std::string& path() const { return path_; }

 private:
  explicit SpillDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

struct Sides {
  std::string rel_url, cql_url;
  bool cql_is_target = true;
};

Result<TableVerifyResult> FullCompare(const VerifyOptions& o, const Sides& sides, Connection& rel_conn,
                                      const TableInfo& rel, const Layout& layout) {
  FERRY_ASSIGN_OR_RETURN(SpillDir dir, SpillDir::Make());
  int64_t est = std::max<int64_t>(rel.estimated_rows, 0);
  int buckets = static_cast<int>(std::min<int64_t>(1024, 1 + est / kRowsPerBucket));
  FERRY_ASSIGN_OR_RETURN(auto rel_spill, SpillSide::Create(dir.path(), "rel", buckets));
  FERRY_ASSIGN_OR_RETURN(auto cql_spill, SpillSide::Create(dir.path(), "cql", buckets));
  TableVerifyResult t;
  Status rel_status;
  std::thread rel_thread([&] { rel_status = ScanRelational(rel_conn, rel, layout, "", rel_spill.get()); });
  Status cql_status = ScanCql(sides.cql_url, layout, o.workers, cql_spill.get(), &t.target_first_pass.queries);
  rel_thread.join();
  FERRY_RETURN_IF_ERROR(rel_status);
  FERRY_RETURN_IF_ERROR(cql_status);
  FERRY_RETURN_IF_ERROR(rel_spill->Close());
  FERRY_RETURN_IF_ERROR(cql_spill->Close());
  const SpillSide& src = sides.cql_is_target ? *rel_spill : *cql_spill;
  const SpillSide& dst = sides.cql_is_target ? *cql_spill : *rel_spill;
  FERRY_RETURN_IF_ERROR(CompareSpills(src, dst, layout.columns, layout.key_columns, o.max_report, &t));
  t.source_rows = src.rows();
  t.target_rows = dst.rows();
  t.rows_fetched = t.source_rows + t.target_rows;
  FirstPassInfo rel_info{"one scan", "rows read", 1};
  FirstPassInfo cql_info{"token ranges", "rows read", t.target_first_pass.queries};
  t.source_first_pass = sides.cql_is_target ? rel_info : cql_info;
  t.target_first_pass = sides.cql_is_target ? cql_info : rel_info;
  return t;
}

// --sample: the relational side sampled, each row read from CQL by key.
Result<TableVerifyResult> SampleCompare(const VerifyOptions& o, const Sides& sides, Connection& rel_conn,
                                        const TableInfo& rel, const Layout& layout) {
  std::string clause;
  if (rel_conn.engine() == Engine::kPostgres) {
    clause = " TABLESAMPLE BERNOULLI (" + std::to_string(o.sample_percent) + ")";
  } else {
    clause = " WHERE abs(random()) % 1000000 < " +
             std::to_string(static_cast<int64_t>(o.sample_percent * 10000));
  }
  FERRY_ASSIGN_OR_RETURN(SpillDir dir, SpillDir::Make());
  FERRY_ASSIGN_OR_RETURN(auto rel_spill, SpillSide::Create(dir.path(), "rel", 1));
  FERRY_ASSIGN_OR_RETURN(auto cql_spill, SpillSide::Create(dir.path(), "cql", 1));
  FERRY_RETURN_IF_ERROR(ScanRelational(rel_conn, rel, layout, clause, rel_spill.get()));
  FERRY_RETURN_IF_ERROR(rel_spill->Close());
  FERRY_ASSIGN_OR_RETURN(auto cql, OpenCql(sides.cql_url));
  std::string where;
  for (size_t i = 0; i < layout.key_columns; ++i) {
    where += (i ? " AND " : "") + QuoteIdent(layout.columns[i]) + " = ?";
  }
  std::string sql = "SELECT " + ColumnList(layout.columns) + " FROM " + QuoteIdent(layout.keyspace) +
                    "." + QuoteIdent(layout.table) + " WHERE " + where;
  FERRY_RETURN_IF_ERROR(rel_spill->ForEach(0, [&](const std::string& key, const std::vector<Value>& row) {
    Params p(row.begin(), row.begin() + static_cast<long>(layout.key_columns));
    auto r = cql->Query(sql, p);
    if (!r.ok()) return r.status();
    return r->rows.empty() ? Status() : cql_spill->Add(key, r->rows[0]);
  }));
  FERRY_RETURN_IF_ERROR(cql_spill->Close());
  TableVerifyResult t;
  const SpillSide& src = sides.cql_is_target ? *rel_spill : *cql_spill;
  const SpillSide& dst = sides.cql_is_target ? *cql_spill : *rel_spill;
  FERRY_RETURN_IF_ERROR(CompareSpills(src, dst, layout.columns, layout.key_columns, o.max_report, &t));
  t.source_rows = src.rows();
  t.target_rows = dst.rows();
  t.rows_fetched = t.source_rows + t.target_rows;
  FirstPassInfo rel_info{"sample " + std::to_string(o.sample_percent) + "%", "rows read", 1};
  FirstPassInfo cql_info{"lookups by key", "rows read", rel_spill->rows()};
  t.source_first_pass = sides.cql_is_target ? rel_info : cql_info;
  t.target_first_pass = sides.cql_is_target ? cql_info : rel_info;
  return t;
}

Status CheckOptions(const VerifyOptions& o) {
  if (!o.job_id.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "verify --job works between relational databases; with a CQL side name the tables "
                  "(--table T or --all)");
  }
  if (!o.where.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "verify --where is SQL and cannot filter the CQL side; verify the whole table, or "
                  "use --sample PERCENT for a quick check");
  }
  if (o.sample_percent < 0 || o.sample_percent > 100) {
    return Status(StatusCode::kInvalidArgument, "--sample takes a percentage between 0 and 100");
  }
  if (IsCqlUrl(o.from_url) && IsCqlUrl(o.to_url)) {
    return Status(StatusCode::kInvalidArgument,
                  "verify compares a CQL table with a PostgreSQL or SQLite one; CQL on both sides "
                  "is not supported");
  }
  return Status();
}

}  // namespace

bool IsCqlUrl(const std::string& url) {
  auto u = Url::Parse(url);
  return u.ok() && u->scheme() == "cql";
}

Result<VerifyReport> VerifyWithCql(const VerifyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  FERRY_RETURN_IF_ERROR(CheckOptions(options));
  Sides sides;
  sides.cql_is_target = IsCqlUrl(options.to_url);
  sides.rel_url = sides.cql_is_target ? options.from_url : options.to_url;
  sides.cql_url = sides.cql_is_target ? options.to_url : options.from_url;
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> rel_conn, OpenConnection(sides.rel_url));
  FERRY_ASSIGN_OR_RETURN(auto cql, OpenCql(sides.cql_url));
  std::vector<std::string> tables = options.tables;
  if (options.all) {
    FERRY_ASSIGN_OR_RETURN(tables, ListTables(*rel_conn));
  }
  VerifyReport report;
  report.hash_in_db = false;
  size_t budget = options.max_report;
  for (const auto& name : tables) {
    FERRY_ASSIGN_OR_RETURN(TableInfo rel, DescribeTable(*rel_conn, name));
    FERRY_ASSIGN_OR_RETURN(Layout layout, MakeLayout(*cql, rel));
    VerifyOptions o = options;
    o.max_report = budget;
    auto r = options.sample_percent > 0 ? SampleCompare(o, sides, *rel_conn, rel, layout)
                                        : FullCompare(o, sides, *rel_conn, rel, layout);
    if (!r.ok()) return std::move(r).TakeStatus();
    r->table = name;
    r->key_columns.assign(layout.columns.begin(), layout.columns.begin() + static_cast<long>(layout.key_columns));
    int64_t total = r->missing + r->extra + r->changed;
    if (total > static_cast<int64_t>(r->differences.size())) report.truncated = true;
    budget -= r->differences.size();
    report.listed += r->differences.size();
    report.tables.push_back(std::move(*r));
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace ferry
