// The light PostgreSQL client: a small built-in implementation of the
// frontend/backend protocol (v3.0) for short sessions (`ferry status`, ...),
// so that they need not load libpq and its ~25 shared libraries.
//
// It speaks only the plain, common case and defers everything else to libpq:
//   - URL form (postgres://), one host: a name/IP over TCP, or an absolute
//     path = the directory of a Unix socket;
//   - no TLS: when the server accepts TLS (sslmode=prefer) the attempt ends
//     with kUnimplemented and the caller opens the session with libpq;
//   - trust, cleartext password, md5 and SCRAM-SHA-256 (no channel binding)
//     with a password from the URL or PGPASSWORD; a missing password
//     (~/.pgpass), GSS/Kerberos/SSPI, SCRAM-SHA-256-PLUS or a non-ASCII
//     SCRAM password (SASLprep) go to libpq;
//   - no COPY (CopyOut/CopyIn return kUnimplemented).
// LightIneligible() says beforehand what in the URL or environment needs
// libpq; OpenLight() returns kUnimplemented for what only the server reveals.
// docs/dependencies.md ("The light PostgreSQL client") has the rationale.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/url.h"
#include "drivers/connection.h"
#include "ferry/status.h"

namespace ferry::postgres {

using GetenvFunction = std::function<const char*(const char*)>;

// Why the light client cannot serve `url` without trying (nullopt: it may
// try). Reads the environment only through `getenv` (PGHOST, PGSERVICE, ...),
// plus whether a Kerberos credential cache exists in /tmp.
std::optional<std::string> LightIneligible(const Url& url, const GetenvFunction& getenv);

// Connects with the light client. kUnimplemented: this server or URL needs
// libpq (TLS offered, an authentication method it does not speak, no
// password given, ...): the caller falls back to libpq. Any other error is a
// real failure (refused, timeout, authentication failed, database missing)
// shaped like ConnectError(). Reads the process environment.
Result<std::unique_ptr<Connection>> OpenLight(const Url& url, const ConnectOptions& options);

// ---- Pieces exposed for unit tests -----------------------------------------
namespace light_internal {

enum class SslMode { kDisable, kAllow, kPrefer };

// Where and as whom to connect, after the URL, the environment and defaults.
struct Target {
  std::string host;  // name or IP; or an absolute directory for a Unix socket
  int port = 5432;
  std::string user;
  std::optional<std::string> password;  // never logged
  std::string database;
  std::string application_name;     // "" = none sent
  int connect_timeout_seconds = 0;  // 0 = wait as long as it takes
  SslMode ssl_mode = SslMode::kPrefer;

  bool unix_socket() const { return !host.empty() && host.front() == '/'; }
  // "<dir>/.s.PGSQL.<port>" for a Unix socket.
  std::string SocketPath() const;
};

// The Target for `url`, or kUnimplemented whose message says what needs
// libpq. `file_exists` answers for the Kerberos credential cache check;
// `os_user` is the default user name ("" = unknown).
Result<Target> ResolveTarget(const Url& url, const GetenvFunction& getenv,
                             const std::function<bool(const std::string&)>& file_exists,
                             const std::string& os_user, const ConnectOptions& options);

// The md5 password message: "md5" + md5hex(md5hex(password + user) + salt).
std::string Md5Response(std::string_view user, std::string_view password, std::string_view salt);

// Standard base64 (with padding); Base64Decode returns nullopt on bad input.
std::string Base64Encode(std::string_view data);
std::optional<std::string> Base64Decode(std::string_view text);

// The client side of SCRAM-SHA-256 without channel binding (RFC 5802/7677).
class ScramSha256 {
 public:
  // `user` goes into the client-first message (PostgreSQL sends "" and takes
  // the user from the start-up packet); `client_nonce` must be printable.
  ScramSha256(std::string password, std::string user, std::string client_nonce);

  // "n,,n=<user>,r=<nonce>"
  std::string ClientFirstMessage() const;
  // The client-final message for the server-first message, or an error
  // (malformed message, nonce not extending ours, too few iterations).
  Result<std::string> ClientFinalMessage(std::string_view server_first);
  // Checks the server-final message "v=<signature>": the server proves it
  // knows the password. kPermissionDenied when it does not match.
  Status VerifyServerFinal(std::string_view server_final) const;

 private:
  std::string password_;
  std::string user_;
  std::string client_nonce_;
  std::array<uint8_t, 32> server_signature_{};
  bool have_signature_ = false;
};

// Splits a DataRow message body into fields (nullopt for NULL); the views
// point into `body`. kInternal on a malformed body.
Status ParseDataRow(std::string_view body, std::vector<std::optional<std::string_view>>* fields);

// The rows count in a CommandComplete tag ("INSERT 0 5" -> 5, "UPDATE 2" ->
// 2), or `fallback` when the command reports none ("CREATE TABLE").
int64_t RowsFromTag(std::string_view tag, int64_t fallback);

}  // namespace light_internal
}  // namespace ferry::postgres
