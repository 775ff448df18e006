// Copy PostgreSQL -> CQL: plan (mapping, target checks, chunks), then
// workers lease chunks from the control tables and upsert each chunk's rows
// with pipelined prepared INSERTs. See copy_cql.h.
#include "move/copy_cql.h"

#include <fmt/format.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <map>
#include <set>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/backoff.h"
#include "core/log.h"
#include "core/url.h"
#include "drivers/cql/cql_connection.h"
#include "drivers/cql/cql_error.h"
#include "drivers/registry.h"
#include "move/control.h"
#include "move/copy_checks.h"
#include "move/copy_progress.h"
#include "move/cql_map.h"
#include "move/table_info.h"

namespace ferry {
namespace {

using Clock = std::chrono::steady_clock;
using ConnPtr = std::unique_ptr<Connection>;
using cql::CqlConnection;

constexpr const char* kPgSourceSession =
    "SET standard_conforming_strings = on; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
    "SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'";
constexpr size_t kMaxListedKeys = 20;

Status Bad(std::string message) { return Status(StatusCode::kInvalidArgument, std::move(message)); }

struct TableJob {
  std::string source_name;
  std::string target_name;  // keyspace.table
  TableInfo src;
  CqlTarget target;
  bool target_exists = false;
  std::vector<KeyRange> ranges;
  std::string insert;
  std::string select_list;  // target expressions, write timestamp, source key
};

struct Setup {
  ConnPtr src;
  std::unique_ptr<CqlConnection> dst;
  ConnPtr ctl;  // nullptr in a plan when the control database does not exist yet
  std::string control_url;
  std::vector<TableJob> tables;
  std::string job_id;
  std::optional<JobRow> existing;
  std::string snapshot;
};

Result<std::unique_ptr<CqlConnection>> OpenCql(const std::string& url_text) {
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(url_text));
  auto c = CqlConnection::Open(url, {});
  if (!c.ok()) return std::move(c).TakeStatus().Prefix("target");
  return std::move(c).value();
}

Result<ConnPtr> OpenSource(const std::string& url) {
  ConnectOptions co;
  co.read_only = true;
  auto c = OpenConnection(url, co);
  if (!c.ok()) return std::move(c).TakeStatus().Prefix("source");
  if ((*c)->engine() != Engine::kPostgres) {
    return Bad("a copy to a CQL target reads a PostgreSQL source (postgres://...)");
  }
  FERRY_RETURN_IF_ERROR((*c)->Exec(kPgSourceSession).status());
  return std::move(*c);
}

// The control database; in a plan a default SQLite file that does not
// exist is not created (no job then).
Result<ConnPtr> OpenControl(const std::string& url, bool create) {
  if (!create && url == DefaultCqlControlUrl() &&
      !std::filesystem::exists(".ferry/copy-control.db")) {
    return ConnPtr();
  }
  if (create && url == DefaultCqlControlUrl()) {
    std::error_code ec;
    std::filesystem::create_directories(".ferry", ec);
    if (ec) return Status(StatusCode::kPermissionDenied, "cannot create .ferry/ for the control database: " + ec.message());
  }
  auto c = OpenConnection(url, {});
  if (!c.ok()) return std::move(c).TakeStatus().Prefix("control");
  return std::move(*c);
}

// The existing target table against the mapping: same primary key (names,
// order, clustering order), every mapped column present with its type.
Status CheckTarget(CqlConnection& dst, TableJob& t) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      dst.Query("SELECT column_name, kind, position, clustering_order, type FROM "
                "system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
                {t.target.keyspace, t.target.table}));
  t.target_exists = !r.empty();
  if (!t.target_exists) return Status();
  std::map<int, std::string> pk_at, ck_at, order_at;
  std::map<std::string, std::string> types;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    std::string name = r.Text(i, 0), kind = r.Text(i, 1);
    int pos = std::stoi(r.Text(i, 2));
    types[name] = r.Text(i, 4);
    if (kind == "partition_key") pk_at[pos] = name;
    if (kind == "clustering") {
      ck_at[pos] = name;
      order_at[pos] = r.Text(i, 3);
    }
  }
  std::vector<std::string> pk, ck, ck_order;
  for (const auto& [pos, name] : pk_at) pk.push_back(name);
  for (const auto& [pos, name] : ck_at) {
    ck.push_back(name);
    ck_order.push_back(order_at[pos]);
  }
  auto key_text = [](const std::vector<std::string>& names) { return fmt::format("({})", fmt::join(names, ", ")); };
  std::vector<std::string> want_pk, want_ck;
  bool same = pk.size() == t.target.partition_count && ck.size() == t.target.clustering_count;
  for (size_t i = 0; i < t.target.partition_count; ++i) {
    want_pk.push_back(t.target.columns[i].name);
    same = same && pk[i] == want_pk.back();
  }
  for (size_t i = 0; i < t.target.clustering_count; ++i) {
    want_ck.push_back(t.target.columns[t.target.partition_count + i].name);
    bool desc = t.target.clustering_order[i] == CqlOrder::kDesc;
    same = same && ck[i] == want_ck.back() && (ck_order[i] == "desc") == desc;
  }
  if (!same) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("target table {} has partition key {} and clustering {} ({}), the "
                              "mapping wants partition key {} and clustering {}; nothing was "
                              "written: fix the mapping or copy into another table",
                              t.target_name, key_text(pk), key_text(ck), fmt::join(ck_order, ", "),
                              key_text(want_pk), key_text(want_ck)))
        .With("table", t.target_name);
  }
  for (const auto& c : t.target.columns) {
    auto it = types.find(c.name);
    if (it == types.end()) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("target table {} has no column {} ({}); add it (ALTER TABLE {} ADD "
                                "{} {}) or drop it from the mapping",
                                t.target_name, c.name, c.cql_type, t.target.QualifiedName(),
                                QuoteCql(c.name), c.cql_type))
          .With("table", t.target_name);
    }
    if (it->second != c.cql_type) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("target column {}.{} is {}, the source's values need {}; map the "
                                "column with another expression or change the table",
                                t.target_name, c.name, it->second, c.cql_type))
          .With("table", t.target_name);
    }
  }
  return Status();
}

