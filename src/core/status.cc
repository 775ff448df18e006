#include "ferry/status.h"

namespace ferry {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kNotFound: return "NOT_FOUND";
    case StatusCode::kAlreadyExists: return "ALREADY_EXISTS";
    case StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case StatusCode::kAborted: return "ABORTED";
    case StatusCode::kUnavailable: return "UNAVAILABLE";
    case StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
    case StatusCode::kUnimplemented: return "UNIMPLEMENTED";
    case StatusCode::kCancelled: return "CANCELLED";
    case StatusCode::kUnknown: return "UNKNOWN";
    case StatusCode::kInternal: return "INTERNAL";
  }
  return "UNKNOWN";
}

bool IsRetryable(StatusCode code) {
  return code == StatusCode::kUnavailable || code == StatusCode::kAborted ||
         code == StatusCode::kDeadlineExceeded;
}

Status::Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

Status Status::With(std::string key, std::string value) && {
  Add(std::move(key), std::move(value));
  return std::move(*this);
}

Status& Status::Drop(std::string_view key) & {
  std::erase_if(context_, [key](const auto& entry) { return entry.first == key; });
  return *this;
}

Status& Status::Add(std::string key, std::string value) & {
  if (value.empty()) return *this;
  for (auto& [k, v] : context_) {
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  }
  context_.emplace_back(std::move(key), std::move(value));
  return *this;
}

std::string Status::Get(std::string_view key) const {
  for (const auto& [k, v] : context_) {
    if (k == key) return v;
  }
  return "";
}

Status Status::Prefix(std::string_view prefix) && {
  if (!ok()) message_ = std::string(prefix) + ": " + message_;
  return std::move(*this);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code_));
  out += ": ";
  out += message_;
  if (!context_.empty()) {
    out += " [";
    bool first = true;
    for (const auto& [k, v] : context_) {
      if (!first) out += ", ";
      first = false;
      out += k;
      out += "=";
      out += v;
    }
    out += "]";
  }
  return out;
}

}  // namespace ferry
