#include "drivers/redis/redis_node.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <charconv>
#include <cstring>
#include <sys/socket.h>
#include <sys/time.h>

namespace ferry::redis {
namespace {

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

}  // namespace

std::string_view RedisReply::ErrorPrefix() const {
  if (type != Type::kError) return {};
  std::string_view s = str;
  return s.substr(0, s.find(' '));
}

Credentials CredentialsFromUrl(const Url& url) {
  Credentials c;
  c.user = url.user();
  c.password = url.password().Reveal();
  std::from_chars(url.database().data(), url.database().data() + url.database().size(),
                  c.database);
  c.tls = url.tls();
  if (auto tls = TlsOptionsFromUrl(url); tls.ok()) c.tls_options = *std::move(tls);
  return c;
}

Result<std::vector<std::pair<std::string, int>>> HostsFromUrl(const Url& url) {
  std::vector<std::pair<std::string, int>> hosts;
  // One host (redis://, or a redis+cluster:// URL with a single seed): the
  // URL parser has split host and port already.
  if (url.host().find(',') == std::string::npos) {
    hosts.emplace_back(url.host().empty() ? "127.0.0.1" : url.host(),
                       url.port() == 0 ? 6379 : url.port());
    return hosts;
  }
  std::string_view list = url.host();
  while (!list.empty()) {
    std::string_view item = list.substr(0, list.find(','));
    list.remove_prefix(std::min(list.size(), item.size() + 1));
    if (item.empty()) continue;
    size_t colon = item.rfind(':');
    int port = 6379;
    std::string host(item.substr(0, colon));
    if (colon != std::string_view::npos) {
      std::string_view p = item.substr(colon + 1);
      auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
      if (ec != std::errc() || ptr != p.data() + p.size() || port <= 0 || port > 65535) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("'{}': port '{}' of host '{}' is not a number from 1 to 65535",
                                  url.Redacted(), p, host));
      }
    }
    hosts.emplace_back(host, port);
  }
  if (hosts.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("'{}' names no host: use redis+cluster://h1:p1,h2:p2",
                              url.Redacted()));
  }
  return hosts;
}

void RedisNode::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }
void RedisNode::ReaderDeleter::operator()(redisReader* r) const { redisReaderFree(r); }

RedisNode::RedisNode(std::string host, int port)
    : host_(std::move(host)), port_(port), address_(fmt::format("{}:{}", host_, port_)) {}

RedisNode::~RedisNode() = default;

Result<std::unique_ptr<RedisNode>> RedisNode::Connect(const std::string& host, int port,
                                                       const Credentials& credentials) {
  std::unique_ptr<RedisNode> node(new RedisNode(host, port));
  if (credentials.tls) {
    FERRY_ASSIGN_OR_RETURN(node->tls_, TlsSocket::Connect(host, port, credentials.tls_options,
                                                          credentials.timeout));
    node->reader_.reset(redisReaderCreate());
    if (node->reader_ == nullptr) {
      return Status(StatusCode::kUnavailable, "cannot create a Redis reply reader: out of memory");
    }
    FERRY_RETURN_IF_ERROR(node->Login(credentials));
    return node;
  }
  node->context_.reset(redisConnectWithTimeout(host.c_str(), port, ToTimeval(credentials.timeout)));
  if (node->context_ == nullptr) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("cannot connect to Redis at {}: out of memory", node->address_));
  }
  if (node->context_->err != 0) return node->ConnectionError("connecting");
  redisSetTimeout(node->context_.get(), ToTimeval(credentials.timeout));
  FERRY_RETURN_IF_ERROR(node->Login(credentials));
  return node;
}

