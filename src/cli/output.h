// Rendering shared by all commands: errors, JSON, tables.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <memory>
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

// Batches what ferry writes to stderr and stdout while they are pipes or
// files (a CI log, a supervisor, `2>&1 | tee`): stdio buffers the lines and a
// background thread flushes them every `interval`, so `ferry up` makes a few
// writes a second instead of two per migration. Every line written to a pipe
// wakes its reader; on a busy or virtualized machine those wake-ups cost more
// than the writes (bench/RESULTS.md, session 6). A terminal is left as it is.
// Output is flushed when the batcher is destroyed (end of main) and by
// exit(); a process killed by a signal loses at most `interval` of output.
// One per process, created before anything is written.
class OutputBatcher {
 public:
  explicit OutputBatcher(std::chrono::milliseconds interval = std::chrono::milliseconds(100));
  ~OutputBatcher();
  OutputBatcher(const OutputBatcher&) = delete;
  OutputBatcher& operator=(const OutputBatcher&) = delete;

 private:
  // Writes out whatever is buffered now: stderr, then stdout.
  static void FlushNow();

  struct Flusher;
  std::unique_ptr<Flusher> flusher_;  // null when both are terminals
};

}  // namespace ferry::cli
