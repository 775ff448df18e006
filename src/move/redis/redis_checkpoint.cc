#include "move/redis/redis_checkpoint.h"

#include "core/numbers.h"

#include <charconv>

#include "drivers/registry.h"

namespace ferry::redis {
namespace {

constexpr const char* kDdl =
    "CREATE TABLE IF NOT EXISTS ferry_redis_copy (job TEXT NOT NULL, node TEXT NOT NULL, "
    "cursor TEXT NOT NULL, done INTEGER NOT NULL, scanned INTEGER NOT NULL, "
    "copied INTEGER NOT NULL, skipped INTEGER NOT NULL, expired INTEGER NOT NULL, "
    "failed INTEGER NOT NULL, updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, "
    "PRIMARY KEY (job, node))";

}  // namespace

Result<std::unique_ptr<CheckpointStore>> CheckpointStore::Open(const std::string& path) {
  auto conn = OpenConnection("sqlite:" + path);
  if (!conn.ok()) {
    return std::move(conn).TakeStatus().Prefix("opening the copy state file " + path);
  }
  FERRY_RETURN_IF_ERROR((*conn)->Exec(kDdl).status());
  return std::unique_ptr<CheckpointStore>(new CheckpointStore(std::move(*conn)));
}

Result<NodeCheckpoint> CheckpointStore::Load(const std::string& job, const std::string& node) {
  std::lock_guard lock(mu_);
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn_->Query("SELECT cursor, done, scanned, copied, skipped, expired, failed "
                   "FROM ferry_redis_copy WHERE job = $1 AND node = $2",
                   {job, node}));
  NodeCheckpoint cp;
  if (r.empty()) return cp;
  cp.found = true;
  cp.cursor = r.Text(0, 0);
  cp.done = r.Text(0, 1) == "1";
  cp.scanned = LeadingInt64(r.Text(0, 2));
  cp.copied = LeadingInt64(r.Text(0, 3));
  cp.skipped = LeadingInt64(r.Text(0, 4));
  cp.expired = LeadingInt64(r.Text(0, 5));
  cp.failed = LeadingInt64(r.Text(0, 6));
  return cp;
}

Status CheckpointStore::Save(const std::string& job, const std::string& node,
                             const NodeCheckpoint& cp) {
  std::lock_guard lock(mu_);
  return conn_
      ->Query("INSERT INTO ferry_redis_copy (job, node, cursor, done, scanned, copied, skipped, "
              "expired, failed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
              "ON CONFLICT (job, node) DO UPDATE SET cursor = excluded.cursor, "
              "done = excluded.done, scanned = excluded.scanned, copied = excluded.copied, "
              "skipped = excluded.skipped, expired = excluded.expired, failed = excluded.failed, "
              "updated_at = CURRENT_TIMESTAMP",
              {job, node, cp.cursor, std::string(cp.done ? "1" : "0"),
               std::to_string(cp.scanned), std::to_string(cp.copied), std::to_string(cp.skipped),
               std::to_string(cp.expired), std::to_string(cp.failed)})
      .status();
}

Status CheckpointStore::Forget(const std::string& job) {
  std::lock_guard lock(mu_);
  return conn_->Query("DELETE FROM ferry_redis_copy WHERE job = $1", {job}).status();
}

}  // namespace ferry::redis
