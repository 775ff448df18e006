// `ferry serve`: a read-only HTTP service over one or more databases.
//
//   GET /             the dashboard (web/ assets compiled in)
//   GET /healthz      liveness: 200 while the process serves
//   GET /readyz       readiness: 200 when every database is ready, else 503;
//                     the body names each failed check and why
//   GET /metrics      Prometheus text
//   GET /api/status, /api/history, /api/jobs, /api/lint   JSON
// docs/openapi.yaml describes every answer.
//
// Security: it refuses to listen beyond loopback without a token; with a
// token every path but /healthz needs `Authorization: Bearer <token>`
// (401 otherwise). Nothing is written to any database. A database that is
// down makes answers report it, never the service stop.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "ferry/status.h"
#include "observe/plugin.h"
#include "serve/state.h"

namespace ferry::serve {

struct ServeOptions {
  std::string listen = "127.0.0.1:9187";  // host:port; port 0 picks a free one
  std::string token;                      // "" = no authentication (loopback only)
  StateOptions state;
};

// Splits "host:port" ("[::1]:9187" for IPv6). kInvalidArgument when malformed.
Status ParseListen(const std::string& listen, std::string* host, int* port);
// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopback(const std::string& host);

// Answers one request: authentication, the read-only rule and routing
// (the HTTP transport is the observability plugin's).
HttpReply Answer(const ServeOptions& options, const HttpRequest& request);

class Server {
 public:
  // Checks the options and binds the port: kInvalidArgument (bad --listen,
  // non-loopback without a token, no database), kUnavailable (port in use,
  // with the address in the message).
  static Result<std::unique_ptr<Server>> Bind(ServeOptions options);
  ~Server();

  int port() const { return port_; }
  std::string address() const;
  // Serves until Stop() (from another thread or a signal handler's thread).
  Status Run();
  void Stop();

 private:
  Server(ServeOptions options, const ObservePlugin* plugin);

  ServeOptions options_;
  const ObservePlugin* plugin_;
  void* http_ = nullptr;
  std::string host_;
  int port_ = 0;
};

}  // namespace ferry::serve
