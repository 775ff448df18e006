#include "drivers/cql/cql_error.h"

#include <fmt/format.h>

#include "drivers/cql/cql_wire.h"

namespace ferry::cql {
namespace {

struct ErrorKind {
  int32_t code;
  std::string_view name;
  StatusCode status;
};

constexpr ErrorKind kErrors[] = {
    {0x0000, "ServerError", StatusCode::kUnknown},
    {0x000A, "ProtocolError", StatusCode::kInternal},
    {0x0100, "BadCredentials", StatusCode::kPermissionDenied},
    {0x1000, "Unavailable", StatusCode::kUnavailable},
    {0x1001, "Overloaded", StatusCode::kUnavailable},
    {0x1002, "IsBootstrapping", StatusCode::kUnavailable},
    {0x1003, "TruncateError", StatusCode::kUnavailable},
    {0x1100, "WriteTimeout", StatusCode::kUnavailable},
    {0x1200, "ReadTimeout", StatusCode::kUnavailable},
    {0x1300, "ReadFailure", StatusCode::kUnavailable},
    {0x1400, "FunctionFailure", StatusCode::kInvalidArgument},
    {0x1500, "WriteFailure", StatusCode::kUnavailable},
    {0x2000, "SyntaxError", StatusCode::kInvalidArgument},
    {0x2100, "Unauthorized", StatusCode::kPermissionDenied},
    {0x2200, "Invalid", StatusCode::kInvalidArgument},
    {0x2300, "ConfigError", StatusCode::kInvalidArgument},
    {0x2400, "AlreadyExists", StatusCode::kAlreadyExists},
    {0x2500, "Unprepared", StatusCode::kFailedPrecondition},
};

// Reads the extra fields some errors carry into the Status context.
Status AddDetails(int32_t code, WireReader& r, Status s) {
  auto consistency = [&r, &s]() -> Status {
    FERRY_ASSIGN_OR_RETURN(uint16_t cl, r.Short());
    s.Add("consistency", std::string(ConsistencyName(static_cast<Consistency>(cl))));
    return Status();
  };
  auto counts = [&r, &s](std::string_view a, std::string_view b) -> Status {
    FERRY_ASSIGN_OR_RETURN(int32_t x, r.Int());
    FERRY_ASSIGN_OR_RETURN(int32_t y, r.Int());
    s.Add(std::string(a), std::to_string(x));
    s.Add(std::string(b), std::to_string(y));
    return Status();
  };
  switch (code) {
    case 0x1000:
      FERRY_RETURN_IF_ERROR(consistency());
      FERRY_RETURN_IF_ERROR(counts("required", "alive"));
      break;
    case 0x1100: {
      FERRY_RETURN_IF_ERROR(consistency());
      FERRY_RETURN_IF_ERROR(counts("received", "block_for"));
      FERRY_ASSIGN_OR_RETURN(std::string write_type, r.String());
      s.Add("write_type", write_type);
      break;
    }
    case 0x1200:
    case 0x1300:
    case 0x1500:
      FERRY_RETURN_IF_ERROR(consistency());
      FERRY_RETURN_IF_ERROR(counts("received", "block_for"));
      break;
    case 0x2400: {
      FERRY_ASSIGN_OR_RETURN(std::string ks, r.String());
      FERRY_ASSIGN_OR_RETURN(std::string table, r.String());
      s.Add("keyspace", ks);
      s.Add("table", table);
      break;
    }
    default:
      break;
  }
  return s;
}

}  // namespace

Status DecodeError(std::string_view body) {
  WireReader r(body);
  auto code = r.Int();
  auto message = code.ok() ? r.String() : Result<std::string>(code.status());
  if (!message.ok()) return message.status();
  std::string_view name = "UnknownError";
  StatusCode status = StatusCode::kUnknown;
  for (const auto& e : kErrors) {
    if (e.code == *code) {
      name = e.name;
      status = e.status;
    }
  }
  Status s = Status(status, fmt::format("{}: {}", name, *message))
                 .With("cql_error", std::string(name))
                 .With("cql_code", fmt::format("0x{:04x}", *code));
  Status detailed = AddDetails(*code, r, s);
  return detailed.code() == StatusCode::kInternal && status != StatusCode::kInternal ? s : detailed;
}

bool IsUnprepared(const Status& status) { return status.Get("cql_error") == "Unprepared"; }

}  // namespace ferry::cql
