// The light PostgreSQL client (see pg_light.h), written from the
// PostgreSQL documentation chapter "Frontend/Backend Protocol" (message flow
// and formats, SASL authentication) and RFC 5802/7677 (SCRAM). Hashes, HMAC,
// PBKDF2 and base64 come from nettle.
#include "drivers/postgres/pg_light.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <nettle/md5.h>
#include <nettle/pbkdf2.h>
#include <nettle/sha2.h>
#include <poll.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/log.h"
#include "drivers/postgres/pg_error.h"
#include "drivers/postgres/pg_server_info.h"
#include "drivers/postgres/pg_session.h"

namespace ferry::postgres {
namespace light_internal {
namespace {

using Clock = std::chrono::steady_clock;
using Deadline = std::optional<Clock::time_point>;

constexpr int32_t kProtocolVersion3 = 3 << 16;
constexpr int32_t kSslRequestCode = 80877103;
constexpr int32_t kCancelRequestCode = 80877102;
constexpr size_t kMaxParams = 65535;
constexpr size_t kReadBufferSize = 64 * 1024;
// The server never sends a message this large (its own limit is 1 GB).
constexpr uint32_t kMaxMessageLength = (1u << 30) + 1024;

Status Unimplemented(std::string why) { return Status(StatusCode::kUnimplemented, std::move(why)); }

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool ParseInt(std::string_view text, int* out) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// "UTF8", "utf-8", "Unicode"... as the server reads encoding names.
bool IsUtf8Name(std::string_view name) {
  std::string plain;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      plain += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return plain == "utf8" || plain == "unicode";
}

using Digest = std::array<uint8_t, 32>;

const uint8_t* Bytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }
std::string_view View(const Digest& d) {
  return std::string_view(reinterpret_cast<const char*>(d.data()), d.size());
}

Digest HmacSha256(std::string_view key, std::string_view data) {
  hmac_sha256_ctx ctx;
  hmac_sha256_set_key(&ctx, key.size(), Bytes(key));
  hmac_sha256_update(&ctx, data.size(), Bytes(data));
  Digest out;
  hmac_sha256_digest(&ctx, out.size(), out.data());
  return out;
}

Digest Sha256(std::string_view data) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, data.size(), Bytes(data));
  Digest out;
  sha256_digest(&ctx, out.size(), out.data());
  return out;
}

