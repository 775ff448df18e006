#include "core/toml_guard.h"

#include <cstddef>
#include <string>

namespace ferry {
namespace {

constexpr std::string_view kOutside =
    "a character outside ASCII where TOML allows only ASCII (outside quotes and comments): "
    "quote the value";
constexpr std::string_view kAfterBackslash =
    "a character outside ASCII right after a backslash (or after the line break a line-ending "
    "backslash skips): start the continued text with an ASCII character or write it as \\uXXXX";

bool NonAscii(char c) { return static_cast<unsigned char>(c) >= 0x80; }

struct Scanner {
  std::string_view text;
  size_t i = 0;
  int line = 1;

  // After a backslash in a basic string: the white space and line breaks a
  // line-ending backslash would skip, then true when a non-ASCII byte follows.
  bool UnsafeEscape() {
    size_t j = i + 1;
    int lines = 0;
    while (j < text.size() && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' ||
                               text[j] == '\n')) {
      if (text[j] == '\n') ++lines;
      ++j;
    }
    if (j < text.size() && NonAscii(text[j])) {
      line += lines;
      return true;
    }
    return false;
  }

  // Skips a quoted string opened by `quote` at i; false at an unsafe escape.
  bool SkipString(char quote) {
    bool multi = text.substr(i, 3) == std::string(3, quote);
    size_t close = multi ? 3 : 1;
    i += close;
    while (i < text.size()) {
      char d = text[i];
      if (d == '\n') {
        if (!multi) return true;  // unterminated: toml++ says so
        ++line;
        ++i;
      } else if (quote == '"' && d == '\\') {
        if (UnsafeEscape()) return false;
        if (i + 1 < text.size() && text[i + 1] == '\n') ++line;
        i += 2;
      } else if (text.compare(i, close, std::string(close, quote)) == 0) {
        i += close;
        return true;
      } else {
        ++i;
      }
    }
    return true;
  }
};

}  // namespace

// Where toml++ stands outside strings, as far as the guard needs: a bare
// run (a key or a value written without quotes) goes on until a character
// that ends it, and a quote inside a bare run opens no string. toml++ scans
// a bare value up to a value terminator, asking of each character whether
// it is white space; that question is what goes wrong (`d=6"é`, `0=4="é`).
class Layout {
 public:
  // Called for each character outside strings and comments; true when a
  // quote here opens a string.
  bool OpensString() const { return !bare_; }

  void Step(char c) {
    if (c == '\n') {
      bare_ = false;
      if (open_.empty()) value_side_ = false;
      return;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      bare_ = false;
      return;
    }
    if (bare_ && !EndsBare(c)) return;
    bare_ = false;
    switch (c) {
      case '=': value_side_ = true; break;
      case '[': open_.push_back(value_side_ ? '[' : 'h'); break;
      case '{': open_.push_back('{'); value_side_ = false; break;
      case ',': value_side_ = open_.empty() || open_.back() != '{'; break;
      case ']':
      case '}':
        if (!open_.empty()) {
          if (open_.back() == 'h') value_side_ = false;
          open_.pop_back();
        }
        break;
      case '.': break;
      default: bare_ = true;
    }
  }

  // A quoted string ended: what follows is outside any bare run.
  void AfterString() { bare_ = false; }

 private:
  // Keys end at '=', '.', ']' (a header); values at ',', ']', '}'.
  bool EndsBare(char c) const {
    if (!value_side_) return c == '=' || c == '.' || c == ']';
    return c == ',' || c == ']' || c == '}';
  }

  std::string open_;  // '[' array, '{' inline table, 'h' table header
  bool value_side_ = false;
  bool bare_ = false;
};

TomlUnsafe TomlUnsafeSpot(std::string_view text) {
  Scanner s{text};
  Layout layout;
  while (s.i < text.size()) {
    char c = text[s.i];
    if (c == '\n') {
      ++s.line;
      ++s.i;
      layout.Step(c);
    } else if (c == '#') {
      while (s.i < text.size() && text[s.i] != '\n') ++s.i;
    } else if ((c == '"' || c == '\'') && layout.OpensString()) {
      if (!s.SkipString(c)) return {s.line, kAfterBackslash};
      layout.AfterString();
    } else if (NonAscii(c)) {
      return {s.line, kOutside};
    } else {
      layout.Step(c);
      ++s.i;
    }
  }
  return {};
}

}  // namespace ferry
