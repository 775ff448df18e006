#include "migrate/lock.h"

#include "core/numbers.h"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/hash.h"
#include "core/log.h"
#include "drivers/registry.h"
#include "migrate/history.h"

namespace ferry {
namespace {

constexpr std::string_view kAppPrefix = "ferry lock ";

std::string HostName() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

std::string HolderFile(const Url& url) { return url.database() + ".ferry-lock.holder"; }

std::string HeldCondition(int64_t key) {
  uint64_t k = static_cast<uint64_t>(key);
  return fmt::format("EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                     "objsubid = 1 AND classid = {}::oid AND objid = {}::oid)",
                     k >> 32, k & 0xffffffffULL);
}

Result<std::optional<LockHolder>> PgHolder(Connection* conn, int64_t key,
                                           std::optional<bool> known_held) {
  uint64_t k = static_cast<uint64_t>(key);
  // pg_locks alone is cheap; the join with pg_stat_activity only when held.
  if (!known_held) {
    FERRY_ASSIGN_OR_RETURN(QueryResult held, conn->Query("SELECT " + HeldCondition(key)));
    known_held = held.Text(0, 0) == "t";
  }
  if (!*known_held) return std::optional<LockHolder>();
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn->Query("SELECT a.pid, coalesce(a.application_name, ''), "
                  "to_char(a.backend_start AT TIME ZONE 'UTC', "
                  "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
                  "(extract(epoch FROM now() - a.backend_start) * 1000)::bigint "
                  "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                  "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                  "AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid "
                  "AND l.database = (SELECT oid FROM pg_database WHERE datname = "
                  "current_database())",
                  {std::to_string(k >> 32), std::to_string(k & 0xffffffffULL)}));
  if (r.empty()) return std::optional<LockHolder>();
  LockHolder h;
  h.pid = static_cast<int>(LeadingInt64(r.Text(0, 0)));
  h.who = r.Text(0, 1);
  if (h.who.rfind(kAppPrefix, 0) == 0) h.who = "ferry " + h.who.substr(kAppPrefix.size());
  if (h.who.empty()) h.who = "a session without application_name";
  h.who += fmt::format(" (server pid {})", h.pid);
  h.since = r.Text(0, 2);
  h.held_ms = LeadingInt64(r.Text(0, 3));
  return std::optional<LockHolder>(h);
}

std::optional<LockHolder> SqliteHolder(const Url& url) {
  std::ifstream in(HolderFile(url));
  LockHolder h;
  std::string line;
  if (!std::getline(in, line)) {
    h.who = "another process (no holder file)";
    return h;
  }
  // "pid|host|since|epoch_ms"
  std::vector<std::string> parts;
  std::stringstream ss(line);
  for (std::string p; std::getline(ss, p, '|');) parts.push_back(p);
  if (parts.size() >= 4) {
    h.pid = static_cast<int>(LeadingInt64(parts[0]));
    h.who = fmt::format("ferry pid {} on {}", parts[0], parts[1]);
    h.since = parts[2];
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    h.held_ms = now - LeadingInt64(parts[3]);
  }
  return h;
}

// Milliseconds since `iso` ("2026-11-21T14:53:00.123Z"), 0 when unreadable.
int64_t MsSinceIso(const std::string& iso) {
  std::tm tm{};
  int ms = 0;
  if (iso.size() < 19 || strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return 0;
  if (iso.size() > 20 && iso[19] == '.') ms = static_cast<int>(LeadingInt64(iso.substr(20, 3)));
  const int64_t then = static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return now > then ? now - then : 0;
}

LockHolder FromLease(const LeaseHolder& lease) {
  LockHolder h;
  h.who = fmt::format("{} (lease, expires in {} s unless renewed)", lease.owner,
                      lease.expires_in_s);
  h.since = lease.acquired_at;
  h.held_ms = MsSinceIso(lease.acquired_at);
  return h;
}

constexpr std::string_view kLeaseName = "migrations";

}  // namespace

std::string MigrationLock::LeaseTableFor(const std::string& history_table) {
  return history_table + "_lock";
}

Result<std::unique_ptr<MigrationLock>> MigrationLock::AcquireLease(
    const Url& url, std::unique_ptr<Connection> conn, const std::string& history_table,
    std::chrono::milliseconds wait, const std::function<void(const LockHolder&)>& on_wait) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<TableLease> lease,
                         conn->traits().OpenLease(*conn, LeaseTableFor(history_table),
                                                  std::string(kLeaseName), History::Actor(),
                                                  kLeaseTtl));
  FERRY_RETURN_IF_ERROR(lease->Ensure());
  auto deadline = std::chrono::steady_clock::now() + wait;
  bool told = false;
  auto pause = std::chrono::milliseconds(100);
  while (true) {
    std::optional<LeaseHolder> holder;
    FERRY_ASSIGN_OR_RETURN(bool got, lease->TryAcquire(&holder));
    if (got) break;
    std::optional<LockHolder> who;
    if (holder) who = FromLease(*holder);
    if (!told && on_wait && who) {
      on_wait(*who);
      told = true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string by = who ? fmt::format("{} since {}", who->who, who->since)
                           : std::string("another runner");
      return Status(StatusCode::kDeadlineExceeded,
                    fmt::format("the migration lease on {} is held by {}; waited {} ms. Try "
                                "again when it finishes, or raise --lock-wait",
                                url.Redacted(), by, wait.count()));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(1000));
  }
  std::unique_ptr<MigrationLock> lock(new MigrationLock(std::move(conn), 0, ""));
  lock->lease_ = std::move(lease);
  lock->renewer_ = std::thread([raw = lock.get()] { raw->RenewLoop(); });
  return lock;
}

