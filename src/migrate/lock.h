// The migration lock: one runner per database at a time.
//
// PostgreSQL: a session-level advisory lock held on a connection of its own,
// so it can never deadlock with CREATE INDEX CONCURRENTLY on the work
// connection, and the server frees it when the process dies (kill -9 too).
// The lock connection's application_name says who holds it.
// SQLite: an open-file-description lock on "<db>.ferry-lock", freed by the
// kernel when the process dies; "<db>.ferry-lock.holder" says who holds it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/url.h"
#include "drivers/connection.h"
#include "ferry/status.h"

namespace ferry {

struct LockHolder {
  int pid = 0;          // server backend pid (PostgreSQL) or process id (SQLite)
  std::string who;      // "ferry pid 123 on host-a"
  std::string since;    // ISO 8601 UTC, when the holder took the lock
  int64_t held_ms = 0;  // how long it has been held
};

class MigrationLock {
 public:
  // Takes the lock for `history_table` in the database at `url`, waiting up
  // to `wait`. `on_wait` is called once when the lock is busy, with the
  // holder. kDeadlineExceeded when still held after `wait`.
  static Result<std::unique_ptr<MigrationLock>> Acquire(
      const Url& url, const std::string& history_table, std::chrono::milliseconds wait,
      const std::function<void(const LockHolder&)>& on_wait);

  // Who holds the lock now, or nullopt when it is free. Does not take it.
  // `conn` is any connection to the same database (not the holder's).
  // `known_held` skips the probe when the caller already asked the server
  // (PostgreSQL: PgHeldCondition in its own query).
  static Result<std::optional<LockHolder>> Holder(Connection* conn, const Url& url,
                                                  const std::string& history_table,
                                                  std::optional<bool> known_held = {});
  // A boolean SQL expression, true while the lock is held (PostgreSQL).
  static std::string PgHeldCondition(const std::string& history_table);

  ~MigrationLock();  // releases
  MigrationLock(const MigrationLock&) = delete;
  MigrationLock& operator=(const MigrationLock&) = delete;

  // The key used for the advisory lock (stable for a history table name).
  static int64_t KeyFor(const std::string& history_table);

 private:
  MigrationLock(std::unique_ptr<Connection> conn, int64_t key, std::string holder_file);
  std::unique_ptr<Connection> conn_;
  int64_t key_;
  std::string holder_file_;  // SQLite only
};

}  // namespace ferry
