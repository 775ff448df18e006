#include "core/url.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

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

Status ParseQuery(std::string_view query, std::map<std::string, std::string>* params) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
    (*params)[key] = value;
  }
  return Status();
}

// libpq key=value: keyword = value, value optionally in single quotes with
// backslash escapes.
Status ParseKeyValue(std::string_view text, std::map<std::string, std::string>* out) {
  size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  while (true) {
    skip_space();
    if (i >= text.size()) break;
    size_t key_start = i;
    while (i < text.size() && text[i] != '=' && !std::isspace(static_cast<unsigned char>(text[i])))
      ++i;
    std::string key(text.substr(key_start, i - key_start));
    skip_space();
    if (i >= text.size() || text[i] != '=') {
      return Invalid(fmt::format("connection string: missing '=' after '{}'", key));
    }
    ++i;
    skip_space();
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
      if (!closed) return Invalid(fmt::format("connection string: unterminated quote in '{}'", key));
    } else {
      while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        value += text[i++];
      }
    }
    (*out)[key] = value;
  }
  return Status();
}

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
  // 1. userinfo passwords: scheme://user:secret@host
  for (size_t pos = out.find("://"); pos != std::string::npos; pos = out.find("://", pos + 3)) {
    size_t start = pos + 3;
    size_t end = out.find_first_of("/?# \t\n'\"", start);
    if (end == std::string::npos) end = out.size();
    size_t at = out.rfind('@', end);
    if (at == std::string::npos || at < start) continue;
    size_t colon = out.find(':', start);
    if (colon == std::string::npos || colon > at) continue;
    out.replace(colon + 1, at - colon - 1, "***");
  }
  // 2. password=value in key=value strings and query parameters.
  std::string lower = out;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  size_t pos = 0;
  while ((pos = lower.find("password", pos)) != std::string::npos) {
    size_t k = pos + 8;
    bool boundary = pos == 0 || std::isspace(static_cast<unsigned char>(lower[pos - 1])) ||
                    lower[pos - 1] == '?' || lower[pos - 1] == '&';
    while (k < lower.size() && lower[k] == ' ') ++k;
    if (!boundary || k >= lower.size() || lower[k] != '=') {
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

Result<Url> Url::Parse(std::string_view input) {
  std::string_view text = Trim(input);
  Url url;
  url.raw_ = std::string(text);
  if (text.empty()) {
    return Invalid("empty database URL: pass --database URL or set DATABASE_URL");
  }

  // SQLite.
  if (StartsWithNoCase(text, "sqlite:") || StartsWithNoCase(text, "sqlite3:")) {
    std::string_view rest = text.substr(text.find(':') + 1);
    size_t q = rest.find('?');
    if (q != std::string_view::npos) {
      FERRY_RETURN_IF_ERROR(ParseQuery(rest.substr(q + 1), &url.params_));
      rest = rest.substr(0, q);
    }
    url.scheme_ = "sqlite";
    if (rest.substr(0, 3) == "///") {
      url.database_ = std::string(rest.substr(2));  // keep one leading '/'
    } else if (rest.substr(0, 2) == "//") {
      url.database_ = std::string(rest.substr(2));
    } else {
      url.database_ = std::string(rest);
    }
    url.database_ = PercentDecode(url.database_);
    if (url.database_.empty()) {
      return Invalid(fmt::format("'{}': no file path after 'sqlite:' (try sqlite:ferry.db)",
                                 RedactSecrets(text)));
    }
    return url;
  }

  size_t sep = text.find("://");
  if (sep == std::string_view::npos) {
    // libpq key=value string.
    if (text.find('=') != std::string_view::npos) {
      url.scheme_ = "postgres";
      url.key_value_ = true;
      std::map<std::string, std::string> kv;
      FERRY_RETURN_IF_ERROR(ParseKeyValue(text, &kv));
      for (auto& [k, v] : kv) {
        if (k == "password") {
          url.has_password_ = true;
        } else if (k == "user") {
          url.user_ = v;
        } else if (k == "host" || k == "hostaddr") {
          if (url.host_.empty() || k == "host") url.host_ = v;
        } else if (k == "port") {
          std::from_chars(v.data(), v.data() + v.size(), url.port_);
        } else if (k == "dbname") {
          url.database_ = v;
        } else {
          url.params_[k] = v;
        }
      }
      return url;
    }
    if (EndsWith(text, ".db") || EndsWith(text, ".sqlite") || EndsWith(text, ".sqlite3") ||
        text == ":memory:") {
      url.scheme_ = "sqlite";
      url.database_ = std::string(text);
      return url;
    }
    return Invalid(fmt::format(
        "'{}' is not a database URL: use postgres://user@host/db, sqlite:path.db or "
        "redis://host:6379",
        RedactSecrets(text)));
  }

  std::string scheme(text.substr(0, sep));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme == "postgres" || scheme == "postgresql") {
    url.scheme_ = "postgres";
  } else if (scheme == "cql" || scheme == "scylla" || scheme == "cassandra") {
    url.scheme_ = "cql";  // drivers/cql parses the host list h1:p1,h2:p2 itself
  } else if (scheme == "redis" || scheme == "rediss" || scheme == "redis+cluster" ||
             scheme == "rediss+cluster") {
    url.scheme_ = "redis";
    url.tls_ = scheme == "rediss" || scheme == "rediss+cluster";
    url.redis_cluster_ = scheme.ends_with("+cluster");
  } else {
    url.scheme_ = scheme;  // the registry reports unknown schemes
  }

  std::string_view rest = text.substr(sep + 3);
  size_t q = rest.find('?');
  if (q != std::string_view::npos) {
    FERRY_RETURN_IF_ERROR(ParseQuery(rest.substr(q + 1), &url.params_));
    rest = rest.substr(0, q);
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    url.user_ = PercentDecode(userinfo.substr(0, colon));
    url.has_password_ = colon != std::string_view::npos;
  }
  // host[:port], [v6]:port, or h1:p1,h2:p2 (libpq multi-host: keep as given).
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Invalid(fmt::format("'{}': unclosed '[' in host", RedactSecrets(text)));
    }
    url.host_ = std::string(authority.substr(1, close - 1));
    authority = authority.substr(close + 1);
    if (!authority.empty() && authority.front() == ':') {
      std::string_view p = authority.substr(1);
      auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), url.port_);
      if (ec != std::errc() || ptr != p.data() + p.size()) {
        return Invalid(fmt::format("'{}': port '{}' is not a number", RedactSecrets(text), p));
      }
    }
  } else if (authority.find(',') != std::string_view::npos) {
    url.host_ = std::string(authority);
  } else {
    size_t colon = authority.rfind(':');
    url.host_ = PercentDecode(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      std::string_view p = authority.substr(colon + 1);
      auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), url.port_);
      if (ec != std::errc() || ptr != p.data() + p.size() || url.port_ <= 0 ||
          url.port_ > 65535) {
        return Invalid(fmt::format("'{}': port '{}' is not a number from 1 to 65535",
                                   RedactSecrets(text), p));
      }
    }
  }
  url.database_ = PercentDecode(path);
  if (url.scheme_ == "cql" && url.port_ == 0 && url.host_.find(',') == std::string::npos) {
    url.port_ = 9042;
  }
  if (url.scheme_ == "redis") {
    if (url.database_.empty()) url.database_ = "0";
    if (!std::all_of(url.database_.begin(), url.database_.end(),
                     [](unsigned char c) { return std::isdigit(c); })) {
      return Invalid(fmt::format("'{}': redis database '{}' must be a number",
                                 RedactSecrets(text), url.database_));
    }
    if (url.port_ == 0) url.port_ = 6379;
  }
  return url;
}

std::string Url::Redacted() const { return RedactSecrets(raw_); }

}  // namespace ferry
