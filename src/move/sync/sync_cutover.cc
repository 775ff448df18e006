// Sync cut-over: ferry cutover JOB moves the writes of a synced set of
// tables from the source to the target (docs/sync.md, "Cut-over").
//
// In:     CutoverOptions; a sync job that copied and is not running.
// Out:    1. catch up from the job's slot, no lock, until the lag is under
//            --max-lag; 2. one source transaction LOCKs the tables IN
//            EXCLUSIVE MODE (reads go on, writers wait) and notes the WAL
//            position, the drain target; 3. stream until that position is
//            applied; 4. owned sequences moved past the source's on the
//            target; 5. row counts (or a full verify), with --reverse the
//            reverse job (sync_cutover_reverse.cc); 6. guard triggers
//            created in the lock transaction; 7. the switch hook; 8. COMMIT
//            (the pause ends); 9. the cut-over recorded in the job row.
// Resume: any failure before 8 rolls the lock transaction back: writes
//         resume on the source, no guard is left, and cutover may run
//         again. The stream keeps the job's position as ferry sync does.
#include <fmt/format.h>

#include <memory>

#include "core/url.h"
#include "drivers/registry.h"
#include "ferry/verify.h"
#include "move/sync/sync_internal.h"

namespace ferry {
namespace {

using namespace sync_internal;
using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// --watch needs the reverse job and exactly one condition; checked before
// anything happens.
Status ValidateWatch(const CutoverOptions& o) {
  FERRY_RETURN_IF_ERROR(SyncSlotName(o.job).status());
  const WatchOptions& w = o.watch;
  bool prom = !w.query.empty() || !w.prometheus_url.empty();
  bool cmd = !w.check_command.empty();
  if (w.duration.count() <= 0) {
    if (prom || cmd || !w.rollback_hook.empty()) {
      return Status(StatusCode::kInvalidArgument,
                    "--rollback-if, --rollback-if-cmd and --rollback-hook need --watch DURATION "
                    "(how long to watch after the cut-over); nothing was changed");
    }
    return Status();
  }
  if (!o.reverse) {
    return Status(StatusCode::kInvalidArgument,
                  "--watch needs --reverse: rolling back goes through the reverse sync job "
                  "(<JOB>_reverse); add --reverse; nothing was changed");
  }
  if (prom == cmd) {
    return Status(StatusCode::kInvalidArgument,
                  "--watch needs one condition: --rollback-if 'PROMQL' --prometheus URL, or "
                  "--rollback-if-cmd 'CMD'; nothing was changed");
  }
  if (prom && (w.query.empty() || w.prometheus_url.empty())) {
    return Status(StatusCode::kInvalidArgument,
                  "--rollback-if 'PROMQL' and --prometheus URL go together; give both; nothing "
                  "was changed");
  }
  if (w.interval.count() <= 0 || w.max_failures < 1) {
    return Status(StatusCode::kInvalidArgument, "--watch-interval must be longer than 0");
  }
  return Status();
}

Status Validate(const CutoverOptions& o) {
  if (o.from_url.empty() || o.to_url.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "ferry cutover needs --from URL (the source, today's primary) and --to URL "
                  "(the target the sync job fills)");
  }
  if (o.max_lag_bytes < 0 || o.sequence_margin < 0) {
    return Status(StatusCode::kInvalidArgument,
                  "--max-lag and --sequence-margin must not be negative");
  }
  if (o.max_pause.count() <= 0 || o.lock_timeout.count() <= 0 || o.hook_timeout.count() <= 0) {
    return Status(StatusCode::kInvalidArgument,
                  "--max-pause, --lock-timeout and --hook-timeout must be longer than 0");
  }
  return ValidateWatch(o);
}

class Cutover {
 public:
  Cutover(const CutoverOptions& o, EventBus* bus) : o_(o), bus_(bus) {}

