// Rendering shared by all commands: errors, JSON, tables.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "ferry/status.h"

namespace ferry::cli {

// Prints "ferry: error: ..." with context lines to stderr, and with `json`
// also {"ok":false,"error":{...}} on stdout. Returns the exit code.
int ReportError(const Status& status, bool json);

// Status as a JSON object: code, message, context.
nlohmann::json StatusJson(const Status& status);

// Writes `value` as one line of JSON to stdout.
void PrintJson(const nlohmann::json& value);

// True when stdout is a terminal (progress bars, colour).
bool StdoutIsTerminal();

}  // namespace ferry::cli
