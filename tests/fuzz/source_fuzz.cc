// Fuzzes the migration scanner (migrate/source.h): file names and sections.
//
// Input: up to three files, each "NAME\nCONTENT" and separated by a NUL
// byte; names holding '/' or NUL, or "." / "..", are skipped. The files are
// written to a scratch directory and scanned: no crash, and a scan that
// succeeds gives migrations whose scripts name files of the directory.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_dir.h"
#include "migrate/source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  ferry::fuzz::EmptyScratchDir();
  const std::string& dir = ferry::fuzz::ScratchDir();
  for (int i = 0; i < 3 && !input.empty(); ++i) {
    size_t end = input.find('\0');
    std::string_view file = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
    size_t nl = file.find('\n');
    std::string name(file.substr(0, nl));
    std::string_view content = nl == std::string_view::npos ? "" : file.substr(nl + 1);
    if (name.empty() || name == "." || name == ".." || name.size() > 200 ||
        name.find('/') != std::string::npos) {
      continue;
    }
    ferry::fuzz::WriteFile(dir + "/" + name, content);
  }
  for (bool allow_empty : {false, true}) {
    ferry::ScanOptions options;
    options.allow_empty = allow_empty;
    auto set = ferry::ScanDirectory(dir, options);
    if (!set.ok()) continue;
    for (const auto& m : set->migrations) {
      if (m.script.empty() || m.up.path.empty()) {
        std::fprintf(stderr, "source_fuzz: a migration without a script\n");
        std::abort();
      }
    }
  }
  return 0;
}
