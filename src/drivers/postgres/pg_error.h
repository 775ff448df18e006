// PostgreSQL errors as ferry Statuses, and RAII owners for libpq handles.
//
// Server errors are classified by SQLSTATE; connection failures, which carry
// no SQLSTATE, by libpq's message. Every message is run through
// RedactSecrets() and names only the redacted URL.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/url.h"
#include "drivers/postgres/libpq_api.h"
#include "ferry/status.h"

namespace ferry::postgres {

// Deleters calling through the loaded libpq (libpq_api.h). A non-null handle
// exists only after LoadLibpq() succeeded.
struct PgConnDeleter {
  void operator()(PGconn* conn) const { Pq().PQfinish(conn); }
};
struct PgResultDeleter {
  void operator()(PGresult* result) const { Pq().PQclear(result); }
};

using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

inline PgConn MakePgConn(PGconn* conn) { return PgConn(conn); }
inline PgResult MakePgResult(PGresult* result) { return PgResult(result); }

// Maps a five-character SQLSTATE to the code that tells the caller what to do.
// `message` (the server's primary message) separates a statement or lock
// timeout (57014 -> kDeadlineExceeded) from a user cancel (kCancelled).
StatusCode CodeForSqlState(std::string_view sqlstate, std::string_view message = "");

// The Status for a failed result: the server's primary message, with context
// "sqlstate", "statement" (excerpt), "position" (1-based character offset),
// "line" (1-based line of that position in `statement`), "detail", "hint",
// "where". A null `result` (out of memory) yields kInternal.
Status ErrorFromResult(const PGresult* result, std::string_view statement);

// The same Status built from error fields given by their protocol type byte
// ('C' sqlstate, 'M' message, 'D' detail, 'H' hint, 'P' position, 'W' where,
// 's' schema, 't' table, 'c' column, 'n' constraint); `field` returns nullopt
// for a field the error lacks. ErrorFromResult and the light client
// (pg_light.h) both build their Statuses here.
using ErrorFieldGetter = std::function<std::optional<std::string_view>(char code)>;
Status ErrorFromFields(const ErrorFieldGetter& field, std::string_view statement);

// What a failed connection attempt was aimed at, for the message.
struct ConnectTarget {
  std::string redacted_url;
  std::string host;  // as libpq resolved it ("" when unknown)
  std::string port;
  std::string database;
  std::string user;
};

// Classifies a libpq connection failure message (no SQLSTATE available):
// authentication -> kPermissionDenied, missing database -> kNotFound,
// refused/unreachable/timeout -> kUnavailable, bad connection string ->
// kInvalidArgument, anything else kUnavailable.
StatusCode CodeForConnectMessage(std::string_view libpq_message);

// "connecting to <redacted url>: <libpq message>; <what to try>".
// The libpq message is redacted and folded onto one line.
Status ConnectError(std::string_view libpq_message, const ConnectTarget& target);

// libpq messages end with a newline and continue lines with "\n\t"; this
// folds them onto one line, strips "ERROR:  "/"FATAL:  " and redacts secrets.
std::string CleanMessage(std::string_view libpq_message);

}  // namespace ferry::postgres
