// Event: the one progress record every engine publishes (migration steps,
// copy chunks, backfill batches, verify ranges, expand steps, lint
// findings, Redis copies and slot moves), and EventBus, which hands each event to its consumers.
//
// The header fields (kind, type, job, operation, database, status,
// error_type, duration, rows) are what every consumer may rely on, whatever
// the kind: the metrics consumer reads only them. The detail members carry a
// kind's own figures for the renderers (text progress, --json lines); an
// event has the detail of its kind, and an expand step run by a migration
// also carries that migration's `migration` detail.
//
// Producers never block on consumers for long: a consumer runs on the
// publishing thread, so it must be quick (print a line, bump a counter).
// Types and inline functions only above the builders: the observability
// plugin (observe/plugin.h) uses them without linking ferry_lib.
// Secrets: `database` is a label (host/db, no user or password), `message`
// and `error` are redacted by the publisher.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry {

enum class EventKind {
  kMigration,  // a migration or undo step (`up`, `down` ...), lock waits
  kCopy,       // a copy job's chunk, table or job step
  kBackfill,   // a backfill batch or phase
  kVerify,     // a verify table or range step
  kExpand,     // an expand/contract step, or an online step of a migration
  kLint,       // a lint finding or an override of one
  kRedis,      // a Redis copy or slot move's progress
};
constexpr std::string_view EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kMigration: return "migration";
    case EventKind::kCopy: return "copy";
    case EventKind::kBackfill: return "backfill";
    case EventKind::kVerify: return "verify";
    case EventKind::kExpand: return "expand";
    case EventKind::kLint: return "lint";
    case EventKind::kRedis: return "redis";
  }
  return "unknown";
}

enum class EventStatus {
  kInfo,       // a note (lock wait, planned, throttled ...)
  kStarted,    // a unit of work begins
  kSucceeded,  // a unit of work finished
  kFailed,     // a unit of work failed for good
  kRetrying,   // a unit of work failed and will be tried again
};
// The `status` label: "info", "started", "success", "failure", "retry".
constexpr std::string_view EventStatusName(EventStatus status) {
  switch (status) {
    case EventStatus::kInfo: return "info";
    case EventStatus::kStarted: return "started";
    case EventStatus::kSucceeded: return "success";
    case EventStatus::kFailed: return "failure";
    case EventStatus::kRetrying: return "retry";
  }
  return "unknown";
}

// A migration's step: the detail of kMigration and kLint events.
struct MigrationStep {
  std::string version;
  std::string script;
  std::string description;
  int statement = 0;   // 1-based, for statement_done
  int statements = 0;  // total in the script
  int64_t rows_affected = 0;
  std::string message;
};

// A copy job's progress: the detail of kCopy events.
struct CopyProgress {
  std::string table;
  int64_t chunk_id = -1;
  std::string range;  // KeyRange::ToString() or "pages [a, b)"
  int64_t rows = 0;   // this chunk's or table's rows
  int64_t bytes = 0;
  int attempt = 0;
  std::string error;  // chunk_failed / chunk_retry
  // Totals so far (every event): rows and bytes copied, chunks done/total,
  // per table and for the job.
  int64_t table_rows_done = 0, table_rows_estimated = -1, table_bytes_done = 0;
  int64_t table_chunks_done = 0, table_chunks_total = 0;
  int64_t job_rows_done = 0, job_rows_estimated = -1, job_bytes_done = 0;
  int64_t job_chunks_done = 0, job_chunks_total = 0, job_rows_failed = 0;
};

// A backfill's progress: the detail of kBackfill events.
struct BackfillProgress {
  enum class Kind {
    kPlanned,    // validated; message: the UPDATE shape
    kStarted,    // first batch about to run (resumed says if from a checkpoint)
    kBatch,      // one batch committed
    kRetry,      // a batch failed with a retryable error and will be retried
    kThrottled,  // waiting for replicas (message says how far behind)
    kChecking,   // integrity check started
    kFinished,   // all ranges done and checks passed or failed (see report)
  };
  Kind kind = Kind::kBatch;
  int worker = 0;             // 0-based worker of kBatch/kRetry
  int64_t batch_rows = 0;     // rows updated by this batch
  int64_t batch_limit = 0;    // window size used for this batch
  int64_t batch_ms = 0;       // duration of this batch's transaction
  int attempt = 0;            // kRetry: failed attempt number (1-based)
  int64_t rows_updated = 0;   // totals, all workers, including resumed work
  int64_t rows_scanned = 0;   // keys walked so far
  int64_t estimated_rows = 0; // keys to walk in total (planner estimate)
  double rows_per_second = 0; // rows_scanned rate of this run
  double eta_seconds = -1;    // -1 when unknown
  bool resumed = false;
  std::string message;        // human text (retry reason, throttle lag ...)
};
// "planned", "batch", "retry" ...
std::string_view BackfillProgressName(BackfillProgress::Kind kind);