Status SplitRanges(const CopyOptions& o, Connection& src, TableJob& t) {
  if (!t.src.has_primary_key()) {
    t.ranges = {KeyRange{}};
    return Status();
  }
  const int64_t per = std::max<int64_t>(o.batch_rows, 1);
  if (HasIntegerKey(t.src)) {
    auto ranges = SplitIntegerKeyRange(src, t.src, o.where, t.src.estimated_rows, per);
    if (ranges.ok()) {
      t.ranges = std::move(*ranges);
      return Status();
    }
    if (ranges.status().code() != StatusCode::kFailedPrecondition) return ranges.status();
  }
  FERRY_ASSIGN_OR_RETURN(t.ranges, SplitByKey(src, t.src, KeyRange{}, o.where, per));
  return Status();
}

nlohmann::json SpecJson(const CopyOptions& o, const Setup& s) {
  nlohmann::json tables = nlohmann::json::array();
  for (const auto& t : s.tables) {
    tables.push_back({{"source", t.source_name}, {"target", t.target_name}, {"insert", t.insert}});
  }
  return {{"from", s.src->redacted_url()}, {"to", s.dst->redacted_url()}, {"where", o.where},
          {"tables", tables}};
}

Status CheckResume(const CopyOptions& o, const Setup& s) {
  if (!s.existing || o.restart) return Status();
  if (s.existing->kind != "copy") {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("job '{}' in the control tables is a {} job; choose another --job",
                              s.job_id, s.existing->kind));
  }
  nlohmann::json spec = nlohmann::json::parse(s.existing->spec, nullptr, false);
  nlohmann::json now = SpecJson(o, s);
  if (spec.is_discarded() || spec.value("from", "") != now["from"] || spec.value("where", "") != o.where ||
      spec["tables"] != now["tables"]) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("job '{}' was started with another source, --where, table list or "
                              "mapping; resume it with the same ones, or start over with "
                              "--restart, or name this copy with --job",
                              s.job_id));
  }
  return Status();
}

