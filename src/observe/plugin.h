// The observability plugin: everything that needs prometheus-cpp or
// cpp-httplib, in a module (ferry-observe.so) loaded on first use, the way
// libpq is (drivers/postgres/libpq_api.h). Those libraries and their chain
// (libstdc++.so, OpenSSL, zlib, brotli) would otherwise be loaded by every
// `ferry` start-up, which needs only libc and libm (docs/dependencies.md).
//
// The module sees only this header and observe/event.h (header-only types
// and inline functions): it calls nothing in ferry_lib, and ferry calls it
// only through ObservePlugin. Strings cross the boundary; errors come back
// as text, which the caller turns into a Status.
//
// How to add a function: a member here (ABI kVersion + 1), its definition
// in src/observe/plugin/plugin.cc, its caller in ferry_lib.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ferry/status.h"
#include "observe/event.h"

namespace ferry {

struct HttpRequest {
  std::string method;                         // "GET", "POST" ...
  std::string path;                           // without the query
  std::map<std::string, std::string> params;  // query parameters
  std::string authorization;                  // the Authorization header
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Answers every request (routing, authentication: the caller's).
using HttpHandler = std::function<HttpReply(const HttpRequest&)>;

struct ObservePlugin {
  static constexpr int kVersion = 2;
  int version = kVersion;

  // Metrics registry fed with events (src/observe/plugin/metrics_registry.cc).
  void* (*metrics_new)();
  void (*metrics_delete)(void* metrics);
  void (*metrics_observe)(void* metrics, const Event& event);
  std::string (*metrics_text)(void* metrics);

  // /metrics of `ferry serve`: Prometheus text of the gauges in the bodies
  // of /api/status and /api/jobs (serve/state.h).
  std::string (*state_metrics_text)(const std::string& status_json, const std::string& jobs_json);

  // HTTP PUT of `body` to http://host_port + path; "" on success, else why.
  std::string (*http_put)(const std::string& host_port, const std::string& path,
                          const std::string& body, const std::string& content_type);

  // An HTTP server calling `handler` for every request. bind: `port` 0
  // picks a free one; returns the port, or -1 with *error. run: serves
  // until stop (from any thread); false when it could not serve.
  void* (*server_new)(HttpHandler handler);
  int (*server_bind)(void* server, const std::string& host, int port, std::string* error);
  bool (*server_run)(void* server);
  void (*server_stop)(void* server);
  void (*server_delete)(void* server);

  // HTTP GET of http://host_port + path with query `params` (encoded
  // here); "" on a 2xx answer with *body set, else why (unreachable, HTTP
  // status and the start of the body). Version 2.
  std::string (*http_get)(const std::string& host_port, const std::string& path,
                          const std::vector<std::pair<std::string, std::string>>& params,
                          std::string* body);
};

// Loads ferry-observe.so once: $FERRY_OBSERVE_PLUGIN, else next to the
// running program, else ../lib/ferry/ beside it. kUnavailable naming the
// places tried when it is missing or of another version.
Result<const ObservePlugin*> LoadObservePlugin();

}  // namespace ferry

// The module's one exported symbol.
extern "C" const ferry::ObservePlugin* ferry_observe_plugin();
