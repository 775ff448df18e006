#include "core/url.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <vector>

namespace ferry {
namespace {

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

Status Invalid(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

// RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool IsScheme(std::string_view text) {
  if (text.empty() || !std::isalpha(static_cast<unsigned char>(text[0]))) return false;
  return std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '+' || c == '-' || c == '.';
  });
}

bool IsSecretKey(std::string_view key) { return key == "password" || key == "sslpassword"; }

// Where a secret sits in the text: [value_begin, value_end) reads "***" in
// Url::Redacted(); [cut_begin, cut_end) is left out of ConnectionText().
struct SecretSpan {
  size_t value_begin, value_end, cut_begin, cut_end;
};

// What parsing took out of the text.
struct Secrets {
  std::optional<std::string> password, ssl_password;
  std::vector<SecretSpan> spans;

  void Keep(std::string_view key, std::string value, SecretSpan span) {
    (key == "password" ? password : ssl_password) = std::move(value);
    spans.push_back(span);
  }
};

// `text` with every span replaced by "***" (cut = false) or removed.
std::string Splice(std::string_view text, std::vector<SecretSpan> spans, bool cut) {
  std::sort(spans.begin(), spans.end(),
            [](const SecretSpan& a, const SecretSpan& b) { return a.cut_begin < b.cut_begin; });
  std::string out;
  size_t pos = 0;
  for (const SecretSpan& s : spans) {
    size_t begin = cut ? s.cut_begin : s.value_begin;
    size_t end = cut ? s.cut_end : s.value_end;
    if (begin < pos) continue;  // overlapping spans cannot occur; be safe
    out.append(text.substr(pos, begin - pos));
    if (!cut) out += "***";
    pos = end;
  }
  out.append(text.substr(std::min(pos, text.size())));
  return out;
}

// The query string at text[offset, offset + query.size()); secrets go to
// `secrets`, the rest to `params`.
void ParseQuery(std::string_view query, size_t offset,
                std::map<std::string, std::string>* params, Secrets* secrets) {
  size_t begin = 0;
  while (begin <= query.size()) {
    size_t amp = query.find('&', begin);
    size_t end = amp == std::string_view::npos ? query.size() : amp;
    std::string_view pair = query.substr(begin, end - begin);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string key = PercentDecode(pair.substr(0, eq));
      std::string value = eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
      if (IsSecretKey(key)) {
        size_t value_begin = offset + begin + (eq == std::string_view::npos ? pair.size() : eq + 1);
        // Cut the pair with the '&' after it, or the one before it when last.
        size_t cut_begin = offset + begin;
        size_t cut_end = offset + end;
        if (amp != std::string_view::npos) {
          ++cut_end;
        } else {
          --cut_begin;  // the '?' or '&' before it
        }
        secrets->Keep(key, std::move(value), {value_begin, offset + end, cut_begin, cut_end});
      } else {
        (*params)[key] = value;
      }
    }
    if (amp == std::string_view::npos) break;
    begin = amp + 1;
  }
}

// libpq key=value: keyword = value, value optionally in single quotes with
// backslash escapes. Messages never quote the text: a fragment of it may be
// a password that was not quoted as it should have been.
Status ParseKeyValue(std::string_view text, std::map<std::string, std::string>* out,
                     Secrets* secrets) {
  size_t i = 0;
  int item = 0;
  auto skip_space = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  while (true) {
    skip_space();
    if (i >= text.size()) break;
    ++item;
    size_t key_start = i;
    while (i < text.size() && text[i] != '=' && !std::isspace(static_cast<unsigned char>(text[i])))
      ++i;
    std::string key(text.substr(key_start, i - key_start));
    skip_space();
    if (i >= text.size() || text[i] != '=') {
      return Invalid(fmt::format(
          "connection string: item {} has no '=' (write keyword=value pairs; quote a value "
          "holding spaces: password='a b')",
          item));
    }
    ++i;
    skip_space();
    size_t value_begin = i;
    std::string value;
    if (i < text.size() && text[i] == '\'') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        char c = text[i++];
        if (c == '\\' && i < text.size()) {
          value += text[i++];
        } else if (c == '\'') {
          closed = true;
          break;
        } else {
          value += c;
        }
      }
      if (!closed) {
        return Invalid(fmt::format("connection string: unterminated quote in item {}", item));
      }
    } else {
      while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        value += text[i++];
      }
    }
    if (IsSecretKey(key)) {
      size_t cut_end = i;
      while (cut_end < text.size() && std::isspace(static_cast<unsigned char>(text[cut_end])))
        ++cut_end;
      secrets->Keep(key, std::move(value), {value_begin, i, key_start, cut_end});
    } else {
      (*out)[key] = value;
    }
  }
  return Status();
}