std::string Md5Hex(std::string_view data) {
  md5_ctx ctx;
  md5_init(&ctx);
  md5_update(&ctx, data.size(), Bytes(data));
  uint8_t digest[MD5_DIGEST_SIZE];
  md5_digest(&ctx, sizeof digest, digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// "a=1,b=2" attribute of SCRAM messages: the value of `name`, or nullopt.
std::optional<std::string_view> ScramAttribute(std::string_view message, char name) {
  while (!message.empty()) {
    size_t comma = message.find(',');
    std::string_view part = message.substr(0, comma);
    if (part.size() >= 2 && part[0] == name && part[1] == '=') return part.substr(2);
    if (comma == std::string_view::npos) break;
    message.remove_prefix(comma + 1);
  }
  return std::nullopt;
}

// SCRAM saslname: ',' -> "=2C", '=' -> "=3D".
std::string SaslName(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string Target::SocketPath() const { return fmt::format("{}/.s.PGSQL.{}", host, port); }

Result<Target> ResolveTarget(const Url& url, const GetenvFunction& getenv,
                             const std::function<bool(const std::string&)>& file_exists,
                             const std::string& os_user, const ConnectOptions& options) {
  if (url.scheme() != "postgres") return Unimplemented("not a PostgreSQL URL");
  if (url.key_value_form()) {
    return Unimplemented("key=value connection strings are read by libpq");
  }
  auto env = [&getenv](const char* name) -> std::optional<std::string> {
    const char* value = getenv(name);
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
  const auto& params = url.params();
  auto param = [&params](const char* name) -> std::optional<std::string> {
    auto it = params.find(name);
    if (it == params.end()) return std::nullopt;
    return it->second;
  };
  static constexpr std::array<std::string_view, 11> kAllowedParams = {"sslmode",
                                                                      "gssencmode",
                                                                      "connect_timeout",
                                                                      "application_name",
                                                                      "fallback_application_name",
                                                                      "host",
                                                                      "port",
                                                                      "user",
                                                                      "password",
                                                                      "dbname",
                                                                      "client_encoding"};
  if (!url.ssl_password().empty()) return Unimplemented("sslpassword is handled by libpq");
  for (const auto& [key, value] : params) {
    if (std::find(kAllowedParams.begin(), kAllowedParams.end(), key) == kAllowedParams.end()) {
      return Unimplemented(fmt::format("URL parameter '{}' is handled by libpq", key));
    }
  }
  // Environment variables that change what libpq does in ways this client
  // does not copy.
  static constexpr std::array<const char*, 14> kLibpqOnlyEnv = {"PGSERVICE",
                                                                "PGSERVICEFILE",
                                                                "PGOPTIONS",
                                                                "PGHOSTADDR",
                                                                "PGREQUIRESSL",
                                                                "PGTARGETSESSIONATTRS",
                                                                "PGLOADBALANCEHOSTS",
                                                                "PGDATESTYLE",
                                                                "PGTZ",
                                                                "PGGEQO",
                                                                "PGREQUIREAUTH",
                                                                "PGSSLNEGOTIATION",
                                                                "PGREQUIREPEER",
                                                                "PGMAXPROTOCOLVERSION"};
  for (const char* name : kLibpqOnlyEnv) {
    if (env(name)) return Unimplemented(fmt::format("{} is set; libpq reads it", name));
  }
  if (env("PGMINPROTOCOLVERSION"))
    return Unimplemented("PGMINPROTOCOLVERSION is set; libpq reads it");
  if (auto v = env("PGCLIENTENCODING"); v && !IsUtf8Name(*v)) {
    return Unimplemented(fmt::format("PGCLIENTENCODING={} is not UTF8", *v));
  }
  if (auto v = env("PGCHANNELBINDING"); v && Lower(*v) == "require") {
    return Unimplemented("PGCHANNELBINDING=require needs TLS (libpq)");
  }
  if (auto v = param("client_encoding"); v && !IsUtf8Name(*v)) {
    return Unimplemented(fmt::format("client_encoding={} is not UTF8", *v));
  }

  Target target;
  // TLS: only the modes that may go without it.
  {
    std::optional<std::string> mode = param("sslmode");
    const char* origin = "sslmode";
    if (!mode) {
      mode = env("PGSSLMODE");
      origin = "PGSSLMODE";
    }
    std::string m = mode ? *mode : "prefer";
    if (m == "disable") {
      target.ssl_mode = SslMode::kDisable;
    } else if (m == "allow") {
      target.ssl_mode = SslMode::kAllow;
    } else if (m == "prefer") {
      target.ssl_mode = SslMode::kPrefer;
    } else {
      return Unimplemented(fmt::format("{}={} needs TLS (libpq)", origin, m));
    }
  }
  // GSS encryption: libpq tries it (gssencmode=prefer, its default) when a
  // Kerberos credential cache exists.
  std::string gssencmode = "prefer";
  if (auto v = param("gssencmode")) {
    if (*v != "disable") return Unimplemented(fmt::format("gssencmode={} is handled by libpq", *v));
    gssencmode = *v;
  } else if (auto e = env("PGGSSENCMODE")) {
    if (*e != "disable")
      return Unimplemented(fmt::format("PGGSSENCMODE={} is handled by libpq", *e));
    gssencmode = *e;
  }
  if (gssencmode != "disable") {
    if (env("KRB5CCNAME")) {
      return Unimplemented(
          "KRB5CCNAME is set: libpq may use GSS encryption (set gssencmode=disable to avoid it)");
    }
    std::string cache = fmt::format("/tmp/krb5cc_{}", static_cast<unsigned>(geteuid()));
    if (file_exists(cache)) {
      return Unimplemented(fmt::format(
          "{} exists: libpq may use GSS encryption (set gssencmode=disable to avoid it)", cache));
    }
  }

  // Host and port.
  if (auto v = param("host")) {
    target.host = *v;
  } else if (!url.host().empty()) {
    target.host = url.host();
  } else if (auto e = env("PGHOST")) {
    target.host = *e;
  }
  if (target.host.empty()) {
    return Unimplemented("no host given: libpq uses its compiled-in socket directory");
  }
  if (target.host.find(',') != std::string::npos) {
    return Unimplemented("several hosts: libpq tries them in turn");
  }
  if (target.host.front() == '@')
    return Unimplemented("abstract Unix sockets are handled by libpq");
  std::optional<std::string> port_text = param("port");
  if (!port_text && url.port() > 0) port_text = std::to_string(url.port());
  if (!port_text) port_text = env("PGPORT");
  if (port_text && !port_text->empty()) {
    int port = 0;
    if (!ParseInt(*port_text, &port) || port < 1 || port > 65535) {
      return Unimplemented(fmt::format("port '{}' is for libpq to judge", *port_text));
    }
    target.port = port;
  }

  // Who, where, with which password.
  if (auto v = param("user"); v && !v->empty()) {
    target.user = *v;
  } else if (!url.user().empty()) {
    target.user = url.user();
  } else if (auto e = env("PGUSER"); e && !e->empty()) {
    target.user = *e;
  } else {
    target.user = os_user;
  }
  if (target.user.empty()) return Unimplemented("no user name: libpq looks it up");
  if (auto v = param("dbname"); v && !v->empty()) {
    target.database = *v;
  } else if (!url.database().empty()) {
    target.database = url.database();
  } else if (auto e = env("PGDATABASE"); e && !e->empty()) {
    target.database = *e;
  } else {
    target.database = target.user;
  }
  // The password from the URL (userinfo or parameter; core/url.h keeps it
  // apart from every printable text), else PGPASSWORD.
  std::optional<std::string> password;
  if (url.has_password()) password = url.password().Reveal();
  if (!password) password = env("PGPASSWORD");
  if (password && !password->empty()) {
    if (password->find('\0') != std::string::npos) {
      return Unimplemented("the password holds a NUL byte");
    }
    target.password = std::move(password);
  }
  for (const std::string* text : {&target.user, &target.database, &target.host}) {
    if (text->find('\0') != std::string::npos) {
      return Unimplemented("a connection setting holds a NUL byte");
    }
  }

  if (auto v = param("application_name")) {
    target.application_name = *v;
  } else if (auto e = env("PGAPPNAME")) {
    target.application_name = *e;
  } else if (auto f = param("fallback_application_name")) {
    target.application_name = *f;
  } else {
    target.application_name = options.application_name;
  }
  if (target.application_name.find('\0') != std::string::npos) {
    return Unimplemented("application_name holds a NUL byte");
  }

  std::optional<std::string> timeout = param("connect_timeout");
  if (!timeout) timeout = env("PGCONNECT_TIMEOUT");
  if (timeout) {
    int seconds = 0;
    if (!ParseInt(*timeout, &seconds)) {
      return Unimplemented(fmt::format("connect_timeout '{}' is for libpq to judge", *timeout));
    }
    target.connect_timeout_seconds = seconds;
  } else {
    target.connect_timeout_seconds = static_cast<int>(options.connect_timeout.count());
  }
  // As libpq: no timeout at 0 or below, at least two seconds otherwise.
  if (target.connect_timeout_seconds < 0) target.connect_timeout_seconds = 0;
  if (target.connect_timeout_seconds == 1) target.connect_timeout_seconds = 2;
  return target;
}

std::string Md5Response(std::string_view user, std::string_view password, std::string_view salt) {
  std::string inner = Md5Hex(std::string(password) + std::string(user));
  return "md5" + Md5Hex(inner + std::string(salt));
}

std::string Base64Encode(std::string_view data) {
  std::string out(BASE64_ENCODE_RAW_LENGTH(data.size()), '\0');
  base64_encode_raw(out.data(), data.size(), Bytes(data));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  base64_decode_ctx ctx;
  base64_decode_init(&ctx);
  std::string out(BASE64_DECODE_LENGTH(text.size()), '\0');
  size_t length = out.size();
  if (base64_decode_update(&ctx, &length, reinterpret_cast<uint8_t*>(out.data()), text.size(),
                           text.data()) != 1 ||
      base64_decode_final(&ctx) != 1) {
    return std::nullopt;
  }
  out.resize(length);
  return out;
}

ScramSha256::ScramSha256(std::string password, std::string user, std::string client_nonce)
    : password_(std::move(password)),
      user_(std::move(user)),
      client_nonce_(std::move(client_nonce)) {}

std::string ScramSha256::ClientFirstMessage() const {
  return "n,,n=" + SaslName(user_) + ",r=" + client_nonce_;
}

Result<std::string> ScramSha256::ClientFinalMessage(std::string_view server_first) {
  auto bad = [](std::string_view what) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("SCRAM authentication: the server's first message {}", what));
  };
  if (server_first.starts_with("m=")) return bad("asks for an extension this client lacks");
  std::optional<std::string_view> nonce = ScramAttribute(server_first, 'r');
  std::optional<std::string_view> salt64 = ScramAttribute(server_first, 's');
  std::optional<std::string_view> iterations_text = ScramAttribute(server_first, 'i');
  if (!nonce || !salt64 || !iterations_text) return bad("lacks r=, s= or i=");
  if (!nonce->starts_with(client_nonce_) || nonce->size() <= client_nonce_.size()) {
    return bad("does not extend the client nonce");
  }
  std::optional<std::string> salt = Base64Decode(*salt64);
  if (!salt || salt->empty()) return bad("has a malformed salt");
  int iterations = 0;
  if (!ParseInt(*iterations_text, &iterations) || iterations < 1) {
    return bad("has an invalid iteration count");
  }
  Digest salted;
  pbkdf2_hmac_sha256(password_.size(), Bytes(password_), static_cast<unsigned>(iterations),
                     salt->size(), Bytes(*salt), salted.size(), salted.data());
  Digest client_key = HmacSha256(View(salted), "Client Key");
  Digest stored_key = Sha256(View(client_key));
  std::string without_proof = "c=" + Base64Encode("n,,") + ",r=" + std::string(*nonce);
  std::string client_first_bare = "n=" + SaslName(user_) + ",r=" + client_nonce_;
  std::string auth_message =
      client_first_bare + "," + std::string(server_first) + "," + without_proof;
  Digest client_signature = HmacSha256(View(stored_key), auth_message);
  Digest proof;
  for (size_t i = 0; i < proof.size(); ++i) proof[i] = client_key[i] ^ client_signature[i];
  Digest server_key = HmacSha256(View(salted), "Server Key");
  server_signature_ = HmacSha256(View(server_key), auth_message);
  have_signature_ = true;
  return without_proof + ",p=" + Base64Encode(View(proof));
}

Status ScramSha256::VerifyServerFinal(std::string_view server_final) const {
  if (auto error = ScramAttribute(server_final, 'e')) {
    return Status(StatusCode::kPermissionDenied,
                  fmt::format("SCRAM authentication failed: the server says '{}'", *error));
  }
  std::optional<std::string_view> v = ScramAttribute(server_final, 'v');
  std::optional<std::string> signature = v ? Base64Decode(*v) : std::nullopt;
  if (!have_signature_ || !signature || signature->size() != server_signature_.size()) {
    return Status(StatusCode::kPermissionDenied,
                  "SCRAM authentication: the server's final message has no valid signature");
  }
  uint8_t diff = 0;
  for (size_t i = 0; i < server_signature_.size(); ++i) {
    diff |= static_cast<uint8_t>(static_cast<uint8_t>((*signature)[i]) ^ server_signature_[i]);
  }
  if (diff != 0) {
    return Status(StatusCode::kPermissionDenied,
                  "SCRAM authentication: the server's signature is wrong, so it does not know the "
                  "password; something may stand between ferry and the server");
  }
  return Status();
}

namespace {

// Reads big-endian integers and strings out of a message body.
class BodyReader {
 public:
  explicit BodyReader(std::string_view body) : rest_(body) {}
  bool ok() const { return ok_; }
  std::string_view rest() const { return rest_; }

  uint32_t U32() {
    if (rest_.size() < 4) return Fail();
    uint32_t v = (uint32_t{static_cast<uint8_t>(rest_[0])} << 24) |
                 (uint32_t{static_cast<uint8_t>(rest_[1])} << 16) |
                 (uint32_t{static_cast<uint8_t>(rest_[2])} << 8) |
                 uint32_t{static_cast<uint8_t>(rest_[3])};
    rest_.remove_prefix(4);
    return v;
  }
  int32_t I32() { return static_cast<int32_t>(U32()); }
  int16_t I16() {
    if (rest_.size() < 2) return static_cast<int16_t>(Fail());
    uint16_t v = static_cast<uint16_t>((static_cast<uint8_t>(rest_[0]) << 8) |
                                       static_cast<uint8_t>(rest_[1]));
    rest_.remove_prefix(2);
    return static_cast<int16_t>(v);
  }
  std::string_view Take(size_t n) {
    if (rest_.size() < n) {
      Fail();
      return {};
    }
    std::string_view out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return out;
  }
  // A NUL-terminated string.
  std::string_view CString() {
    size_t end = rest_.find('\0');
    if (end == std::string_view::npos) {
      Fail();
      return {};
    }
    std::string_view out = rest_.substr(0, end);
    rest_.remove_prefix(end + 1);
    return out;
  }

 private:
  uint32_t Fail() {
    ok_ = false;
    rest_ = {};
    return 0;
  }
  std::string_view rest_;
  bool ok_ = true;
};

}  // namespace

Status ParseDataRow(std::string_view body, std::vector<std::optional<std::string_view>>* fields) {
  fields->clear();
  BodyReader reader(body);
  int16_t count = reader.I16();
  if (!reader.ok() || count < 0) return Status(StatusCode::kInternal, "malformed DataRow message");
  fields->reserve(static_cast<size_t>(count));
  for (int16_t i = 0; i < count; ++i) {
    int32_t length = reader.I32();
    if (!reader.ok() || length < -1)
      return Status(StatusCode::kInternal, "malformed DataRow message");
    if (length == -1) {
      fields->emplace_back(std::nullopt);
    } else {
      std::string_view value = reader.Take(static_cast<size_t>(length));
      if (!reader.ok()) return Status(StatusCode::kInternal, "malformed DataRow message");
      fields->emplace_back(value);
    }
  }
  if (!reader.rest().empty()) return Status(StatusCode::kInternal, "malformed DataRow message");
  return Status();
}

int64_t RowsFromTag(std::string_view tag, int64_t fallback) {
  static constexpr std::array<std::string_view, 8> kCounted = {
      "INSERT ", "UPDATE ", "DELETE ", "SELECT ", "MOVE ", "FETCH ", "COPY ", "MERGE "};
  bool counted = false;
  for (std::string_view prefix : kCounted) counted = counted || tag.starts_with(prefix);
  if (!counted) return fallback;
  size_t space = tag.rfind(' ');
  std::string_view number = tag.substr(space + 1);
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  return ec == std::errc() && ptr == number.data() + number.size() ? value : fallback;
}

}  // namespace light_internal

namespace {

using light_internal::BodyReader;
using light_internal::Clock;
using light_internal::Deadline;
using light_internal::kCancelRequestCode;
using light_internal::kSslRequestCode;
using light_internal::ParseDataRow;
using light_internal::RowsFromTag;
using light_internal::SslMode;
using light_internal::Target;
using light_internal::Unimplemented;

// Appends protocol messages to a buffer.
class MessageWriter {
 public:
  explicit MessageWriter(std::string* out) : out_(out) {}
  // A message with a type byte; Startup/SSLRequest/Cancel have none (0).
  void Begin(char type) {
    if (type != 0) out_->push_back(type);
    start_ = out_->size();
    U32(0);
  }
  void End() {
    uint32_t length = static_cast<uint32_t>(out_->size() - start_);
    for (int i = 0; i < 4; ++i) {
      (*out_)[start_ + static_cast<size_t>(i)] = static_cast<char>((length >> (24 - 8 * i)) & 0xFF);
    }
  }
  void U32(uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out_->push_back(static_cast<char>((v >> shift) & 0xFF));
  }
  void I32(int32_t v) { U32(static_cast<uint32_t>(v)); }
  void I16(int16_t v) {
    uint16_t u = static_cast<uint16_t>(v);
    out_->push_back(static_cast<char>(u >> 8));
    out_->push_back(static_cast<char>(u & 0xFF));
  }
  void Str(std::string_view s) {
    out_->append(s);
    out_->push_back('\0');
  }
  void Raw(std::string_view s) { out_->append(s); }
  void Byte(char c) { out_->push_back(c); }

 private:
  std::string* out_;
  size_t start_ = 0;
};

int RemainingMs(const Deadline& deadline) {
  if (!deadline) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

// Waits until `fd` is ready for `events`; false with `error` set otherwise.
bool WaitFor(int fd, short events, const Deadline& deadline, std::string* error) {
  while (true) {
    pollfd p{fd, events, 0};
    int ms = RemainingMs(deadline);
    int n = ::poll(&p, 1, ms);
    if (n > 0) return true;
    if (n == 0) {
      *error = "timeout expired";
      return false;
    }
    if (errno != EINTR) {
      *error = std::strerror(errno);
      return false;
    }
  }
}

// One socket with a read buffer. Non-blocking; waits with poll().
class Wire {
 public:
  Wire() = default;
  ~Wire() { Close(); }
  Wire(const Wire&) = delete;
  Wire& operator=(const Wire&) = delete;

  void Adopt(int fd) {
    Close();
    fd_ = fd;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    begin_ = end_ = 0;
  }
  bool open() const { return fd_ >= 0; }

  bool Send(std::string_view data, const Deadline& deadline, std::string* error) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        // Wait until writable, taking in what the server sends meanwhile, so
        // that neither side blocks on a full socket buffer (a long batch).
        pollfd p{fd_, POLLOUT | POLLIN, 0};
        int rc = ::poll(&p, 1, RemainingMs(deadline));
        if (rc == 0) {
          *error = "timeout expired";
          return false;
        }
        if (rc < 0) {
          if (errno == EINTR) continue;
          *error = std::strerror(errno);
          return false;
        }
        if ((p.revents & POLLIN) != 0 && !TakeAvailable(error)) return false;
        continue;
      }
      *error = n < 0 ? std::strerror(errno) : "send failed";
      return false;
    }
    return true;
  }

  // Reads exactly one byte (the SSLRequest answer, which is not a message).
  bool ReadByte(char* out, const Deadline& deadline, std::string* error) {
    if (!Fill(1, deadline, error)) return false;
    *out = buffer_[begin_++];
    return true;
  }

  // Reads one message; `body` stays valid until the next read.
  bool ReadMessage(char* type, std::string_view* body, const Deadline& deadline,
                   std::string* error) {
    if (!Fill(5, deadline, error)) return false;
    BodyReader header(std::string_view(buffer_.data() + begin_ + 1, 4));
    uint32_t length = header.U32();
    if (length < 4 || length > light_internal::kMaxMessageLength) {
      *error = fmt::format("protocol error: message of length {}", length);
      return false;
    }
    if (!Fill(1 + length, deadline, error)) return false;
    *type = buffer_[begin_];
    *body = std::string_view(buffer_.data() + begin_ + 5, length - 4);
    begin_ += 1 + length;
    return true;
  }

 private:
  // Reads what has arrived into the buffer, growing it when full.
  bool TakeAvailable(std::string* error) {
    if (begin_ == end_) begin_ = end_ = 0;
    if (end_ == buffer_.size()) {
      if (begin_ > 0) {
        std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      } else {
        buffer_.resize(buffer_.size() * 2);
      }
    }
    ssize_t got = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, 0);
    if (got > 0) {
      end_ += static_cast<size_t>(got);
      return true;
    }
    if (got == 0) {
      *error = "server closed the connection unexpectedly";
      return false;
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return true;
    *error = std::strerror(errno);
    return false;
  }

  // Makes `n` unread bytes available.
  bool Fill(size_t n, const Deadline& deadline, std::string* error) {
    if (end_ - begin_ >= n) return true;
    if (begin_ == end_) begin_ = end_ = 0;
    if (buffer_.size() - begin_ < n) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
      if (buffer_.size() < n) buffer_.resize(std::max(n, buffer_.size() * 2));
    }
    while (end_ - begin_ < n) {
      ssize_t got = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, 0);
      if (got > 0) {
        end_ += static_cast<size_t>(got);
        continue;
      }
      if (got == 0) {
        *error = "server closed the connection unexpectedly";
        return false;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!WaitFor(fd_, POLLIN, deadline, error)) return false;
        continue;
      }
      *error = std::strerror(errno);
      return false;
    }
    return true;
  }

  int fd_ = -1;
  std::vector<char> buffer_ = std::vector<char>(light_internal::kReadBufferSize);
  size_t begin_ = 0;
  size_t end_ = 0;
};

