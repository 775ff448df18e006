#include "drivers/redis/openssl_api.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>
#include <string>
#include <type_traits>

namespace ferry::redis {
namespace {

constexpr const char* kInstallHint = "install OpenSSL 3: apt-get install libssl3";

struct Loaded {
  Status status = Status::Ok();
  OpensslApi api;
};

Loaded Load() {
  Loaded loaded;
  // Never closed: OpenSSL stays for the process. RTLD_LOCAL keeps its
  // symbols out of the global scope.
  void* handle = dlopen(kLibsslSoname, RTLD_LAZY | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    loaded.status = Status(StatusCode::kFailedPrecondition,
                           fmt::format("Redis over TLS (rediss://) needs OpenSSL ({}), which could "
                                       "not be loaded: {}; {}",
                                       kLibsslSoname, why ? why : "unknown reason", kInstallHint))
                        .With("library", kLibsslSoname)
                        .With("hint", kInstallHint);
    return loaded;
  }
  std::string missing;
  auto resolve = [&](const char* name, auto& slot) {
    if (!missing.empty()) return;
    void* symbol = dlsym(handle, name);
    if (symbol == nullptr) {
      missing = name;
      return;
    }
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(symbol);
  };
#define FERRY_OPENSSL_RESOLVE(name) resolve(#name, loaded.api.name);
  FERRY_OPENSSL_FUNCTIONS(FERRY_OPENSSL_RESOLVE)
#undef FERRY_OPENSSL_RESOLVE
  if (!missing.empty()) {
    loaded.status = Status(StatusCode::kFailedPrecondition,
                           fmt::format("Redis over TLS needs OpenSSL 3 ({}), but it lacks the "
                                       "function {}; {}",
                                       kLibsslSoname, missing, kInstallHint))
                        .With("symbol", missing)
                        .With("hint", kInstallHint);
    loaded.api = OpensslApi();
    dlclose(handle);
  }
  return loaded;
}

const Loaded& Instance() {
  static const Loaded loaded = Load();
  return loaded;
}

}  // namespace

Status LoadOpenssl() { return Instance().status; }

const OpensslApi& Ssl() {
  const Loaded& loaded = Instance();
  if (!loaded.status.ok()) std::abort();
  return loaded.api;
}

}  // namespace ferry::redis
