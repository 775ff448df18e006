// The migration lock: one runner per database at a time.
//
// PostgreSQL: a session-level advisory lock held on a connection of its own,
// so it can never deadlock with CREATE INDEX CONCURRENTLY on the work
// connection, and the server frees it when the process dies (kill -9 too).
// The lock connection's application_name says who holds it.
// SQLite: an open-file-description lock on "<db>.ferry-lock", freed by the
// kernel when the process dies; "<db>.ferry-lock.holder" says who holds it.
// Engines without session locks (Feature::kSessionLocks absent: CQL): a
// lease (drivers/lease.h) named "migrations" in table "<history_table>_lock",
// taken on the lock's own connection with a TTL (kLeaseTtl) and renewed by a
// thread every third of it while held; a killed holder blocks the next run
// at most one TTL. The lease row says who holds it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/url.h"
#include "drivers/connection.h"
#include "drivers/lease.h"
#include "ferry/status.h"

namespace ferry {

// The migration lease's time to live on engines without session locks.
inline constexpr std::chrono::seconds kLeaseTtl{30};

struct LockHolder {
  int pid = 0;          // server backend pid (PostgreSQL) or process id (SQLite); 0 for a lease
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

  ~MigrationLock();  // releases (a lease: stops renewing, then gives it up)
  MigrationLock(const MigrationLock&) = delete;
  MigrationLock& operator=(const MigrationLock&) = delete;

  // The key used for the advisory lock (stable for a history table name).
  static int64_t KeyFor(const std::string& history_table);
  // The lease table of engines without session locks.
  static std::string LeaseTableFor(const std::string& history_table);

  // OK while the lock is held; a lease that could not be renewed in time
  // (lost to another runner) is kFailedPrecondition.
  Status Check() const;

 private:
  MigrationLock(std::unique_ptr<Connection> conn, int64_t key, std::string holder_file);
  static Result<std::unique_ptr<MigrationLock>> AcquireLease(
      const Url& url, std::unique_ptr<Connection> conn, const std::string& history_table,
      std::chrono::milliseconds wait, const std::function<void(const LockHolder&)>& on_wait);
  void RenewLoop();

  std::unique_ptr<Connection> conn_;
  int64_t key_;
  std::string holder_file_;  // SQLite only
  // Lease engines: the lease, its renewing thread and what stops it.
  std::unique_ptr<TableLease> lease_;
  std::thread renewer_;
  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  Status lost_;  // guarded by mu_
};

}  // namespace ferry
