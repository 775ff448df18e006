// What both PostgreSQL clients do alike on top of their own round trips:
// libpq (pg_connection.cc) and the hand-written wire client (pg_light.cc)
// derive from PgSession for transaction control with ferry's checks and for
// session-bound advisory locks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "drivers/connection.h"
#include "ferry/status.h"

namespace ferry::postgres {

class PgSession : public Connection {
 public:
  // BEGIN; refused inside a transaction (PostgreSQL does not nest them).
  Status Begin() override;
  // COMMIT; kAborted when the server answered ROLLBACK (a statement in the
  // transaction had failed), kFailedPrecondition outside a transaction.
  Status Commit() override;
  // ROLLBACK; a no-op outside a transaction, so clean-up may always call it.
  Status Rollback() override;

  Result<bool> TryLock(int64_t key) override;
  Status Unlock(int64_t key) override;

 protected:
  // Runs one transaction-control statement; `tag` gets the command tag the
  // server answered with.
  virtual Status RunControl(std::string_view sql, std::string* tag) = 0;
  // Why the session cannot take `statement` now (lost, inside a COPY), or ok.
  virtual Status CheckReady(std::string_view statement) const = 0;
};

}  // namespace ferry::postgres
