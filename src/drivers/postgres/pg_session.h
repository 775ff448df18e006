// What both PostgreSQL clients do alike on top of their own round trips:
// libpq (pg_connection.cc) and the hand-written wire client (pg_light.cc)
// derive from PgSession for transaction control with ferry's checks and for
// session-bound advisory locks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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
  // The kInvalidArgument for the first item of `items` that is a COPY ... FROM
  // STDIN, or ok. A batch is sent whole before any reply is read, so such an
  // item would leave the server waiting for COPY data while the next items'
  // messages arrive, and it ends the session ("protocol synchronization was
  // lost"): refused before anything is sent. (COPY TO STDOUT is refused from
  // the replies, where it does no harm.)
  static Status RefuseCopyFromStdin(const std::vector<BatchItem>& items);

  // Runs one transaction-control statement; `tag` gets the command tag the
  // server answered with.
  virtual Status RunControl(std::string_view sql, std::string* tag) = 0;
  // Why the session cannot take `statement` now (lost, inside a COPY), or ok.
  virtual Status CheckReady(std::string_view statement) const = 0;
};

}  // namespace ferry::postgres
