// Copy engine, worker stage: each worker leases the next pending chunk from
// the target's control tables, reads it from the job's snapshot and writes
// it (binary COPY between PostgreSQL servers, through a bounded block pipe),
// committing the rows with the chunk's "done" mark.
#include "move/copy.h"
#include "move/copy_internal.h"
#include "core/backoff.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include <unistd.h>

#include "core/log.h"
#include "core/url.h"
#include "drivers/registry.h"
#include "move/block_pipe.h"
#include "move/control.h"
#include "move/copy_checks.h"
#include "move/copy_indexes.h"
#include "move/copy_progress.h"
#include "move/copy_cql.h"
#include "move/copy_types.h"
#include "move/table_info.h"

namespace ferry::copy_internal {

// The SQL a worker runs per chunk, fixed per table.
void BuildSql(TableJob& t, Engine target_engine) {
  const bool pg_src = t.src.engine == Engine::kPostgres;
  const bool pg_dst = target_engine == Engine::kPostgres;
  t.column_list.clear();
  t.select_list.clear();
  t.blob_param.clear();
  t.bytea_hex.clear();
  for (const ColumnInfo* c : t.columns) {
    std::string q = QuoteIdent(c->name);
    if (!t.column_list.empty()) t.column_list += ", ";
    t.column_list += q;
    std::string expr = q;
    const ColumnInfo* d = t.target_exists ? t.dst.Find(c->name) : nullptr;
    if (pg_src && !pg_dst) {
      std::string base = StripTypmod(c->base_type);
      if (!c->is_array && base == "boolean") expr = fmt::format("({})::boolean::int", q);
      t.bytea_hex.push_back(!c->is_array && base == "bytea");
      t.blob_param.push_back(!c->is_array && base == "bytea");
    } else if (!pg_src) {
      bool to_bytea = pg_dst ? (d ? StripTypmod(d->base_type) == "bytea"
                                  : PgTypeForSqlite(c->type) == "bytea")
                             : false;
      expr = fmt::format(
          "CASE typeof({0}) WHEN 'real' THEN printf('%!.17g', {0}){1} ELSE {0} END", q,
          to_bytea ? fmt::format(" WHEN 'blob' THEN '\\x' || lower(hex({}))", q) : "");
      t.bytea_hex.push_back(false);
      std::string_view aff = SqliteAffinity(d ? d->type : c->type);
      t.blob_param.push_back(!pg_dst && aff == "BLOB" && !(d ? d->type : c->type).empty());
    }
    if (!t.select_list.empty()) t.select_list += ", ";
    t.select_list += expr;
  }
  std::string target = t.dst.QualifiedName();
  if (pg_dst) {
    t.copy_in = fmt::format("COPY {} ({}) FROM STDIN{}", target, t.column_list,
                            pg_src ? " (FORMAT binary)" : "");
  } else {
    t.insert_prefix = fmt::format("INSERT INTO {} ({}) VALUES ", target, t.column_list);
  }
}

namespace {

// The reader -> writer pipe of each worker: blocks of kBlockBytes, at most
// kBlocks of them (recycled), so a worker holds about 2 MiB however large the
// table (one row larger than a block grows its block for that row only).
constexpr size_t kBlocks = 8;
constexpr size_t kBlockBytes = 256 * 1024;

struct ChunkCount {
  int64_t rows = 0;
  int64_t bytes = 0;
};

class Worker {
 public:
  Worker(const CopyOptions& o, std::vector<TableJob>& tables, const std::string& job_id,
         const std::string& snapshot, std::string owner, Progress& progress,
         std::atomic<bool>& fatal_flag, Status* fatal, std::mutex* fatal_mu)
      : o_(o), tables_(tables), job_id_(job_id), snapshot_(snapshot), owner_(std::move(owner)),
        progress_(progress), stop_(fatal_flag), fatal_(fatal), fatal_mu_(fatal_mu) {}

  void Run() {
    Status s = Loop();
    if (!s.ok()) {
      std::lock_guard lock(*fatal_mu_);
      if (fatal_->ok()) *fatal_ = s;
      stop_ = true;
    }
    if (src_) (void)src_->Rollback();
  }

