#include "drivers/cql/cql_session.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "drivers/cql/cql_error.h"

namespace ferry::cql {
namespace {

Status Unreachable(const std::string& endpoint, std::string_view why) {
  return Status(StatusCode::kUnavailable,
                fmt::format("cannot connect to CQL node {}: {}; check the host and port in the "
                            "URL and that the node is up",
                            endpoint, why))
      .With("node", endpoint);
}

// Non-blocking connect with a timeout; returns the connected socket.
Result<int> ConnectTcp(const std::string& host, int port, std::chrono::milliseconds timeout,
                       const std::string& endpoint) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
  if (rc != 0) return Unreachable(endpoint, gai_strerror(rc));
  std::string last = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = std::strerror(errno);
      close(fd);
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int n = poll(&p, 1, static_cast<int>(timeout.count()));
    int err = 0;
    socklen_t len = sizeof(err);
    if (n == 1) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (n != 1 || err != 0) {
      last = n == 0 ? fmt::format("timed out after {} ms", timeout.count()) : std::strerror(err);
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    freeaddrinfo(res);
    return fd;
  }
  freeaddrinfo(res);
  return Unreachable(endpoint, last);
}

// Removes what flags put in front of the body: tracing id, warnings, custom payload.
Status StripPrefixes(Response* r) {
  WireReader reader(r->body);
  if (r->header.flags & kFlagTracing) FERRY_RETURN_IF_ERROR(reader.Raw(16).status());
  if (r->header.flags & kFlagWarning) {
    FERRY_ASSIGN_OR_RETURN(r->warnings, reader.StringList());
  }
  if (r->header.flags & kFlagCustomPayload) {
    FERRY_ASSIGN_OR_RETURN(uint16_t n, reader.Short());
    for (uint16_t i = 0; i < n; ++i) {
      FERRY_RETURN_IF_ERROR(reader.String().status());
      FERRY_RETURN_IF_ERROR(reader.Bytes().status());
    }
  }
  r->body.erase(0, r->body.size() - reader.remaining());
  return Status();
}

}  // namespace

