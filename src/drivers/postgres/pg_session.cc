#include "drivers/postgres/pg_session.h"

#include <fmt/format.h>

namespace ferry::postgres {

Status PgSession::Begin() {
  if (InTransaction()) {
    return Status(StatusCode::kFailedPrecondition,
                  "Begin() inside a transaction: PostgreSQL does not nest transactions");
  }
  std::string tag;
  return RunControl("BEGIN", &tag);
}

Status PgSession::Commit() {
  if (!InTransaction()) {
    FERRY_RETURN_IF_ERROR(CheckReady("COMMIT"));
    return Status(StatusCode::kFailedPrecondition, "Commit() without a transaction in progress");
  }
  std::string tag;
  FERRY_RETURN_IF_ERROR(RunControl("COMMIT", &tag));
  if (tag == "ROLLBACK") {
    return Status(StatusCode::kAborted,
                  "the transaction was rolled back at COMMIT because a statement in it failed")
        .With("statement", "COMMIT");
  }
  return Status();
}

Status PgSession::Rollback() {
  if (!InTransaction()) return CheckReady("ROLLBACK");
  std::string tag;
  return RunControl("ROLLBACK", &tag);
}

Result<bool> PgSession::TryLock(int64_t key) {
  FERRY_ASSIGN_OR_RETURN(QueryResult result,
                         Query("SELECT pg_try_advisory_lock($1::bigint)", {std::to_string(key)}));
  return !result.empty() && result.Text(0, 0) == "t";
}

Status PgSession::Unlock(int64_t key) {
  FERRY_ASSIGN_OR_RETURN(QueryResult result,
                         Query("SELECT pg_advisory_unlock($1::bigint)", {std::to_string(key)}));
  if (result.empty() || result.Text(0, 0) != "t") {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("advisory lock {} is not held by this session", key));
  }
  return Status();
}

}  // namespace ferry::postgres