Result<Setup> Prepare(const CopyOptions& o, bool for_run) {
  if (o.tables.empty() && !o.all) return Bad("name the tables to copy with --table T (repeatable) or --all");
  if (o.workers < 1 || o.workers > 64) return Bad("--workers must be from 1 to 64");
  if (o.truncate || o.append) {
    return Bad("--truncate/--append do not apply to a CQL target: rows are upserted by key "
               "(existing rows with the same key are overwritten)");
  }
  if (o.split == "pages") {
    return Bad("--split pages does not apply to a CQL target: chunks are primary-key ranges "
               "(a resumed chunk is re-written by key, so ranges must not move)");
  }
  if (o.in_flight < 1 || o.in_flight > 1024) return Bad("in-flight writes must be from 1 to 1024");
  Setup s;
  FERRY_ASSIGN_OR_RETURN(s.src, OpenSource(o.from_url));
  FERRY_RETURN_IF_ERROR(CheckWhereShape(o.where, Engine::kPostgres));
  FERRY_ASSIGN_OR_RETURN(s.dst, OpenCql(o.to_url));
  CqlMapping mapping;
  if (!o.map_file.empty()) {
    FERRY_ASSIGN_OR_RETURN(mapping, LoadCqlMapping(o.map_file));
  }
  s.control_url = o.control_url.empty() ? DefaultCqlControlUrl() : o.control_url;
  FERRY_ASSIGN_OR_RETURN(s.ctl, OpenControl(s.control_url, false));  // created by the run, after the checks
  s.job_id = o.job_id.empty() ? DefaultCopyJobId(o) : o.job_id;
  if (s.ctl) {
    ControlTables ctl(*s.ctl);
    auto job = ctl.GetJob(s.job_id);
    if (job.ok()) s.existing = *job;
  }
  std::vector<std::string> names = o.tables;
  if (o.all) {
    FERRY_ASSIGN_OR_RETURN(names, ListTables(*s.src));
  }
  std::set<std::string> targets;
  for (const auto& n : names) {
    TableJob t;
    t.source_name = n;
    FERRY_ASSIGN_OR_RETURN(t.src, DescribeTable(*s.src, n));
    const CqlTableMap* map = mapping.Find(t.src.schema, t.src.name);
    auto target = ResolveCqlTarget(t.src, map, s.dst->keyspace(), o.allow_lossy);
    if (!target.ok()) return std::move(target).TakeStatus().With("table", n);
    t.target = std::move(*target);
    t.target_name = t.target.keyspace + "." + t.target.table;
    if (!targets.insert(t.target_name).second) {
      return Bad(fmt::format("two source tables map to the CQL table {}", t.target_name));
    }
    t.insert = t.target.InsertCql();
    std::vector<std::string> select = t.target.SelectList();
    for (size_t k : t.src.primary_key) select.push_back(QuoteIdent(t.src.columns[k].name) + "::text");
    t.select_list = fmt::format("{}", fmt::join(select, ", "));
    FERRY_RETURN_IF_ERROR(CheckTarget(*s.dst, t));
    if (!t.target_exists && !o.create_tables) {
      return Status(StatusCode::kNotFound,
                    fmt::format("CQL table {} does not exist; run with --create-tables to create "
                                "it from the mapping (--dry-run shows the CQL)",
                                t.target_name))
          .With("table", t.target_name);
    }
    s.tables.push_back(std::move(t));
  }
  FERRY_RETURN_IF_ERROR(CheckResume(o, s));
  if (for_run) {
    FERRY_RETURN_IF_ERROR(s.src->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").status());
    FERRY_ASSIGN_OR_RETURN(QueryResult snap, s.src->Query("SELECT pg_export_snapshot()"));
    s.snapshot = snap.Text(0, 0);
  }
  if (!s.existing || o.restart) {
    for (auto& t : s.tables) {
      Status st = SplitRanges(o, *s.src, t);
      if (!st.ok()) return std::move(st).With("table", t.source_name);
    }
  }
  return s;
}

struct ChunkResult {
  int64_t rows = 0, bytes = 0, bad_rows = 0;
  std::vector<std::string> bad;  // "key: why", at most kMaxListedKeys
};

class Worker {
 public:
  Worker(const CopyOptions& o, const Setup& s, std::string owner, Progress& progress,
         std::atomic<bool>& stop, Status* fatal, std::mutex* fatal_mu)
      : o_(o), s_(s), owner_(std::move(owner)), progress_(progress), stop_(stop), fatal_(fatal),
        fatal_mu_(fatal_mu) {}

  void Run() {
    Status st = Loop();
    if (!st.ok()) {
      std::lock_guard lock(*fatal_mu_);
      if (fatal_->ok()) *fatal_ = st;
      stop_ = true;
    }
    if (src_) (void)src_->Exec("ROLLBACK");
  }

 private:
  bool Cancelled() const { return stop_ || (o_.cancel != nullptr && o_.cancel->load()); }

  Status Connect() {
    if (!src_) {
      FERRY_ASSIGN_OR_RETURN(src_, OpenSource(o_.from_url));
      FERRY_RETURN_IF_ERROR(src_->Exec(fmt::format("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                                                   "SET TRANSACTION SNAPSHOT {}",
                                                   PgLiteral(s_.snapshot)))
                                .status());
    }
    if (!dst_) {
      FERRY_ASSIGN_OR_RETURN(dst_, OpenCql(o_.to_url));
    }
    if (!ctl_) {
      FERRY_ASSIGN_OR_RETURN(ctl_, OpenControl(s_.control_url, true));
    }
    return Status();
  }

  Status Loop() {
    while (!Cancelled()) {
      FERRY_RETURN_IF_ERROR(Connect());
      ControlTables ctl(*ctl_);
      FERRY_ASSIGN_OR_RETURN(std::optional<ChunkRow> chunk,
                             ctl.LeaseChunk(s_.job_id, owner_, o_.lease, o_.max_attempts));
      if (!chunk) return Status();
      FERRY_RETURN_IF_ERROR(Process(*chunk));
    }
    return Status();
  }

  const TableJob* FindTable(const std::string& name) const {
    for (const auto& t : s_.tables) {
      if (t.target_name == name) return &t;
    }
    return nullptr;
  }

  Status Process(ChunkRow chunk) {
    const TableJob* t = FindTable(chunk.table_name);
    if (t == nullptr) return Status(StatusCode::kInternal, "chunk of a table not in the job: " + chunk.table_name);
    FERRY_ASSIGN_OR_RETURN(KeyRange range, KeyRange::Decode(chunk.range_spec));
    CopyProgress ev;
    ev.table = t->target_name;
    ev.chunk_id = chunk.chunk_id;
    ev.range = range.ToString();
    ev.attempt = chunk.attempts;
    progress_.Emit("chunk_started", ev, false, false);
    Status last;
    for (int attempt = 1; attempt <= o_.max_attempts; ++attempt) {
      Status c = Connect();
      Result<ChunkResult> r = c.ok() ? CopyChunk(*t, range) : Result<ChunkResult>(c);
      if (r.ok()) return Finish(chunk, ev, *r);
      last = r.status();
      src_.reset();  // a new snapshot transaction for the next attempt
      if (last.code() == StatusCode::kCancelled || !IsRetryable(last.code()) || attempt == o_.max_attempts) break;
      dst_.reset();
      ev.attempt = attempt;
      ev.error = last.ToString();
      progress_.Emit("chunk_retry", ev, false, false, ErrorTypeOf(last));
      std::this_thread::sleep_for(RetryDelay(std::chrono::milliseconds(500), attempt, std::chrono::milliseconds(8000)));
    }
    ControlTables ctl(*ctl_);
    if (last.code() == StatusCode::kCancelled) return ctl.ReleaseLease(s_.job_id, chunk.chunk_id, owner_);
    if (!IsRetryable(last.code()) && last.code() != StatusCode::kUnknown) {
      (void)ctl.ReleaseLease(s_.job_id, chunk.chunk_id, owner_);
      return last;  // not about one row (e.g. the table was dropped): stop the job
    }
    chunk.state = ChunkState::kFailed;
    chunk.attempts = std::max(chunk.attempts, o_.max_attempts);
    chunk.error = RedactSecrets(last.ToString());
    FERRY_RETURN_IF_ERROR(ctl.FinishChunk(chunk));
    ev.error = chunk.error;
    progress_.Emit("chunk_failed", ev, false, true, ErrorTypeOf(last));
    return Status();
  }

  // Records the chunk: done when every row was written, failed (with the
  // keys of the rows that were not) otherwise.
  Status Finish(ChunkRow chunk, CopyProgress ev, const ChunkResult& r) {
    ControlTables ctl(*ctl_);
    chunk.bytes = r.bytes;
    if (r.bad_rows == 0) {
      chunk.state = ChunkState::kDone;
      chunk.rows = r.rows;
      chunk.error.clear();
      FERRY_RETURN_IF_ERROR(ctl.FinishChunk(chunk));
      ev.rows = r.rows;
      ev.bytes = r.bytes;
      ev.error.clear();
      progress_.Emit("chunk_done", ev, true, false);
      return Status();
    }
    chunk.state = ChunkState::kFailed;
    chunk.attempts = std::max(chunk.attempts, o_.max_attempts);
    chunk.rows = r.bad_rows;
    chunk.error = fmt::format("{} rows not written ({} written); keys: {}{}", r.bad_rows, r.rows,
                              fmt::join(r.bad, "; "),
                              r.bad_rows > static_cast<int64_t>(r.bad.size()) ? "; ..." : "");
    FERRY_RETURN_IF_ERROR(ctl.FinishChunk(chunk));
    ev.rows = r.bad_rows;
    ev.error = chunk.error;
    progress_.Emit("chunk_failed", ev, false, true, "bad_rows");
    return Status();
  }

  struct InFlight {
    cql::PendingExecute pending;
    Params params;
    std::string key;
  };

  // Waits for the oldest write; a retryable failure is re-run (Run
  // re-prepares too) with backoff, a rejected row is counted.
  Status Drain(std::deque<InFlight>& q, const TableJob& t, ChunkResult& out) {
    InFlight f = std::move(q.front());
    q.pop_front();
    Status st = dst_->WaitExecute(f.pending);
    for (int attempt = 1; !st.ok() && (IsRetryable(st.code()) || cql::IsUnprepared(st)); ++attempt) {
      if (attempt >= o_.max_attempts) return st;
      if (!cql::IsUnprepared(st)) {
        std::this_thread::sleep_for(RetryDelay(std::chrono::milliseconds(100), attempt, std::chrono::milliseconds(5000)));
      }
      st = dst_->Run(t.insert, f.params, {}).status();
    }
    if (!st.ok()) return Reject(out, f.key, st);
    out.rows++;
    return Status();
  }

  Status Reject(ChunkResult& out, const std::string& key, const Status& why) {
    out.bad_rows++;
    if (out.bad.size() < kMaxListedKeys) out.bad.push_back(fmt::format("({}): {}", key, why.message()));
    return Status();
  }

  void Pace(int64_t sent) {
    if (o_.max_rate <= 0) return;
    double per_worker = o_.max_rate / o_.workers;
    auto due = pace_start_ + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(static_cast<double>(sent) / per_worker));
    if (due > Clock::now()) std::this_thread::sleep_until(due);
  }

  Result<ChunkResult> CopyChunk(const TableJob& t, const KeyRange& range) {
    Params params;
    std::string pred = RangePredicate(t.src, range, params);
    if (!o_.where.empty()) pred = fmt::format("({}) AND ({})", pred, o_.where);
    std::string sql = fmt::format("SELECT {} FROM {} WHERE {}", t.select_list, t.src.QualifiedName(), pred);
    ChunkResult out;
    std::deque<InFlight> q;
    const size_t values = t.target.columns.size() + (t.target.write_timestamp.empty() ? 0 : 1);
    pace_start_ = Clock::now();
    int64_t sent = 0;
    std::vector<std::optional<std::string_view>> row;
    Status st = src_->Stream(sql, params, [&](const RowView& v) -> Status {
      if (o_.cancel != nullptr && o_.cancel->load()) return Status(StatusCode::kCancelled, "copy stopped");
      row.assign(v.fields.begin(), v.fields.begin() + static_cast<std::ptrdiff_t>(values));
      std::string key;
      for (size_t i = values; i < v.fields.size(); ++i) {
        key += (key.empty() ? "" : ", ") + std::string(v.fields[i].value_or("NULL"));
      }
      if (v.fields.size() == values) {  // no source key: the target key columns name the row
        const size_t keys = t.target.partition_count + t.target.clustering_count;
        for (size_t i = 0; i < keys && i < values; ++i) {
          key += (key.empty() ? "" : ", ") + std::string(v.fields[i].value_or("NULL"));
        }
      }
      InFlight f;
      f.key = std::move(key);
      Status conv = t.target.ConvertRow(row, &f.params);
      if (!conv.ok()) return Reject(out, f.key, conv);
      for (const auto& p : f.params) out.bytes += p ? static_cast<int64_t>(p->size()) : 0;
      Pace(sent++);
      auto pending = dst_->SendExecute(t.insert, f.params);
      if (!pending.ok() && pending.status().code() == StatusCode::kInvalidArgument) {
        return Reject(out, f.key, pending.status());  // a value the driver cannot encode
      }
      if (!pending.ok()) return pending.status();
      f.pending = *pending;
      q.push_back(std::move(f));
      if (q.size() >= static_cast<size_t>(o_.in_flight)) return Drain(q, t, out);
      return Status();
    });
    // Every write sent is waited for, also after an error (the session stays usable).
    Status drained;
    while (!q.empty()) {
      Status d = Drain(q, t, out);
      if (drained.ok()) drained = d;
    }
    FERRY_RETURN_IF_ERROR(st);
    FERRY_RETURN_IF_ERROR(drained);
    return out;
  }

  const CopyOptions& o_;
  const Setup& s_;
  std::string owner_;
  Progress& progress_;
  std::atomic<bool>& stop_;
  Status* fatal_;
  std::mutex* fatal_mu_;
  ConnPtr src_, ctl_;
  std::unique_ptr<CqlConnection> dst_;
  Clock::time_point pace_start_;
};

