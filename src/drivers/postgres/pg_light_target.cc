// The light client's target: where and as whom to connect, from the URL,
// the environment and defaults; or why only libpq can (ResolveTarget).
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
#include "drivers/postgres/pg_light_internal.h"

namespace ferry::postgres::light_internal {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
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

// A URL parameter or environment variable, nullopt when absent.
using Lookup = std::function<std::optional<std::string>(const char*)>;
using FileExists = std::function<bool(const std::string&)>;

// Parameters and environment variables only libpq acts on.
Status CheckLibpqOnly(const Url& url, const Lookup& param, const Lookup& env) {
  const auto& params = url.params();
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
  return Status();
}

// sslmode, and GSS encryption (which libpq would try).
Status ResolveEncryption(const Lookup& param, const Lookup& env, const FileExists& file_exists,
                         Target* out) {
  Target& target = *out;
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

  return Status();
}

Status ResolveHostPort(const Url& url, const Lookup& param, const Lookup& env, Target* out) {
  Target& target = *out;
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
  return Status();
}

Status ResolveWho(const Url& url, const Lookup& param, const Lookup& env,
                  const std::string& os_user, Target* out) {
  Target& target = *out;
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
  return Status();
}

// application_name and connect_timeout.
Status ResolveSession(const Lookup& param, const Lookup& env, const ConnectOptions& options,
                      Target* out) {
  Target& target = *out;
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
  return Status();
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
  FERRY_RETURN_IF_ERROR(CheckLibpqOnly(url, param, env));
  Target target;
  FERRY_RETURN_IF_ERROR(ResolveEncryption(param, env, file_exists, &target));
  FERRY_RETURN_IF_ERROR(ResolveHostPort(url, param, env, &target));
  FERRY_RETURN_IF_ERROR(ResolveWho(url, param, env, os_user, &target));
  FERRY_RETURN_IF_ERROR(ResolveSession(param, env, options, &target));
  return target;
}

}  // namespace ferry::postgres::light_internal
