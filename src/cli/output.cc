#include "cli/output.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "core/printable.h"
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

namespace {
// Set while an OutputBatcher flushes stdout on its own.
std::atomic<bool> g_batching{false};
}  // namespace

struct OutputBatcher::Flusher {
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::thread thread;
};

OutputBatcher::OutputBatcher(std::chrono::milliseconds interval) {
  const bool err_tty = isatty(STDERR_FILENO) == 1;
  const bool out_tty = isatty(STDOUT_FILENO) == 1;
  if (err_tty && out_tty) return;
  // stderr is unbuffered by default; stdout to a pipe or file is already
  // fully buffered.
  if (!err_tty) std::setvbuf(stderr, nullptr, _IOFBF, 1 << 16);
  g_batching = !out_tty;
  flusher_ = std::make_unique<Flusher>();
  flusher_->thread = std::thread([f = flusher_.get(), interval] {
    std::unique_lock<std::mutex> lock(f->mu);
    while (!f->cv.wait_for(lock, interval, [f] { return f->stop; })) FlushNow();
  });
}

OutputBatcher::~OutputBatcher() {
  if (flusher_) {
    {
      std::lock_guard<std::mutex> lock(flusher_->mu);
      flusher_->stop = true;
    }
    flusher_->cv.notify_all();
    flusher_->thread.join();
  }
  g_batching = false;
  FlushNow();
}

void OutputBatcher::FlushNow() {
  // stderr first: progress comes before the result it led to.
  std::fflush(stderr);
  std::fflush(stdout);
}

void PrintJson(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), stdout);
  // One JSON event per line, visible at once unless a batcher flushes soon.
  if (!g_batching) std::fflush(stdout);
}

int ReportError(const Status& status, bool json) {
  // Control characters (a file name's newline or escape sequence) are
  // shown escaped; the message's own line breaks stay.
  std::string text = "ferry: error: " + PrintableLines(RedactSecrets(status.message())) + "\n";
  for (const auto& [k, v] : status.context()) {
    text += fmt::format("  {}: {}\n", k, Printable(RedactSecrets(v)));
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
