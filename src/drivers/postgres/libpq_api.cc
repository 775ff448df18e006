#include "drivers/postgres/libpq_api.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <link.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>

namespace ferry::postgres {
namespace {

constexpr const char* kInstallHint = "install it with: apt-get install libpq5";

struct Loaded {
  LibpqApi api;
  Status status;
};

std::string LoaderError() {
  const char* text = dlerror();
  return text == nullptr ? std::string("unknown reason") : std::string(text);
}

// The file the loader picked for `handle`, for messages ("" when unknown).
std::string PathOf(void* handle) {
  link_map* map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr || map->l_name == nullptr) {
    return "";
  }
  return map->l_name;
}

Loaded Load() {
  Loaded loaded;
  // RTLD_LOCAL: libpq's symbols (and its chain's) stay out of the global
  // scope. RTLD_LAZY, as when libpq was linked: libraries built with BIND_NOW
  // (libpq, OpenSSL, LDAP on Debian) are bound at once all the same, and
  // Kerberos' libraries keep binding only what is called (RTLD_NOW costs
  // 2.5 M more instructions per connection, 17% of a `ferry doctor`).
  // The handle is never closed: libpq stays for the process.
  void* handle = dlopen(kLibpqSoname, RTLD_LAZY | RTLD_LOCAL);
  if (handle == nullptr) {
    loaded.status =
        Status(StatusCode::kFailedPrecondition,
               fmt::format("PostgreSQL support needs the libpq client library ({}), which could "
                           "not be loaded: {}; {}",
                           kLibpqSoname, LoaderError(), kInstallHint))
            .With("library", kLibpqSoname)
            .With("hint", kInstallHint);
    return loaded;
  }
  std::string missing;
  std::string reason;
  auto resolve = [&](const char* name, auto& slot) {
    if (!missing.empty()) return;
    dlerror();  // clear a stale error
    void* symbol = dlsym(handle, name);
    if (symbol == nullptr) {
      missing = name;
      reason = LoaderError();
      return;
    }
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(symbol);
  };
#define FERRY_LIBPQ_RESOLVE(name) resolve(#name, loaded.api.name);
  FERRY_LIBPQ_FUNCTIONS(FERRY_LIBPQ_RESOLVE)
#undef FERRY_LIBPQ_RESOLVE
  if (!missing.empty()) {
    std::string path = PathOf(handle);
    constexpr const char* kUpgradeHint =
        "install libpq from PostgreSQL 14 or later: apt-get install libpq5";
    loaded.status =
        Status(StatusCode::kFailedPrecondition,
               fmt::format("PostgreSQL support needs the libpq client library ({}), but {} lacks "
                           "the function {} ({}); {}",
                           kLibpqSoname, path.empty() ? kLibpqSoname : path, missing, reason,
                           kUpgradeHint))
            .With("library", path.empty() ? kLibpqSoname : path)
            .With("symbol", missing)
            .With("hint", kUpgradeHint);
    loaded.api = LibpqApi();  // no half-filled table
    dlclose(handle);
  }
  return loaded;
}

const Loaded& Instance() {
  static const Loaded loaded = Load();  // thread-safe, once per process
  return loaded;
}

}  // namespace

Status LoadLibpq() { return Instance().status; }

const LibpqApi& Pq() {
  const Loaded& loaded = Instance();
  if (!loaded.status.ok()) {
    std::fprintf(stderr, "ferry: internal error: libpq used although it could not be loaded: %s\n",
                 loaded.status.message().c_str());
    std::abort();
  }
  return loaded.api;
}

}  // namespace ferry::postgres