Session::~Session() {
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<Session>> Session::Connect(const SessionOptions& options) {
  std::unique_ptr<Session> s(new Session());
  s->endpoint_ = options.host.find(':') != std::string::npos
                     ? fmt::format("[{}]:{}", options.host, options.port)
                     : fmt::format("{}:{}", options.host, options.port);
  s->request_timeout_ = options.request_timeout;
  FERRY_ASSIGN_OR_RETURN(s->fd_, ConnectTcp(options.host, options.port, options.connect_timeout,
                                            s->endpoint_));
  Status st = s->Handshake(options);
  if (!st.ok()) return std::move(st).With("node", s->endpoint_);
  return s;
}

Status Session::Handshake(const SessionOptions& options) {
  FERRY_ASSIGN_OR_RETURN(Response supported, Request(Opcode::kOptions, ""));
  WireReader r(supported.body);
  FERRY_ASSIGN_OR_RETURN(supported_, r.StringMultimap());
  std::map<std::string, std::string> startup{{"CQL_VERSION", "3.0.0"},
                                             {"DRIVER_NAME", "ferry"}};
  bool lz4 = false;
  for (const auto& c : supported_["COMPRESSION"]) lz4 = lz4 || c == "lz4";
  if (options.compression && lz4) startup["COMPRESSION"] = "lz4";
  WireWriter w;
  w.StringMap(startup);
  FERRY_ASSIGN_OR_RETURN(Response ready, Request(Opcode::kStartup, w.buffer()));
  compressed_ = startup.count("COMPRESSION") > 0;
  if (ready.header.opcode == Opcode::kReady) return Status();
  if (ready.header.opcode != Opcode::kAuthenticate) {
    return Status(StatusCode::kInternal,
                  fmt::format("CQL protocol error: {} in answer to STARTUP",
                              OpcodeName(ready.header.opcode)));
  }
  WireReader ar(ready.body);
  FERRY_ASSIGN_OR_RETURN(std::string authenticator, ar.String());
  return Authenticate(options, authenticator);
}

Status Session::Authenticate(const SessionOptions& options, std::string_view authenticator) {
  if (options.user.empty()) {
    return Status(StatusCode::kPermissionDenied,
                  fmt::format("the CQL node requires a login ({}); put user:password in the URL "
                              "(cql://user:password@host:9042/keyspace)",
                              authenticator));
  }
  std::string token;
  token.push_back('\0');
  token += options.user;
  token.push_back('\0');
  token += options.password;
  WireWriter w;
  w.Bytes(token);
  FERRY_ASSIGN_OR_RETURN(Response reply, Request(Opcode::kAuthResponse, w.buffer()));
  if (reply.header.opcode == Opcode::kAuthSuccess) return Status();
  return Status(StatusCode::kPermissionDenied,
                fmt::format("the CQL node's authenticator {} asked for more than SASL PLAIN ({})",
                            authenticator, OpcodeName(reply.header.opcode)));
}

Result<int16_t> Session::Send(Opcode opcode, std::string_view body) {
  if (fd_ < 0) return Lost("the connection was closed after an earlier error");
  int16_t stream = next_stream_;
  for (int tries = 0; in_flight_.count(stream) || arrived_.count(stream); ++tries) {
    if (tries > 32767) return Status(StatusCode::kUnavailable, "all 32767 CQL stream ids are in use");
    stream = static_cast<int16_t>(stream == 32767 ? 1 : stream + 1);
  }
  next_stream_ = static_cast<int16_t>(stream == 32767 ? 1 : stream + 1);
  const bool compress = compressed_ && !body.empty() && opcode != Opcode::kStartup &&
                        opcode != Opcode::kOptions;
  std::string compressed_body = compress ? Lz4Compress(body) : std::string();
  std::string_view payload = compress ? std::string_view(compressed_body) : body;
  FrameHeader h;
  h.flags = compress ? kFlagCompression : 0;
  h.stream = stream;
  h.opcode = opcode;
  h.length = static_cast<uint32_t>(payload.size());
  std::string frame;
  frame.reserve(kHeaderSize + payload.size());
  EncodeHeader(h, &frame);
  frame.append(payload);
  FERRY_RETURN_IF_ERROR(WriteAll(frame));
  in_flight_[stream] = true;
  return stream;
}

Result<Response> Session::Wait(int16_t stream) {
  while (!arrived_.count(stream)) {
    if (!in_flight_.count(stream)) {
      if (fd_ < 0) return Lost("the connection broke before this request's answer arrived");
      return Status(StatusCode::kInternal, fmt::format("no CQL request in flight on stream {}", stream));
    }
    FERRY_ASSIGN_OR_RETURN(Response r, ReadFrame());
    if (r.header.stream < 0) continue;  // server events: not registered for, ignored
    in_flight_.erase(r.header.stream);
    arrived_[r.header.stream] = std::move(r);
  }
  Response r = std::move(arrived_[stream]);
  arrived_.erase(stream);
  if (r.header.opcode == Opcode::kError) return DecodeError(r.body);
  return r;
}

Result<Response> Session::Request(Opcode opcode, std::string_view body) {
  FERRY_ASSIGN_OR_RETURN(int16_t stream, Send(opcode, body));
  return Wait(stream);
}

Result<Response> Session::ReadFrame() {
  std::string head;
  FERRY_RETURN_IF_ERROR(ReadExact(kHeaderSize, &head));
  Result<FrameHeader> header = DecodeHeader(head);
  if (!header.ok()) {
    close(fd_);
    fd_ = -1;
    return header.status();
  }
  Response r;
  r.header = *header;
  FERRY_RETURN_IF_ERROR(ReadExact(r.header.length, &r.body));
  if (r.header.flags & kFlagCompression) {
    FERRY_ASSIGN_OR_RETURN(r.body, Lz4Decompress(r.body));
  }
  FERRY_RETURN_IF_ERROR(StripPrefixes(&r));
  return r;
}

Status Session::WriteAll(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      if (poll(&p, 1, static_cast<int>(request_timeout_.count())) <= 0) {
        return Lost("timed out writing a request");
      }
      continue;
    }
    return Lost(std::strerror(errno));
  }
  return Status();
}

Status Session::ReadExact(size_t n, std::string* out) {
  out->resize(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd_, out->data() + got, n - got, 0);
    if (r > 0) {
      got += static_cast<size_t>(r);
      continue;
    }
    if (r == 0) return Lost("the node closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      pollfd p{fd_, POLLIN, 0};
      int ready = poll(&p, 1, static_cast<int>(request_timeout_.count()));
      if (ready == 0) {
        return Lost(fmt::format("no answer within {} ms (URL ?request_timeout=SECONDS)",
                                request_timeout_.count()));
      }
      continue;
    }
    return Lost(std::strerror(errno));
  }
  return Status();
}

Status Session::Lost(std::string_view what) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  in_flight_.clear();
  return Status(StatusCode::kUnavailable, fmt::format("CQL node {}: {}", endpoint_, what))
      .With("node", endpoint_);
}

}  // namespace ferry::cql
