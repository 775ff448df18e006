// Progress of a copy job: per-table and job totals, and the kCopy events
// on the bus (chunk_started, chunk_done, chunk_failed, chunk_retry,
// table_done, job_started, job_done) that the progress bar, --json and the
// metrics read. Shared by every copy path (copy.cc, copy_cql.cc).
// Thread-safe.
#pragma once

#include <algorithm>
#include <map>
#include <mutex>
#include <string>

#include "observe/event.h"

namespace ferry {

class Progress {
 public:
  Progress(std::string job_id, std::string database, EventBus* bus)
      : job_id_(std::move(job_id)), database_(std::move(database)), bus_(bus) {}

  void AddTable(const std::string& table, int64_t estimated, int64_t chunks_total) {
    std::lock_guard lock(mu_);
    auto& t = tables_[table];
    t.estimated = estimated;
    t.chunks_total = chunks_total;
    job_.estimated = std::max<int64_t>(job_.estimated, 0) + std::max<int64_t>(estimated, 0);
    job_.chunks_total += chunks_total;
  }
  void AddDone(const std::string& table, int64_t rows, int64_t bytes) {
    std::lock_guard lock(mu_);
    auto& t = tables_[table];
    t.rows += rows;
    t.bytes += bytes;
    t.chunks_done++;
    job_.rows += rows;
    job_.bytes += bytes;
    job_.chunks_done++;
  }
  // Updates counters for a finished chunk and emits its event (and
  // table_done when the table has no chunk left).
  void Emit(const std::string& type, CopyProgress e, bool count_done, bool count_failed,
            std::string error_type = "") {
    std::lock_guard lock(mu_);
    auto& t = tables_[e.table];
    if (count_done) {
      t.rows += e.rows;
      t.bytes += e.bytes;
      t.chunks_done++;
      job_.rows += e.rows;
      job_.bytes += e.bytes;
      job_.chunks_done++;
    }
    if (count_failed) {
      t.chunks_failed++;
      job_.failed_rows += e.rows;
      job_.chunks_failed++;
    }
    Fill(e, t);
    Send(type, e, std::move(error_type));
    if ((count_done || count_failed) && t.chunks_done + t.chunks_failed == t.chunks_total) {
      CopyProgress done;
      done.table = e.table;
      done.rows = t.rows;
      done.bytes = t.bytes;
      Fill(done, t);
      Send("table_done", done);
    }
  }
  void EmitJob(const std::string& type) {
    std::lock_guard lock(mu_);
    CopyProgress e;
    Totals empty;
    Fill(e, empty);
    e.rows = job_.rows;
    e.bytes = job_.bytes;
    Send(type, e);
  }

 private:
  void Send(const std::string& type, CopyProgress e, std::string error_type = "") {
    if (bus_ == nullptr) return;
    Event event = CopyEventOf(type, job_id_, std::move(e));
    event.database = database_;
    event.error_type = std::move(error_type);
    bus_->Publish(event);
  }
  struct Totals {
    int64_t rows = 0, bytes = 0, estimated = -1, chunks_done = 0, chunks_failed = 0,
            chunks_total = 0, failed_rows = 0;
  };
  void Fill(CopyProgress& e, const Totals& t) const {
    e.table_rows_done = t.rows;
    e.table_rows_estimated = t.estimated;
    e.table_bytes_done = t.bytes;
    e.table_chunks_done = t.chunks_done;
    e.table_chunks_total = t.chunks_total;
    e.job_rows_done = job_.rows;
    e.job_rows_estimated = job_.estimated;
    e.job_bytes_done = job_.bytes;
    e.job_chunks_done = job_.chunks_done;
    e.job_chunks_total = job_.chunks_total;
    e.job_rows_failed = job_.failed_rows;
  }

  std::string job_id_;
  std::string database_;  // label of the target
  EventBus* bus_;
  std::mutex mu_;
  std::map<std::string, Totals> tables_;
  Totals job_;
};

}  // namespace ferry
