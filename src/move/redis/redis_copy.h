// ferry redis copy: keys from one Redis (standalone or cluster) to another.
//
// In: a source and a target URL, a key pattern and type. Out: every matching
// source key on the target with its value and its absolute expiry; counts.
// Resume: per source master, the SCAN cursor after the last page the target
// acknowledged is checkpointed in a local SQLite file (redis_checkpoint.h);
// the same command continues from there after a crash or kill -9 (pages
// copied again are harmless: RESTORE ... REPLACE is idempotent). A run that
// finishes every master forgets its checkpoints: running it again copies anew.
//
// Per source master (up to `workers` masters at once), page by page:
//   SCAN cursor MATCH m COUNT n [TYPE t]
//   pipelined on the source: DUMP key, PEXPIRETIME key (PTTL before 7.0)
//   pipelined per target master: RESTORE key ABSTTL-ms payload ABSTTL [REPLACE]
// The expiry is read after the value in one pipeline and sent as an
// absolute time, so a key never lives longer on the target than on the
// source; a key that expired or was deleted in flight (DUMP nil) or whose
// expiry has passed is not restored; a key without expiry gets 0 (none).
// Keys too big for one RESTORE (--big-key-bytes) and payloads the target's
// version refuses are copied type by type (redis_copy_by_type.h).
// A source key is never modified or deleted.
//
// Checks before any key is written: see redis_pair.h; also the target's
// maxmemory against the source's dataset size (kFailedPrecondition).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "move/redis/redis_memory.h"
#include "observe/event.h"

namespace ferry::redis {

// The key counts of a copy: the detail of its kRedis events.
using RedisCopyProgress = RedisProgress;

struct RedisCopyOptions {
  std::string from;
  std::string to;
  std::string match;           // SCAN MATCH ("" = every key)
  std::string type;            // SCAN TYPE ("" = every type)
  bool skip_existing = false;  // RESTORE without REPLACE; existing keys count as skipped
  int workers = 4;             // source masters copied at once
  int64_t max_keys_per_sec = 0;  // 0 = no limit
  int scan_count = 1000;       // SCAN COUNT hint (keys per page)
  // DUMP payloads larger than this are copied type by type into a temporary
  // key, then RENAMEd (redis_copy_by_type.h); so are payloads the target's
  // version cannot read.
  int64_t big_key_bytes = 64LL << 20;
  bool dry_run = false;
  bool restart = false;        // forget this job's checkpoints first
  // The target's memory while keys go in (redis_memory.h): slow down, then
  // stop before the target would evict or refuse writes.
  MemoryLimits memory;
  // Lazy-freeing settings on the target for the copy, restored at the end.
  bool prepare_target = false;
  // --follow (redis_follow.h): keep copying keys that change at the source
  // until *stop becomes true (SIGINT/SIGTERM in the CLI).
  bool follow = false;
  const std::atomic<bool>* stop = nullptr;
  std::string state_path = "ferry-redis-state.db";
  // Receives "redis_copy_progress" about once a second from the calling
  // thread while keys move, and "redis_copy_done" at the end (may be null).
  EventBus* bus = nullptr;
};

struct RedisCopyReport {
  RedisCopyProgress counts;
  bool dry_run = false;
  bool resumed = false;           // some node started from a checkpoint
  std::string job;                // checkpoint job name
  bool source_cluster = false, target_cluster = false;
  int source_masters = 0, target_masters = 0;
  int64_t source_dataset_bytes = 0;  // INFO used_memory_dataset, summed
  int64_t target_used_bytes = 0;
  int64_t target_max_bytes = 0;      // 0 = no limit
  std::vector<std::string> errors;   // the first few failed keys' errors
  int64_t memory_slowed_pages = 0;   // pages the memory guard paused before
  // --prepare-target: "node setting=previous" of each setting changed and
  // put back at the end.
  std::vector<std::string> prepared;
  // --follow: what was kept in step after the scan began.
  bool followed = false;
  std::vector<std::string> notifications_enabled;  // masters where ferry turned them on
};

// The checkpoint job name of these options (stable across runs).
std::string RedisCopyJobName(const RedisCopyOptions& options);

Result<RedisCopyReport> RedisCopy(const RedisCopyOptions& options);

}  // namespace ferry::redis