 private:
  Status Connect() {
    if (!src_) {
      FERRY_ASSIGN_OR_RETURN(src_, Open(o_.from_url, "source"));
      if (IsPg(*src_)) {
        FERRY_RETURN_IF_ERROR(src_->Exec(kPgSourceSession).status());
      }
      src_in_snapshot_ = false;
    }
    if (IsPg(*src_) && !src_in_snapshot_) {
      Status s = src_->Exec(fmt::format("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                                        "SET TRANSACTION SNAPSHOT {}",
                                        PgLiteral(snapshot_)))
                     .status();
      if (!s.ok()) {
        (void)src_->Rollback();
        if (s.code() == StatusCode::kUnavailable) {
          src_.reset();
          return s;
        }
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("cannot join the job's snapshot {} on the source: {}; run ferry "
                                  "copy again to resume with a new snapshot",
                                  snapshot_, s.message()));
      }
      src_in_snapshot_ = true;
    }
    if (!dst_) {
      FERRY_ASSIGN_OR_RETURN(dst_, Open(o_.to_url, "target"));
    }
    return Status();
  }

  // After a failed attempt: leave both sessions ready (or drop them).
  void Reset(const Status& why) {
    if (dst_) {
      if (why.code() == StatusCode::kUnavailable || !dst_->Rollback().ok()) dst_.reset();
    }
    if (src_) {
      if (why.code() == StatusCode::kUnavailable || !src_->Rollback().ok()) src_.reset();
      src_in_snapshot_ = false;
    }
  }

  // Retries `fn` on retryable errors with backoff, reconnecting.
  template <typename F>
  auto Retrying(F fn) -> decltype(fn()) {
    for (int attempt = 1;; ++attempt) {
      Status c = Connect();
      if (c.ok()) {
        auto r = fn();
        if (r.ok()) return r;
        c = StatusOf(r);
      }
      if (!IsRetryable(c.code()) || attempt >= o_.max_attempts || stop_) return c;
      FERRY_LOG_INFO("copy: retrying after: {}", c.ToString());
      Reset(c);
      std::this_thread::sleep_for(Backoff(attempt));
    }
  }

  static Status StatusOf(const Status& s) { return s; }
  template <typename T>
  static Status StatusOf(const Result<T>& r) {
    return r.status();
  }
  static std::chrono::milliseconds Backoff(int attempt) {
    return RetryDelay(std::chrono::milliseconds(500), attempt, std::chrono::milliseconds(8000));
  }

  bool Cancelled() const { return o_.cancel != nullptr && o_.cancel->load(); }

  // Gives a leased chunk back (pending), e.g. when the run stops between
  // two attempts of it.
  Status Release(int64_t chunk_id) {
    return Retrying([&]() -> Status {
      ControlTables ctl(*dst_);
      return ctl.ReleaseLease(job_id_, chunk_id, owner_);
    });
  }

  Status Loop() {
    while (!stop_ && !Cancelled()) {
      auto leased = Retrying([&]() -> Result<std::optional<ChunkRow>> {
        ControlTables ctl(*dst_);
        return ctl.LeaseChunk(job_id_, owner_, o_.lease, o_.max_attempts);
      });
      if (!leased.ok()) return std::move(leased).TakeStatus();
      if (!*leased) return Status();
      FERRY_RETURN_IF_ERROR(Process(**leased));
    }
    return Status();
  }

  TableJob* FindTable(const std::string& name) {
    for (auto& t : tables_) {
      if (t.target_name == name) return &t;
    }
    return nullptr;
  }

  Status Process(ChunkRow chunk) {
    TableJob* t = FindTable(chunk.table_name);
    if (t == nullptr) {
      return Status(StatusCode::kInternal,
                    fmt::format("chunk {} names table {} that is not in the job", chunk.chunk_id,
                                chunk.table_name));
    }
    FERRY_ASSIGN_OR_RETURN(KeyRange range, KeyRange::Decode(chunk.range_spec));
    CopyProgress ev;
    ev.table = t->target_name;
    ev.chunk_id = chunk.chunk_id;
    ev.range = RangeText(*t, range);
    ev.attempt = chunk.attempts;
    progress_.Emit("chunk_started", ev, false, false);
    Status last;
    bool out_of_attempts = false;  // else the run stopped between attempts
    for (int attempt = 1; attempt <= o_.max_attempts && !stop_ && !Cancelled(); ++attempt) {
      Status c = Connect();
      if (c.ok()) {
        auto r = CopyChunk(*t, range, chunk);
        if (r.ok()) {
          ev.rows = r->rows;
          ev.bytes = r->bytes;
          ev.error.clear();
          progress_.Emit("chunk_done", ev, true, false);
          return Status();
        }
        c = r.status();
      }
      Reset(c);
      if (c.Get("lease") == "lost") return Status();  // another worker owns it now
      last = c;
      if (!IsRetryable(c.code()) || attempt == o_.max_attempts) {
        out_of_attempts = true;
        break;
      }
      ev.attempt = attempt;
      ev.error = c.ToString();
      progress_.Emit("chunk_retry", ev, false, false, ErrorTypeOf(c));
      std::this_thread::sleep_for(Backoff(attempt));
    }
    if (!out_of_attempts) return Release(chunk.chunk_id);
    // Failed for good: record it (outside any chunk transaction). This
    // worker already retried what can be retried, so the chunk is not leased
    // again in this run (the next run resets failed chunks).
    chunk.state = ChunkState::kFailed;
    chunk.attempts = std::max(chunk.attempts, o_.max_attempts);
    chunk.error = last.ToString();
    chunk.rows = CountSourceRows(*t, range);
    chunk.bytes = 0;
    Status rec = Retrying([&]() -> Status {
      ControlTables ctl(*dst_);
      return ctl.FinishChunk(chunk);
    });
    if (!rec.ok() && rec.code() != StatusCode::kAborted) return rec;
    ev.rows = std::max<int64_t>(chunk.rows, 0);
    ev.bytes = 0;
    ev.error = chunk.error;
    progress_.Emit("chunk_failed", ev, false, true, ErrorTypeOf(last));
    return Status();
  }

