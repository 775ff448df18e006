// Finds and loads ferry-observe.so (observe/plugin.h) once per process.
#include <dlfcn.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

#include "observe/plugin.h"

namespace ferry {

namespace {

constexpr const char* kPluginName = "ferry-observe.so";

std::vector<std::string> Candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("FERRY_OBSERVE_PLUGIN"); env != nullptr && *env != '\0') {
    out.push_back(env);
    return out;
  }
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back((exe.parent_path() / kPluginName).string());
    out.push_back((exe.parent_path().parent_path() / "lib" / "ferry" / kPluginName).string());
  }
  return out;
}

Result<const ObservePlugin*> Load() {
  std::string tried;
  for (const std::string& path : Candidates()) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      tried += fmt::format("\n  {}: {}", path, why != nullptr ? why : "cannot load");
      continue;
    }
    using Entry = const ObservePlugin* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, "ferry_observe_plugin"));
    const ObservePlugin* plugin = entry != nullptr ? entry() : nullptr;
    if (plugin == nullptr || plugin->version != ObservePlugin::kVersion) {
      tried += fmt::format("\n  {}: not a ferry {} observability plugin", path, FERRY_VERSION);
      continue;
    }
    return plugin;
  }
  return Status(StatusCode::kUnavailable,
                "metrics and `ferry serve` need ferry-observe.so (prometheus-cpp, cpp-httplib), "
                "installed next to the ferry program; tried:" +
                    tried)
      .With("hint", "install it beside ferry, or set FERRY_OBSERVE_PLUGIN to its path");
}

}  // namespace

Result<const ObservePlugin*> LoadObservePlugin() {
  static std::once_flag once;
  static Result<const ObservePlugin*> loaded = Status(StatusCode::kInternal, "not loaded");
  std::call_once(once, [] { loaded = Load(); });
  return loaded;
}

}  // namespace ferry
