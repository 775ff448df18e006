// DDL progress, the watcher: a thread that sleeps `delay`, then opens a
// second session and reads the progress views every `interval` until the
// statement it watches ends (observe/ddl_progress.h).
#include "observe/ddl_progress.h"

#include <charconv>

#include "core/log.h"
#include "drivers/connection.h"
#include "drivers/registry.h"

namespace ferry {

namespace {

// One row per view that reports the session (at most one does at a time).
// Every counter as bigint, in the order DdlProgress lists them; a phase's
// counter the view lacks is 0.
constexpr std::string_view kProgressQuery = R"(
SELECT 'create_index', command, phase,
       CASE WHEN relid = 0 THEN '' ELSE relid::regclass::text END,
       blocks_done::bigint, blocks_total::bigint, tuples_done::bigint, tuples_total::bigint,
       lockers_done::bigint, lockers_total::bigint,
       partitions_done::bigint, partitions_total::bigint
  FROM pg_stat_progress_create_index WHERE pid = $1::int
UNION ALL
SELECT 'cluster', command, phase,
       CASE WHEN relid = 0 THEN '' ELSE relid::regclass::text END,
       heap_blks_scanned::bigint, heap_blks_total::bigint, heap_tuples_scanned::bigint, 0,
       0, 0, 0, 0
  FROM pg_stat_progress_cluster WHERE pid = $1::int
UNION ALL
SELECT 'vacuum', 'VACUUM', phase,
       CASE WHEN relid = 0 THEN '' ELSE relid::regclass::text END,
       CASE WHEN phase = 'vacuuming heap' THEN heap_blks_vacuumed
            ELSE heap_blks_scanned END::bigint,
       heap_blks_total::bigint, 0, 0, 0, 0, 0, 0
  FROM pg_stat_progress_vacuum WHERE pid = $1::int
UNION ALL
SELECT 'analyze', 'ANALYZE', phase,
       CASE WHEN relid = 0 THEN '' ELSE relid::regclass::text END,
       sample_blks_scanned::bigint, sample_blks_total::bigint, 0, 0, 0, 0,
       child_tables_done::bigint, child_tables_total::bigint
  FROM pg_stat_progress_analyze WHERE pid = $1::int
)";

int64_t Int(const QueryResult& r, size_t col) {
  if (r.IsNull(0, col)) return 0;
  const std::string& text = r.Text(0, col);
  int64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

}  // namespace

Result<std::optional<DdlProgress>> ReadDdlProgress(Connection& conn, int pid) {
  FERRY_ASSIGN_OR_RETURN(QueryResult r,
                         conn.Query(kProgressQuery, {Value(std::to_string(pid))}));
  if (r.empty()) return std::optional<DdlProgress>();
  DdlProgress p;
  p.view = r.Text(0, 0);
  p.command = r.IsNull(0, 1) ? "" : r.Text(0, 1);
  p.phase = r.IsNull(0, 2) ? "" : r.Text(0, 2);
  p.relation = r.IsNull(0, 3) ? "" : r.Text(0, 3);
  p.blocks_done = Int(r, 4);
  p.blocks_total = Int(r, 5);
  p.tuples_done = Int(r, 6);
  p.tuples_total = Int(r, 7);
  p.lockers_done = Int(r, 8);
  p.lockers_total = Int(r, 9);
  p.partitions_done = Int(r, 10);
  p.partitions_total = Int(r, 11);
  return std::optional<DdlProgress>(std::move(p));
}

DdlProgressWatch::DdlProgressWatch(Secret url, int pid, Sink sink, DdlProgressOptions options)
    : url_(std::move(url)), pid_(pid), sink_(std::move(sink)), options_(options),
      thread_([this] { Run(); }) {}

DdlProgressWatch::~DdlProgressWatch() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int DdlProgressWatch::published() const {
  std::lock_guard lock(mu_);
  return published_;
}

bool DdlProgressWatch::Wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stop_; });
}

void DdlProgressWatch::Run() {
  const auto start = std::chrono::steady_clock::now();
  if (!Wait(options_.delay)) return;  // a quick statement: nothing opened, nothing read
  ConnectOptions connect;
  connect.application_name = "ferry progress";
  auto conn = OpenConnection(url_.Reveal(), connect);
  if (!conn.ok()) {
    FERRY_LOG_DEBUG("progress of session {}: no second connection: {}", pid_,
                    conn.status().ToString());
    return;
  }
  std::optional<DdlProgress> last;
  do {
    auto read = ReadDdlProgress(**conn, pid_);
    if (!read.ok()) {
      FERRY_LOG_DEBUG("progress of session {}: {}", pid_, read.status().ToString());
      return;
    }
    if (!read->has_value()) continue;
    DdlProgress& p = **read;
    if (last && last->SameAs(p)) continue;
    p.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
    last = p;
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      ++published_;
    }
    sink_(p);
  } while (Wait(options_.interval));
}

std::unique_ptr<DdlProgressWatch> WatchDdlProgress(const Connection& conn, const Secret& url,
                                                   DdlProgressWatch::Sink sink,
                                                   const DdlProgressOptions& options) {
  if (!sink || url.empty() || !conn.traits().Has(Feature::kTableStatistics)) return nullptr;
  return std::make_unique<DdlProgressWatch>(url, conn.SessionId(), std::move(sink), options);
}

}  // namespace ferry
