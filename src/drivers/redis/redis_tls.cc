#include "drivers/redis/redis_tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "drivers/redis/openssl_api.h"

namespace ferry::redis {
namespace {

constexpr std::string_view kVerifyHint =
    "give the CA that signed the server's certificate with ?tls_ca=PATH (PEM), or, for a test "
    "server only, skip the check with ?tls_insecure=1";

// "1", "true", "yes", "on" / "0", "false", "no", "off".
Result<bool> ParseBool(std::string_view key, const std::string& value) {
  if (value == "1" || value == "true" || value == "yes" || value == "on") return true;
  if (value == "0" || value == "false" || value == "no" || value == "off") return false;
  return Status(StatusCode::kInvalidArgument,
                fmt::format("URL option {}='{}' is not a boolean: use {}=1 or {}=0", key, value,
                            key, key));
}

// The oldest error on OpenSSL's queue as text, "" when empty; clears it.
std::string OpensslReason() {
  const OpensslApi& ssl = Ssl();
  unsigned long code = ssl.ERR_get_error();
  ssl.ERR_clear_error();
  if (code == 0) return "";
  char text[256];
  ssl.ERR_error_string_n(code, text, sizeof(text));
  return text;
}

void SetTimeout(int fd, int option, std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

// A connected TCP socket (blocking), or -1 with `error` set.
int ConnectTcp(const std::string& host, int port, std::chrono::milliseconds timeout,
               std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0) {
    *error = fmt::format("cannot resolve host '{}': {}", host, gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int r = connect(fd, a->ai_addr, a->ai_addrlen);
    int err = r == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int ready = poll(&p, 1, timeout.count() > 0 ? static_cast<int>(timeout.count()) : -1);
      socklen_t len = sizeof(err);
      if (ready == 0) {
        err = ETIMEDOUT;
      } else if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
      }
    }
    if (err != 0) {
      *error = fmt::format("connect: {}", std::strerror(err));
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd >= 0) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    SetTimeout(fd, SO_RCVTIMEO, timeout);
    SetTimeout(fd, SO_SNDTIMEO, timeout);
  }
  return fd;
}

}  // namespace

Result<TlsOptions> TlsOptionsFromUrl(const Url& url) {
  TlsOptions o;
  std::string given;  // the first TLS option seen, for the redis:// error
  for (const auto& [key, value] : url.params()) {
    if (key == "tls_ca" || key == "cacert") {
      o.ca_file = value;
    } else if (key == "tls_cert" || key == "cert") {
      o.cert_file = value;
    } else if (key == "tls_key" || key == "key") {
      o.key_file = value;
    } else if (key == "tls_insecure" || key == "insecure") {
      FERRY_ASSIGN_OR_RETURN(o.insecure, ParseBool(key, value));
    } else {
      continue;
    }
    if (given.empty()) given = key;
  }
  if (!given.empty() && !url.tls()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("'{}': the TLS option '{}' needs a TLS URL: write rediss:// (or "
                              "rediss+cluster://) instead of redis://",
                              url.Redacted(), given));
  }
  if (o.cert_file.empty() != o.key_file.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("'{}': a client certificate needs both tls_cert=PATH and "
                              "tls_key=PATH; only {} is given",
                              url.Redacted(), o.cert_file.empty() ? "tls_key" : "tls_cert"));
  }
  return o;
}

Result<std::unique_ptr<TlsSocket>> TlsSocket::Connect(const std::string& host, int port,
                                                      const TlsOptions& options,
                                                      std::chrono::milliseconds timeout) {
  FERRY_RETURN_IF_ERROR(LoadOpenssl());
  std::unique_ptr<TlsSocket> s(new TlsSocket(fmt::format("{}:{}", host, port)));
  std::string error;
  s->fd_ = ConnectTcp(host, port, timeout, &error);
  if (s->fd_ < 0) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("cannot connect to Redis at {}: {}", s->address_, error))
        .With("hint", "check that the server runs and the host and port are right");
  }
  FERRY_RETURN_IF_ERROR(s->Handshake(host, options));
  return s;
}

