// Sync stream: the replication loop of a running sync.
//
// In:     a replication session in CopyBoth mode (START_REPLICATION sent),
//         the applier with the job's stored position.
// Out:    changes applied in commit order; Standby Status Updates that
//         confirm the applied position so the source releases WAL;
//         kSync events with lag and rows applied.
// Resume: the position is confirmed only after the target committed it,
//         so the slot replays anything not yet applied, and the applier
//         skips what was.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "core/log.h"
#include "move/sync/sync_internal.h"

namespace ferry::sync_internal {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kStatusInterval = std::chrono::milliseconds(1000);
constexpr auto kEventInterval = std::chrono::milliseconds(1000);
constexpr auto kReadWait = std::chrono::milliseconds(200);

double NowUnix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Loop {
 public:
  explicit Loop(StreamContext& ctx) : c_(ctx), started_(Clock::now()) {}

  Result<std::string> Run() {
    const SyncOptions& o = *c_.options;
    // Caught up means: everything committed on the source before the
    // stream started is applied (and afterwards: all the server sent).
    if (c_.goal != 0) {
      goal_ = c_.goal;
    } else {
      FERRY_ASSIGN_OR_RETURN(goal_, CurrentWalLsn(*c_.src));
    }
    idle_end_ = c_.applier->applied_lsn();
    Publish("sync_started");
    while (true) {
      if (o.cancel != nullptr && o.cancel->load()) return Stop("cancelled");
      if (o.stop_after.count() > 0 && Clock::now() - started_ >= o.stop_after) {
        return Stop("--stop-after");
      }
      if (!c_.applier->in_transaction()) {
        uint64_t position = Position();
        if (server_end_ > 0 && position >= server_end_ && position >= goal_ && !caught_up_) {
          FERRY_RETURN_IF_ERROR(CaughtUp());
        }
        if (o.until_lag_zero && position >= goal_) {
          if (!caught_up_) FERRY_RETURN_IF_ERROR(CaughtUp());
          return Stop("caught up");
        }
      }
      FERRY_ASSIGN_OR_RETURN(std::optional<std::string> message, c_.replication->Read(kReadWait));
      bool reply = false;
      if (message) FERRY_RETURN_IF_ERROR(Handle(*message, &reply));
      if (reply || Clock::now() - last_status_ >= kStatusInterval) {
        FERRY_RETURN_IF_ERROR(SendStatus());
      }
      if (Clock::now() - last_event_ >= kEventInterval) Publish("sync_progress");
    }
  }

 private:
  // The position safe to confirm: the last applied commit, or the server's
  // end of WAL when a keepalive said all before it was sent and nothing
  // is open.
  uint64_t Position() const { return std::max(c_.applier->applied_lsn(), idle_end_); }

  Status Handle(const std::string& bytes, bool* reply) {
    FERRY_ASSIGN_OR_RETURN(pgoutput::Frame frame, pgoutput::DecodeFrame(bytes));
    if (const auto* k = std::get_if<pgoutput::Keepalive>(&frame)) {
      server_end_ = std::max(server_end_, k->wal_end);
      if (!c_.applier->in_transaction()) idle_end_ = std::max(idle_end_, k->wal_end);
      *reply = k->reply_requested;
      return Status();
    }
    const auto& x = std::get<pgoutput::XLogData>(frame);
    server_end_ = std::max(server_end_, x.wal_end);
    FERRY_ASSIGN_OR_RETURN(pgoutput::Message m, pgoutput::Decode(x.payload));
    const bool commit = std::holds_alternative<pgoutput::Commit>(m);
    FERRY_RETURN_IF_ERROR(c_.applier->Apply(m));
    if (commit) {
      *reply = true;  // confirm at once: the source may free WAL
      caught_up_ = false;
    }
    return Status();
  }

  Status SendStatus() {
    uint64_t flushed = c_.applier->in_transaction() ? c_.applier->applied_lsn() : Position();
    last_status_ = Clock::now();
    return c_.replication->Send(pgoutput::EncodeStatusUpdate(
        flushed, flushed, flushed, pgoutput::UnixToPgTime(NowUnix()), false));
  }

  // Marks the job caught up on the target (status shows 0 s of lag); the
  // first time also moves it from catching_up to streaming.
  Status CaughtUp() {
    caught_up_ = true;
    FERRY_RETURN_IF_ERROR(SetCaughtUp(*c_.dst, c_.options->job));
    if (c_.phase != SyncPhase::kStreaming) {
      c_.phase = SyncPhase::kStreaming;
      Publish("sync_caught_up");
    }
    return Status();
  }

  Result<std::string> Stop(std::string reason) {
    c_.applier->Abandon();
    FERRY_RETURN_IF_ERROR(SendStatus());
    FERRY_RETURN_IF_ERROR(SetPhase(*c_.dst, c_.options->job, SyncPhase::kStopped));
    c_.phase = SyncPhase::kStopped;
    c_.position = Position();
    Publish("sync_stopped");
    return reason;
  }

  void Publish(const std::string& type) {
    last_event_ = Clock::now();
    if (c_.bus == nullptr) return;
    SyncProgress p;
    p.phase = std::string(SyncPhaseName(c_.phase));
    p.applied_lsn = pgoutput::LsnText(c_.applier->applied_lsn());
    p.rows_applied = c_.applier->rows_applied;
    p.transactions = c_.applier->transactions;
    uint64_t position = Position();
    // WAL the source has written past the confirmed position (what the
    // slot keeps); -1 when the source cannot be asked.
    auto wal = CurrentWalLsn(*c_.src);
    p.lag_bytes = !wal.ok() ? -1 : *wal > position ? static_cast<int64_t>(*wal - position) : 0;
    const bool caught_up = caught_up_ && !c_.applier->in_transaction();
    p.lag_seconds = caught_up || c_.applier->last_commit_unix() == 0
                        ? 0
                        : std::max(0.0, NowUnix() - c_.applier->last_commit_unix());
    double secs = std::chrono::duration<double>(Clock::now() - started_).count();
    p.rows_per_second = secs > 0 ? static_cast<double>(p.rows_applied) / secs : 0;
    int64_t delta = p.rows_applied - rows_published_;
    rows_published_ = p.rows_applied;
    c_.bus->Publish(SyncEventOf(type, c_.options->job, c_.database, std::move(p), delta));
  }

  StreamContext& c_;
  Clock::time_point started_;
  Clock::time_point last_status_{};
  Clock::time_point last_event_{};
  uint64_t goal_ = 0, server_end_ = 0, idle_end_ = 0;
  int64_t rows_published_ = 0;
  bool caught_up_ = false;
};

}  // namespace

Result<std::string> StreamChanges(StreamContext& ctx) { return Loop(ctx).Run(); }

// The end of WAL inserted so far. pg_current_wal_lsn() (written so far)
// can lie before a commit made with synchronous_commit = off, and a goal
// taken from it let --until-lag-zero stop before that transaction.
Result<uint64_t> CurrentWalLsn(Connection& src) {
  FERRY_ASSIGN_OR_RETURN(QueryResult r, src.Query("SELECT pg_current_wal_insert_lsn()::text"));
  return pgoutput::ParseLsn(r.Text(0, 0));
}

}  // namespace ferry::sync_internal
