// Where `ferry redis copy` keeps its SCAN cursors, so a copy killed at any
// point (kill -9 included) resumes where its last acknowledged page ended.
//
// A local SQLite file (default ./ferry-redis-state.db, --state) holds one
// row per (job, source node): the cursor after the last page whose RESTOREs
// the target acknowledged, whether the node is done, and the counts so far.
// A job is named by a hash of the source and target URLs (without
// passwords), --match and --type. No password or key is stored.
// Thread-safe: workers share one store.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "drivers/connection.h"
#include "ferry/status.h"

namespace ferry::redis {

struct NodeCheckpoint {
  std::string cursor = "0";
  bool done = false;
  bool found = false;  // a row existed
  int64_t copied = 0, skipped = 0, expired = 0, failed = 0, scanned = 0;
};

class CheckpointStore {
 public:
  static Result<std::unique_ptr<CheckpointStore>> Open(const std::string& path);

  Result<NodeCheckpoint> Load(const std::string& job, const std::string& node);
  Status Save(const std::string& job, const std::string& node, const NodeCheckpoint& cp);
  // Forgets every node of `job` (--restart).
  Status Forget(const std::string& job);

 private:
  explicit CheckpointStore(std::unique_ptr<Connection> conn) : conn_(std::move(conn)) {}
  std::mutex mu_;
  std::unique_ptr<Connection> conn_;
};

}  // namespace ferry::redis
