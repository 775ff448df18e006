// A secret (a password) that no printing or serializing path can reach.
//
// Secret has no operator<<, no fmt formatter, no JSON conversion and no
// implicit conversion to a string: code that tries to print, log, format or
// store one does not compile. The only way to the text is Reveal(), which a
// driver calls at the moment it hands the secret to the server or to the
// client library that connects (src/drivers/*). The buffer is wiped when the
// Secret is destroyed.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

namespace ferry {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(const Secret&) = default;
  Secret(Secret&&) = default;
  Secret& operator=(const Secret&) = default;
  Secret& operator=(Secret&&) = default;
  ~Secret();

  bool empty() const { return value_.empty(); }
  // The secret itself: for a driver's connect call only. Never format, log,
  // store or compare it with text that is printed.
  const std::string& Reveal() const { return value_; }

 private:
  std::string value_;
};

// Printing a Secret is a compile error.
std::ostream& operator<<(std::ostream& os, const Secret& secret) = delete;

}  // namespace ferry
