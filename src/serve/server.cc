#include "serve/server.h"

#include <fmt/format.h>

#include <algorithm>

#include "serve/web_assets.h"

namespace ferry::serve {

namespace {

using nlohmann::json;

HttpReply JsonReply(const json& body, int status = 200) {
  return HttpReply{status, "application/json", body.dump(), {}};
}

// Compares without an early exit, so timing does not reveal the token.
bool SameToken(const std::string& given, const std::string& want) {
  unsigned char diff = given.size() == want.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i] ^ want[i % std::max<size_t>(want.size(), 1)]);
  }
  return diff == 0;
}

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

HttpReply Route(const ServeOptions& options, const HttpRequest& req) {
  const StateOptions& st = options.state;
  const std::string& path = req.path;
  if (path == "/healthz") return JsonReply({{"status", "ok"}});
  if (path == "/readyz") {
    json body = ReadyJson(st);
    return JsonReply(body, body["ready"].get<bool>() ? 200 : 503);
  }
  if (path == "/metrics") {
    auto text = MetricsText(st);
    if (!text.ok()) return JsonReply({{"error", text.status().message()}}, 500);
    return HttpReply{200, "text/plain; version=0.0.4", *text, {}};
  }
  if (path == "/api/status") return JsonReply(StatusJson(st));
  if (path == "/api/history") {
    int limit = 50;
    if (auto it = req.params.find("limit"); it != req.params.end()) {
      if (!AllDigits(it->second) || it->second.size() > 6) {
        return JsonReply({{"error", "limit must be a number"}}, 400);
      }
      limit = std::stoi(it->second);
    }
    return JsonReply(HistoryJson(st, limit));
  }
  if (path == "/api/jobs") return JsonReply(JobsJson(st));
  if (path == "/api/lint") return JsonReply(LintJson(st));
  for (const WebAsset& asset : WebAssets()) {
    if (path == asset.path || (path == "/" && asset.path == "/index.html")) {
      return HttpReply{200, std::string(asset.content_type), std::string(asset.data), {}};
    }
  }
  return JsonReply({{"error", "no such path: " + path}}, 404);
}

}  // namespace

Status ParseListen(const std::string& listen, std::string* host, int* port) {
  size_t colon = listen.rfind(':');
  std::string h = colon == std::string::npos ? "" : listen.substr(0, colon);
  const std::string p = colon == std::string::npos ? "" : listen.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty() || !AllDigits(p) || p.size() > 5 || std::stoi(p) > 65535) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--listen {:?}: give host:port, e.g. 127.0.0.1:9187", listen));
  }
  *host = h;
  *port = std::stoi(p);
  return Status();
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

HttpReply Answer(const ServeOptions& options, const HttpRequest& req) {
  HttpReply reply;
  if (req.method != "GET" && req.method != "HEAD") {
    reply = JsonReply({{"error", "read-only service: only GET"}}, 405);
  } else if (!options.token.empty() && req.path != "/healthz" &&
             !(req.authorization.starts_with("Bearer ") &&
               SameToken(req.authorization.substr(7), options.token))) {
    if (req.path == "/readyz") {
      // A kubelet's probe cannot send a secret header: it gets the verdict
      // (200/503) and nothing else; which check failed needs the token.
      const bool ready = ReadyJson(options.state)["ready"].get<bool>();
      reply = JsonReply({{"ready", ready}}, ready ? 200 : 503);
    } else {
      reply = JsonReply({{"error", "missing or wrong bearer token"}}, 401);
      reply.headers.emplace_back("WWW-Authenticate", "Bearer");
    }
  } else {
    reply = Route(options, req);
  }
  reply.headers.emplace_back("Cache-Control", "no-store");
  reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return reply;
}

Server::Server(ServeOptions options, const ObservePlugin* plugin)
    : options_(std::move(options)), plugin_(plugin) {}

Server::~Server() {
  if (http_ != nullptr) plugin_->server_delete(http_);
}

Result<std::unique_ptr<Server>> Server::Bind(ServeOptions options) {
  std::string host;
  int port = 0;
  FERRY_RETURN_IF_ERROR(ParseListen(options.listen, &host, &port));
  if (options.state.databases.empty()) {
    return Status(StatusCode::kInvalidArgument, "ferry serve needs at least one --database");
  }
  if (!IsLoopback(host) && options.token.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("refusing to listen on {} without --token: only loopback "
                              "addresses may serve without authentication",
                              options.listen))
        .With("hint", "pass --token (or FERRY_SERVE_TOKEN) or listen on 127.0.0.1");
  }
  FERRY_ASSIGN_OR_RETURN(const ObservePlugin* plugin, LoadObservePlugin());
  std::unique_ptr<Server> s(new Server(std::move(options), plugin));
  s->host_ = host;
  const ServeOptions* opts = &s->options_;
  s->http_ = plugin->server_new([opts](const HttpRequest& req) { return Answer(*opts, req); });
  std::string error;
  int bound = plugin->server_bind(s->http_, host, port, &error);
  if (bound < 0) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("cannot listen on {}: {}", s->options_.listen, error))
        .With("hint", "another process uses the port: pick another with --listen");
  }
  s->port_ = bound;
  return s;
}

std::string Server::address() const {
  return host_.find(':') != std::string::npos ? fmt::format("[{}]:{}", host_, port_)
                                              : fmt::format("{}:{}", host_, port_);
}

Status Server::Run() {
  if (!plugin_->server_run(http_)) {
    return Status(StatusCode::kUnavailable, fmt::format("serving on {} stopped", address()));
  }
  return Status();
}

void Server::Stop() { plugin_->server_stop(http_); }

}  // namespace ferry::serve
