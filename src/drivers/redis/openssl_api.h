// OpenSSL's libssl, loaded on first use for Redis over TLS (rediss://).
//
// Debian's hiredis 0.14 has no TLS (no hiredis_ssl), so ferry speaks TLS to
// Redis itself over OpenSSL (drivers/redis/redis_tls.h). ferry does not link
// libssl: like libpq (drivers/postgres/libpq_api.h), it is dlopen()ed the
// first time a rediss:// connection is opened, so commands that never use
// TLS do not pay for mapping OpenSSL at start-up. The function types come
// from <openssl/ssl.h>, so the compiler checks every call.
//
// Only drivers/redis/redis_tls.cc includes this header.
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ferry/status.h"

namespace ferry::redis {

// libssl's soname in OpenSSL 3 (Debian 12: libssl3).
inline constexpr const char* kLibsslSoname = "libssl.so.3";

// Every OpenSSL function ferry calls (libcrypto's are found through libssl,
// which depends on it).
#define FERRY_OPENSSL_FUNCTIONS(X)      \
  X(TLS_client_method)                  \
  X(SSL_CTX_new)                        \
  X(SSL_CTX_free)                       \
  X(SSL_CTX_ctrl)                       \
  X(SSL_CTX_set_default_verify_paths)   \
  X(SSL_CTX_load_verify_locations)      \
  X(SSL_CTX_use_certificate_chain_file) \
  X(SSL_CTX_use_PrivateKey_file)        \
  X(SSL_CTX_check_private_key)          \
  X(SSL_CTX_set_verify)                 \
  X(SSL_new)                            \
  X(SSL_free)                           \
  X(SSL_ctrl)                           \
  X(SSL_set_fd)                         \
  X(SSL_set1_host)                      \
  X(SSL_get0_param)                     \
  X(SSL_connect)                        \
  X(SSL_read)                           \
  X(SSL_write)                          \
  X(SSL_get_error)                      \
  X(SSL_get_verify_result)              \
  X(SSL_get_version)                    \
  X(SSL_shutdown)                       \
  X(X509_VERIFY_PARAM_set1_ip_asc)      \
  X(X509_verify_cert_error_string)      \
  X(ERR_get_error)                      \
  X(ERR_error_string_n)                 \
  X(ERR_clear_error)

// The loaded functions, named as in OpenSSL: Ssl().SSL_new(ctx).
struct OpensslApi {
#define FERRY_OPENSSL_MEMBER(name) decltype(&::name) name = nullptr;
  FERRY_OPENSSL_FUNCTIONS(FERRY_OPENSSL_MEMBER)
#undef FERRY_OPENSSL_MEMBER
};

// Loads libssl.so.3 and resolves every function above, once per process
// (thread-safe). kFailedPrecondition naming the library, the loader's
// reason or the missing function, and how to install it.
Status LoadOpenssl();

// The table; only valid after LoadOpenssl() succeeded (aborts otherwise).
const OpensslApi& Ssl();

}  // namespace ferry::redis
