// A TLS connection to one Redis server, over OpenSSL (libssl loaded on
// first use, drivers/redis/openssl_api.h).
//
// Debian's hiredis 0.14 has no TLS, so RedisNode keeps hiredis for the
// protocol (formatting commands, parsing replies) and, for rediss:// URLs,
// moves the bytes through a TlsSocket instead of a redisContext: a TCP
// socket (getaddrinfo, IPv4 or IPv6, connect with a timeout) wrapped in
// TLS 1.2 or later. The server certificate is verified by default against
// the system trust store or the CA file of the URL (tls_ca=PATH), for the
// URL's host name or IP address (SNI is sent for names). A client
// certificate (tls_cert, tls_key) is offered when given; tls_insecure=1
// skips the verification.
//
// Errors are kUnavailable (connection, handshake, lost stream, timeout)
// or kFailedPrecondition (an untrusted certificate, an unreadable CA or
// key file: retrying cannot help); they name host:port and OpenSSL's
// reason, never a password (a TlsSocket never sees one).
//
// Used by one thread at a time; Interrupt() may come from another thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "core/url.h"
#include "ferry/status.h"

struct ssl_st;      // OpenSSL's SSL
struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace ferry::redis {

// The TLS settings of a rediss:// URL's query.
struct TlsOptions {
  std::string ca_file;    // tls_ca= or cacert=; "" = the system trust store
  std::string cert_file;  // tls_cert= or cert=: a client certificate (PEM)
  std::string key_file;   // tls_key= or key=: its private key (PEM)
  bool insecure = false;  // tls_insecure=1 or insecure=true: no verification
};

// Reads the TLS options of `url`. kInvalidArgument for a tls_insecure value
// that is not a boolean, a key without a certificate (or the reverse), or
// any TLS option on a plain redis:// URL.
Result<TlsOptions> TlsOptionsFromUrl(const Url& url);

class TlsSocket {
 public:
  // TCP connect (within `timeout`), then the TLS handshake.
  static Result<std::unique_ptr<TlsSocket>> Connect(const std::string& host, int port,
                                                    const TlsOptions& options,
                                                    std::chrono::milliseconds timeout);
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  // Writes all of `data`.
  Status WriteAll(std::string_view data);
  // Reads what has arrived (at least one byte), waiting up to the read
  // timeout. kUnavailable when the server closed the stream or the wait
  // timed out.
  Result<size_t> Read(char* buffer, size_t size);
  // 0 waits for ever.
  void SetReadTimeout(std::chrono::milliseconds timeout);
  // Unblocks a Read() in another thread (shutdown() on the socket).
  void Interrupt();

  bool verified() const { return verified_; }
  // "TLSv1.3".
  std::string version() const;

 private:
  explicit TlsSocket(std::string address) : address_(std::move(address)) {}
  Status Handshake(const std::string& host, const TlsOptions& options);
  Status SslError(std::string_view doing, int ret) const;

  std::string address_;
  int fd_ = -1;
  ssl_ctx_st* ctx_ = nullptr;
  ssl_st* ssl_ = nullptr;
  bool verified_ = false;
};

}  // namespace ferry::redis
