// One CQL native-protocol connection to one node: TCP connect, OPTIONS,
// STARTUP (with LZ4 when the server offers it), SASL PLAIN authentication,
// and requests multiplexed by stream id.
//
// Many requests may be in flight at once: Send() returns the stream id at
// once, Wait(stream) reads frames until that stream's response arrives and
// keeps any other responses it reads on the way for their own Wait(). Used
// by one thread at a time.
//
// Errors: kUnavailable (refused, unreachable, timed out, connection lost, a
// server speaking another protocol version), kPermissionDenied (bad
// credentials, or a server that wants a login and the URL has none), and the
// mapped server ERROR (cql_error.h). Messages never hold the password.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/cql/cql_wire.h"
#include "ferry/status.h"

namespace ferry::cql {

struct SessionOptions {
  std::string host;
  int port = 9042;
  std::string user;
  std::string password;  // never logged
  bool compression = true;  // LZ4 when the server offers it
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{60000};
};

struct Response {
  FrameHeader header;
  std::string body;                   // decompressed, tracing/warnings/payload removed
  std::vector<std::string> warnings;  // server warnings (flag 0x08)
};

class Session {
 public:
  static Result<std::unique_ptr<Session>> Connect(const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Queues one request frame; returns its stream id.
  Result<int16_t> Send(Opcode opcode, std::string_view body);
  // The response to `stream`. An ERROR response is returned as its mapped
  // Status (cql_error.h).
  Result<Response> Wait(int16_t stream);
  // Send + Wait.
  Result<Response> Request(Opcode opcode, std::string_view body);

  // "host:port".
  const std::string& endpoint() const { return endpoint_; }
  bool compressed() const { return compressed_; }
  // The SUPPORTED options of the server (CQL_VERSION, COMPRESSION, ...).
  const std::map<std::string, std::vector<std::string>>& supported() const { return supported_; }
  // Number of requests sent and not yet waited for.
  size_t in_flight() const { return in_flight_.size(); }
  bool broken() const { return fd_ < 0; }

 private:
  Session() = default;
  Status Handshake(const SessionOptions& options);
  Status Authenticate(const SessionOptions& options, std::string_view authenticator);
  Status WriteAll(std::string_view data);
  Status ReadExact(size_t n, std::string* out);
  Result<Response> ReadFrame();
  Status Lost(std::string_view what);

  int fd_ = -1;
  std::string endpoint_;
  bool compressed_ = false;
  std::chrono::milliseconds request_timeout_{60000};
  int16_t next_stream_ = 1;
  std::map<int16_t, bool> in_flight_;
  std::map<int16_t, Response> arrived_;
  std::map<std::string, std::vector<std::string>> supported_;
};

}  // namespace ferry::cql
