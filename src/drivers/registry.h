// Opens a Connection for a URL by its scheme.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/connection.h"

namespace ferry {

// Parses `url_text` and connects. Failures name the redacted URL and say
// what to try: kInvalidArgument (bad URL, unknown scheme), kUnavailable
// (refused, unreachable, timeout), kPermissionDenied (authentication),
// kNotFound (missing database or SQLite file not creatable).
Result<std::unique_ptr<Connection>> OpenConnection(std::string_view url_text,
                                                   const ConnectOptions& options = {});
Result<std::unique_ptr<Connection>> OpenConnection(const Url& url,
                                                   const ConnectOptions& options = {});

// Schemes this build can open, e.g. {"postgres", "postgresql", "sqlite"}.
std::vector<std::string> SupportedSchemes();

}  // namespace ferry
