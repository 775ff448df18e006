#include "core/numbers.h"

#include <charconv>

namespace ferry {

std::optional<int64_t> ParseInt64(std::string_view text) {
  int64_t out = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return out;
}

int64_t LeadingInt64(std::string_view text, int64_t fallback) {
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() ? out : fallback;
}

int64_t ColumnInt64(const std::optional<std::string>& value, int64_t fallback) {
  return value ? LeadingInt64(std::string_view(*value), fallback) : fallback;
}

std::string Grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

}  // namespace ferry
