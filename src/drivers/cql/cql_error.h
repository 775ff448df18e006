// Server ERROR responses (protocol v4 section 9) as ferry Status values.
//
// Every Status keeps the server's error name and message; context
// "cql_error" holds the name (SyntaxError, Invalid, Unavailable, ...) and
// "cql_code" the hex code, plus the error's own fields (consistency,
// required/alive replicas, write_type, keyspace/table, ...). Codes:
//   Unavailable, Overloaded, IsBootstrapping, TruncateError, ReadTimeout,
//   WriteTimeout, ReadFailure, WriteFailure   -> kUnavailable (retry the call)
//   SyntaxError, Invalid, ConfigError, FunctionFailure -> kInvalidArgument
//   BadCredentials, Unauthorized              -> kPermissionDenied
//   AlreadyExists                             -> kAlreadyExists
//   Unprepared                                -> kFailedPrecondition (the
//                                                driver re-prepares first)
//   ServerError, ProtocolError, others        -> kUnknown / kInternal
#pragma once

#include <cstdint>
#include <string_view>

#include "ferry/status.h"

namespace ferry::cql {

inline constexpr int32_t kErrorUnprepared = 0x2500;

// Decodes an ERROR body. A malformed body yields kInternal.
Status DecodeError(std::string_view body);

// True for the Status of an Unprepared error.
bool IsUnprepared(const Status& status);

}  // namespace ferry::cql
