// Fuzzes ferry.toml reading (core/config.h) and duration parsing: any text,
// no crash; a file that loads gives every known key a value.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/config.h"
#include "fuzz_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)ferry::ParseDurationMs(text);
  std::string path = ferry::fuzz::ScratchDir() + "/ferry.toml";
  ferry::fuzz::WriteFile(path, text);
  auto config = ferry::Config::Load(path, /*file_explicit=*/true,
                                    [](const char*) -> const char* { return nullptr; }, {});
  if (config.ok()) (void)config->Get("database");
  return 0;
}