  int64_t CountSourceRows(const TableJob& t, const KeyRange& range) {
    if (!Connect().ok()) return 0;
    Params params;
    std::string pred = ChunkPredicate(t, range, o_.where, params);
    auto r = src_->Query(fmt::format("SELECT count(*) FROM {} WHERE {}", t.src.QualifiedName(), pred),
                         params);
    if (!r.ok() || r->empty()) {
      Reset(r.status());
      return 0;
    }
    return std::stoll(r->Text(0, 0));
  }

  // One attempt: rows and FinishChunk in one target transaction.
  Result<ChunkCount> CopyChunk(const TableJob& t, const KeyRange& range, const ChunkRow& lease) {
    FERRY_RETURN_IF_ERROR(dst_->Begin());
    Result<ChunkCount> moved = Status(StatusCode::kInternal, "no copy path");
    if (IsPg(*dst_)) {
      moved = IsPg(*src_) ? PgToPg(t, range) : RowsToPg(t, range);
    } else {
      moved = RowsToSqlite(t, range);
    }
    if (!moved.ok()) return moved;
    ChunkRow done = lease;
    done.state = ChunkState::kDone;
    done.rows = moved->rows;
    done.bytes = moved->bytes;
    done.error.clear();
    ControlTables ctl(*dst_);
    Status f = ctl.FinishChunk(done);
    if (!f.ok()) {
      if (f.code() == StatusCode::kAborted && f.message().find("no longer leased") != std::string::npos) {
        return std::move(f).With("lease", "lost");
      }
      return f;
    }
    FERRY_RETURN_IF_ERROR(dst_->Commit());
    return moved;
  }

  // Binary COPY out -> binary COPY in, bytes passed through untouched: the
  // source is read on a thread of its own while this one writes the target.
  Result<ChunkCount> PgToPg(const TableJob& t, const KeyRange& range) {
    Params params;
    std::string pred = ChunkPredicate(t, range, o_.where, params);
    std::string out_sql =
        pred == "TRUE" && !t.src.partitioned  // COPY t TO refuses a partitioned table
            ? fmt::format("COPY {} ({}) TO STDOUT (FORMAT binary)", t.src.QualifiedName(),
                          t.column_list)
            : fmt::format("COPY (SELECT {} FROM {} WHERE {}) TO STDOUT (FORMAT binary)",
                          t.column_list, t.src.QualifiedName(), InlineParams(pred, params));
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<CopyWriter> writer, dst_->CopyIn(t.copy_in));
    ChunkCount count;
    FERRY_RETURN_IF_ERROR(PumpInto(*writer, &count.bytes, [&]() -> Status {
      // One call per row (libpq hands rows over one at a time); the pipe
      // copies it into the current block.
      return src_->CopyOut(out_sql, [&](std::string_view row) -> Status {
        return pipe_.Append(row) ? Status() : TargetStopped();
      });
    }));
    FERRY_ASSIGN_OR_RETURN(count.rows, writer->Finish());
    return count;
  }

  static Status TargetStopped() {
    return Status(StatusCode::kCancelled, "the target stopped taking rows");
  }

  // The chunk's two threads: `produce` runs on a reader thread and fills
  // pipe_ from the source while this thread hands each block to `consume`
  // (which writes it into the open target transaction). A consume error
  // stops the reader (its source query is cancelled: kCancelled, see
  // Connection::CopyOut); a produce error ends the blocks at once. Returns
  // the first error, and in `*target_failed` which side it came from.
  Status Pump(const std::function<Status()>& produce,
              const std::function<Status(std::string_view)>& consume, bool* target_failed) {
    pipe_.Reset();
    std::thread reader([&] { pipe_.Close(produce()); });
    Status written;
    while (std::string* block = pipe_.Receive()) {
      written = consume(*block);
      pipe_.Recycle(block);
      if (!written.ok()) {
        pipe_.Stop();
        break;
      }
    }
    reader.join();
    *target_failed = !written.ok();
    return *target_failed ? std::move(written) : pipe_.producer_status();
  }

