// Text to integer and back, one way for the whole project: column values read as
// text, catalog fields, versions and cache lines. Before this header each
// stage had its own private helper (nine of them), with three different
// behaviours for junk and NULL.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

// The whole of `text` as a base-10 integer (optional leading '-'), or
// nullopt: empty, trailing characters, or out of range. For input a user
// typed, where "12x" is an error to report.
std::optional<int64_t> ParseInt64(std::string_view text);

// The integer at the start of `text` ("7.2.4" -> 7, "42" -> 42), or
// `fallback` when it does not start with one. For values a server wrote
// (counts, pids, versions), where a missing value means "none".
int64_t LeadingInt64(std::string_view text, int64_t fallback = 0);

// LeadingInt64 of a nullable column value; `fallback` for NULL.
int64_t ColumnInt64(const std::optional<std::string>& value, int64_t fallback = 0);

// 1234567 -> "1,234,567" (for progress lines people read).
std::string Grouped(int64_t n);

}  // namespace ferry