// Where the userinfo of "scheme://" + rest ends (the index of its '@' in
// rest), as libpq reads it: the host part starts after the last '@' before
// the first '/' and before any '?' that follows the first '@'. npos: none.
size_t UserinfoEnd(std::string_view rest) {
  std::string_view region = rest.substr(0, rest.find('/'));
  size_t first_at = region.find('@');
  if (first_at == std::string_view::npos) return std::string_view::npos;
  return region.substr(0, region.find('?', first_at)).rfind('@');
}

constexpr const char* kEncodeHint =
    "; a password holding '/' must be percent-encoded (%2F), as must a '%' (%25)";

}  // namespace

std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() &&
        std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      int v = 0;
      std::from_chars(text.data() + i + 1, text.data() + i + 3, v, 16);
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string RedactSecrets(std::string_view text) {
  std::string out(text);
  // 1. userinfo passwords: scheme://user:secret@host, read as Url::Parse
  //    reads them (the text ends at white space or a quote).
  for (size_t pos = out.find("://"); pos != std::string::npos; pos = out.find("://", pos + 3)) {
    size_t start = pos + 3;
    size_t end = out.find_first_of(" \t\n'\"", start);
    if (end == std::string::npos) end = out.size();
    size_t at = UserinfoEnd(std::string_view(out).substr(start, end - start));
    if (at == std::string::npos) continue;
    at += start;
    size_t colon = out.find(':', start);
    if (colon == std::string::npos || colon > at) continue;
    out.replace(colon + 1, at - colon - 1, "***");
  }
  // 2. password=value and sslpassword=value in key=value strings and query
  //    parameters (quoted, or up to white space not escaped by '\').
  std::string lower = out;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto boundary = [&lower](size_t at) {
    return at == 0 || std::isspace(static_cast<unsigned char>(lower[at - 1])) ||
           lower[at - 1] == '?' || lower[at - 1] == '&';
  };
  size_t pos = 0;
  while ((pos = lower.find("password", pos)) != std::string::npos) {
    size_t k = pos + 8;
    bool at_boundary = boundary(pos) || (pos >= 3 && lower.compare(pos - 3, 3, "ssl") == 0 &&
                                         boundary(pos - 3));
    while (k < lower.size() && lower[k] == ' ') ++k;
    if (!at_boundary || k >= lower.size() || lower[k] != '=') {
      pos += 8;
      continue;
    }
    ++k;
    while (k < lower.size() && lower[k] == ' ') ++k;
    size_t vend = k;
    if (vend < out.size() && out[vend] == '\'') {
      ++vend;
      while (vend < out.size() && out[vend] != '\'') {
        if (out[vend] == '\\') ++vend;
        ++vend;
      }
      if (vend < out.size()) ++vend;
    } else {
      while (vend < out.size() && !std::isspace(static_cast<unsigned char>(out[vend])) &&
             out[vend] != '&') {
        if (out[vend] == '\\') ++vend;
        ++vend;
      }
    }
    vend = std::min(vend, out.size());
    out.replace(k, vend - k, "***");
    lower.replace(k, vend - k, "***");
    pos = k + 3;
  }
  return out;
}