  // Pump into a COPY FROM STDIN: on an error on either side the COPY IN is
  // aborted, so nothing of the chunk reaches the target. Adds the bytes
  // written to `*bytes`.
  Status PumpInto(CopyWriter& writer, int64_t* bytes, const std::function<Status()>& produce) {
    bool target_failed = false;
    Status s = Pump(
        produce,
        [&](std::string_view block) {
          *bytes += static_cast<int64_t>(block.size());
          return writer.Write(block);
        },
        &target_failed);
    if (!s.ok()) {
      Status aborted = writer.Abort(target_failed ? "target write failed" : "source read failed");
      if (!aborted.ok()) FERRY_LOG_DEBUG("copy: aborting the COPY IN: {}", aborted.ToString());
    }
    return s;
  }

  std::string SelectSql(const TableJob& t, const KeyRange& range, Params& params) {
    std::string pred = ChunkPredicate(t, range, o_.where, params);
    return fmt::format("SELECT {} FROM {} WHERE {}", t.select_list, t.src.QualifiedName(), pred);
  }

  // Streamed rows -> COPY text format into PostgreSQL: rows are read and
  // encoded on the reader thread, written by this one (PumpInto).
  Result<ChunkCount> RowsToPg(const TableJob& t, const KeyRange& range) {
    Params params;
    std::string sql = SelectSql(t, range, params);
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<CopyWriter> writer, dst_->CopyIn(t.copy_in));
    ChunkCount count;
    int64_t rows = 0;  // counted by the reader thread, read after it was joined
    FERRY_RETURN_IF_ERROR(PumpInto(*writer, &count.bytes, [&]() -> Status {
      return src_->Stream(sql, params, [&](const RowView& row) -> Status {
        std::string* out = pipe_.buffer();
        if (out == nullptr) return TargetStopped();
        for (size_t i = 0; i < row.fields.size(); ++i) {
          if (i) *out += '\t';
          if (!row.fields[i]) {
            *out += "\\N";
          } else {
            AppendCopyText(*row.fields[i], out);
          }
        }
        *out += '\n';
        ++rows;
        return pipe_.SendIfFull() ? Status() : TargetStopped();
      });
    }));
    count.rows = rows;
    FERRY_ASSIGN_OR_RETURN(int64_t stored, writer->Finish());
    if (stored != count.rows) {
      return Status(StatusCode::kInternal,
                    fmt::format("table {}: read {} rows but the target stored {}", t.target_name,
                                count.rows, stored));
    }
    return count;
  }

  // Streamed rows -> multi-row prepared INSERTs into SQLite: rows are read
  // on the reader thread, bound and inserted by this one (Pump).
  Result<ChunkCount> RowsToSqlite(const TableJob& t, const KeyRange& range) {
    Params params;
    std::string sql = SelectSql(t, range, params);
    const size_t ncols = t.columns.size();
    const size_t per_stmt = std::max<size_t>(1, std::min<size_t>(256, 32000 / std::max<size_t>(ncols, 1)));
    std::string full_sql;  // for a full batch, built once
    auto build = [&](size_t nrows) {
      std::string s = t.insert_prefix;
      for (size_t r = 0; r < nrows; ++r) {
        s += r ? ",(" : "(";
        for (size_t c = 0; c < ncols; ++c) {
          if (c) s += ',';
          // Anonymous "?": SQLite looks numbered and named parameters up by
          // a linear search, quadratic over a batch.
          s += t.blob_param[c] ? "CAST(? AS BLOB)" : "?";
        }
        s += ')';
      }
      return s;
    };
    Params batch;
    batch.reserve(per_stmt * ncols);
    size_t rows_in_batch = 0;
    auto flush = [&]() -> Status {
      if (rows_in_batch == 0) return Status();
      if (rows_in_batch == per_stmt && full_sql.empty()) full_sql = build(per_stmt);
      FERRY_RETURN_IF_ERROR(
          dst_->Query(rows_in_batch == per_stmt ? full_sql : build(rows_in_batch), batch).status());
      batch.clear();
      rows_in_batch = 0;
      return Status();
    };
    // The reader thread encodes each row into pipe_ (per field a tag byte,
    // 0 for NULL, else 1, the length and the bytes, bytea already decoded);
    // this thread binds the rows in batches. A row never spans two blocks.
    ChunkCount count;  // counted by the reader thread, read after it was joined
    bool target_failed = false;
    Status s = Pump(
        [&]() -> Status {
          std::string decoded;
          return src_->Stream(sql, params, [&](const RowView& row) -> Status {
            std::string* out = pipe_.buffer();
            if (out == nullptr) return TargetStopped();
            if (row.fields.size() != ncols) {
              return Status(StatusCode::kInternal,
                            fmt::format("table {}: the source returned {} columns, expected {}",
                                        t.source_name, row.fields.size(), ncols));
            }
            for (size_t i = 0; i < ncols; ++i) {
              const auto& f = row.fields[i];
              if (!f) {
                out->push_back('\0');
                continue;
              }
              count.bytes += static_cast<int64_t>(f->size());
              std::string_view value = *f;
              if (t.bytea_hex[i]) {
                if (!DecodePgHexBytea(*f, &decoded)) {
                  return Status(StatusCode::kInternal,
                                fmt::format("column {}.{}: bytea not in hex form", t.source_name,
                                            t.columns[i]->name));
                }
                value = decoded;
              }
              const uint64_t n = value.size();
              out->push_back('\1');
              out->append(reinterpret_cast<const char*>(&n), sizeof n);
              out->append(value);
            }
            ++count.rows;
            return pipe_.SendIfFull() ? Status() : TargetStopped();
          });
        },
        [&](std::string_view block) -> Status {
          size_t pos = 0;
          while (pos < block.size()) {
            for (size_t c = 0; c < ncols; ++c) {
              if (block[pos++] == '\0') {
                batch.emplace_back(std::nullopt);
                continue;
              }
              uint64_t n = 0;
              std::memcpy(&n, block.data() + pos, sizeof n);
              pos += sizeof n;
              batch.emplace_back(std::string(block.substr(pos, n)));
              pos += n;
            }
            if (++rows_in_batch == per_stmt) FERRY_RETURN_IF_ERROR(flush());
          }
          return Status();
        },
        &target_failed);
    if (s.ok()) s = flush();
    if (!s.ok()) return s;
    return count;
  }

  const CopyOptions& o_;
  std::vector<TableJob>& tables_;
  const std::string& job_id_;
  const std::string& snapshot_;
  std::string owner_;
  Progress& progress_;
  std::atomic<bool>& stop_;
  Status* fatal_;
  std::mutex* fatal_mu_;
  ConnPtr src_, dst_;
  bool src_in_snapshot_ = false;
  BlockPipe pipe_{kBlocks, kBlockBytes};
};

}  // namespace

