// The PostgreSQL driver: a Connection over one libpq session.
//
// The URL text (postgres://... or libpq key=value) goes to libpq unchanged,
// so libpq's environment (PGHOST, PGPASSWORD, ...), service files and
// ~/.pgpass keep working. Errors carry SQLSTATE, statement excerpt, position,
// detail and hint (see pg_error.h); a lost session is kUnavailable.
//
// Session behaviour worth knowing:
//   - Exec uses the simple protocol: a script of several statements runs as
//     one implicit transaction unless it contains its own BEGIN/COMMIT.
//   - Query and Stream use the extended protocol: one statement, $1.. params.
//   - Stream reads in single-row mode. When the callback stops it outside a
//     transaction block the query is cancelled; inside one, the remaining
//     rows are read and dropped so the transaction stays usable.
//   - TryLock/Unlock are session-level advisory locks, re-entrant within the
//     session (each TryLock needs its Unlock); the server frees them when the
//     session ends.
//   - While a CopyWriter from CopyIn() is open, every other call returns
//     kFailedPrecondition. The writer must not outlive its connection; if the
//     connection goes first, the writer's calls return kFailedPrecondition.
//   - Server NOTICEs go to the notice handler (Connection::SetNoticeHandler),
//     or to ferry's log at debug level when there is none.
#pragma once

#include <memory>

#include "core/url.h"
#include "drivers/connection.h"
#include "drivers/postgres/pg_error.h"
#include "ferry/status.h"

namespace ferry::postgres {

// Connects to `url` (scheme "postgres"). `options.connect_timeout` applies
// unless the URL, PGCONNECT_TIMEOUT or a service sets one;
// `options.application_name` unless the URL or PGAPPNAME sets one.
// Failures name the redacted URL and say what to try: kUnavailable
// (refused, unreachable, timeout), kPermissionDenied (authentication, role),
// kNotFound (database), kInvalidArgument (malformed connection string).
Result<std::unique_ptr<Connection>> Open(const Url& url, const ConnectOptions& options);

// The libpq session under Open(), with the same keywords, secrets and
// errors; `replication` ("database" for a logical replication session,
// pg_replication.h) is added when set. LoadLibpq() must have succeeded.
Result<PgConn> ConnectLibpq(const Url& url, const ConnectOptions& options,
                           const char* replication = nullptr);

}  // namespace ferry::postgres