// An address to connect to, kept for CancelRequest.
struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text;  // "127.0.0.1" or the socket path, for messages
};

// The socket addresses to try for `target`, in order (a Unix socket, or
// what the host name resolves to); false with a libpq-style `error`.
bool AddressesOf(const Target& target, std::vector<Address>* addresses, std::string* error) {
  if (target.unix_socket()) {
    Address a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
    std::string path = target.SocketPath();
    if (path.size() >= sizeof un->sun_path) {
      *error = fmt::format("Unix-domain socket path \"{}\" is too long", path);
      return false;
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
    a.length = static_cast<socklen_t>(sizeof(sockaddr_un));
    a.text = path;
    addresses->push_back(a);
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    std::string port = std::to_string(target.port);
    int rc = ::getaddrinfo(target.host.c_str(), port.c_str(), &hints, &list);
    if (rc != 0) {
      *error = fmt::format("could not translate host name \"{}\" to address: {}", target.host,
                           gai_strerror(rc));
      return false;
    }
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
      Address a;
      std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
      a.length = ai->ai_addrlen;
      char text[INET6_ADDRSTRLEN] = "";
      const void* raw =
          ai->ai_family == AF_INET6
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr);
      if (::inet_ntop(ai->ai_family, raw, text, sizeof text) == nullptr) text[0] = '\0';
      a.text = text;
      addresses->push_back(a);
    }
    ::freeaddrinfo(list);
  }
  return true;
}

