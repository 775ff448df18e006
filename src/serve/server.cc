#include "serve/server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "serve/web_assets.h"

namespace ferry::serve {

namespace {

using nlohmann::json;

void SendJson(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

// Compares without an early exit, so timing does not reveal the token.
bool SameToken(const std::string& given, const std::string& want) {
  unsigned char diff = given.size() == want.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i] ^ want[i % std::max<size_t>(want.size(), 1)]);
  }
  return diff == 0;
}

// SO_REUSEADDR only: a restart may bind at once, but a port another
// process listens on is refused (httplib's default SO_REUSEPORT would let
// two servers share it silently).
void ListenSocketOptions(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

}  // namespace

Status ParseListen(const std::string& listen, std::string* host, int* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--listen {:?}: give host:port, e.g. 127.0.0.1:9187", listen));
  }
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const std::string p = listen.substr(colon + 1);
  if (h.empty() || !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      p.size() > 5 || std::stoi(p) > 65535) {
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

Server::Server(ServeOptions options)
    : options_(std::move(options)), http_(std::make_unique<httplib::Server>()) {}

Server::~Server() = default;

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
  std::unique_ptr<Server> s(new Server(std::move(options)));
  s->host_ = host;
  s->http_->set_socket_options(ListenSocketOptions);
  s->Routes();
  if (port == 0) {
    port = s->http_->bind_to_any_port(host);
    if (port < 0) port = 0;
  } else if (!s->http_->bind_to_port(host, port)) {
    port = 0;
  }
  if (port == 0) {
    int err = errno;
    return Status(StatusCode::kUnavailable,
                  fmt::format("cannot listen on {}: {}", s->options_.listen,
                              err == EADDRINUSE ? "address already in use" : std::strerror(err)))
        .With("hint", "another process uses the port: pick another with --listen");
  }
  s->port_ = port;
  return s;
}

std::string Server::address() const {
  return host_.find(':') != std::string::npos ? fmt::format("[{}]:{}", host_, port_)
                                              : fmt::format("{}:{}", host_, port_);
}

Status Server::Run() {
  if (!http_->listen_after_bind()) {
    return Status(StatusCode::kUnavailable, fmt::format("serving on {} stopped", address()));
  }
  return Status();
}

void Server::Stop() { http_->stop(); }

void Server::Routes() {
  http_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Content-Type-Options", "nosniff");
    if (req.method != "GET" && req.method != "HEAD") {
      SendJson(res, {{"error", "read-only service: only GET"}}, 405);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (options_.token.empty() || req.path == "/healthz") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string auth = req.get_header_value("Authorization");
    if (!auth.starts_with("Bearer ") || !SameToken(auth.substr(7), options_.token)) {
      res.set_header("WWW-Authenticate", "Bearer");
      SendJson(res, {{"error", "missing or wrong bearer token"}}, 401);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_->set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                  std::exception_ptr) {
    SendJson(res, {{"error", "internal error"}}, 500);
  });
  const StateOptions& st = options_.state;
  http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    SendJson(res, {{"status", "ok"}});
  });
  http_->Get("/readyz", [&st](const httplib::Request&, httplib::Response& res) {
    json body = ReadyJson(st);
    SendJson(res, body, body["ready"].get<bool>() ? 200 : 503);
  });
  http_->Get("/metrics", [&st](const httplib::Request&, httplib::Response& res) {
    res.set_content(MetricsText(st), "text/plain; version=0.0.4");
  });
  http_->Get("/api/status", [&st](const httplib::Request&, httplib::Response& res) {
    SendJson(res, StatusJson(st));
  });
  http_->Get("/api/history", [&st](const httplib::Request& req, httplib::Response& res) {
    int limit = 50;
    if (req.has_param("limit")) {
      const std::string v = req.get_param_value("limit");
      if (v.empty() || v.size() > 6 ||
          !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        SendJson(res, {{"error", "limit must be a number"}}, 400);
        return;
      }
      limit = std::stoi(v);
    }
    SendJson(res, HistoryJson(st, limit));
  });
  http_->Get("/api/jobs", [&st](const httplib::Request&, httplib::Response& res) {
    SendJson(res, JobsJson(st));
  });
  http_->Get("/api/lint", [&st](const httplib::Request&, httplib::Response& res) {
    SendJson(res, LintJson(st));
  });
  for (const WebAsset& asset : WebAssets()) {
    const std::string path = asset.path == "/index.html" ? "/" : std::string(asset.path);
    http_->Get(path, [&asset](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(asset.data), std::string(asset.content_type));
    });
  }
}

}  // namespace ferry::serve
