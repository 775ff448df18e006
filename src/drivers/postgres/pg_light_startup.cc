// The light client's start-up: socket, TLS refusal (SSLRequest),
// StartupMessage, authentication, up to ReadyForQuery; and OpenLight.
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

namespace ferry::postgres {
namespace light_internal {

Status LightConnection::Start(const Target& target, const ConnectTarget& connect_target,
                              const Deadline& deadline) {
  FERRY_RETURN_IF_ERROR(ConnectSocket(target, connect_target, deadline));
  FERRY_RETURN_IF_ERROR(SendStartup(target, connect_target, deadline));
  return ReadStartup(target, connect_target, deadline);
}

// 1. A socket: the first address that takes the connection.
Status LightConnection::ConnectSocket(const Target& target, const ConnectTarget& connect_target,
                                      const Deadline& deadline) {
  auto fail = [&](const std::string& message) { return ConnectError(message, connect_target); };
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
  return Status();
}

// 2. TLS negotiation (only to learn that the server would rather not), then
// 3. the StartupMessage.
Status LightConnection::SendStartup(const Target& target, const ConnectTarget& connect_target,
                                    const Deadline& deadline) {
  auto fail = [&](const std::string& message) { return ConnectError(message, connect_target); };
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
  return Status();
}

// 4. Authentication, then parameters until ReadyForQuery.
Status LightConnection::ReadStartup(const Target& target, const ConnectTarget& connect_target,
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
  std::string error;
  StartupAuth auth;
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
        FERRY_RETURN_IF_ERROR(AnswerAuth(code, &reader, target, connect_target, deadline, &auth));
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

// One authentication request (`code`, then `reader` on its body): the
// answer sent, or why only libpq can go on.
Status LightConnection::AnswerAuth(int32_t code, BodyReader* reader_ptr, const Target& target,
                                   const ConnectTarget& connect_target, const Deadline& deadline,
                                   StartupAuth* auth) {
  auto fail = [&](const std::string& message) { return ConnectError(message, connect_target); };
  BodyReader& reader = *reader_ptr;
  std::optional<ScramSha256>& scram = auth->scram;
  bool& scram_verified = auth->scram_verified;
  std::string error;
  auto send = [&]() {
    bool sent = wire_.Send(out_, deadline, &error);
    out_.clear();
    return sent;
  };
  auto need_password = [&](std::string_view method) -> Status {
    if (target.password) return Status();
    return Unimplemented(fmt::format(
        "the server asks for a password ({}) and none is given: libpq looks in ~/.pgpass", method));
  };
  switch (code) {
    case 0:  // AuthenticationOk
      if (scram && !scram_verified) {
        return Status(StatusCode::kPermissionDenied,
                      fmt::format("connecting to {}: the server ended SCRAM authentication "
                                  "without proving that it knows the password",
                                  redacted_url_));
      }
      return Status();
    case 3: {  // cleartext password
      FERRY_RETURN_IF_ERROR(need_password("password"));
      MessageWriter w(&out_);
      w.Begin('p');
      w.Str(*target.password);
      w.End();
      if (!send()) return fail(error);
      return Status();
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
      return Status();
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
      return Status();
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
      return Status();
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
      return Status();
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
  return Status();
}

}  // namespace light_internal

using light_internal::Clock;
using light_internal::Deadline;
using light_internal::LightConnection;
using light_internal::Target;

namespace {

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
