// TableLease: a lock kept as a row with a time to live, for engines without
// session locks (Feature::kSessionLocks). An engine offers one through
// EngineTraits::OpenLease (CQL: drivers/cql/cql_lease.h, lightweight
// transactions).
//
// Contract: exactly one of several concurrent TryAcquire callers with
// different owners wins; the lease ends by itself `ttl` after the last
// Renew, so a killed holder blocks others at most one TTL. The holder must
// Renew well within the TTL while it works. Used by one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ferry/status.h"

namespace ferry {

struct LeaseHolder {
  std::string owner;        // "user@host pid N"
  std::string acquired_at;  // ISO 8601 UTC
  std::string renewed_at;
  int64_t expires_in_s = 0;  // seconds left of the TTL
};

class TableLease {
 public:
  virtual ~TableLease() = default;
  // Creates the lease table when missing.
  virtual Status Ensure() = 0;
  // True when this owner now holds the lease; false (and `holder` set when
  // given) while another owner does.
  virtual Result<bool> TryAcquire(std::optional<LeaseHolder>* holder = nullptr) = 0;
  // Extends the lease by the TTL; kFailedPrecondition when it was lost.
  virtual Status Renew() = 0;
  // Gives the lease up; a lease no longer ours is not an error.
  virtual Status Release() = 0;
  // The current holder, or nullopt when free.
  virtual Result<std::optional<LeaseHolder>> Holder() = 0;
};

}  // namespace ferry