CopyPlan PlanOf(const CopyOptions& o, const Setup& s) {
  CopyPlan plan;
  plan.job_id = s.job_id;
  plan.source = s.src->redacted_url();
  plan.target = s.dst->redacted_url();
  plan.resumes = s.existing.has_value() && !o.restart;
  for (const auto& t : s.tables) {
    CopyTablePlan p;
    p.source_name = t.source_name;
    p.target_name = t.target_name;
    p.split = t.src.has_primary_key() ? "primary key" : "single chunk";
    p.estimated_rows = t.src.estimated_rows;
    p.chunks = static_cast<int64_t>(t.ranges.size());
    p.target_exists = t.target_exists;
    if (!t.target_exists) {
      p.ddl.push_back(t.target.CreateKeyspaceCql());
      p.ddl.push_back(t.target.CreateTableCql());
    }
    p.ddl.push_back("-- each row: " + t.insert);
    plan.tables.push_back(std::move(p));
  }
  return plan;
}

Result<CopySummary> Tally(Connection& ctl_conn, const std::string& job_id) {
  ControlTables ctl(ctl_conn);
  FERRY_ASSIGN_OR_RETURN(std::vector<ChunkRow> chunks, ctl.ListChunks(job_id));
  CopySummary s;
  s.job_id = job_id;
  s.chunks_total = static_cast<int64_t>(chunks.size());
  for (const ChunkRow& c : chunks) {
    if (c.state == ChunkState::kDone) {
      s.chunks_done++;
      s.rows_copied += c.rows;
      s.bytes_copied += c.bytes;
    } else if (c.state == ChunkState::kFailed) {
      s.chunks_failed++;
      s.rows_failed += c.rows;
      auto r = KeyRange::Decode(c.range_spec);
      s.failures.push_back({c.table_name, r.ok() ? r->ToString() : c.range_spec, c.error});
    }
  }
  return s;
}

