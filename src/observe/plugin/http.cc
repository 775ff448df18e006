// HTTP for the plugin: cpp-httplib's server (every request goes to one
// handler; routing and authentication are ferry's, serve/server.cc) and a
// client PUT (the Pushgateway).
#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "observe/plugin/plugin_internal.h"

namespace ferry::plugin {

namespace {

struct Server {
  httplib::Server http;
  HttpHandler handler;
};

// SO_REUSEADDR only: a restart may bind at once, but a port another
// process listens on is refused (httplib's default SO_REUSEPORT would let
// two servers share it silently).
void ListenSocketOptions(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

}  // namespace

std::string HttpPut(const std::string& host_port, const std::string& path, const std::string& body,
                    const std::string& content_type) {
  httplib::Client client("http://" + host_port);
  client.set_connection_timeout(std::chrono::seconds(3));
  client.set_read_timeout(std::chrono::seconds(5));
  client.set_write_timeout(std::chrono::seconds(5));
  auto res = client.Put(path, body, content_type);
  if (!res) return "unreachable: " + httplib::to_string(res.error());
  if (res->status < 200 || res->status >= 300) {
    return "answered HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 200);
  }
  return "";
}

std::string HttpGet(const std::string& host_port, const std::string& path,
                    const std::vector<std::pair<std::string, std::string>>& params,
                    std::string* body) {
  httplib::Client client("http://" + host_port);
  client.set_connection_timeout(std::chrono::seconds(3));
  client.set_read_timeout(std::chrono::seconds(10));
  httplib::Params query;
  for (const auto& [k, v] : params) query.emplace(k, v);
  auto res = client.Get(path, query, httplib::Headers{});
  if (!res) return "unreachable: " + httplib::to_string(res.error());
  if (res->status < 200 || res->status >= 300) {
    return "answered HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 300);
  }
  *body = res->body;
  return "";
}

void* ServerNew(HttpHandler handler) {
  auto* s = new Server();
  s->handler = std::move(handler);
  s->http.set_socket_options(ListenSocketOptions);
  s->http.set_pre_routing_handler([s](const httplib::Request& req, httplib::Response& res) {
    HttpRequest in;
    in.method = req.method;
    in.path = req.path;
    for (const auto& [k, v] : req.params) in.params.emplace(k, v);
    in.authorization = req.get_header_value("Authorization");
    HttpReply out;
    try {
      out = s->handler(in);
    } catch (const std::exception&) {
      out = HttpReply{500, "application/json", R"({"error":"internal error"})", {}};
    }
    res.status = out.status;
    for (const auto& [k, v] : out.headers) res.set_header(k, v);
    res.set_content(out.body, out.content_type);
    return httplib::Server::HandlerResponse::Handled;
  });
  return s;
}

int ServerBind(void* server, const std::string& host, int port, std::string* error) {
  auto* s = static_cast<Server*>(server);
  errno = 0;
  int bound =
      port == 0 ? s->http.bind_to_any_port(host) : (s->http.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    int err = errno;
    *error = err == EADDRINUSE ? "address already in use"
                               : (err != 0 ? std::strerror(err) : "cannot bind");
    return -1;
  }
  return bound;
}

bool ServerRun(void* server) { return static_cast<Server*>(server)->http.listen_after_bind(); }
void ServerStop(void* server) { static_cast<Server*>(server)->http.stop(); }
void ServerDelete(void* server) { delete static_cast<Server*>(server); }

}  // namespace ferry::plugin