  Result<CutoverReport> Run() {
    FERRY_RETURN_IF_ERROR(Validate(o_));
    FERRY_RETURN_IF_ERROR(Open());
    FERRY_RETURN_IF_ERROR(StartStream());
    FERRY_RETURN_IF_ERROR(Fail(CatchUp()));
    FERRY_RETURN_IF_ERROR(Fail(Lock()));
    FERRY_RETURN_IF_ERROR(Fail(Drain()));
    FERRY_RETURN_IF_ERROR(Fail(Compare()));
    FERRY_RETURN_IF_ERROR(Fail(Reverse()));
    FERRY_RETURN_IF_ERROR(Fail(InstallGuard(*lock_, tables_, o_.job, to_redacted_)));
    FERRY_RETURN_IF_ERROR(Fail(SwitchHook()));
    FERRY_RETURN_IF_ERROR(Fail(Commit()));
    return report_;
  }

 private:
  // The job, its slot (not in use), the tables and their sequences; writes nothing.
  Status Open() {
    FERRY_ASSIGN_OR_RETURN(src_url_, Url::Parse(o_.from_url));
    FERRY_ASSIGN_OR_RETURN(Url to, Url::Parse(o_.to_url));
    to_redacted_ = to.Redacted();
    to_plain_ = to.ConnectionText();
    ConnectOptions co;
    co.application_name = "ferry cutover";
    auto src = OpenConnection(src_url_, co);
    if (!src.ok()) return std::move(src).TakeStatus().Prefix("source");
    src_ = std::move(*src);
    auto dst = OpenConnection(to, co);
    if (!dst.ok()) return std::move(dst).TakeStatus().Prefix("target");
    dst_ = std::move(*dst);
    // The drain applies through any guard on the target: the switch back
    // of --watch cuts the reverse job over onto a guarded old primary.
    FERRY_RETURN_IF_ERROR(dst_->Exec("SET ferry.apply = 'on'").status());
    database_ = DatabaseLabel(o_.to_url);
    report_.job = o_.job;
    FERRY_ASSIGN_OR_RETURN(std::optional<JobRow> row, ReadJob(*dst_, o_.job));
    if (!row) {
      return Status(StatusCode::kNotFound,
                    fmt::format("no sync job '{}' on the target {}: start it with ferry sync "
                                "--job {} --from ... --to ... first",
                                o_.job, dst_->redacted_url(), o_.job));
    }
    row_ = std::move(*row);
    FERRY_RETURN_IF_ERROR(CheckJob());
    FERRY_ASSIGN_OR_RETURN(tables_, CutoverTables(row_));
    FERRY_ASSIGN_OR_RETURN(sequences_, OwnedSequences(*src_, tables_));
    FERRY_ASSIGN_OR_RETURN(created_sequences_, PrepareTargetSequences(*dst_, sequences_));
    FERRY_ASSIGN_OR_RETURN(report_.guard_trigger, GuardTriggerName(o_.job));
    return Status();
  }