// Connects a non-blocking socket to `address` before `deadline`.
int ConnectTo(const Address& address, const Deadline& deadline, std::string* error) {
  int family = reinterpret_cast<const sockaddr*>(&address.storage)->sa_family;
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *error = std::strerror(errno);
    return -1;
  }
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length);
  if (rc != 0 && errno != EINPROGRESS && errno != EINTR) {
    *error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (rc != 0) {
    if (!WaitFor(fd, POLLOUT, deadline, error)) {
      ::close(fd);
      return -1;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 || so_error != 0) {
      *error = std::strerror(so_error != 0 ? so_error : errno);
      ::close(fd);
      return -1;
    }
  }
  if (family != AF_UNIX) {
    int on = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    (void)::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  }
  return fd;
}

// The fields of an ErrorResponse or NoticeResponse body, by type byte.
class ErrorFields {
 public:
  explicit ErrorFields(std::string_view body) {
    BodyReader reader(body);
    while (reader.ok() && !reader.rest().empty()) {
      std::string_view item = reader.CString();
      if (!reader.ok() || item.empty()) break;
      fields_.emplace_back(item[0], item.substr(1));
    }
  }
  std::optional<std::string_view> Get(char code) const {
    for (const auto& [c, value] : fields_) {
      if (c == code) return value;
    }
    return std::nullopt;
  }
  std::string Severity() const {
    std::optional<std::string_view> s = Get('V');
    if (!s) s = Get('S');
    return s ? std::string(*s) : "ERROR";
  }
  Status ToStatus(std::string_view statement) const {
    return ErrorFromFields([this](char code) { return Get(code); }, statement);
  }

 private:
  std::vector<std::pair<char, std::string_view>> fields_;
};

Status NotForThisCall(std::string_view statement, std::string_view what) {
  return Status(StatusCode::kInvalidArgument, std::string(what))
      .With("statement", Excerpt(statement));
}

