// One connection to one Redis server, over hiredis.
//
// RedisNode owns its hiredis context (freed with redisFree) or, for
// rediss:// URLs, a TlsSocket (drivers/redis/redis_tls.h: Debian's hiredis
// 0.14 has no TLS) with a hiredis reply reader; either way it logs in with
// AUTH (ACL user + password, or the password alone), selects the URL's
// database and pipelines commands: Pipeline() sends every command, then
// reads every reply, in one write and as few reads as the replies need.
//
// Errors: a connection that cannot be made, is lost or times out is
// kUnavailable (retry the call); a refused login is kPermissionDenied. A
// server error reply to one command is not a Status: it comes back as a
// RedisReply of type kError, so a pipeline's other replies stay usable.
// Messages never contain the password.
//
// A RedisNode is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/url.h"
#include "drivers/redis/redis_tls.h"
#include "ferry/status.h"

struct redisContext;
struct redisReader;

namespace ferry::redis {

// One reply, copied out of hiredis (RESP2).
struct RedisReply {
  enum class Type : uint8_t { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;      // kString, kStatus, kError
  int64_t integer = 0;  // kInteger
  std::vector<RedisReply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
  // "MOVED", "ASK", "WRONGPASS", ... : the first word of an error reply.
  std::string_view ErrorPrefix() const;
};

// A command as its arguments ("SET", key, value); binary-safe.
using Command = std::vector<std::string>;

// Login and database settings shared by every node of one URL.
struct Credentials {
  std::string user;      // "" = the default user
  std::string password;  // "" = no AUTH
  int database = 0;      // SELECT (standalone only)
  bool tls = false;
  TlsOptions tls_options;  // rediss:// only
  std::chrono::milliseconds timeout{10000};  // connect and per-reply
};

// The user, password and database of a redis:// URL. The password is read
// from the URL's raw text (percent-decoded); it is never put in a message.
// TLS options the URL gets wrong are left at their defaults here: check
// them first with TlsOptionsFromUrl (RedisClient::Open does).
Credentials CredentialsFromUrl(const Url& url);

// "host:port" pairs of a URL: one for redis://, the seed list for
// redis+cluster://. kInvalidArgument for a malformed entry.
Result<std::vector<std::pair<std::string, int>>> HostsFromUrl(const Url& url);

class RedisNode {
 public:
  // Connects, AUTHs and SELECTs (when database != 0).
  static Result<std::unique_ptr<RedisNode>> Connect(const std::string& host, int port,
                                                     const Credentials& credentials);
  ~RedisNode();
  RedisNode(const RedisNode&) = delete;
  RedisNode& operator=(const RedisNode&) = delete;

  // "host:port".
  const std::string& address() const { return address_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  // "plain", "TLSv1.3 (certificate verified)" or "TLSv1.3 (NOT verified: tls_insecure)".
  std::string transport() const;

  // Runs one command. A connection failure is a Status; a server error
  // is a reply of type kError.
  Result<RedisReply> Run(const Command& command);
  // Runs one command and turns an error reply into a Status
  // (kPermissionDenied for NOAUTH/WRONGPASS/NOPERM, kUnknown otherwise).
  Result<RedisReply> RunOk(const Command& command);
  // Sends all commands in one go and returns their replies in order.
  Result<std::vector<RedisReply>> Pipeline(const std::vector<Command>& commands);
  // The two halves of Pipeline: write the commands out, later read `count`
  // replies (so several nodes can work on their pipelines at once).
  Status Send(const std::vector<Command>& commands);
  Result<std::vector<RedisReply>> Receive(size_t count);

  // How long a reply may take; 0 waits for ever (a subscription).
  void SetReadTimeout(std::chrono::milliseconds timeout);
  // Unblocks a thread waiting in Receive() (it then fails; the connection is
  // not usable afterwards). Safe from another thread.
  void Interrupt();

  // INFO SECTION as key -> value.
  Result<std::vector<std::pair<std::string, std::string>>> Info(std::string_view section);

 private:
  RedisNode(std::string host, int port);
  Status Login(const Credentials& credentials);
  Status ConnectionError(std::string_view doing) const;
  bool connected() const { return context_ != nullptr || tls_ != nullptr; }
  void Drop();  // forget the connection (its stream is out of step)
  Result<std::string> Format(const std::vector<Command>& commands) const;
  Status SendTls(const std::vector<Command>& commands);
  Result<RedisReply> ReceiveTls();

  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  struct ReaderDeleter {
    void operator()(redisReader* r) const;
  };
  std::unique_ptr<redisContext, ContextDeleter> context_;
  std::unique_ptr<TlsSocket> tls_;                      // rediss:// instead of context_
  std::unique_ptr<redisReader, ReaderDeleter> reader_;  // parses tls_'s replies
  std::mutex interrupt_mu_;  // Interrupt() vs Receive() dropping the context
  std::string host_;
  int port_ = 0;
  std::string address_;
};

// The value of `key` in INFO output, or "".
std::string InfoValue(const std::vector<std::pair<std::string, std::string>>& info,
                      std::string_view key);
// Its leading integer (0 when absent or not a number).
int64_t InfoNumber(const std::vector<std::pair<std::string, std::string>>& info,
                   std::string_view key);

// A Status for an error reply ("while DOING on NODE: ERR ...").
Status ReplyError(const RedisReply& reply, std::string_view doing, std::string_view node);

}  // namespace ferry::redis
