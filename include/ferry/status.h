// Status and Result<T>: how every ferry operation reports failure.
//
// Expected failures are values, never exceptions. The code tells the caller
// what to do next; the message is for humans; the context (key/value pairs
// such as "sqlstate", "statement", "file", "line") is for both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace ferry {

enum class StatusCode : uint8_t {
  kOk,
  kInvalidArgument,     // bad URL, config, flag or migration file: fix the input
  kNotFound,            // the database, table or file does not exist
  kAlreadyExists,       // the thing to create is there already
  kFailedPrecondition,  // dirty version, failed migration, drift: a human must act
  kAborted,             // serialization failure, deadlock: retry the transaction
  kUnavailable,         // connection lost, refused, host unreachable: retry the call
  kDeadlineExceeded,    // lock or statement timeout: retry later
  kPermissionDenied,    // authentication or privilege failure
  kUnimplemented,       // this driver lacks the capability
  kCancelled,
  kUnknown,             // unclassified server error: do not retry
  kInternal,            // a bug in ferry
};

// "INVALID_ARGUMENT", "UNAVAILABLE", ...
std::string_view StatusCodeName(StatusCode code);

// True for codes where repeating the same call may succeed.
bool IsRetryable(StatusCode code);

// Success, or a code, a message and key/value context. Cheap when ok().
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::vector<std::pair<std::string, std::string>>& context() const { return context_; }

  // Adds context (e.g. "sqlstate"); empty values are dropped.
  Status With(std::string key, std::string value) &&;
  Status& Add(std::string key, std::string value) &;
  // Value of a context key, or "" when absent.
  std::string Get(std::string_view key) const;
  // Removes a context key (internal bookkeeping a user need not see).
  Status& Drop(std::string_view key) &;
  // Prefixes the message ("applying 3_users.sql: ...").
  Status Prefix(std::string_view prefix) &&;

  // "UNAVAILABLE: connection refused [sqlstate=08006]"
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::vector<std::pair<std::string, std::string>> context_;
};

// A value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(data_).ok()) {
      data_ = Status(StatusCode::kInternal, "Result constructed from an ok Status");
    }
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(data_);
  }
  Status TakeStatus() && { return ok() ? Status() : std::move(std::get<Status>(data_)); }

  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::move(std::get<T>(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace ferry

#define FERRY_CONCAT_INNER_(a, b) a##b
#define FERRY_CONCAT_(a, b) FERRY_CONCAT_INNER_(a, b)

#define FERRY_RETURN_IF_ERROR(expr)                  \
  do {                                               \
    ::ferry::Status ferry_status_ = (expr);          \
    if (!ferry_status_.ok()) return ferry_status_;   \
  } while (false)

#define FERRY_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).TakeStatus(); \
  lhs = std::move(tmp).value()

#define FERRY_ASSIGN_OR_RETURN(lhs, expr) \
  FERRY_ASSIGN_OR_RETURN_IMPL_(FERRY_CONCAT_(ferry_result_, __LINE__), lhs, expr)