class LightConnection final : public PgSession {
 public:
  explicit LightConnection(std::string redacted_url) : redacted_url_(std::move(redacted_url)) {}
  ~LightConnection() override {
    if (wire_.open() && !broken_) {
      std::string out;
      MessageWriter w(&out);
      w.Begin('X');
      w.End();
      std::string ignored;
      (void)wire_.Send(out, Clock::now() + std::chrono::milliseconds(100), &ignored);
    }
  }
  LightConnection(const LightConnection&) = delete;
  LightConnection& operator=(const LightConnection&) = delete;

  // Connects, negotiates and authenticates. Errors as OpenLight() returns them.
  Status Start(const Target& target, const ConnectTarget& connect_target, const Deadline& deadline);

  Engine engine() const override { return Engine::kPostgres; }
  const std::string& redacted_url() const override { return redacted_url_; }

  Result<int64_t> Exec(std::string_view sql) override;
  Result<std::vector<int64_t>> ExecBatch(const std::vector<BatchItem>& items) override;
  Result<QueryResult> Query(std::string_view sql, const Params& params) override;
  Status Stream(std::string_view sql, const Params& params, const RowCallback& on_row) override;

  bool InTransaction() const override { return tx_status_ == 'T' || tx_status_ == 'E'; }

  Status CopyOut(std::string_view copy_sql,
                 const std::function<Status(std::string_view chunk)>& /*sink*/) override {
    return NoCopy(copy_sql);
  }
  Result<std::unique_ptr<CopyWriter>> CopyIn(std::string_view copy_sql) override {
    return NoCopy(copy_sql);
  }

  Result<ServerInfo> Info() override { return DescribeServer(*this); }
  int SessionId() const override { return backend_pid_; }

 private:
  static Status NoCopy(std::string_view statement) {
    return Status(StatusCode::kUnimplemented,
                  "the light client does not do COPY; open the connection with libpq "
                  "(ConnectOptions.short_session = false)")
        .With("statement", Excerpt(statement));
  }

  Status CheckReady(std::string_view statement) const override;
  Status CheckStatement(std::string_view sql, size_t params) const;
  // Sends `out_`; on failure the session is marked lost.
  Status Flush(std::string_view statement);
  // Reads the next message that is not asynchronous (notices, parameter
  // changes and notifications are handled here).
  Status Next(char* type, std::string_view* body, std::string_view statement);
  Status Lost(std::string_view statement, std::string_view why);
  // A server error; a FATAL one is kept, as the session ends with it.
  Status ServerError(std::string_view body, std::string_view statement);
  void HandleNotice(std::string_view body);
  // Appends Parse/Bind/(Describe)/Execute for one statement to out_.
  void AppendExtended(std::string_view sql, const Params* params, bool describe);
  void AppendSync();
  // Answers CopyInResponse: COPY FROM STDIN cannot run through these calls.
  void RefuseCopyIn(bool extended);
  // Runs `sql` with the simple protocol; `last_tag` gets the final command tag.
  Result<int64_t> Simple(std::string_view sql, std::string* last_tag);
  // What one call does with the replies to what it sent; ReadReplies does
  // the rest alike for every call (server errors, COPY refused, unexpected
  // messages) up to ReadyForQuery. A hook's non-ok Status (a malformed
  // message) ends the read at once.
  struct ReplyHooks {
    std::string_view call;  // named in the COPY refusal: "Exec", "Query"...
    bool extended = true;   // extended protocol (else simple)
    std::function<std::string_view()> statement;  // the one errors name
    std::function<Status(std::string_view body)> columns;  // RowDescription
    std::function<Status(std::string_view body)> row;      // DataRow
    std::function<void(std::string_view tag)> done;        // CommandComplete
    std::function<void()> empty;                           // EmptyQueryResponse
    std::function<Status(Status)> decorate;  // adds context to errors (batch_index)
  };
  // Reads up to ReadyForQuery: the first error seen, ok if none.
  Status ReadReplies(const ReplyHooks& hooks);
  Status ReadColumns(std::string_view body, std::vector<Column>* columns,
                     std::string_view statement);
  Status AppendRow(std::string_view body, QueryResult* out, std::string_view statement);
  Status RunControl(std::string_view sql, std::string* tag) override;
  // Sends CancelRequest on a new connection and waits for the server to take it.
  void Cancel();
  static std::vector<Column> Columns(std::string_view row_description, bool* ok);

  Wire wire_;
  Address address_;
  std::string redacted_url_;
  std::string out_;
  int backend_pid_ = 0;
  int32_t secret_key_ = 0;
  char tx_status_ = 'I';
  bool broken_ = false;
  std::optional<Status> fatal_;  // a FATAL error the server sent before closing
  std::string server_version_;
  std::vector<std::optional<std::string_view>> fields_;  // scratch for DataRow
};

Status LightConnection::CheckReady(std::string_view statement) const {
  if (broken_) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("the connection to {} was lost; reconnect", redacted_url_))
        .With("statement", Excerpt(statement));
  }
  return Status();
}

Status LightConnection::CheckStatement(std::string_view sql, size_t params) const {
  FERRY_RETURN_IF_ERROR(CheckReady(sql));
  if (sql.find('\0') != std::string_view::npos) {
    return NotForThisCall(sql, "the statement holds a NUL byte, which PostgreSQL cannot take");
  }
  if (params > light_internal::kMaxParams) {
    return NotForThisCall(sql, fmt::format("{} parameters given; PostgreSQL accepts at most {}",
                                           params, light_internal::kMaxParams));
  }
  return Status();
}

Status LightConnection::Lost(std::string_view statement, std::string_view why) {
  broken_ = true;
  wire_.Close();
  std::string reason(why);
  if (fatal_) reason = fatal_->message();
  Status status(StatusCode::kUnavailable,
                fmt::format("connection to {} lost: {}", redacted_url_, reason));
  if (fatal_) {
    for (const auto& [key, value] : fatal_->context()) {
      if (key != "statement") status.Add(key, value);
    }
  }
  return std::move(status).With("statement", Excerpt(statement));
}

Status LightConnection::Flush(std::string_view statement) {
  std::string error;
  bool sent = wire_.Send(out_, std::nullopt, &error);
  out_.clear();
  if (!sent) {
    // The server may have said why before it closed: read what is there.
    char type = 0;
    std::string_view body;
    std::string ignored;
    while (
        wire_.ReadMessage(&type, &body, Clock::now() + std::chrono::milliseconds(200), &ignored)) {
      if (type == 'E') (void)ServerError(body, statement);
    }
    return Lost(statement, error);
  }
  return Status();
}

Status LightConnection::ServerError(std::string_view body, std::string_view statement) {
  ErrorFields fields(body);
  Status status = fields.ToStatus(statement);
  std::string severity = fields.Severity();
  if (severity == "FATAL" || severity == "PANIC") fatal_ = status;
  return status;
}

void LightConnection::HandleNotice(std::string_view body) {
  ErrorFields fields(body);
  if (Notice(fields.Severity(), CleanMessage(fields.Get('M').value_or("")))) return;
  FERRY_LOG_DEBUG("postgres: {}: {}", fields.Severity(),
                  CleanMessage(fields.Get('M').value_or("")));
}