Result<CopySummary> Tally(Connection& dst, const std::string& job_id,
                          const std::vector<TableJob>& tables) {
  ControlTables ctl(dst);
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
      std::string range = c.range_spec;
      for (const auto& t : tables) {
        if (t.target_name != c.table_name) continue;
        auto r = KeyRange::Decode(c.range_spec);
        if (r.ok()) range = RangeText(t, *r);
      }
      s.failures.push_back({c.table_name, range, c.error});
    }
  }
  return s;
}

// Chunks still leased by a worker of this process go back to pending.
Status ReleaseOwnLeases(Connection& dst, const std::string& job_id) {
  ControlTables ctl(dst);
  FERRY_ASSIGN_OR_RETURN(std::vector<ChunkRow> chunks, ctl.ListChunks(job_id));
  const std::string mine = ThisWorkerName() + "/";
  for (const ChunkRow& c : chunks) {
    if (c.state == ChunkState::kLeased && c.lease_owner.rfind(mine, 0) == 0) {
      FERRY_RETURN_IF_ERROR(ctl.ReleaseLease(job_id, c.chunk_id, c.lease_owner));
    }
  }
  return Status();
}

Status RunWorkers(const CopyOptions& o, std::vector<TableJob>& tables, const std::string& job_id,
                  const std::string& snapshot, int workers, Progress& progress) {
  std::atomic<bool> stop{false};
  Status fatal;
  std::mutex fatal_mu;
  std::vector<std::unique_ptr<Worker>> pool;
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) {
    pool.push_back(std::make_unique<Worker>(o, tables, job_id, snapshot,
                                            fmt::format("{}/w{}", ThisWorkerName(), i + 1),
                                            progress, stop, &fatal, &fatal_mu));
  }
  for (auto& w : pool) threads.emplace_back([&w] { w->Run(); });
  for (auto& t : threads) t.join();
  return fatal;
}

}  // namespace ferry::copy_internal
