#include "observe/event.h"

#include <algorithm>
#include <filesystem>

#include "core/url.h"

namespace ferry {

namespace {

bool EndsWith(std::string_view text, std::string_view tail) {
  return text.size() >= tail.size() && text.substr(text.size() - tail.size()) == tail;
}

// The status of a step named like "x_started", "x_done", "x_failed".
EventStatus StatusOfType(std::string_view type) {
  if (EndsWith(type, "_started") || EndsWith(type, "_resumed")) return EventStatus::kStarted;
  if (EndsWith(type, "_done") || EndsWith(type, "_completed")) return EventStatus::kSucceeded;
  if (EndsWith(type, "_failed") || EndsWith(type, "_interrupted")) return EventStatus::kFailed;
  if (EndsWith(type, "_retry") || EndsWith(type, "_retried")) return EventStatus::kRetrying;
  return EventStatus::kInfo;
}

}  // namespace

std::string_view BackfillProgressName(BackfillProgress::Kind kind) {
  switch (kind) {
    case BackfillProgress::Kind::kPlanned:
      return "planned";
    case BackfillProgress::Kind::kStarted:
      return "started";
    case BackfillProgress::Kind::kBatch:
      return "batch";
    case BackfillProgress::Kind::kRetry:
      return "retry";
    case BackfillProgress::Kind::kThrottled:
      return "throttled";
    case BackfillProgress::Kind::kChecking:
      return "checking";
    case BackfillProgress::Kind::kFinished:
      return "finished";
  }
  return "unknown";
}

Event MigrationEventOf(std::string type, MigrationStep step, int64_t duration_ms) {
  Event e;
  e.kind = type.starts_with("lint_") ? EventKind::kLint : EventKind::kMigration;
  e.status = StatusOfType(type);
  e.operation = type.starts_with("undo_") ? "undo" : "migration";
  if (e.kind == EventKind::kLint) e.operation = "lint";
  if (type.starts_with("lock_")) e.operation = "lock";
  e.job = step.version;
  e.duration_ms = duration_ms;
  e.rows = step.rows_affected;
  e.message = step.message;
  e.type = std::move(type);
  e.migration = std::move(step);
  return e;
}

Event CopyEventOf(std::string type, std::string job, CopyProgress progress) {
  Event e;
  e.kind = EventKind::kCopy;
  e.status = StatusOfType(type);
  e.operation = type.starts_with("chunk_") ? "copy_chunk" : "copy";
  e.job = std::move(job);
  e.rows = progress.rows;
  e.message = progress.error;
  e.type = std::move(type);
  e.copy = std::move(progress);
  return e;
}

Event BackfillEventOf(std::string job, std::string table, BackfillProgress progress) {
  Event e;
  e.kind = EventKind::kBackfill;
  e.type = std::string(BackfillProgressName(progress.kind));
  switch (progress.kind) {
    case BackfillProgress::Kind::kStarted:
      e.status = EventStatus::kStarted;
      break;
    case BackfillProgress::Kind::kBatch:
      e.status = EventStatus::kSucceeded;
      break;
    case BackfillProgress::Kind::kRetry:
      e.status = EventStatus::kRetrying;
      break;
    default:
      e.status = EventStatus::kInfo;
      break;
  }
  e.operation = progress.kind == BackfillProgress::Kind::kBatch ||
                        progress.kind == BackfillProgress::Kind::kRetry
                    ? "backfill_batch"
                    : "backfill";
  e.job = std::move(job);
  if (progress.kind == BackfillProgress::Kind::kBatch) {
    e.rows = progress.batch_rows;
    e.duration_ms = progress.batch_ms;
  }
  e.message = progress.message;
  e.backfill = std::move(progress);
  (void)table;
  return e;
}

Event VerifyTableEventOf(VerifyTableProgress table) {
  Event e;
  e.kind = EventKind::kVerify;
  e.type = "table_done";
  e.operation = "verify";
  e.status = EventStatus::kSucceeded;
  e.job = table.table;
  e.rows = table.source_rows;
  e.verify = std::move(table);
  return e;
}

Event RedisEventOf(std::string type, std::string job, std::string database,
                   RedisProgress progress, bool failed) {
  Event e;
  e.kind = EventKind::kRedis;
  const bool done = type.ends_with("_done");
  e.status = !done ? EventStatus::kInfo : failed ? EventStatus::kFailed : EventStatus::kSucceeded;
  e.operation = type.starts_with("redis_move") ? "redis_move_slots" : "redis_copy";
  e.job = std::move(job);
  e.database = std::move(database);
  e.rows = progress.copied;
  e.duration_ms = done ? static_cast<int64_t>(progress.seconds * 1000) : 0;
  if (failed) e.error_type = "KEYS_FAILED";
  e.type = std::move(type);
  e.redis = std::move(progress);
  return e;
}

Event SchemaVersionEvent(std::string database, std::string version) {
  Event e;
  e.kind = EventKind::kMigration;
  e.type = "schema_version";
  e.operation = "migration";
  e.database = std::move(database);
  e.job = std::move(version);
  return e;
}

Event StepEvent(EventKind kind, std::string type, std::string message) {
  Event e;
  e.kind = kind;
  e.status = StatusOfType(type);
  e.operation = std::string(EventKindName(kind));
  e.type = std::move(type);
  e.message = std::move(message);
  return e;
}

std::string DatabaseLabel(std::string_view url) {
  auto parsed = Url::Parse(url);
  if (!parsed.ok()) return "unknown";
  const Url& u = *parsed;
  if (u.scheme() == "sqlite") {
    std::string name = std::filesystem::path(u.database()).filename().string();
    return name.empty() ? "sqlite" : name;
  }
  std::string host = u.host().empty() ? "localhost" : u.host();
  if (host.starts_with("/")) host = "localhost";  // a Unix socket directory
  std::string out = host;
  // A seed list ("h1:p1,h2:p2") carries its own ports.
  if (u.port() != 0 && host.find(',') == std::string::npos) out += ":" + std::to_string(u.port());
  out += "/" + u.database();
  return out;
}

std::string ErrorTypeOf(const Status& status) {
  std::string state = status.Get("sqlstate");
  if (!state.empty()) return state;
  return std::string(StatusCodeName(status.code()));
}

int EventBus::Subscribe(Consumer consumer) {
  std::lock_guard lock(mu_);
  consumers_.emplace_back(next_id_, std::move(consumer));
  return next_id_++;
}

void EventBus::Unsubscribe(int id) {
  std::lock_guard lock(mu_);
  std::erase_if(consumers_, [id](const auto& c) { return c.first == id; });
}

void EventBus::Publish(const Event& event) {
  std::lock_guard lock(mu_);
  for (const auto& [id, consumer] : consumers_) consumer(event);
}

bool EventBus::empty() const {
  std::lock_guard lock(mu_);
  return consumers_.empty();
}

}  // namespace ferry
