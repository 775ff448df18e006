#include "migrate/version.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <iterator>

namespace ferry {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view StripLeadingZeros(std::string_view digits) {
  size_t i = 0;
  while (i + 1 < digits.size() && digits[i] == '0') ++i;
  return digits.substr(i);
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

// diesel: YYYY-MM-DD-HHMMSS with an optional -NNNN suffix.
bool ParseDieselTimestamp(std::string_view text, std::vector<std::string>* components) {
  static constexpr size_t kWidths[] = {4, 2, 2, 6};
  std::string stamp;
  size_t pos = 0;
  for (size_t i = 0; i < std::size(kWidths); ++i) {
    if (i > 0) {
      if (pos >= text.size() || text[pos] != '-') return false;
      ++pos;
    }
    std::string_view part = text.substr(pos, kWidths[i]);
    if (part.size() != kWidths[i] || !AllDigits(part)) return false;
    stamp += part;
    pos += kWidths[i];
  }
  components->assign(1, std::string(StripLeadingZeros(stamp)));
  if (pos == text.size()) return true;
  if (text[pos] != '-') return false;
  std::string_view suffix = text.substr(pos + 1);
  if (!AllDigits(suffix)) return false;
  components->emplace_back(StripLeadingZeros(suffix));
  return true;
}

Status InvalidVersion(std::string_view text) {
  return Status(StatusCode::kInvalidArgument,
                fmt::format("invalid version '{}': use digits with optional '.' or '_' separators "
                            "(1, 0042, 1.2.0, 1_2, 20251231120000) or a diesel timestamp "
                            "(2019-02-26-002946)",
                            text));
}

}  // namespace

std::strong_ordering CompareDecimal(std::string_view a, std::string_view b) {
  a = StripLeadingZeros(a);
  b = StripLeadingZeros(b);
  if (a.size() != b.size()) return a.size() <=> b.size();
  int c = a.compare(b);
  return c < 0 ? std::strong_ordering::less
               : (c > 0 ? std::strong_ordering::greater : std::strong_ordering::equal);
}

Result<Version> Version::Parse(std::string_view text) {
  if (text.empty()) return InvalidVersion(text);
  Version v;
  v.text_ = std::string(text);
  v.parsed_ = true;
  if (text.find('-') != std::string_view::npos) {
    if (!ParseDieselTimestamp(text, &v.components_)) return InvalidVersion(text);
    return v;
  }
  size_t start = 0;
  while (true) {
    size_t end = start;
    while (end < text.size() && IsDigit(text[end])) ++end;
    if (end == start) return InvalidVersion(text);  // empty component or a non-digit
    v.components_.emplace_back(StripLeadingZeros(text.substr(start, end - start)));
    if (end == text.size()) break;
    if (text[end] != '.' && text[end] != '_') return InvalidVersion(text);
    start = end + 1;
    if (start == text.size()) return InvalidVersion(text);  // trailing separator
  }
  return v;
}

std::string Version::Canonical() const {
  size_t n = components_.size();
  while (n > 1 && components_[n - 1] == "0") --n;
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += '.';
    out += components_[i];
  }
  return out;
}

std::strong_ordering operator<=>(const Version& a, const Version& b) {
  if (a.empty() || b.empty()) return !a.empty() <=> !b.empty();
  size_t n = std::max(a.components_.size(), b.components_.size());
  for (size_t i = 0; i < n; ++i) {
    std::string_view x = i < a.components_.size() ? std::string_view(a.components_[i]) : "0";
    std::string_view y = i < b.components_.size() ? std::string_view(b.components_[i]) : "0";
    auto c = CompareDecimal(x, y);
    if (c != std::strong_ordering::equal) return c;
  }
  return std::strong_ordering::equal;
}

}  // namespace ferry