Status LightConnection::Next(char* type, std::string_view* body, std::string_view statement) {
  while (true) {
    std::string error;
    if (!wire_.ReadMessage(type, body, std::nullopt, &error)) return Lost(statement, error);
    switch (*type) {
      case 'N':
        HandleNotice(*body);
        continue;
      case 'A':  // NotificationResponse: ferry does not LISTEN
        continue;
      case 'S': {
        BodyReader reader(*body);
        std::string_view name = reader.CString();
        std::string_view value = reader.CString();
        if (reader.ok() && name == "server_version") server_version_ = std::string(value);
        continue;
      }
      default:
        return Status();
    }
  }
}

void LightConnection::AppendExtended(std::string_view sql, const Params* params, bool describe) {
  MessageWriter w(&out_);
  w.Begin('P');
  w.Str("");
  w.Str(sql);
  w.I16(0);
  w.End();
  w.Begin('B');
  w.Str("");
  w.Str("");
  w.I16(0);  // every parameter in text
  size_t count = params == nullptr ? 0 : params->size();
  w.I16(static_cast<int16_t>(static_cast<uint16_t>(count)));
  for (size_t i = 0; i < count; ++i) {
    const Value& value = (*params)[i];
    if (!value) {
      w.I32(-1);
    } else {
      w.I32(static_cast<int32_t>(value->size()));
      w.Raw(*value);
    }
  }
  w.I16(0);  // every result column in text
  w.End();
  if (describe) {
    w.Begin('D');
    w.Byte('P');
    w.Str("");
    w.End();
  }
  w.Begin('E');
  w.Str("");
  w.I32(0);  // all rows
  w.End();
}

void LightConnection::AppendSync() {
  MessageWriter w(&out_);
  w.Begin('S');
  w.End();
}

void LightConnection::RefuseCopyIn(bool extended) {
  MessageWriter w(&out_);
  w.Begin('f');
  w.Str("ferry: COPY FROM STDIN cannot run through this call; use CopyIn");
  w.End();
  // The server ignored our Sync while it waited for COPY data: send another.
  if (extended) AppendSync();
  std::string error;
  if (!wire_.Send(out_, std::nullopt, &error)) {
    broken_ = true;  // reported by the next read
  }
  out_.clear();
}

std::vector<Column> LightConnection::Columns(std::string_view row_description, bool* ok) {
  BodyReader reader(row_description);
  int16_t count = reader.I16();
  std::vector<Column> columns;
  if (count > 0) columns.reserve(static_cast<size_t>(count));
  for (int16_t i = 0; i < count && reader.ok(); ++i) {
    Column column;
    column.name = std::string(reader.CString());
    reader.I32();  // table oid
    reader.I16();  // column number
    column.type_oid = reader.U32();
    reader.I16();  // type size
    reader.I32();  // type modifier
    reader.I16();  // format
    columns.push_back(std::move(column));
  }
  *ok = reader.ok() && count >= 0;
  return columns;
}

Status LightConnection::ReadReplies(const ReplyHooks& hooks) {
  auto decorated = [&hooks](Status s) {
    return hooks.decorate ? hooks.decorate(std::move(s)) : std::move(s);
  };
  Status error;  // the first error; reported once the server is ready again
  while (true) {
    char type = 0;
    std::string_view body;
    FERRY_RETURN_IF_ERROR(Next(&type, &body, hooks.statement()));
    switch (type) {
      case '1':  // ParseComplete
      case '2':  // BindComplete
      case 'n':  // NoData
      case 's':  // PortalSuspended
      case 'd':  // CopyData / CopyDone of a COPY being refused
      case 'c':
        break;
      case 'T':
        if (hooks.columns) FERRY_RETURN_IF_ERROR(hooks.columns(body));
        break;
      case 'D':
        if (hooks.row) FERRY_RETURN_IF_ERROR(hooks.row(body));
        break;
      case 'C':
        if (hooks.done) hooks.done(BodyReader(body).CString());
        break;
      case 'I':  // EmptyQueryResponse
        if (hooks.empty) hooks.empty();
        break;
      case 'E': {
        Status server = ServerError(body, hooks.statement());
        if (error.ok()) error = decorated(std::move(server));
        break;
      }
      case 'G':  // CopyInResponse, CopyBothResponse: ended here
      case 'W':
      case 'H':  // CopyOutResponse: its data is dropped above
        if (type != 'H') RefuseCopyIn(hooks.extended);
        if (error.ok()) {
          error = decorated(NotForThisCall(
              hooks.statement(),
              fmt::format("COPY to or from the client cannot run through {}; use CopyOut/CopyIn",
                          hooks.call)));
        }
        break;
      case 'Z':
        tx_status_ = body.empty() ? 'I' : body[0];
        return error;
      default:
        return Lost(hooks.statement(), fmt::format("protocol error: unexpected message '{}'", type));
    }
  }
}

Status LightConnection::ReadColumns(std::string_view body, std::vector<Column>* columns,
                                    std::string_view statement) {
  bool ok = false;
  *columns = Columns(body, &ok);
  if (!ok) return Lost(statement, "protocol error: malformed RowDescription");
  return Status();
}

Status LightConnection::AppendRow(std::string_view body, QueryResult* out,
                                  std::string_view statement) {
  if (!ParseDataRow(body, &fields_).ok()) {
    return Lost(statement, "protocol error: malformed DataRow");
  }
  std::vector<Value> row;
  row.reserve(fields_.size());
  for (const auto& field : fields_) row.emplace_back(field ? Value(std::string(*field)) : Value());
  out->rows.push_back(std::move(row));
  return Status();
}

Result<int64_t> LightConnection::Simple(std::string_view sql, std::string* last_tag) {
  FERRY_RETURN_IF_ERROR(CheckStatement(sql, 0));
  MessageWriter w(&out_);
  w.Begin('Q');
  w.Str(sql);
  w.End();
  FERRY_RETURN_IF_ERROR(Flush(sql));
  int64_t rows = 0;
  int64_t returned = 0;  // rows of the current statement's result
  ReplyHooks hooks;
  hooks.call = "Exec";
  hooks.extended = false;
  hooks.statement = [sql] { return sql; };
  hooks.columns = [&returned](std::string_view) {
    returned = 0;
    return Status();
  };
  hooks.row = [&returned](std::string_view) {
    ++returned;
    return Status();
  };
  hooks.done = [&](std::string_view tag) {
    rows += RowsFromTag(tag, returned);
    if (last_tag != nullptr) *last_tag = std::string(tag);
    returned = 0;
  };
  FERRY_RETURN_IF_ERROR(ReadReplies(hooks));
  return rows;
}

Result<int64_t> LightConnection::Exec(std::string_view sql) { return Simple(sql, nullptr); }

Result<QueryResult> LightConnection::Query(std::string_view sql, const Params& params) {
  FERRY_RETURN_IF_ERROR(CheckStatement(sql, params.size()));
  AppendExtended(sql, &params, /*describe=*/true);
  AppendSync();
  FERRY_RETURN_IF_ERROR(Flush(sql));
  QueryResult out;
  ReplyHooks hooks;
  hooks.call = "Query";
  hooks.statement = [sql] { return sql; };
  hooks.columns = [&](std::string_view body) { return ReadColumns(body, &out.columns, sql); };
  hooks.row = [&](std::string_view body) { return AppendRow(body, &out, sql); };
  hooks.done = [&out](std::string_view tag) {
    out.rows_affected = RowsFromTag(tag, static_cast<int64_t>(out.rows.size()));
  };
  FERRY_RETURN_IF_ERROR(ReadReplies(hooks));
  return out;
}

