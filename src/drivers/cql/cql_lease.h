// A lease in a CQL table, for locks on a cluster without transactions or
// session locks (the CQL migration lock; any single-holder job).
//
// Table (created by Ensure): <keyspace>.<table> (name text PRIMARY KEY,
// owner text, acquired_at timestamp, renewed_at timestamp). Every write is a
// lightweight transaction (Paxos, serial consistency from the connection or
// LOCAL_SERIAL):
//   - TryAcquire: INSERT ... IF NOT EXISTS USING TTL: exactly one of several
//     concurrent callers wins; the row vanishes by itself `ttl` after the last
//     renewal, so a killed holder blocks others at most one TTL.
//   - Renew: UPDATE ... USING TTL ... IF owner = me (every column rewritten,
//     so no cell outlives the lease).
//   - Release: DELETE ... IF owner = me.
// Clocks: only the server's TTL counts; ferry's clock is never compared.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "drivers/cql/cql_connection.h"
#include "drivers/lease.h"
#include "ferry/status.h"

namespace ferry::cql {

using LeaseHolder = ferry::LeaseHolder;  // drivers/lease.h

class Lease final : public TableLease {
 public:
  // `conn` must outlive the lease; `table` is unquoted, "table" (in the
  // connection's keyspace) or "keyspace.table".
  Lease(CqlConnection* conn, std::string table, std::string name, std::string owner,
        std::chrono::seconds ttl);

  // Creates the lease table when missing (and waits for schema agreement).
  Status Ensure() override;
  // True when this owner now holds the lease; false (and `holder` set when
  // given) while another owner does.
  Result<bool> TryAcquire(std::optional<LeaseHolder>* holder = nullptr) override;
  // Extends the lease by the TTL; kFailedPrecondition when it was lost
  // (expired and taken by another owner).
  Status Renew() override;
  // Gives the lease up; a lease no longer ours is not an error.
  Status Release() override;
  // The current holder, or nullopt when free.
  Result<std::optional<LeaseHolder>> Holder() override;

 private:
  ExecOptions Serial() const;
  CqlConnection* conn_;
  std::string table_;
  std::string name_;
  std::string owner_;
  std::chrono::seconds ttl_;
  std::string acquired_at_;
};

}  // namespace ferry::cql