Status TlsSocket::Handshake(const std::string& host, const TlsOptions& options) {
  const OpensslApi& ssl = Ssl();
  ssl.ERR_clear_error();
  ctx_ = ssl.SSL_CTX_new(ssl.TLS_client_method());
  if (ctx_ == nullptr) return SslError("creating a TLS context", 0);
  ssl.SSL_CTX_ctrl(ctx_, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr);
  if (!options.insecure) {
    int ok = options.ca_file.empty()
                 ? ssl.SSL_CTX_set_default_verify_paths(ctx_)
                 : ssl.SSL_CTX_load_verify_locations(ctx_, options.ca_file.c_str(), nullptr);
    if (ok != 1) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("Redis at {}: cannot load the CA certificates from '{}': {}",
                                address_, options.ca_file.empty() ? "the system store" : options.ca_file,
                                OpensslReason()))
          .With("hint", "tls_ca=PATH must name a readable PEM file of CA certificates");
    }
    ssl.SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  } else {
    ssl.SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  }
  if (!options.cert_file.empty()) {
    if (ssl.SSL_CTX_use_certificate_chain_file(ctx_, options.cert_file.c_str()) != 1 ||
        ssl.SSL_CTX_use_PrivateKey_file(ctx_, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        ssl.SSL_CTX_check_private_key(ctx_) != 1) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("Redis at {}: cannot use the client certificate '{}' with the key "
                                "'{}': {}",
                                address_, options.cert_file, options.key_file, OpensslReason()))
          .With("hint", "tls_cert= and tls_key= must name readable PEM files that match");
    }
  }
  ssl_ = ssl.SSL_new(ctx_);
  if (ssl_ == nullptr || ssl.SSL_set_fd(ssl_, fd_) != 1) return SslError("creating a TLS session", 0);
  in6_addr ip{};
  bool is_ip = inet_pton(AF_INET, host.c_str(), &ip) == 1 || inet_pton(AF_INET6, host.c_str(), &ip) == 1;
  if (is_ip) {
    if (!options.insecure) ssl.X509_VERIFY_PARAM_set1_ip_asc(ssl.SSL_get0_param(ssl_), host.c_str());
  } else {
    // SNI (SSL_set_tlsext_host_name is a macro over SSL_ctrl).
    ssl.SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(host.c_str()));
    if (!options.insecure && ssl.SSL_set1_host(ssl_, host.c_str()) != 1) {
      return SslError("setting the host name to verify", 0);
    }
  }
  errno = 0;
  int ret = ssl.SSL_connect(ssl_);
  const int connect_errno = errno;
  if (ret == 1) {
    verified_ = !options.insecure;
    return Status::Ok();
  }
  long verify = ssl.SSL_get_verify_result(ssl_);
  if (!options.insecure && verify != X509_V_OK) {
    ssl.ERR_clear_error();
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("Redis at {}: the server's TLS certificate is not trusted for host "
                              "'{}': {}; {}",
                              address_, host, ssl.X509_verify_cert_error_string(verify), kVerifyHint))
        .With("hint", std::string(kVerifyHint));
  }
  int err = ssl.SSL_get_error(ssl_, ret);
  std::string reason = OpensslReason();
  if (reason.empty() && (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ||
                         connect_errno == EAGAIN || connect_errno == EWOULDBLOCK)) {
    reason = "no answer to the TLS hello in time";
  }
  return Status(StatusCode::kUnavailable,
                fmt::format("the server at {} did not answer TLS (handshake failed: {}): is it a "
                            "TLS port? For a plain port use redis:// instead of rediss://",
                            address_, reason.empty() ? std::string("connection closed") : reason))
      .With("hint", "check that the port is the server's tls-port, or use redis://");
}

Status TlsSocket::SslError(std::string_view doing, int ret) const {
  std::string reason;
  if (ssl_ != nullptr && ret <= 0) {
    int err = Ssl().SSL_get_error(ssl_, ret);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      reason = "timed out";
    } else if (err == SSL_ERROR_ZERO_RETURN) {
      reason = "the server closed the connection";
    } else if (err == SSL_ERROR_SYSCALL) {
      reason = errno != 0 ? std::strerror(errno) : "the server closed the connection";
    }
  }
  std::string queued = OpensslReason();
  if (reason.empty()) reason = queued.empty() ? "unknown TLS error" : queued;
  return Status(StatusCode::kUnavailable,
                fmt::format("Redis at {}: {} failed: {}", address_, doing, reason))
      .With("hint", "check that the server runs and the host and port are right");
}

TlsSocket::~TlsSocket() {
  if (ssl_ != nullptr) Ssl().SSL_free(ssl_);
  if (ctx_ != nullptr) Ssl().SSL_CTX_free(ctx_);
  if (fd_ >= 0) close(fd_);
}

Status TlsSocket::WriteAll(std::string_view data) {
  while (!data.empty()) {
    errno = 0;
    int n = Ssl().SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 30)));
    if (n <= 0) return SslError("sending commands", n);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Result<size_t> TlsSocket::Read(char* buffer, size_t size) {
  errno = 0;
  int n = Ssl().SSL_read(ssl_, buffer, static_cast<int>(std::min<size_t>(size, 1 << 30)));
  if (n <= 0) return SslError("reading a reply", n);
  return static_cast<size_t>(n);
}

void TlsSocket::SetReadTimeout(std::chrono::milliseconds timeout) {
  if (fd_ >= 0) SetTimeout(fd_, SO_RCVTIMEO, timeout);
}

void TlsSocket::Interrupt() {
  if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
}

std::string TlsSocket::version() const { return ssl_ ? Ssl().SSL_get_version(ssl_) : ""; }

}  // namespace ferry::redis