Status LightConnection::Stream(std::string_view sql, const Params& params,
                               const RowCallback& on_row) {
  FERRY_RETURN_IF_ERROR(CheckStatement(sql, params.size()));
  // Cancelling inside a transaction block would abort the transaction.
  const bool may_cancel = tx_status_ == 'I';
  AppendExtended(sql, &params, /*describe=*/true);
  AppendSync();
  FERRY_RETURN_IF_ERROR(Flush(sql));
  std::vector<Column> columns;
  RowView view;
  view.columns = &columns;
  Status stopped;  // what on_row returned to stop early
  ReplyHooks hooks;
  hooks.call = "Stream";
  hooks.statement = [sql] { return sql; };
  hooks.columns = [&](std::string_view body) { return ReadColumns(body, &columns, sql); };
  hooks.row = [&](std::string_view body) -> Status {
    if (!stopped.ok()) return Status();  // draining after an early stop
    if (!ParseDataRow(body, &view.fields).ok()) {
      return Lost(sql, "protocol error: malformed DataRow");
    }
    stopped = on_row(view);
    if (!stopped.ok() && (may_cancel || stopped.code() == StatusCode::kCancelled)) Cancel();
    return Status();
  };
  Status error = ReadReplies(hooks);
  if (!stopped.ok() && !broken_) return stopped;
  return error;
}

// All items, then one Sync: one round trip, and after a failure the server
// skips the remaining items until the Sync (as libpq's pipeline mode).
Result<std::vector<int64_t>> LightConnection::ExecBatch(const std::vector<BatchItem>& items) {
  if (items.empty()) return std::vector<int64_t>();
  FERRY_RETURN_IF_ERROR(RefuseCopyFromStdin(items));
  for (const BatchItem& item : items) {
    FERRY_RETURN_IF_ERROR(
        CheckStatement(item.sql, item.params == nullptr ? 0 : item.params->size()));
  }
  for (const BatchItem& item : items) {
    if (item.result != nullptr) *item.result = QueryResult();
    AppendExtended(item.sql, item.params, /*describe=*/item.result != nullptr);
  }
  AppendSync();
  FERRY_RETURN_IF_ERROR(Flush(items.front().sql));
  std::vector<int64_t> rows;
  rows.reserve(items.size());
  size_t current = 0;     // the item whose replies are being read
  int64_t returned = 0;   // rows of its result
  auto statement = [&]() -> std::string_view {
    return items[std::min(current, items.size() - 1)].sql;
  };
  auto result = [&]() -> QueryResult* {
    return current < items.size() ? items[current].result : nullptr;
  };
  auto finish = [&](int64_t count) {
    if (QueryResult* r = result()) r->rows_affected = count;
    rows.push_back(count);
    returned = 0;
    ++current;
  };
  ReplyHooks hooks;
  hooks.call = "ExecBatch";
  hooks.statement = statement;
  hooks.columns = [&](std::string_view body) -> Status {
    QueryResult* r = result();
    return r == nullptr ? Status() : ReadColumns(body, &r->columns, statement());
  };
  hooks.row = [&](std::string_view body) -> Status {
    ++returned;
    QueryResult* r = result();
    return r == nullptr ? Status() : AppendRow(body, r, statement());
  };
  hooks.done = [&](std::string_view tag) { finish(RowsFromTag(tag, returned)); };
  hooks.empty = [&] { finish(0); };
  hooks.decorate = [&current](Status s) {
    return std::move(s).With("batch_index", std::to_string(current));
  };
  FERRY_RETURN_IF_ERROR(ReadReplies(hooks));
  return rows;
}

Status LightConnection::RunControl(std::string_view sql, std::string* tag) {
  return Simple(sql, tag).status();
}

void LightConnection::Cancel() {
  const Deadline deadline = Clock::now() + std::chrono::seconds(5);
  std::string error;
  int fd = ConnectTo(address_, deadline, &error);
  if (fd < 0) {
    FERRY_LOG_DEBUG("postgres: cancel request failed: {}", error);
    return;
  }
  Wire cancel;
  cancel.Adopt(fd);
  std::string packet;
  MessageWriter w(&packet);
  w.Begin(0);
  w.I32(kCancelRequestCode);
  w.I32(backend_pid_);
  w.I32(secret_key_);
  w.End();
  if (!cancel.Send(packet, deadline, &error)) {
    FERRY_LOG_DEBUG("postgres: cancel request failed: {}", error);
    return;
  }
  // The server closes the connection once it has passed the request on.
  char byte = 0;
  while (cancel.ReadByte(&byte, deadline, &error)) {
  }
}

// ---- Start-up ----------------------------------------------------------