Status CreateTables(const CopyOptions& o, Setup& s) {
  bool created = false;
  for (auto& t : s.tables) {
    if (t.target_exists) continue;
    if (!o.create_tables) return Status(StatusCode::kNotFound, "CQL table " + t.target_name + " does not exist");
    FERRY_RETURN_IF_ERROR(s.dst->Exec(t.target.CreateKeyspaceCql()).status());
    FERRY_RETURN_IF_ERROR(s.dst->Exec(t.target.CreateTableCql()).status());
    created = true;
  }
  if (created) FERRY_RETURN_IF_ERROR(s.dst->WaitForSchemaAgreement(std::chrono::seconds(60)));
  return Status();
}

// Creates (or restarts) the job and its chunks; false when it was done.
Result<bool> StartJob(const CopyOptions& o, Setup& s, CopySummary* summary) {
  ControlTables ctl(*s.ctl);
  FERRY_RETURN_IF_ERROR(ctl.Ensure());
  if (s.existing && o.restart) FERRY_RETURN_IF_ERROR(ctl.DeleteJob(s.job_id));
  if (s.existing && !o.restart) {
    summary->resumed = true;
    if (s.existing->state == JobState::kDone) return false;
    FERRY_RETURN_IF_ERROR(ctl.ReclaimDeadLeases(s.job_id).status());
    FERRY_RETURN_IF_ERROR(ctl.ResetFailedChunks(s.job_id));
    return true;
  }
  JobRow job;
  job.job_id = s.job_id;
  job.kind = "copy";
  job.spec = SpecJson(o, s).dump();
  job.state = JobState::kRunning;
  job.owner = ThisWorkerName();
  FERRY_RETURN_IF_ERROR(ctl.CreateJob(job));
  std::vector<ChunkRow> chunks;
  for (const auto& t : s.tables) {
    for (const auto& r : t.ranges) {
      ChunkRow c;
      c.job_id = s.job_id;
      c.chunk_id = static_cast<int64_t>(chunks.size()) + 1;
      c.table_name = t.target_name;
      c.range_spec = r.Encode();
      chunks.push_back(std::move(c));
    }
  }
  FERRY_RETURN_IF_ERROR(ctl.AddChunks(chunks));
  return true;
}

}  // namespace