namespace {

// The path of sqlite:PATH, sqlite://PATH or sqlite:///ABSOLUTE, decoded.
std::string SqlitePath(std::string_view rest) {
  std::string path;
  if (rest.substr(0, 3) == "///") {
    path = std::string(rest.substr(2));  // keep one leading '/'
  } else if (rest.substr(0, 2) == "//") {
    path = std::string(rest.substr(2));
  } else {
    path = std::string(rest);
  }
  return PercentDecode(path);
}

// The engine's scheme for a URL's scheme (aliases folded); TLS and cluster
// for the Redis forms.
std::string CanonicalScheme(std::string_view given, bool* tls, bool* cluster) {
  std::string scheme(given);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme == "postgres" || scheme == "postgresql") return "postgres";
  // drivers/cql parses the host list h1:p1,h2:p2 itself.
  if (scheme == "cql" || scheme == "scylla" || scheme == "cassandra") return "cql";
  if (scheme == "redis" || scheme == "rediss" || scheme == "redis+cluster" ||
      scheme == "rediss+cluster") {
    *tls = scheme == "rediss" || scheme == "rediss+cluster";
    *cluster = scheme.ends_with("+cluster");
    return "redis";
  }
  return scheme;  // the registry reports unknown schemes
}

// host[:port], [v6]:port, or h1:p1,h2:p2 (libpq multi-host: kept as given).
struct HostPort {
  std::string host;
  int port = 0;
};
Result<HostPort> ParseAuthority(std::string_view authority, const std::string& where,
                                const char* hint) {
  HostPort out;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Invalid(fmt::format("{}: unclosed '[' in the host", where));
    }
    out.host = std::string(authority.substr(1, close - 1));
    authority = authority.substr(close + 1);
    if (!authority.empty() && authority.front() == ':') {
      std::string_view p = authority.substr(1);
      auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), out.port);
      if (ec != std::errc() || ptr != p.data() + p.size()) {
        return Invalid(fmt::format("{}: the port is not a number{}", where, hint));
      }
    }
  } else if (authority.find(',') != std::string_view::npos) {
    out.host = std::string(authority);
  } else {
    size_t colon = authority.rfind(':');
    out.host = PercentDecode(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      std::string_view p = authority.substr(colon + 1);
      auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), out.port);
      if (ec != std::errc() || ptr != p.data() + p.size() || out.port <= 0 ||
          out.port > 65535) {
        return Invalid(
            fmt::format("{}: the port is not a number from 1 to 65535{}", where, hint));
      }
    }
  }
  return out;
}