Status LightConnection::Start(const Target& target, const ConnectTarget& connect_target,
                              const Deadline& deadline) {
  auto fail = [&](const std::string& message) { return ConnectError(message, connect_target); };
  auto server_said = [&](std::string_view body) {
    ErrorFields fields(body);
    std::string where = target.unix_socket()
                            ? fmt::format("on socket \"{}\"", target.SocketPath())
                            : fmt::format("at \"{}\", port {}", target.host, target.port);
    return fmt::format("connection to server {} failed: {}:  {}", where, fields.Severity(),
                       fields.Get('M').value_or("(no message)"));
  };

  // 1. A socket.
  std::vector<Address> addresses;
  {
    std::string error;
    if (!AddressesOf(target, &addresses, &error)) return fail(error);
  }
  std::string last_error = "no address to connect to";
  for (const Address& a : addresses) {
    std::string error;
    int fd = ConnectTo(a, deadline, &error);
    if (fd >= 0) {
      wire_.Adopt(fd);
      address_ = a;
      break;
    }
    if (target.unix_socket()) {
      last_error = fmt::format(
          "connection to server on socket \"{}\" failed: {}\n\tIs the server running locally and "
          "accepting connections on that socket?",
          a.text, error);
    } else {
      last_error = fmt::format(
          "connection to server at \"{}\" ({}), port {} failed: {}\n\tIs the server running on "
          "that host and accepting TCP/IP connections?",
          target.host, a.text, target.port, error);
    }
  }
  if (!wire_.open()) return fail(last_error);

  std::string error;
  // 2. TLS negotiation: only to learn that the server would rather not.
  if (!target.unix_socket() && target.ssl_mode == SslMode::kPrefer) {
    MessageWriter w(&out_);
    w.Begin(0);
    w.I32(kSslRequestCode);
    w.End();
    bool sent = wire_.Send(out_, deadline, &error);
    out_.clear();
    char answer = 0;
    if (!sent || !wire_.ReadByte(&answer, deadline, &error)) return fail(error);
    if (answer == 'S') {
      return Unimplemented("the server accepts TLS (sslmode=prefer): libpq negotiates it");
    }
    if (answer != 'N') return Unimplemented("the server answered SSLRequest oddly; libpq copes");
  }

  // 3. StartupMessage.
  {
    MessageWriter w(&out_);
    w.Begin(0);
    w.I32(light_internal::kProtocolVersion3);
    w.Str("user");
    w.Str(target.user);
    w.Str("database");
    w.Str(target.database);
    if (!target.application_name.empty()) {
      w.Str("application_name");
      w.Str(target.application_name);
    }
    w.Str("client_encoding");
    w.Str("UTF8");
    w.Byte('\0');
    w.End();
  }
  auto send = [&]() {
    bool sent = wire_.Send(out_, deadline, &error);
    out_.clear();
    return sent;
  };
  if (!send()) return fail(error);

  // 4. Authentication, then parameters until ReadyForQuery.
  std::optional<light_internal::ScramSha256> scram;
  bool scram_verified = false;
  auto need_password = [&](std::string_view method) -> Status {
    if (target.password) return Status();
    return Unimplemented(fmt::format(
        "the server asks for a password ({}) and none is given: libpq looks in ~/.pgpass", method));
  };
  while (true) {
    char type = 0;
    std::string_view body;
    if (!wire_.ReadMessage(&type, &body, deadline, &error)) return fail(error);
    BodyReader reader(body);
    switch (type) {
      case 'E':
        if (target.ssl_mode == SslMode::kAllow) {
          return Unimplemented(
              "sslmode=allow and the server refused the plain connection: "
              "libpq retries with TLS");
        }
        return fail(server_said(body));
      case 'N':
        HandleNotice(body);
        break;
      case 'v':
        return Unimplemented("the server negotiates the protocol version; libpq does that");
      case 'R': {
        int32_t code = reader.I32();
        if (!reader.ok()) return Unimplemented("malformed authentication request");
        switch (code) {
          case 0:  // AuthenticationOk
            if (scram && !scram_verified) {
              return Status(StatusCode::kPermissionDenied,
                            fmt::format("connecting to {}: the server ended SCRAM authentication "
                                        "without proving that it knows the password",
                                        redacted_url_));
            }
            break;
          case 3: {  // cleartext password
            FERRY_RETURN_IF_ERROR(need_password("password"));
            MessageWriter w(&out_);
            w.Begin('p');
            w.Str(*target.password);
            w.End();
            if (!send()) return fail(error);
            break;
          }
          case 5: {  // MD5
            FERRY_RETURN_IF_ERROR(need_password("md5"));
            std::string_view salt = reader.Take(4);
            if (!reader.ok()) return Unimplemented("malformed MD5 authentication request");
            MessageWriter w(&out_);
            w.Begin('p');
            w.Str(light_internal::Md5Response(target.user, *target.password, salt));
            w.End();
            if (!send()) return fail(error);
            break;
          }
          case 10: {  // SASL: the mechanisms the server offers
            bool scram_offered = false;
            std::vector<std::string> offered;
            while (reader.ok() && !reader.rest().empty()) {
              std::string_view mechanism = reader.CString();
              if (mechanism.empty()) break;
              offered.emplace_back(mechanism);
              scram_offered = scram_offered || mechanism == "SCRAM-SHA-256";
            }
            if (!scram_offered) {
              return Unimplemented(fmt::format("the server offers SASL mechanisms {} only",
                                               fmt::join(offered, ", ")));
            }
            FERRY_RETURN_IF_ERROR(need_password("SCRAM-SHA-256"));
            for (char c : *target.password) {
              if (static_cast<unsigned char>(c) >= 0x80) {
                return Unimplemented("a non-ASCII password needs SASLprep (libpq)");
              }
            }
            uint8_t random[18];
            if (::getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random)) {
              return Unimplemented("getrandom() failed; libpq has its own source");
            }
            scram.emplace(*target.password, "",
                          light_internal::Base64Encode(std::string_view(
                              reinterpret_cast<const char*>(random), sizeof random)));
            std::string first = scram->ClientFirstMessage();
            MessageWriter w(&out_);
            w.Begin('p');
            w.Str("SCRAM-SHA-256");
            w.I32(static_cast<int32_t>(first.size()));
            w.Raw(first);
            w.End();
            if (!send()) return fail(error);
            break;
          }
          case 11: {  // SASLContinue: server-first-message
            if (!scram) return Unimplemented("SASL continuation without SASL");
            Result<std::string> final_message = scram->ClientFinalMessage(reader.rest());
            if (!final_message.ok()) {
              return fail(final_message.status().message());
            }
            MessageWriter w(&out_);
            w.Begin('p');
            w.Raw(*final_message);
            w.End();
            if (!send()) return fail(error);
            break;
          }
          case 12: {  // SASLFinal: server-final-message
            if (!scram) return Unimplemented("SASL final message without SASL");
            Status verified = scram->VerifyServerFinal(reader.rest());
            if (!verified.ok()) {
              return Status(verified.code(),
                            fmt::format("connecting to {}: {}", redacted_url_, verified.message()))
                  .With("url", redacted_url_);
            }
            scram_verified = true;
            break;
          }
          case 2:
            return Unimplemented("the server asks for Kerberos V5 authentication");
          case 7:
          case 8:
            return Unimplemented("the server asks for GSSAPI authentication");
          case 9:
            return Unimplemented("the server asks for SSPI authentication");
          default:
            return Unimplemented(fmt::format("the server asks for authentication method {}", code));
        }
        break;
      }
      case 'S': {
        std::string_view name = reader.CString();
        std::string_view value = reader.CString();
        if (reader.ok() && name == "server_version") server_version_ = std::string(value);
        break;
      }
      case 'K':
        backend_pid_ = reader.I32();
        secret_key_ = reader.I32();
        break;
      case 'Z':
        tx_status_ = body.empty() ? 'I' : body[0];
        return Status();
      default:
        return Unimplemented(fmt::format("unexpected message '{}' during start-up", type));
    }
  }
}

std::string OsUser() {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwuid_r(::geteuid(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr || found->pw_name == nullptr) {
    return "";
  }
  return found->pw_name;
}

bool FileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace

std::optional<std::string> LightIneligible(const Url& url, const GetenvFunction& getenv) {
  // The OS user only matters as a default, which cannot make a URL ineligible
  // unless it is unknown; "-" stands in so this stays free of passwd lookups.
  Result<Target> target =
      light_internal::ResolveTarget(url, getenv, &FileExists, "-", ConnectOptions());
  if (target.ok()) return std::nullopt;
  return target.status().message();
}

Result<std::unique_ptr<Connection>> OpenLight(const Url& url, const ConnectOptions& options) {
  FERRY_ASSIGN_OR_RETURN(Target target, light_internal::ResolveTarget(
                                            url, [](const char* name) { return std::getenv(name); },
                                            &FileExists, OsUser(), options));
  Deadline deadline;
  if (target.connect_timeout_seconds > 0) {
    deadline = Clock::now() + std::chrono::seconds(target.connect_timeout_seconds);
  }
  ConnectTarget connect_target{url.Redacted(), target.host, std::to_string(target.port),
                               target.database, target.user};
  auto connection = std::make_unique<LightConnection>(url.Redacted());
  FERRY_RETURN_IF_ERROR(connection->Start(target, connect_target, deadline));
  return std::unique_ptr<Connection>(std::move(connection));
}

}  // namespace ferry::postgres