bool IsCqlTarget(const std::string& url) {
  auto parsed = Url::Parse(url);
  return parsed.ok() && parsed->scheme() == "cql";
}

std::string DefaultCqlControlUrl() { return "sqlite:.ferry/copy-control.db"; }

Result<CopyPlan> PlanCopyToCql(const CopyOptions& o) {
  FERRY_ASSIGN_OR_RETURN(Setup s, Prepare(o, false));
  return PlanOf(o, s);
}

Result<CopySummary> RunCopyToCql(const CopyOptions& o, EventBus* bus, CopySummary* partial) {
  if (o.dry_run) return Bad("--dry-run plans only: call PlanCopy");
  auto started = Clock::now();
  FERRY_ASSIGN_OR_RETURN(Setup s, Prepare(o, true));
  CopySummary head;
  head.job_id = s.job_id;
  if (!s.ctl) {
    FERRY_ASSIGN_OR_RETURN(s.ctl, OpenControl(s.control_url, true));
  }
  FERRY_RETURN_IF_ERROR(CreateTables(o, s));
  FERRY_ASSIGN_OR_RETURN(bool run, StartJob(o, s, &head));
  ControlTables ctl(*s.ctl);
  if (!run) {
    FERRY_ASSIGN_OR_RETURN(CopySummary done, Tally(*s.ctl, s.job_id));
    done.resumed = true;
    done.already_done = true;
    return done;
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<ChunkRow> chunks, ctl.ListChunks(s.job_id));
  Progress progress(s.job_id, s.dst->redacted_url(), bus);
  std::map<std::string, std::pair<int64_t, int64_t>> per_table;  // chunks, done
  for (const auto& c : chunks) per_table[c.table_name].first++;
  for (const auto& t : s.tables) progress.AddTable(t.target_name, t.src.estimated_rows, per_table[t.target_name].first);
  for (const auto& c : chunks) {
    if (c.state == ChunkState::kDone) progress.AddDone(c.table_name, c.rows, c.bytes);
  }
  progress.EmitJob("job_started");
  std::atomic<bool> stop{false};
  Status fatal;
  std::mutex fatal_mu;
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < o.workers; ++i) {
    workers.push_back(std::make_unique<Worker>(o, s, fmt::format("{}/{}", ThisWorkerName(), i),
                                               progress, stop, &fatal, &fatal_mu));
  }
  for (auto& w : workers) threads.emplace_back([&w] { w->Run(); });
  for (auto& th : threads) th.join();
  (void)s.src->Exec("ROLLBACK");  // the snapshot can go now
  FERRY_ASSIGN_OR_RETURN(CopySummary summary, Tally(*s.ctl, s.job_id));
  summary.resumed = head.resumed;
  summary.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const bool cancelled = o.cancel != nullptr && o.cancel->load();
  FERRY_ASSIGN_OR_RETURN(std::optional<JobRow> job, ctl.GetJob(s.job_id));
  if (job) {
    job->rows_done = summary.rows_copied;
    job->rows_failed = summary.rows_failed;
    job->bytes_done = summary.bytes_copied;
    job->owner = ThisWorkerName();
    bool all_done = summary.chunks_done == summary.chunks_total;
    job->state = all_done && fatal.ok() ? JobState::kDone
                 : cancelled            ? JobState::kCancelled
                 : summary.chunks_failed > 0 || !fatal.ok() ? JobState::kFailed
                                                            : JobState::kRunning;
    job->error = fatal.ok() ? "" : RedactSecrets(fatal.ToString());
    FERRY_RETURN_IF_ERROR(ctl.UpdateJob(*job));
  }
  progress.EmitJob("job_done");
  if (partial != nullptr) *partial = summary;
  if (!fatal.ok()) return fatal;
  if (cancelled && summary.chunks_done < summary.chunks_total) {
    return Status(StatusCode::kCancelled, fmt::format("copy job {} stopped; run the same command to resume", s.job_id))
        .With("job", s.job_id);
  }
  if (summary.chunks_failed > 0) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("copy job {}: {} rows copied, {} rows failed in {} chunks (listed "
                              "with their keys by ferry copy --status {} --to URL); fix them and "
                              "run the same command again",
                              s.job_id, summary.rows_copied, summary.rows_failed,
                              summary.chunks_failed, s.job_id))
        .With("job", s.job_id);
  }
  return summary;
}

}  // namespace ferry