  Status CheckJob() {
    if (row_.source != src_->redacted_url()) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("sync job '{}' follows {}, not --from {}; give the job's source",
                                o_.job, row_.source, src_->redacted_url()));
    }
    if (row_.phase == SyncPhase::kCutOver || row_.phase == SyncPhase::kRolledBack) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("sync job '{}' was cut over already (ferry sync --status {} "
                                "shows when); nothing to do",
                                o_.job, o_.job));
    }
    if (row_.phase == SyncPhase::kCopying) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("sync job '{}' has not finished its initial copy; run ferry sync "
                                "--job {} --until-lag-zero first",
                                o_.job, o_.job));
    }
    FERRY_ASSIGN_OR_RETURN(SlotInfo slot, ReadSlotOnceIdle(*src_, row_.slot));
    if (!slot.exists) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("slot {} of sync job '{}' is gone from the source: the target "
                                "may miss changes; drop the job and sync again",
                                row_.slot, o_.job));
    }
    if (slot.active) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("slot {} is in use: stop the running `ferry sync` for {} first "
                                "(Ctrl-C), then run cutover",
                                row_.slot, o_.job));
    }
    report_.lag_before_bytes = slot.retained_bytes;
    return Status();
  }

  Status StartStream() {
    ConnectOptions co;
    co.application_name = "ferry cutover";
    auto repl = postgres::OpenReplication(src_url_, co);
    if (!repl.ok()) return std::move(repl).TakeStatus().Prefix("source (replication)");
    repl_ = std::move(*repl);
    std::set<std::string> names(row_.tables.begin(), row_.tables.end());
    applier_ = std::make_unique<Applier>(*dst_, o_.job, names, row_.applied_lsn);
    FERRY_RETURN_IF_ERROR(StartStreamWindow(*dst_, o_.job, SyncPhase::kCatchingUp));
    FERRY_RETURN_IF_ERROR(repl_->Start(fmt::format(
        "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names {})",
        QuoteIdent(row_.slot), pgoutput::LsnText(row_.applied_lsn),
        PgLiteral(QuoteIdent(row_.publication)))));
    stream_.job = o_.job;
    stream_.until_lag_zero = true;
    stream_.cancel = o_.cancel;
    ctx_.options = &stream_;
    ctx_.replication = repl_.get();
    ctx_.src = src_.get();
    ctx_.dst = dst_.get();
    ctx_.applier = applier_.get();
    ctx_.bus = bus_;
    ctx_.database = database_;
    Step("cutover_started", fmt::format("slot lag {} bytes{}", report_.lag_before_bytes,
                                        created_sequences_.empty()
                                            ? ""
                                            : "; sequences created on the target: " +
                                                  fmt::format("{}", fmt::join(created_sequences_, ", "))));
    return Status();
  }

  // Streams until `goal` is applied (caught up), or `limit`.
  Result<std::string> Stream(uint64_t goal, std::chrono::milliseconds limit) {
    stream_.stop_after = std::max(limit, std::chrono::milliseconds(1));
    ctx_.goal = goal;
    auto reason = StreamChanges(ctx_);
    if (!reason.ok()) applier_->Abandon();
    if (reason.ok() && *reason == "cancelled") {
      return Status(StatusCode::kCancelled, "ferry cutover was cancelled");
    }
    return reason;
  }

  Status CatchUp() {
    const auto deadline = Clock::now() + o_.catch_up_timeout;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      FERRY_ASSIGN_OR_RETURN(uint64_t goal, CurrentWalLsn(*src_));
      FERRY_RETURN_IF_ERROR(Stream(goal, left).status());
      FERRY_ASSIGN_OR_RETURN(uint64_t wal, CurrentWalLsn(*src_));
      int64_t lag = wal > ctx_.position ? static_cast<int64_t>(wal - ctx_.position) : 0;
      if (lag <= o_.max_lag_bytes) {
        Step("cutover_caught_up", fmt::format("lag {} bytes <= --max-lag", lag));
        return Status();
      }
      if (Clock::now() >= deadline) {
        return Status(
            StatusCode::kFailedPrecondition,
            fmt::format("the lag of sync job '{}' is still {} bytes after catching up for {} ms, "
                        "above --max-lag {} bytes; writes were not stopped and nothing changed. "
                        "Let the sync catch up first (ferry sync --job {} --until-lag-zero), "
                        "cut over at a quieter time, or raise --max-lag / --catch-up-timeout",
                        o_.job, lag, o_.catch_up_timeout.count(), o_.max_lag_bytes, o_.job));
      }
    }
  }

  Status Lock() {
    ConnectOptions co;
    co.application_name = "ferry cutover (lock)";
    auto lock = OpenConnection(src_url_, co);
    if (!lock.ok()) return std::move(lock).TakeStatus().Prefix("source (lock session)");
    lock_ = std::move(*lock);
    FERRY_RETURN_IF_ERROR(
        lock_->Exec(fmt::format("BEGIN; SET LOCAL lock_timeout = {}", o_.lock_timeout.count()))
            .status());
    in_tx_ = true;
    std::string list;
    for (const auto& t : tables_) list += (list.empty() ? "" : ", ") + t.quoted;
    Status s = lock_->Exec("LOCK TABLE " + list + " IN EXCLUSIVE MODE").status();
    if (!s.ok()) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("could not lock the synced tables on the source within "
                                "--lock-timeout {} ms (a long transaction holds them?); "
                                "writes were not stopped and nothing changed; run cutover "
                                "again when pg_stat_activity shows no long writer, or raise "
                                "--lock-timeout: {}",
                                o_.lock_timeout.count(), s.message()));
    }
    locked_at_ = Clock::now();
    FERRY_ASSIGN_OR_RETURN(drain_target_, CurrentWalLsn(*lock_));
    report_.drain_lsn = pgoutput::LsnText(drain_target_);
    Step("cutover_locked", fmt::format("writes stopped on {} tables; drain to {}",
                                       tables_.size(), report_.drain_lsn));
    return Status();
  }

  Status Drain() {
    auto left = o_.max_pause - std::chrono::milliseconds(MsSince(locked_at_));
    FERRY_RETURN_IF_ERROR(Stream(drain_target_, left).status());
    if (ctx_.position < drain_target_) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("draining to {} took longer than --max-pause {} ms (applied up "
                                "to {}); writes resumed on the source and nothing changed there. "
                                "Run cutover again when the write load is lower, or raise "
                                "--max-pause",
                                report_.drain_lsn, o_.max_pause.count(),
                                pgoutput::LsnText(ctx_.position)));
    }
    Step("cutover_drained", fmt::format("applied up to {}", pgoutput::LsnText(ctx_.position)));
    return Status();
  }

  Status Compare() {
    FERRY_ASSIGN_OR_RETURN(report_.sequences,
                           MoveSequences(*lock_, *dst_, sequences_, o_.sequence_margin));
    for (const auto& s : report_.sequences) {
      Step("cutover_sequence",
           fmt::format("sequence {}: source {}, target set to {}", s.name, s.source, s.target));
    }
    if (o_.verify) return Verify();
    FERRY_ASSIGN_OR_RETURN(report_.tables, CountRows(*lock_, *dst_, tables_));
    std::string diff;
    for (const auto& t : report_.tables) {
      if (t.source_rows != t.target_rows) {
        diff += fmt::format("{}{}: {} rows on the source, {} on the target", diff.empty() ? "" : "; ",
                            t.name, t.source_rows, t.target_rows);
      }
    }
    if (!diff.empty()) {
      return Status(StatusCode::kFailedPrecondition,
                    "row counts differ after the drain (" + diff +
                        "); writes resumed on the source and nothing changed there. Find the "
                        "difference with ferry verify, repair the target, then run cutover again");
    }
    Step("cutover_counted", fmt::format("row counts equal on {} tables", report_.tables.size()));
    return Status();
  }

  Status Verify() {
    VerifyRequest req;
    req.from_url = o_.from_url;
    req.to_url = o_.to_url;
    req.tables = row_.tables;
    req.max_listed = 5;
    FERRY_ASSIGN_OR_RETURN(VerifyOutcome outcome, CompareTables(req));
    std::string diff;
    for (const auto& t : outcome.tables) {
      report_.tables.push_back({t.table, t.source_rows, t.target_rows});
      if (!t.identical()) {
        diff += fmt::format("{}{}: {} missing, {} extra, {} changed", diff.empty() ? "" : "; ",
                            t.table, t.missing, t.extra, t.changed);
      }
    }
    if (!diff.empty()) {
      return Status(StatusCode::kFailedPrecondition,
                    "--verify found differences after the drain (" + diff +
                        "); writes resumed on the source and nothing changed there. Run ferry "
                        "verify for the rows, repair the target, then run cutover again");
    }
    report_.verified = true;
    Step("cutover_verified", fmt::format("{} tables identical", outcome.tables.size()));
    return Status();
  }

  Status Reverse() {
    if (!o_.reverse) return Status();
    auto rev = PrepareReverse(*dst_, *lock_, row_, tables_);
    if (!rev.ok()) return std::move(rev).TakeStatus().Prefix("--reverse");
    reverse_ = *rev;
    report_.reverse_job = reverse_.job;
    report_.reverse_start_lsn = pgoutput::LsnText(reverse_.start_lsn);
    Step("cutover_reverse", fmt::format("reverse job {} prepared on the target from {}",
                                        reverse_.job, report_.reverse_start_lsn));
    return Status();
  }

  Status SwitchHook() {
    if (o_.switch_hook.empty()) return Status();
    report_.hook_command = RedactSecrets(o_.switch_hook);  // URLs in it lose their passwords
    FERRY_ASSIGN_OR_RETURN(
        HookResult r,
        RunHook(o_.switch_hook,
                {{"FERRY_CUTOVER_JOB", o_.job},
                 {"FERRY_CUTOVER_FROM", src_url_.ConnectionText()},
                 {"FERRY_CUTOVER_TO", to_plain_}},
                o_.hook_timeout));
    report_.hook_exit_code = r.exit_code;
    std::string tail = RedactSecrets(r.output);
    if (r.timed_out || r.exit_code != 0) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("the switch hook {} (exit code {}); writes resumed on the "
                                "source and no guard was installed; fix the hook and run "
                                "cutover again. Its output ends: {}",
                                r.timed_out ? fmt::format("was killed after --hook-timeout {} ms",
                                                          o_.hook_timeout.count())
                                            : "failed",
                                r.exit_code, tail.empty() ? "(nothing)" : tail))
          .With("exit_code", std::to_string(r.exit_code));
    }
    Step("cutover_hook", "switch hook exited with code 0");
    return Status();
  }

  Status Commit() {
    FERRY_RETURN_IF_ERROR(lock_->Exec("COMMIT").status());
    in_tx_ = false;
    report_.pause_ms = MsSince(locked_at_);
    report_.guard_installed = true;
    Step("cutover_done", fmt::format("writes moved to the target; pause {} ms", report_.pause_ms));
    Status recorded = RecordCutover(*dst_, report_);
    if (!recorded.ok()) {
      return std::move(recorded).Prefix(
          "the cut-over is complete (guard installed, hook ran) but recording it on the target "
          "failed");
    }
    return Status();
  }

  // A failed step: roll the lock transaction back (writes resume, no
  // guard), note the error in the job row, publish it.
  Status Fail(Status s) {
    if (s.ok()) return s;
    if (in_tx_ && lock_) {
      (void)lock_->Exec("ROLLBACK");
      in_tx_ = false;
    }
    lock_.reset();  // closing the session would end the transaction too
    if (!report_.guard_installed) DropReverse(*dst_, reverse_);
    if (!report_.guard_installed) {
      (void)SetPhase(*dst_, o_.job, SyncPhase::kStopped, "cutover: " + s.message());
    }
    Event e = SyncEventOf("cutover_failed", o_.job, database_, Progress(), 0);
    e.error_type = ErrorTypeOf(s);
    e.message = RedactSecrets(s.message());
    Publish(bus_, e);
    return s;
  }

  SyncProgress Progress() const {
    SyncProgress p;
    p.phase = in_tx_ ? "cut_over" : "catching_up";
    p.applied_lsn = pgoutput::LsnText(applier_ ? applier_->applied_lsn() : row_.applied_lsn);
    p.rows_applied = applier_ ? applier_->rows_applied : 0;
    p.transactions = applier_ ? applier_->transactions : 0;
    return p;
  }

  void Step(const std::string& type, std::string message) {
    Event e = SyncEventOf(type, o_.job, database_, Progress(), 0);
    e.message = std::move(message);
    e.duration_ms = MsSince(started_);
    Publish(bus_, e);
  }

  const CutoverOptions& o_;
  EventBus* bus_;
  Clock::time_point started_ = Clock::now(), locked_at_{};
  Url src_url_;
  std::string to_redacted_, to_plain_, database_;
  std::unique_ptr<Connection> src_, dst_, lock_;
  std::unique_ptr<postgres::ReplicationSession> repl_;
  std::unique_ptr<Applier> applier_;
  SyncOptions stream_;
  StreamContext ctx_;
  JobRow row_;
  std::vector<CutTable> tables_;
  std::vector<OwnedSequence> sequences_;
  std::vector<std::string> created_sequences_;
  uint64_t drain_target_ = 0;
  ReverseJob reverse_;
  bool in_tx_ = false;
  CutoverReport report_;
};

}  // namespace

Result<CutoverReport> RunCutover(const CutoverOptions& options, EventBus* bus) {
  FERRY_ASSIGN_OR_RETURN(CutoverReport report, Cutover(options, bus).Run());
  if (options.watch.duration.count() > 0) {
    FERRY_RETURN_IF_ERROR(sync_internal::WatchCutover(options, report, bus));
  }
  return report;
}

}  // namespace ferry