// libpq's key=value form: the fields a Url keeps, the rest as parameters.
Status ReadKeyValue(std::string_view text, std::string* user, std::string* host, int* port,
                    std::string* database, std::map<std::string, std::string>* params,
                    Secrets* secrets) {
  std::map<std::string, std::string> kv;
  FERRY_RETURN_IF_ERROR(ParseKeyValue(text, &kv, secrets));
  for (auto& [k, v] : kv) {
    if (k == "user") {
      *user = v;
    } else if (k == "host" || k == "hostaddr") {
      if (host->empty() || k == "host") *host = v;
    } else if (k == "port") {
      std::from_chars(v.data(), v.data() + v.size(), *port);
    } else if (k == "dbname") {
      *database = v;
    } else {
      (*params)[k] = v;
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Url> Url::Parse(std::string_view input) {
  std::string_view text = Trim(input);
  Url url;
  Secrets secrets;
  auto finish = [&]() -> Result<Url> {
    url.has_password_ = url.has_password_ || secrets.password.has_value();
    if (secrets.password) url.password_ = Secret(std::move(*secrets.password));
    if (secrets.ssl_password) url.ssl_password_ = Secret(std::move(*secrets.ssl_password));
    url.connection_text_ = Splice(text, secrets.spans, /*cut=*/true);
    url.redacted_ = Splice(text, secrets.spans, /*cut=*/false);
    return std::move(url);
  };
  if (text.empty()) {
    return Invalid("empty database URL: pass --database URL or set DATABASE_URL");
  }

  // SQLite.
  if (StartsWithNoCase(text, "sqlite:") || StartsWithNoCase(text, "sqlite3:")) {
    size_t offset = text.find(':') + 1;
    std::string_view rest = text.substr(offset);
    size_t q = rest.find('?');
    if (q != std::string_view::npos) {
      ParseQuery(rest.substr(q + 1), offset + q + 1, &url.params_, &secrets);
      rest = rest.substr(0, q);
    }
    url.scheme_ = "sqlite";
    url.database_ = SqlitePath(rest);
    if (url.database_.empty()) {
      return Invalid("sqlite URL: no file path after 'sqlite:' (try sqlite:ferry.db)");
    }
    return finish();
  }

  // A URL starts with its scheme; "://" anywhere else (in a key=value
  // password, say) does not make one.
  size_t sep = text.find("://");
  if (sep != std::string_view::npos && !IsScheme(text.substr(0, sep))) sep = std::string_view::npos;
  if (sep == std::string_view::npos) {
    // libpq key=value string.
    if (text.find('=') != std::string_view::npos) {
      url.scheme_ = "postgres";
      url.key_value_ = true;
      FERRY_RETURN_IF_ERROR(ReadKeyValue(text, &url.user_, &url.host_, &url.port_, &url.database_,
                                         &url.params_, &secrets));
      return finish();
    }
    if (EndsWith(text, ".db") || EndsWith(text, ".sqlite") || EndsWith(text, ".sqlite3") ||
        text == ":memory:") {
      url.scheme_ = "sqlite";
      url.database_ = std::string(text);
      return finish();
    }
    return Invalid(
        "the database URL is not one ferry reads: use postgres://user@host/db, "
        "host=... dbname=... (libpq key=value), sqlite:path.db or redis://host:6379");
  }

  url.scheme_ = CanonicalScheme(text.substr(0, sep), &url.tls_, &url.redis_cluster_);
  const std::string where = url.scheme_ + " URL";

  // userinfo first (libpq's order: it may hold '?', '#' and '@').
  size_t rest_begin = sep + 3;
  std::string_view rest = text.substr(rest_begin);
  size_t at = UserinfoEnd(rest);
  bool has_userinfo = at != std::string_view::npos;
  if (has_userinfo) {
    std::string_view userinfo = rest.substr(0, at);
    size_t colon = userinfo.find(':');
    url.user_ = PercentDecode(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) {
      url.has_password_ = true;
      secrets.Keep("password", PercentDecode(userinfo.substr(colon + 1)),
                   {rest_begin + colon + 1, rest_begin + at, rest_begin + colon, rest_begin + at});
    }
    rest_begin += at + 1;
    rest = rest.substr(at + 1);
  }
  // An '@' after the userinfo (or without one): most likely a password
  // holding a raw '/' or '?'. The text cannot be split safely, so it is
  // refused, quoting none of it.
  if (rest.find('@') != std::string_view::npos) {
    return Invalid(fmt::format(
        "{}: an '@' after the host (write '@' in a path or parameter as %40){}", where,
        kEncodeHint));
  }
  size_t q = rest.find('?');
  if (q != std::string_view::npos) {
    ParseQuery(rest.substr(q + 1), rest_begin + q + 1, &url.params_, &secrets);
    rest = rest.substr(0, q);
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  const char* hint = text.find('@') != std::string_view::npos ? kEncodeHint : "";
  FERRY_ASSIGN_OR_RETURN(HostPort hp, ParseAuthority(authority, where, hint));
  url.host_ = std::move(hp.host);
  url.port_ = hp.port;
  url.database_ = PercentDecode(path);
  if (url.scheme_ == "cql" && url.port_ == 0 && url.host_.find(',') == std::string::npos) {
    url.port_ = 9042;
  }
  if (url.scheme_ == "redis") {
    if (url.database_.empty()) url.database_ = "0";
    if (!std::all_of(url.database_.begin(), url.database_.end(),
                     [](unsigned char c) { return std::isdigit(c); })) {
      return Invalid(fmt::format("{}: the database after '/' must be a number (0-15)", where));
    }
    if (url.port_ == 0) url.port_ = 6379;
  }
  return finish();
}

}  // namespace ferry