Status RedisNode::Login(const Credentials& credentials) {
  if (!credentials.password.empty()) {
    Command auth = credentials.user.empty()
                       ? Command{"AUTH", credentials.password}
                       : Command{"AUTH", credentials.user, credentials.password};
    FERRY_ASSIGN_OR_RETURN(RedisReply reply, Run(auth));
    if (reply.is_error()) {
      // The reply names neither user nor password; say which user was refused.
      return Status(StatusCode::kPermissionDenied,
                    fmt::format("Redis at {} refused the login{}: {}", address_,
                                credentials.user.empty() ? "" : " of user '" + credentials.user + "'",
                                reply.str))
          .With("hint", "check the user and password in the URL (redis://user:password@host)");
    }
  }
  if (credentials.database != 0) {
    FERRY_ASSIGN_OR_RETURN(RedisReply reply,
                           Run({"SELECT", std::to_string(credentials.database)}));
    if (reply.is_error()) return ReplyError(reply, "SELECT " + std::to_string(credentials.database), address_);
  }
  return Status::Ok();
}

Status RedisNode::ConnectionError(std::string_view doing) const {
  std::string_view why = context_ ? context_->errstr : "no connection";
  // A TLS server answers a plain client with an alert (or hangs up).
  bool maybe_tls = context_ != nullptr && (why.find("Protocol error") != std::string_view::npos ||
                                           why.find("closed") != std::string_view::npos ||
                                           why.find("reset by peer") != std::string_view::npos);
  return Status(StatusCode::kUnavailable,
                fmt::format("Redis at {}: {} failed: {}{}", address_, doing, why,
                            maybe_tls ? fmt::format("; is {} a TLS port? Then use rediss://", address_)
                                      : ""))
      .With("hint", maybe_tls ? "a TLS server needs rediss://host:port (with ?tls_ca=PATH for "
                                "a private CA)"
                              : "check that the server runs and the host and port are right");
}

std::string RedisNode::transport() const {
  if (tls_ == nullptr) return "plain";
  return fmt::format("{} ({})", tls_->version(),
                     tls_->verified() ? "certificate verified" : "NOT verified: tls_insecure");
}

void RedisNode::Drop() {
  std::lock_guard lock(interrupt_mu_);
  context_.reset();
  tls_.reset();
}

// The commands in RESP, one buffer for the whole pipeline.
Result<std::string> RedisNode::Format(const std::vector<Command>& commands) const {
  std::string out;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const Command& c : commands) {
    argv.clear();
    lens.clear();
    for (const std::string& a : c) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    char* formatted = nullptr;
    int n = redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()), argv.data(), lens.data());
    if (n < 0 || formatted == nullptr) {
      return Status(StatusCode::kUnavailable,
                    fmt::format("Redis at {}: cannot format a command: out of memory", address_));
    }
    out.append(formatted, static_cast<size_t>(n));
    redisFreeCommand(formatted);
  }
  return out;
}

Status RedisNode::SendTls(const std::vector<Command>& commands) {
  FERRY_ASSIGN_OR_RETURN(std::string out, Format(commands));
  Status s = tls_->WriteAll(out);
  if (!s.ok()) Drop();
  return s;
}

Result<RedisReply> RedisNode::ReceiveTls() {
  char buffer[16384];
  while (true) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
      Status s(StatusCode::kUnavailable,
               fmt::format("Redis at {}: the reply is not Redis protocol ({}): is it a Redis "
                           "TLS port?",
                           address_, reader_->errstr));
      Drop();
      return s;
    }
    if (raw != nullptr) {
      std::unique_ptr<redisReply, void (*)(void*)> owned(static_cast<redisReply*>(raw),
                                                         freeReplyObject);
      return Convert(owned.get());
    }
    Result<size_t> n = tls_->Read(buffer, sizeof(buffer));
    if (!n.ok()) {
      Drop();
      return n.status();
    }
    redisReaderFeed(reader_.get(), buffer, *n);
  }
}

Result<RedisReply> RedisNode::Run(const Command& command) {
  FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> replies, Pipeline({command}));
  return std::move(replies.front());
}

Result<RedisReply> RedisNode::RunOk(const Command& command) {
  FERRY_ASSIGN_OR_RETURN(RedisReply reply, Run(command));
  if (reply.is_error()) return ReplyError(reply, command.empty() ? "" : command[0], address_);
  return reply;
}

