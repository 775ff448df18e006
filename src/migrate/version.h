// Version: the ordering key of a versioned migration, parsed from its name.
//
// Accepted forms:
//   integers           1, 0042, 20251231120000 (timestamps are integers too)
//   dotted             1.1.0; Flyway's '_' separator means the same: 1_1 == 1.1
//   diesel timestamps  2019-02-26-002946, 2026-04-22-005541-0000
//
// A version is a list of non-negative integer components, each kept as a
// digit string so that values of any length (timestamps, long sequences)
// compare exactly without overflow. A diesel timestamp YYYY-MM-DD-HHMMSS is
// the single component YYYYMMDDHHMMSS (so it orders among plain 14-digit
// timestamps); an optional trailing -NNNN becomes a second component.
//
// Ordering is numeric, component by component: 1.1 < 1.2 < 1.10 and
// 9 < 10. A missing component counts as zero, so trailing zero components do
// not matter: "1" == "1.0" == "1.0.0" and "0042" == "42". Two migrations
// whose versions compare equal are duplicates.
#pragma once

#include <compare>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry {

class Version {
 public:
  // The empty version: repeatable migrations have none. Sorts before every
  // parsed version.
  Version() = default;

  // Parses `text`; kInvalidArgument naming the text for anything else
  // (empty, letters, signs, empty components such as "1..2" or "1.").
  static Result<Version> Parse(std::string_view text);

  bool empty() const { return !parsed_; }
  // The text as written in the file name ("0042", "1_1", "2019-02-26-002946").
  const std::string& text() const { return text_; }
  // Numeric components without leading zeros ("0" for zero); trailing zero
  // components are kept as written.
  const std::vector<std::string>& components() const { return components_; }
  // Components joined with '.', trailing zero components dropped (at least
  // one kept): "0042" -> "42", "1_1_0" -> "1.1", "2019-02-26-002946" ->
  // "20190226002946". Equal versions have equal canonical forms.
  std::string Canonical() const;

  friend std::strong_ordering operator<=>(const Version& a, const Version& b);
  friend bool operator==(const Version& a, const Version& b) {
    return (a <=> b) == std::strong_ordering::equal;
  }

 private:
  bool parsed_ = false;
  std::string text_;
  std::vector<std::string> components_;
};

// Compares two unsigned decimal digit strings numerically (leading zeros
// allowed, any length).
std::strong_ordering CompareDecimal(std::string_view a, std::string_view b);

}  // namespace ferry
