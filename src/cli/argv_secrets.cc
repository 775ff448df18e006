#include "cli/argv_secrets.h"

#include <cstring>
#include <string_view>

#include "core/url.h"

namespace ferry::cli {
namespace {

// Where the value of `arg` starts: after "--flag=", after "-d" glued to its
// value, else at 0.
size_t ValueStart(std::string_view arg) {
  if (arg.rfind("--", 0) == 0) {
    size_t eq = arg.find('=');
    return eq == std::string_view::npos ? 0 : eq + 1;
  }
  if (arg.size() > 2 && arg.rfind("-d", 0) == 0) return 2;
  return 0;
}

// Overwrites the secrets of `arg` (a C string in argv's memory) in place.
void Hide(char* arg) {
  std::string_view text(arg);
  size_t start = ValueStart(text);
  std::string_view value = text.substr(start);
  if (value.find("://") == std::string_view::npos && value.find('=') == std::string_view::npos) {
    return;  // neither a URL nor a key=value string
  }
  auto url = Url::Parse(value);
  if (!url.ok() || (!url->has_password() && url->ssl_password().empty())) return;
  const std::string& shown = url->ConnectionText();  // never longer than the value
  size_t n = std::min(shown.size(), value.size());
  std::memcpy(arg + start, shown.data(), n);
  std::memset(arg + start + n, 0, value.size() - n);
}

}  // namespace

std::vector<std::string> TakeArgsHidingSecrets(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (int i = 1; i < argc; ++i) Hide(argv[i]);
  return args;
}

}  // namespace ferry::cli
