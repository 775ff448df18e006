// A PostgreSQL replication session (libpq with replication=database): the
// walsender's commands (CREATE_REPLICATION_SLOT, IDENTIFY_SYSTEM) and the
// CopyBoth stream that START_REPLICATION opens.
//
// Used by one thread at a time. The session is separate from Connection
// because a walsender accepts only its own command set and, once streaming,
// nothing but CopyData both ways. Messages name only the redacted URL.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/url.h"
#include "drivers/connection.h"
#include "ferry/status.h"

namespace ferry::postgres {

class ReplicationSession {
 public:
  virtual ~ReplicationSession() = default;

  // Runs one replication command (simple query protocol) and returns its
  // rows as text. Not allowed once Start() succeeded.
  virtual Result<QueryResult> Command(std::string_view command) = 0;

  // Sends START_REPLICATION (`command`) and enters CopyBoth mode.
  virtual Status Start(std::string_view command) = 0;

  // Waits up to `timeout` for the next CopyData message from the server.
  // nullopt when none arrived in time. kUnavailable when the session ended
  // (the server's error message when it sent one).
  virtual Result<std::optional<std::string>> Read(std::chrono::milliseconds timeout) = 0;

  // Sends one CopyData message (a Standby Status Update) and flushes it.
  virtual Status Send(std::string_view message) = 0;

  virtual const std::string& redacted_url() const = 0;
};

// Opens a replication=database session to `url` (scheme "postgres").
// Failures as postgres::Open's; a role without REPLICATION is
// kPermissionDenied.
Result<std::unique_ptr<ReplicationSession>> OpenReplication(const Url& url,
                                                            const ConnectOptions& options);

}  // namespace ferry::postgres
