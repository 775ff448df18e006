// DDL progress: watches one session's long statement (CREATE INDEX, REINDEX,
// CLUSTER, VACUUM [FULL], ANALYZE) through PostgreSQL's pg_stat_progress_*
// views from a second connection, and renders what it reads.
//
// In:     the backend id of the session about to run the statement
//         (Connection::SessionId()), the URL to open a second session.
// Out:    a DdlProgress (ddl_progress_event.h) for every change the watcher
//         sees, handed to the caller's sink on the watcher's thread; the
//         callers wrap it in a "statement_progress" event
//         (DdlProgressEventOf) on their bus.
// Engines without the views (asked as Feature::kTableStatistics: the
// engines with server statistics views) get no watcher. Progress is
// best-effort: a watcher that cannot connect or read the views logs why
// (debug) and stops; the statement is unaffected.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "core/secret.h"
#include "ferry/status.h"
#include "observe/ddl_progress_event.h"

namespace ferry {

class Connection;

struct DdlProgressOptions {
  // No second connection and no poll for statements finished sooner.
  std::chrono::milliseconds delay{1000};
  std::chrono::milliseconds interval{500};  // between two reads of the views
};

// The progress row of session `pid` in the progress views, or nullopt when
// it runs nothing they report. One query; kUnavailable etc. from the driver.
Result<std::optional<DdlProgress>> ReadDdlProgress(Connection& conn, int pid);

// Watches one statement for its lifetime: construct it right before the
// statement, destroy it right after (success or error); the destructor
// stops and joins the thread, waking it at once. `sink` is called on the
// watcher's thread for each change, never after the destructor returns.
class DdlProgressWatch {
 public:
  using Sink = std::function<void(const DdlProgress&)>;
  DdlProgressWatch(Secret url, int pid, Sink sink, DdlProgressOptions options);
  ~DdlProgressWatch();
  DdlProgressWatch(const DdlProgressWatch&) = delete;
  DdlProgressWatch& operator=(const DdlProgressWatch&) = delete;

  // How many changes reached the sink so far.
  int published() const;

 private:
  void Run();
  // Waits up to `d`; false when stopped meanwhile.
  bool Wait(std::chrono::milliseconds d);

  Secret url_;
  int pid_;
  Sink sink_;
  DdlProgressOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;   // guarded by mu_
  int published_ = 0;   // guarded by mu_
  std::thread thread_;  // last: started once the members above exist
};

// A watcher of `conn`'s next statement when its engine has the progress
// views (Feature::kTableStatistics) and `sink` is set; else null.
std::unique_ptr<DdlProgressWatch> WatchDdlProgress(const Connection& conn, const Secret& url,
                                                   DdlProgressWatch::Sink sink,
                                                   const DdlProgressOptions& options = {});

// Whether `sql` is a statement the progress views can report: CREATE
// [UNIQUE] INDEX, REINDEX, CLUSTER, VACUUM, ANALYZE, COPY, or an ALTER TABLE
// that builds an index (PRIMARY KEY, UNIQUE, EXCLUDE). Leading white space
// and comments are skipped. Callers watch only those: a watcher is a thread,
// too dear for each of thousands of quick statements.
bool MayReportProgress(std::string_view sql);

// "CREATE INDEX CONCURRENTLY: building index: scanning table 45%
// (12,345/27,000 blocks)": the command, the phase, and the phase's counter
// when it has one (partitions of a partitioned index follow).
std::string DdlProgressText(const DdlProgress& progress);

// Text output's throttle: one line per `every` at most, a new phase or
// command at once, nothing when nothing changed. Not thread-safe (one
// printer).
class DdlProgressThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit DdlProgressThrottle(std::chrono::milliseconds every = std::chrono::seconds(2))
      : every_(every) {}
  // True when `progress` seen at `now` should be printed (and remembers it).
  bool Due(const DdlProgress& progress, Clock::time_point now);

 private:
  std::chrono::milliseconds every_;
  std::optional<DdlProgress> last_;
  Clock::time_point last_at_{};
};

}  // namespace ferry
