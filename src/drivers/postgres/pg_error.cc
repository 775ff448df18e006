#include "drivers/postgres/pg_error.h"

#include <fmt/format.h>

#include <array>
#include <cctype>

#include "drivers/connection.h"

namespace ferry::postgres {
namespace {

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

bool ContainsNoCase(std::string_view text, std::string_view part) {
  if (part.empty()) return true;
  if (text.size() < part.size()) return false;
  for (size_t i = 0; i + part.size() <= text.size(); ++i) {
    size_t j = 0;
    while (j < part.size() && std::tolower(static_cast<unsigned char>(text[i + j])) ==
                                  std::tolower(static_cast<unsigned char>(part[j]))) {
      ++j;
    }
    if (j == part.size()) return true;
  }
  return false;
}

template <size_t N>
bool ContainsAny(std::string_view text, const std::array<std::string_view, N>& parts) {
  for (std::string_view part : parts) {
    if (ContainsNoCase(text, part)) return true;
  }
  return false;
}

// 1-based line of the 1-based character `position` in `statement` (UTF-8).
std::string LineOfPosition(std::string_view statement, std::string_view position) {
  long chars = 0;
  for (char c : position) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return "";
    chars = chars * 10 + (c - '0');
    if (chars > 1'000'000'000) return "";
  }
  if (chars <= 0) return "";
  long seen = 0;
  int line = 1;
  for (char c : statement) {
    if ((static_cast<unsigned char>(c) & 0xC0) == 0x80) continue;  // continuation byte
    if (++seen >= chars) break;
    if (c == '\n') ++line;
  }
  return std::to_string(line);
}

// The quoted name in `... "name" does not exist`, or "".
std::string QuotedNameBefore(std::string_view message, std::string_view suffix) {
  size_t end = message.find(suffix);
  if (end == std::string_view::npos || end == 0 || message[end - 1] != '"') return "";
  size_t start = message.rfind('"', end - 2);
  if (start == std::string_view::npos) return "";
  return std::string(message.substr(start + 1, end - 2 - start));
}

std::string HostPort(const ConnectTarget& target) {
  if (target.host.empty()) return "the default host";
  if (!target.host.empty() && target.host.front() == '/') {
    return fmt::format("the local socket in {}{}", target.host,
                       target.port.empty() ? "" : " (port " + target.port + ")");
  }
  return target.port.empty() ? target.host : target.host + ":" + target.port;
}

std::string HintFor(StatusCode code, std::string_view message, const ConnectTarget& target) {
  switch (code) {
    case StatusCode::kPermissionDenied: {
      std::string role = QuotedNameBefore(message, " does not exist");
      if (Contains(message, "role \"") && !role.empty()) {
        return fmt::format("check the user in --database, or create the role: CREATE ROLE {} LOGIN",
                           QuoteIdent(role));
      }
      if (ContainsNoCase(message, "pg_hba.conf")) {
        return "add a matching entry to pg_hba.conf on the server (or connect as another user)";
      }
      if (ContainsNoCase(message, "permission denied for database") ||
          ContainsNoCase(message, "CONNECT privilege")) {
        return fmt::format("GRANT CONNECT ON DATABASE {} TO {}",
                           QuoteIdent(target.database.empty() ? "<db>" : target.database),
                           QuoteIdent(target.user.empty() ? "<user>" : target.user));
      }
      if (ContainsNoCase(message, "permission denied")) {
        return fmt::format("check that this OS user may reach {}", HostPort(target));
      }
      return "check the user and password (or ~/.pgpass / PGPASSWORD) in --database";
    }
    case StatusCode::kNotFound: {
      std::string db = QuotedNameBefore(message, " does not exist");
      if (db.empty()) db = target.database;
      std::string flags;
      if (!target.host.empty()) flags += " -h " + target.host;
      if (!target.port.empty()) flags += " -p " + target.port;
      if (!target.user.empty()) flags += " -U " + target.user;
      return fmt::format("create it with: createdb{} {}", flags, db.empty() ? "NAME" : db);
    }
    case StatusCode::kInvalidArgument:
      if (ContainsNoCase(message, "ssl")) return "check sslmode and the TLS settings in --database";
      return "check the connection string: postgres://user@host:port/db or key=value pairs";
    default:
      break;
  }
  if (ContainsNoCase(message, "could not translate host name")) {
    return fmt::format("check the host name '{}' in --database", target.host);
  }
  if (ContainsNoCase(message, "timeout expired")) {
    return fmt::format(
        "{} did not answer in time; check the network, or raise connect_timeout in --database",
        HostPort(target));
  }
  if (ContainsNoCase(message, "too many clients") ||
      ContainsNoCase(message, "remaining connection slots")) {
    return "the server reached max_connections; retry later or close idle sessions";
  }
  if (ContainsNoCase(message, "starting up") || ContainsNoCase(message, "shutting down") ||
      ContainsNoCase(message, "recovery mode")) {
    return "the server is starting or stopping; retry in a moment";
  }
  if (ContainsNoCase(message, "ssl")) return "check sslmode and the TLS settings in --database";
  return fmt::format("is the server running on {}? check --database", HostPort(target));
}

}  // namespace

StatusCode CodeForSqlState(std::string_view s, std::string_view message) {
  if (s.size() != 5) return StatusCode::kUnknown;
  if (s == "42501" || s.starts_with("28")) return StatusCode::kPermissionDenied;
  if (s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "53300" ||
      s == "25P03" || s == "25P04") {
    return StatusCode::kUnavailable;
  }
  if (s == "40001" || s == "40P01" || s == "25P02") return StatusCode::kAborted;
  if (s == "55P03") return StatusCode::kDeadlineExceeded;
  if (s == "57014") {
    if (ContainsNoCase(message, "statement timeout") || ContainsNoCase(message, "lock timeout")) {
      return StatusCode::kDeadlineExceeded;
    }
    return StatusCode::kCancelled;
  }
  if (s == "3D000" || s == "3F000" || s == "42P01") return StatusCode::kNotFound;
  if (s == "42P04" || s == "42P06" || s == "42P07" || s == "42710" || s == "42723") {
    return StatusCode::kAlreadyExists;
  }
  if (s == "25001" || s == "25006") return StatusCode::kFailedPrecondition;
  if (s.starts_with("42") || s.starts_with("22") || s.starts_with("23")) {
    return StatusCode::kInvalidArgument;
  }
  return StatusCode::kUnknown;
}

std::string CleanMessage(std::string_view libpq_message) {
  std::string out = FoldWhitespace(libpq_message);
  for (std::string_view prefix : {"FATAL: ", "ERROR: "}) {
    for (size_t pos = out.find(prefix); pos != std::string::npos; pos = out.find(prefix, pos)) {
      out.erase(pos, prefix.size());
    }
  }
  return RedactSecrets(out);
}

Status ErrorFromFields(const ErrorFieldGetter& field_of, std::string_view statement) {
  auto field = [&field_of](char code) {
    std::optional<std::string_view> value = field_of(code);
    return value ? std::string(*value) : std::string();
  };
  std::string sqlstate = field('C');
  std::string message = CleanMessage(field('M'));
  std::string position = field('P');
  return Status(CodeForSqlState(sqlstate, message), message)
      .With("sqlstate", sqlstate)
      .With("statement", Excerpt(statement))
      .With("position", position)
      .With("line", position.empty() ? "" : LineOfPosition(statement, position))
      .With("detail", RedactSecrets(field('D')))
      .With("hint", RedactSecrets(field('H')))
      .With("where", CleanMessage(field('W')))
      .With("schema", field('s'))
      .With("table", field('t'))
      .With("column", field('c'))
      .With("constraint", field('n'));
}

Status ErrorFromResult(const PGresult* result, std::string_view statement) {
  if (result == nullptr) {
    return Status(StatusCode::kInternal, "libpq returned no result (out of memory?)")
        .With("statement", Excerpt(statement));
  }
  // libpq's PG_DIAG_* codes are the protocol's field type bytes.
  return ErrorFromFields(
      [result](char code) -> std::optional<std::string_view> {
        const char* value = Pq().PQresultErrorField(result, code);
        if (code == PG_DIAG_MESSAGE_PRIMARY && (value == nullptr || *value == '\0')) {
          value = Pq().PQresultErrorMessage(result);
          if (value == nullptr || *value == '\0') {
            value = Pq().PQresStatus(Pq().PQresultStatus(result));
          }
        }
        if (value == nullptr) return std::nullopt;
        return std::string_view(value);
      },
      statement);
}

StatusCode CodeForConnectMessage(std::string_view m) {
  static constexpr std::array<std::string_view, 6> kAuth = {
      "password authentication failed", "no password supplied", "no pg_hba.conf entry",
      "authentication failed",          "permission denied",    "CONNECT privilege"};
  static constexpr std::array<std::string_view, 12> kSyntax = {
      "invalid connection option", "invalid URI",           "missing \"=\" after",
      "unterminated quoted",       "invalid integer value", "invalid port number",
      "invalid sslmode",           "invalid value for",     "invalid percent-encoded",
      "unexpected spaces",         "invalid gssencmode",    "invalid target_session_attrs"};
  if (ContainsAny(m, kAuth)) return StatusCode::kPermissionDenied;
  if (Contains(m, "role \"") && Contains(m, "\" does not exist")) {
    return StatusCode::kPermissionDenied;
  }
  if (Contains(m, "database \"") && Contains(m, "\" does not exist")) return StatusCode::kNotFound;
  if (ContainsAny(m, kSyntax)) return StatusCode::kInvalidArgument;
  if (ContainsNoCase(m, "server does not support SSL") || ContainsNoCase(m, "certificate") ||
      ContainsNoCase(m, "root.crt")) {
    return StatusCode::kInvalidArgument;
  }
  // Refused, unknown host, timeout, missing socket, unreachable network, too
  // many clients, server starting or stopping: all retryable, and so is what
  // we cannot recognise (the attempt never reached a session).
  return StatusCode::kUnavailable;
}

Status ConnectError(std::string_view libpq_message, const ConnectTarget& target) {
  std::string message = CleanMessage(libpq_message);
  if (message.empty()) message = "connection failed";
  StatusCode code = CodeForConnectMessage(message);
  std::string hint = RedactSecrets(HintFor(code, message, target));
  return Status(code, fmt::format("connecting to {}: {}; {}", RedactSecrets(target.redacted_url),
                                  message, hint))
      .With("url", RedactSecrets(target.redacted_url))
      .With("hint", hint);
}

}  // namespace ferry::postgres
