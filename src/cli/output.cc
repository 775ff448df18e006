#include "cli/output.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "core/url.h"

namespace ferry::cli {

int ExitCodeFor(const Status& status) {
  if (!status.ok() && status.Get("lint") == "unsafe") return kExitUnsafe;
  switch (status.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kInvalidArgument: return kExitInvalidInput;
    case StatusCode::kNotFound: return kExitNotFound;
    case StatusCode::kFailedPrecondition: return kExitNeedsHuman;
    case StatusCode::kDeadlineExceeded: return kExitLockTimeout;
    case StatusCode::kUnavailable: return kExitUnavailable;
    case StatusCode::kPermissionDenied: return kExitPermission;
    case StatusCode::kInternal: return kExitInternal;
    default: return kExitFailure;
  }
}

nlohmann::json StatusJson(const Status& status) {
  nlohmann::json context = nlohmann::json::object();
  for (const auto& [k, v] : status.context()) context[k] = RedactSecrets(v);
  return {{"code", std::string(StatusCodeName(status.code()))},
          {"message", RedactSecrets(status.message())},
          {"context", context}};
}

void PrintJson(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int ReportError(const Status& status, bool json) {
  std::string text = "ferry: error: " + RedactSecrets(status.message()) + "\n";
  for (const auto& [k, v] : status.context()) {
    text += fmt::format("  {}: {}\n", k, RedactSecrets(v));
  }
  std::fwrite(text.data(), 1, text.size(), stderr);
  int code = ExitCodeFor(status);
  if (json) {
    nlohmann::json out = {{"ok", false}, {"exit_code", code}, {"error", StatusJson(status)}};
    PrintJson(out);
  }
  return code;
}

bool StdoutIsTerminal() { return isatty(STDOUT_FILENO) == 1; }

}  // namespace ferry::cli