// A verified table's counts: the detail of kVerify events ("table_done").
struct VerifyTableProgress {
  std::string table;
  int64_t source_rows = 0, target_rows = 0;
  int64_t missing = 0, extra = 0, changed = 0;
};

// A Redis job's progress: the detail of kRedis events. `redis copy` fills
// the key counts and nodes, `redis move-slots` the slots and keys moved.
struct RedisProgress {
  int64_t scanned = 0;
  int64_t copied = 0;   // keys copied (move-slots: keys moved)
  int64_t skipped = 0;  // already on the target (--skip-existing)
  int64_t expired = 0;  // gone or expired between SCAN and RESTORE
  int64_t failed = 0;
  int64_t total = 0;    // keys to scan (DBSIZE of the source masters)
  int nodes_done = 0, nodes = 0;
  int slots_done = 0, slots = 0;
  // --follow: keys written again / deleted on the target after the scan
  // began, and keys changed at the source not yet copied (the lag).
  int64_t followed = 0, deleted = 0, lag = 0;
  double seconds = 0;
};

struct Event {
  EventKind kind = EventKind::kMigration;
  // The step within the kind: "migration_started", "chunk_done", "batch" ...
  // (the `event` field of --json lines).
  std::string type;
  std::string job;        // copy/backfill job id, migration version, verify table
  std::string operation;  // what ran: "migration", "undo", "copy_chunk", "backfill_batch" ...
  std::string database;   // DatabaseLabel() of the database worked on
  EventStatus status = EventStatus::kInfo;
  std::string error_type;  // SQLSTATE or status code name, for failures and retries
  int64_t duration_ms = 0;
  int64_t rows = 0;        // rows this step moved or changed
  std::string message;     // human text (redacted)

  std::optional<MigrationStep> migration;
  std::optional<CopyProgress> copy;
  std::optional<BackfillProgress> backfill;
  std::optional<VerifyTableProgress> verify;
  std::optional<RedisProgress> redis;
};

// Builders filling the header from a kind's detail.
Event MigrationEventOf(std::string type, MigrationStep step, int64_t duration_ms = 0);
Event CopyEventOf(std::string type, std::string job, CopyProgress progress);
Event BackfillEventOf(std::string job, std::string table, BackfillProgress progress);
Event VerifyTableEventOf(VerifyTableProgress table);
// A Redis job's step: type "redis_copy_progress", "redis_follow_progress",
// "redis_copy_done", "redis_move_progress" or "redis_move_done"; `failed` marks a done step
// that ended with failures.
Event RedisEventOf(std::string type, std::string job, std::string database,
                   RedisProgress progress, bool failed = false);
// The schema version a database is at after a migration command (kind
// kMigration, type "schema_version", job = the version, no detail).
Event SchemaVersionEvent(std::string database, std::string version);
// A free-form step (expand phases, lock waits of a contract phase).
Event StepEvent(EventKind kind, std::string type, std::string message);

// The label of a database in events and metrics: "host:port/db" for a
// server, the file name for SQLite; never a user or password. Unparsable
// text gives "unknown".
std::string DatabaseLabel(std::string_view url);
// A failure's type for error_type: the SQLSTATE when there is one, else the
// status code name ("UNAVAILABLE").
std::string ErrorTypeOf(const Status& status);

// The bus: consumers subscribe; any thread publishes. Publish() calls the
// consumers in subscription order, one event at a time (a mutex serializes
// publishers), so a consumer needs no locking of its own. A consumer must
// not publish on the same bus. Subscribe/Unsubscribe may run while others
// publish.
class EventBus {
 public:
  using Consumer = std::function<void(const Event&)>;

  // Returns an id for Unsubscribe.
  int Subscribe(Consumer consumer);
  void Unsubscribe(int id);
  void Publish(const Event& event);
  bool empty() const;

 private:
  mutable std::mutex mu_;
  int next_id_ = 1;
  std::vector<std::pair<int, Consumer>> consumers_;
};

// Subscribes `consumer` to `bus` for its own lifetime (a consumer that
// captures locals of a function must not outlive it).
class ScopedSubscription {
 public:
  ScopedSubscription(EventBus& bus, EventBus::Consumer consumer)
      : bus_(bus), id_(bus.Subscribe(std::move(consumer))) {}
  ~ScopedSubscription() { bus_.Unsubscribe(id_); }
  ScopedSubscription(const ScopedSubscription&) = delete;
  ScopedSubscription& operator=(const ScopedSubscription&) = delete;

 private:
  EventBus& bus_;
  int id_;
};

// Publishes when `bus` is not null (engines take an optional bus).
inline void Publish(EventBus* bus, const Event& event) {
  if (bus != nullptr) bus->Publish(event);
}

}  // namespace ferry