Result<std::vector<RedisReply>> RedisNode::Pipeline(const std::vector<Command>& commands) {
  FERRY_RETURN_IF_ERROR(Send(commands));
  return Receive(commands.size());
}

Status RedisNode::Send(const std::vector<Command>& commands) {
  if (!connected()) return ConnectionError("sending (connection lost earlier)");
  if (tls_ != nullptr) return SendTls(commands);
  FERRY_ASSIGN_OR_RETURN(std::string out, Format(commands));
  if (redisAppendFormattedCommand(context_.get(), out.data(), out.size()) != REDIS_OK) {
    return ConnectionError("sending a command");
  }
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(context_.get(), &done) != REDIS_OK) {
      Status s = ConnectionError("sending commands");
      context_.reset();
      return s;
    }
  }
  return Status::Ok();
}

void RedisNode::SetReadTimeout(std::chrono::milliseconds timeout) {
  if (context_ != nullptr) redisSetTimeout(context_.get(), ToTimeval(timeout));
  if (tls_ != nullptr) tls_->SetReadTimeout(timeout);
}

void RedisNode::Interrupt() {
  std::lock_guard lock(interrupt_mu_);
  if (context_ != nullptr && context_->fd >= 0) shutdown(context_->fd, SHUT_RDWR);
  if (tls_ != nullptr) tls_->Interrupt();
}

Result<std::vector<RedisReply>> RedisNode::Receive(size_t count) {
  if (!connected()) return ConnectionError("reading (connection lost earlier)");
  std::vector<RedisReply> replies;
  replies.reserve(count);
  if (tls_ != nullptr) {
    for (size_t i = 0; i < count; ++i) {
      FERRY_ASSIGN_OR_RETURN(RedisReply reply, ReceiveTls());
      replies.push_back(std::move(reply));
    }
    return replies;
  }
  for (size_t i = 0; i < count; ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_.get(), &raw) != REDIS_OK || raw == nullptr) {
      Status s = ConnectionError("reading a reply");
      std::lock_guard lock(interrupt_mu_);
      context_.reset();  // the stream is out of step: never reuse it
      return s;
    }
    std::unique_ptr<redisReply, void (*)(void*)> owned(static_cast<redisReply*>(raw),
                                                       freeReplyObject);
    replies.push_back(Convert(owned.get()));
  }
  return replies;
}

Result<std::vector<std::pair<std::string, std::string>>> RedisNode::Info(std::string_view section) {
  FERRY_ASSIGN_OR_RETURN(RedisReply reply, RunOk({"INFO", std::string(section)}));
  std::vector<std::pair<std::string, std::string>> out;
  std::string_view text = reply.str;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    out.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }
  return out;
}

int64_t InfoNumber(const std::vector<std::pair<std::string, std::string>>& info,
                   std::string_view key) {
  const std::string v = InfoValue(info, key);
  int64_t n = 0;
  std::from_chars(v.data(), v.data() + v.size(), n);
  return n;
}

std::string InfoValue(const std::vector<std::pair<std::string, std::string>>& info,
                      std::string_view key) {
  for (const auto& [k, v] : info) {
    if (k == key) return v;
  }
  return "";
}

Status ReplyError(const RedisReply& reply, std::string_view doing, std::string_view node) {
  std::string_view prefix = reply.ErrorPrefix();
  StatusCode code = StatusCode::kUnknown;
  if (prefix == "NOAUTH" || prefix == "WRONGPASS" || prefix == "NOPERM") {
    code = StatusCode::kPermissionDenied;
  } else if (prefix == "READONLY") {
    code = StatusCode::kFailedPrecondition;
  } else if (prefix == "LOADING" || prefix == "TRYAGAIN" || prefix == "CLUSTERDOWN" ||
             prefix == "BUSY") {
    code = StatusCode::kUnavailable;
  }
  return Status(code, fmt::format("Redis at {}: {}: {}", node, doing, reply.str));
}

}  // namespace ferry::redis
