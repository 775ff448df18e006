// Private declarations shared by the migration source files (source.cc:
// scanning the layouts; source_sections.cc: directives and sections;
// source_new.cc: `ferry new`). Not part of the library's API.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/printable.h"
#include "ferry/status.h"
#include "migrate/source.h"

namespace ferry::source_internal {

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsBlank(char c) { return c == ' ' || c == '\t'; }
inline bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
inline char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

inline std::string_view TrimTrailingSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Every problem found in a scan, reported together.
class Problems {
 public:
  void Add(std::string_view path, std::string_view message) {
    items_.push_back(fmt::format("{}: {}", Printable(path), message));
  }
  void AddAt(std::string_view path, int line, std::string_view message) {
    items_.push_back(fmt::format("{}:{}: {}", Printable(path), line, message));
  }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

  Status ToStatus(const std::string& dir) {
    std::stable_sort(items_.begin(), items_.end());
    std::string message = fmt::format("{} problem{} in migrations directory '{}':", items_.size(),
                                      items_.size() == 1 ? "" : "s", dir);
    for (const std::string& item : items_) {
      message += '\n';
      message += item;
    }
    return Status(StatusCode::kInvalidArgument, std::move(message))
        .With("dir", dir)
        .With("problems", std::to_string(items_.size()));
  }

 private:
  std::vector<std::string> items_;
};

struct Line {
  size_t begin = 0;  // offset of the first byte
  size_t end = 0;    // offset of the '\n' (or the text's end)
};

std::vector<Line> SplitLines(std::string_view text);

struct ScriptParts {
  Script up;
  std::optional<Script> down;
  std::optional<Script> verify;
  bool sectioned = false;  // has section markers
};

// Splits normalized file text into its up (and down) scripts and reads the
// directives. Returns false when it added problems.
bool SplitSections(std::string_view text, const std::string& path, bool markers_allowed,
                   ScriptParts* out, Problems* problems);

}  // namespace ferry::source_internal
