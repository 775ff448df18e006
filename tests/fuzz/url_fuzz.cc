// Fuzzes Url::Parse and RedactSecrets (core/url.h).
//
// Two parts per input:
//  1. the bytes as a URL, and as free text for RedactSecrets: nothing may
//     crash, and whatever parses keeps its texts no longer than the input;
//  2. a URL built from the bytes in one of the forms a password can take
//     (raw or percent-encoded userinfo, query parameter, libpq key=value
//     quoted or backslash-escaped). The password always holds '~' and no
//     other part does: when the URL parses, no text the Url shows (Redacted,
//     ConnectionText, user, host, database, params) may hold a '~', and the
//     forms that encode the password exactly must give it back unchanged.
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/url.h"

namespace {

using ferry::Url;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "url_fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

std::string Without(std::string_view text, std::string_view drop) {
  std::string out;
  for (char c : text) {
    bool space = std::isspace(static_cast<unsigned char>(c)) != 0;  // also \v, \f
    if (!space && drop.find(c) == std::string_view::npos) out += c;
  }
  return out;
}

std::string PercentEncodeAll(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string KeyValueEscaped(std::string_view text, bool quoted) {
  std::string out = quoted ? "'" : "";
  for (char c : text) {
    bool escape = c == '\\' || c == '\'' || (!quoted && std::isspace(static_cast<unsigned char>(c)));
    if (escape) out += '\\';
    out += c;
  }
  return out + (quoted ? "'" : "");
}

void NoTilde(const std::string& text, const char* what) {
  Check(text.find('~') == std::string::npos, what);
}

void ParseFree(std::string_view text) {
  auto url = Url::Parse(text);
  if (url.ok()) {
    Check(url->ConnectionText().size() <= text.size(), "ConnectionText longer than the input");
    Check(url->params().count("password") == 0, "password listed in params");
    Check(url->params().count("sslpassword") == 0, "sslpassword listed in params");
  }
  (void)ferry::RedactSecrets(text);
}

// Splits `rest` at the first `sep` (consumed).
std::string Take(std::string_view* rest, char sep) {
  size_t at = rest->find(sep);
  std::string out(rest->substr(0, at));
  *rest = at == std::string_view::npos ? std::string_view() : rest->substr(at + 1);
  return out;
}

void ParseBuilt(std::string_view input) {
  if (input.empty()) return;
  int form = static_cast<unsigned char>(input[0]) % 6;
  std::string_view rest = input.substr(1);
  // Parts separated by NUL bytes: password, user, host, database, extra.
  std::string password = "~" + Take(&rest, '\0');
  using namespace std::string_view_literals;
  std::string user = Without(Take(&rest, '\0'), "~%:@/?#\0 \t\n\r'\\="sv);
  std::string host = Without(Take(&rest, '\0'), "~%:@/?#,[]\0 \t\n\r'\\="sv);
  std::string db = Without(Take(&rest, '\0'), "~%@/?#\0 \t\n\r'\\="sv);
  std::string extra = Without(rest, "~%@#\0 \t\n\r'\\"sv);
  if (host.empty()) host = "h";
  if (user.empty()) user = "u";
  if (db.empty()) db = "d";
  std::string text;
  bool exact = true;
  switch (form) {
    case 0: text = "postgres://" + user + ":" + PercentEncodeAll(password) + "@" + host + "/" + db;
            break;
    case 1: text = "postgres://" + user + ":" + password + "@" + host + "/" + db + "?" + extra;
            exact = false;  // raw: may not parse, must not leak
            break;
    case 2: text = "postgres://" + user + "@" + host + "/" + db + "?password=" +
                   PercentEncodeAll(password) + (extra.empty() ? "" : "&" + extra);
            exact = extra.find("password") == std::string::npos;
            break;
    case 3: text = "host=" + host + " user=" + user + " password=" + KeyValueEscaped(password, true) +
                   " dbname=" + db;
            break;
    case 4: text = "host=" + host + " password=" + KeyValueEscaped(password, false) + " dbname=" + db;
            break;
    default: text = "redis://:" + PercentEncodeAll(password) + "@" + host + ":6379/0";
  }
  auto url = Url::Parse(text);
  if (!url.ok()) {
    Check(url.status().ToString().find('~') == std::string::npos, "parse error quotes the password");
    Check(!exact, "an exactly encoded URL failed to parse");
    return;
  }
  NoTilde(url->Redacted(), "Redacted() holds the password");
  NoTilde(url->ConnectionText(), "ConnectionText() holds the password");
  NoTilde(url->user(), "user() holds the password");
  NoTilde(url->host(), "host() holds the password");
  NoTilde(url->database(), "database() holds the password");
  for (const auto& [k, v] : url->params()) {
    NoTilde(k, "a parameter name holds the password");
    NoTilde(v, "a parameter value holds the password");
  }
  NoTilde(ferry::RedactSecrets(url->Redacted()), "RedactSecrets(Redacted()) holds the password");
  if (exact) Check(url->password().Reveal() == password, "password changed on the way through");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  ParseFree(input);
  ParseBuilt(input);
  return 0;
}