void MigrationLock::RenewLoop() {
  std::unique_lock<std::mutex> guard(mu_);
  while (!stop_) {
    if (stop_cv_.wait_for(guard, kLeaseTtl / 3, [this] { return stop_; })) break;
    guard.unlock();
    Status s = lease_->Renew();
    guard.lock();
    if (!s.ok()) {
      // A failed renewal is retried at the next tick while the TTL lasts; a
      // lease taken by another owner is lost for good.
      FERRY_LOG_WARN("renewing the migration lease: {}", s.ToString());
      if (s.code() == StatusCode::kFailedPrecondition) {
        lost_ = std::move(s);
        break;
      }
    }
  }
}

Status MigrationLock::Check() const {
  std::lock_guard<std::mutex> guard(mu_);
  return lost_;
}

int64_t MigrationLock::KeyFor(const std::string& history_table) {
  return static_cast<int64_t>(Xxh3("ferry migration lock:" + history_table));
}

MigrationLock::MigrationLock(std::unique_ptr<Connection> conn, int64_t key,
                             std::string holder_file)
    : conn_(std::move(conn)), key_(key), holder_file_(std::move(holder_file)) {}

MigrationLock::~MigrationLock() {
  if (lease_) {
    {
      std::lock_guard<std::mutex> guard(mu_);
      stop_ = true;
    }
    stop_cv_.notify_all();
    if (renewer_.joinable()) renewer_.join();
    if (Status s = lease_->Release(); !s.ok()) {
      FERRY_LOG_WARN("giving up the migration lease: {} (it expires by itself within {} s)",
                     s.ToString(), kLeaseTtl.count());
    }
    lease_.reset();
    return;
  }
  if (!holder_file_.empty()) std::remove(holder_file_.c_str());
  if (conn_) (void)conn_->Unlock(key_);
}

Result<std::unique_ptr<MigrationLock>> MigrationLock::Acquire(
    const Url& url, const std::string& history_table, std::chrono::milliseconds wait,
    const std::function<void(const LockHolder&)>& on_wait) {
  ConnectOptions options;
  options.application_name = fmt::format("{}pid {} on {}", kAppPrefix, getpid(), HostName());
  if (options.application_name.size() > 63) options.application_name.resize(63);
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenConnection(url, options));
  if (!conn->traits().Has(Feature::kSessionLocks)) {
    return AcquireLease(url, std::move(conn), history_table, wait, on_wait);
  }
  int64_t key = KeyFor(history_table);
  auto deadline = std::chrono::steady_clock::now() + wait;
  bool told = false;
  auto pause = std::chrono::milliseconds(50);
  while (true) {
    FERRY_ASSIGN_OR_RETURN(bool got, conn->TryLock(key));
    if (got) break;
    std::optional<LockHolder> holder;
    if (conn->traits().Has(Feature::kCatalogLockHolder)) {
      auto h = PgHolder(conn.get(), key, std::nullopt);
      if (h.ok()) holder = *h;
    } else {
      holder = SqliteHolder(url);
    }
    if (!told && on_wait && holder) {
      on_wait(*holder);
      told = true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string who = holder ? fmt::format("{} since {}", holder->who, holder->since)
                               : std::string("another session");
      return Status(StatusCode::kDeadlineExceeded,
                    fmt::format("the migration lock on {} is held by {}; waited {} ms. Try again "
                                "when it finishes, or raise --lock-wait",
                                url.Redacted(), who, wait.count()));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  std::string holder_file;
  if (!conn->traits().Has(Feature::kCatalogLockHolder)) {  // say who holds it in a file
    holder_file = HolderFile(url);
    auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    std::ofstream(holder_file, std::ios::trunc)
        << getpid() << '|' << HostName() << '|' << History::Now() << '|' << now_ms << '\n';
  }
  return std::unique_ptr<MigrationLock>(new MigrationLock(std::move(conn), key, holder_file));
}

std::string MigrationLock::PgHeldCondition(const std::string& history_table) {
  return HeldCondition(KeyFor(history_table));
}

Result<std::optional<LockHolder>> MigrationLock::Holder(Connection* conn, const Url& url,
                                                        const std::string& history_table,
                                                        std::optional<bool> known_held) {
  if (!conn->traits().Has(Feature::kSessionLocks)) {
    const std::string table = LeaseTableFor(history_table);
    FERRY_ASSIGN_OR_RETURN(bool exists, conn->traits().TableExists(*conn, table));
    if (!exists) return std::optional<LockHolder>();
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<TableLease> lease,
                           conn->traits().OpenLease(*conn, table, std::string(kLeaseName),
                                                    History::Actor(), kLeaseTtl));
    FERRY_ASSIGN_OR_RETURN(std::optional<LeaseHolder> holder, lease->Holder());
    if (!holder) return std::optional<LockHolder>();
    return std::optional<LockHolder>(FromLease(*holder));
  }
  int64_t key = KeyFor(history_table);
  if (conn->traits().Has(Feature::kCatalogLockHolder)) return PgHolder(conn, key, known_held);
  FERRY_ASSIGN_OR_RETURN(bool got, conn->TryLock(key));
  if (got) {
    (void)conn->Unlock(key);
    return std::optional<LockHolder>();
  }
  return SqliteHolder(url);
}

}  // namespace ferry
